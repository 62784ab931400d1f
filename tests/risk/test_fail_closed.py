"""The fail-closed matrix: every fault in mm_core.risk.faults denies the probe order, latches the
configured state and lets cancels through; clearing it plus an operator re-enable restores trading."""
from __future__ import annotations

import pytest

from mm_core.risk import CheckId, FaultsActive, RiskGateway, TradingState
from mm_core.risk.faults import FAULTS, MarketFeed
from mm_core.types import Side
from tests.risk.conftest import FAIR, MS, T0, cancel, make_gateway, order

FEED = MarketFeed(1, FAIR, FAIR)


@pytest.mark.parametrize("latch", ["HALTED", "REDUCING"])
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_denies_latches_and_keeps_cancels(fault, latch):
    gw = make_gateway(latch_state=latch)
    assert gw.check(order(), T0).allowed
    now = fault.inject(gw, FEED, T0 + 100 * MS)
    probe = fault.probe(order(price=FAIR - 1))
    decision = gw.check(probe, now)
    assert not decision.allowed
    assert decision.check is fault.check, decision
    expected = fault.latches_to or TradingState[latch]
    assert gw.state is expected and decision.state is expected
    events = gw.drain_events()
    assert [(e.from_state, e.to_state) for e in events] == [(TradingState.ACTIVE, expected)]
    assert events[0].reason_code in (fault.check, CheckId.KILLED, CheckId.EXECUTION_THROTTLE)
    assert gw.check(cancel(), now).allowed
    # a reducing order is refused too while the fault is present (nothing goes out on a fault)
    if fault.check not in (CheckId.TRADING_HALTED, CheckId.EXECUTION_THROTTLE, CheckId.INTERNAL_ERROR):
        gw.on_position(1, 500, now)
        assert not gw.check(order(side=Side.SELL, price=FAIR - 2), now).allowed
        gw.on_position(1, 0, now)

    later = now + 100 * MS
    fault.clear(gw, FEED, later)
    FEED.refresh(gw, later)
    assert not gw.check(order(price=FAIR - 3), later).allowed     # still latched
    gw.operator_enable("risk-officer", f"{fault.name} cleared", later)
    assert gw.state is TradingState.ACTIVE
    assert gw.check(order(price=FAIR - 4), later).allowed


@pytest.mark.parametrize("fault", [f for f in FAULTS if f.check in (
    CheckId.JOURNAL_UNHEALTHY, CheckId.CLOCK_NONCOMPLIANT, CheckId.UNRECONCILED,
    CheckId.UNKNOWN_OUTCOME, CheckId.BOOK_STALE)], ids=lambda f: f.name)
def test_operator_cannot_enable_while_fault_active(fault):
    gw = make_gateway()
    now = fault.inject(gw, FEED, T0)
    with pytest.raises(FaultsActive) as info:
        gw.operator_enable("risk-officer", "too early", now)
    assert fault.check.label in info.value.faults
    assert gw.state is TradingState.HALTED


def test_reducing_latch_allows_reducing_orders_after_fault_clears():
    gw = make_gateway(latch_state="REDUCING")
    gw.on_position(1, 300, T0)
    gw.on_clock(False, T0 + 1)
    assert gw.state is TradingState.REDUCING
    assert not gw.check(order(side=Side.SELL, qty=100), T0 + 1).allowed   # fault still active
    gw.on_clock(True, T0 + 2)
    assert gw.check(order(side=Side.SELL, qty=100), T0 + 2).allowed
    assert gw.check(order(side=Side.BUY, qty=100), T0 + 2).check is CheckId.REDUCE_ONLY


def test_gateway_starts_unreconciled_and_without_inputs():
    from mm_core.risk import Limits
    from tests.risk.conftest import limits_text
    gw = RiskGateway(Limits.from_toml(limits_text(start_reconciled=False)))
    assert set(gw.faults) == {"journal-unhealthy", "clock-noncompliant", "unreconciled"}
    decision = gw.check(order(), T0)
    assert not decision.allowed and decision.check is CheckId.JOURNAL_UNHEALTHY
    assert gw.state is TradingState.HALTED
    gw.on_journal_health(True, T0)
    gw.on_clock(True, T0)
    gw.on_market(1, FAIR, FAIR, False, T0)
    assert gw.check(order(), T0).check is CheckId.UNRECONCILED
    gw.on_reconciled(True, T0)
    gw.operator_enable("ops", "session start", T0)
    assert gw.check(order(), T0).allowed


def test_fresh_session_config_starts_reconciled():
    gw = make_gateway(start_reconciled=True)
    assert gw.faults == []


def test_internal_error_latches_and_names_the_exception():
    gw = make_gateway()
    decision = gw.check(order(qty="12"), T0)
    assert not decision.allowed and decision.check is CheckId.INTERNAL_ERROR
    assert decision.detail.startswith("TypeError")
    assert gw.state is TradingState.HALTED
    assert gw.check(cancel(), T0).allowed


def test_a_defect_while_cancelling_latches_but_the_cancel_passes():
    gw = make_gateway()
    decision = gw.check(cancel(), None)       # no time: the window arithmetic fails
    assert decision.allowed
    assert gw.state is TradingState.HALTED
    assert gw.drain_events()[0].reason_code == CheckId.INTERNAL_ERROR


def test_clock_timer_latches_without_an_order():
    gw = make_gateway(staleness={"max_clock_age_ms": 3000})
    gw.on_timer(T0 + 3000 * MS)
    assert gw.state is TradingState.ACTIVE
    gw.on_timer(T0 + 3000 * MS + 1)
    assert gw.state is TradingState.HALTED
    assert gw.drain_events()[0].reason_code == CheckId.CLOCK_STALE
    with pytest.raises(FaultsActive):
        gw.operator_enable("ops", "clock quiet", T0 + 3000 * MS + 1)
