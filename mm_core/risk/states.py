"""Trading states of the risk gateway and their transition table.

Owns which state may follow which trigger; one small FSM applies the table and raises
InvalidTransition("A -> B"). It knows nothing of orders, limits or why a trigger fired.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from mm_core.risk.errors import InvalidTransition

__all__ = ["TradingState", "Trigger", "TRANSITIONS", "StateMachine", "StateChange"]


class TradingState(enum.IntEnum):
    """Journaled as u1 in ORDER_SENT, RISK_DECISION and STATE_CHANGE records."""

    ACTIVE = 1      # every check applies, full size
    SAFE_MODE = 2   # the engine keeps quoting with smaller sizes and wider spreads
    REDUCING = 3    # latched: only orders that reduce |position| pass
    HALTED = 4      # latched: nothing but cancels until an operator re-enables


class Trigger(enum.Enum):
    SAFE_MODE_ON = "safe-mode-on"
    SAFE_MODE_OFF = "safe-mode-off"
    LATCH_REDUCE = "latch-reduce"      # a fault, configured to latch REDUCING
    LATCH_HALT = "latch-halt"          # a fault configured to latch HALTED, or the execution throttle
    KILL = "kill"                      # kill switch (RTS 6 Art. 12)
    OPERATOR_ENABLE = "operator-enable"
    RECONCILED = "reconciled"          # a clean reconciliation released the only latch in force
    RECONCILED_SAFE = "reconciled-safe"    # the same, back to the SAFE_MODE the operator had set


_S = TradingState
_T = Trigger

# A latch never downgrades: HALTED stays HALTED when a REDUCING-latch fault arrives.
TRANSITIONS: dict[tuple[TradingState, Trigger], TradingState] = {
    (_S.ACTIVE, _T.SAFE_MODE_ON): _S.SAFE_MODE,
    (_S.SAFE_MODE, _T.SAFE_MODE_OFF): _S.ACTIVE,
    (_S.ACTIVE, _T.LATCH_REDUCE): _S.REDUCING,
    (_S.SAFE_MODE, _T.LATCH_REDUCE): _S.REDUCING,
    (_S.REDUCING, _T.LATCH_REDUCE): _S.REDUCING,
    (_S.HALTED, _T.LATCH_REDUCE): _S.HALTED,
    (_S.ACTIVE, _T.LATCH_HALT): _S.HALTED,
    (_S.SAFE_MODE, _T.LATCH_HALT): _S.HALTED,
    (_S.REDUCING, _T.LATCH_HALT): _S.HALTED,
    (_S.HALTED, _T.LATCH_HALT): _S.HALTED,
    (_S.ACTIVE, _T.KILL): _S.HALTED,
    (_S.SAFE_MODE, _T.KILL): _S.HALTED,
    (_S.REDUCING, _T.KILL): _S.HALTED,
    (_S.HALTED, _T.KILL): _S.HALTED,
    (_S.SAFE_MODE, _T.OPERATOR_ENABLE): _S.ACTIVE,
    (_S.REDUCING, _T.OPERATOR_ENABLE): _S.ACTIVE,
    (_S.HALTED, _T.OPERATOR_ENABLE): _S.ACTIVE,
    (_S.REDUCING, _T.RECONCILED): _S.ACTIVE,
    (_S.HALTED, _T.RECONCILED): _S.ACTIVE,
    (_S.REDUCING, _T.RECONCILED_SAFE): _S.SAFE_MODE,
    (_S.HALTED, _T.RECONCILED_SAFE): _S.SAFE_MODE,
}

# Where each trigger heads, used only to name the refused move in InvalidTransition.
_INTENDED = {
    _T.SAFE_MODE_ON: _S.SAFE_MODE, _T.SAFE_MODE_OFF: _S.ACTIVE, _T.LATCH_REDUCE: _S.REDUCING,
    _T.LATCH_HALT: _S.HALTED, _T.KILL: _S.HALTED, _T.OPERATOR_ENABLE: _S.ACTIVE,
    _T.RECONCILED: _S.ACTIVE, _T.RECONCILED_SAFE: _S.SAFE_MODE,
}


@dataclass(frozen=True, slots=True)
class StateChange:
    """A trading-state transition for the engine to journal as a STATE_CHANGE record."""

    from_state: TradingState
    to_state: TradingState
    trigger: Trigger
    reason: str
    actor: str
    now_ns: int
    reason_code: int = 0      # the CheckId that caused a latch, 0 for commands


class StateMachine:
    """Applies TRANSITIONS; `state` changes only after the lookup succeeded."""

    __slots__ = ("state",)

    def __init__(self, state: TradingState = TradingState.ACTIVE) -> None:
        self.state = state

    def fire(self, trigger: Trigger) -> tuple[TradingState, TradingState]:
        """Returns (from, to); raises InvalidTransition when the table has no such move."""
        current = self.state
        try:
            target = TRANSITIONS[(current, trigger)]
        except KeyError:
            raise InvalidTransition(
                f"{current.name} -> {_INTENDED[trigger].name} ({trigger.value})") from None
        self.state = target
        return current, target
