"""Segment summaries (journal.h SEGMENT SUMMARY): a reader opens sealed segments from them only
when the segment's own SEAL and EOS agree, checks their records when it first reads them, and
reads exactly what a full scan at open reads, whatever was done to the summaries or segments."""
from __future__ import annotations

import pathlib
import shutil
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import journal
from journal import Journal, Reader
from journal._journal_cffi import ffi, lib

from .jhelpers import record_offsets, segment_files, write_journal

SUM_SIZE = 96


def summary_path(segment: pathlib.Path) -> pathlib.Path:
    return segment.with_suffix(".sum")


def probe(path, index: int):
    """mmj_segment_summary: (status, first_seq, records, end)."""
    vals = ffi.new("uint64_t[3]")
    status = lib.mmj_segment_summary(str(path).encode(), index, vals, vals + 1, vals + 2)
    return status, vals[0], vals[1], vals[2]


def truth(path) -> list[tuple[int, int, int, int]]:
    """(index, first_seq, records, data end) of each sealed segment, from a full scan."""
    out = []
    with Reader(path, full_scan=True) as r:
        for seg, f in zip(r.segments(), segment_files(path)):
            if seg["sealed"]:
                off, size, _ = record_offsets(f)[-1]
                out.append((seg["index"], seg["first_seq"], seg["records"], off + size))
    return out


def same_reads(path) -> None:
    """A default reader and a full-scan reader return the same records and stop at the same place."""
    with Reader(path, full_scan=True) as full:
        want, want_stop = list(full), full.stopped
    with Reader(path) as fast:
        got, got_stop = list(fast), fast.stopped
        assert fast.unchecked_segments == 0   # everything read was checked
    assert got == want
    assert got_stop == want_stop


def with_crc(body: bytes) -> bytes:
    return body[:92] + struct.pack("<I", lib.mmj_crc32c(0, body[:92], 92))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("summary") / "j"
    write_journal(d, 2500)
    return d


@pytest.fixture
def journal_copy(base, tmp_path):
    d = tmp_path / "j"
    shutil.copytree(base, d)
    return d


def test_every_sealed_segment_has_a_believed_summary(journal_copy):
    segs = truth(journal_copy)
    assert len(segs) >= 4
    for index, first, records, end in segs:
        assert summary_path(segment_files(journal_copy)[index]).stat().st_size == SUM_SIZE
        assert probe(journal_copy, index) == (lib.MMJ_OK, first, records, end)
    with Reader(journal_copy) as r:
        assert r.unchecked_segments == len(segs)   # nothing scanned at open
        assert [s["records"] for s in r.segments()] == [s[2] for s in segs]
        assert len(r) == 2500
        assert r.get(700).seq == 700               # random access checks just that segment
        assert r.unchecked_segments == len(segs) - 1
    same_reads(journal_copy)


def test_live_writer_tail_segment_is_scanned(tmp_path):
    j = write_journal(tmp_path / "j", 900, close=False)
    try:
        with Reader(tmp_path / "j") as r:
            sealed = sum(s["sealed"] for s in r.segments())
            assert r.unchecked_segments == sealed == len(r.segments()) - 1
            assert len(r) == 900
            j.append(journal.RecordType.MD_PACKET, b"x" * 40)
            r.refresh()
            assert len(r) == 901
        same_reads(tmp_path / "j")
    finally:
        j.close()


def test_missing_summary_means_a_scan(journal_copy):
    summary_path(segment_files(journal_copy)[1]).unlink()
    assert probe(journal_copy, 1)[0] == lib.MMJ_E_NOT_FOUND
    with Reader(journal_copy) as r:
        assert r.unchecked_segments == len(truth(journal_copy)) - 1
    same_reads(journal_copy)


