"""A client that sends bad messages and reads nothing cannot grow the venue's memory: Debug
replies stop at the high-water mark (each one dropped is counted, apart from the protocol error
its bad message already counted), and a connection past MAX_PROTOCOL_ERRORS is closed, with a
log line; the venue and other clients carry on."""
from __future__ import annotations

import logging
import socket
import time

import pytest

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue import server
from tests.venue.test_server import connect, messages

UNKNOWN_TYPE = soupbintcp.encode(soupbintcp.UnsequencedData(b"Z"))    # gets a Debug reply


def _non_reading(venue) -> tuple[socket.socket, object]:
    """MM01 logged in on a socket that reads nothing, with small buffers on both ends (set on
    the venue's end too, so that its replies queue in the venue rather than in the kernel)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)     # before the window opens
    sock.connect((venue.ports.host, venue.ports.ouch))
    sock.sendall(soupbintcp.encode(soupbintcp.LoginRequest("MM01", "mmaudit", "", 1)))
    _wait(lambda: "MM01" in venue._online)
    with venue._lock:
        conn = venue._online["MM01"]
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return sock, conn


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the venue did not get there in time"
        time.sleep(0.02)


def _debug_replies(sock: socket.socket) -> int:
    """Read what the venue sent until it is quiet; returns how many Debug packets came."""
    framer, count = soupbintcp.Framer(), 0
    sock.settimeout(0.5)
    try:
        while data := sock.recv(65536):
            count += sum(f[2:3] == b"+" for f in framer.feed(data))
    except TimeoutError:
        pass
    return count


def test_debug_replies_stop_at_the_high_water_mark(make_venue, monkeypatch):
    monkeypatch.setattr(server, "OUT_HIGH_WATER", 4096)
    monkeypatch.setattr(server, "MAX_PROTOCOL_ERRORS", 1_000_000)   # the cap alone
    venue = make_venue()
    client, conn = _non_reading(venue)
    sent = 5000
    enter = ouch.EnterOrder("LAST", "B", 100, "ACME", 10_0000, 99999, "", "Y", "P", "N", 0,
                            "N", "R")
    client.sendall(UNKNOWN_TYPE * sent + soupbintcp.encode(soupbintcp.UnsequencedData(
        ouch.encode(enter))))
    _wait(lambda: venue.live_orders("MM01"))            # so every bad message before it is read
    with venue._lock:
        dropped = conn.debug_dropped           # counted apart from the protocol errors
        assert conn.errors == sent
    replies = _debug_replies(client)           # what the kernel and the venue held
    assert replies + dropped == sent and replies < sent // 4
    assert venue.debug_replies_dropped == dropped
    client.close()


def test_a_connection_past_the_protocol_error_limit_is_closed(make_venue, caplog):
    venue = make_venue()
    client, _ = _non_reading(venue)
    with caplog.at_level(logging.WARNING, "mm_core.venue"):
        client.sendall(UNKNOWN_TYPE * (server.MAX_PROTOCOL_ERRORS + 500))
        _wait(lambda: not venue._online, 10.0)         # before the heartbeat timeout (15 s)
    closed = [r.getMessage() for r in caplog.records if "connection closed" in r.getMessage()]
    assert len(closed) == 1 and f"{server.MAX_PROTOCOL_ERRORS + 1} protocol errors" in closed[0]
    client.close()
    assert venue.running
    with connect(venue) as again:                        # the user can log in again at once
        again.enter("AFTER", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(again, 2)[-1], ouch.Accepted)


def test_a_client_that_reads_nothing_is_closed_after_exactly_the_limit_of_bad_messages(
        make_venue, monkeypatch):
    """Each bad message counts once towards MAX_PROTOCOL_ERRORS, whether its Debug reply went
    out or was dropped at the high-water mark (that is counted on its own)."""
    monkeypatch.setattr(server, "OUT_HIGH_WATER", 4096)      # replies are dropped early on
    venue = make_venue()
    client, conn = _non_reading(venue)
    limit = server.MAX_PROTOCOL_ERRORS
    enter = ouch.EnterOrder("LAST", "B", 100, "ACME", 10_0000, 99999, "", "Y", "P", "N", 0,
                            "N", "R")
    client.sendall(UNKNOWN_TYPE * limit + soupbintcp.encode(soupbintcp.UnsequencedData(
        ouch.encode(enter))))
    _wait(lambda: venue.live_orders("MM01") or not venue._online)   # every bad one is read
    with venue._lock:
        assert venue._online.get("MM01") is conn, "closed before the limit"
        assert conn.errors == limit and conn.debug_dropped > 0
        dropped = conn.debug_dropped
    assert venue.debug_replies_dropped == dropped
    client.sendall(UNKNOWN_TYPE)                                    # one past the limit
    _wait(lambda: not venue._online, 10.0)
    assert f"{limit + 1} protocol errors" in venue.protocol_errors[-1]
    client.close()
