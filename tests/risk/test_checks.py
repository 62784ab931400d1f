"""One table row per pre-trade check: an order at the edge passes, one just past it is denied
with the check's id, value and limit."""
from __future__ import annotations

import math

import pytest

from mm_core.risk import CheckId, TradingState
from mm_core.risk.greeks import scenario_grid, unit_risk
from mm_core.types import OrderKind, Side
from tests.risk.conftest import FAIR, MS, T0, cancel, healthy, make_gateway, order

DAY_NS = 86_400 * 1_000_000_000
EXPIRY = T0 + 30 * DAY_NS


def assert_denied(decision, check, value, limit):
    assert not decision.allowed, decision
    assert (decision.check, decision.value, decision.limit) == (check, value, limit), decision
    assert decision.check_name == check.name.lower().replace("_", "-")


def assert_allowed(decision):
    assert decision.allowed and decision.check is CheckId.OK, decision


def test_missing_ids():
    gw = make_gateway()
    assert_allowed(gw.check(order(desk_id=0, trader_id=5), T0))
    for missing in ({"algo_id": 0}, {"client_id": 0}, {"desk_id": 0, "trader_id": 0}):
        assert_denied(gw.check(order(price=FAIR - len(missing), **missing), T0),
                      CheckId.MISSING_IDS, 0, 0)
    assert gw.state is TradingState.ACTIVE      # a bad order is not a fault


def test_invalid_order_fields():
    gw = make_gateway()
    assert_denied(gw.check(order(qty=0), T0), CheckId.INVALID_ORDER, 0, FAIR)
    assert_denied(gw.check(order(price=-5), T0), CheckId.INVALID_ORDER, 100, -5)
    assert gw.state is TradingState.ACTIVE


def test_max_order_qty():
    gw = make_gateway(symbols={"1": {"max_order_qty": 400}})
    assert_allowed(gw.check(order(qty=400), T0))
    assert_denied(gw.check(order(qty=401, price=FAIR - 1), T0), CheckId.MAX_ORDER_QTY, 401, 400)


def test_max_order_qty_scales_in_safe_mode():
    gw = make_gateway(defaults={"max_order_qty": 400})
    gw.set_safe_mode(True, "ops", "toxic flow", T0)
    assert gw.size_multiplier == 0.5 and gw.spread_multiplier == 2.0
    assert_allowed(gw.check(order(qty=200), T0))
    assert_denied(gw.check(order(qty=201), T0), CheckId.MAX_ORDER_QTY, 201, 200)


def test_max_order_value():
    gw = make_gateway(defaults={"max_order_value": 50_000})
    assert_allowed(gw.check(order(qty=500), T0))                      # 500 x 100.0000 = 50 000
    assert_denied(gw.check(order(qty=501, price=FAIR), T0 + 100 * MS), CheckId.MAX_ORDER_VALUE,
                  501 * FAIR, 50_000 * 10_000)


def test_collar_against_fair_value():
    gw = make_gateway(collar={"fair_bps": 100})
    high_bid = order(price=FAIR + 10_000)
    assert_allowed(gw.check(high_bid, T0))
    gw.on_order_done(high_bid.token, T0)        # else the sell below would cross it (self-trade)
    assert_allowed(gw.check(order(price=FAIR - 10_000, side=Side.SELL), T0, "T"))
    assert_denied(gw.check(order(price=FAIR + 10_001), T0), CheckId.COLLAR_FAIR, 10_001, 10_000)
    assert_denied(gw.check(order(price=FAIR - 10_001), T0), CheckId.COLLAR_FAIR, 10_001, 10_000)


def test_collar_against_reference_price():
    gw = make_gateway(feeds=((1, FAIR, 980_000),), collar={"reference_bps": 200})
    assert_allowed(gw.check(order(price=999_600), T0))                # 19 600 = 2 % of 98.0000
    assert_denied(gw.check(order(price=999_601), T0), CheckId.COLLAR_REFERENCE, 19_601, 19_600)


