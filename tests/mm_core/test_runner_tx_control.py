"""The runner's own sends that carry no order — the order-entry login, its heartbeats, the logout —
have TX stamps like any send; they are known, so "TX stamps for no known send" (tx_unmatched)
stays 0 on a run that sends no order, and no TX_TS record is journaled for them. Real loopback
order entry against a scripted venue that accepts the login and reads everything."""
from __future__ import annotations

import socket
import threading
import time

from journal.catalogue import RecordType
from mm_core.protocol import soupbintcp
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from tests.mm_core.fake_venue import ACCEPTED, new_engine, run_against, serve
from tests.mm_core.test_runner import LockedClock, free_udp_port
from tests.mm_core.test_runner_venue_link import ListJournal


def _accept_and_read(conn: socket.socket) -> None:
    conn.sendall(ACCEPTED)
    while conn.recv(65536):
        pass


def test_login_and_heartbeat_stamps_are_not_counted_as_unknown(tmp_path):
    port = serve(_accept_and_read)
    runner, _, records, exc = run_against(tmp_path, port, 1.5, heartbeat_ns=200_000_000)
    assert exc is None
    assert runner.report.orders_sent == 0
    assert runner.report.tx_unmatched == 0
    assert runner.tx.control >= 4                   # the login and heartbeats every 200 ms of silence
    assert not [r for r in records if r.rtype == RecordType.TX_TS]


def _accept_delaying_acks_then_read(conn: socket.socket) -> None:
    """A venue busy for 1.5 s after the login, its kernel delaying ACKs (TCP_QUICKACK
    off, as a venue that answers with data has it): the runner's last segment in flight is
    probed again each time. Then it reads everything."""
    conn.sendall(ACCEPTED)
    for _ in range(30):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        time.sleep(0.05)
    while conn.recv(65536):
        pass


def test_stamps_of_retransmitted_sends_are_repeats_not_unknown(tmp_path):
    # a heartbeat every 15 ms: two in flight while the venue delays its ACK (40 ms), and far
    # enough apart that TCP's tail loss probe (a few ms) fires between them and sends (and the
    # kernel stamps) the last one again, with the same key
    port = serve(_accept_delaying_acks_then_read)
    runner, _, _, exc = run_against(tmp_path, port, 2.0, heartbeat_ns=15_000_000, timer_ns=5_000_000)
    assert exc is None
    report = runner.report
    assert runner.tx.control >= 40
    assert report.tx_repeated >= 1, report          # retransmissions happened, stamped again
    assert report.tx_unmatched == 0, report


def test_the_logout_stamp_is_not_counted_as_unknown():
    lsn = socket.create_server(("127.0.0.1", 0))

    def venue():
        conn, _ = lsn.accept()
        with conn:
            conn.sendall(ACCEPTED)
            while (data := conn.recv(65536)) and soupbintcp.encode(soupbintcp.LogoutRequest()) not in data:
                pass
        lsn.close()
    threading.Thread(target=venue, daemon=True).start()
    journal = ListJournal()
    runner = Runner(new_engine(), journal, RunnerSettings(
        itch_port=free_udp_port(), ouch_port=lsn.getsockname()[1], rerequest_port=free_udp_port()), LockedClock())
    try:
        runner.connect()
        runner.logout_order_entry(2.0)
    finally:
        runner.close()
    assert runner.report.tx_unmatched == 0 and runner.tx.control == 2
    assert not [r for r in journal.records if r[1] == RecordType.TX_TS]
