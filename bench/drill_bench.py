"""Crash-drill benchmark: SIGKILL, restart, recover, reconcile and resume the real engine process on
the embedded venue, many times; RTO (restart -> first quote) p50/p99, events replayed, discrepancies
found and resolved, lost acknowledged records and differences from the venue.

Side by side in one run: restarting from a warm spare (a pre-imported process forks the new engine)
against a cold restart (a new Python interpreter). Quick: 10 warm runs and 3 cold; full: warm runs
in batches until about two minutes are used, then cold runs for about 40 s. Targets: zero lost
events and zero differences over 1,000 runs; RTO p99 <= 1 s for a one-million-event session
journal. Must not assert anything: the numbers are the result, stated against the targets.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

from journal import Reader, RecordType
from journal.catalogue import unpack_json
from recovery.drills.crash import CrashRun, CrashSettings, run_crash_drill

TARGET_RUNS = 1000
TARGET_RTO_S = 1.0


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _batches(cold: bool, first_runs: int, budget_s: float, seed: int) -> tuple[list[CrashRun], dict]:
    """Crash drills of `first_runs`, then more batches while the time budget lasts."""
    runs: list[CrashRun] = []
    totals = {"drills": 0, "final_ok": 0, "final_lost": 0, "final_diffs": 0, "seconds": 0.0}
    started = time.monotonic()
    batch = first_runs
    while batch > 0:
        journal = tempfile.mkdtemp(prefix="mmaudit-drill-bench-")
        try:
            report = run_crash_drill(CrashSettings(runs=batch, seed=seed + totals["drills"],
                                                   journal_dir=journal, cold_start=cold))
        finally:
            shutil.rmtree(journal, ignore_errors=True)
        runs += report.runs
        totals["drills"] += 1
        totals["final_ok"] += report.final_reconciled
        totals["final_lost"] += len(report.final_lost)
        totals["final_diffs"] += len(report.final_differences)
        elapsed = time.monotonic() - started
        per_run = elapsed / max(len(runs), 1)
        batch = min(25, int((budget_s - elapsed) / per_run) - 1)
    totals["seconds"] = time.monotonic() - started
    return runs, totals


def _row(label: str, runs: list[CrashRun], totals: dict) -> tuple:
    rto = [r.rto_s for r in runs if r.rto_s >= 0]
    rec = [r.recovery_s for r in runs]
    replayed = [r.events_replayed for r in runs]
    points: dict[str, int] = {}
    for r in runs:
        points[r.kill_point] = points.get(r.kill_point, 0) + 1
    return (label, len(runs), totals["drills"], ", ".join(f"{k} {v}" for k, v in sorted(points.items())),
            _pct(rto, 0.5), _pct(rto, 0.99), max(rto, default=float("nan")), _pct(rec, 0.5),
            int(statistics.median(replayed)) if replayed else 0, max(replayed, default=0),
            sum(r.found for r in runs), sum(r.resolved for r in runs),
            sum(len(r.lost) for r in runs) + totals["final_lost"],
            sum(len(r.differences) for r in runs) + totals["final_diffs"],
            sum(r.passed for r in runs), totals["final_ok"], totals["seconds"])


def drill_result(journal: str) -> dict:
    """The last crash drill's DRILL_RESULT record in `journal` (the drill's own evidence)."""
    with Reader(journal) as reader:
        docs = [unpack_json(r.payload) for r in reader.records(rtypes=[RecordType.DRILL_RESULT])]
    docs = [d for d in docs if d.get("drill") == "crash"]
    if not docs:
        raise SystemExit(f"no crash DRILL_RESULT record in {journal}")
    return docs[-1]


def target_section(doc: dict) -> list[str]:
    """One crash drill of many runs (`mmaudit drill crash --runs N`), from its DRILL_RESULT."""
    runs = doc["runs"]
    rto = [r["rto_s"] for r in runs if r["rto_s"] >= 0]
    replayed = [r["events_replayed"] for r in runs]
    points: dict[str, int] = {}
    for r in runs:
        points[r["kill_point"]] = points.get(r["kill_point"], 0) + 1
    hooked = [r for r in runs if r["hook_check"]]
    lost, diffs = doc["lost"], doc["differences"]
    out = [f"### One drill of {len(runs):,} runs (`mmaudit drill crash --runs {len(runs)} --seed {doc['seed']}`)", "",
           "The drill's own figures, read back from its DRILL_RESULT record. Load average "
           + (f"{doc['load'][0]:.1f} at its start, {doc['load'][1]:.1f} at its end"
              if doc.get("load") else "not recorded by the drill") + f" on {os.cpu_count()} CPUs.", "",
           "| runs | passed | kills by point | hook kills confirmed | lost | diffs | RTO p50 s | RTO p99 s "
           "| RTO max s | replayed p50 | replayed max | replayed total | found | resolved | final recon | wall s |",
           "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
           f"| {len(runs):,} | {sum(r['passed'] for r in runs):,} | "
           + ", ".join(f"{k} {v}" for k, v in sorted(points.items()))
           + f" | {sum(r['hook_check'] == 'ok' for r in hooked)}/{len(hooked)} | {lost} | {diffs} "
           f"| {_pct(rto, 0.5):.3f} | {_pct(rto, 0.99):.3f} | {max(rto, default=float('nan')):.3f} "
           f"| {int(statistics.median(replayed)) if replayed else 0} | {max(replayed, default=0)} "
           f"| {sum(replayed):,} | {sum(r['found'] for r in runs)} | {sum(r['resolved'] for r in runs)} "
           f"| {'reconciled' if doc['final']['reconciled'] else 'NOT reconciled'} | {doc['seconds']:.0f} |", "",
           f"- {len(runs):,} runs: {lost} lost acknowledged records and {diffs} position or order-state "
           f"differences after reconciliation -> "
           f"{'target met' if len(runs) >= TARGET_RUNS and lost == diffs == 0 and doc['passed'] else 'target NOT met'} "
           f"(over {TARGET_RUNS:,} runs, zero of each); drill {'PASSED' if doc['passed'] else 'FAILED'}.",
           f"- RTO (restart -> recovery -> reconciliation -> first quote, no operator step) p99 "
           f"{_pct(rto, 0.99):.3f} s for these session journals (a recovery replays only what follows the "
           f"standby's newest snapshot); the one-million-event RTO is bench/recovery_bench.py's.", ""]
    return out


LONG_RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "drill_long.md"


def main(quick: bool = False, result_journals: list[str] | None = None) -> str:
    load = os.getloadavg()
    warm_runs, warm = _batches(False, 10, 0 if quick else 120.0, seed=101)
    cold_runs, cold = _batches(True, 3, 0 if quick else 40.0, seed=901)
    rows = [_row("warm spare (fork)", warm_runs, warm), _row("cold (new interpreter)", cold_runs, cold)]
    out = ["## Crash drill: SIGKILL, restart, recover, reconcile, resume", "",
           f"Real engine processes (runner + engine + journal, 64 KiB segments) on the embedded venue on "
           f"loopback; kill points from the seed: random moments after the first quote; inside the "
           f"journal's C append (record written, length word not published: recovery must name it "
           f"the first record lost); mid-roll (next segment created, the current one not sealed); "
           f"after an append returned, before its ack; between an order's append and its send; right "
           f"after the append that rolled the journal to a new segment. A standby replayer "
           f"keeps engine snapshots (every 500 events) between kills. Machine load average at start "
           f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs.", "",
           "| restart | runs | drills | kills by point | RTO p50 s | RTO p99 s | RTO max s | recovery p50 s "
           "| replayed p50 | replayed max | found | resolved | lost | diffs | runs passed | final recon ok | wall s |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.3f} | {r[7]:.3f} "
                   f"| {r[8]} | {r[9]} | {r[10]} | {r[11]} | {r[12]} | {r[13]} | {r[14]}/{r[1]} | {r[15]}/{r[2]} | {r[16]:.0f} |")
    warm_row, cold_row = rows
    ratio = cold_row[4] / warm_row[4] if warm_row[4] and warm_row[4] == warm_row[4] else float("nan")
    total_runs = warm_row[1] + cold_row[1]
    lost, diffs = warm_row[12] + cold_row[12], warm_row[13] + cold_row[13]
    out += ["", f"Cold restart vs warm spare: RTO p50 {ratio:.2f}x the time "
            f"(the difference is interpreter start-up and imports).", "", "Verdict:",
            f"- Runs done: {total_runs} of the {TARGET_RUNS:,}-run target "
            f"({'met' if total_runs >= TARGET_RUNS else 'NOT run in full here: ' + str(total_runs) + ' runs fit the time budget'}); "
            f"over them {lost} lost acknowledged records and {diffs} position or order-state differences "
            f"after reconciliation ({'zero, as the target requires' if lost == diffs == 0 else 'target NOT met'}).",
            f"- RTO p99 (warm spare) {warm_row[5]:.3f} s against the {TARGET_RTO_S:g} s target for these "
            f"session journals ({'met' if warm_row[5] <= TARGET_RTO_S else 'NOT met'} at this machine load); "
            f"recovery replays only the journal after the newest snapshot (median {warm_row[8]} events), so its "
            f"time follows the snapshot interval, not the session length. The one-million-event RTO is "
            f"measured by bench/recovery_bench.py.",
            "- RTO includes the venue part (full view, resumed login, reconciliation) and the wait for market data "
            "to be current again (the restart opens a MoldUDP64 gap that is re-requested); a clean "
            "reconciliation releases the restart's latch by itself (no operator enable)."]
    if result_journals:
        _write_long(result_journals)
    if LONG_RESULTS.exists():
        out += ["", f"The long drills' figures are in bench/results/{LONG_RESULTS.name} "
                "(written only by --result-journal: `make bench` runs no long drill, so it keeps them)."]
    return "\n".join(out) + "\n"


def _write_long(result_journals: list[str]) -> None:
    """The long drills' sections, from each finished drill's DRILL_RESULT record, into their own
    results file (a quick `make bench` must not overwrite the evidence of a 1,000-run drill)."""
    out = ["<!-- drill_long: the long drills' own figures, read back from each drill's DRILL_RESULT record "
           "(python -m bench.drill_bench --result-journal DIR ...); make bench leaves this file alone -->",
           "## Long crash drills (`mmaudit drill crash --runs N`)"]
    for journal in result_journals:
        out += [""] + target_section(drill_result(journal))
    LONG_RESULTS.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    # --result-journal DIR (repeatable): add the section of a finished
    # `mmaudit drill crash --runs N --journal DIR`
    args = sys.argv[1:]
    journals = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--result-journal"]
    print(main(quick="--quick" in args, result_journals=journals))