def test_collar_drift_of_own_prices_over_window():
    gw = make_gateway(collar={"drift_bps": 300, "reference_bps": 500, "drift_window_ms": 1000})
    assert_allowed(gw.check(order(price=990_000), T0))
    gw.on_market(1, 1_020_000, FAIR, False, T0 + 100 * MS)            # fair moves up 2 %
    assert_allowed(gw.check(order(price=1_020_000), T0 + 100 * MS))   # range 30 000 = 3 %
    assert_denied(gw.check(order(price=1_020_001), T0 + 100 * MS), CheckId.COLLAR_DRIFT,
                  30_001, 30_000)
    # Asks drift on their own: a sell far from the bids is not drift.
    assert_allowed(gw.check(order(price=1_030_000, side=Side.SELL), T0 + 100 * MS, "T"))
    # Once the first price leaves the window the range is measured afresh.
    gw.on_market(1, 1_020_000, FAIR, False, T0 + 1000 * MS)
    assert_allowed(gw.check(order(price=1_020_001), T0 + 1000 * MS))


@pytest.mark.parametrize("kind,key,check", [
    (OrderKind.ENTER, "max_submits", CheckId.MSG_RATE_SUBMIT),
    (OrderKind.REPLACE, "max_modifies", CheckId.MSG_RATE_MODIFY),
    (OrderKind.MODIFY, "max_modifies", CheckId.MSG_RATE_MODIFY),
])
def test_message_rate_sliding_window(kind, key, check):
    gw = make_gateway(rates={key: 5, "window_ms": 1000})
    for i in range(5):
        assert_allowed(gw.check(order(kind=kind, price=FAIR - i), T0 + i * MS))
    assert_denied(gw.check(order(kind=kind, price=FAIR - 9), T0 + 999 * MS), check, 6, 5)
    # The first message falls out of the window exactly one window after it was sent.
    assert_allowed(gw.check(order(kind=kind, price=FAIR - 9), T0 + 1000 * MS))


def test_cancels_always_pass_but_are_counted():
    gw = make_gateway(rates={"max_cancels": 3})
    for i in range(3):
        assert_allowed(gw.check(cancel(), T0 + i))
    over = gw.check(cancel(), T0 + 3)
    assert over.allowed and (over.check, over.value, over.limit) == (CheckId.MSG_RATE_CANCEL, 4, 3)
    # a modify to zero shares is a cancel too
    assert gw.check(order(kind=OrderKind.MODIFY, qty=0), T0 + 4).allowed


def test_repeated_execution_throttle_latches_until_operator():
    gw = make_gateway(throttle={"max_fills": 3, "window_ms": 1000}, latch_state="REDUCING")
    for i in range(3):
        gw.on_fill(1, Side.BUY, 1, FAIR, T0 + i * MS)
    assert_allowed(gw.check(order(), T0 + 3 * MS))
    gw.on_fill(1, Side.BUY, 1, FAIR, T0 + 4 * MS)
    assert gw.state is TradingState.HALTED           # throttle halts whatever the latch config
    assert_denied(gw.check(order(price=FAIR - 1), T0 + 5 * MS), CheckId.EXECUTION_THROTTLE, 4, 3)
    # Still halted after the fills leave the window: only an operator re-enables.
    healthy(gw, T0 + 2000 * MS)
    assert_denied(gw.check(order(price=FAIR - 2), T0 + 2000 * MS), CheckId.TRADING_HALTED, 0, 0)
    gw.operator_enable("risk-officer", "throttle reviewed", T0 + 2000 * MS)
    assert_allowed(gw.check(order(price=FAIR - 3), T0 + 2000 * MS))


