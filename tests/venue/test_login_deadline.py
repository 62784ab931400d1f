"""A connection must log in within login_timeout of being accepted, whatever it sends meanwhile:
otherwise MAX_CONNECTIONS sockets that trickle a LoginRequest byte by byte (never silent, so the
heartbeat timeout never fires) would lock every user out. Logged-in sessions are not affected."""
from __future__ import annotations

import socket
import time

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue import server
from tests.venue.test_server import connect, messages

LOGIN = soupbintcp.encode(soupbintcp.LoginRequest("MM02", "mmaudit2", "", 1))


def _gone(sock: socket.socket) -> bool:
    """Whether the venue closed this socket (end of stream or reset)."""
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_do_not_log_in_in_time_are_closed_whatever_they_send(make_venue):
    # the per-address bounds would refuse most hogs at once (test_login_throttle.py): off here
    venue = make_venue(login_timeout=1.0, heartbeat_timeout=30.0,
                       max_pending_logins=server.MAX_CONNECTIONS,
                       login_failures=server.MAX_CONNECTIONS)
    with connect(venue) as member:                    # logged in: the deadline is not for it
        messages(member, 1)
        start = time.monotonic()
        hogs = [socket.create_connection((venue.ports.host, venue.ports.ouch))
                for _ in range(server.MAX_CONNECTIONS - 1)]
        for hog in hogs:
            hog.setblocking(False)
        closed_at: dict[int, float] = {}
        for i in range(len(LOGIN) - 1):               # one byte each every 0.2 s, never all
            for n, hog in enumerate(hogs):
                if n not in closed_at and _gone(hog):
                    closed_at[n] = time.monotonic() - start
                elif n not in closed_at:
                    try:
                        hog.send(LOGIN[i:i + 1])
                    except OSError:
                        closed_at[n] = time.monotonic() - start
            if len(closed_at) == len(hogs):
                break
            time.sleep(0.2)
        for hog in hogs:
            hog.close()
        assert len(closed_at) == len(hogs), f"{len(hogs) - len(closed_at)} hogs still open"
        assert min(closed_at.values()) >= 1.0            # not before the deadline
        member.enter("STILL", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(member, 1)[0], ouch.Accepted)
    with connect(venue, "MM02") as late:                 # a user gets in again
        assert isinstance(messages(late, 1)[0], ouch.SystemEvent)
    assert any("no login within 1 s" in e for e in venue.protocol_errors)
