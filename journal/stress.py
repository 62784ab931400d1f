"""Crash and power-loss drivers for the journal: SIGKILLed writer processes and simulated power cuts.

Owns the deterministic record generator (every payload is derived from a logical index), the
checker that proves a journal read back is an intact prefix of what was written, and the two
drivers with their reports. Must not know the on-disk format: power loss is simulated on raw file
bytes, 512-byte sector by sector, the way SQLite's crash-test VFS does it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import pathlib
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import time

import numpy as np

from journal.catalogue import PAYLOAD_DTYPES, RecordType
from journal.scratch import scratch_dir as locked_scratch

SECTOR = 512
CORE_RTYPES = frozenset({int(RecordType.CHECKPOINT), int(RecordType.SEAL)})  # written by the C core
BATCH_BLOCK = 32          # logical indexes are grouped in blocks; some blocks are written as batches
BATCH_TS_SOURCE, BATCH_CLOCK_STATE = 1, 1   # TsSource.HW_PHC, ClockState.LOCKED
TS_BASE_NS = 1_763_700_000_000_000_000
_TIMER = struct.Struct("<Iq")
assert _TIMER.size == PAYLOAD_DTYPES[RecordType.TIMER].itemsize
# Filler the variable payloads are cut from: fixed seed, so writer and checker agree without talking.
_FILLER = np.random.default_rng(20261121).integers(0, 256, 1 << 16, dtype=np.uint8).tobytes()
_MASK64 = (1 << 64) - 1


class StressError(Exception):
    """A stress driver could not run (as opposed to a journal failing the check)."""


def _mix(x: int) -> int:
    """splitmix64 finaliser: a well-spread hash of an index, the same in every process."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@dataclasses.dataclass(frozen=True)
class Expected:
    rtype: int
    payload: bytes
    ts_ns: int
    ts_source: int
    clock_state: int


