"""Writer reopen (journal.h WHAT A CRASH LEAVES, WRITER RECOVERY): a writer reopened after a crash
continues in the repaired tail segment, and skips scanning sealed segments whose summary says
they were msynced before it was written, and only those."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys

import pytest

from journal import Journal, JournalCorrupt, Reader, RecordType, verify
from journal._journal_cffi import lib

from .jhelpers import SMALL_SEGMENT, flip_byte, payload_for, record_offsets, segment_files

_CRASHING_WRITER = """
import os, signal, sys
from journal import Journal, RecordType
from tests.journal.jhelpers import payload_for
j = Journal(sys.argv[1], segment_size=64 * 1024, durability=sys.argv[2], checkpoint_every=7)
print(j.recovery.continued_segment, j.recovery.sealed_segment, j.next_seq, flush=True)
for _ in range(int(sys.argv[3])):
    seq = j.next_seq
    j.append(RecordType.MD_PACKET, payload_for(seq, 40 + seq % 90), ts_ns=seq)
os.kill(os.getpid(), signal.SIGKILL)
"""


def crash_after(d, durability: str, count: int) -> list[str]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", _CRASHING_WRITER, str(d), durability, str(count)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": root})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.split()


def test_each_crash_reopen_continues_in_the_same_segment(tmp_path):
    d = tmp_path / "j"
    seen = [crash_after(d, "group", 20) for _ in range(6)]
    assert seen[0][:2] == ["None", "None"]                      # created, nothing to continue
    assert all(s[:2] == ["0", "None"] for s in seen[1:]), seen  # every reopen continued segment 0
    assert [int(s[2]) for s in seen] == [1 + 20 * k for k in range(6)]
    assert len(segment_files(d)) == 1                           # no segment per crash any more
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.recovery.continued_segment == 0 and j.next_seq == 121
    report = verify(d)
    assert report.ok and report.records == 120, report
    with Reader(d) as r:
        assert [x.payload for x in r] == [payload_for(s, 40 + s % 90) for s in range(1, 121)]


def test_a_continued_segment_rolls_when_full_and_tailers_follow(tmp_path):
    d = tmp_path / "j"
    for _ in range(3):
        crash_after(d, "pagecache", 400)                        # ~50 KB a run: rolls in between
    assert 2 <= len(segment_files(d)) <= 3
    report = verify(d)
    assert report.ok and report.records == 1200, report
    with Reader(d) as r:
        assert [x.seq for x in r] == list(range(1, 1201))


def _group_journal(d, durability: str, count: int = 3000) -> None:
    with Journal(d, segment_size=SMALL_SEGMENT, durability=durability, checkpoint_every=16) as j:
        for _ in range(count):
            seq = j.next_seq
            j.append(RecordType.MD_PACKET, payload_for(seq, 40 + seq % 90), ts_ns=seq)


def _summary_flags(d) -> list[int]:
    return [p.read_bytes()[80] for p in sorted(d.glob("seg-*.sum"))]


def test_summary_is_durable_only_when_the_segment_was_msynced_first(tmp_path):
    _group_journal(tmp_path / "g", "group")
    _group_journal(tmp_path / "p", "pagecache")
    assert len(_summary_flags(tmp_path / "g")) >= 4
    assert set(_summary_flags(tmp_path / "g")) == {1}
    assert set(_summary_flags(tmp_path / "p")) == {0}


def _damage_a_middle_record(d) -> int:
    """Flip a payload byte of a data record in the middle of segment 1; its offset."""
    seg = segment_files(d)[1]
    off = record_offsets(seg)[len(record_offsets(seg)) // 2][0]
    flip_byte(seg, off + 40)
    return off


def test_writer_trusts_a_durable_summary_without_scanning(tmp_path):
    d = tmp_path / "j"
    _group_journal(d, "group")
    _damage_a_middle_record(d)                  # damage after the fact, not a crash's
    j = Journal(d, segment_size=SMALL_SEGMENT, durability="group")
    assert j.recovery.clean and j.next_seq == 3001   # not scanned: the summary was believed
    with pytest.raises(JournalCorrupt, match="segment 1"):   # the check after open, finished by the close
        j.close()
    with Reader(d) as r:                        # readers still check before returning records
        seqs = [x.seq for x in r]
        assert r.stopped is not None and r.stopped["segment"] == 1 and seqs == list(range(1, seqs[-1] + 1))
    assert not verify(d).ok


def test_writer_scans_a_segment_whose_summary_is_not_durable(tmp_path):
    d = tmp_path / "j"
    _group_journal(d, "group")
    summary = sorted(d.glob("seg-*.sum"))[1]
    body = bytearray(summary.read_bytes())
    body[80] = 0                                # the same summary, as a pagecache writer's
    body[92:] = struct.pack("<I", lib.mmj_crc32c(0, bytes(body[:92]), 92))
    summary.write_bytes(bytes(body))
    off = _damage_a_middle_record(d)
    files = len(segment_files(d))
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        rep = j.recovery
        assert (rep.reason_code, rep.segment, rep.offset) == (lib.MMJ_R_BAD_CRC, 1, off)
        assert rep.segments_removed == files - 2 and rep.records_discarded > 0
        assert j.segment == 1 == rep.continued_segment
    assert verify(d).ok


def test_each_clean_close_keeps_only_the_pages_its_segment_wrote(tmp_path):
    """A clean close seals its segment; the next open starts a new one. The sealed segment keeps
    its size (readers see the same zeros past EOS) but not its preallocated blocks, so short
    sessions do not cost a whole segment of disk each."""
    d = str(tmp_path / "j")
    size = 4 << 20
    for i in range(6):
        with Journal(d, segment_size=size) as j:
            for _ in range(3):
                j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 64), ts_ns=i)
    segments = segment_files(d)
    assert len(segments) == 6
    on_tmpfs = _fstype(d) == "tmpfs"     # where the writer keeps the blocks (journal.h SPACE)
    for seg in segments:
        st = os.stat(seg)
        assert st.st_size == size
        if on_tmpfs:
            assert st.st_blocks * 512 >= size
        else:
            assert st.st_blocks * 512 <= 64 * 1024, f"{seg}: {st.st_blocks * 512} bytes still allocated"
    with Reader(d) as reader:
        assert [r.seq for r in reader.records()] == list(range(1, 19))
    assert verify(d).ok
    with Journal(d, segment_size=size) as j:     # and the journal goes on from there
        assert j.next_seq == 19


def _fstype(path: str) -> str:
    """The filesystem type of the mount holding path (the longest mount point above it)."""
    path = os.path.realpath(path)
    best, fstype = "", ""
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, fstype = point, fields[2]
    return fstype
