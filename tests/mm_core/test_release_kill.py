"""The risk gateway's release of a kill of everything (RiskGateway.release_kill, the engine's
"release-close-out" that recovery journals for a session's own close-out): only the kill's latch
reason goes, and only while the restart's reconciliation latch is the sole other one; the state
stays HALTED until that reconciliation. Anything else holding trading refuses it."""
import pytest

from mm_core.events import OperatorCommand, Reconciled
from mm_core.risk import RiskError, TradingState
from mm_core.risk.errors import FaultsActive
from tests.mm_core.wire import MS, S, make_engine


def killed_then_unreconciled(engine, now: int = S) -> None:
    engine.on_event(OperatorCommand(now, "kill", "session", "session end"))
    engine.on_event(Reconciled(now + MS, False))          # what recovery's BEGIN feeds


def release(engine, now: int):
    return engine.on_event(OperatorCommand(now, "release-close-out", "recovery", "close-out kill seq 9"))


def test_the_kill_goes_and_the_reconciliation_then_returns_to_active():
    engine = make_engine()
    killed_then_unreconciled(engine)
    assert engine.risk.latch_reasons == ["killed", "unreconciled"]
    actions = release(engine, S + 2 * MS)
    assert any("kill-released: by recovery: close-out kill seq 9" == a.summary for a in actions)
    assert engine.risk.state is TradingState.HALTED and engine.risk.latch_reasons == ["unreconciled"]
    engine.on_event(Reconciled(S + 3 * MS, True))
    assert engine.risk.state is TradingState.ACTIVE


def test_without_the_restarts_latch_or_with_another_the_release_is_refused():
    engine = make_engine()
    engine.on_event(OperatorCommand(S, "kill", "session", "session end"))
    with pytest.raises(RiskError, match="only a kill awaiting the restart's reconciliation"):
        engine.risk.release_kill("recovery", "r")
    engine.risk.on_journal_health(False, S + MS)          # a latch of its own (journal unhealthy)
    engine.on_event(Reconciled(S + 2 * MS, False))
    with pytest.raises(RiskError, match="latched by journal-unhealthy"):
        engine.risk.release_kill("recovery", "r")
    assert "killed" in engine.risk.latch_reasons


def test_a_fault_in_force_refuses_it_and_nothing_to_release_is_refused():
    engine = make_engine()
    with pytest.raises(RiskError, match="no kill of everything is in force"):
        engine.risk.release_kill("recovery", "r")
    killed_then_unreconciled(engine)
    engine.risk.on_clock(False, S + 2 * MS)               # not compliant: a fault that latches on an order
    with pytest.raises(FaultsActive, match="clock"):
        engine.risk.release_kill("recovery", "r")
    actions = release(engine, S + 3 * MS)                 # through the engine: refused, alerted
    assert any(a.summary.startswith("operator-refused: release-close-out by recovery") for a in actions)
    assert "killed" in engine.risk.latch_reasons
