"""A tailer never walks past a journal that a recovery cut back behind what it had read (journal.h
TAILERS): a named position saved before a power cut, a live tailer whose segment a damage
recovery removed, a saved position from another journal in the same directory. Each gives
TailerPositionLost, and an uncut journal resumes exactly where it stopped (the saved head
checks out)."""
from __future__ import annotations

import shutil
import time

import pytest

from journal import Journal, Reader, RecordType, Tailer, TailerPositionLost
from tests.journal.jhelpers import flip_byte, record_offsets, segment_files

SEGMENT = 65536


def _append(j: Journal, n: int, tag: bytes) -> None:
    for _ in range(n):
        j.append(RecordType.MD_PACKET, (tag + b"%d" % j.next_seq).ljust(100, b"."))


def _read_all(t: Tailer) -> list[int]:
    out = []
    while (rec := t.next(timeout_s=0.05)) is not None:
        out.append(rec.seq)
    return out


def test_a_named_position_saved_before_a_power_cut_is_lost_not_skipped_past(tmp_path):
    live, image = tmp_path / "live", tmp_path / "image"
    with Journal(live, segment_size=SEGMENT, durability="group", group_records=1, group_us=1) as j:
        _append(j, 50, b"synced")
        j.sync()
        shutil.copytree(live, image)          # what survives the cut: the synced records...
        _append(j, 50, b"lost")
        with Tailer(live, name="ops") as t:
            assert _read_all(t) == list(range(1, 101))
            t.commit()
    (image / "tailers").mkdir()
    shutil.copy(live / "tailers" / "ops.pos", image / "tailers" / "ops.pos")   # ...and the fsynced position
    with Journal(image, segment_size=SEGMENT) as j:     # recovery, then new records 51..60
        assert j.next_seq == 51
        _append(j, 10, b"new")
    with Tailer(image, name="ops") as t:
        with pytest.raises(TailerPositionLost, match="no longer holds seq 100"):
            t.next(timeout_s=0.2)
    with Tailer(image, from_seq=51) as t:               # the consumer chooses where to resume
        assert _read_all(t) == list(range(51, 61))


def test_an_uncut_journal_resumes_where_the_named_tailer_stopped(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SEGMENT) as j:
        _append(j, 700, b"p")                           # several segments
        with Tailer(d, name="ops") as t:
            first = [t.next().seq for _ in range(300)]
            t.commit()
        saved = (d / "tailers" / "ops.pos").read_text().split()
        assert saved[:3] == ["mmjpos", "2", "301"] and saved[3] == j.journal_id
        _append(j, 5, b"q")
    with Tailer(d, name="ops") as t:
        assert first == list(range(1, 301)) and _read_all(t) == list(range(301, 706))


def test_a_position_saved_at_a_segment_boundary_checks_the_previous_segment(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SEGMENT) as j:
        _append(j, 700, b"p")
    with Reader(d) as r:
        boundary = r.segments()[1]["first_seq"]       # the first record of segment 1
    with Tailer(d, name="b") as t:
        while t.position < boundary:
            t.next()
        t.commit()                                     # last read: the last record of segment 0
    with Tailer(d, name="b") as t:
        assert t.next().seq == boundary


def test_a_live_tailer_in_a_segment_a_damage_recovery_removed_is_told(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SEGMENT) as j:
        while len(segment_files(d)) < 3:
            _append(j, 50, b"p")
        last = j.next_seq - 1
    t = Tailer(d)
    try:
        assert _read_all(t)[-1] == last                # the tailer sits at the end of the last segment
        seg = segment_files(d)[1]
        flip_byte(seg, record_offsets(seg)[5][0] + 35)  # damage in the middle segment
        with Journal(d, segment_size=SEGMENT) as j:    # recovery cuts there, then new records
            cut = j.next_seq
            _append(j, 20, b"after")
        assert cut < last
        deadline = time.monotonic() + 5
        with pytest.raises(TailerPositionLost):
            while time.monotonic() < deadline:
                assert t.next(timeout_s=0.05) is None
    finally:
        t.close()


def test_a_saved_position_of_another_journal_in_the_same_directory_is_lost(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SEGMENT) as j:
        _append(j, 20, b"p")
    with Tailer(d, name="ops") as t:
        _read_all(t)
        t.commit()
    pos = (d / "tailers" / "ops.pos").read_bytes()
    shutil.rmtree(d)
    with Journal(d, segment_size=SEGMENT) as j:        # a new journal where the old one was
        _append(j, 30, b"p")
    (d / "tailers").mkdir()
    (d / "tailers" / "ops.pos").write_bytes(pos)
    with pytest.raises(TailerPositionLost, match="another journal"):
        Tailer(d, name="ops")


def test_an_old_format_position_still_loads(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SEGMENT) as j:
        _append(j, 20, b"p")
    (d / "tailers").mkdir()
    (d / "tailers" / "ops.pos").write_text("mmjpos 1 11\n")
    with Tailer(d, name="ops") as t:
        assert _read_all(t) == list(range(11, 21))
