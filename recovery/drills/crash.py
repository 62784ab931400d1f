"""The crash drill: a real engine process (runner + engine + journal) trading with the embedded venue
on loopback is SIGKILLed again and again — at random moments and at exact hook points — restarted,
recovered, resumed. Inside the journal's C writer (its test hook, journal/journal_testhook.c):
in-append (a record written but its length word not published) and mid-roll (the next segment
created, the current one not sealed); the next recovery must report that record as the first lost
(a torn record discarded, or a half-rolled segment removed). In the engine process's wrapper,
after an append returned: append-returned (before its ack), between-append-send (an order
journaled, not sent) and after-roll (the append that rolled the journal).

Owns the kill plan (deterministic from the seed), the engine processes' lifecycle, and the verdict:
no acknowledged journal record lost, the engine's positions and order states equal to the
venue's own (its session log and in-process queries, never the engine's word), and every kill
point the plan used really hit at least once (a hook not reached falls back to a random moment,
which does not count for it). The pieces the
process drills share are recovery.drills.common's. Must not recover anything itself: it calls
recovery (recover, and replay_journal as the standby that keeps engine snapshots alongside).
"""
from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from journal import Reader
from recovery.drills import _engine_proc as proc_main
from recovery.drills.common import (
    USER, WAIT_S, DrillError, DrillReport, DrillVenue, EngineProcess, Spare, compare_with_venue, engine_args,
    drill_journal, format_table, journal_result, lost_acks, result_on_abort,
)
from journal.scratch import scratch_dir
from recovery.codecheck import CodeCheck
from recovery.reconcile import venue_view
from recovery.recover import RecoverySettings, recover
from recovery.replay import replay_journal

__all__ = ["DrillError", "CrashSettings", "CrashRun", "CrashReport", "KILL_POINTS", "run_crash_drill"]

RANDOM = "random"
KILL_POINTS = (RANDOM,) + proc_main.HOOKS
HOOK_WAIT_S = 3.0             # a hook not reached by then: the kill falls back to a random moment
FALLBACK = " (fallback)"      # after a kill point a run's hook never reached


# a run killed inside the C writer: its verdict waits for the next recovery's tail report
HOOK_PENDING = "no recovery after it"


# ------------------------------------------------------------------------------ the crash drill

@dataclass(frozen=True)
class CrashSettings:
    runs: int = 20
    seed: int = 1
    journal_dir: str | None = None    # None: a temporary directory
    segment_size: int = 1 << 16       # small, so segment rolls happen during the drill
    snapshot_every: int = 500         # the standby replayer's snapshot interval (0: none)
    cold_start: bool = False          # restart as a new interpreter instead of a warm spare's fork


@dataclass
class CrashRun:
    run: int
    kill_point: str
    kill_detail: str = ""
    rto_s: float = -1.0               # restart -> first quote sent (-1: none)
    recovery_s: float = 0.0           # recovery's own total (journal open .. reconciled)
    events_replayed: int = 0
    found: int = 0                    # discrepancies found by the first reconciliation round
    resolved: int = 0
    kinds: list[str] = field(default_factory=list)
    acked: int = 0                    # records the killed process had acknowledged
    lost: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    reconciled: bool = False
    hook_check: str = ""              # "ok" when journal and venue confirm the hook's kill point
    notes: str = ""
    hit: bool = True                  # killed at its kill point (False: the hook was never reached)

    @property
    def planned(self) -> str:
        """The kill point the plan gave this run (kill_point names a fallback as such)."""
        return self.kill_point.removesuffix(FALLBACK)

    @property
    def passed(self) -> bool:
        return (self.reconciled and not self.lost and not self.differences and self.rto_s >= 0
                and self.hook_check in ("", "ok"))