def test_duplicate_order_window():
    gw = make_gateway(duplicate={"window_ms": 50})
    first = order()
    key = (first.symbol_id, True, first.price, first.qty)
    assert gw.duplicate_until(*key) == -1                       # nothing recorded yet
    assert_allowed(gw.check(first, T0))
    assert gw.duplicate_until(*key) == T0 + 50 * MS              # when the same enter passes again
    assert gw.duplicate_until(first.symbol_id, False, first.price, first.qty) == -1
    assert_denied(gw.check(order(), T0 + 50 * MS - 1), CheckId.DUPLICATE_ORDER, 50 * MS - 1, 50 * MS)
    again = order()
    assert_allowed(gw.check(again, T0 + 50 * MS))
    for done in (first, again):                 # else the sell at the same price is a self-trade
        gw.on_order_done(done.token, T0 + 50 * MS)
    sell = order(side=Side.SELL)
    assert_allowed(gw.check(sell, T0 + 50 * MS, "T"))    # other side is not a duplicate
    gw.on_order_done(sell.token, T0 + 50 * MS)
    # a replace back to recent terms is a modification, not a duplicate order
    assert_allowed(gw.check(order(kind=OrderKind.REPLACE, orig_token="T1"), T0 + 50 * MS))


def test_max_open_orders_counts_allowed_orders_until_done():
    gw = make_gateway(account={"max_open_orders": 4})
    tokens = [order(price=FAIR - i) for i in range(5)]
    for intent in tokens[:4]:
        assert_allowed(gw.check(intent, T0))
    assert_denied(gw.check(tokens[4], T0), CheckId.MAX_OPEN_ORDERS, 5, 4)
    gw.on_order_done(tokens[0].token, T0)
    assert gw.open_order_count == 3
    assert_allowed(gw.check(tokens[4], T0))


def test_position_limit_counts_working_orders_worst_case():
    gw = make_gateway(defaults={"max_position": 2000})
    gw.on_position(1, 1500, T0)
    assert_allowed(gw.check(order(qty=300, price=FAIR - 1), T0))      # working: +300
    assert_allowed(gw.check(order(qty=200), T0))                      # worst case 2000
    assert_denied(gw.check(order(qty=1, price=FAIR - 2), T0), CheckId.POSITION_LIMIT, 2001, 2000)
    # sells do not add to the long worst case
    assert_allowed(gw.check(order(qty=500, side=Side.SELL, price=FAIR + 1), T0, "T"))


def test_position_limit_on_replace_counts_the_original_and_the_replacement_until_answered():
    """The original may fill before the replace lands, and the venue then rests the replacement in
    full (its size is the replace's shares whatever filled): the worst case is the sum."""
    gw = make_gateway(defaults={"max_position": 1000})
    first = order(qty=600)
    assert_allowed(gw.check(first, T0))
    bigger = order(kind=OrderKind.REPLACE, qty=401, price=FAIR - 1, orig_token=first.token)
    assert_denied(gw.check(bigger, T0), CheckId.POSITION_LIMIT, 1001, 1000)
    replace = order(kind=OrderKind.REPLACE, qty=400, price=FAIR - 1, orig_token=first.token)
    assert_allowed(gw.check(replace, T0))
    assert gw.open_order_count == 1 and gw.working_orders()[replace.token][2] == 1000
    gw.on_order_confirmed(replace.token, 400, T0)        # OUCH Replaced: the original is gone
    again = order(kind=OrderKind.REPLACE, qty=600, price=FAIR - 2, orig_token=replace.token)
    assert_allowed(gw.check(again, T0))


def test_a_replace_in_flight_cannot_breach_the_position_limit_through_a_fill_of_its_original():
    """The review's case: cap 1000, a buy of 1000 replaced one tick up; if the original fills 999
    before the replace lands, the venue rests the full 1000 again: the replace must be refused."""
    gw = make_gateway(defaults={"max_position": 1000})
    first = order(qty=1000)
    assert_allowed(gw.check(first, T0))
    up = order(kind=OrderKind.REPLACE, qty=1000, price=FAIR + 100, orig_token=first.token)
    assert_denied(gw.check(up, T0), CheckId.POSITION_LIMIT, 2000, 1000)
    gw.on_fill(1, Side.BUY, 999, FAIR, T0, first.token)
    # 999 bought, 1 left of the original that may still fill, then the replacement in full
    assert_denied(gw.check(order(kind=OrderKind.REPLACE, qty=1, price=FAIR + 100,
                                 orig_token=first.token), T0), CheckId.POSITION_LIMIT, 1001, 1000)


