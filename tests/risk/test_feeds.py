"""Input feeds: what each does to positions, working orders, Greeks and the trading state."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.risk import CheckId, RiskError, TradingState
from mm_core.risk.gateway_shared import REPRICE_NS
from mm_core.types import Side
from tests.risk.conftest import FAIR, MS, T0, limits_text, make_gateway, order

DAY_NS = 86_400 * 1_000_000_000


def _options(gw, underlying=1, first_option=2, count=1):
    for k in range(count):
        gw.on_option_params(first_option + k, underlying, FAIR, T0 + 30 * DAY_NS, 0.25, 0.01,
                            True, 100, T0)


def test_numpy_prices_are_accepted_and_bad_ones_mark_the_book_stale():
    gw = make_gateway()
    gw.on_market(1, np.float64(1_000_100.4), np.int64(FAIR), False, T0)
    assert gw.check(order(price=1_000_100), T0).allowed
    gw.on_market(1, float("inf"), FAIR, False, T0)
    assert gw.faults == ["book-stale"] and gw.state is TradingState.ACTIVE    # latches on an order
    assert gw.check(order(price=1_000_100), T0).check is CheckId.BOOK_STALE
    assert gw.state is TradingState.HALTED
    gw.on_market(1, FAIR, FAIR, False, T0)
    assert gw.faults == []


@pytest.mark.parametrize("side,qty,price", [
    (Side.BUY, 0, FAIR), (Side.SELL, -5, FAIR), (Side.BUY, 1.5, FAIR), (Side.BUY, 10, 0),
    (ord("Z"), 10, FAIR), (Side.BUY, True, FAIR),
])
def test_an_impossible_fill_latches_instead_of_being_booked(side, qty, price):
    gw = make_gateway(latch_state="REDUCING")
    gw.on_fill(1, side, qty, price, T0)
    assert gw.position(1) == 0
    assert gw.state is TradingState.REDUCING
    assert gw.drain_events()[0].reason_code == CheckId.INCONSISTENT_INPUT


def test_numpy_fill_is_booked():
    gw = make_gateway()
    gw.on_fill(1, Side.SELL, np.int64(30), np.int64(FAIR), T0)
    assert gw.position(1) == -30 and gw.state is TradingState.ACTIVE


def test_fills_book_cash_and_the_pnl_marks_to_fair():
    gw = make_gateway()
    gw.on_fill(1, Side.BUY, 100, 990_000, T0)
    assert gw.pnl == 100 * (FAIR - 990_000)
    gw.on_fill(1, Side.SELL, 100, 995_000, T0)
    assert gw.pnl == 100 * 5_000 and gw.position(1) == 0


def test_options_are_revalued_when_the_underlying_moves_a_basis_point_or_time_passes():
    gw = make_gateway(feeds=((1, FAIR, FAIR), (2, 50_000, 50_000)))
    _options(gw)
    gw.on_fill(2, Side.BUY, 10, 50_000, T0)
    delta = gw.greeks(1)[0]
    gw.on_market(1, FAIR + 99, FAIR, False, T0 + MS)           # < 1 bp: not worth a revaluation
    assert gw.greeks(1)[0] == delta
    gw.on_market(1, FAIR + 100, FAIR, False, T0 + 2 * MS)      # 1 bp
    moved = gw.greeks(1)[0]
    assert moved > delta
    gw.on_market(1, FAIR + 100, FAIR, False, T0 + 2 * MS + REPRICE_NS - 1)
    assert gw.greeks(1)[0] == moved
    gw.on_market(1, FAIR + 100, FAIR, False, T0 + 2 * MS + REPRICE_NS)   # time decay
    assert gw.greeks(1)[0] != moved


def test_groups_are_per_underlying_and_options_can_move_between_them():
    gw = make_gateway(feeds=((1, FAIR, FAIR), (5, FAIR, FAIR), (2, 50_000, 50_000)))
    _options(gw)
    gw.on_fill(2, Side.BUY, 10, 50_000, T0)
    assert gw.greeks(1)[0] > 0 and gw.greeks(5) == (0.0, 0.0, 0.0)
    gw.on_option_params(2, 5, FAIR, T0 + 30 * DAY_NS, 0.25, 0.01, True, 100, T0)
    assert gw.greeks(1)[0] == 0.0 and gw.greeks(5)[0] > 0


def test_option_params_are_validated():
    gw = make_gateway(feeds=((1, FAIR, FAIR), (2, 50_000, 50_000), (3, 50_000, 50_000)))
    with pytest.raises(RiskError):
        gw.on_option_params(2, 1, FAIR, T0 + DAY_NS, -0.2, 0.01, True)
    _options(gw)
    with pytest.raises(RiskError, match="itself an option"):
        gw.on_option_params(3, 2, FAIR, T0 + DAY_NS, 0.2, 0.01, True, 1, T0)


def test_new_limits_move_the_collar_bands():
    gw = make_gateway(collar={"fair_bps": 100})
    assert gw.check(order(price=FAIR + 10_000), T0).allowed
    gw.replace_limits(limits_text(version=2, collar={"fair_bps": 50}))
    decision = gw.check(order(price=FAIR + 5_001), T0)
    assert (decision.check, decision.value, decision.limit) == (CheckId.COLLAR_FAIR, 5_001, 5_000)
    assert decision.limits_version == 2


def test_on_order_done_is_idempotent_and_unknown_tokens_are_ignored():
    gw = make_gateway()
    intent = order()
    assert gw.check(intent, T0).allowed
    gw.on_order_done(intent.token, T0)
    gw.on_order_done(intent.token, T0)
    gw.on_order_done("never-sent", T0)
    assert gw.open_order_count == 0


def _option_group(caps, positions):
    """A gateway with symbol 1 and two options on it (2, 3) in one group, these Greek and
    scenario caps, and these positions in 1, 2, 3."""
    delta, gamma, vega, max_loss = caps
    gw = make_gateway(feeds=((1, FAIR, FAIR), (2, 50_000, 50_000), (3, 30_000, 30_000)),
                      greeks={"max_delta": delta, "max_gamma": gamma, "max_vega": vega},
                      scenario={"max_loss": max_loss})
    gw.on_option_params(2, 1, FAIR, T0 + 30 * DAY_NS, 0.25, 0.01, True, 100, T0)
    gw.on_option_params(3, 1, 950_000, T0 + 60 * DAY_NS, 0.35, 0.01, False, 100, T0)
    for symbol_id, position in zip((1, 2, 3), positions):
        gw.on_position(symbol_id, position, T0)
    return gw


@settings(max_examples=150, deadline=None)
@given(positions=st.lists(st.integers(-300, 300), min_size=3, max_size=3),
       caps=st.tuples(st.floats(1.0, 5e4), st.floats(1.0, 5e3), st.floats(1.0, 5e4),
                      st.integers(1, 200_000)),
       signed=st.integers(-2000, 2000), symbol=st.sampled_from([1, 2, 3]))
def test_greek_headroom_never_skips_a_binding_limit(positions, caps, signed, symbol):
    """The order path skips the exact Greeks and scenario checks below a symbol's headroom;
    whenever it does, the exact checks must agree that nothing binds."""
    gw = _option_group(caps, positions)
    sym = gw._symbols[symbol]
    if abs(signed) <= sym.headroom:
        assert gw._check_greeks(sym, sym.group, signed) is None


def _room(cap: float, level: float, unit: float) -> float:
    """The reference room of one bound: units of `unit` between |level| and cap."""
    unit = abs(unit)
    return (cap - abs(level)) / unit if unit else float("inf")


@settings(max_examples=150, deadline=None)
@given(positions=st.lists(st.integers(-300, 300), min_size=3, max_size=3),
       caps=st.tuples(st.floats(0.0, 5e4), st.floats(0.0, 5e3), st.floats(0.0, 5e4),
                      st.integers(0, 200_000)),
       move=st.integers(-5_000, 5_000))
def test_greek_headroom_is_each_bounds_room_bit_for_bit(positions, caps, move):
    """Every member's headroom, after positions move and after a revaluation, is exactly the
    least room of its delta, gamma, vega and scenario bounds, scaled down by 1e-9 (the refresh
    computes it inline: the same operations on the same values)."""
    gw = _option_group(caps, positions)
    for now in (T0, T0 + REPRICE_NS):
        if now != T0:
            gw.on_market(1, FAIR + move, FAIR, False, now)
        lim = gw._limits
        for symbol_id in (1, 2, 3):
            sym = gw._symbols[symbol_id]
            group, risk = sym.group, sym.risk
            want = (1.0 - 1e-9) * min(
                _room(lim.max_delta, group.delta, risk.delta), _room(lim.max_gamma, group.gamma, risk.gamma),
                _room(lim.max_vega, group.vega, risk.vega),
                _room(group.worst - gw._loss_floor, 0.0, max(abs(sym.pnl_lo), abs(sym.pnl_hi))))
            assert sym.headroom == want or (sym.headroom != sym.headroom and want != want)
