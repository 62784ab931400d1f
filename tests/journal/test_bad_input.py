"""Bad input gets a clear, typed error: not a journal, newer format versions, oversized records,
reserved types, closed handles, a full disk (a real tmpfs mount), a second writer, and a stale
lock left by a SIGKILLed writer."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from journal import (DiskFull, InvalidArgument, Journal, JournalClosed, JournalError, JournalIOError, JournalLocked,
                     JournalVersionError,
                     NotAJournal, Reader, RecordTooLarge, RecordType, Tailer, info, verify)
from journal._journal_cffi import lib
from journal.writer import DURABILITY
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for, rewrite_u32, segment_files, write_journal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_not_a_journal(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    for open_it in (Reader, verify, info, Tailer, lambda p: Journal(p, create=False)):
        with pytest.raises(NotAJournal):
            open_it(tmp_path)
    with pytest.raises(NotAJournal):
        Journal(tmp_path / "missing", create=False)
    with pytest.raises(NotAJournal):
        Reader(tmp_path / "notes.txt")
    # a directory with foreign segment files but no journal.meta is never adopted
    (tmp_path / "seg-0000000000000000.mmj").write_bytes(b"x" * 100)
    with pytest.raises(NotAJournal):
        Journal(tmp_path)
    (tmp_path / "seg-0000000000000000.mmj").unlink()
    (tmp_path / "journal.meta").write_bytes(b"garbage" * 10)
    with pytest.raises(NotAJournal):
        Reader(tmp_path)


def rewrite_version(path, offset, crc_span, crc_at, version):
    assert crc_at == crc_span
    rewrite_u32(path, offset, version, crc_span)


def test_newer_format_version_in_meta(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 10)
    rewrite_version(d / "journal.meta", 8, 60, 60, lib.MMJ_FORMAT_VERSION + 1)
    for open_it in (Reader, verify, Journal, Tailer):
        with pytest.raises(JournalVersionError):
            open_it(d)


def test_newer_format_version_in_a_segment(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 10)
    rewrite_version(segment_files(d)[0], 8, 124, 124, lib.MMJ_FORMAT_VERSION + 1)
    for open_it in (Reader, verify, Journal):
        with pytest.raises(JournalVersionError):
            open_it(d)


def test_record_larger_than_a_segment(tmp_path):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        room = SMALL_SEGMENT - lib.MMJ_HEADER_SIZE - lib.MMJ_SEGMENT_RESERVE - lib.MMJ_RECORD_HEADER_SIZE
        assert j.append(RecordType.MD_PACKET, bytes(room)) == 1     # the largest that fits
        with pytest.raises(RecordTooLarge):
            j.append(RecordType.MD_PACKET, bytes(room + 8))
        with pytest.raises(RecordTooLarge):
            j.append_batch(RecordType.MD_PACKET, [b"ok", bytes(room + 8)])
        assert j.next_seq == 2                   # a rejected batch writes nothing
    with Reader(tmp_path / "j") as r:
        assert len(r.get(1).payload) == room


def test_reserved_types_and_bad_arguments(tmp_path):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        for rtype in (0, RecordType.CHECKPOINT, RecordType.SEAL, 70000):
            with pytest.raises(InvalidArgument):
                j.append(rtype, b"x")
        with pytest.raises(InvalidArgument):
            j.append(RecordType.MD_PACKET, b"x", ts_source=300)
        with pytest.raises(InvalidArgument):
            j.append(RecordType.MD_PACKET, 12345)
        for bad in ({"ts_ns": 1.5}, {"ts_ns": 2**70}, {"rtype": -1}, {"clock_state": -3}):
            with pytest.raises(InvalidArgument):
                j.append(**{"rtype": RecordType.MD_PACKET, "payload": b"x", **bad})
        with pytest.raises(InvalidArgument):
            j.append_batch(RecordType.MD_PACKET, [b"a", b"b"], ts_ns=[1, 2, 3])
        assert j.next_seq == 1
    for bad in ({"durability": "sometimes"}, {"segment_size": 1000}, {"segment_size": 65536 + 100},
                {"checkpoint_every": 0}, {"group_records": -1}):
        with pytest.raises(InvalidArgument):
            Journal(tmp_path / "k", **bad)
    with pytest.raises(InvalidArgument):
        Tailer(tmp_path / "j", name="../escape")
    assert set(DURABILITY) == {"pagecache", "group", "sync"}


def test_bulk_reads_refuse_bad_bounds_as_records_does(tmp_path):
    """scan, read_fixed and read_blobs check a range's bounds as records() does (a typed error,
    not cffi's OverflowError or a TypeError from a comparison); a range past the journal's ends
    reads what there is."""
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        for i in range(5):
            j.append(RecordType.MD_PACKET, b"p%d" % i)
    with Reader(tmp_path / "j") as r:
        reads = {"records": lambda a, b: list(r.records(a, b)), "scan": r.scan,
                 "read_fixed": lambda a, b: r.read_fixed(RecordType.TIMER, a, b),
                 "read_blobs": lambda a, b: r.read_blobs(None, a, b)}
        for name, read in reads.items():
            for bad in (-1, 2**64, 2**100, "a", 5.5):
                for first, last in ((bad, None), (None, bad)):
                    with pytest.raises(InvalidArgument, match="_seq must be a sequence number"):
                        read(first, last)
        assert len(r.scan(3, 2**64 - 1).seq) == 3 and len(r.scan(10, None).seq) == 0
        assert len(r.read_blobs(None, 0, 99)[0]) == 5


def test_closed_handles(tmp_path):
    j = Journal(tmp_path / "j", segment_size=SMALL_SEGMENT)
    j.append(RecordType.MD_PACKET, b"x")
    j.close()
    j.close()   # idempotent
    for call in (lambda: j.append(RecordType.MD_PACKET, b"y"), lambda: j.append_batch(RecordType.MD_PACKET, [b"y"]),
                 j.sync, j.checkpoint, lambda: j.next_seq):
        with pytest.raises(JournalClosed):
            call()
    r = Reader(tmp_path / "j")
    r.close()
    for call in (lambda: r.get(1), lambda: list(r), lambda: r.last_seq, lambda: r.read_fixed(RecordType.TIMER)):
        with pytest.raises(JournalClosed):
            call()
    t = Tailer(tmp_path / "j")
    t.close()
    with pytest.raises(JournalClosed):
        t.next(0)


def test_disk_full_when_a_segment_cannot_be_preallocated(small_tmpfs):
    d = small_tmpfs / "j"
    seg = 256 * 1024
    j = Journal(d, segment_size=seg, checkpoint_every=64)
    written = 0
    with pytest.raises(DiskFull) as caught:
        for i in range(100_000):
            j.append(RecordType.MD_PACKET, payload_for(i + 1, 1000))
            written += 1
    assert caught.value.errno in (28, 122)          # ENOSPC / EDQUOT, reported with the status
    assert "no space" in str(caught.value)
    # the 1 MiB mount holds three 256 KiB files: two segments and the reserve segment
    assert 2 * 240 < written < 3 * 260
    assert j.space_low
    with pytest.raises(DiskFull) as again:           # still full: the same clear error, nothing torn
        j.append_batch(RecordType.MD_PACKET, [b"a"] * 5000)
    assert again.value.written < 5000
    after_batch = j.next_seq - 1
    with Reader(d) as r:
        assert r.last_seq == after_batch and r.stopped is None
        assert r.get(written).payload == payload_for(written, 1000)
    j.close()
    assert verify(d).ok


def test_disk_full_at_creation(small_tmpfs):
    with pytest.raises(DiskFull):
        Journal(small_tmpfs / "big", segment_size=4 << 20)


def child_writer(path, records: int) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from journal import Journal, RecordType
        j = Journal({str(path)!r}, segment_size={SMALL_SEGMENT})
        for i in range({records}):
            j.append(RecordType.MD_PACKET, b"child %d" % i)
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_second_writer_and_stale_lock_of_a_killed_writer(tmp_path):
    d = tmp_path / "j"
    proc = child_writer(d, 2500)
    try:
        with pytest.raises(JournalLocked):
            Journal(d)
        assert info(d)["writer_live"] and info(d)["pid"] == proc.pid
        with Reader(d) as r:                           # readers need no lock
            assert r.last_seq == 2500
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    state = info(d)
    assert not state["writer_live"] and state["pid"] == proc.pid and not state["closed_cleanly"]
    with Journal(d) as j:
        rep = j.recovery
        assert rep.previous_pid == proc.pid and not rep.previous_clean
        assert rep.continued_segment is not None and rep.sealed_segment is None   # appends go on in it
        assert j.segment == rep.continued_segment
        assert rep.bytes_discarded == 0 and rep.segments_removed == 0
        assert j.next_seq == 2501
        j.append(RecordType.MD_PACKET, b"after")
    with Reader(d) as r:
        assert [x.payload for x in r.records(first_seq=2499)] == [b"child 2498", b"child 2499", b"after"]
    assert verify(d).ok


def test_two_writers_in_one_process(tmp_path):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT):
        with pytest.raises(JournalLocked):
            Journal(tmp_path / "j", segment_size=SMALL_SEGMENT)
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:   # released on close
        assert j.recovery.previous_clean


def test_a_forked_child_does_not_inherit_the_writer(tmp_path):
    d = tmp_path / "j"
    j = Journal(d, segment_size=SMALL_SEGMENT)
    j.append(RecordType.MD_PACKET, b"parent 1")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: the copied writer is gone, and the journal is still the parent's
        try:
            outcome = b"ok"
            try:
                j.append(RecordType.MD_PACKET, b"child")
                outcome = b"child could append"
            except JournalClosed:
                pass
            try:
                Journal(d, segment_size=SMALL_SEGMENT)
                outcome = b"child opened a second writer"
            except JournalLocked:
                pass
            os.write(write_end, outcome)
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 100) == b"ok"
    os.close(read_end)
    os.waitpid(pid, 0)
    assert j.append(RecordType.MD_PACKET, b"parent 2") == 2
    j.close()
    with Reader(d) as r:
        assert [rec.payload for rec in r] == [b"parent 1", b"parent 2"]
    assert verify(d).ok


def test_a_missing_parent_directory_is_named(tmp_path):
    missing = tmp_path / "no-such-parent"
    with pytest.raises(JournalIOError) as caught:
        Journal(missing / "j")
    assert f"directory {missing} does not exist" in str(caught.value)
    with pytest.raises(JournalError) as caught:
        Reader(missing / "j")
    assert str(missing) in str(caught.value)
