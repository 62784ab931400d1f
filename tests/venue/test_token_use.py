"""A token is used once the venue has answered with it (Accepted, Replaced or Rejected), and
only then: the same rule whether the venue ran on or was SIGKILLed and started again, since a
restarted venue can only read back what its session logs say it answered (OUCH 4.2 tokens are
day-unique: a rejected Enter Order's token is spent, and a resend of it is ignored)."""
from __future__ import annotations

import json
import signal
import subprocess

import pytest

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue import matching as m
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.matching import Listing, MatchingEngine
from mm_core.venue.reference_matcher import ReferenceMatcher
from tests.venue.test_log_tail import start_process


def login(ports: dict, sequence: int) -> SoupClient:
    client = SoupClient(ports["host"], ports["ouch_port"])
    client.login("MM01", "mmaudit", sequence)
    return client


def malformed_enter(token: str) -> bytes:
    """An Enter Order whose side byte the codec refuses (its token is readable)."""
    raw = bytearray(ouch.encode(ouch.EnterOrder(token, "B", 100, "ACME", 10_0000, 99999, "",
                                                "Y", "P", "N", 0, "N", "R")))
    raw[15] = ord("Q")
    return bytes(raw)


def answers(client: SoupClient, expected: int) -> list[tuple[str, str]]:
    """The next `expected` sequenced messages (waiting up to 10 s), then any more that come
    within 0.5 s, as (kind, token)."""
    got = client.sequenced(expected, 10.0) + client.drain(0.5)
    return [(type(s.message).__name__, s.message.token) for s in got]


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)


@pytest.mark.parametrize("restart", [False, True], ids=["same-run", "after-sigkill-restart"])
def test_tokens_are_used_the_same_with_or_without_a_venue_restart(tmp_path, restart):
    logs = str(tmp_path / "logs")
    with MoldReceiver() as rx:
        proc = start_process(logs, rx.port)
        try:
            ports = json.loads(proc.stdout.readline())
            client = login(ports, 1)
            client.sequenced(1)                                     # start of day
            client.enter("FIRM1", "B", 100, "ACME", 10_0000, firm="XXXX")   # not MM01's firm
            client.send(soupbintcp.UnsequencedData(malformed_enter("BAD1")))
            client.enter("TICK1", "B", 100, "ACME", 10_0050)       # off ACME's $0.01 ticks
            client.enter("LIVE1", "B", 100, "ACME", 10_0000)
            client.order(ouch.ReplaceOrder("LIVE1", "ZERO1", 0, 10_0000, ouch.TIF_SYSTEM_HOURS,
                                           "Y", "N", 0))           # a replace to 0 cancels
            first = [(type(s.message).__name__, s.message.token, getattr(s.message, "reason", ""))
                     for s in client.sequenced(5)]
            assert first == [("Rejected", "FIRM1", "L"), ("Rejected", "BAD1", "O"),
                             ("Rejected", "TICK1", "X"), ("Accepted", "LIVE1", ""),
                             ("Canceled", "LIVE1", "U")]
            if restart:
                client.close()
                kill(proc)
                proc = start_process(logs, rx.port)
                ports = json.loads(proc.stdout.readline())
                client = login(ports, 0)
            with client:
                for token in ("FIRM1", "BAD1", "TICK1", "LIVE1", "ZERO1", "MARK"):
                    client.enter(token, "B", 100, "ACME", 10_0000)
                second = answers(client, 2)
        finally:
            kill(proc)
    # Every token the venue answered is spent; ZERO1 was never answered (its replace canceled
    # LIVE1, and the Canceled names LIVE1), so it is still free.
    assert second == [("Accepted", "ZERO1"), ("Accepted", "MARK")]


def test_a_refused_enter_reusing_a_live_token_never_rejects_the_live_order(tmp_path):
    """A wrong firm or a malformed field on an Enter Order whose token is already used is a
    duplicate (ignored), not a Rejected that would name the live order's token."""
    logs = str(tmp_path / "logs")
    with MoldReceiver() as rx:
        proc = start_process(logs, rx.port)
        try:
            ports = json.loads(proc.stdout.readline())
            with login(ports, 1) as client:
                client.sequenced(1)
                client.enter("LIVE2", "S", 100, "ACME", 1000_0000)   # far above the flow
                assert isinstance(client.sequenced(1)[0].message, ouch.Accepted)
                client.enter("LIVE2", "B", 100, "ACME", 10_0000, firm="XXXX")
                client.send(soupbintcp.UnsequencedData(malformed_enter("LIVE2")))
                replace = bytearray(ouch.encode(ouch.ReplaceOrder(
                    "NEXT", "LIVE2", 100, 10_0000, ouch.TIF_SYSTEM_HOURS, "Y", "N", 0)))
                replace[-6] = 0xFF                   # display: not ASCII; tokens readable
                client.send(soupbintcp.UnsequencedData(bytes(replace)))
                client.enter("NEXT", "B", 100, "ACME", 10_0000)
                assert answers(client, 1) == [("Accepted", "NEXT")]
                client.order(ouch.CancelOrder("LIVE2", 0))          # still live, still its own
                assert answers(client, 1) == [("Canceled", "LIVE2")]
        finally:
            kill(proc)


@pytest.mark.parametrize("make", [MatchingEngine, ReferenceMatcher], ids=["engine", "reference"])
def test_the_matchers_spend_exactly_the_tokens_they_answer_with(make):
    e = make([Listing("ACME", 1)])
    assert e.enter("a", "L1", "ACME", "B", 100, 10_0000)[0].token == "L1"
    assert [type(x).__name__ for x in e.replace("a", "L1", "Z1", 0, 10_0000)] == \
        ["Canceled", "BookCancel"]                    # answered with L1's Canceled
    assert isinstance(e.enter("a", "Z1", "ACME", "B", 100, 10_0000)[0], m.Accepted)
    assert isinstance(e.enter("a", "X1", "ACME", "B", 100, 10_0050)[0], m.Rejected)
    assert isinstance(e.enter("a", "X1", "ACME", "B", 100, 10_0000)[0], m.Ignored)
    assert isinstance(e.enter("b", "X1", "ACME", "B", 100, 10_0000)[0], m.Accepted)   # per owner


def test_a_server_side_reject_spends_the_token_once():
    e = MatchingEngine([Listing("ACME", 1)])
    assert e.reject("a", "F1", m.REJECT_FIRM) == [m.Rejected("a", "F1", m.REJECT_FIRM)]
    assert isinstance(e.reject("a", "F1", m.REJECT_FIRM)[0], m.Ignored)
    assert isinstance(e.enter("a", "F1", "ACME", "B", 100, 10_0000)[0], m.Ignored)
