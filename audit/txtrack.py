"""Pending transmit timestamps: match error-queue stamps to sends, report the ones that never came.

Owns the bookkeeping between send() (a tskey) and poll_tx_timestamps() (tskey, ts, source), and
the rule that a stamp not seen within the timeout is MISSING, with ts 0 and source NONE: never
invented. A stamp that comes after its send was called MISSING is LATE (a second outcome for the
same send, with the stamp), as long as the key is among the newest max_expired expired ones;
a stamp for a send already stamped is a repeat (TCP stamps the bytes again when it retransmits
them: a tail loss probe while the venue delays its ACK), counted in `repeated`, no outcome: the
send's time is its first transmission; any other stamp is counted in `unmatched`. Sends that
carry no order (a session's login, heartbeats, logout) are registered as such: their stamps are
expected and taken without an outcome (counted in `control`), so `unmatched` counts only stamps
nobody can account for.
Sans-io: the caller passes monotonic 'now' values; nothing here reads a clock or socket.
"""
from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from audit.errors import TimestampingError
from journal.catalogue import TsSource


_CONTROL = object()      # the context of a send that carries no order (control_sent)


class TxStatus(enum.IntEnum):
    """Values of the TX_TS record's status field."""

    STAMPED = 0
    MISSING = 1
    SEND_FAILED = 3      # the socket refused the send (the venue reset it): no stamp can come
    LATE = 4             # the stamp came after the timeout: the send's earlier outcome was MISSING


@dataclass(frozen=True, slots=True)
class TxOutcome:
    tskey: int
    context: Any          # what the caller attached to the send (e.g. the ORDER_SENT journal seq)
    status: TxStatus
    ts_ns: int            # 0 when MISSING
    source: TsSource      # NONE when MISSING


class PendingTxTracker:
    """Sends waiting for their TX stamp, oldest first, the newest sends already called MISSING
    and the newest already stamped; all bounded so a dead error queue cannot grow them."""

    def __init__(self, timeout_ns: int = 50_000_000, max_pending: int = 65536,
                 max_expired: int = 4096) -> None:
        if timeout_ns <= 0 or max_pending <= 0 or max_expired < 0:
            raise TimestampingError("timeout_ns and max_pending must be positive, max_expired not negative")
        self.timeout_ns = timeout_ns
        self.max_pending = max_pending
        self.max_expired = max_expired
        self._pending: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        self._expired: OrderedDict[int, Any] = OrderedDict()   # key -> context, oldest first
        # keys whose stamp came: the newest up to max_expired, and the max_expired before them
        # (two generations: a set add per stamp, no per-stamp eviction)
        self._stamped: set[int] = set()
        self._stamped_before: set[int] = set()
        self.late = 0         # stamps matched to a send already called MISSING
        self.unmatched = 0    # stamps whose key was never registered (or expired too long ago)
        self.control = 0      # stamps of sends that carry no order (control_sent)
        self.repeated = 0     # stamps of a send already stamped (its bytes retransmitted)

    def __len__(self) -> int:
        return len(self._pending)

    def sent(self, tskey: int, now_ns: int, context: Any = None) -> list[TxOutcome]:
        """Register a send. Returns outcomes evicted as MISSING if the tracker was full."""
        if tskey in self._pending:
            raise TimestampingError(f"tskey {tskey} is already pending")
        return self._register(tskey, now_ns, context)

    def control_sent(self, tskey: int, now_ns: int) -> list[TxOutcome]:
        """Register a send that carries no order (login, heartbeat, logout): its stamp is taken
        without an outcome, and none comes if it never does. A send still pending under the same
        key (an earlier connection's: keys count each connection's bytes) cannot be told from this
        one by its stamp any more: it is MISSING now. Returns outcomes as sent() does."""
        evicted = []
        entry = self._pending.pop(tskey, None)
        if entry is not None and entry[1] is not _CONTROL:
            evicted.append(self._missing(tskey, entry[1]))
        return evicted + self._register(tskey, now_ns, _CONTROL)

    def _register(self, tskey: int, now_ns: int, context: Any) -> list[TxOutcome]:
        self._expired.pop(tskey, None)     # the key came round again (u32 wrap, a new connection):
        self._stamped.discard(tskey)       # this send owns it
        self._stamped_before.discard(tskey)
        evicted = []
        while len(self._pending) >= self.max_pending:
            old_key, (_, old_ctx) = self._pending.popitem(last=False)
            evicted += self._gone(old_key, old_ctx)
        self._pending[tskey] = (now_ns, context)
        return evicted

    def _missing(self, key: int, context: Any) -> TxOutcome:
        """A send whose stamp did not come in time: MISSING now, remembered for a late stamp."""
        self._remember(key, context)
        return TxOutcome(key, context, TxStatus.MISSING, 0, TsSource.NONE)

    def _gone(self, key: int, context: Any) -> list[TxOutcome]:
        """A send no longer pending (timed out, or pushed out): an order's is MISSING; a control
        send's has no outcome (no order waits on it), but is remembered, so its late stamp is
        still known for what it is."""
        if context is _CONTROL:
            self._remember(key, context)
            return []
        return [self._missing(key, context)]

    def _remember(self, key: int, context: Any) -> None:
        if self.max_expired:
            self._expired[key] = context
            if len(self._expired) > self.max_expired:
                self._expired.popitem(last=False)

    def stamped(self, tskey: int, ts_ns: int, source: TsSource) -> TxOutcome | None:
        """Match one stamp from the error queue: STAMPED for a waiting send, LATE for one already
        called MISSING; None for a send that carries no order (counted in control, on time or
        late), for a send already stamped (counted in repeated) and when no send is known for
        this key (counted in unmatched)."""
        entry = self._pending.pop(tskey, None)
        if entry is not None:
            context, status = entry[1], TxStatus.STAMPED
        elif tskey in self._expired:
            context, status = self._expired.pop(tskey), TxStatus.LATE
            if context is not _CONTROL:
                self.late += 1
        elif tskey in self._stamped or tskey in self._stamped_before:
            self.repeated += 1
            return None
        else:
            self.unmatched += 1
            return None
        if self.max_expired:
            if len(self._stamped) >= self.max_expired:
                self._stamped_before, self._stamped = self._stamped, set()
            self._stamped.add(tskey)
        if context is _CONTROL:
            self.control += 1
            return None
        return TxOutcome(tskey, context, status, ts_ns, TsSource(source))

    def expire(self, now_ns: int) -> list[TxOutcome]:
        """Every send older than the timeout becomes MISSING (oldest first)."""
        missing = []
        while self._pending:
            key, (sent_ns, ctx) = next(iter(self._pending.items()))
            if now_ns - sent_ns < self.timeout_ns:
                break
            del self._pending[key]
            missing += self._gone(key, ctx)
        return missing

    def collect(self, stamps, now_ns: int) -> list[TxOutcome]:
        """Convenience for the runner: match a poll_tx_timestamps() batch, then expire."""
        matched = [o for o in (self.stamped(k, ts, src) for k, ts, src in stamps) if o is not None]
        return matched + self.expire(now_ns)

