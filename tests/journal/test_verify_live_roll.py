"""verify() on a live journal during a roll: the writer creates segment i+1 (renamed in, directory
fsynced) before it writes SEAL and EOS in segment i, so for a moment i lacks its EOS though a
successor exists. With the writer live, a last segment with nothing after its header behind an
unsealed one is that roll in progress (the end for now), not MMJ_R_NO_EOS; otherwise segment i
is checked again, and must be sealed by then (records go to i+1 only after the seal)."""
from __future__ import annotations

import contextlib
import subprocess
import sys

from journal import verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import SMALL_SEGMENT, segment_files
from tests.journal.test_reopen import crash_after

HOLD = """
import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def writer_live(d):
    """Hold the writer lock from another process, as a live writer does."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(d / "LOCK")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.stdin.close()
        proc.wait(30)


def mid_roll(d) -> int:
    """A journal frozen between the roll's two steps: its last segment i unsealed and a new
    segment i+1 with a header and nothing after it. Returns i."""
    crash_after(d, "pagecache", 300)
    files = segment_files(d)
    last = len(files) - 1
    header = bytearray(files[last].read_bytes()[:128])
    (d / f"seg-{last + 1:016d}.mmj").write_bytes(bytes(header) + bytes(SMALL_SEGMENT - 128))
    return last


def test_a_roll_in_progress_is_not_a_missing_eos_while_the_writer_is_live(tmp_path):
    d = tmp_path / "j"
    last = mid_roll(d)
    with writer_live(d):
        report = verify(d)
    assert report.writer_live and report.ok, report
    assert report.records == 300 and not report.last_sealed and report.segments == last + 1


def test_without_a_live_writer_it_is_a_missing_eos(tmp_path):
    d = tmp_path / "j"
    last = mid_roll(d)
    report = verify(d)
    assert not report.ok and report.first_bad.reason_code == lib.MMJ_R_NO_EOS
    assert report.first_bad.segment == last


def test_a_successor_with_records_behind_an_unsealed_segment_is_a_missing_eos(tmp_path):
    d = tmp_path / "j"
    last = mid_roll(d)
    successor = d / f"seg-{last + 1:016d}.mmj"
    raw = bytearray(successor.read_bytes())
    raw[128:136] = b"\x28\x00\x00\x80\x01\x02\x03\x04"   # a published word: records went there
    successor.write_bytes(bytes(raw))
    with writer_live(d):
        report = verify(d)
    assert not report.ok and report.first_bad.reason_code == lib.MMJ_R_NO_EOS
    assert report.first_bad.segment == last
