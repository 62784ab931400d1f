"""The crash drill: a real engine process (runner + engine + journal) trading with the embedded venue
on loopback is SIGKILLed again and again — at random moments and at exact hook points (inside an
append, between an order's append and its send, at a segment roll) — restarted, recovered, resumed.

Owns the kill plan (deterministic from the seed), the engine processes' lifecycle, and the verdict:
no acknowledged journal record lost, and the engine's positions and order states equal to the
venue's own (its session log and in-process queries, never the engine's word). Also the pieces the
other process drills share. Must not recover anything itself: it calls recovery (recover, and
replay_journal as the standby that keeps engine snapshots between kills).
"""
from __future__ import annotations

import json
import os
import pathlib
import queue
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from journal import Journal, JournalError, Reader
from journal.catalogue import RecordType, pack_json
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.drills import _engine_proc as proc_main
from recovery.errors import RecoveryError
from recovery.reconcile import venue_view
from recovery.recover import RecoverySettings, recover
from recovery.replay import replay_journal

__all__ = ["DrillError", "CrashSettings", "CrashRun", "CrashReport", "KILL_POINTS", "run_crash_drill",
           "EngineProcess", "Spare", "DrillVenue", "engine_args", "compare_with_venue", "journal_result",
           "format_table", "stop_engine", "LiveSession", "run_rows"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
USER = proc_main.USER
RANDOM = "random"
KILL_POINTS = (RANDOM,) + proc_main.HOOKS
WAIT_S = 15.0                 # bound on every wait for an engine process (start, recovery, quote)
HOOK_WAIT_S = 3.0             # a hook not reached by then: the kill falls back to a random moment


class DrillError(RecoveryError):
    """A drill could not run (the venue or an engine process failed to start or to answer)."""


# ------------------------------------------------------------------------------ shared pieces

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def format_table(head: tuple[str, ...], rows: list[tuple]) -> str:
    lines = [tuple(head)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in lines)


class DrillVenue:
    """The embedded venue in this process (its session log and live orders are the authority)."""

    def __init__(self, workdir: pathlib.Path, seed: int, duration: float) -> None:
        self.itch_port = free_udp_port()
        config = load_config().with_venue(itch_port=self.itch_port, duration=duration, seed=seed,
                                          log_dir=str(workdir / "venue"), heartbeat_timeout=120.0)
        self.venue = Venue(config)
        self.venue.start()
        self.ports = self.venue.ports

    def messages(self, first: int = 1) -> list[bytes]:
        return self.venue.session_messages(USER, first)

    def settled_messages(self, quiet: float = 0.2, limit: float = 3.0) -> list[bytes]:
        """The session log once the venue has answered what was in flight (no new message for
        `quiet` s, at most `limit` s): an engine's last orders may still be on their way."""
        log, deadline = self.messages(), time.monotonic() + limit
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.messages()
            if len(now) == len(log):
                break
            log = now
        return log

    def close(self) -> None:
        self.venue.stop()


class Spare:
    """A warm spare engine process (`_engine_proc --spare`): Python and every module already
    loaded, it forks a fresh engine process per restart and alone kills and reaps them."""

    def __init__(self, log_path: pathlib.Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "recovery.drills._engine_proc", "--spare"],
                                     cwd=ROOT, env=_child_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(log_path, "ab"), bufsize=0)
        self.lock = threading.Lock()
        if self._line(WAIT_S * 2) != "Z":
            self.close()
            raise DrillError("the warm spare engine process did not start")

    def _line(self, timeout: float) -> str:
        ready = select.select([self.proc.stdout], [], [], timeout)[0]
        return self.proc.stdout.readline().decode().strip() if ready else ""

    def fork(self, argv: list[str], hook: str, log_path: pathlib.Path) -> int:
        with self.lock:
            job = json.dumps({"argv": argv, "hook": hook, "log": str(log_path)})
            self.proc.stdin.write(f"R {job}\n".encode())
            reply = self._line(WAIT_S)
        if not reply.startswith("P "):
            raise DrillError(f"the warm spare did not fork an engine process ({reply!r})")
        return int(reply[2:])

    def kill(self, pid: int) -> int:
        with self.lock:
            self.proc.stdin.write(f"K {pid}\n".encode())
            reply = self._line(WAIT_S)
        if not reply.startswith(f"D {pid} "):
            raise DrillError(f"the warm spare did not reap engine process {pid} ({reply!r})")
        return int(reply.split()[2])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT_S)
        self.proc.stdout.close()


