"""The trading-state table: every (state, trigger) pair either moves as the table says or raises
InvalidTransition("A -> B") and leaves the state unchanged."""
from __future__ import annotations

import itertools

import pytest

from mm_core.risk import (TRANSITIONS, InvalidTransition, StateMachine, TradingState, Trigger)
from tests.risk.conftest import T0, make_gateway

S, T = TradingState, Trigger

EXPECTED = {
    (S.ACTIVE, T.SAFE_MODE_ON): S.SAFE_MODE,
    (S.SAFE_MODE, T.SAFE_MODE_OFF): S.ACTIVE,
    (S.ACTIVE, T.LATCH_REDUCE): S.REDUCING,
    (S.SAFE_MODE, T.LATCH_REDUCE): S.REDUCING,
    (S.REDUCING, T.LATCH_REDUCE): S.REDUCING,
    (S.HALTED, T.LATCH_REDUCE): S.HALTED,          # a latch never downgrades a halt
    (S.ACTIVE, T.LATCH_HALT): S.HALTED,
    (S.SAFE_MODE, T.LATCH_HALT): S.HALTED,
    (S.REDUCING, T.LATCH_HALT): S.HALTED,
    (S.HALTED, T.LATCH_HALT): S.HALTED,
    (S.ACTIVE, T.KILL): S.HALTED,
    (S.SAFE_MODE, T.KILL): S.HALTED,
    (S.REDUCING, T.KILL): S.HALTED,
    (S.HALTED, T.KILL): S.HALTED,
    (S.SAFE_MODE, T.OPERATOR_ENABLE): S.ACTIVE,
    (S.REDUCING, T.OPERATOR_ENABLE): S.ACTIVE,
    (S.HALTED, T.OPERATOR_ENABLE): S.ACTIVE,
    (S.REDUCING, T.RECONCILED): S.ACTIVE,          # the restart's latch, when it was the only one
    (S.HALTED, T.RECONCILED): S.ACTIVE,
    (S.REDUCING, T.RECONCILED_SAFE): S.SAFE_MODE,  # the same, back to the operator's safe mode
    (S.HALTED, T.RECONCILED_SAFE): S.SAFE_MODE,
}
INVALID = {
    (S.ACTIVE, T.SAFE_MODE_OFF): "ACTIVE -> ACTIVE",
    (S.ACTIVE, T.OPERATOR_ENABLE): "ACTIVE -> ACTIVE",
    (S.SAFE_MODE, T.SAFE_MODE_ON): "SAFE_MODE -> SAFE_MODE",
    (S.REDUCING, T.SAFE_MODE_ON): "REDUCING -> SAFE_MODE",
    (S.REDUCING, T.SAFE_MODE_OFF): "REDUCING -> ACTIVE",
    (S.HALTED, T.SAFE_MODE_ON): "HALTED -> SAFE_MODE",
    (S.HALTED, T.SAFE_MODE_OFF): "HALTED -> ACTIVE",
    (S.ACTIVE, T.RECONCILED): "ACTIVE -> ACTIVE",
    (S.SAFE_MODE, T.RECONCILED): "SAFE_MODE -> ACTIVE",
    (S.ACTIVE, T.RECONCILED_SAFE): "ACTIVE -> SAFE_MODE",
    (S.SAFE_MODE, T.RECONCILED_SAFE): "SAFE_MODE -> SAFE_MODE",
}


def test_table_is_exactly_the_expected_one():
    assert TRANSITIONS == EXPECTED
    assert set(EXPECTED) | set(INVALID) == set(itertools.product(S, T))


@pytest.mark.parametrize("start,trigger", sorted(EXPECTED, key=str))
def test_valid_transitions(start, trigger):
    fsm = StateMachine(start)
    assert fsm.fire(trigger) == (start, EXPECTED[(start, trigger)])
    assert fsm.state is EXPECTED[(start, trigger)]


@pytest.mark.parametrize("start,trigger", sorted(INVALID, key=str))
def test_invalid_transitions_raise_and_keep_state(start, trigger):
    fsm = StateMachine(start)
    with pytest.raises(InvalidTransition) as info:
        fsm.fire(trigger)
    assert str(info.value).startswith(INVALID[(start, trigger)])
    assert fsm.state is start


def test_gateway_commands_follow_the_table_and_emit_events():
    gw = make_gateway()
    gw.set_safe_mode(True, "quote-guard", "toxic flow", T0)
    gw.set_safe_mode(True, "quote-guard", "still toxic", T0)        # idempotent, no event
    gw.kill("all", 0, "alice", "fat finger", T0 + 1)       # a scoped kill latches nothing (test_kill)
    with pytest.raises(InvalidTransition, match="HALTED -> SAFE_MODE"):
        gw.set_safe_mode(True, "quote-guard", "toxic", T0 + 2)
    gw.operator_enable("bob", "reviewed", T0 + 3)
    with pytest.raises(InvalidTransition, match="ACTIVE -> ACTIVE"):
        gw.operator_enable("bob", "again", T0 + 4)
    events = gw.drain_events()
    assert [(e.from_state, e.to_state, e.actor) for e in events] == [
        (S.ACTIVE, S.SAFE_MODE, "quote-guard"), (S.SAFE_MODE, S.HALTED, "alice"),
        (S.HALTED, S.ACTIVE, "bob")]
    assert events[1].reason == "kill all 0: fat finger"
    assert gw.drain_events() == []
    assert gw.size_multiplier == 1.0


def test_decisions_carry_the_state_at_the_time():
    from tests.risk.conftest import order
    gw = make_gateway()
    gw.set_safe_mode(True, "guard", "x", T0)
    assert gw.check(order(), T0).state is S.SAFE_MODE
    gw.set_safe_mode(False, "guard", "calm", T0)
    assert gw.check(order(price=999_999), T0).state is S.ACTIVE
