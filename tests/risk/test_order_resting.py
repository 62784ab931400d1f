"""RiskGateway.on_order_resting: reconciliation tells the gateway what of a known order rests at
the venue (its shares and price) before cancelling it; the gateway counts exactly that until the
venue answers, for exposure and self-trade prevention alike."""
from journal.catalogue import Side
from mm_core.risk.checks import CheckId
from mm_core.types import OrderKind
from tests.risk.conftest import FAIR, T0, make_gateway, order
from tests.risk.test_pending_changes import entered, replace, view


def test_the_venues_shares_and_price_replace_what_the_gateway_sent():
    gw = make_gateway()
    entered(gw, qty=300, price=FAIR + 100, side=Side.SELL, token="S1")
    gw.on_order_resting("S1", 200, FAIR + 40, T0)
    assert view(gw) == ({"S1": (1, False, 200, FAIR + 40)}, 0, 200, {}, {"S1": FAIR + 40})
    # a buy at the venue price would trade with it; one between it and the old price would not
    assert gw.check(order(price=FAIR + 40, token="B1"), T0).check is CheckId.SELF_TRADE
    assert gw.check(order(price=FAIR + 39, token="B2"), T0).allowed
    # the cancel is answered: nothing is left
    gw.on_order_done("S1", T0)
    assert view(gw) == ({"B2": (1, True, 100, FAIR + 39)}, 100, 0, {"B2": FAIR + 39}, {})


def test_no_shares_left_releases_it_and_an_unknown_token_changes_nothing():
    gw = make_gateway()
    entered(gw, token="A1")
    before = view(gw)
    gw.on_order_resting("XX", 100, FAIR, T0)
    assert view(gw) == before
    gw.on_order_resting("A1", 0, FAIR - 100, T0)
    assert view(gw) == ({}, 0, 0, {}, {})


def test_an_order_sent_immediate_or_cancel_that_rests_after_all_guards_its_price():
    gw = make_gateway()
    intent = order(qty=100, price=FAIR - 100, token="I1", tif=0)
    assert gw.check(intent, T0, "B").allowed
    assert gw._symbols[1].own_buys == {}            # an IOC never rests: no self-trade guard
    gw.on_order_resting("I1", 100, FAIR - 100, T0)
    assert gw._symbols[1].own_buys == {"I1": FAIR - 100}


def test_a_replace_in_flight_ends_as_confirmed():
    gw = make_gateway()
    entered(gw, qty=300, price=FAIR - 100, token="A1")
    replace(gw, "A1", "A2", 100, FAIR - 50)
    gw.on_order_resting("A2", 100, FAIR - 60, T0)
    assert view(gw) == ({"A2": (1, True, 100, FAIR - 60)}, 100, 0, {"A2": FAIR - 60}, {})
    assert gw.state_items()[1] == []                # no replace in flight any more


def test_a_price_that_is_not_a_positive_integer_latches_and_keeps_the_old_price():
    gw = make_gateway()
    entered(gw, qty=300, price=FAIR - 100, token="A1")
    for bad in (0, -5, 1.5, "x", None):
        gw.on_order_resting("A1", 300, bad, T0)
        assert gw.working_orders()["A1"] == (1, True, 300, FAIR - 100)
    assert gw.state.name == "HALTED" and "inconsistent" in " ".join(gw.latch_reasons).lower()
    # cancels still pass
    assert gw.check(order(kind=OrderKind.CANCEL, qty=0, token="A1"), T0).allowed
