"""Rule 201(b) at the venue itself: while a symbol is under the short sale price test, a short sale
(T) at or below the best bid is refused, never executed or displayed (an Enter gets Rejected 'X';
a Replace cancels its original as any invalid replace does); short exempt (E) and long sales (S)
pass, and so does a short sale above the best bid. Refused rather than re-priced: the venue's
rulebook (matching.py) says which."""
from __future__ import annotations

import pytest

from mm_core.protocol import itch, ouch
from mm_core.venue import matching as m, regsho
from mm_core.venue.client import MoldReceiver
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.venue.test_reg_sho import MONDAY, shifted
from tests.venue.test_replace_answers import two_users
from tests.venue.test_server import connect, messages


def restricted() -> m.MatchingEngine:
    e = m.MatchingEngine([m.Listing("ACME", 1), m.Listing("BOLT", 2)])
    e.enter("b", "BID", "ACME", "B", 100, 88_0000)
    e.enter("b", "BIDB", "BOLT", "B", 100, 88_0000)
    e.start_price_test("ACME")
    return e


@pytest.mark.parametrize("price", [88_0000, 87_0000])
def test_a_short_sale_at_or_below_the_best_bid_is_rejected_under_the_price_test(price):
    e = restricted()
    ev = e.enter("a", "SHORT", "ACME", "T", 100, price)
    assert ev == [m.Rejected("a", "SHORT", m.REJECT_INVALID_PRICE)]
    assert e.position("a") == {} and e.live_orders("a") == []


def test_exempt_long_and_higher_short_sales_and_other_symbols_are_not_refused():
    e = restricted()
    assert isinstance(e.enter("a", "ABOVE", "ACME", "T", 100, 88_0100)[0], m.Accepted)
    ev = e.enter("a", "EXEMPT", "ACME", "E", 10, 88_0000)
    assert [type(x).__name__ for x in ev][:2] == ["Accepted", "Executed"]
    ev = e.enter("a", "LONG", "ACME", "S", 10, 88_0000)
    assert [type(x).__name__ for x in ev][:2] == ["Accepted", "Executed"]
    ev = e.enter("a", "OTHER", "BOLT", "T", 10, 88_0000)            # no price test on BOLT
    assert [type(x).__name__ for x in ev][:2] == ["Accepted", "Executed"]


def test_a_replace_of_a_short_sale_down_to_the_best_bid_cancels_it_under_the_price_test():
    e = restricted()
    e.enter("a", "S1", "ACME", "T", 100, 88_0500)
    ev = e.replace("a", "S1", "S2", 100, 88_0000)
    assert [type(x).__name__ for x in ev] == ["Canceled", "BookCancel"]
    assert e.live_orders("a") == [] and e.position("a") == {}
    assert isinstance(e.enter("a", "S2", "ACME", "T", 100, 88_0100)[0], m.Accepted)   # token free


def test_the_venue_refuses_a_short_sale_at_the_best_bid_once_a_drop_starts_the_price_test(
        make_venue, receiver):
    venue = make_venue()
    with two_users(venue) as (a, b):
        b.enter("BID1", "B", 100, "ACME", 89_0000)
        messages(b, 1)
        a.enter("SELL1", "S", 100, "ACME", 89_0000, tif=ouch.TIF_IOC)     # >10% below the close
        messages(a, 2)
        messages(b, 1)
        receiver.run(None, lambda r: any(isinstance(x, itch.RegShoRestriction) and x.reg_sho_action == "1"
                                         for x in r.decoded()), 5.0)
        b.enter("BID2", "B", 100, "ACME", 88_0000)
        messages(b, 1)
        a.enter("SHORT1", "T", 100, "ACME", 88_0000)
        (answer,) = messages(a, 1)
        assert isinstance(answer, ouch.Rejected) and (answer.token, answer.reason) == ("SHORT1", "X")
        a.enter("SHORT2", "T", 100, "ACME", 88_0100)                     # above the best bid: rests
        (answer,) = messages(a, 1)
        assert isinstance(answer, ouch.Accepted) and answer.order_state == "L"
        assert b.drain(0.3) == []                                        # BID2 never traded
        assert venue.position("MM01") == {"ACME": -100}


def test_a_price_test_carried_from_the_previous_trading_day_is_enforced_from_the_start(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / regsho.RECORD).write_text("2026-03-06 ACME\n")              # Friday's drop
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session="RS00000009")
        with Venue(config, background_flow=False, clock=shifted(MONDAY)) as venue:
            with connect(venue, "MM01", 0) as a, connect(venue, "MM02", 0) as b:
                b.enter("BID1", "B", 100, "ACME", 95_0000)
                b.sequenced(1)
                a.enter("SHORT1", "T", 100, "ACME", 95_0000)
                a.enter("SHORT2", "T", 100, "BOLT", 40_0000)              # BOLT: no price test
                answers = [s.message for s in a.sequenced(2)]
    assert [(type(x).__name__, x.token) for x in answers] == [("Rejected", "SHORT1"), ("Accepted", "SHORT2")]
