"""The fail-closed fault policy and the fault matrix as data, shared by the gateway, the unit
tests and the live risk drill (recovery.drills.risk).

Policy (LATCH_POLICY, read by the gateway): every fault denies every order it concerns while it
is active, and cancels always pass. What differs is when the trading state latches:
  ON_REPORT  the moment the input reports the fault: a defect in a check, a journal that cannot
             take records (write-ahead is broken), an order whose outcome is unknown, a failed or
             refused reconciliation, the repeated-execution throttle (RTS 6 Art. 15(3)), a fill
             that makes no sense, the kill switch. Only an operator re-enable re-opens.
  ON_ORDER   transient input faults — a stale book or market data gap (per symbol), invalid or
             silent market data, a clock not compliant, unknown or silent: denied while active,
             trading resumes by itself once the input is healthy again; the state latches only
             if an order is actually presented while the fault is active (the engine pulls its
             quotes and sends nothing while an input is unhealthy, so a normal gap never latches).
Not yet reconciled at start-up (start_reconciled = false) denies without latching: it is the
session's starting condition, not a report; on_reconciled(False) is a report and latches.
Released by its own clearing (RELEASED_ON_CLEAR): a clean reconciliation after a restart releases
the unreconciled latch and trading returns to ACTIVE by itself, but only when no other latch
reason is in force (a throttle, a kill, a defect... from before the crash still needs the operator).

Matrix (FAULTS): per fault, how to inject it into a gateway (and how the live drill produces it),
how it clears, the check that denies the probe order, and the latch the probe leaves behind
(`latches_to` None = the configured latch state); after clearing, ON_ORDER faults pass the probe
again by themselves only if no order hit them, otherwise after an operator re-enable.
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Callable

from mm_core.risk.checks import CheckId
from mm_core.risk.states import TradingState
from mm_core.types import OrderIntent, Side

__all__ = ["Fault", "FAULTS", "MarketFeed", "Latch", "LATCH_POLICY", "RELEASED_ON_CLEAR"]


class Latch(enum.Enum):
    ON_REPORT = "on-report"     # latches when the input reports the fault
    ON_ORDER = "on-order"       # denies while active; latches only when an order hits it


# Every check that can deny an order because an input or the gateway itself is unhealthy.
LATCH_POLICY: dict[CheckId, Latch] = {
    CheckId.INTERNAL_ERROR: Latch.ON_REPORT,
    CheckId.JOURNAL_UNHEALTHY: Latch.ON_REPORT,
    CheckId.UNKNOWN_OUTCOME: Latch.ON_REPORT,
    CheckId.UNRECONCILED: Latch.ON_REPORT,
    CheckId.EXECUTION_THROTTLE: Latch.ON_REPORT,
    CheckId.INCONSISTENT_INPUT: Latch.ON_REPORT,
    CheckId.KILLED: Latch.ON_REPORT,
    CheckId.CLOCK_NONCOMPLIANT: Latch.ON_ORDER,
    CheckId.CLOCK_STALE: Latch.ON_ORDER,
    CheckId.BOOK_STALE: Latch.ON_ORDER,
    CheckId.MARKET_DATA_MISSING: Latch.ON_ORDER,
    CheckId.MARKET_DATA_STALE: Latch.ON_ORDER,
    CheckId.OPTION_PARAMS_MISSING: Latch.ON_ORDER,
}

# Latches that the input reporting healthy again releases by itself (when it is the only reason).
RELEASED_ON_CLEAR: frozenset[CheckId] = frozenset({CheckId.UNRECONCILED})


@dataclass(frozen=True)
class MarketFeed:
    """The healthy inputs a fault is injected against: one symbol's prices, price4."""

    symbol_id: int
    fair: int
    reference: int

    def refresh(self, gateway, now_ns: int) -> None:
        """Every healthy input stamped at now_ns (clock, market)."""
        gateway.on_clock(True, now_ns)
        gateway.on_market(self.symbol_id, self.fair, self.reference, False, now_ns)


# inject(gateway, feed, now_ns) -> now_ns at which the probe order is checked
Inject = Callable[[object, MarketFeed, int], int]


@dataclass(frozen=True)
class Fault:
    name: str
    check: CheckId                      # the check the probe order is denied by
    inject: Inject
    clear: Callable[[object, MarketFeed, int], None]
    live: str                           # how the drill produces it in the running system
    latches_to: TradingState | None = None
    probe: Callable[[OrderIntent], OrderIntent] = lambda intent: intent

    @property
    def latch(self) -> Latch:
        """When this fault latches; the kill switch and the throttle always on report."""
        if self.check is CheckId.TRADING_HALTED:
            return Latch.ON_REPORT
        return LATCH_POLICY[self.check]


