"""The writer's helper thread: once a segment is half full the next one is preallocated
(next.mmj.tmp) and a roll takes it; close removes an unused one; the chain it hashes ahead of
the appends verifies, whatever the interleaving of checkpoints and helper steps."""
from __future__ import annotations

from journal import Journal, Reader, RecordType, verify
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for, segment_files, wait_for

NEXT = "next.mmj.tmp"


def test_next_segment_is_preallocated_used_at_roll_and_removed_at_close(tmp_path):
    d = tmp_path / "j"
    j = Journal(d, segment_size=SMALL_SEGMENT, checkpoint_every=5)
    while j.next_seq * 1000 < SMALL_SEGMENT * 0.6:        # past half of segment 0
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 960))
    assert wait_for(lambda: (d / NEXT).exists() and (d / NEXT).stat().st_size == SMALL_SEGMENT)
    inode = (d / NEXT).stat().st_ino
    while j.segment == 0:
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 960))
    assert (d / "seg-0000000000000001.mmj").stat().st_ino == inode   # the roll took the prepared file
    while j.next_seq * 1000 < SMALL_SEGMENT * 1.7:        # past half of segment 1
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 960))
    assert wait_for(lambda: (d / NEXT).exists())
    last = j.next_seq - 1
    j.close()
    assert not (d / NEXT).exists() and len(segment_files(d)) == 2
    report = verify(d)
    assert report.ok and report.records == last and report.checkpoints > last // 5
    with Reader(d) as r:
        assert [rec.payload for rec in r] == [payload_for(s, 960) for s in range(1, last + 1)]


def test_a_leftover_next_file_is_removed_at_open(tmp_path):
    d = tmp_path / "j"
    Journal(d, segment_size=SMALL_SEGMENT).close()
    (d / NEXT).write_bytes(b"garbage from a crashed writer")
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert not (d / NEXT).exists()
        j.append(RecordType.MD_PACKET, b"x")
    assert verify(d).ok
