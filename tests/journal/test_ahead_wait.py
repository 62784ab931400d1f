"""A roll that meets the helper thread mid-way through preparing the next segment waits for it
(bounded) and takes its file instead of preallocating a second one; if the helper stays stuck past
the bound the roll allocates the segment itself, and the helper's file, finished later, is deleted
rather than left behind. The helper is held inside posix_fallocate of next.mmj.tmp by an LD_PRELOAD
shim (c/fs_log.c) that also logs every file the writer preallocates, with its inode."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

from journal import Reader, verify
from tests.journal.jhelpers import build_preload, segment_files, wait_for
from tests.journal.test_tailer_wake import ROOT

FS_LOG = pathlib.Path(__file__).resolve().parent / "c" / "fs_log.c"
NEXT = "next.mmj.tmp"
ROLL_WAIT_S = 0.25            # MMJ_ROLL_WAIT_NS (journal_writer_state.h): the roll's bound

# Fills segment 0 to just short of a roll (the helper starts preparing segment 1 at half), waits
# for "go", then appends through argv[3] rolls and says how long each roll's appends took; then, after
# "check", waits until next.mmj.tmp is gone (or not), and closes.
WRITER = """
    import pathlib, sys, time
    from journal import Journal, RecordType
    from tests.journal.jhelpers import payload_for, wait_for
    d, segment = sys.argv[1], int(sys.argv[2])
    j = Journal(d, segment_size=segment, checkpoint_every=1_000_000)
    while j.next_seq * 1016 < segment * 0.97:
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 984))
    print("ready", flush=True)
    sys.stdin.readline()
    print("rolling", flush=True)
    took = []
    for target in range(1, int(sys.argv[3]) + 1):
        t0 = time.monotonic()
        while j.segment < target:
            j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 984))
        took.append(time.monotonic() - t0)
    print("rolled", *took, flush=True)
    sys.stdin.readline()
    gone = wait_for(lambda: not (pathlib.Path(d) / "next.mmj.tmp").exists(), 20)
    print("next-gone" if gone else "next-left", j.next_seq - 1, flush=True)
    j.close()
"""
SEGMENT = 1 << 20


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return build_preload(tmp_path_factory.mktemp("fs_log"), FS_LOG.read_text())


def log_lines(log: pathlib.Path) -> list[tuple[str, str, int]]:
    if not log.exists():
        return []
    return [(call, name, int(ino)) for call, name, ino in (line.split() for line in log.read_text().splitlines())]


def roll_against_held_helper(shim, tmp_path, release_after_roll: bool, rolls: int = 1) -> dict:
    """Run WRITER with the helper held in its fallocate of next.mmj.tmp at the roll; release the
    helper 20 ms into the roll (well inside the bound), or only once the `rolls` rolls have
    returned."""
    d, log, release = tmp_path / "j", tmp_path / "fs.log", tmp_path / "release"
    env = dict(os.environ, LD_PRELOAD=str(shim), MMJ_FS_LOG=str(log), MMJ_HOLD_NEXT=str(release))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(d), str(SEGMENT), str(rolls)], cwd=ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().split() == ["ready"], proc.stderr.read()
        assert wait_for(lambda: any(call == "hold" for call, _, _ in log_lines(log)), 30), "helper never prepared"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().split() == ["rolling"]
        if not release_after_roll:
            time.sleep(0.02)
            release.touch()
        word, *took = proc.stdout.readline().split()
        assert word == "rolled" and len(took) == rolls
        release.touch()
        proc.stdin.write("check\n")
        proc.stdin.flush()
        gone, last = proc.stdout.readline().split()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"dir": d, "log": log_lines(log), "took": float(took[0]), "later": [float(t) for t in took[1:]],
            "gone": gone, "last": int(last)}


def assert_journal_whole(run: dict) -> None:
    d = run["dir"]
    assert run["gone"] == "next-gone", "the helper's next.mmj.tmp was left behind"
    assert sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp")) == []
    assert len(segment_files(d)) == 2 + len(run["later"])
    assert verify(d).ok
    with Reader(d) as r:
        assert r.last_seq == run["last"]


def test_a_roll_waits_for_the_helper_and_takes_its_file(shim, tmp_path):
    run = roll_against_held_helper(shim, tmp_path, release_after_roll=False)
    allocated = [(name, ino) for call, name, ino in run["log"] if call == "fallocate"]
    segment_1 = (run["dir"] / "seg-0000000000000001.mmj").stat().st_ino
    # one file for segment 1, the helper's: the roll preallocated no second one
    assert "seg-0000000000000001.mmj.tmp" not in [name for name, _ in allocated], allocated
    assert (NEXT, segment_1) in allocated
    assert run["took"] < ROLL_WAIT_S * 20                  # bounded: never a deadlock
    assert_journal_whole(run)


def test_a_roll_stops_waiting_for_a_stuck_helper_and_nothing_is_left_behind(shim, tmp_path):
    run = roll_against_held_helper(shim, tmp_path, release_after_roll=True)
    allocated = [(name, ino) for call, name, ino in run["log"] if call == "fallocate"]
    segment_1 = (run["dir"] / "seg-0000000000000001.mmj").stat().st_ino
    assert ROLL_WAIT_S * 0.9 <= run["took"] < ROLL_WAIT_S * 20, run["took"]   # waited the bound, then went on
    assert ("seg-0000000000000001.mmj.tmp", segment_1) in allocated          # its own file
    helper = [ino for name, ino in allocated if name == NEXT]
    assert helper and segment_1 not in helper                                # the helper's finished later...
    assert_journal_whole(run)                                                # ...and was deleted


def test_a_helper_stuck_for_good_costs_one_wait_not_one_per_roll(shim, tmp_path):
    """Once a roll has waited the bound for a stuck helper, later rolls while it is still stuck
    allocate their own file at once (a hung fallocate would otherwise add 250 ms to every roll)."""
    run = roll_against_held_helper(shim, tmp_path, release_after_roll=True, rolls=3)
    assert ROLL_WAIT_S * 0.9 <= run["took"] < ROLL_WAIT_S * 20, run["took"]
    assert all(t < ROLL_WAIT_S * 0.5 for t in run["later"]), run["later"]
    assert_journal_whole(run)