def in_batch_block(idx: int) -> bool:
    """A quarter of the index blocks are written with append_batch (small MD_PACKET payloads)."""
    return _mix(idx // BATCH_BLOCK ^ 0xB47C4) % 4 == 0


def _variable_payload(idx: int, size: int) -> bytes:
    offset = _mix(idx ^ 0xF111) % (len(_FILLER) - size)
    return idx.to_bytes(8, "little") + _FILLER[offset: offset + size - 8]


@functools.lru_cache(maxsize=1 << 16)   # chains of kills re-check the same indexes many times
def expected_record(idx: int) -> Expected:
    """The record with logical index `idx` (0-based count of non-core records in a journal)."""
    h = _mix(idx)
    ts_ns = TS_BASE_NS + idx * 1000
    if in_batch_block(idx):
        # append_batch takes a timestamp per record but one source and clock state for the batch;
        # half the batch blocks have one payload size throughout (written from a numpy array: the
        # C core's fixed-size runs), the others a size per record (a list of bytes).
        block = _mix(idx // BATCH_BLOCK ^ 0xF1ED)
        size = 16 + (block >> 8) % 200 if block % 2 == 0 else 16 + h % 200
        return Expected(int(RecordType.MD_PACKET), _variable_payload(idx, size), ts_ns,
                        BATCH_TS_SOURCE, BATCH_CLOCK_STATE)
    if (h >> 40) % 7 == 0:
        payload = _TIMER.pack(idx & 0xFFFFFFFF, ts_ns)
        return Expected(int(RecordType.TIMER), payload, ts_ns, idx % 5, idx % 4)
    pick = (h >> 8) & 0xFF
    if pick < 8:
        size = 1500 + (h >> 16) % 2600      # large: makes small segments roll often
    elif pick < 48:
        size = 8 + (h >> 16) % 16           # tiny
    else:
        size = 16 + (h >> 16) % 300
    return Expected(int(RecordType.MD_PACKET), _variable_payload(idx, size), ts_ns, idx % 5, idx % 4)


def batch_end(idx: int, stop: int) -> int:
    """One past the last index of the batch starting at `idx` (the rest of its block)."""
    return min(stop, (idx // BATCH_BLOCK + 1) * BATCH_BLOCK)


def write_records(journal, start: int, stop: int, on_ack=None) -> None:
    """Append logical records start..stop-1; call on_ack(idx, count, first_seq) after each append returns."""
    idx = start
    while idx < stop:
        if in_batch_block(idx):
            end = batch_end(idx, stop)
            recs = [expected_record(i) for i in range(idx, end)]
            payloads = [r.payload for r in recs]
            if len({len(p) for p in payloads}) == 1:   # one size: a numpy array of raw rows
                payloads = np.frombuffer(b"".join(payloads), dtype=np.dtype((np.void, len(payloads[0]))))
            first = journal.append_batch(recs[0].rtype, payloads, [r.ts_ns for r in recs],
                                         BATCH_TS_SOURCE, BATCH_CLOCK_STATE)
        else:
            end = idx + 1
            r = expected_record(idx)
            first = journal.append(r.rtype, r.payload, ts_ns=r.ts_ns, ts_source=r.ts_source,
                                   clock_state=r.clock_state)
        if on_ack is not None:
            on_ack(idx, end - idx, first)
        idx = end


# --------------------------------------------------------------------------------------------
# Checking a journal against the generator


@dataclasses.dataclass
class Readback:
    """What a journal held: the sequence of each logical record, in order."""

    seqs: list[int]
    core_records: int
    problem: str | None = None
    recovery: object = None     # the writer open's RecoveryReport, when the read recovered first


def read_back(path, *, recover: bool = True, create: bool = False,
              segment_size: int = 64 * 1024) -> Readback:
    """Open as writer (recovery) unless told not to, then read everything and check every record.

    `create` as the writer had it: a writer killed while creating the journal leaves no journal,
    and the next writer must be able to create it. Stops at the first record that does not match
    the generator and names it in `problem`.
    """
    from journal import Journal, Reader
    recovery = None
    if recover:
        writer = Journal(str(path), create=create, segment_size=segment_size)
        recovery = writer.recovery
        writer.close()
    seqs: list[int] = []
    core = 0
    last_seq = None
    for rec in Reader(str(path)):
        if rec.rtype in CORE_RTYPES:   # control records carry the next data seq without taking it
            core += 1
            continue
        if last_seq is not None and rec.seq != last_seq + 1:
            return Readback(seqs, core, f"sequence jumps from {last_seq} to {rec.seq}", recovery)
        last_seq = rec.seq
        idx = len(seqs)
        want = expected_record(idx)
        got = (rec.rtype, bytes(rec.payload), rec.ts_ns, rec.ts_source, rec.clock_state)
        if got != (want.rtype, want.payload, want.ts_ns, want.ts_source, want.clock_state):
            return Readback(seqs, core, f"record seq {rec.seq} (index {idx}) differs from what was "
                                        f"written: rtype {rec.rtype}, {len(got[1])} payload bytes", recovery)
        seqs.append(rec.seq)
    return Readback(seqs, core, None, recovery)


def check_prefix(back: Readback, must_have: list[int], may_have: int) -> str | None:
    """None if `back` holds every record of `must_have` (their seqs) and at most `may_have` records."""
    if back.problem:
        return back.problem
    if len(back.seqs) < len(must_have):
        return f"lost acknowledged records: read {len(back.seqs)}, {len(must_have)} were acknowledged"
    if back.seqs[: len(must_have)] != must_have:
        first = next(i for i, (a, b) in enumerate(zip(back.seqs, must_have)) if a != b)
        return f"record index {first} has seq {back.seqs[first]}, append returned {must_have[first]}"
    if len(back.seqs) > may_have:
        return f"read {len(back.seqs)} records, only {may_have} were ever appended"
    return None


# --------------------------------------------------------------------------------------------
# Process crash: writers forked from a zygote process and SIGKILLed at random points


@dataclasses.dataclass
class _Report:
    """Counts of a stress run: how many failed and the first failure, in words."""

    failures: int = 0
    first_failure: str | None = None
    seconds: float = 0.0

    def fail(self, message: str) -> None:
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = message


@dataclasses.dataclass
class KillReport(_Report):
    runs: int = 0
    killed: int = 0            # runs ended by SIGKILL
    killed_in_open: int = 0    # of which before the writer had opened (i.e. during recovery)
    clean_exits: int = 0       # runs that reached their record budget and closed
    journals: int = 0          # distinct journal directories used
    acked: int = 0             # records whose append returned before the kill
    verified: int = 0          # records read back intact after recovery (summed over runs)

    @property
    def ok(self) -> bool:
        return self.failures == 0 and self.runs > 0


class _Zygote:
    """A python3 process that has imported the journal and forks one writer per run (fast starts)."""

    def __init__(self) -> None:
        root = str(pathlib.Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen([sys.executable, "-m", "journal._stress_writer"], cwd=root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._buf = b""
        line = self.line(time.monotonic() + 60)
        if line != "Z":
            raise StressError(f"stress writer did not start: {line!r}")

    def line(self, deadline: float) -> str | None:
        """Next line from the zygote or its children; None at the deadline."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise StressError(f"stress writer exited (status {self.proc.wait()})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def kill(self) -> None:
        """SIGKILL the running writer (the zygote does it: it alone can without racing pid reuse)."""
        self.proc.stdin.write(b"K\n")

    def start(self, job: dict) -> int:
        self.proc.stdin.write(b"R " + json.dumps(job).encode() + b"\n")
        line = self.line(time.monotonic() + 30)
        if not line or not line.startswith("P "):
            raise StressError(f"no pid from stress writer: {line!r}")
        return int(line[2:])

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _one_kill_run(zyg: _Zygote, rng: random.Random, job: dict, report: KillReport):
    """Start a writer and kill it at a random point.

    Returns the acknowledged (idx, seq) pairs, an error or None, and whether the writer closed
    cleanly (it reached its budget before the kill).
    """
    budget = job["stop"] - job["start"]
    style = rng.random()
    # The driver reads acks behind the writer, so aim at the first two thirds to land mid-stream.
    kill_after = None if style < 0.08 else (0 if style < 0.18 else rng.randint(1, max(1, budget * 2 // 3)))
    zyg.start(job)
    acks: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60
    error = None
    killed = False
    if kill_after == 0:
        time.sleep(rng.random() * 0.004)   # somewhere inside open: recovery, lock takeover, mmap
        zyg.kill()
        killed = True
    while True:
        line = zyg.line(deadline)
        if line is None:
            zyg.kill()
            killed = True
            error = f"writer hung (no progress in 60 s, {len(acks)} acks)"
            deadline = time.monotonic() + 30
            continue
        kind, _, rest = line.partition(" ")
        if kind == "A":
            idx, count, first = map(int, rest.split())
            acks.extend((i, first + i - idx) for i in range(idx, idx + count))
            if kill_after is not None and not killed and len(acks) >= kill_after:
                zyg.kill()
                killed = True
        elif kind == "E":
            error = error or f"writer raised: {rest}"
        elif kind == "D":
            status = int(rest.split()[1])
            break
    clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        report.killed += 1
        report.killed_in_open += kill_after == 0
    elif clean:
        report.clean_exits += 1
    elif error is None:
        error = f"writer ended with status {status:#x}"
    return acks, error, clean


def _check_recovery_report(recovery, clean: bool, mid_stream: bool) -> str | None:
    """What the next open says about the previous writer must match how that writer ended."""
    if clean and not (recovery.previous_clean and recovery.clean):
        return f"after a clean close the next open reports {recovery}"
    if mid_stream and recovery.previous_clean:
        return "after a SIGKILL the next open says the previous writer closed cleanly"
    return None


def _kill_worker(worker: int, runs: range, seed: int, workdir: pathlib.Path, chain: int,
                 segment_size: int, max_records: int) -> KillReport:
    """One zygote's share of the runs, on its own journals."""
    rng = random.Random(seed * 1009 + worker)
    report = KillReport()
    zyg = _Zygote()
    try:
        known: list[int] = []   # seqs of the records the journal holds (all must survive)
        path = None
        for count, run in enumerate(runs):
            if path is None or count % chain == 0:
                if path is not None:
                    shutil.rmtree(path, ignore_errors=True)
                path = workdir / f"kill-{seed}-{run}"
                known = []
                report.journals += 1
            start = len(known)
            durability = rng.choice(["pagecache", "pagecache", "group", "sync"])
            # sync mode pays an msync per record: fewer records keep its runs as quick as the rest
            budget = rng.randint(5, 80) if durability == "sync" else rng.randint(20, max_records)
            job = {"path": str(path), "start": start, "stop": start + budget,
                   "durability": durability, "segment_size": segment_size}
            report.runs += 1
            acks, error, clean = _one_kill_run(zyg, rng, job, report)
            report.acked += len(acks)
            if error is None and [i for i, _ in acks] != list(range(start, start + len(acks))):
                error = "writer acknowledged indexes out of order"
            if error is None:
                try:
                    back = read_back(path, create=True, segment_size=segment_size)
                except Exception as exc:   # a journal that cannot be reopened is a failed run
                    back = Readback([], 0, f"reopen failed: {type(exc).__name__}: {exc}")
                error = (check_prefix(back, known + [s for _, s in acks], job["stop"])
                         or _check_recovery_report(back.recovery, clean, 0 < len(acks) < budget))
                report.verified += len(back.seqs)
                known = back.seqs
            if error is not None:
                report.fail(f"run {run} (seed {seed}, journal {path.name}, {durability}): {error}")
                path = None    # a journal that failed once proves nothing more
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
    finally:
        zyg.close()
    return report


def kill_runs(runs: int, seed: int, workdir, *, workers: int = 2, chain: int = 12,
              segment_size: int = 64 * 1024, max_records: int = 1500) -> KillReport:
    """SIGKILL a journal writer `runs` times at seeded random points; check every recovery.

    One journal is reused for `chain` successive kills (reopen, recover, append more, kill again),
    then a new one is started. After each kill the journal is reopened as writer and read back:
    every record whose append returned must be there with the seq append returned, every record
    must match what was written, and sequences must be contiguous. `workers` zygotes run their
    shares side by side (the writers mostly wait on msync and fsync).
    """
    from concurrent.futures import ThreadPoolExecutor
    workdir = pathlib.Path(os.path.abspath(workdir))   # the writers run with the repository as cwd
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda w: _kill_worker(w, range(w, runs, workers), seed, workdir, chain,
                                                     segment_size, max_records), range(workers)))
    report = KillReport()
    for part in parts:
        for field in dataclasses.fields(KillReport):
            if field.type == "int":
                setattr(report, field.name, getattr(report, field.name) + getattr(part, field.name))
        report.first_failure = report.first_failure or part.first_failure
    report.seconds = time.monotonic() - started
    return report


# --------------------------------------------------------------------------------------------
# Power loss: every write not yet msynced is kept, dropped or torn, sector by sector


@dataclasses.dataclass
class PowerLossReport(_Report):
    cases: int = 0
    sectors_kept: int = 0
    sectors_dropped: int = 0
    sectors_torn: int = 0
    files_lost: int = 0        # segment files created after the sync point whose creation was lost
    durable: int = 0           # records acknowledged durable before the cut (summed)
    recovered: int = 0         # records read back after the cut (summed)

    @property
    def ok(self) -> bool:
        return self.failures == 0 and self.cases > 0


_FATES = ("sectors_kept", "sectors_dropped", "sectors_torn")


def snapshot(path) -> dict[str, bytes]:
    """Every regular file of a journal directory, read through the page cache (what msync flushes)."""
    path = pathlib.Path(path)
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def cut_power(before: dict[str, bytes], after: dict[str, bytes], rng: random.Random,
              report: PowerLossReport | None = None) -> dict[str, bytes]:
    """The files as a power cut could leave them, given their durable and their written contents.

    Per 512-byte sector that differs: kept (new bytes), dropped (old bytes) or torn (random garbage
    over a random part of the changed span). Bytes a write did not change are never damaged
    (SQLite's powersafe-overwrite assumption; mmap writeback rewrites them unchanged). A file
    created after the sync point may be lost altogether (its directory entry was never flushed).
    """
    out: dict[str, bytes] = {}
    for name in sorted(set(before) | set(after)):
        new = after.get(name)
        if new is None:
            out[name] = before[name]   # a removal after the sync point is not durable either
            continue
        if name not in before and rng.random() < 0.25:
            if report:
                report.files_lost += 1
            continue
        old = before.get(name, b"")
        size = len(new)
        old_arr = np.zeros(size, dtype=np.uint8)
        old_arr[: min(size, len(old))] = np.frombuffer(old, dtype=np.uint8)[:size]
        new_arr = np.frombuffer(new, dtype=np.uint8)
        result = old_arr.copy()
        pad = (-size) % SECTOR
        diff = np.concatenate([old_arr != new_arr, np.zeros(pad, dtype=bool)]).reshape(-1, SECTOR)
        for sector in np.flatnonzero(diff.any(axis=1)):
            lo = int(sector) * SECTOR
            changed = np.flatnonzero(diff[sector])
            first, last = lo + int(changed[0]), lo + int(changed[-1]) + 1
            fate = rng.randrange(3)
            if fate == 0:
                result[first:last] = new_arr[first:last]
            elif fate == 2:
                a = rng.randrange(first, last)
                b = rng.randrange(a, last) + 1
                result[a:b] = np.frombuffer(rng.randbytes(b - a), dtype=np.uint8)
            if report:
                setattr(report, _FATES[fate], getattr(report, _FATES[fate]) + 1)
        out[name] = result.tobytes()
    return out


SCRATCH_PREFIX = "mmaudit-stress-"


@contextlib.contextmanager
def scratch_dir(fallback):
    """A fresh directory on tmpfs (/dev/shm) when there is one, else `fallback`.

    Power-loss images and fuzzed journals are plain bytes, so a disk filesystem adds only the cost
    of real fsyncs (about 100 ms a case on ext4, under 5 ms on tmpfs) and proves nothing more.
    The directory is a journal.scratch one: held by this process's lock, and swept by the next
    run when this process was SIGKILLed (tmpfs is memory: a leftover would hold it until reboot).
    """
    shm = pathlib.Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield pathlib.Path(fallback)
        return
    with locked_scratch(SCRATCH_PREFIX, dir=shm) as path:
        yield pathlib.Path(path)


class DurableImage:
    """What the device holds: the files at the sync point, then every range the writer's sync
    hook reports as msynced or fsynced, copied at that moment (its later writes are not durable).

    Only the file name of a segment is known here (seg-<index %016d>.mmj); a segment first
    reported after the sync point was created with a directory fsync, so it exists, zero-filled.
    """

    def __init__(self, path: pathlib.Path, files: dict[str, bytes]) -> None:
        self.path = path
        self.files = {name: bytearray(data) for name, data in files.items()}
        self.syncs = 0

    def synced(self, segment: int, start: int, stop: int) -> None:
        name = f"seg-{segment:016d}.mmj"
        fd = os.open(self.path / name, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            data = os.pread(fd, stop - start, start)
        finally:
            os.close(fd)
        image = self.files.setdefault(name, bytearray(size))
        image[start:start + len(data)] = data
        self.syncs += 1

    def snapshot(self) -> dict[str, bytes]:
        return {name: bytes(data) for name, data in self.files.items()}


def _write_image(path: pathlib.Path, files: dict[str, bytes]) -> None:
    path.mkdir(parents=True)
    for name, data in files.items():
        (path / name).write_bytes(data)


def powerloss_case(case_seed: int, workdir, report: PowerLossReport, *,
                   segment_size: int = 64 * 1024) -> str | None:
    """One simulated power cut; returns None or what went wrong."""
    from journal import Journal
    rng = random.Random(case_seed)
    workdir = pathlib.Path(workdir)
    live, crashed = workdir / f"pl-{case_seed}", workdir / f"pl-{case_seed}-cut"
    shutil.rmtree(live, ignore_errors=True)
    shutil.rmtree(crashed, ignore_errors=True)
    durability = rng.choice(["sync", "group", "pagecache"])
    if durability == "sync":   # an msync per append: few records, each durable once acknowledged
        durable, pending = rng.choice([0, rng.randint(1, 30)]), rng.randint(1, 8)
    else:                      # up to ~2 segments, so that many cuts fall across a segment roll
        durable = rng.choice([0, rng.randint(1, 60), rng.randint(60, 400)])
        pending = rng.choice([rng.randint(1, 20), rng.randint(20, 300)])
    try:
        journal = Journal(str(live), segment_size=segment_size, durability=durability)
        try:
            must_have: list[int] = []

            def ack(_idx: int, count: int, first: int) -> None:
                must_have.extend(range(first, first + count))
            write_records(journal, 0, durable, ack)
            journal.sync()     # the sync point: everything acknowledged so far is on the platter
            device = DurableImage(live, snapshot(live))
            journal.on_sync(device.synced)   # and from here on, whatever each msync covered
            write_records(journal, durable, durable + pending, ack if durability == "sync" else None)
            after = snapshot(live)
            journal.on_sync(None)
        finally:
            journal.close()
        _write_image(crashed, cut_power(device.snapshot(), after, rng, report))
        report.durable += len(must_have)
        back = read_back(crashed, segment_size=segment_size)
        problem = check_prefix(back, must_have, durable + pending)
        report.recovered += len(back.seqs)
        if problem is None and rng.random() < 0.3:
            # Appending after recovery and reopening must show exactly one more record: stale bytes
            # beyond the recovered tail must never come back to life.
            count = len(back.seqs)
            journal = Journal(str(crashed), create=False, durability=durability, segment_size=segment_size)
            try:
                write_records(journal, count, count + 1)
            finally:
                journal.close()
            again = read_back(crashed, segment_size=segment_size)
            problem = again.problem or (None if len(again.seqs) == count + 1 else
                                        f"after recovery and one append, read {len(again.seqs)} "
                                        f"records, expected {count + 1}")
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(crashed, ignore_errors=True)
    if problem:
        return f"case {case_seed} ({durability}, {durable} durable + {pending} pending): {problem}"
    return None


def powerloss_runs(seeds: int, seed: int, workdir, *, tmpfs: bool = True) -> PowerLossReport:
    """Run `seeds` simulated power cuts (case seeds derived from `seed`); report counts and first failure.

    With `tmpfs` the images live on /dev/shm when there is one (see scratch_dir), else in workdir.
    """
    report = PowerLossReport()
    started = time.monotonic()
    with (scratch_dir(workdir) if tmpfs else contextlib.nullcontext(pathlib.Path(workdir))) as where:
        for case in range(seeds):
            case_seed = seed * 1_000_003 + case
            report.cases += 1
            try:
                problem = powerloss_case(case_seed, where, report)
            except Exception as exc:   # an exception from open/read on a cut image is a failure too
                problem = f"case {case_seed}: {type(exc).__name__}: {exc}"
            if problem:
                report.fail(problem)
    report.seconds = time.monotonic() - started
    return report
