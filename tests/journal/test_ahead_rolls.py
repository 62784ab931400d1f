"""The next segment the helper thread preallocates is for the right index on every roll, not only
the first: while a roll has taken next.mmj.tmp but not yet started the new segment, the helper
must not prepare another file for the index just taken (it would sit there stale, block the real
one, and leave the following roll to fallocate with nothing faulted in)."""
from __future__ import annotations

import time

import pytest

from journal import Journal, Reader, RecordType, verify
from tests.journal.jhelpers import payload_for, wait_for

NEXT = "next.mmj.tmp"
SEGMENT = 1 << 20
SIZE = 984                      # 1016-byte records


def fill_to(j: Journal, fraction: float) -> None:
    """Append, paced so that the helper runs between appends, until that much of the journal."""
    while j.next_seq * (SIZE + 32) < SEGMENT * fraction:
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, SIZE))
        time.sleep(0.0001)


@pytest.mark.parametrize("mode", ["pagecache", "group"])
def test_every_roll_takes_the_file_prepared_for_it(tmp_path, mode):
    d = tmp_path / "j"
    j = Journal(d, segment_size=SEGMENT, durability=mode, checkpoint_every=1_000_000)
    for seg in range(1, 4):
        fill_to(j, seg - 1 + 0.6)                         # past half of segment seg-1
        assert wait_for(lambda: (d / NEXT).exists() and (d / NEXT).stat().st_size == SEGMENT)
        inode = (d / NEXT).stat().st_ino
        while j.segment == seg - 1:
            j.append(RecordType.MD_PACKET, payload_for(j.next_seq, SIZE))
        assert (d / f"seg-{seg:016x}.mmj").stat().st_ino == inode, f"roll to segment {seg}"
        time.sleep(0.05)                                  # helper wake-ups: segment seg is far from half full
        assert not (d / NEXT).exists(), f"a next segment prepared for an index already taken (roll {seg})"
    last = j.next_seq - 1
    j.close()
    assert verify(d).ok
    with Reader(d) as r:
        assert r.last_seq == last
