"""A writer opened after a pagecache-mode writer crashed (or closed without a sync) makes the
segments that writer sealed durable before it says anything is durable: sealed segments without a
believed DURABLE summary are fdatasynced by the first sync() in pagecache mode, and by the open
itself in group and sync modes, not only the segment the writer continues; each gets its summary
marked DURABLE, so the next writer does not sync (or scan) it again (journal.h WRITER RECOVERY)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from journal import Journal, Reader, RecordType, verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import SMALL_SEGMENT, build_preload, payload_for, record_offsets, segment_files
from tests.journal.test_ahead_wait import FS_LOG, log_lines
from tests.journal.test_reopen import _summary_flags, crash_after
from tests.journal.test_tailer_wake import ROOT


def sync_reports(j: Journal) -> dict[int, tuple[int, int]]:
    """Append one record and sync(): {segment: (start, stop)} of what the sync made durable."""
    synced = []
    j.on_sync(lambda seg, start, stop: synced.append((seg, start, stop)))
    j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 64))
    j.sync()
    j.on_sync(None)
    assert len({seg for seg, _, _ in synced}) == len(synced), synced   # each segment once
    return {seg: (start, stop) for seg, start, stop in synced}


def assert_whole(reports: dict, d, segments: range) -> None:
    """Each sealed segment of `segments` was synced from its header through its EOS marker."""
    files = segment_files(d)
    for seg in segments:
        off, size, word = record_offsets(files[seg])[-1]
        assert word & lib.MMJ_FLAG_EOS
        assert reports[seg][0] == 0 and reports[seg][1] >= off + size, (seg, reports[seg])


def test_sync_after_a_crash_covers_every_segment_the_crashed_writer_rolled(tmp_path):
    d = tmp_path / "j"
    crash_after(d, "pagecache", 2000)
    files = segment_files(d)
    assert len(files) >= 4
    current = len(files) - 1
    assert set(_summary_flags(d)) == {0}                 # sealed without an msync
    files[1].with_suffix(".sum").unlink()                # and one whose summary never got written
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.recovery.continued_segment == current
        reports = sync_reports(j)
        assert sorted(reports) == list(range(current + 1))
        assert_whole(reports, d, range(current))
        assert reports[current][0] == 0                 # the continued segment from its header
        assert _summary_flags(d) == [1] * current        # known durable now, segment 1's included
        assert sorted(sync_reports(j)) == [current]      # nothing rolled or recovered since
    # the clean close sealed `current` without an msync; the next writer crashes in a new one
    crash_after(d, "pagecache", 20)
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.recovery.continued_segment == current + 1
        reports = sync_reports(j)
        assert sorted(reports) == [current, current + 1]   # not the segments known durable
        assert_whole(reports, d, range(current, current + 1))
        last = j.next_seq - 1
    assert verify(d).ok
    with Reader(d) as r:
        assert r.last_seq == last and r.stopped is None


OPEN = """
    import sys
    from journal import Journal
    with Journal(sys.argv[1], segment_size=64 * 1024, durability=sys.argv[2]) as j:
        print(j.recovery.continued_segment, flush=True)
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return build_preload(tmp_path_factory.mktemp("fs_log"), FS_LOG.read_text())


def open_logged(shim, d, mode: str, log) -> list[str]:
    """Open and close a writer in `mode` in a process whose fdatasync calls are logged; the names
    of the segment files it fdatasynced."""
    env = dict(os.environ, LD_PRELOAD=str(shim), MMJ_FS_LOG=str(log))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(OPEN), str(d), mode], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [name for call, name, _ in log_lines(log) if call == "fdatasync" and name.startswith("seg-")]


@pytest.mark.parametrize("mode", ["group", "sync"])
def test_a_durable_mode_open_after_a_pagecache_crash_syncs_the_sealed_segments(tmp_path, shim, mode):
    d = tmp_path / "j"
    crash_after(d, "pagecache", 1500)
    sealed = [p.name for p in segment_files(d)[:-1]]
    assert len(sealed) >= 2
    assert open_logged(shim, d, mode, tmp_path / "first.log") == sealed
    assert set(_summary_flags(d)) == {1}                 # every sealed segment is known durable
    assert open_logged(shim, d, mode, tmp_path / "second.log") == []   # so nothing is synced again
    assert verify(d).ok


@pytest.mark.parametrize("damage", ["torn", "wrong-count"])
def test_a_summary_not_believed_is_rewritten_so_the_next_writer_trusts_it(tmp_path, shim, damage):
    """A sealed segment's summary that exists but is not believed (torn by a power cut, or not
    matching the segment) is replaced by the recovering writer from its scan, like a missing one:
    the segment is synced and scanned once, not by every later writer."""
    d = tmp_path / "j"
    crash_after(d, "pagecache", 1500)
    sealed = [p.name for p in segment_files(d)[:-1]]
    assert len(sealed) >= 2
    summary = segment_files(d)[0].with_suffix(".sum")
    raw = bytearray(summary.read_bytes())
    if damage == "torn":
        summary.write_bytes(bytes(raw[:40]))
    else:
        raw[24] ^= 1                     # the data record count, crc made good again
        raw[-4:] = lib.mmj_crc32c(0, bytes(raw[:-4]), len(raw) - 4).to_bytes(4, "little")
        summary.write_bytes(bytes(raw))
    assert open_logged(shim, d, "group", tmp_path / "first.log") == sealed
    assert set(_summary_flags(d)) == {1}
    assert open_logged(shim, d, "group", tmp_path / "second.log") == []
    assert verify(d).ok
