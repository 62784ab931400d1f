"""Damage found behind a trusted summary while the disk is full still leaves its DAMAGED marker:
the marker is written into DAMAGED.room, which every writer open preallocates while there is
space, so a full disk cannot refuse it, and every later open fails closed (journal.h DAMAGE BEHIND A
SUMMARY). A marker that still cannot be written (no such file, no space) is tried again by
retry_space and by the close, which raises JournalCorrupt while it is missing. Before, the result
of the write was ignored: on a full disk the marker was missing, and the next open acknowledged
records after known damage."""
from __future__ import annotations

import pytest

from journal import Journal, JournalCorrupt, RecordType
from tests.journal.jhelpers import SMALL_SEGMENT, flip_byte, segment_files, wait_for
from tests.journal.test_reserve import fill_disk

MD = RecordType.MD_PACKET


def damaged_full_journal(mnt):
    """A journal on the 1 MiB tmpfs with bit rot in sealed segment 1 (behind a DURABLE summary)."""
    d = mnt / "j"
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        for _ in range(200):
            j.append(MD, b"x" * 1000)
    flip_byte(segment_files(d)[1], 20000, 1)
    return d


def open_until_damage(d) -> Journal:
    j = Journal(d, segment_size=SMALL_SEGMENT, durability="group")
    assert j.space_low                                # the disk is full: no new reserve
    assert wait_for(lambda: j.damage is not None)
    return j


def test_damage_found_on_a_full_disk_leaves_its_marker(small_tmpfs):
    d = damaged_full_journal(small_tmpfs)
    fill_disk(small_tmpfs)
    j = open_until_damage(d)
    damage = j.damage
    j.close()                                         # the damage was told (j.damage): no raise
    assert (d / "DAMAGED").read_text().startswith(f"damaged 4 segment 1 offset {damage.offset} ")
    (small_tmpfs / "filler").unlink()
    with pytest.raises(JournalCorrupt, match=f"at segment 1, offset {damage.offset}"):
        Journal(d, segment_size=SMALL_SEGMENT, durability="group")


def test_a_marker_the_disk_refused_is_written_by_retry_space_and_owed_by_close(small_tmpfs):
    d = damaged_full_journal(small_tmpfs)
    (d / "DAMAGED.room").unlink()                     # no room kept for the marker
    fill_disk(small_tmpfs)
    j = open_until_damage(d)
    assert not (d / "DAMAGED").exists()
    (small_tmpfs / "filler").unlink()
    with pytest.raises(JournalCorrupt):               # still latched; the marker is written now
        j.retry_space()
    assert (d / "DAMAGED").exists()
    j.close()
    (d / "DAMAGED").unlink()                          # again, and the close cannot write it
    (d / "DAMAGED.room").unlink(missing_ok=True)
    fill_disk(small_tmpfs)
    j = open_until_damage(d)
    with pytest.raises(JournalCorrupt):               # damage told, but its marker is missing
        j.close()
    assert not (d / "DAMAGED").exists()
