"""The fail-closed matrix: every fault in mm_core.risk.faults denies the probe order, latches the
configured state and lets cancels through; clearing it plus an operator re-enable restores trading.
The latch policy: on-report faults latch at once; on-order faults latch only when an order hits
them, and clear by themselves when no order did."""
from __future__ import annotations

import pytest

from mm_core.risk import CheckId, FaultsActive, InvalidTransition, RiskGateway, TradingState
from mm_core.risk.faults import FAULTS, LATCH_POLICY, RELEASED_ON_CLEAR, Latch, MarketFeed
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
    if fault.check in RELEASED_ON_CLEAR:       # a clean reconciliation releases its own latch
        assert gw.state is TradingState.ACTIVE and gw.latch_reasons == []
        assert [(e.to_state, e.reason_code) for e in gw.drain_events()] == [
            (TradingState.ACTIVE, fault.check)]
        assert gw.check(order(price=FAIR - 3), later).allowed
        return
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
    latched = fault.latch is Latch.ON_REPORT
    assert gw.state is (TradingState.HALTED if latched else TradingState.ACTIVE)


ON_ORDER = [f for f in FAULTS if f.latch is Latch.ON_ORDER]
ON_REPORT = [f for f in FAULTS if f.latch is Latch.ON_REPORT]


@pytest.mark.parametrize("fault", ON_ORDER, ids=[f.name for f in ON_ORDER])
def test_transient_fault_denies_while_active_and_resumes_by_itself(fault):
    gw = make_gateway()
    now = fault.inject(gw, FEED, T0 + 100 * MS)
    assert gw.state is TradingState.ACTIVE and gw.drain_events() == []     # reported: not latched
    assert gw.check(cancel(), now).allowed
    later = now + 100 * MS
    fault.clear(gw, FEED, later)
    FEED.refresh(gw, later)
    assert gw.faults == []
    decision = gw.check(order(price=FAIR - 5), later)
    assert decision.allowed and decision.state is TradingState.ACTIVE


@pytest.mark.parametrize("fault", ON_REPORT, ids=[f.name for f in ON_REPORT])
def test_must_latch_faults_latch_on_report(fault):
    gw = make_gateway()
    now = fault.inject(gw, FEED, T0 + 100 * MS)
    if fault.name == "check-exception":      # the report is the defect hit by the probe itself
        gw.check(fault.probe(order()), now)
    assert gw.state is (fault.latches_to or TradingState.HALTED)
    fault.clear(gw, FEED, now + MS)
    FEED.refresh(gw, now + MS)
    released = fault.check in RELEASED_ON_CLEAR                              # by itself, when alone
    assert gw.check(order(price=FAIR - 6), now + MS).allowed is released     # else still latched


@pytest.mark.parametrize("other", [f for f in ON_REPORT if f.check not in RELEASED_ON_CLEAR],
                         ids=lambda f: f.name)
def test_clean_reconciliation_keeps_a_latch_from_before_the_restart(other):
    """Another latch in force (e.g. the throttle before the crash) survives a clean
    reconciliation: the unreconciled reason goes, the state stays latched for the operator."""
    gw = make_gateway()
    now = other.inject(gw, FEED, T0 + 100 * MS)
    if other.name == "check-exception":
        gw.check(other.probe(order()), now)
    other.clear(gw, FEED, now + MS)
    gw.on_reconciled(False, now + 2 * MS)           # recovery begins: not reconciled
    latched = gw.state
    assert latched in (TradingState.HALTED, TradingState.REDUCING)
    assert gw.latch_reasons[-1] == CheckId.UNRECONCILED.label and len(gw.latch_reasons) == 2
    gw.drain_events()
    gw.on_reconciled(True, now + 3 * MS)            # clean
    assert gw.state is latched and gw.drain_events() == []
    assert CheckId.UNRECONCILED.label not in gw.latch_reasons and gw.latch_reasons
    FEED.refresh(gw, now + 3 * MS)
    assert not gw.check(order(price=FAIR - 8), now + 3 * MS).allowed
    gw.operator_enable("risk-officer", "looked at it", now + 3 * MS)
    assert gw.state is TradingState.ACTIVE and gw.latch_reasons == []


@pytest.mark.parametrize("latch", ["HALTED", "REDUCING"])
def test_clean_reconciliation_after_a_restart_resumes_by_itself(latch):
    gw = make_gateway(latch_state=latch)
    gw.on_reconciled(False, T0 + MS)
    assert gw.state is TradingState[latch] and gw.latch_reasons == [CheckId.UNRECONCILED.label]
    gw.drain_events()
    gw.on_reconciled(True, T0 + 2 * MS)
    [change] = gw.drain_events()
    assert (change.from_state, change.to_state, change.reason_code, change.actor) == (
        TradingState[latch], TradingState.ACTIVE, CheckId.UNRECONCILED, "reconciliation")
    assert "reconciled" in change.reason
    FEED.refresh(gw, T0 + 2 * MS)
    assert gw.check(order(), T0 + 2 * MS).allowed
    gw.on_reconciled(True, T0 + 3 * MS)             # again: nothing more to release
    assert gw.drain_events() == []


