"""sync() makes everything appended so far durable in pagecache mode too: the segments rolled away
since the last sync (sealed without an msync in that mode) are fsynced and reported to the sync
hook, not only the segment being written."""
from __future__ import annotations

from journal import Journal, Reader, RecordType, verify
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for, record_offsets, segment_files


def test_sync_covers_segments_rolled_since_the_last_sync(tmp_path):
    d = tmp_path / "j"
    j = Journal(d, segment_size=SMALL_SEGMENT, durability="pagecache")
    synced = []
    j.on_sync(lambda seg, start, stop: synced.append((seg, start, stop)))
    for _ in range(20):
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 500))
    j.sync()                                     # segment 0, up to here
    first = list(synced)
    assert [seg for seg, _, _ in first] == [0]
    while j.segment < 3:                         # three rolls without a sync
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 500))
    j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 500))
    synced.clear()
    j.sync()
    by_segment = {seg: (start, stop) for seg, start, stop in synced}
    assert sorted(by_segment) == [0, 1, 2, 3]
    assert by_segment[0][0] <= first[0][2]       # segment 0 from where the first sync stopped
    for seg, path in enumerate(segment_files(d)[:3]):
        off, size, _ = record_offsets(path)[-1]  # its EOS marker
        assert by_segment[seg][1] >= off + size, f"segment {seg} synced only to {by_segment[seg][1]}"
    synced.clear()
    j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 500))
    j.sync()                                     # nothing rolled since: the current segment only
    assert [seg for seg, _, _ in synced] == [3]
    j.on_sync(None)
    last = j.next_seq - 1
    j.close()
    assert verify(d).ok
    with Reader(d) as r:
        assert r.last_seq == last
