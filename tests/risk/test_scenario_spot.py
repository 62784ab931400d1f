"""A scenario grid whose down move takes the underlying to zero or below, where nothing has a price:
refused where the limits are read, where an option is declared and where new limits meet the
declared options, always before anything changes (a refused replace_limits leaves the old limits in
force everywhere, the C windows included); and a revaluation that fails anyway leaves its group
without a valuation and latches, instead of raising out of a market-data feed. Both gateway modes."""
from __future__ import annotations

import pytest

from mm_core.risk import CheckId, Limits, LimitsError, RiskGateway
from mm_core.risk import gateway_book
from mm_core.risk.gateway import RiskGateway as _Gateway
from mm_core.risk.greekbatch import GroupPricer
from tests.risk.conftest import FAIR, MS, T0, healthy, limits_text, order

DAY = 86_400 * 10**9
FEEDS = ((1, FAIR, FAIR), (2, 50_000, 50_000), (3, FAIR, FAIR))
# accepted on its own (10 sigmas x 0.3 x sqrt(30/365) = 0.86 at the default vol), but an option of
# vol 0.35 or more on an underlying moves it by 100 % or more
WIDE = {"spot_sigmas": 10.0, "vol_shift": 0.05, "horizon_days": 30.0, "max_loss": 1_000_000_000,
        "default_vol": 0.3}
MODES = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])


def gateway(compiled: bool, **sections) -> RiskGateway:
    gw = RiskGateway(Limits.from_toml(limits_text(**sections)), compiled=compiled)
    assert gw.compiled is compiled
    return healthy(gw, T0, FEEDS)


def declare(gw: RiskGateway, vol: float, symbol_id: int = 2, **kw) -> None:
    args = dict(strike=FAIR, expiry_ns=T0 + 30 * DAY, rate=0.0, now_ns=T0) | kw
    gw.on_option_params(symbol_id, 1, args["strike"], args["expiry_ns"], vol, args["rate"], True, 1,
                        args["now_ns"])


@pytest.mark.parametrize("scenario", [
    {"spot_sigmas": 10.0, "horizon_days": 365.0, "default_vol": 0.3},     # -300 %
    {"spot_sigmas": 5.0, "horizon_days": 365.0, "default_vol": 0.2},      # exactly -100 %: spot 0
    {"spot_sigmas": 100.0, "horizon_days": 3650.0, "default_vol": 10.0},  # the bounds of each field
])
def test_limits_whose_down_scenario_reaches_zero_are_refused_naming_the_fields(scenario):
    with pytest.raises(LimitsError) as info:
        Limits.from_toml(limits_text(scenario=scenario))
    assert info.value.field == "scenario.spot_sigmas"
    assert "horizon_days" in str(info.value) and "scenario.default_vol" in str(info.value)


def test_a_down_scenario_short_of_zero_is_accepted():
    lim = Limits.from_toml(limits_text(scenario={"spot_sigmas": 3.0, "horizon_days": 365.0,
                                                 "default_vol": 0.33}))        # -99 %
    assert lim.scenario_spot_sigmas == 3.0


@MODES
def test_an_option_whose_vol_breaks_the_grid_is_refused_before_it_is_declared(compiled):
    gw = gateway(compiled, scenario=WIDE)
    with pytest.raises(LimitsError) as info:
        declare(gw, 0.8)
    assert info.value.field == "scenario.spot_sigmas" and "option 2's vol 0.8" in str(info.value)
    assert gw._groups == {} and gw._symbols[2].option is None      # nothing of it declared
    gw.on_market(1, FAIR + 500, FAIR, False, T0 + 2 * 10**9)        # the underlying feeds on
    healthy(gw, T0 + 2 * 10**9, FEEDS)
    assert gw.check(order(symbol_id=1, price=FAIR + 1), T0 + 2 * 10**9).allowed
    declare(gw, 0.3)                       # one the grid can value is declared and valued
    assert gw._symbols[2].risk is not None and gw.scenario_worst_loss(1) == 0.0