def test_position_limit_refuses_an_order_that_flips_the_position_past_the_opposite_cap():
    gw = make_gateway(defaults={"max_order_qty": 10_000, "max_order_value": 50_000_000,
                                "max_position": 1000})
    gw.on_position(1, 1500, T0)                  # over the cap already (e.g. a lowered cap)
    assert_denied(gw.check(order(side=Side.SELL, qty=2900), T0), CheckId.POSITION_LIMIT, -1400, 1000)
    assert_denied(gw.check(order(side=Side.SELL, qty=3000), T0), CheckId.POSITION_LIMIT, -1500, 1000)
    assert_allowed(gw.check(order(side=Side.SELL, qty=2400), T0, "T"))   # -900: within the cap
    gw2 = make_gateway(defaults={"max_position": 1000})
    gw2.on_position(1, 1500, T0)
    assert_allowed(gw2.check(order(side=Side.SELL, qty=200), T0))      # reduces, still over




def _two_symbols(**sections):
    gw = make_gateway(feeds=((1, FAIR, FAIR), (2, FAIR, FAIR)), **sections)
    gw.on_position(1, 1000, T0)      # +100 000 currency
    gw.on_position(2, -500, T0)      # -50 000 currency
    return gw


def test_gross_notional():
    gw = _two_symbols(account={"max_gross_notional": 200_000})
    assert_allowed(gw.check(order(qty=500), T0))                      # 150 000 + 50 000
    assert_denied(gw.check(order(qty=1, price=FAIR - 1), T0), CheckId.GROSS_NOTIONAL,
                  2_001_000_000, 2_000_000_000)
    assert_allowed(gw.check(order(symbol_id=2, qty=400), T0))        # reduces the short


def test_net_notional():
    gw = _two_symbols(account={"max_net_notional": 120_000})
    assert_allowed(gw.check(order(qty=700), T0))                      # 170 000 - 50 000
    assert_denied(gw.check(order(qty=1, price=FAIR - 1), T0), CheckId.NET_NOTIONAL,
                  1_201_000_000, 1_200_000_000)


def _option_gateway(**sections):
    gw = make_gateway(feeds=((1, FAIR, FAIR), (2, 50_000, 50_000)), **sections)
    gw.on_option_params(2, 1, FAIR, EXPIRY, 0.25, 0.01, True, 100, T0)
    return gw


def _unit(spot=100.0, grid=()):
    from mm_core.risk.greeks import OptionParams
    return unit_risk(OptionParams(2, 1, FAIR, EXPIRY, 0.25, 0.01, True, 100), spot, T0, grid)


@pytest.mark.parametrize("greek,check,scale", [
    ("delta", CheckId.DELTA_LIMIT, 1), ("gamma", CheckId.GAMMA_LIMIT, 1),
    ("vega", CheckId.VEGA_LIMIT, 10_000),
])
def test_greeks_limits_per_underlying(greek, check, scale):
    per_contract = getattr(_unit(), greek)
    limit = 40 * per_contract                     # exactly 40 contracts' worth
    gw = _option_gateway(greeks={f"max_{greek}": limit})
    assert_allowed(gw.check(order(symbol_id=2, price=50_000, qty=40), T0))
    assert_denied(gw.check(order(symbol_id=2, price=50_001, qty=1), T0), check,
                  round(41 * per_contract * scale), round(limit * scale))


