"""bulk.Arena: while active, scan and gather carve their arrays from buffers kept between uses
(the same values as fresh arrays), and the next use overwrites them; inactive, arrays are fresh."""
from __future__ import annotations

import numpy as np
import pytest

from journal import Journal, Reader, RecordType, bulk
from journal.catalogue import PAYLOAD_DTYPES
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for


@pytest.fixture
def reader(tmp_path):
    d = tmp_path / "j"
    size = PAYLOAD_DTYPES[RecordType.CLOCK_SAMPLE].itemsize
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        for _ in range(3000):
            j.append(RecordType.CLOCK_SAMPLE, payload_for(j.next_seq, size), ts_ns=j.next_seq, ts_source=1, clock_state=0)
    with Reader(d) as r:
        yield r


def test_arena_arrays_equal_fresh_ones_and_are_reused_by_the_next_use(reader):
    dtype = PAYLOAD_DTYPES[RecordType.CLOCK_SAMPLE]
    fresh = reader.scan(1, 1000, fields=("seq", "pos"))
    fresh_rows = reader.gather(fresh.pos, dtype)
    arena = bulk.Arena()
    with arena:
        first = reader.scan(1, 1000, fields=("seq", "pos"))
        rows = reader.gather(first.pos, dtype)
        assert np.array_equal(first.seq, fresh.seq) and np.array_equal(rows, fresh_rows)
        kept = first.seq.copy()
    with arena:                                   # a longer range: the buffers grow
        second = reader.scan(1001, 3000, fields=("seq", "pos"))
        assert list(second.seq[:3]) == [1001, 1002, 1003] and len(second) == 2000
    with arena:                                   # same sizes again: the same memory, overwritten
        third = reader.scan(2001, 3000, fields=("seq", "pos"))
        assert np.shares_memory(third.seq, second.seq)
    assert list(third.seq[:2]) == [2001, 2002] and list(kept[:2]) == [1, 2]
    outside = reader.scan(1, 10, fields=("seq",))
    assert not np.shares_memory(outside.seq, third.seq)


def test_one_arena_per_thread_at_a_time():
    with bulk.Arena():
        with pytest.raises(RuntimeError, match="already active"):
            with bulk.Arena():
                pass
