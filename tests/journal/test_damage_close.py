"""A writer closed before the check of its trusted segments ended (journal.h DAMAGE BEHIND A
SUMMARY): the close finishes the check before it seals, so damage behind a believed summary is
marked (DAMAGED, close raises JournalCorrupt naming the record) and every later open fails closed.
Before, the close stopped the check: each open + close of a damaged journal sealed one more
segment after the damage and left nothing to say it was there."""
from __future__ import annotations

import pytest

from journal import Journal, JournalCorrupt, RecordType, verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import flip_byte, segment_files, wait_for

MD = RecordType.MD_PACKET
SEGMENT = 1 << 20


def trusted_journal(d, segments: int = 24) -> None:
    """`segments` sealed 1 MiB segments with DURABLE summaries (group mode), so that the next
    writer's open believes them and checks them only after it returned: its check walks ~24 MB,
    which takes far longer than an open followed at once by a close."""
    with Journal(d, segment_size=SEGMENT, durability="group") as j:
        while j.segment + 1 < segments:
            j.append_batch(MD, [b"x" * 1000] * 256)
    assert len(list(d.glob("*.sum"))) == segments


def lock_state(d) -> str:
    return (d / "LOCK").read_text().split()[2]


def test_a_close_right_after_the_open_marks_damage_behind_a_trusted_summary(tmp_path):
    d = tmp_path / "j"
    trusted_journal(d)
    last_trusted = segment_files(d)[-1]               # the check reaches it last
    flip_byte(last_trusted, 2000, 1)
    bad = verify(d).first_bad
    count = len(segment_files(d))
    j = Journal(d, segment_size=SEGMENT, durability="group")
    assert j.recovery.reason == "none"               # the open trusted the summary
    with pytest.raises(JournalCorrupt, match=f"close: damaged record behind a trusted summary: bad crc at "
                                             f"segment {bad.segment} offset {bad.offset} seq {bad.seq}"):
        j.close()
    assert (d / "DAMAGED").read_text() == f"damaged {lib.MMJ_R_BAD_CRC} segment {bad.segment} " \
                                          f"offset {bad.offset} seq {bad.seq}\n"
    assert lock_state(d) == "open"                    # not sealed: nothing added after the damage
    for _ in range(3):
        with pytest.raises(JournalCorrupt, match=f"at segment {bad.segment}, offset {bad.offset}"):
            Journal(d, segment_size=SEGMENT, durability="group")
    assert len(segment_files(d)) == count + 1          # the first open's own, left unsealed


def test_the_close_reports_the_first_damage_whichever_thread_walked_it(tmp_path):
    # the close walks the segments the check thread has not claimed yet, alongside it; damage in
    # two segments is reported at the first one, as the check alone (in order) would report it
    d = tmp_path / "j"
    trusted_journal(d)
    files = segment_files(d)
    for seg in (files[20], files[12]):
        flip_byte(seg, 5000, 1)
    first = verify(d).first_bad
    assert first.segment == 12
    j = Journal(d, segment_size=SEGMENT, durability="group")
    with pytest.raises(JournalCorrupt, match=f"segment 12 offset {first.offset} seq {first.seq}"):
        j.close()
    assert (d / "DAMAGED").read_text().startswith(f"damaged {lib.MMJ_R_BAD_CRC} segment 12 offset {first.offset} ")


@pytest.mark.parametrize("told_by", [None, "append", "damage"])
def test_the_close_reports_damage_the_check_found_only_if_no_call_did(tmp_path, told_by):
    # found by the thread after the last call: only the close can tell the caller; once an append
    # raised, or the damage property named it, the close does not raise it again
    d = tmp_path / "j"
    trusted_journal(d, segments=3)
    flip_byte(segment_files(d)[1], 3000, 1)
    j = Journal(d, segment_size=SEGMENT, durability="group")
    assert wait_for(lambda: (d / "DAMAGED").exists())
    if told_by == "append":
        with pytest.raises(JournalCorrupt, match="segment 1"):
            j.append(MD, b"refused")
    elif told_by == "damage":
        assert j.damage.segment == 1
    if told_by is None:
        with pytest.raises(JournalCorrupt, match="close: damaged record behind a trusted summary: bad crc at segment 1"):
            j.close()
    else:
        j.close()
    assert lock_state(d) == "open"


def test_a_clean_journal_closed_right_after_the_open_is_checked_and_sealed(tmp_path):
    d = tmp_path / "j"
    trusted_journal(d)
    count = len(segment_files(d))
    j = Journal(d, segment_size=SEGMENT, durability="group")
    seq = j.append(MD, b"one more")
    j.close()
    assert lock_state(d) == "closed" and not (d / "DAMAGED").exists()
    assert len(segment_files(d)) == count + 1          # the open's new segment, sealed by the close
    with Journal(d, segment_size=SEGMENT, durability="group") as j:
        assert j.recovery.reason == "none" and j.append(MD, b"next") == seq + 1
    assert verify(d).ok
