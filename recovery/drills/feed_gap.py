"""The feed-gap drill: MoldUDP64 packets are dropped (the venue withholds them) while the engine
process quotes; it must pull its quotes, re-request the gap, quote nothing while the gap is open,
and resume by itself once the gap is filled (no order hit the gap, so the gateway does not latch).

Owns the gap schedule (seeded), a re-request gate that keeps each gap open for a while, and the
verdict from the venue's own records: our live orders while the gap was open, orders it accepted
from us meanwhile, re-requests that reached it, and our first new order after the fill. Must not
decide the gap policy (mm_core.risk.faults) nor fill gaps itself: the engine process does.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from mm_core.protocol import ouch
from recovery.drills.common import (
    WAIT_S, DrillReport, DrillVenue, LiveSession, compare_with_venue, format_table, run_live_drill, run_rows,
)
from recovery.drills.risk import _RerequestGate

__all__ = ["GapSettings", "GapRow", "GapReport", "run_feed_gap_drill"]

USER = "MM01"
_POLL_S = 0.01


@dataclass(frozen=True)
class GapSettings:
    gaps: int = 3
    seed: int = 1
    journal_dir: str | None = None
    hold_s: float = 0.6               # how long each gap is kept open (re-requests dropped)


@dataclass
class GapRow:
    gap: int
    withheld: list[int] = field(default_factory=list)   # MoldUDP64 sequences not sent live
    pulled_s: float = -1.0            # withholding -> none of our orders live at the venue
    live_while_open: int = 0          # samples of the venue with any of our orders live, gap open
    accepted_while_open: int = 0      # orders the venue accepted from us while the gap was open
    rerequests: int = 0               # re-requests the engine sent while the gap was held open
    resumed_s: float = -1.0           # gap released -> the venue accepts a new order of ours
    notes: str = ""

    @property
    def passed(self) -> bool:
        return (self.pulled_s >= 0 and self.live_while_open == 0 and self.accepted_while_open == 0
                and self.rerequests >= 1 and self.resumed_s >= 0)


@dataclass
class GapReport(DrillReport):
    rows: list[GapRow] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    trading_state: str = ""

    @property
    def passed(self) -> bool:
        return (bool(self.rows) and all(r.passed for r in self.rows) and not self.differences
                and self.trading_state not in ("HALTED", ""))

    def as_dict(self) -> dict:
        return {"drill": "feed-gap", "seed": self.seed, "journal": self.journal, "passed": self.passed,
                "seconds": round(self.seconds, 3), "differences": self.differences,
                "trading_state": self.trading_state,
                "rows": [asdict(r) | {"passed": r.passed} for r in self.rows]}

    def table(self) -> str:
        rows = [(r.gap, f"{r.withheld[0]}-{r.withheld[-1]}" if r.withheld else "-",
                 f"{r.pulled_s:.3f}" if r.pulled_s >= 0 else "-", r.live_while_open,
                 r.accepted_while_open, r.rerequests, f"{r.resumed_s:.3f}" if r.resumed_s >= 0 else "-",
                 "PASS" if r.passed else "FAIL" + (f" ({r.notes})" if r.notes else "")) for r in self.rows]
        return format_table(("gap", "withheld", "pulled s", "live while open", "accepted while open",
                             "re-requests", "resumed s", "result"), rows)


def _accepted(messages: list[bytes]) -> int:
    return sum(1 for m in messages if isinstance(ouch.decode_outbound(m), (ouch.Accepted, ouch.Replaced)))


def _wait(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until predicate() held (polled), or -1 when it did not within timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(_POLL_S)
    return -1.0


def _one_gap(venue: DrillVenue, gate: _RerequestGate, rng: random.Random, hold_s: float, row: GapRow) -> GapRow:
    live = lambda: venue.venue.live_orders(USER)  # noqa: E731
    if _wait(lambda: bool(live()), WAIT_S) < 0:
        row.notes = "no quote of ours rested at the venue before the gap"
        return row
    gate.closed.set()
    dropped = gate.dropped
    first = venue.venue.publisher.next_sequence + 2
    row.withheld = list(range(first, first + rng.randint(1, 6)))
    venue.venue.withhold_itch(row.withheld)
    row.pulled_s = _wait(lambda: not live(), WAIT_S)
    if row.pulled_s < 0:
        row.notes = "our quotes stayed live at the venue after the gap"
        gate.closed.clear()
        return row
    logged = len(venue.messages())
    until = time.monotonic() + hold_s
    while time.monotonic() < until:
        row.live_while_open += bool(live())
        time.sleep(_POLL_S)
    row.accepted_while_open = _accepted(venue.messages(logged + 1))
    row.rerequests = gate.dropped - dropped
    logged = len(venue.messages())
    gate.closed.clear()
    row.resumed_s = _wait(lambda: _accepted(venue.messages(logged + 1)) > 0, WAIT_S)
    if row.resumed_s < 0:
        row.notes = "no new order after the gap was filled"
    return row


def run_feed_gap_drill(settings: GapSettings, progress: Callable[[GapRow], None] | None = None) -> GapReport:
    """Open `settings.gaps` market-data gaps; see the module docstring. The result is journaled as a
    DRILL_RESULT record in the engine's journal."""
    def body(live: LiveSession, journal: str, report: GapReport, rng: random.Random) -> None:
        venue = live.venue
        gate = live.closing(_RerequestGate(("127.0.0.1", venue.itch_port), ("127.0.0.1", venue.ports.rerequest)))
        live.start_engine(journal, 30.0 + 10.0 * settings.gaps, rerequest=gate.port)
        run_rows(settings.gaps, lambda n: _one_gap(venue, gate, rng, settings.hold_s, GapRow(n)),
                 report.rows, progress)
        state = live.stop_engine()
        report.trading_state = state["trading_state"]
        report.differences = compare_with_venue(state, venue.settled_messages())

    return run_live_drill("feedgap", "gaps", settings.gaps, settings, GapReport, body)
