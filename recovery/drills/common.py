"""What the process drills (crash, venue-disconnect, feed-gap) share: the embedded venue in the
drill's process (the authority), engine processes (a warm spare's forks or cold interpreters) and
their report lines, the live session a drill runs on, and the judges — acknowledged records still in
the journal, the engine's positions and order states equal to the venue's session log — plus the
DRILL_RESULT record that makes a drill evidence and the frame of a drill on one live session.

Must not recover, reconnect or decide anything itself: the engine processes do
(recovery.drills._engine_proc); each drill module owns its schedule and verdict.
"""
from __future__ import annotations

import contextlib
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
import zlib
from dataclasses import dataclass
from typing import Callable

from journal import Journal, JournalError, Reader
from journal.catalogue import RecordType, pack_json
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.drills import _engine_proc as proc_main
from journal.scratch import scratch_dir
from recovery.errors import RecoveryError
from recovery.reconcile import venue_view

__all__ = ["DrillError", "result_on_abort", "DrillReport", "DrillVenue", "EngineProcess", "LiveSession", "Spare", "WAIT_S",
           "compare_with_venue", "engine_args", "format_table", "journal_result", "lost_acks",
           "refuse_used_journal", "run_live_drill", "run_rows", "stop_engine"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
USER = proc_main.USER
WAIT_S = 15.0                 # bound on every wait for an engine process (start, recovery, quote)


class DrillError(RecoveryError):
    """A drill could not run (the venue or an engine process failed to start or to answer)."""


def refuse_used_journal(path: str | None, error: type[Exception] = DrillError) -> None:
    """A drill starts a new session of a fresh engine on its journal: a --journal that already
    holds records is refused (`error`) before the drill writes anything, since the new session
    would make a journal of two sessions, which no recovery can replay (SecondSession). No
    journal there yet, or not a readable one: nothing to say here (the writer's open says it)."""
    if not path or not os.path.isdir(path):
        return
    try:
        with Reader(path) as reader:
            records = len(reader)
    except JournalError:
        return
    if records:
        raise error(f"journal {path} already holds {records} records: a drill starts a new session "
                    f"of a fresh engine, so it needs an empty or new --journal (the journal is "
                    f"left as it was)")


def drill_journal(path: str | None, prefix: str, error: type[Exception] = DrillError) -> str:
    """The drill's journal directory: `path` (refused if it already holds records, made with its
    parents if missing) or a new temporary one. One that cannot be made or written is refused
    (`error`) here, naming it, before the venue or an engine process starts (an engine process
    would fail on it only after the drill's start-up wait)."""
    refuse_used_journal(path, error)
    try:
        if not path:
            return tempfile.mkdtemp(prefix=prefix)
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot make the journal directory {path or tempfile.gettempdir()}: "
                    f"{exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise error(f"cannot write in the journal directory {path}: permission denied")
    return path


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
        self.fifo = os.path.abspath(workdir / f"report-{time.monotonic_ns()}.fifo")
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
    # the engine process runs in the repository (cwd=ROOT): paths it is handed are made absolute
    # here, so a relative --journal names the same directory for it as for the caller
    args = ["--journal", os.path.abspath(journal), "--ouch", str(ouch or venue.ports.ouch),
            "--itch", str(venue.itch_port), "--rerequest", str(rerequest or venue.ports.rerequest),
            "--segment-size", str(segment_size), "--seconds", str(seconds), "--reconnects", str(reconnects)]
    if snapshots:
        args += ["--snapshots", os.path.abspath(snapshots)]
    if stop_file:
        args += ["--stop-file", os.path.abspath(stop_file)]
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
        self._tmp = scratch_dir(prefix)
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
    payload = pack_json(doc)
    # a segment big enough for the record (a drill of a thousand runs writes a few hundred KiB)
    size = max(1 << 16, 1 << (2 * len(payload) + 4096).bit_length())
    try:
        with Journal(path, segment_size=size) as journal:
            return journal.append(RecordType.DRILL_RESULT, payload, ts_ns=time.time_ns())
    except JournalError as exc:
        raise DrillError(f"cannot journal the DRILL_RESULT at {path}: {exc}") from exc


@contextlib.contextmanager
def result_on_abort(report, started: float, record: Callable[[dict], int]):
    """A drill's body: if it raises, its partial report (passed false, the error named, its
    seconds so far) goes through `record` as the drill's DRILL_RESULT, then the error goes on as
    it was; a journal that cannot take the record adds a note to it. An aborted drill is evidence
    too: it leaves a result, not only a traceback."""
    try:
        yield
    except Exception as exc:
        report.seconds = time.monotonic() - started
        doc = {**report.as_dict(), "passed": False,
               "error": {"type": type(exc).__name__, "message": str(exc)}}
        try:
            report.result_seq = record(doc)
        except Exception as journal_exc:     # noqa: BLE001 (the drill's own error is what is raised)
            exc.add_note(f"its DRILL_RESULT could not be journaled: {type(journal_exc).__name__}: "
                         f"{journal_exc}")
        raise


@dataclass
class DrillReport:
    """What every drill's report carries; subclasses add their rows and verdict."""

    seed: int
    journal: str
    seconds: float = 0.0
    result_seq: int = 0


def run_live_drill(name: str, what: str, count: int, settings,
                   make_report: Callable[[int, str], DrillReport],
                   body: Callable[[LiveSession, str, DrillReport, random.Random], None]) -> DrillReport:
    """The frame of drill `name` on one live session: `count` (of `what`) checked, a journal (the
    settings' or a new temporary one, kept: it holds the evidence), the venue and relays closed
    whatever happens, and the report journaled as a DRILL_RESULT record at the end."""
    if count < 1:
        raise DrillError(f"{what} must be at least 1")
    journal = drill_journal(settings.journal_dir, f"mmaudit-{name}-journal-")
    started = time.monotonic()
    report = make_report(settings.seed, journal)
    with result_on_abort(report, started, lambda doc: journal_result(journal, doc)):
        live = LiveSession(f"mmaudit-{name}-", settings.seed, 60.0 + 10.0 * count)
        try:
            body(live, journal, report, random.Random(settings.seed))
        finally:
            live.close()
    report.seconds = time.monotonic() - started
    report.result_seq = journal_result(journal, report.as_dict())
    return report
