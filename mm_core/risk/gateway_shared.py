"""Names the gateway's parts share (mm_core.risk.gateway and its gateway_* mixins): sides and
trading states as module constants, the fail-closed fault bits and the checks that report them,
option repricing thresholds, and the latch-state parser. Owns no state.
"""
from __future__ import annotations

import math

from journal.catalogue import Side
from mm_core._fastmd_cffi import lib as _lib
from mm_core.risk.checks import CheckId
from mm_core.risk.errors import RiskError
from mm_core.risk.states import TradingState

_BUY = Side.BUY
_SELL = Side.SELL
_ACTIVE = TradingState.ACTIVE
_SAFE = TradingState.SAFE_MODE
_REDUCING = TradingState.REDUCING
_HALTED = TradingState.HALTED
_INF = math.inf
REPRICE_MOVE = 1e-4       # revalue options when the underlying moved 1 bp since the last time
REPRICE_NS = 1_000_000_000   # ... or a second passed (time decay)
_DUP_PURGE = 4096          # duplicate-detection keys kept before old ones are purged
# Fail-closed faults held as bits; a set bit denies orders until the input reports healthy (every
# order for the global bits, orders on the stale symbols for _F_BOOK_STALE).
_F_JOURNAL = 1
_F_CLOCK = 2
_F_UNRECONCILED = 4
_F_UNKNOWN_OUTCOME = 8
_F_BOOK_STALE = 16
_F_CLOCK_STALE = 32        # seen by on_timer; the order path also compares the clock's age itself
_F_GLOBAL = _F_JOURNAL | _F_CLOCK | _F_UNRECONCILED | _F_UNKNOWN_OUTCOME | _F_CLOCK_STALE
BOOK_STALE_BIT = _F_BOOK_STALE
FAULT_CHECKS: tuple[tuple[int, CheckId], ...] = (
    (_F_JOURNAL, CheckId.JOURNAL_UNHEALTHY),
    (_F_CLOCK, CheckId.CLOCK_NONCOMPLIANT),
    (_F_CLOCK_STALE, CheckId.CLOCK_STALE),
    (_F_UNRECONCILED, CheckId.UNRECONCILED),
    (_F_UNKNOWN_OUTCOME, CheckId.UNKNOWN_OUTCOME),
    (_F_BOOK_STALE, CheckId.BOOK_STALE),
)
assert _lib.FRK_DUP_PURGE == _DUP_PURGE


def _latch_state(value) -> TradingState:
    if isinstance(value, TradingState) and value in (_HALTED, _REDUCING):
        return value
    if isinstance(value, str) and value.upper() in ("HALTED", "REDUCING"):
        return TradingState[value.upper()]
    raise RiskError(f"latch_state must be HALTED or REDUCING, got {value!r}")