@dataclass
class CrashReport(DrillReport):
    runs: list[CrashRun] = field(default_factory=list)
    final_differences: list[str] = field(default_factory=list)
    final_lost: list[str] = field(default_factory=list)
    final_reconciled: bool = False
    load: tuple[float, float] = (0.0, 0.0)     # 1-minute load average at the start and the end

    @property
    def lost(self) -> int:
        return sum(len(r.lost) for r in self.runs) + len(self.final_lost)

    @property
    def differences(self) -> int:
        return sum(len(r.differences) for r in self.runs) + len(self.final_differences)

    @property
    def kill_points(self) -> dict[str, dict[str, int]]:
        """Per kill point the plan used: runs planned to die there, and those that really did
        (a hook not reached falls back to a random moment: planned, not hit)."""
        tally = {p: {"planned": 0, "hit": 0} for p in KILL_POINTS if any(r.planned == p for r in self.runs)}
        for r in self.runs:
            tally[r.planned]["planned"] += 1
            tally[r.planned]["hit"] += r.hit
        return tally

    @property
    def missed_kill_points(self) -> list[str]:
        """Kill points the plan used that no run was killed at: the drill did not test them."""
        return [p for p, n in self.kill_points.items() if not n["hit"]]

    @property
    def passed(self) -> bool:
        return (bool(self.runs) and all(r.passed for r in self.runs) and self.final_reconciled
                and not self.final_differences and not self.final_lost and not self.missed_kill_points)

    def rto_percentile(self, q: float) -> float:
        values = sorted(r.rto_s for r in self.runs if r.rto_s >= 0)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

    def as_dict(self) -> dict:
        return {"drill": "crash", "seed": self.seed, "journal": self.journal, "passed": self.passed,
                "load": list(self.load),
                "seconds": round(self.seconds, 3), "lost": self.lost, "differences": self.differences,
                "rto_p50_s": round(self.rto_percentile(0.5), 6), "rto_p99_s": round(self.rto_percentile(0.99), 6),
                "final": {"reconciled": self.final_reconciled, "differences": self.final_differences,
                          "lost": self.final_lost},
                "kill_points": self.kill_points, "missed_kill_points": self.missed_kill_points,
                "runs": [asdict(r) | {"passed": r.passed} for r in self.runs]}

    def table(self) -> str:
        rows = [(r.run, r.kill_point, f"{r.rto_s:.3f}" if r.rto_s >= 0 else "-", r.events_replayed,
                 r.found, r.resolved, r.acked, len(r.lost), len(r.differences), r.hook_check or "-",
                 "PASS" if r.passed else "FAIL" + (f" ({r.notes or r.hook_check})"))
                for r in self.runs]
        return format_table(("run", "killed at", "RTO s", "replayed", "found", "resolved", "acked",
                             "lost", "diffs", "hook check", "result"), rows)


def _kill_plan(rng: random.Random, runs: int) -> list[tuple[str, int, float]]:
    """(kill point, n-th occurrence for a hook, delay after the first quote for a random kill);
    every kill point appears in each block of len(KILL_POINTS) runs, in a seeded order."""
    plan = []
    while len(plan) < runs:
        block = list(KILL_POINTS)
        rng.shuffle(block)
        for point in block:
            nth = {proc_main.IN_APPEND: rng.randint(1, 60), proc_main.MID_ROLL: 1,
                   proc_main.APPEND_RETURNED: rng.randint(1, 60), proc_main.AFTER_APPEND: rng.randint(1, 4),
                   proc_main.AFTER_ROLL: 1}.get(point, 0)
            plan.append((point, nth, rng.uniform(0.0, 0.5)))
    return plan[:runs]