def test_delta_aggregates_underlying_shares_with_options():
    unit = _unit()
    gw = _option_gateway(greeks={"max_delta": 10_000.0}, defaults={"max_order_qty": 100_000})
    gw.on_fill(2, Side.BUY, 100, 50_000, T0)                 # 100 calls
    gw.on_position(1, -int(100 * unit.delta), T0)            # delta-hedged with shares
    delta, gamma, vega = gw.greeks(1)
    assert abs(delta) < 1.0
    assert gamma == pytest.approx(100 * unit.gamma) and vega == pytest.approx(100 * unit.vega)
    # selling shares adds short delta 1:1
    assert 0 <= delta < 1
    assert_allowed(gw.check(order(side=Side.SELL, qty=9_999), T0, "T"))
    # the working sell counts in the worst case: 9 999 + 2 more would be 10 001 short
    assert_denied(gw.check(order(side=Side.SELL, qty=2, price=FAIR - 1), T0, "T"),
                  CheckId.DELTA_LIMIT, round(delta - 10_001), 10_000)


def test_scenario_loss_limit_full_revaluation():
    grid = scenario_grid(3.0, 0.25, 1.0, 0.05)
    worst_per_short_call = -min(-p for p in _unit(grid=grid).scenario_pnl)   # loss per short
    max_loss = 10_000
    edge = math.floor(max_loss / worst_per_short_call)
    gw = _option_gateway(scenario={"max_loss": max_loss})
    sell = dict(symbol_id=2, side=Side.SELL, price=50_000)
    assert_allowed(gw.check(order(qty=edge, **sell), T0, "T"))
    decision = gw.check(order(qty=1, price=50_001, symbol_id=2, side=Side.SELL), T0, "T")
    assert_denied(decision, CheckId.SCENARIO_LOSS, round((edge + 1) * worst_per_short_call * 10_000),
                  max_loss * 10_000)


def test_drawdown_from_pnl_peak_allows_reducing_orders():
    gw = make_gateway(account={"max_drawdown": 1000}, collar={"fair_bps": 500, "reference_bps": 500})
    gw.on_position(1, 1000, T0)
    gw.on_market(1, 990_000, 990_000, False, T0 + 1)          # -1.0000 x 1000 = -1000
    assert_allowed(gw.check(order(price=990_000), T0 + 1))
    gw.on_market(1, 989_999, 989_999, False, T0 + 2)
    assert_denied(gw.check(order(price=989_990), T0 + 2), CheckId.DRAWDOWN, 10_001_000, 10_000_000)
    assert_allowed(gw.check(order(price=990_001, side=Side.SELL, qty=100), T0 + 2, "T"))


def test_restricted_symbol():
    gw = make_gateway(feeds=((1, FAIR, FAIR), (7, FAIR, FAIR)), account={"restricted": [7]})
    assert_allowed(gw.check(order(symbol_id=1), T0))
    assert_denied(gw.check(order(symbol_id=7), T0), CheckId.RESTRICTED_SYMBOL, 7, 0)


def test_market_data_age_edge():
    gw = make_gateway(staleness={"max_market_age_ms": 1000})
    assert_allowed(gw.check(order(), T0 + 1000 * MS))
    assert_denied(gw.check(order(price=FAIR - 1), T0 + 1000 * MS + 1), CheckId.MARKET_DATA_STALE,
                  1000 * MS + 1, 1000 * MS)
    assert gw.state is TradingState.HALTED


def test_clock_age_edge():
    gw = make_gateway(staleness={"max_clock_age_ms": 3000, "max_market_age_ms": 10_000})
    gw.on_market(1, FAIR, FAIR, False, T0 + 3000 * MS)
    assert_allowed(gw.check(order(), T0 + 3000 * MS))
    assert_denied(gw.check(order(price=FAIR - 1), T0 + 3000 * MS + 1), CheckId.CLOCK_STALE,
                  3000 * MS + 1, 3000 * MS)
    assert gw.state is TradingState.HALTED


