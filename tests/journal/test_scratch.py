"""Scratch directories owned by a lock (journal.scratch: drills, stress runs, tests), with real owner
processes: the scratch of a SIGKILLed owner is removed by the next of its kind, a live one's is
left alone (its lock is held),
a directory without a lock file is never touched, a sweep at any step of making a new scratch
leaves it alone, and cleanup removes the directory and releases the lock. Every test works in its
own tmp_path with its own prefix, so no other drill's directories are touched."""
from __future__ import annotations

import fcntl
import os
import pathlib
import select
import signal
import subprocess
import sys

import pytest

from journal import scratch
from journal.scratch import LOCK_NAME, scratch_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
WAIT_S = 30.0           # bound on waiting for an owner process to report its scratch
HOLD_S = 120.0          # an owner process ends by itself after this, should the test not kill it

# an owner: makes a scratch, puts work in it, says where, and holds it until killed
OWNER = """
import pathlib, sys, time
from journal.scratch import scratch_dir
tmp = scratch_dir(sys.argv[1], dir=sys.argv[2])
(pathlib.Path(tmp.name) / "work").write_bytes(b"x")
print(tmp.name, flush=True)
time.sleep(float(sys.argv[3]))
"""

# another drill of the kind starting: its sweep, then its own scratch gone again
SWEEP = """
import sys
from journal.scratch import scratch_dir
scratch_dir(sys.argv[1], dir=sys.argv[2]).cleanup()
"""


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


class Owners:
    """Owner processes started by a test, all killed and reaped at its end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, prefix: str, root: pathlib.Path, code: str = OWNER) -> tuple[subprocess.Popen, pathlib.Path]:
        """Run `code` (argv: prefix, root, seconds to hold) until it prints the scratch it made."""
        proc = subprocess.Popen([sys.executable, "-c", code, prefix, str(root), str(HOLD_S)], cwd=ROOT,
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        ready = select.select([proc.stdout], [], [], WAIT_S)[0]
        line = proc.stdout.readline().decode().strip() if ready else ""
        if not line:
            proc.kill()
            proc.wait(WAIT_S)
            pytest.fail(f"the owner process did not report its scratch: {proc.stderr.read()[-2000:]!r}")
        made = pathlib.Path(line)
        assert made.parent == root and (made / LOCK_NAME).is_file() and (made / "work").is_file()
        return proc, made

    def kill(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(WAIT_S) == -signal.SIGKILL

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(WAIT_S)
            proc.stdout.close()
            proc.stderr.close()


@pytest.fixture
def owners():
    made = Owners()
    try:
        yield made
    finally:
        made.close()


def sweep_from_another_process(prefix: str, root: pathlib.Path) -> None:
    subprocess.run([sys.executable, "-c", SWEEP, prefix, str(root)], cwd=ROOT, env=_env(),
                   check=True, timeout=WAIT_S, capture_output=True)


def test_the_scratch_of_a_killed_drill_is_removed_by_the_next_of_its_kind(tmp_path, owners):
    prefix, other_kind = "scratch-killed-", "scratch-other-kind-"
    proc, left = owners.start(prefix, tmp_path)
    other_proc, other = owners.start(other_kind, tmp_path)
    owners.kill(proc)
    owners.kill(other_proc)
    assert left.is_dir() and other.is_dir()         # a SIGKILLed owner cannot remove its own
    with scratch_dir(prefix, dir=tmp_path) as made:
        assert not left.exists()
        assert other.is_dir()                       # another kind of drill's is not ours to sweep
        assert pathlib.Path(made).parent == tmp_path and (pathlib.Path(made) / LOCK_NAME).is_file()
    assert not pathlib.Path(made).exists()


def test_the_scratch_of_a_live_drill_is_left_alone_until_its_owner_is_gone(tmp_path, owners):
    prefix = "scratch-live-"
    proc, held = owners.start(prefix, tmp_path)
    scratch_dir(prefix, dir=tmp_path).cleanup()
    assert (held / "work").is_file() and (held / LOCK_NAME).is_file()
    sweep_from_another_process(prefix, tmp_path)
    assert (held / "work").is_file()
    owners.kill(proc)                               # the same directory, its lock now free
    scratch_dir(prefix, dir=tmp_path).cleanup()
    assert not held.exists()


def test_a_directory_without_a_lock_file_is_left_alone(tmp_path):
    prefix = "scratch-unlocked-"
    kept = tmp_path / (prefix + "journal-kept")     # a drill's journal: evidence, kept on purpose
    old_marker = tmp_path / (prefix + "pid-marker")  # the pid marker of old: says nothing now
    pending = tmp_path / (prefix + "pending")       # a new scratch whose lock is not in place yet
    a_file = tmp_path / (prefix + "a-file")
    for d in (kept, old_marker, pending):
        d.mkdir()
        (d / "data").write_bytes(b"x")
    (old_marker / "drill.pid").write_text("1")
    (pending / scratch._PENDING_NAME).write_bytes(b"")
    a_file.write_bytes(b"x")
    with scratch_dir(prefix, dir=tmp_path):
        for d in (kept, old_marker, pending):
            assert (d / "data").is_file(), d
        assert a_file.is_file()


def test_a_sweep_at_any_step_of_making_a_scratch_leaves_it_alone(tmp_path, monkeypatch):
    """A drill starting while another is making its scratch: swept from another process before the
    lock file is created, between its creation and its lock, and before and after it gets its name."""
    prefix = "scratch-race-"
    steps: list[str] = []

    def sweep_at(step: str) -> None:
        made = [p for p in tmp_path.iterdir() if p.name.startswith(prefix)]
        assert len(made) == 1
        sweep_from_another_process(prefix, tmp_path)
        assert made[0].is_dir(), f"swept away {step}"
        steps.append(step)

    real_open, real_flock, real_rename = os.open, fcntl.flock, os.rename

    def open_(path, flags, *args, **kw):
        if str(path).endswith(scratch._PENDING_NAME):
            sweep_at("before the lock file exists")
        return real_open(path, flags, *args, **kw)

    def flock(fd, op):
        if op == fcntl.LOCK_EX:
            sweep_at("with the lock file not yet locked")
        return real_flock(fd, op)

    def rename(src, dst, *args, **kw):
        sweep_at("with the lock held under its pending name")
        real_rename(src, dst, *args, **kw)
        sweep_at("with the lock held under its name")

    monkeypatch.setattr(scratch.os, "open", open_)
    monkeypatch.setattr(scratch.fcntl, "flock", flock)
    monkeypatch.setattr(scratch.os, "rename", rename)
    tmp = scratch_dir(prefix, dir=tmp_path)
    monkeypatch.undo()
    try:
        assert len(steps) == 4, steps
        assert (pathlib.Path(tmp.name) / LOCK_NAME).is_file()
    finally:
        tmp.cleanup()


def test_the_lock_is_held_while_in_use_and_released_on_cleanup(tmp_path):
    tmp = scratch_dir("scratch-cleanup-", dir=tmp_path)
    lock = pathlib.Path(tmp.name) / LOCK_NAME
    fd = os.open(lock, os.O_RDONLY)                 # another open file: flock treats it as a rival
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        tmp.cleanup()
        assert not pathlib.Path(tmp.name).exists()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)      # free now
        tmp.cleanup()                               # a second cleanup (LiveSession's closers) is harmless
    finally:
        os.close(fd)

