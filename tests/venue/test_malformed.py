"""Malformed client input: an unreadable token gets a Debug reply and never stops the venue;
a malformed Cancel/Modify is never answered with an OUCH Rejected (it names a live order)."""
from __future__ import annotations

import pytest

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue.client import ClientError
from tests.venue.test_server import connect, messages
from tests.venue.test_token_use import malformed_enter


def non_ascii_enter() -> bytes:
    enter = bytearray(ouch.encode(ouch.EnterOrder("GOOD", "B", 100, "ACME", 10_0000, 99999, "",
                                                  "Y", "P", "N", 0, "N", "R")))
    enter[1:15] = b"AB\xff" + b" " * 11
    return bytes(enter)


def test_non_ascii_token_gets_a_debug_reply_and_the_session_carries_on(make_venue):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.send(soupbintcp.UnsequencedData(non_ascii_enter()))
        reply = c.packet(3.0)
        assert isinstance(reply, soupbintcp.Debug) and "token" in reply.text
        c.enter("AFTER", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(c, 1)[0], ouch.Accepted)
    assert venue.running and any("malformed" in e for e in venue.protocol_errors)
    assert not any("internal error" in e for e in venue.protocol_errors)


def test_salvaged_frame_that_fails_cannot_stop_the_venue(make_venue):
    venue = make_venue()
    with connect(venue, "MM02") as bystander, connect(venue) as c:
        messages(bystander, 1)
        messages(c, 1)
        # one write: a bad order, then a zero length (framing garbage): the order is salvaged
        c.send_raw(soupbintcp.encode(soupbintcp.UnsequencedData(non_ascii_enter())) + b"\x00\x00")
        with pytest.raises(ClientError, match="closed"):
            for _ in range(5):
                c.packet(3.0)
        bystander.enter("STILL", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(bystander, 1)[0], ouch.Accepted)
    assert venue.running and venue.stop_reason == ""
    assert any("framing" in e for e in venue.protocol_errors)


@pytest.mark.parametrize("bad", ["modify", "cancel"])
def test_malformed_modify_or_cancel_never_rejects_the_live_order(make_venue, bad):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.enter("LIVE", "S", 300, "ACME", 10_0100)
        assert isinstance(messages(c, 1)[0], ouch.Accepted)
        if bad == "modify":
            raw = bytearray(ouch.encode(ouch.ModifyOrder("LIVE", "S", 100)))
            raw[15] = ord("Q")                        # side: not B/S/T/E
        else:
            raw = bytearray(ouch.encode(ouch.CancelOrder("LIVE", 0)))
            raw[5] = 0xE9                             # token: not ASCII
        c.send(soupbintcp.UnsequencedData(bytes(raw)))
        assert isinstance(c.packet(3.0), soupbintcp.Debug)
        assert c.drain(0.3) == []                     # nothing sequenced: no Rejected
        assert [o.token for o in venue.live_orders("MM01")] == ["LIVE"]
        c.order(ouch.CancelOrder("LIVE", 0))          # the order is still there to cancel
        assert isinstance(messages(c, 1)[0], ouch.Canceled)


def test_a_malformed_enter_is_rejected_under_its_token_as_the_codec_reads_it(make_venue):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.send(soupbintcp.UnsequencedData(malformed_enter("  T1")))    # leading spaces are text
        (rejected,) = messages(c, 1)
        assert isinstance(rejected, ouch.Rejected) and rejected.token == "  T1"
        c.enter("T1", "B", 100, "ACME", 10_0000)                       # another token: free
        (accepted,) = messages(c, 1)
        assert isinstance(accepted, ouch.Accepted) and accepted.token == "T1"
        c.enter("  T1", "B", 100, "ACME", 10_0000)                     # the spent one
        assert c.drain(0.5) == []
    assert [(i.token, i.why) for i in venue.ignored] == [("  T1", "duplicate token")]