@MODES
def test_limits_a_declared_option_refuses_leave_the_old_ones_in_force_everywhere(compiled):
    """The old limits, their rate window in C included, and their grid stay: the review's case of a
    replace that raised midway and left version 2 in force with version 1's windows."""
    gw = gateway(compiled, rates={"window_ms": 1000, "max_submits": 50, "max_modifies": 50,
                                  "max_cancels": 50})
    declare(gw, 0.8)
    grid = gw._groups[1].grid
    v2 = limits_text(version=2, rates={"window_ms": 1000, "max_submits": 3, "max_modifies": 3,
                                       "max_cancels": 50}, scenario=WIDE)
    with pytest.raises(LimitsError) as info:
        gw.replace_limits(v2)
    assert info.value.field == "scenario.spot_sigmas" and "option 2's vol 0.8" in str(info.value)
    assert gw.limits_version == 1 and gw.limits.max_submits == 50 and gw._groups[1].grid == grid
    decisions = [gw.check(order(symbol_id=1, price=FAIR + i, qty=1), T0 + 1 + i) for i in range(6)]
    assert [(d.check, d.limits_version) for d in decisions] == [(CheckId.OK, 1)] * 6
    gw.on_market(1, FAIR + 500, FAIR, False, T0 + 2 * 10**9)        # revalues on the old grid
    assert gw._symbols[2].risk is not None and gw.state.name == "ACTIVE"


@MODES
def test_a_failure_while_installing_puts_the_old_limits_back(compiled, monkeypatch):
    """Past the checks, a defect midway through installing (here: the first time the allowed
    decision is rebuilt) reinstalls the limits in force before: bands, rates, grid and version."""
    gw = gateway(compiled, collar={"fair_bps": 100})
    declare(gw, 0.3)
    grid = gw._groups[1].grid
    real, calls = _Gateway._refresh_allowed, []

    def fails_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("allowed decision")
        real(self)

    monkeypatch.setattr(_Gateway, "_refresh_allowed", fails_once)
    v2 = limits_text(version=2, collar={"fair_bps": 10}, rates={"window_ms": 1000, "max_submits": 3,
                                                                "max_modifies": 3, "max_cancels": 50},
                     scenario={"spot_sigmas": 1.0})
    with pytest.raises(LimitsError) as info:
        gw.replace_limits(v2)
    assert "MemoryError" in str(info.value) and "version 1 stays in force" in str(info.value)
    assert gw.limits_version == 1 and gw._groups[1].grid == grid
    # FAIR + 5000 is inside version 1's fair collar (100 bps), outside version 2's (10 bps)
    decisions = [gw.check(order(symbol_id=1, price=FAIR + 5000 + i, qty=1), T0 + 1 + i) for i in range(5)]
    assert [(d.check, d.limits_version) for d in decisions] == [(CheckId.OK, 1)] * 5
    assert gw.compiled is compiled


def failing_revaluation(monkeypatch) -> None:
    """Every revaluation fails: the C defers to the reference, which raises OverflowError (as an
    expiry 10^30 ns away at a negative rate did, before validation bounded expiries)."""
    def overflow(*args):
        raise OverflowError("math range error")

    monkeypatch.setattr(GroupPricer, "revalue", lambda self, spot, now_ns: None)
    monkeypatch.setattr(gateway_book, "unit_risk", overflow)


@MODES
@pytest.mark.parametrize("feed", ["on_market", "on_markets"])
def test_a_revaluation_that_fails_leaves_its_group_unvalued_and_latches(compiled, feed, monkeypatch):
    gw = RiskGateway(Limits.from_toml(limits_text()), compiled=compiled)
    healthy(gw, T0, ((3, FAIR, FAIR),))
    failing_revaluation(monkeypatch)
    declare(gw, 0.3)                               # declared before the underlying's first price
    gw.drain_events()
    now = T0 + MS
    if feed == "on_market":
        gw.on_market(1, FAIR, FAIR, False, now)    # raised OverflowError out of the feed
    else:
        gw.on_markets([1], [float(FAIR)], [FAIR], [now])
    gw.on_market(2, 50_000, 50_000, False, now)
    assert gw._symbols[1].risk is None and gw._symbols[2].risk is None
    events = gw.drain_events()
    assert gw.state.name == "HALTED" and [e.reason_code for e in events] == [CheckId.INTERNAL_ERROR]
    assert "revaluing 1: OverflowError" in events[0].reason
    healthy(gw, now, ((1, FAIR, FAIR), (2, 50_000, 50_000), (3, FAIR, FAIR)))
    gw.operator_enable("risk.officer", "checked", now)
    # another symbol trades on; the group's orders are denied, the underlying's too
    assert gw.check(order(symbol_id=3, price=FAIR, qty=1), now).allowed
    for symbol_id, price in ((1, FAIR), (2, 50_000)):
        d = gw.check(order(symbol_id=symbol_id, price=price, qty=1), now)
        assert not d.allowed and d.check is CheckId.OPTION_PARAMS_MISSING, d
    gw.on_market(1, FAIR + 500, FAIR, False, now + 2 * 10**9)     # the next revaluation fails alike
    assert gw._symbols[1].risk is None