def test_an_order_denied_while_unreconciled_latches_the_stale_book_it_met_too():
    """Unreconciled (latched at once) and a stale book on the order's symbol: the order is denied
    for the first, and it met the second, an on-order fault, so a clean reconciliation later
    releases only its own reason and the state stays latched for the operator."""
    gw = make_gateway()
    gw.on_reconciled(False, T0 + MS)
    gw.on_market(1, FAIR, FAIR, True, T0 + 2 * MS)            # a gap on symbol 1
    decision = gw.check(order(), T0 + 3 * MS)
    assert not decision.allowed and decision.check is CheckId.UNRECONCILED
    assert set(gw.latch_reasons) == {CheckId.UNRECONCILED.label, CheckId.BOOK_STALE.label}
    gw.on_market(1, FAIR, FAIR, False, T0 + 4 * MS)           # the gap filled
    gw.drain_events()
    gw.on_reconciled(True, T0 + 5 * MS)
    assert gw.state is TradingState.HALTED and gw.drain_events() == []
    assert gw.latch_reasons == [CheckId.BOOK_STALE.label]
    assert not gw.check(order(price=FAIR - 3), T0 + 5 * MS).allowed


def test_every_fault_check_has_a_latch_policy():
    from mm_core.risk.gateway import FAULT_CHECKS
    assert {check for _, check in FAULT_CHECKS} <= set(LATCH_POLICY)
    assert {f.check for f in FAULTS if f.check is not CheckId.TRADING_HALTED} <= set(LATCH_POLICY)


def test_stale_book_denies_only_its_own_symbol():
    gw = make_gateway(feeds=((1, FAIR, FAIR), (2, FAIR // 2, FAIR // 2)))
    gw.on_market(2, FAIR // 2, FAIR // 2, True, T0 + MS)
    assert gw.faults == ["book-stale"] and gw.state is TradingState.ACTIVE
    assert gw.check(order(symbol_id=1), T0 + MS).allowed        # the fresh book still trades
    decision = gw.check(order(symbol_id=2, price=FAIR // 2), T0 + MS)
    assert not decision.allowed and decision.check is CheckId.BOOK_STALE and decision.value == 2
    assert gw.state is TradingState.HALTED                      # an order hit the fault: latched
    gw.on_market(2, FAIR // 2, FAIR // 2, False, T0 + 2 * MS)
    assert gw.faults == []
    assert not gw.check(order(symbol_id=1, price=FAIR - 7), T0 + 2 * MS).allowed


def test_reducing_latch_allows_reducing_orders_after_fault_clears():
    gw = make_gateway(latch_state="REDUCING")
    gw.on_position(1, 300, T0)
    gw.on_clock(False, T0 + 1)
    assert gw.state is TradingState.ACTIVE                                # transient: not yet
    assert not gw.check(order(side=Side.SELL, qty=100), T0 + 1).allowed   # fault still active
    assert gw.state is TradingState.REDUCING                              # an order hit it
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


def test_clock_timer_reports_a_silent_clock_as_a_fault_without_latching():
    gw = make_gateway(staleness={"max_clock_age_ms": 3000})
    gw.on_timer(T0 + 3000 * MS)
    assert gw.faults == []
    quiet = T0 + 3000 * MS + 1
    gw.on_timer(quiet)
    assert gw.faults == ["clock-stale"] and gw.state is TradingState.ACTIVE
    with pytest.raises(FaultsActive) as info:
        gw.operator_enable("ops", "clock quiet", quiet)
    assert info.value.faults == ["clock-stale"]
    gw.on_market(1, FAIR, FAIR, False, quiet)
    decision = gw.check(order(), quiet)
    assert not decision.allowed and decision.check is CheckId.CLOCK_STALE
    assert decision.value == 3000 * MS + 1 and decision.limit == 3000 * MS
    assert gw.state is TradingState.HALTED
    assert gw.drain_events()[0].reason_code == CheckId.CLOCK_STALE
    gw.on_clock(True, quiet + 1)
    assert gw.faults == [] and gw.state is TradingState.HALTED


def test_an_enable_refused_while_trading_does_not_reset_the_throttle():
    """Found by the stateful model: operator enable cleared the fill window before the transition,
    so an enable refused as invalid (already ACTIVE) let the next fills start a fresh window."""
    gw = make_gateway(throttle={"max_fills": 20})
    now = T0 + MS
    FEED.refresh(gw, now)
    for _ in range(20):
        gw.on_fill(1, Side.BUY, 1, FAIR, now)
    assert gw.state is TradingState.ACTIVE
    with pytest.raises(InvalidTransition):
        gw.operator_enable("ops", "already trading", now)
    gw.on_fill(1, Side.BUY, 1, FAIR, now)            # the 21st fill in the window
    assert gw.state in (TradingState.HALTED, TradingState.REDUCING)
    assert CheckId.EXECUTION_THROTTLE.label in gw.latch_reasons


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_bits_name_the_same_faults(fault):
    """fault_bits (the engine's order path reads it) holds exactly the faults `faults` names: one
    FAULT_CHECKS bit per fault, and BOOK_STALE_BIT alone when only books are stale."""
    from mm_core.risk.gateway import BOOK_STALE_BIT, FAULT_CHECKS

    def named(bits: int) -> list[str]:
        return [check.label for bit, check in FAULT_CHECKS if bits & bit]
    gw = make_gateway()
    assert gw.fault_bits == 0 and gw.faults == []
    now = fault.inject(gw, FEED, T0 + 100 * MS)
    assert named(gw.fault_bits) == gw.faults
    assert (gw.fault_bits == BOOK_STALE_BIT) == (gw.faults == [CheckId.BOOK_STALE.label])
    fault.clear(gw, FEED, now + 100 * MS)
    assert named(gw.fault_bits) == gw.faults
