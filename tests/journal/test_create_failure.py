"""A journal whose creation fails leaves nothing it made behind (journal.h DIRECTORY): not LOCK,
journal.meta nor a segment, nor the directory if the open made it; what was there before stays,
the error is the original one, and the next attempt creates the journal."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from journal import DiskFull, Journal, JournalError, JournalIOError
from tests.journal.jhelpers import SMALL_SEGMENT

ROOT = str(pathlib.Path(__file__).resolve().parents[2])
HUGE_SEGMENT = 1 << 52          # 4 PiB: no file system here allocates it


def create_in_child(d: pathlib.Path, segment_size: int, fsize_limit: int) -> subprocess.CompletedProcess:
    """Create a journal at d in a process whose files may not grow past fsize_limit bytes."""
    code = textwrap.dedent(f"""
        import resource, signal
        from journal import Journal, JournalError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize_limit}, {fsize_limit}))
        try:
            Journal({str(d)!r}, segment_size={segment_size}).close()
        except JournalError as exc:
            print(type(exc).__name__, exc)
            raise SystemExit(3)
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": ROOT})


def assert_created_again(d: pathlib.Path, before: set[str]) -> None:
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.recovery.created
    assert before <= set(os.listdir(d))


@pytest.mark.parametrize("layout", ["new", "empty", "other files"])
def test_a_creation_whose_first_segment_exceeds_the_file_size_limit_leaves_nothing(tmp_path, layout):
    d = tmp_path / "j"
    if layout != "new":
        d.mkdir()
    if layout == "other files":
        (d / "README").write_text("kept\n")
    before = set(os.listdir(d)) if d.exists() else None
    done = create_in_child(d, 4 << 20, 1 << 20)
    assert done.returncode == 3 and done.stdout.startswith("JournalIOError"), (done.stdout, done.stderr)
    assert "File too large" in done.stdout          # the allocation's own error, not a cleanup's
    assert (not d.exists()) if before is None else set(os.listdir(d)) == before
    assert_created_again(d, before or set())


def test_a_segment_size_that_cannot_be_allocated_leaves_nothing(tmp_path):
    d = tmp_path / "j"
    with pytest.raises(JournalError) as failed:
        Journal(d, segment_size=HUGE_SEGMENT)
    assert isinstance(failed.value, (DiskFull, JournalIOError)) and failed.value.errno
    assert not d.exists()
    assert_created_again(d, set())


def test_files_that_were_there_before_a_failed_creation_stay(tmp_path):
    """A LOCK left by some earlier run was not made by this open: it stays; only journal.meta goes."""
    d = tmp_path / "j"
    d.mkdir()
    (d / "LOCK").write_text("pid 1 open\n")
    (d / "notes.txt").write_text("x")
    with pytest.raises(JournalError):
        Journal(d, segment_size=HUGE_SEGMENT)
    assert sorted(os.listdir(d)) == ["LOCK", "notes.txt"] and (d / "LOCK").read_text() == "pid 1 open\n"
    assert_created_again(d, {"LOCK", "notes.txt"})


def test_a_full_disk_at_creation_leaves_nothing(small_tmpfs):
    d = small_tmpfs / "j"
    with pytest.raises(DiskFull) as failed:
        Journal(d, segment_size=2 << 20)          # larger than the 1 MiB mount
    assert failed.value.errno == 28               # ENOSPC, the allocation's
    assert os.listdir(small_tmpfs) == []
    assert_created_again(d, set())



def test_a_creating_open_that_succeeds_reports_no_errno(tmp_path):
    from journal._journal_cffi import ffi, lib
    opt = ffi.new("mmj_options *", {"segment_size": SMALL_SEGMENT, "create": 1})
    out, rep, err = ffi.new("mmj_writer **"), ffi.new("mmj_recovery *"), ffi.new("int *", -1)
    assert lib.mmj_writer_open(str(tmp_path / "j").encode(), opt, out, rep, err) == lib.MMJ_OK
    try:
        assert rep.created == 1 and err[0] == 0      # not the ENOENT of the missing journal.meta
    finally:
        assert lib.mmj_writer_close(out[0]) == lib.MMJ_OK