def test_market_data_missing_for_symbol_and_option_underlying():
    gw = make_gateway()
    assert_denied(gw.check(order(symbol_id=9), T0), CheckId.MARKET_DATA_MISSING, 9, 0)
    gw = make_gateway(feeds=((2, 50_000, 50_000),))
    gw.on_option_params(2, 1, FAIR, EXPIRY, 0.25, 0.01, True, 100, T0)
    assert_denied(gw.check(order(symbol_id=2, price=50_000), T0), CheckId.MARKET_DATA_MISSING, 1, 0)


def test_reduce_only_in_reducing_state():
    gw = make_gateway(latch_state="REDUCING")
    gw.on_position(1, 100, T0)
    gw.on_journal_health(False, T0)
    gw.on_journal_health(True, T0)
    assert gw.state is TradingState.REDUCING
    assert_allowed(gw.check(order(side=Side.SELL, qty=100), T0, "T"))
    # the sell of 100 is working: one more share would flip the position
    assert_denied(gw.check(order(side=Side.SELL, qty=1, price=FAIR - 1), T0, "T"), CheckId.REDUCE_ONLY,
                  -1, 100)
    assert_denied(gw.check(order(side=Side.BUY, qty=1), T0), CheckId.REDUCE_ONLY, 101, 100)


def test_working_orders_shrink_on_partial_fills_and_leave_when_done():
    gw = make_gateway(defaults={"max_position": 1000})
    resting = order(qty=600)
    assert_allowed(gw.check(resting, T0))
    gw.on_fill(1, Side.BUY, 200, FAIR, T0, token=resting.token)      # position 200, working 400
    assert gw.position(1) == 200 and gw.open_order_count == 1
    assert_allowed(gw.check(order(qty=400, price=FAIR - 1), T0))      # 200 + 400 + 400 = 1000
    assert_denied(gw.check(order(qty=1, price=FAIR - 2), T0), CheckId.POSITION_LIMIT, 1001, 1000)
    gw.on_fill(1, Side.BUY, 400, FAIR, T0, token=resting.token)      # fully filled: leaves
    assert gw.open_order_count == 1 and gw.position(1) == 600
    assert_denied(gw.check(order(qty=1, price=FAIR - 3), T0), CheckId.POSITION_LIMIT, 1001, 1000)


def test_order_state_snapshot_replaces_the_working_view():
    from mm_core.risk import OpenOrder
    gw = make_gateway(defaults={"max_position": 1000})
    assert_allowed(gw.check(order(qty=900), T0))
    gw.on_order_state([OpenOrder("V1", 1, Side.BUY, FAIR, 100)], 0, T0)
    assert gw.open_order_count == 1
    assert_allowed(gw.check(order(qty=900, price=FAIR - 1), T0))      # 100 + 900
    assert_denied(gw.check(order(qty=1, price=FAIR - 2), T0), CheckId.POSITION_LIMIT, 1001, 1000)


def test_side_must_be_buy_or_sell():
    gw = make_gateway()
    assert_allowed(gw.check(order(side=ord("B")), T0))                 # the journal's u1 form
    decision = gw.check(order(side=ord("Z")), T0)
    assert_denied(decision, CheckId.INVALID_ORDER, 0, 0)
    assert "side" in decision.detail and gw.state is TradingState.ACTIVE