class _CrashDrill:
    def __init__(self, settings: CrashSettings, workdir: pathlib.Path, journal: str,
                 progress: Callable[[CrashRun], None] | None) -> None:
        self.settings = settings
        self.workdir = workdir
        self.journal = journal
        self.snapshots = str(workdir / "snapshots") if settings.snapshot_every else None
        if self.snapshots:
            os.makedirs(self.snapshots, exist_ok=True)
        self.progress = progress
        self.venue = DrillVenue(workdir, settings.seed, duration=60.0 + 6.0 * settings.runs)
        self.spare = None if settings.cold_start else Spare(workdir / "engine.log")
        self._standby: threading.Thread | None = None
        self._standby_error: Exception | None = None
        self._torn: tuple[CrashRun, int] | None = None   # killed inside the C writer, at that record

    def start(self, recover_first: bool, point: str, nth: int) -> EngineProcess:
        hook = f"{point}:{nth}" if point != RANDOM else ""
        args = engine_args(self.journal, self.venue, recover_first=recover_first,
                           segment_size=self.settings.segment_size, seconds=WAIT_S * 2,
                           snapshots=self.snapshots)
        return EngineProcess(args, self.workdir, hook, self.spare)

    def kill_as_planned(self, proc: EngineProcess, point: str, delay: float, run: CrashRun) -> None:
        if point == RANDOM:
            kind, text = proc.expect("", delay)       # nothing expected: a bounded sleep that
            run.kill_detail = f"{delay:.3f} s after the first quote"  # notices an early exit
        else:
            # a 64 KiB segment fills in a few seconds of quoting: a roll is waited for longer
            wait = HOOK_WAIT_S * (4 if point in (proc_main.AFTER_ROLL, proc_main.MID_ROLL) else 1)
            kind, text = proc.expect("H", wait)
            if kind == "H":
                run.kill_detail = text
            else:
                run.kill_detail = f"hook not reached in {wait:g} s: killed then"
                run.kill_point, run.hit = point + FALLBACK, False
        if kind == "EOF":
            raise DrillError(f"the engine process ended by itself before its kill: {proc.log_tail()}")
        code = proc.kill()
        if code != -signal.SIGKILL:
            raise DrillError(f"the engine process ended with {code}, not by SIGKILL")
        if kind == "H":
            run.hook_check = self.check_hook(run.kill_detail)
            if run.hook_check == "ok" and run.planned in proc_main.C_HOOKS:
                # killed before its record was published: the next recovery must say it tore
                words = run.kill_detail.split()
                self._torn = (run, int(words[words.index("seq") + 1]))
                run.hook_check = HOOK_PENDING

    def judge_tail(self, tail: dict) -> None:
        """A recovery's tail report after a kill inside the C writer: the record it was writing
        (in-append), or the one whose append rolled (mid-roll), must be reported as the first
        one lost, and nothing before it."""
        if self._torn is None:
            return
        (run, seq), self._torn = self._torn, None
        lost = tail.get("first_lost_seq")
        if lost != seq:
            run.hook_check = f"recovery named {lost} the first record lost, killed while writing {seq}: {tail}"
        elif run.planned == proc_main.IN_APPEND and not tail.get("bytes_discarded"):
            run.hook_check = f"recovery discarded nothing of torn record {seq}: {tail}"
        elif run.planned == proc_main.MID_ROLL and not tail.get("segments_removed"):
            run.hook_check = f"recovery removed no half-rolled segment: {tail}"
        else:
            run.hook_check = "ok"
        if self.progress is not None and run.run:     # held back at its kill (the warm-up run is not shown)
            self.progress(run)

    def check_hook(self, detail: str) -> str:
        """Proof that the process died where the hook says, from the journal and the venue:
        "ok", or what contradicts it."""
        words = detail.split()
        seq = int(words[words.index("seq") + 1])
        with Reader(self.journal) as reader:
            published = reader.last_seq >= seq
        if words[0] in proc_main.C_HOOKS:       # killed before that record was published
            return f"record {seq} is in the journal although killed before it was published" if published \
                else "ok"
        if not published:
            return f"record {seq} is not in the journal"
        if words[0] == proc_main.AFTER_APPEND:
            token, kind = words[words.index("token") + 1], words[words.index("type") + 1]
            order = venue_view(enumerate(self.venue.settled_messages(quiet=0.1, limit=1.0), start=1)
                               ).orders.get(token)
            # an entry or replacement names a new token: the venue must not know it (a cancel
            # names a known order and may repeat an earlier one: the journal's word must do)
            if order is not None and kind in "OU":
                return (f"{kind} for {token} reached the venue although killed before its send "
                        f"(venue: {order.status})")
        return "ok"

    def standby_snapshots(self) -> None:
        """What a standby replayer does alongside the live engine: replay the journal written
        since the newest snapshot and write snapshots as it goes, so recovery replays only a
        tail. Runs on a thread while the engine trades towards its kill (overlapping the wait);
        the next restart waits for it, so every recovery finds the snapshots it left."""
        self.standby_done()
        if self.snapshots:
            self._standby = threading.Thread(target=self._standby_pass, daemon=True, name="drill-standby")
            self._standby.start()

    def _standby_pass(self) -> None:
        try:
            replay_journal(self.journal, proc_main.new_engine(), snapshots=self.snapshots,
                           snapshot_every=self.settings.snapshot_every,
                           code=CodeCheck())
        except Exception as exc:      # noqa: BLE001 — reported by standby_done in the drill's thread
            self._standby_error = exc

    def standby_done(self) -> None:
        if self._standby is not None:
            self._standby.join()
            self._standby = None
        error, self._standby_error = self._standby_error, None
        if error is not None:
            raise DrillError(f"the standby replayer failed: {type(error).__name__}: {error}") from error

    def run(self, report: CrashReport) -> None:
        rng = random.Random(self.settings.seed)
        plan = _kill_plan(rng, self.settings.runs + 1)
        point, nth, delay = plan[0]
        proc = self.start(False, point, nth)
        warmup = CrashRun(0, point)
        if proc.expect("Q")[0] != "Q":
            proc.kill()
            raise DrillError(f"the engine did not quote within {WAIT_S:g} s: {proc.log_tail()}")
        self.standby_snapshots()
        self.kill_as_planned(proc, point, delay, warmup)
        for number in range(1, self.settings.runs + 1):
            acked = list(proc.acks)
            self.standby_done()
            point, nth, delay = plan[number]
            run = CrashRun(number, point, acked=len(acked))
            proc = self.start(True, point, nth)
            kind, text = proc.expect("R")
            if kind != "R":
                proc.kill()
                raise DrillError(f"run {number}: no recovery outcome ({kind}): {proc.log_tail()}")
            outcome = json.loads(text)
            self.judge_tail(outcome.get("tail") or {})
            run.reconciled = outcome["reconciled"]
            run.events_replayed = outcome["events_replayed"]
            run.found, run.resolved, run.kinds = outcome["found"], outcome["resolved"], outcome["kinds"]
            run.recovery_s = outcome["timings"].get("total", 0.0)
            run.lost = lost_acks(self.journal, acked)
            run.differences = compare_with_venue(outcome["state"], self.venue.messages())
            if not run.reconciled:
                run.notes = "; ".join(outcome["reasons"])[:200]
                proc.kill()
                report.runs.append(run)
                break
            kind, text = proc.expect("Q")
            if kind != "Q":
                run.notes = f"no quote after recovery ({kind}): {proc.log_tail()[-300:]}"
                proc.kill()
                report.runs.append(run)
                break
            run.rto_s = (int(text.split()[0]) - proc.started_ns) / 1e9
            self.standby_snapshots()
            self.kill_as_planned(proc, point, delay, run)
            report.runs.append(run)
            if self.progress is not None and run.hook_check != HOOK_PENDING:
                self.progress(run)          # else once the next recovery judged its torn record
        self.standby_done()
        self.final_check(report, list(proc.acks))

    def final_check(self, report: CrashReport, acked: list) -> None:
        """Recover once more here and compare with the venue's in-process queries, which stand
        still now: recovery pulled every quote, so nothing of ours can trade."""
        config, symbols, limits_text = proc_main.engine_inputs()
        result = recover(RecoverySettings(journal=self.journal, config=config, symbols=symbols,
                                          limits_text=limits_text, venue=("127.0.0.1", self.venue.ports.ouch),
                                          username=USER, password=proc_main.PASSWORD, quiet=0.1,
                                          snapshots=self.snapshots))
        report.final_reconciled = result.reconciled
        self.judge_tail(result.tail)
        report.final_lost = lost_acks(self.journal, acked)
        state = proc_main.engine_state(result.engine)
        venue = self.venue.venue
        diffs = compare_with_venue(state, self.venue.messages())
        held = {k: v for k, v in venue.position(USER).items() if v}
        if state["positions"] != held:
            diffs.append(f"positions: engine {state['positions']} venue (in-process) {held}")
        live_venue = {o.token for o in venue.live_orders(USER)}
        live_engine = {t for t, o in state["orders"].items() if not o[3]}
        if live_venue != live_engine:
            diffs.append(f"live orders: engine {sorted(live_engine)} venue {sorted(live_venue)}")
        report.final_differences = diffs + ([] if result.reconciled else result.reasons)

    def close(self) -> None:
        if self._standby is not None:
            self._standby.join()
        if self.spare is not None:
            self.spare.close()
        self.venue.close()


def run_crash_drill(settings: CrashSettings, progress: Callable[[CrashRun], None] | None = None) -> CrashReport:
    """Kill, restart, recover and resume `settings.runs` times; see the module docstring. The
    result is journaled as a DRILL_RESULT record in the engine's journal."""
    if settings.runs < 1:
        raise DrillError("runs must be at least 1")
    # the journal outlives the drill: it holds the DRILL_RESULT evidence
    journal = drill_journal(settings.journal_dir, "mmaudit-crash-journal-")
    started = time.monotonic()
    with scratch_dir("mmaudit-crash-") as tmp:
        workdir = pathlib.Path(tmp)
        report = CrashReport(settings.seed, journal, load=(os.getloadavg()[0], 0.0))
        with result_on_abort(report, started, lambda doc: journal_result(journal, doc)):
            try:
                drill = _CrashDrill(settings, workdir, journal, progress)
            except Exception as exc:
                raise DrillError(f"cannot start the venue: {exc}") from exc
            try:
                drill.run(report)
            finally:
                drill.close()
        report.seconds = time.monotonic() - started
        report.load = (report.load[0], os.getloadavg()[0])
        report.result_seq = journal_result(journal, report.as_dict())
    return report
