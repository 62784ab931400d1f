"""Damage in a sealed segment whose DURABLE summary a writer's recovery believed (so it did not
scan it) is found right after the open: the writer latches (appends raise JournalCorrupt naming
the record), leaves DAMAGED, and every later open fails closed until an operator acts (journal.h
DAMAGE BEHIND A SUMMARY). Before, the writer went on acknowledging records that a replay from the
start never reaches."""
from __future__ import annotations

import time

import pytest

from journal import Journal, JournalCorrupt, Reader, RecordType, verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import SMALL_SEGMENT, flip_byte, segment_files, wait_for

MD = RecordType.MD_PACKET


def damaged_journal(d) -> None:
    """3000 records in group mode (sealed segments get DURABLE summaries), one bit flipped in the
    middle of sealed segment 1."""
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        for _ in range(3000):
            j.append(MD, b"x" * 40)
    assert len(list(d.glob("*.sum"))) >= 3
    flip_byte(segment_files(d)[1], 4096 + 40, 1)


def wait_for_damage(j: Journal, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while j.damage is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return j.damage


def test_the_writer_latches_on_damage_behind_a_trusted_summary(tmp_path):
    d = tmp_path / "j"
    damaged_journal(d)
    j = Journal(d, segment_size=SMALL_SEGMENT, durability="group")
    assert j.recovery.reason == "none"               # recovery trusted the summary
    damage = wait_for_damage(j)
    assert damage is not None and damage.segment == 1 and damage.reason_code == lib.MMJ_R_BAD_CRC
    bad = verify(d).first_bad
    assert (damage.seq, damage.offset) == (bad.seq, bad.offset)
    with pytest.raises(JournalCorrupt, match=f"segment 1 offset {damage.offset} seq {damage.seq}"):
        j.append(MD, b"NEW ORDER")
    with pytest.raises(JournalCorrupt):
        j.append_batch(MD, [b"a" * 8, b"b" * 8])
    j.close()                                         # not sealed: LOCK still says open
    assert (d / "LOCK").read_text().split()[2] == "open"
    assert (d / "DAMAGED").read_text().startswith("damaged 4 segment 1 ")
    with Reader(d) as r:                             # nothing was acknowledged past the damage
        assert sum(1 for _ in r) == damage.seq - 1


def test_every_open_fails_closed_until_an_operator_acts(tmp_path):
    d = tmp_path / "j"
    damaged_journal(d)
    j = Journal(d, segment_size=SMALL_SEGMENT, durability="group")
    damage = wait_for_damage(j)
    j.close()
    files = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != "notify"}
    for _ in range(2):
        with pytest.raises(JournalCorrupt, match=f"at segment 1, offset {damage.offset}, sequence {damage.seq}"):
            Journal(d, segment_size=SMALL_SEGMENT, durability="group")
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != "notify"} == files
    # the operator cuts the journal at the damage: DAMAGED and the segment's summary removed, the
    # next open scans the segment, keeps what follows the damage in discarded/ and continues
    (d / "DAMAGED").unlink()
    segment_files(d)[1].with_suffix(".sum").unlink()
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        assert j.recovery.segment == 1 and j.recovery.seq == damage.seq and j.recovery.discarded_run
        assert j.append(MD, b"after the cut") == damage.seq
    assert verify(d).ok


def test_an_intact_journal_opened_from_its_summaries_is_not_latched(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        for _ in range(3000):
            j.append(MD, b"x" * 40)
    with Journal(d, segment_size=SMALL_SEGMENT, durability="group") as j:
        time.sleep(0.2)                               # the check of the trusted segments ran
        assert j.damage is None and j.append(MD, b"y") == 3001
    assert not (d / "DAMAGED").exists() and verify(d).ok


@pytest.mark.parametrize("call", ["sync", "checkpoint"])
def test_sync_or_checkpoint_on_a_latched_writer_names_the_damage(tmp_path, call):
    d = tmp_path / "j"
    damaged_journal(d)
    j = Journal(d, segment_size=SMALL_SEGMENT, durability="group")
    damage = wait_for_damage(j)
    with pytest.raises(JournalCorrupt, match=f"segment 1 offset {damage.offset}"):
        getattr(j, call)()                            # not DurabilityFailed: no msync failed
    j.close()                                         # the call told the damage


@pytest.mark.parametrize("by", ["group tick", "sync", "close"])
def test_records_acknowledged_before_the_latch_are_msynced_in_group_mode(tmp_path, by):
    """A damage latch refuses new appends, but what was acknowledged before it is msynced: by the
    helper's group tick, by sync() and by the close (which does not seal)."""
    from tests.journal.test_damage_close import SEGMENT, trusted_journal
    d = tmp_path / "j"
    trusted_journal(d)
    flip_byte(segment_files(d)[-1], 2000, 1)          # the check reaches it last, after ~23 MB
    budget_us = 2_000_000 if by == "group tick" else 600_000_000
    j = Journal(d, segment_size=SEGMENT, durability="group", group_records=1000, group_us=budget_us)
    synced = []
    j.on_sync(lambda segment, start, stop: synced.append((segment, stop)))
    segment = j.segment
    for _ in range(20):                               # acknowledged before the check ends
        j.append(MD, b"z" * 200)
    end = j.next_seq
    assert wait_for_damage(j) is not None
    with pytest.raises(JournalCorrupt):
        j.append(MD, b"refused")
    if by == "sync":
        with pytest.raises(JournalCorrupt):
            j.sync()
    elif by == "close":
        j.close()                                     # the append above told the damage
    assert wait_for(lambda: any(s == segment and stop >= 128 + 20 * 232 for s, stop in synced), 20), synced
    j.close()
    with Reader(d) as r:                             # nothing was appended after the latch
        assert r.last_seq == end - 1
