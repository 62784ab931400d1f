"""Tailers and readers never take a gap for the end of the journal (journal.h THE END OF THE
JOURNAL, TAILERS): a tailer that reaches a missing segment (a later one exists, or LOCK names
another end) raises SegmentsMissing naming it, and one that reaches an unsealed segment the journal
goes on after raises JournalCorrupt (no EOS), busy-polling or waiting, and hands out nothing past
it; a reader reports the unsealed segment in `stopped`. At the true end, during a writer's rolls
or a new writer's open, they keep waiting."""
from __future__ import annotations

import time

import pytest

from journal import Journal, JournalCorrupt, Reader, RecordType, SegmentsMissing, Tailer
from journal._journal_cffi import lib
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for, record_offsets, segment_files, write_journal
from tests.journal.test_missing_end import remove_last
from tests.journal.test_reader_end import remove_segment
from tests.journal.test_tailer import PAYLOAD, ROLLS, rolling_writer, shm_dir  # noqa: F401 (the fixture)

WAITS = {"busy-poll": 0.0, "wait": 0.2}


def read_until_error(tailer: Tailer, wait_s: float, limit_s: float = 5.0) -> tuple[list[int], Exception | None]:
    """Sequences the tailer hands out until it raises (the error) or has nothing for limit_s (None)."""
    seqs, quiet_since = [], time.monotonic()
    while time.monotonic() - quiet_since < limit_s:
        try:
            rec = tailer.next(wait_s)
        except Exception as exc:     # noqa: BLE001 (the test asserts which)
            return seqs, exc
        if rec is not None:
            seqs.append(rec.seq)
            quiet_since = time.monotonic()
    return seqs, None


def unseal(seg) -> None:
    """Zero a segment's SEAL and EOS (the records before them stay valid)."""
    seal_at = record_offsets(seg)[-2][0]
    data = bytearray(seg.read_bytes())
    data[seal_at:] = bytes(len(data) - seal_at)
    seg.write_bytes(bytes(data))
    seg.with_suffix(".sum").unlink(missing_ok=True)


@pytest.mark.parametrize("mode", WAITS)
def test_a_tailer_stops_at_a_missing_middle_segment(tmp_path, mode):
    d = tmp_path / "j"
    write_journal(d, 3000)
    assert len(segment_files(d)) >= 5
    first_missing = remove_segment(d, 2)
    with Tailer(d) as t:
        seqs, exc = read_until_error(t, WAITS[mode])
        assert seqs == list(range(1, first_missing))
        assert isinstance(exc, SegmentsMissing), exc
        assert "segment 2 is missing" in str(exc) and t.position == first_missing
        with pytest.raises(SegmentsMissing):           # it stands: nothing past the gap later either
            t.next(WAITS[mode])


def test_a_tailer_asked_for_records_past_a_gap_hands_out_none(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 3000)
    first_missing = remove_segment(d, 2)
    with Reader(d, full_scan=True) as r:
        assert r.last_seq == first_missing - 1
    with Tailer(d, from_seq=2900) as t:
        seqs, exc = read_until_error(t, 0.1)
        assert seqs == [] and isinstance(exc, SegmentsMissing) and "segment 2 is missing" in str(exc)


@pytest.mark.parametrize("mode", WAITS)
def test_a_tailer_stops_where_lock_names_a_later_end(tmp_path, mode):
    d = tmp_path / "j"
    write_journal(d, 3000)
    first_missing = remove_last(d, 2)
    with Reader(d) as r:
        last = r.last_seq
    with Tailer(d) as t:
        seqs, exc = read_until_error(t, WAITS[mode])
        assert seqs == list(range(1, last + 1))
        assert isinstance(exc, SegmentsMissing) and f"segment {first_missing} is missing" in str(exc)