def _nothing(gateway, feed: MarketFeed, now_ns: int) -> None:
    return None


def _after_clock_age(gateway, feed: MarketFeed, now_ns: int) -> int:
    later = now_ns + gateway.limits.max_clock_age_ns + 1
    gateway.on_market(feed.symbol_id, feed.fair, feed.reference, False, later)
    return later


def _after_market_age(gateway, feed: MarketFeed, now_ns: int) -> int:
    later = now_ns + gateway.limits.max_market_age_ns + 1
    gateway.on_clock(True, later)
    return later


def _throttle(gateway, feed: MarketFeed, now_ns: int) -> int:
    for i in range(gateway.limits.throttle_max_fills + 1):
        gateway.on_fill(feed.symbol_id, Side.BUY if i % 2 else Side.SELL, 1, feed.fair, now_ns)
    return now_ns


def _call(method: str, *args) -> Inject:
    """An injection that is one feed call stamped at now_ns."""
    def inject(gateway, feed: MarketFeed, now_ns: int) -> int:
        getattr(gateway, method)(*args, now_ns)
        return now_ns
    return inject


def _book(stale: bool) -> Inject:
    def inject(gateway, feed: MarketFeed, now_ns: int) -> int:
        gateway.on_market(feed.symbol_id, feed.fair, feed.reference, stale, now_ns)
        return now_ns
    return inject


def _bad_fair(gateway, feed: MarketFeed, now_ns: int) -> int:
    gateway.on_market(feed.symbol_id, float("nan"), feed.reference, False, now_ns)
    return now_ns


FAULTS: tuple[Fault, ...] = (
    Fault("journal-append-failed", CheckId.JOURNAL_UNHEALTHY, _call("on_journal_health", False),
          _call("on_journal_health", True),
          "the journal's append raises DiskFull (drill rows journal-append-failed, disk-full); "
          "the runner reports on_journal_health(False)"),
    Fault("clock-not-compliant", CheckId.CLOCK_NONCOMPLIANT, _call("on_clock", False),
          _call("on_clock", True),
          "the PTP lab client's ptp4l SIGKILLed, or the labelled drill clock made non-compliant "
          "(drill row clock-not-compliant)"),
    Fault("clock-unknown", CheckId.CLOCK_NONCOMPLIANT, _call("on_clock", None),
          _call("on_clock", True), "pmc unanswered (ptp4l killed): clock state UNKNOWN"),
    Fault("clock-silent", CheckId.CLOCK_STALE, _after_clock_age, _call("on_clock", True),
          "clock monitor stopped: no CLOCK_SAMPLE for longer than max_clock_age_ms"),
    Fault("unreconciled", CheckId.UNRECONCILED, _call("on_reconciled", False),
          _call("on_reconciled", True), "reconciliation after a restart reports a break (drill row unreconciled)"),
    Fault("unknown-outcome", CheckId.UNKNOWN_OUTCOME, _call("on_order_state", None, 1),
          _call("on_order_state", None, 0),
          "the venue's answers held back by a loopback relay past the ack timeout "
          "(drill row unknown-outcome)"),
    Fault("book-stale", CheckId.BOOK_STALE, _book(True), _book(False),
          "MoldUDP64 packets dropped and re-requests held back: the gap marks the book stale "
          "(drill row market-data-gap)"),
    Fault("market-data-invalid", CheckId.BOOK_STALE, _bad_fair, _book(False),
          "fair value model emits a non-finite price"),
    Fault("market-data-silent", CheckId.MARKET_DATA_STALE, _after_market_age,
          lambda gateway, feed, now_ns: feed.refresh(gateway, now_ns),
          "ITCH feed paused longer than max_market_age_ms"),
    Fault("check-exception", CheckId.INTERNAL_ERROR, lambda gateway, feed, now_ns: now_ns, _nothing,
          "an order intent with a malformed field reaches the gateway",
          probe=lambda intent: dataclasses.replace(intent, qty=str(intent.qty))),
    Fault("execution-throttle", CheckId.EXECUTION_THROTTLE, _throttle, _nothing,
          "venue flow that fills our quotes more than max_fills times within the window",
          latches_to=TradingState.HALTED),
    Fault("kill-switch", CheckId.TRADING_HALTED, _call("kill", "all", 0, "drill", "fault matrix"),
          _nothing, "operator runs `mmaudit kill --scope all`", latches_to=TradingState.HALTED),
)