def test_self_trade_prevention():
    """An order that would execute against one of our own working orders is a wash trade: denied
    with our order's price as the limit, until that order is done; equal prices cross too."""
    gw = make_gateway()
    bid = order(price=FAIR - 100)
    ask = order(side=Side.SELL, price=FAIR + 100)
    assert_allowed(gw.check(bid, T0))
    assert_allowed(gw.check(ask, T0, "T"))
    assert_denied(gw.check(order(price=FAIR + 100), T0), CheckId.SELF_TRADE, FAIR + 100, FAIR + 100)
    assert_denied(gw.check(order(side=Side.SELL, price=FAIR - 150), T0, "T"), CheckId.SELF_TRADE,
                  FAIR - 150, FAIR - 100)
    # inside our own spread, and more of the same side at any price: no self-trade
    assert_allowed(gw.check(order(price=FAIR + 99), T0))
    assert_allowed(gw.check(order(price=FAIR - 500, qty=200), T0))
    # a replace moves the order: the new price counts at once; the replaced one until the venue
    # confirms the replace (refused, the original rests on at its price)
    moved = order(kind=OrderKind.REPLACE, side=Side.SELL, price=FAIR + 300, orig_token=ask.token)
    assert_allowed(gw.check(moved, T0, "T"))
    assert_denied(gw.check(order(price=FAIR + 250), T0), CheckId.SELF_TRADE, FAIR + 250, FAIR + 100)
    gw.on_order_confirmed(moved.token, moved.qty, T0)
    assert_allowed(gw.check(order(price=FAIR + 250), T0))
    assert_denied(gw.check(order(price=FAIR + 300, qty=300), T0), CheckId.SELF_TRADE,
                  FAIR + 300, FAIR + 300)
    # a partial fill keeps the rest working at its price; done (filled, cancelled) frees it
    gw.on_fill(1, Side.SELL, 50, FAIR + 300, T0, token=moved.token)
    assert_denied(gw.check(order(price=FAIR + 301, qty=300), T0), CheckId.SELF_TRADE,
                  FAIR + 301, FAIR + 300)
    gw.on_order_done(moved.token, T0)
    assert_allowed(gw.check(order(price=FAIR + 301, qty=300), T0))
    assert gw.state is TradingState.ACTIVE        # a refused wash trade is not a fault


def test_self_trade_prevention_after_resync():
    """on_order_state (reconciliation) rebuilds our working prices from the OMS snapshot."""
    from mm_core.risk import OpenOrder
    gw = make_gateway()
    assert_allowed(gw.check(order(side=Side.SELL, price=FAIR + 100), T0, "T"))
    gw.on_order_state([OpenOrder("R1", 1, Side.SELL, FAIR + 50, 100)], 0, T0)
    assert_allowed(gw.check(order(price=FAIR + 49), T0))          # the old sell at +100 is gone
    assert_denied(gw.check(order(price=FAIR + 60), T0), CheckId.SELF_TRADE, FAIR + 60, FAIR + 50)


def test_self_trade_prevention_ignores_our_ioc():
    """An IOC never rests: an order sent after it reaches the venue once it is gone."""
    gw = make_gateway()
    assert_allowed(gw.check(order(side=Side.SELL, price=FAIR - 100, tif=0), T0, "T"))
    assert_allowed(gw.check(order(price=FAIR - 100), T0))
    # and a resting bid still stops a later IOC that would reach it
    assert_denied(gw.check(order(side=Side.SELL, price=FAIR - 200, tif=0), T0, "T"), CheckId.SELF_TRADE,
                  FAIR - 200, FAIR - 100)


def _option_without_valuation():
    """An option whose valuation is gone while its underlying is priced and fresh (no feed leaves
    one so today: the check is the gateway's last line, so it is set here by hand)."""
    gw = _option_gateway()
    gw._symbols[2].risk = None
    return gw


def test_an_option_without_a_valuation_is_denied_under_its_own_id_and_latches():
    gw = _option_without_valuation()
    assert_denied(gw.check(order(symbol_id=2, price=50_000, qty=1), T0), CheckId.OPTION_PARAMS_MISSING, 2, 0)
    assert gw.state is TradingState.HALTED
    assert CheckId.OPTION_PARAMS_MISSING.label in gw.latch_reasons


def test_an_order_meeting_a_global_fault_also_latches_a_missing_valuation():
    gw = _option_without_valuation()
    gw.on_journal_health(False, T0)
    assert_denied(gw.check(order(symbol_id=2, price=50_000, qty=1), T0), CheckId.JOURNAL_UNHEALTHY, 0, 0)
    assert CheckId.OPTION_PARAMS_MISSING.label in gw.latch_reasons
