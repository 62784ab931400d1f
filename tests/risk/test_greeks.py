"""Black–Scholes prices and Greeks against textbook values, put-call parity and finite
differences; the scenario grid and the per-contract units the gateway aggregates."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.risk import RiskError, bs_greeks, bs_price
from mm_core.risk.greeks import YEAR_NS, OptionParams, scenario_grid, underlying_risk, unit_risk


@pytest.mark.parametrize("args,call,put", [
    # Hull, Options Futures and Other Derivatives, example 15.6: c = 4.76, p = 0.81
    ((42.0, 40.0, 0.5, 0.2, 0.10), 4.76, 0.81),
    # the standard at-the-money case
    ((100.0, 100.0, 1.0, 0.2, 0.05), 10.4506, 5.5735),
])
def test_textbook_prices(args, call, put):
    spot, strike, years, vol, rate = args
    digits = 2 if call == 4.76 else 4
    assert round(bs_price(True, spot, strike, years, vol, rate), digits) == call
    assert round(bs_price(False, spot, strike, years, vol, rate), digits) == put


def test_textbook_greeks():
    # Hull's 100 000-call hedging example: S=49, K=50, r=5 %, sigma=20 %, 20 weeks
    price, delta, gamma, vega = bs_greeks(True, 49.0, 50.0, 20 / 52, 0.2, 0.05)
    assert round(price, 2) == 2.40
    assert round(delta, 3) == 0.522
    assert round(gamma, 3) == 0.066
    assert round(vega, 1) == 12.1
    _, delta, gamma, vega = bs_greeks(True, 100.0, 100.0, 1.0, 0.2, 0.05)
    assert (round(delta, 4), round(gamma, 5), round(vega, 3)) == (0.6368, 0.01876, 37.524)


positive = st.floats(min_value=5.0, max_value=500.0)


@settings(max_examples=200, deadline=None)
@given(spot=positive, strike=positive, years=st.floats(0.01, 3.0), vol=st.floats(0.05, 1.5),
       rate=st.floats(-0.02, 0.1))
def test_put_call_parity_and_greek_symmetry(spot, strike, years, vol, rate):
    c, dc, gc, vc = bs_greeks(True, spot, strike, years, vol, rate)
    p, dp, gp, vp = bs_greeks(False, spot, strike, years, vol, rate)
    assert c - p == pytest.approx(spot - strike * math.exp(-rate * years), abs=1e-9 * (spot + strike))
    assert dc - dp == pytest.approx(1.0, abs=1e-12)
    assert gc == pytest.approx(gp) and vc == pytest.approx(vp)
    assert 0.0 <= dc <= 1.0 and gc >= 0.0 and vc >= 0.0


@pytest.mark.parametrize("is_call", [True, False])
def test_greeks_match_finite_differences(is_call):
    spot, strike, years, vol, rate = 103.0, 100.0, 0.4, 0.3, 0.02
    _, delta, gamma, vega = bs_greeks(is_call, spot, strike, years, vol, rate)
    h = 1e-3
    price = lambda s=spot, v=vol: bs_price(is_call, s, strike, years, v, rate)  # noqa: E731
    assert delta == pytest.approx((price(spot + h) - price(spot - h)) / (2 * h), rel=1e-6)
    assert gamma == pytest.approx((price(spot + h) - 2 * price() + price(spot - h)) / h**2, rel=1e-4)
    assert vega == pytest.approx((price(v=vol + h) - price(v=vol - h)) / (2 * h), rel=1e-6)


def test_expired_options_are_worth_intrinsic_value():
    assert bs_greeks(True, 110.0, 100.0, 0.0, 0.2, 0.0) == (10.0, 1.0, 0.0, 0.0)
    assert bs_greeks(False, 110.0, 100.0, -1.0, 0.2, 0.0) == (0.0, 0.0, 0.0, 0.0)
    assert bs_greeks(False, 90.0, 100.0, 0.0, 0.2, 0.0) == (10.0, -1.0, 0.0, 0.0)


def test_non_positive_inputs_raise():
    with pytest.raises(RiskError):
        bs_greeks(True, 0.0, 100.0, 1.0, 0.2, 0.0)


def test_scenario_grid_and_unit_risk_units():
    grid = scenario_grid(3.0, 0.2, 1.0, 0.05)
    move = 3.0 * 0.2 * math.sqrt(1 / 365)
    assert len(grid) == 8 and (0.0, 0.0) not in grid
    assert (move, 0.05) in grid and (-move, -0.05) in grid
    params = OptionParams(2, 1, 1_000_000, YEAR_NS, 0.2, 0.05, True, 100)
    risk = unit_risk(params, 100.0, 0, grid)
    _, delta, gamma, vega = bs_greeks(True, 100.0, 100.0, 1.0, 0.2, 0.05)
    assert risk.delta == pytest.approx(100 * delta)
    assert risk.gamma == pytest.approx(100 * gamma * 1.0)          # per 1 % move of 100.0
    assert risk.vega == pytest.approx(100 * vega / 100)
    up = grid.index((move, 0.0))
    expected = (bs_price(True, 100.0 * (1 + move), 100.0, 1.0, 0.2, 0.05)
                - bs_price(True, 100.0, 100.0, 1.0, 0.2, 0.05)) * 100
    assert risk.scenario_pnl[up] == pytest.approx(expected)
    assert underlying_risk(100.0, grid).scenario_pnl[up] == pytest.approx(100.0 * move)


@pytest.mark.parametrize("bad", [
    {"strike": 0}, {"vol": 0.0}, {"vol": float("nan")}, {"rate": 2.0}, {"multiplier": 0},
    {"underlying_id": 2},
])
def test_option_params_validation(bad):
    fields = dict(symbol_id=2, underlying_id=1, strike=100, expiry_ns=1, vol=0.2, rate=0.0,
                  is_call=True, multiplier=1)
    fields.update(bad)
    with pytest.raises(RiskError):
        OptionParams(**fields).validate()
