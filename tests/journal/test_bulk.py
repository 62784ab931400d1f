"""Bulk reads: one scan fills header columns of every data record of a range (all types), gather
turns chosen payload handles into arrays, and read_fixed over several types of one range agrees
with record-by-record iteration, across segment rolls and partial ranges."""
from __future__ import annotations

import numpy as np
import pytest

from journal import Journal, PayloadSizeError, Reader, RecordType
from journal._journal_cffi import lib
from journal.catalogue import PAYLOAD_DTYPES
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for

TYPES = [RecordType.TX_TS, RecordType.MD_PACKET, RecordType.CLOCK_SAMPLE, RecordType.TIMER]


def payload(rtype: RecordType, seq: int) -> bytes:
    size = PAYLOAD_DTYPES[rtype].itemsize if rtype in PAYLOAD_DTYPES else 10 + seq % 70
    return payload_for(seq, size)


@pytest.fixture
def mixed(tmp_path):
    """2,000 records of four types (one variable-size) over many 64 KiB segments."""
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT, checkpoint_every=50) as j:
        for i in range(2000):
            seq = j.next_seq
            rtype = TYPES[(seq * 7) % 4]
            j.append(rtype, payload(rtype, seq), ts_ns=seq * 10, ts_source=seq % 4, clock_state=seq % 3)
    with Reader(d) as r:
        assert len(r.segments()) > 1
        yield r


def test_scan_columns_match_iteration(mixed):
    records = list(mixed)
    cols = mixed.scan()
    assert len(cols) == len(records) == 2000
    assert list(cols.seq) == [r.seq for r in records]
    assert list(cols.rtype) == [r.rtype for r in records]
    assert list(cols.ts_ns) == [r.ts_ns for r in records]
    assert list(cols.ts_source) == [r.ts_source for r in records]
    assert list(cols.clock_state) == [r.clock_state for r in records]
    assert list(cols.length) == [len(r.payload) for r in records]
    part = mixed.scan(first_seq=333, last_seq=1500, fields=("seq", "pos"))
    assert list(part.seq) == list(range(333, 1501)) and part.rtype is None
    assert len(mixed.scan(first_seq=5000)) == 0


def test_gather_payloads_of_chosen_rows(mixed):
    cols = mixed.scan()
    md = cols.rtype == RecordType.MD_PACKET
    prefix = mixed.gather(cols.pos[md], np.dtype((np.void, 10)))   # every MD payload is >= 10 bytes
    assert [bytes(p) for p in prefix] == [payload(RecordType.MD_PACKET, int(s))[:10] for s in cols.seq[md]]
    with pytest.raises(PayloadSizeError):
        mixed.gather(cols.pos[md], np.dtype((np.void, 100)))


def test_read_fixed_of_several_types_over_one_range(mixed):
    for first, last in ((None, None), (101, 1799), (1999, 2000)):
        expected_all = [r for r in mixed.records(first, last)]
        for rtype in (RecordType.TX_TS, RecordType.CLOCK_SAMPLE, RecordType.TIMER):
            table = mixed.read_fixed(rtype, first_seq=first, last_seq=last)
            expected = [r for r in expected_all if r.rtype == rtype]
            assert list(table["seq"]) == [r.seq for r in expected]
            assert list(table["ts_ns"]) == [r.ts_ns for r in expected]
            assert list(table["clock_state"]) == [r.clock_state for r in expected]
            row = table.dtype.itemsize
            raw = table.tobytes()
            assert [raw[k * row + 20:(k + 1) * row] for k in range(len(table))] == [r.payload for r in expected]


def test_read_fixed_refuses_a_record_of_another_size(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        j.append(RecordType.TIMER, bytes(PAYLOAD_DTYPES[RecordType.TIMER].itemsize))
        lib.mmj_writer_set_type_size(j._w, RecordType.TIMER, 0)   # as a C writer without the catalogue
        j.append(RecordType.TIMER, b"short")
    with Reader(d) as r:
        with pytest.raises(PayloadSizeError):
            r.read_fixed(RecordType.TIMER)
        assert len(r.read_fixed(RecordType.TIMER, last_seq=1)) == 1


def test_refresh_drops_the_kept_scan(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        j.append(RecordType.TX_TS, payload(RecordType.TX_TS, 1))
        with Reader(d) as r:
            assert len(r.read_fixed(RecordType.TX_TS)) == 1
            j.append(RecordType.TX_TS, payload(RecordType.TX_TS, 2))
            r.refresh()
            assert list(r.read_fixed(RecordType.TX_TS)["seq"]) == [1, 2]


def test_read_fixed_many_fills_every_type_in_one_pass(mixed):
    wanted = [RecordType.TX_TS, RecordType.CLOCK_SAMPLE, RecordType.TIMER, RecordType.VENUE_MSG]
    for first, last in ((None, None), (250, 1250)):
        many = mixed.read_fixed_many(wanted, first, last)
        assert set(many) == {int(t) for t in wanted} and len(many[RecordType.VENUE_MSG]) == 0
        for rtype in wanted:
            one = mixed.read_fixed(rtype, first, last)
            assert many[rtype].dtype == one.dtype and many[rtype].tobytes() == one.tobytes()