@pytest.mark.parametrize("mode", WAITS)
def test_an_unsealed_segment_followed_by_records_stops_tailers_and_readers(tmp_path, mode):
    d = tmp_path / "j"
    write_journal(d, 3000)
    files = segment_files(d)
    assert len(files) >= 5
    unseal(files[2])
    with Reader(d, full_scan=True) as r:
        end = r.segments()[2]
        last = end["first_seq"] + end["records"] - 1
        assert r.last_seq == last and not end["sealed"]
        assert r.stopped is not None and r.stopped["reason"] == "segment not sealed but followed by another"
        assert r.stopped["segment"] == 2 and r.stopped["seq"] == last + 1
    with Reader(d) as r:                                # segments 0 and 1 from their summaries
        assert r.last_seq == last and r.stopped["segment"] == 2
    with Tailer(d) as t:
        seqs, exc = read_until_error(t, WAITS[mode])
        assert seqs == list(range(1, last + 1))
        assert isinstance(exc, JournalCorrupt) and not isinstance(exc, SegmentsMissing), exc
        assert "segment 2 ends at offset" in str(exc)


def test_an_unsealed_segment_with_only_a_blank_successor_is_a_live_end(tmp_path):
    """A roll cut short by a crash (the successor holds nothing yet) is no damage."""
    d = tmp_path / "j"
    write_journal(d, 1200)
    files = segment_files(d)
    unseal(files[-2])
    data = bytearray(files[-1].read_bytes())
    data[lib.MMJ_HEADER_SIZE:] = bytes(len(data) - lib.MMJ_HEADER_SIZE)
    files[-1].write_bytes(bytes(data))
    files[-1].with_suffix(".sum").unlink(missing_ok=True)
    with Reader(d) as r:
        last = r.last_seq
        assert r.stopped is None
    with Tailer(d) as t:
        seqs, exc = read_until_error(t, 0.0, limit_s=0.3)
        assert exc is None and seqs == list(range(1, last + 1))


def test_a_tailer_at_a_closed_end_waits_for_the_next_writer(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 1000)
    with Tailer(d) as t:
        seqs, exc = read_until_error(t, 0.0, limit_s=0.3)
        assert exc is None and seqs == list(range(1, 1001))
        with Journal(d, segment_size=SMALL_SEGMENT) as j:   # a new segment, then LOCK names it
            j.append(RecordType.MD_PACKET, b"after", ts_ns=1)
            assert t.next(1.0).seq == 1001
        assert t.next(0.05) is None


@pytest.mark.slow
@pytest.mark.parametrize("mode", WAITS)
def test_tailers_and_readers_follow_1000_rolls_without_a_false_alarm(shm_dir, mode):
    d = shm_dir / "j"
    Journal(d, segment_size=SMALL_SEGMENT).close()
    records = ROLLS * 10 + 5
    wait_s = WAITS[mode]
    with Tailer(d) as tailer, Reader(d) as reader:
        writer = rolling_writer(d, records)
        try:
            expected, quiet_since = 1, time.monotonic()
            while expected <= records:
                rec = tailer.next(wait_s)
                if rec is None:
                    assert time.monotonic() - quiet_since < 20, f"no record {expected} within 20 s"
                    continue
                quiet_since = time.monotonic()
                assert rec.seq == expected and rec.payload == payload_for(expected, PAYLOAD)
                expected += 1
                if expected % 50 == 0:                     # a snapshot taken while the writer rolls
                    reader.refresh()
                    assert reader.stopped is None, reader.stopped
            assert tailer.next(0.05) is None
            last_segment = int(writer.stdout.read().strip())
        finally:
            writer.wait(timeout=60)
            writer.stdout.close()
    assert writer.returncode == 0 and last_segment >= ROLLS


def test_a_writer_open_keeps_what_follows_an_unsealed_segment_and_says_so(tmp_path):
    """journal.h DISCARDED DATA: the later segments' records are damage in front of written records,
    moved to discarded/r1 (not deleted), and the recovery report names the segment and the count."""
    d = tmp_path / "j"
    write_journal(d, 3000)
    files = segment_files(d)
    unseal(files[2])
    with Reader(d, full_scan=True) as r:
        last = r.last_seq
    later_files = {p.name: p.read_bytes() for p in files[3:]}
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        rep = j.recovery
        assert rep.reason_code == lib.MMJ_R_NO_EOS and rep.segment == 2 and rep.seq == last + 1
        assert rep.segments_removed == rep.segments_kept == len(later_files) and rep.discarded_run == 1
        assert rep.records_discarded == 3000 - last
        assert j.next_seq == last + 1 and j.segment == 2       # continues in the unsealed segment
    kept = d / "discarded" / "r1"
    assert {p.name: p.read_bytes() for p in kept.glob("seg-*.mmj")} == later_files
