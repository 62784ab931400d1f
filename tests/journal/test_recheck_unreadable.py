"""The check after open (journal.h DAMAGE BEHIND A SUMMARY) maps each trusted segment; a mapping
that fails for a reason that says nothing of the segment's bytes (EMFILE, ENOMEM, EIO) is not
damage: it is tried again, and only if it keeps failing is the writer latched, as an I/O error
(appends and close raise JournalIOError with that errno), with no DAMAGED marker, so the next open
is not refused. Before, the first failed mapping latched the writer as damaged at segment 0,
offset 0, and wrote DAMAGED naming sequence 1, while verify found the journal intact. The failure
is injected by an LD_PRELOAD shim (c/fail_seg_open.c) around the read-only open of segments."""
from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from journal import Journal, RecordType, verify
from tests.journal.jhelpers import SMALL_SEGMENT, build_preload
from tests.journal.test_tailer_wake import ROOT

SHIM = pathlib.Path(__file__).resolve().parent / "c" / "fail_seg_open.c"

# Opens the journal (the shim refuses segment opens while the flag file exists), says "open", and
# after a line on stdin appends (until it fails, at most 10 s, if argv[2] is "until-fails"), then
# closes; prints what each step gave.
WRITER = """
    import sys, time
    from journal import Journal, JournalError, RecordType
    d, mode = sys.argv[1], sys.argv[2]
    j = Journal(d, segment_size=65536, durability="group")
    print("open", flush=True)
    sys.stdin.readline()
    def step(fn):
        try:
            return f"ok {fn()}"
        except JournalError as e:
            return f"{type(e).__name__} {e.errno}"
    deadline = time.monotonic() + 10
    got = step(lambda: j.append(RecordType.MD_PACKET, b"t" * 16))
    while mode == "until-fails" and got.startswith("ok") and time.monotonic() < deadline:
        time.sleep(0.01)
        got = step(lambda: j.append(RecordType.MD_PACKET, b"t" * 16))
    print("damage", j.damage, flush=True)
    print("append", got, flush=True)
    print("close", step(j.close), flush=True)
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return build_preload(tmp_path_factory.mktemp("fail_seg_open"), SHIM.read_text())


def trusted_journal(d: pathlib.Path) -> None:
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        for _ in range(3000):
            j.append(RecordType.MD_PACKET, b"x" * 40)
    assert len(list(d.glob("*.sum"))) >= 3


def run_writer(shim, tmp_path, mode: str, release_after: float | None) -> dict:
    d, flag = tmp_path / "j", tmp_path / "refuse"
    trusted_journal(d)
    flag.touch()
    env = dict(os.environ, LD_PRELOAD=str(shim), MMJ_FAIL_FLAG=str(flag), MMJ_FAIL_ERRNO=str(errno.EMFILE))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(d), mode], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split() == ["open"], proc.stderr.read()
        if release_after is not None:
            subprocess.run(["sleep", str(release_after)])
            flag.unlink()
            subprocess.run(["sleep", "0.5"])   # the retry that follows, and the walk of 3 segments
        out, err = proc.communicate("go\n", timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_a_segment_unreadable_for_a_moment_is_tried_again_not_taken_for_damage(shim, tmp_path):
    got = run_writer(shim, tmp_path, "once", release_after=0.15)
    assert got == {"damage": "None", "append": "ok 3001", "close": "ok None"}
    d = tmp_path / "j"
    assert not (d / "DAMAGED").exists()
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        assert j.append(RecordType.MD_PACKET, b"y") == 3002
    assert verify(d).ok


def test_a_segment_that_stays_unreadable_latches_an_io_error_not_damage(shim, tmp_path):
    got = run_writer(shim, tmp_path, "until-fails", release_after=None)
    assert got["damage"] == "None"
    assert got["append"] == f"JournalIOError {errno.EMFILE}"
    assert got["close"] == f"JournalIOError {errno.EMFILE}"
    d = tmp_path / "j"
    assert not (d / "DAMAGED").exists()          # nothing was found altered
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:   # checks them again
        assert j.damage is None
        assert j.append(RecordType.MD_PACKET, b"y") > 3000
    assert verify(d).ok