def test_bad_record_behind_a_good_summary_ends_the_snapshot_on_first_read(journal_copy):
    seg = segment_files(journal_copy)[1]
    off, _, _ = record_offsets(seg)[5]
    data = bytearray(seg.read_bytes())
    data[off + 40] ^= 0x10                      # a payload byte: the summary is still believed
    seg.write_bytes(bytes(data))
    with Reader(journal_copy) as r:
        assert r.stopped is None and len(r) == 2500   # not read yet, so not checked yet
        records = list(r)
        assert r.stopped is not None and r.stopped["reason"] == "bad crc"
        assert len(r) == records[-1].seq == r.stopped["seq"] - 1
    same_reads(journal_copy)


def test_recovery_removes_summaries_of_segments_it_drops(journal_copy):
    segs = segment_files(journal_copy)
    off, _, _ = record_offsets(segs[1])[5]
    data = bytearray(segs[1].read_bytes())
    data[off + 40] ^= 0x10
    segs[1].write_bytes(bytes(data))
    before = len(segs)
    j = Journal(journal_copy, create=False)            # recovery: cut at the bad record, reseal
    assert j.recovery.segments_removed == before - 2
    j.close()
    sealed = truth(journal_copy)
    assert [int(p.stem[4:]) for p in sorted(journal_copy.glob("seg-*.sum"))] == [s[0] for s in sealed]
    for index, first, records, end in sealed:          # segment 1 resealed at its new end
        assert probe(journal_copy, index) == (lib.MMJ_OK, first, records, end)
    same_reads(journal_copy)
    with Reader(journal_copy) as r:
        assert r.stopped is None


FIELD = st.sampled_from([8, 16, 24, 32, 40, 48, 80])   # index, first, records, seal, end, hash, zero


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 3), how=st.one_of(
    st.tuples(st.just("flip"), st.integers(0, SUM_SIZE - 1), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, SUM_SIZE - 1)),
    st.tuples(st.just("extend"), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("garbage"), st.binary(min_size=SUM_SIZE, max_size=SUM_SIZE)),
    st.tuples(st.just("other"), st.integers(0, 3)),
    st.tuples(st.just("field"), FIELD, st.integers(-(1 << 20), 1 << 20)),   # a lie with a valid crc
    st.tuples(st.just("u64"), FIELD, st.integers(0, (1 << 64) - 1)),
))
def test_fuzzed_summary_is_believed_only_when_true(base, tmp_path, index, how):
    d = tmp_path / "j"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base, d)
    segs = truth(d)
    target = summary_path(segment_files(d)[index])
    data = bytearray(target.read_bytes())
    kind, *args = how
    if kind == "flip":
        data[args[0]] ^= 1 << args[1]
    elif kind == "truncate":
        del data[args[0]:]
    elif kind == "extend":
        data += args[0]
    elif kind == "garbage":
        data = bytearray(args[0])
    elif kind == "other":
        data = bytearray(summary_path(segment_files(d)[args[0]]).read_bytes())
    else:
        at, delta = args
        old = int.from_bytes(data[at:at + 8], "little")
        new = (old + delta) % (1 << 64) if kind == "field" else delta
        data[at:at + 8] = new.to_bytes(8, "little")
        data = bytearray(with_crc(bytes(data)))
    target.write_bytes(bytes(data))
    status, first, records, end = probe(d, index)
    assert status in (lib.MMJ_OK, lib.MMJ_E_CORRUPT)
    if status == lib.MMJ_OK:
        assert (index, first, records, end) == segs[index]
    same_reads(d)


def test_threads_reading_unchecked_segments_at_once_see_the_same_records(journal_copy):
    import threading
    with Reader(journal_copy, full_scan=True) as full:
        want = full.scan().seq.tolist()
    for _ in range(5):
        with Reader(journal_copy) as r:
            got, gate = [None] * 4, threading.Barrier(4)

            def read(k):
                gate.wait()
                got[k] = r.scan().seq.tolist()   # the C scan runs without the GIL

            threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert r.unchecked_segments == 0
        assert got == [want] * 4
