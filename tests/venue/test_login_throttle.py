"""A client cannot reconnect without limit within each login deadline: per source address, at
most max_pending_logins connections wait for a login at once, and login_failures connections
that end without one (timed out, rejected, closed) within login_failure_window start a cool-off
of login_cooloff seconds. Refusals are counted and logged; a client that logs in promptly is
never refused, however often it comes back. The abuser connects from 127.0.0.2, the members
from 127.0.0.1: the bounds are per address."""
from __future__ import annotations

import logging
import socket
import time

from mm_core.protocol import soupbintcp
from mm_core.venue.login_throttle import LoginThrottle
from tests.venue.test_server import connect

ABUSER = "127.0.0.2"
BAD_LOGIN = soupbintcp.encode(soupbintcp.LoginRequest("MM02", "wrong", "", 1))
GOOD_LOGIN = soupbintcp.encode(soupbintcp.LoginRequest("MM02", "mmaudit2", "", 1))


def dial(venue, source: str = ABUSER) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    sock.bind((source, 0))
    sock.connect((venue.ports.host, venue.ports.ouch))
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the venue sends until it closes the connection (at most 5 s)."""
    data = b""
    deadline = time.monotonic() + 5.0
    try:
        while time.monotonic() < deadline and (chunk := sock.recv(4096)):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def refused(venue, payload: bytes = GOOD_LOGIN) -> bool:
    """Whether a new connection from ABUSER is closed without a word, even with a good login."""
    with dial(venue) as sock:
        sock.sendall(payload)
        return answer(sock) == b""


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the venue did not get there in time"
        time.sleep(0.02)


def open_count(venue) -> int:
    with venue._lock:
        return len(venue._conns)


def logs_in_and_out_promptly(venue, times: int) -> None:
    for _ in range(times):
        with connect(venue, "MM01") as member:
            member.sequenced(1)
        wait_for(lambda: "MM01" not in venue._online)


def answer_first(sock: socket.socket) -> bytes:
    """The first whole SoupBinTCP packet the venue sends (at most 5 s)."""
    framer = soupbintcp.Framer()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        frames = framer.feed(sock.recv(4096))
        if frames:
            return frames[0]
    raise AssertionError("no packet from the venue")


def test_at_most_max_pending_logins_wait_at_once_per_address(make_venue, caplog):
    venue = make_venue(max_pending_logins=3, login_failures=1000)
    with caplog.at_level(logging.WARNING, "mm_core.venue"):
        waiting = [dial(venue) for _ in range(3)]
        wait_for(lambda: open_count(venue) == 3)
        assert refused(venue) and venue.throttle.refused == 1
        logs_in_and_out_promptly(venue, 5)             # another address: not affected
        waiting.pop().close()                          # one fewer waiting: the next gets in
        wait_for(lambda: open_count(venue) == 2)
        with dial(venue) as sock:
            sock.sendall(GOOD_LOGIN)
            assert isinstance(soupbintcp.decode(answer_first(sock),
                                                soupbintcp.Direction.FROM_SERVER),
                              soupbintcp.LoginAccepted)
        for sock in waiting:
            sock.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert lines == [f"refused 1 connection from {ABUSER}: 3 connections from it are not "
                     f"logged in yet (at most 3) (1 refused in all)"]


def test_failed_and_timed_out_logins_start_a_cool_off_and_members_still_log_in(make_venue,
                                                                             caplog):
    venue = make_venue(login_timeout=0.3, login_failures=3, login_failure_window=60.0,
                       login_cooloff=1.0)
    with caplog.at_level(logging.WARNING, "mm_core.venue"):
        for _ in range(2):                              # rejected at once: 'A'
            with dial(venue) as sock:
                sock.sendall(BAD_LOGIN)
                assert answer(sock) == soupbintcp.encode(soupbintcp.LoginRejected("A"))
        with dial(venue) as sock:                       # silent: closed at its login deadline
            started = time.monotonic()
            assert answer(sock) == b"" and time.monotonic() - started >= 0.3
        cooling = time.monotonic()
        assert refused(venue) and refused(venue)        # even a good login, for 1 s
        logs_in_and_out_promptly(venue, 10)             # > login_failures: never refused
        wait_for(lambda: time.monotonic() - cooling > 1.0)
        with dial(venue) as sock:                       # the cool-off is over
            sock.sendall(GOOD_LOGIN)
            first = soupbintcp.decode(answer_first(sock), soupbintcp.Direction.FROM_SERVER)
            assert isinstance(first, soupbintcp.LoginAccepted)
        with dial(venue) as sock:                       # still 3 failures in the window: one
            sock.sendall(BAD_LOGIN)                     # more starts the next cool-off at once
            answer(sock)                                # (counted before the venue closed it)
        assert refused(venue)
    assert venue.throttle.refused == 3
    messages = [r.getMessage() for r in caplog.records]
    assert sum("new connections from it are refused for 1 s" in m for m in messages) == 2
    assert any(m.startswith(f"refused 1 connection from {ABUSER}: cooling off") for m in messages)


def test_refusals_are_logged_at_most_once_a_second_an_address_and_none_is_lost():
    throttle = LoginThrottle(max_pending=1, failures=1, window=10.0, cooloff=5.0)
    assert throttle.failed("127.0.0.2", 0.0)                 # one failure: cooling off to 5 s
    reports = [throttle.admit("127.0.0.2", 0, i / 10) for i in range(1, 30)]   # 29 in 2.9 s
    assert all(r is not None and "cooling off" in r.why for r in reports)
    lines = [r.report for r in reports if r.report]
    assert lines[0] == 1 and len(lines) == 3                 # at 0.1 s, about 1.1 s and 2.1 s
    held = throttle.prune(3.5)                               # the rest, once a second has passed
    assert sum(lines) + held["127.0.0.2"] == 29 == throttle.refused
    assert throttle.admit("127.0.0.2", 0, 5.0) is None       # the cool-off is over
    full = throttle.admit("127.0.0.2", 1, 5.0)                # one waits for its login already
    assert full.why.startswith("1 connections from it") and full.report == 1
    assert throttle.admit("127.0.0.2", 1, 5.5).report == 0   # held back...
    assert throttle.unreported() == {"127.0.0.2": 1} and throttle.unreported() == {}   # ...to the end
    assert throttle.prune(11.0) == {} and not throttle._addresses   # expired: forgotten


def test_connections_the_venue_closes_when_it_stops_are_not_failed_logins(make_venue, caplog):
    venue = make_venue(login_failures=1)
    with dial(venue) as sock, caplog.at_level(logging.WARNING, "mm_core.venue"):
        wait_for(lambda: open_count(venue) == 1)
        venue.stop()
        assert answer(sock) == b""
    assert not venue.throttle._addresses
    assert not any("without a login" in r.getMessage() for r in caplog.records)


def test_a_flood_from_more_addresses_than_it_tracks_is_counted_and_memory_stays_bounded():
    throttle = LoginThrottle(max_pending=1, failures=2, window=10.0, cooloff=5.0, max_addresses=3)
    for i in range(10):                                       # ten addresses fail once each
        assert not throttle.failed(f"127.0.1.{i}", 0.0)
    assert len(throttle._addresses) == 3 and throttle.untracked == 7
    assert throttle.failed("127.0.1.0", 1.0)                  # a tracked one is still throttled
    assert throttle.admit("127.0.1.0", 0, 1.5).why.startswith("cooling off")
    untracked = throttle.admit("127.0.1.9", 1, 1.5)           # untracked: the pending bound still holds
    assert untracked.why.startswith("1 connections from it") and untracked.report == 0
    assert throttle.admit("127.0.1.9", 0, 1.5) is None
    assert throttle.untracked == 8 and throttle.refused == 2
    assert throttle.untracked_report(1.6) == 8 and throttle.untracked_report(1.7) == 0   # once a second
    assert not throttle.failed("127.0.1.8", 2.0) and throttle.untracked_report(2.0) == 0
    assert throttle.untracked_report(2.0, final=True) == 1    # the run's end names the rest
    throttle.prune(20.0)                                      # the window and cool-off passed: room again
    assert not throttle._addresses
    assert not throttle.failed("127.0.1.9", 20.0) and "127.0.1.9" in throttle._addresses
