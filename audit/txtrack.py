"""Pending transmit timestamps: match error-queue stamps to sends, report the ones that never came.

Owns the bookkeeping between send() (a tskey) and poll_tx_timestamps() (tskey, ts, source), and
the rule that a stamp not seen within the timeout is MISSING, with ts 0 and source NONE: never
invented. Sans-io: the caller passes monotonic 'now' values; nothing here reads a clock or socket.
"""
from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from audit.errors import TimestampingError
from journal.catalogue import TsSource


class TxStatus(enum.IntEnum):
    """Values of the TX_TS record's status field."""

    STAMPED = 0
    MISSING = 1
    SEND_FAILED = 3      # the socket refused the send (the venue reset it): no stamp can come


@dataclass(frozen=True, slots=True)
class TxOutcome:
    tskey: int
    context: Any          # what the caller attached to the send (e.g. the ORDER_SENT journal seq)
    status: TxStatus
    ts_ns: int            # 0 when MISSING
    source: TsSource      # NONE when MISSING


class PendingTxTracker:
    """Sends waiting for their TX stamp, oldest first; bounded so a dead error queue cannot grow it."""

    def __init__(self, timeout_ns: int = 50_000_000, max_pending: int = 65536) -> None:
        if timeout_ns <= 0 or max_pending <= 0:
            raise TimestampingError("timeout_ns and max_pending must be positive")
        self.timeout_ns = timeout_ns
        self.max_pending = max_pending
        self._pending: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        self.unmatched = 0    # stamps whose key was never registered (or already expired)

    def __len__(self) -> int:
        return len(self._pending)

    def sent(self, tskey: int, now_ns: int, context: Any = None) -> list[TxOutcome]:
        """Register a send. Returns outcomes evicted as MISSING if the tracker was full."""
        if tskey in self._pending:
            raise TimestampingError(f"tskey {tskey} is already pending")
        evicted = []
        while len(self._pending) >= self.max_pending:
            old_key, (_, old_ctx) = self._pending.popitem(last=False)
            evicted.append(TxOutcome(old_key, old_ctx, TxStatus.MISSING, 0, TsSource.NONE))
        self._pending[tskey] = (now_ns, context)
        return evicted

    def stamped(self, tskey: int, ts_ns: int, source: TsSource) -> TxOutcome | None:
        """Match one stamp from the error queue; None when no send is waiting for this key."""
        entry = self._pending.pop(tskey, None)
        if entry is None:
            self.unmatched += 1
            return None
        return TxOutcome(tskey, entry[1], TxStatus.STAMPED, ts_ns, TsSource(source))

    def expire(self, now_ns: int) -> list[TxOutcome]:
        """Every send older than the timeout becomes MISSING (oldest first)."""
        missing = []
        while self._pending:
            key, (sent_ns, ctx) = next(iter(self._pending.items()))
            if now_ns - sent_ns < self.timeout_ns:
                break
            del self._pending[key]
            missing.append(TxOutcome(key, ctx, TxStatus.MISSING, 0, TsSource.NONE))
        return missing

    def collect(self, stamps, now_ns: int) -> list[TxOutcome]:
        """Convenience for the runner: match a poll_tx_timestamps() batch, then expire."""
        matched = [o for o in (self.stamped(k, ts, src) for k, ts, src in stamps) if o is not None]
        return matched + self.expire(now_ns)
