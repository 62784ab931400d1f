"""Two inputs of the gateway outside check(): an order reconciliation adopts (it exists at the venue
without having passed the checks) is counted as a confirmed order, marking and replace in flight
included; and the start of a trading day gives back the locates short sales used the day before."""
from __future__ import annotations

from mm_core.risk import CheckId
from mm_core.types import OrderKind, Side
from tests.risk.conftest import FAIR, T0, make_gateway, order

NO_BORROW = {"easy_to_borrow": [], "bona_fide_market_making": [], "locates": {"1": 300}}
DAY = 20_000          # days since 1970-01-01 (2024-10-04)


def sell(qty: int, above: int = 100, **kw):
    return order(side=Side.SELL, price=FAIR + above, qty=qty, **kw)


def test_an_adopted_order_counts_against_the_open_order_and_position_limits():
    gw = make_gateway(account={"max_open_orders": 2}, defaults={"max_position": 1_000})
    gw.on_order_adopted("R1", 1, Side.BUY, 600, FAIR - 100, now_ns=T0)
    assert gw.working_orders() == {"R1": (1, True, 600, FAIR - 100)}
    d = gw.check(order(qty=500, price=FAIR - 200), T0)        # 600 working + 500 > 1,000
    assert not d.allowed and d.check is CheckId.POSITION_LIMIT, d
    # it is ours: a sell that would trade with it is a self-trade
    d = gw.check(sell(100, above=-150, token="X1"), T0, "T")
    assert not d.allowed and d.check is CheckId.SELF_TRADE, d
    assert gw.check(order(qty=400, price=FAIR - 200), T0).allowed
    d = gw.check(order(qty=100, price=FAIR - 300), T0)
    assert not d.allowed and d.check is CheckId.MAX_OPEN_ORDERS, d
    gw.on_order_done("R1", T0)                                 # cancelled at the venue: released
    assert "R1" not in gw.working_orders()


def test_an_adopted_short_sale_holds_its_locate_and_a_long_one_does_not():
    gw = make_gateway(reg_sho=NO_BORROW)
    gw.on_position(1, 100, T0)
    gw.on_order_adopted("R1", 1, Side.SELL, 200, FAIR + 100, mark="T", now_ns=T0)
    d = gw.check(sell(101, above=200), T0, "T")
    assert not d.allowed and d.check is CheckId.LOCATE_REQUIRED and (d.value, d.limit) == (301, 300), d
    assert gw.check(sell(100, above=200), T0, "T").allowed
    gw.on_order_adopted("R2", 1, Side.SELL, 100, FAIR + 300, mark="S", now_ns=T0)   # long: covered
    d = gw.check(sell(1, above=400), T0, "S")       # the 100 owned are all working long now
    assert not d.allowed and d.check is CheckId.SALE_MARKING, d
    # a marking the venue did not give ("") counts as short
    gw.on_order_adopted("R3", 1, Side.SELL, 1, FAIR + 500, mark="", now_ns=T0)
    d = gw.check(sell(1, above=600), T0, "T")
    assert not d.allowed and d.check is CheckId.LOCATE_REQUIRED, d


def test_an_adopted_replacement_is_held_with_its_original_until_the_venue_answers():
    gw = make_gateway(reg_sho=NO_BORROW)
    ask = sell(100)
    assert gw.check(ask, T0, "T").allowed
    gw.on_order_adopted("R1", 1, Side.SELL, 250, FAIR + 200, mark="T", orig_token=ask.token, now_ns=T0)
    # counted with the original: the original's 100 may fill before the replacement rests 250
    assert gw.working_orders() == {"R1": (1, False, 350, FAIR + 200)}
    d = gw.check(sell(1, above=300), T0, "T")       # 100 left of the original + 250: over 300
    assert not d.allowed and d.check is CheckId.LOCATE_REQUIRED, d
    gw.on_order_done("R1", T0)                      # the venue refused the replace
    assert gw.working_orders() == {ask.token: (1, False, 100, FAIR + 100)}


def test_bad_adoption_input_latches_and_a_zero_size_counts_nothing():
    gw = make_gateway()
    gw.on_order_adopted("R0", 1, Side.BUY, 0, FAIR, now_ns=T0)
    assert gw.working_orders() == {} and gw.state.name == "ACTIVE"
    gw.on_order_adopted("R1", 1, Side.BUY, 100, -5, now_ns=T0)
    assert gw.working_orders() == {} and gw.state.name == "HALTED"


def used_up(gw, qty: int = 300):
    short = sell(qty)
    assert gw.check(short, T0, "T").allowed
    gw.on_fill(1, Side.SELL, qty, FAIR + 100, T0, token=short.token)
    d = gw.check(sell(1, above=200), T0, "T")
    assert not d.allowed and d.check is CheckId.LOCATE_REQUIRED, d


def test_a_new_trading_day_gives_back_the_locates_used_the_day_before():
    gw = make_gateway(reg_sho=NO_BORROW)
    gw.on_trading_day(DAY, T0)
    used_up(gw)
    gw.on_trading_day(DAY, T0)                      # the same day again (a venue restart): still used
    assert not gw.check(sell(1, above=200), T0, "T").allowed
    gw.on_trading_day(DAY - 1, T0)                  # never backwards
    assert not gw.check(sell(1, above=200), T0, "T").allowed
    gw.on_trading_day(DAY + 1, T0)
    assert gw.check(sell(300, above=200), T0, "T").allowed
    state = gw.state_items()
    gw.on_trading_day(DAY + 1, T0)
    assert gw.state_items() == state


def test_the_first_day_told_keeps_what_was_used_before_it():
    """Fills before any day was named may be that same day's: kept (fail closed)."""
    gw = make_gateway(reg_sho=NO_BORROW)
    used_up(gw)
    gw.on_trading_day(DAY, T0)
    assert not gw.check(sell(1, above=200), T0, "T").allowed
    gw.on_trading_day(DAY + 1, T0)
    assert gw.check(sell(1, above=200), T0, "T").allowed
