"""The Prometheus text a live session serves (`mmaudit run --metrics-listen`): its trading figures
and the clock health of the last clock sample the runner journaled.

Owns the trading metrics' names, help texts and units: money leaves the engine as integer
price4 x shares and becomes dollars (floats) only here, at the exposition's edge. The clock's
metrics are audit.prometheus's, unchanged. Reads what the engine and the runner already keep (the
engine's METRICS document, the runner's report, the journal's next sequence), on the runner's
thread once a clock period; must not decide anything, nor know how the text is served.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from audit.health import PROFILES, Reason, Verdict
from audit.prometheus import exposition, family
from journal.catalogue import ClockState
from mm_core.risk import CheckId, TradingState

__all__ = ["PREFIX", "SessionMetrics", "STATE_HELP", "shown_as"]

PREFIX = "mmaudit"
STATE_HELP = ", ".join(f"{int(s)} {s.name}" for s in TradingState)
_KILLED = CheckId.KILLED.label
_PRICE4 = 10_000                 # price4 units in a dollar
_NOT_JOURNALED_COMPLIANT = (Reason("no_data", "the runner journaled this sample as not compliant "
                                              "(the monitor went stale or failed, or the sample did not fit)"),)


def shown_as(sample, record):
    """The monitor's sample as the runner journaled it in `record` (a CLOCK_SAMPLE): its figures,
    state and compliance the record's, a verdict compliant only when the record's mask says so,
    for the scrape endpoint to show what the journal holds."""
    mask = int(record["compliant_mask"])
    verdicts = {name: v if not v.compliant or mask >> PROFILES[name].bit & 1
                else Verdict(v.profile, False, _NOT_JOURNALED_COMPLIANT)
                for name, v in sample.verdicts.items() if name in PROFILES}
    return dataclasses.replace(
        sample, state=ClockState(int(record["state"])), offset_ns=int(record["offset_ns"]),
        path_delay_ns=int(record["path_delay_ns"]), error_bound_ns=int(record["error_bound_ns"]),
        last_sync_age_ns=int(record["last_sync_age_ns"]), gm_clock_class=int(record["gm_clock_class"]),
        verdicts=verdicts)


class SessionMetrics:
    """Called with no argument (Runner.publish_metrics), it gives `sink` the session's text now.
    `first_seq`: the session's first journal record; `positions`: symbol name -> shares, as the
    summary's positions row shows them; `labels` go on the clock's series (the monitor's)."""

    def __init__(self, engine, runner, journal, first_seq: int, positions: Callable[[], dict[str, int]],
                 sink: Callable[[str], None], labels: dict[str, str] | None = None) -> None:
        self._engine, self._runner, self._journal = engine, runner, journal
        self._first_seq, self._positions, self._sink = first_seq, positions, sink
        self._labels = dict(labels or {})

    def __call__(self) -> None:
        self._sink(self.text())

    def text(self) -> str:
        lines = self._trading()
        shown = self._runner.clock_shown
        text = "\n".join(lines) + "\n"
        return text if shown is None else text + exposition(shown_as(*shown), self._labels)

    def _trading(self) -> list[str]:
        engine, report = self._engine, self._runner.report
        doc = engine.summary()            # the engine's METRICS document (read only)
        counts = doc["counts"]
        state, latch = engine.risk.state, engine.risk.latch_details
        lines: list[str] = []

        def add(name: str, kind: str, help_text: str, series) -> None:
            lines.extend(family(f"{PREFIX}_{name}", kind, help_text, series))

        add("trading_state", "gauge", f"Trading state at the risk gateway: {STATE_HELP}.", [({}, int(state))])
        add("trading_state_info", "gauge", "1 for the current trading state.",
            [({"state": s.name}, int(s is state)) for s in TradingState])
        add("trading_killed", "gauge", "1 while a kill latches trading HALTED (an operator's, or the "
            "close-out's own at the session's end).",
            [({}, int(_KILLED in latch))])
        add("trading_latched_checks", "gauge", "1 for each risk check holding the latch (REDUCING or HALTED).",
            [({"check": label}, 1) for label in sorted(latch)])
        add("position_shares", "gauge", "Position per symbol, shares (quoted symbols and any other held).",
            [({"symbol": name}, qty) for name, qty in self._positions().items()])
        add("pnl_realized_dollars", "gauge", "Realized P&L (FIFO lots), dollars: the engine's integer "
            "price4 x shares divided by 10000 at this edge only.", [({}, doc["realized"] / _PRICE4)])
        add("pnl_unrealized_dollars", "gauge", "Unrealized P&L at the mids, dollars (the engine's integer "
            "price4 x shares / 10000); positions with no mid are left out (see pnl_unpriced_positions).",
            [({}, doc["unrealized_x2"] / (2 * _PRICE4))])
        add("pnl_unpriced_positions", "gauge", "Open positions left out of the unrealized P&L (no mid).",
            [({}, len(doc.get("unpriced") or {}))])
        add("orders_sent_total", "counter", "OUCH orders journaled and sent (enters, replaces, cancels).",
            [({}, report.orders_sent)])
        add("fills_total", "counter", "Executions of our orders booked (quotes, hedges, adopted orders).",
            [({}, counts["fills"])])
        add("quote_fills_total", "counter", "Executions of our quotes, per side.",
            [({"side": side}, doc["fills"][side]) for side in ("bid", "ask")])
        add("gateway_denials_total", "counter", "Orders the risk gateway denied.", [({}, counts["denials"])])
        add("venue_rejects_total", "counter", "Orders the venue rejected.", [({}, counts["venue_rejects"])])
        add("md_packets_total", "counter", "MoldUDP64 packets the engine took in.", [({}, counts["md_packets"])])
        add("md_gaps_total", "counter", "Market-data sequence gaps found.", [({}, counts["gaps"])])
        add("md_rerequests_total", "counter", "MoldUDP64 re-requests sent for market-data gaps.",
            [({}, report.md_rerequests)])
        add("md_kernel_drops_total", "counter", "Market-data datagrams the kernel dropped (receive buffer full).",
            [({}, report.md_kernel_drops)])
        add("journal_records_total", "counter", "Journal records this session wrote (from its first record).",
            [({}, self._journal.next_seq - self._first_seq)])
        add("journal_failures_total", "counter", "Appends the journal refused.", [({}, report.journal_failures)])
        add("metrics_refresh_timestamp_seconds", "gauge", "When the trading loop last refreshed this text, "
            "Unix time (refreshed once a clock period; the endpoint answers 503 once it stops).",
            [({}, round(time.time(), 3))])
        return lines