def _child_env() -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop(proc_main.HOOK_ENV, None)
    return env


class EngineProcess:
    """One engine process (forked by a warm spare, or a cold `python3 -m ...` when spare is None),
    with its report FIFO read on a thread: acknowledged appends are collected in `acks`, every
    other line is queued for `expect`."""

    def __init__(self, args: list[str], workdir: pathlib.Path, hook: str = "", spare: Spare | None = None) -> None:
        self.log_path = workdir / "engine.log"
        self.fifo = str(workdir / f"report-{time.monotonic_ns()}.fifo")
        os.mkfifo(self.fifo)
        self.acks: list[tuple[int, int, int]] = []       # (seq, rtype, crc32 of the payload)
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True, name="drill-engine-report")
        self._reader.start()
        self.spare = spare
        argv = args + ["--report", self.fifo]
        self.started_ns = time.monotonic_ns()
        if spare is not None:
            self.pid, self.proc = spare.fork(argv, hook, self.log_path), None
        else:
            env = _child_env()
            if hook:
                env[proc_main.HOOK_ENV] = hook
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen([sys.executable, "-m", "recovery.drills._engine_proc", *argv],
                                             cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            self.pid = self.proc.pid

    def _read(self) -> None:
        pending = b""
        with open(self.fifo, "rb", buffering=0) as pipe:      # blocks until the engine opens it
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    kind, _, text = raw.decode().partition(" ")
                    if kind == "A":
                        seq, rtype, crc = text.split()
                        self.acks.append((int(seq), int(rtype), int(crc)))
                    else:
                        self.lines.put((kind, text))
        self.lines.put(("EOF", ""))

    def expect(self, kinds: str, timeout: float = WAIT_S) -> tuple[str, str]:
        """The next line of one of `kinds` (letters); ("EOF", "") when the process ended first,
        ("TIMEOUT", "") when nothing came in time. Other lines are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, text = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return "TIMEOUT", ""
            if kind in kinds or kind == "EOF":
                return kind, text

    def kill(self) -> int:
        """SIGKILL and reap (the pid stays ours until then); the report is read to its end."""
        if self.spare is not None:
            code = self.spare.kill(self.pid)
        else:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            code = self.proc.wait(WAIT_S)
        if self._reader.is_alive():
            try:     # the engine died before opening the FIFO: open its other end to free the reader
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            self._reader.join(WAIT_S)
        os.unlink(self.fifo)
        return code

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""


def engine_args(journal: str, venue: DrillVenue, *, recover_first: bool, segment_size: int,
                seconds: float, snapshots: str | None = None, rerequest: int | None = None,
                ouch: int | None = None, reconnects: int = 0, stop_file: str | None = None) -> list[str]:
    args = ["--journal", journal, "--ouch", str(ouch or venue.ports.ouch), "--itch", str(venue.itch_port),
            "--rerequest", str(rerequest or venue.ports.rerequest), "--segment-size", str(segment_size),
            "--seconds", str(seconds), "--reconnects", str(reconnects)]
    if snapshots:
        args += ["--snapshots", snapshots]
    if stop_file:
        args += ["--stop-file", stop_file]
    return args + (["--recover"] if recover_first else [])


def stop_engine(proc: EngineProcess, stop_file: str) -> dict:
    """Ask a running engine process to stop (its stop file) and return the state it reports."""
    pathlib.Path(stop_file).touch()
    kind, text = proc.expect("E", WAIT_S)
    code = proc.kill()
    if kind != "E":
        raise DrillError(f"the engine did not stop and report its state ({kind}, exit {code}): "
                         f"{proc.log_tail()}")
    return json.loads(text)


class LiveSession:
    """A venue in this process, the relays a drill puts in front of it, and one fresh engine
    process quoting on it; `close()` ends them all (engine first), whatever happened."""

    def __init__(self, prefix: str, seed: int, duration: float) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.workdir = pathlib.Path(self._tmp.name)
        self._closers: list[Callable[[], None]] = [self._tmp.cleanup]
        self.venue = DrillVenue(self.workdir, seed, duration=duration)
        self._closers.append(self.venue.close)
        self.stop_file = str(self.workdir / "stop")
        self.proc: EngineProcess | None = None

    def closing(self, thing):
        """Close `thing` (a relay) when the session closes; returns it."""
        self._closers.append(thing.close)
        return thing

    def start_engine(self, journal: str, seconds: float, **engine_kw) -> EngineProcess:
        """A fresh engine process; returns once it sent its first quote."""
        self.proc = EngineProcess(engine_args(journal, self.venue, recover_first=False,
                                              segment_size=1 << 20, seconds=seconds,
                                              stop_file=self.stop_file, **engine_kw), self.workdir)
        if self.proc.expect("Q")[0] != "Q":
            raise DrillError(f"the engine did not quote within {WAIT_S:g} s: {self.proc.log_tail()}")
        return self.proc

    def stop_engine(self) -> dict:
        proc, self.proc = self.proc, None
        return stop_engine(proc, self.stop_file)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc = None
        for close in reversed(self._closers):
            close()


def run_rows(count: int, one: Callable[[int], object], rows: list, progress) -> None:
    """Rows 1..count made by `one(number)`, each reported to `progress`; stops at the first failure
    (the system is no longer in the state the next row assumes)."""
    for number in range(1, count + 1):
        row = one(number)
        rows.append(row)
        if progress is not None:
            progress(row)
        if not row.passed:
            break


def lost_acks(journal: str, acks: list[tuple[int, int, int]]) -> list[str]:
    """Acknowledged records that the journal no longer holds as acknowledged (type and CRC32)."""
    if not acks:
        return []
    import zlib
    want = {seq: (rtype, crc) for seq, rtype, crc in acks}
    have: dict[int, tuple[int, int]] = {}
    with Reader(journal) as reader:
        for rec in reader.records(first_seq=min(want), last_seq=max(want)):
            if rec.seq in want:
                have[rec.seq] = (int(rec.rtype), zlib.crc32(bytes(rec.payload)))
    return [f"seq {seq}: " + ("missing" if seq not in have else "changed")
            for seq, expected in sorted(want.items()) if have.get(seq) != expected]


def compare_with_venue(state: dict, venue_messages: list[bytes]) -> list[str]:
    """Differences between an engine's positions and order states and the venue's session log
    folded up to the venue sequence the engine reached. Empty when they agree."""
    upto = state["venue_seq"]
    if upto > len(venue_messages):
        return [f"the engine saw venue sequence {upto}, the venue's log has {len(venue_messages)}"]
    view = venue_view(enumerate(venue_messages[:upto], start=1))
    diffs = []
    held = {k: v for k, v in state["positions"].items() if v}
    if held != view.positions:
        diffs.append(f"positions: engine {held} venue {view.positions}")
    in_flight = venue_view(enumerate(venue_messages, start=1)).orders if upto < len(venue_messages) else {}
    for token, (status, leaves, filled, terminal) in state["orders"].items():
        v = view.orders.get(token)
        if v is None:
            if status == "pending-new" and token in in_flight:
                continue       # sent, and answered by the venue after the engine stopped reading
            if not terminal or filled:
                diffs.append(f"{token}: {status} in the engine, unknown to the venue")
            continue
        live = v.status == "live"
        if live == terminal or v.executed != filled or (live and v.leaves != leaves):
            diffs.append(f"{token}: engine {status} leaves {leaves} filled {filled}; venue {v.status} "
                         f"leaves {v.leaves} executed {v.executed}")
    for token, v in view.orders.items():
        # the OMS forgets closed orders in time; their fills live on in the positions compared above
        if token not in state["orders"] and v.status == "live":
            diffs.append(f"{token}: live at the venue (leaves {v.leaves}), unknown to the engine")
    return diffs


def journal_result(path: str, doc: dict) -> int:
    """Append the drill's result as a DRILL_RESULT record (the drill itself is evidence)."""
    try:
        with Journal(path, segment_size=1 << 16) as journal:
            return journal.append(RecordType.DRILL_RESULT, pack_json(doc), ts_ns=time.time_ns())
    except JournalError as exc:
        raise DrillError(f"cannot journal the DRILL_RESULT at {path}: {exc}") from exc


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

    @property
    def passed(self) -> bool:
        return (self.reconciled and not self.lost and not self.differences and self.rto_s >= 0
                and self.hook_check in ("", "ok"))


@dataclass
class CrashReport:
    seed: int
    journal: str
    runs: list[CrashRun] = field(default_factory=list)
    final_differences: list[str] = field(default_factory=list)
    final_lost: list[str] = field(default_factory=list)
    final_reconciled: bool = False
    seconds: float = 0.0
    result_seq: int = 0

    @property
    def lost(self) -> int:
        return sum(len(r.lost) for r in self.runs) + len(self.final_lost)

    @property
    def differences(self) -> int:
        return sum(len(r.differences) for r in self.runs) + len(self.final_differences)

    @property
    def passed(self) -> bool:
        return (bool(self.runs) and all(r.passed for r in self.runs) and self.final_reconciled
                and not self.final_differences and not self.final_lost)

    def rto_percentile(self, q: float) -> float:
        values = sorted(r.rto_s for r in self.runs if r.rto_s >= 0)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

    def as_dict(self) -> dict:
        return {"drill": "crash", "seed": self.seed, "journal": self.journal, "passed": self.passed,
                "seconds": round(self.seconds, 3), "lost": self.lost, "differences": self.differences,
                "rto_p50_s": round(self.rto_percentile(0.5), 6), "rto_p99_s": round(self.rto_percentile(0.99), 6),
                "final": {"reconciled": self.final_reconciled, "differences": self.final_differences,
                          "lost": self.final_lost},
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
    every kill point appears in each block of four runs, in a seeded order."""
    plan = []
    while len(plan) < runs:
        block = list(KILL_POINTS)
        rng.shuffle(block)
        for point in block:
            nth = {proc_main.IN_APPEND: rng.randint(1, 60), proc_main.AFTER_APPEND: rng.randint(1, 4),
                   proc_main.SEGMENT_ROLL: 1}.get(point, 0)
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
            wait = HOOK_WAIT_S * (4 if point == proc_main.SEGMENT_ROLL else 1)
            kind, text = proc.expect("H", wait)
            if kind == "H":
                run.kill_detail = text
            else:
                run.kill_detail = f"hook not reached in {wait:g} s: killed then"
                run.kill_point = f"{point} (fallback)"
        if kind == "EOF":
            raise DrillError(f"the engine process ended by itself before its kill: {proc.log_tail()}")
        code = proc.kill()
        if code != -signal.SIGKILL:
            raise DrillError(f"the engine process ended with {code}, not by SIGKILL")
        if kind == "H":
            run.hook_check = self.check_hook(run.kill_detail)

    def check_hook(self, detail: str) -> str:
        """Proof that the process died where the hook says, from the journal and the venue:
        "ok", or what contradicts it."""
        words = detail.split()
        seq = int(words[words.index("seq") + 1])
        with Reader(self.journal) as reader:
            published = reader.last_seq >= seq
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
                           snapshot_every=self.settings.snapshot_every)
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
            if self.progress is not None:
                self.progress(run)
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
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mmaudit-crash-") as tmp:
        workdir = pathlib.Path(tmp)
        # the journal outlives the drill: it holds the DRILL_RESULT evidence
        journal = settings.journal_dir or tempfile.mkdtemp(prefix="mmaudit-crash-journal-")
        report = CrashReport(settings.seed, journal)
        try:
            drill = _CrashDrill(settings, workdir, journal, progress)
        except Exception as exc:
            raise DrillError(f"cannot start the venue: {exc}") from exc
        try:
            drill.run(report)
        finally:
            drill.close()
        report.seconds = time.monotonic() - started
        report.result_seq = journal_result(journal, report.as_dict())
    return report
