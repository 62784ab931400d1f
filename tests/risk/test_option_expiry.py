"""Option expiries are bounded where an option is declared (mm_core.risk.greeks.MAX_EXPIRY_DAYS
after the declaration at most, and after it) and where the symbols file is read: an expiry far in
the future, in the past or not a time at all made a revaluation overflow, which latched the
gateway at the first price. Within the bounds, the extremes of every other field revalue finitely."""
from __future__ import annotations

import math

import pytest

from mm_core.config import SymbolSpec, Symbols, EngineConfig
from mm_core.engine import Engine, EngineError
from mm_core.risk import Limits, OptionParams, RiskError, RiskGateway
from mm_core.risk.greeks import MAX_EXPIRY_DAYS, scenario_grid, unit_risk
from tests.risk.conftest import FAIR, MS, T0, healthy, limits_text, order

DAY = 86_400 * 10**9
MODES = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])


def gateway(compiled: bool) -> RiskGateway:
    gw = RiskGateway(Limits.from_toml(limits_text()), compiled=compiled)
    return healthy(gw, T0, ((1, FAIR, FAIR), (2, 50_000, 50_000)))


@MODES
@pytest.mark.parametrize("expiry, message", [
    (T0 + MAX_EXPIRY_DAYS * DAY + 1, r"expiry_ns \d+ is 7300 days from now_ns \d+: must be within \(0, 7300\]"),
    (T0 + 100 * 365 * DAY, r"is 36500 days from now_ns"),
    (T0, r"is 0 days from now_ns"),                   # expires as it is declared
    (T0 - DAY, r"is -1 days from now_ns"),
    (10**30, "expiry_ns 10{30} is not a time in int64 ns since 1970"),
    (-1, "expiry_ns -1 is not a time in int64 ns"),
])
def test_an_expiry_out_of_bounds_is_refused_before_anything_is_declared(compiled, expiry, message):
    gw = gateway(compiled)
    with pytest.raises(RiskError, match=message.replace("10{30}", str(10**30))):
        gw.on_option_params(2, 1, FAIR, expiry, 0.3, -0.5, True, 1, T0)
    assert gw._groups == {} and gw._symbols[2].option is None
    gw.on_market(1, FAIR + 500, FAIR, False, T0 + MS)
    assert gw.state.name == "ACTIVE" and gw.check(order(symbol_id=1, price=FAIR + 1), T0 + MS).allowed


@MODES
@pytest.mark.parametrize("rate, vol", [(-0.999, 9.99), (0.999, 9.99), (-0.999, 0.01)])
def test_the_furthest_expiry_at_the_extremes_revalues_without_latching(compiled, rate, vol):
    gw = gateway(compiled)
    gw.replace_limits(limits_text(version=2, scenario={"spot_sigmas": 0.01, "horizon_days": 1.0}))
    gw.on_option_params(2, 1, FAIR, T0 + MAX_EXPIRY_DAYS * DAY, vol, rate, True, 1, T0)
    gw.on_market(1, FAIR + 500, FAIR, False, T0 + MS)
    assert gw.state.name == "ACTIVE" and not gw.drain_events()
    risk = gw._symbols[2].risk
    assert risk is not None and all(map(math.isfinite, (risk.delta, risk.gamma, risk.vega, *risk.scenario_pnl)))


def test_the_furthest_expiry_is_finite_at_any_time_a_revaluation_can_take():
    """Times are int64_t ns: an option declared at the bound and revalued at either end of them
    (a feed's time is whatever it says) still has finite numbers at the most negative rate."""
    params = OptionParams(2, 1, FAIR, (1 << 63) - 1, 9.99, -0.999, False)
    params.validate((1 << 63) - 1 - MAX_EXPIRY_DAYS * DAY)
    grid = scenario_grid(0.01, 9.99, 1.0, 0.05)
    risk = unit_risk(params, 100.0, 0, grid)
    assert all(map(math.isfinite, (risk.delta, risk.gamma, risk.vega, *risk.scenario_pnl)))


def test_an_engine_refuses_an_option_spec_past_the_bound():
    """A Symbols built without the file's checks: round(1e300 days in ns) raised OverflowError."""
    specs = (SymbolSpec("A", 1, FAIR, False, 0.3),
             SymbolSpec("AC", 2, FAIR, False, 0.3, True, 1, 1e300, True))
    gw = RiskGateway(Limits.from_toml(limits_text()))
    with pytest.raises(EngineError, match=r"option AC: expiry_days 1e\+300 outside \(0, 7300\]"):
        Engine(EngineConfig(), Symbols(specs, ()), gw)
