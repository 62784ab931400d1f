"""What the venue answers to a replace the book cannot keep as it is: an IOC replacement never
rests (even one that only shrinks the order), and an invalid replace of a live order cancels it
and leaves the replacement token unused (OUCH Replace Order's rule), in both matchers and over
the wire, where the client's close-out list and reconciliation must agree with the book."""
from __future__ import annotations

import contextlib

import pytest

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue import matching as m, wire
from mm_core.venue.reference_matcher import ReferenceMatcher
from recovery.reconcile import venue_view
from tests.venue.test_server import connect, messages

MATCHERS = pytest.mark.parametrize("make", [m.MatchingEngine, ReferenceMatcher],
                                   ids=["engine", "reference"])


@contextlib.contextmanager
def two_users(venue):
    """MM01 and MM02 logged in to `venue`, each past its start of day."""
    with connect(venue, "MM01") as a, connect(venue, "MM02") as b:
        messages(a, 1)
        messages(b, 1)
        yield a, b


def kinds(events):
    return [type(e).__name__ for e in events]


def resting(e, owner: str) -> list[str]:
    """The tokens of `owner` resting in either matcher's book."""
    if isinstance(e, ReferenceMatcher):
        return [o["token"] for o in e.resting if o["owner"] == owner]
    return [o.token for o in e.live_orders(owner)]


@MATCHERS
def test_an_ioc_replace_that_only_shrinks_the_order_does_not_rest(make):
    e = make([m.Listing("ACME", 1)])
    e.enter("u1", "TOK1", "ACME", "B", 100, 100_0000, m.DAY, "FIRM")
    ev = e.replace("u1", "TOK1", "TOK2", 50, 100_0000, tif=m.IOC)
    assert kinds(ev) == ["BookCancel", "Replaced", "Canceled"]
    assert (ev[-1].token, ev[-1].shares, ev[-1].reason) == ("TOK2", 50, m.CANCEL_IOC)
    assert resting(e, "u1") == []
    later = e.enter("u2", "S1", "ACME", "S", 30, 100_0000, m.DAY, "OTHR")
    assert not [x for x in later if isinstance(x, m.Executed)]        # nothing of u1's is left


@MATCHERS
@pytest.mark.parametrize("shares, price", [(2_000_000, 100_0000), (50, 100_0050)],
                         ids=["shares-over-max", "price-off-tick"])
def test_an_invalid_replace_cancels_the_live_original_and_leaves_the_new_token_free(make, shares, price):
    e = make([m.Listing("ACME", 1)], max_shares=1_000_000)
    e.enter("u1", "TOK1", "ACME", "B", 100, 100_0000)
    ev = e.replace("u1", "TOK1", "TOK2", shares, price)
    assert kinds(ev) == ["Canceled", "BookCancel"]
    assert (ev[0].token, ev[0].shares, ev[0].reason) == ("TOK1", 100, m.CANCEL_USER)
    assert resting(e, "u1") == []
    assert isinstance(e.enter("u1", "TOK2", "ACME", "B", 10, 100_0000)[0], m.Accepted)


def test_refuse_replace_ignores_a_dead_original_or_a_used_replacement_token():
    e = m.MatchingEngine([m.Listing("ACME", 1)])
    e.enter("u1", "A", "ACME", "B", 100, 100_0000)
    e.enter("u1", "B", "ACME", "B", 100, 100_0000)
    assert kinds(e.refuse_replace("u1", "GONE", "C")) == ["Ignored"]
    assert kinds(e.refuse_replace("u1", "A", "B")) == ["Ignored"]
    assert len(e.live_orders("u1")) == 2


def test_an_ioc_replace_that_only_shrinks_is_dead_on_the_wire_and_in_every_view(make_venue):
    venue = make_venue()
    with two_users(venue) as (c, c2):
        c.enter("BUY1", "B", 300, "ACME", 100_0000)
        messages(c, 1)
        c.order(ouch.ReplaceOrder("BUY1", "BUY2", 200, 100_0000, ouch.TIF_IOC, "Y", "N", 0))
        rep, gone = messages(c, 2)
        assert isinstance(rep, ouch.Replaced) and rep.order_state == "D"
        assert isinstance(gone, ouch.Canceled) and (gone.token, gone.decrement_shares, gone.reason) == \
            ("BUY2", 200, "I")
        assert venue.live_orders("MM01") == []
        c2.enter("SELL1", "S", 50, "ACME", 100_0000, tif=ouch.TIF_IOC)
        messages(c2, 2)
        assert c.drain(0.3) == []                    # nothing of ours traded with it
        log = venue.session_messages("MM01")
    assert wire.open_orders(log) == {}
    view = venue_view(enumerate(log, 1))
    assert view.orders["BUY2"].leaves == 0 and view.orders["BUY1"].status == "replaced"


def test_an_invalid_replace_on_the_wire_cancels_the_original_and_the_token_is_reusable(make_venue):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.enter("LIVE1", "B", 100, "ACME", 10_0000)
        messages(c, 1)
        c.order(ouch.ReplaceOrder("LIVE1", "NEW1", 100, 10_0050, ouch.TIF_SYSTEM_HOURS, "Y", "N", 0))
        (canceled,) = messages(c, 1)
        assert isinstance(canceled, ouch.Canceled)
        assert (canceled.token, canceled.decrement_shares, canceled.reason) == ("LIVE1", 100, "U")
        c.enter("LIVE2", "B", 100, "ACME", 10_0000)
        messages(c, 1)
        # a Replace the codec refuses (display byte not ASCII) is an invalid replace too
        raw = bytearray(ouch.encode(ouch.ReplaceOrder("LIVE2", "NEW2", 100, 10_0000,
                                                      ouch.TIF_SYSTEM_HOURS, "Y", "N", 0)))
        raw[-6] = 0xFF
        c.send(soupbintcp.UnsequencedData(bytes(raw)))
        (canceled,) = messages(c, 1)
        assert (type(canceled), canceled.token, canceled.decrement_shares) == (ouch.Canceled, "LIVE2", 100)
        for token in ("NEW1", "NEW2"):
            c.enter(token, "B", 100, "ACME", 10_0000)
        assert [(type(x).__name__, x.token) for x in messages(c, 2)] == \
            [("Accepted", "NEW1"), ("Accepted", "NEW2")]
        assert venue.live_orders("MM01")[0].token == "NEW1"
