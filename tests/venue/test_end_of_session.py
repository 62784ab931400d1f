"""End of session reaches a client only after everything its session log holds, however far
behind the client is; a client that stops reading is closed without 'Z' (it replays later)."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue.client import ClientError
from mm_core.venue.session_log import read_session_log
from tests.venue.test_server import connect

ORDERS = 15_000          # IOC orders: Accepted + Canceled each, ~1.5 MB of replies


def flood(venue, client) -> int:
    """Send ORDERS IOC orders without reading any reply; returns the log's last sequence."""
    client.packet()                                                      # start of day
    # A slow link: little in flight, so the backlog stays in the venue (send buffer autotuning
    # would otherwise take up to tcp_wmem's maximum, some MB, off the venue's hands).
    with venue._lock:
        for conn in venue._conns.values():
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    enter = [soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.EnterOrder(
        f"F{i}", "B", 100, "ACME", 10_0000, ouch.TIF_IOC, "", "Y", "P", "N", 0, "N", "R"))))
        for i in range(ORDERS)]
    for i in range(0, ORDERS, 500):
        client.send_raw(b"".join(enter[i:i + 500]))
    session_log = venue.logs["MM01"]
    deadline = time.monotonic() + 60
    while session_log.durable_sequence < 1 + 2 * ORDERS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_log.durable_sequence == 1 + 2 * ORDERS
    return session_log.durable_sequence


def read_to_close(client) -> list:
    packets = []
    while True:
        try:
            packets.append(client.packet(10.0))
        except ClientError as exc:
            assert "closed" in str(exc)
            return packets


def test_a_client_far_behind_gets_every_message_before_end_of_session(make_venue):
    venue = make_venue()
    with connect(venue) as c:
        last = flood(venue, c)
        stopper = threading.Thread(target=venue.stop)
        stopper.start()
        time.sleep(0.3)                 # the venue is ending the session while we lag
        packets = read_to_close(c)
        stopper.join(15)
    sequenced = [p for p in packets if isinstance(p, soupbintcp.SequencedData)]
    assert isinstance(packets[-1], soupbintcp.EndOfSession)
    assert not any(isinstance(p, soupbintcp.EndOfSession) for p in packets[:-1])
    whole = read_session_log(Path(venue.ports.log_dir) / venue.session / "MM01.soup")
    assert len(whole) == last + 1          # + the end-of-day event appended at stop
    assert [p.payload for p in sequenced] == whole[1:]
    assert ouch.decode_outbound(sequenced[-1].payload).event_code == "E"


def test_a_client_that_stops_reading_is_closed_without_end_of_session(make_venue):
    venue = make_venue()
    with connect(venue) as c:
        flood(venue, c)
        started = time.monotonic()
        venue.stop()                    # nobody reads: bounded, then closed without 'Z'
        assert time.monotonic() - started < 9
        packets = read_to_close(c)
    assert not any(isinstance(p, soupbintcp.EndOfSession) for p in packets)
