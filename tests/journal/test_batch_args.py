"""append_batch takes what it documents (a 1-D array of structured or void rows, or a list of
bytes-like payloads; integer timestamps) and refuses anything else with InvalidArgument before a
record is written: a 2-D array is not a batch of its first axis with 1-byte payloads."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from journal import InvalidArgument, Journal, Reader, RecordType
from journal.catalogue import PAYLOAD_DTYPES

MD = RecordType.MD_PACKET


@pytest.mark.parametrize("payloads", [
    np.arange(30, dtype=np.uint8).reshape(3, 10),         # three 10-byte payloads meant, three 1-byte written
    np.zeros((3, 2), dtype="V4"),
    np.zeros((0, 10), dtype=np.uint8),
    np.arange(6, dtype=np.uint8),                          # numbers, not rows
    np.array([b"a", b"bcd"]),                              # "S3": b"a" would become b"a\0\0"
    np.array(["ab", "cd"]),
    np.zeros(2, dtype=[("a", object)]),                    # pointers, not bytes
    b"abc",                                                # one payload, not a list of three
    bytearray(b"abc"),
    "abc",
    [b"ok", 7],                                            # bytes(7) would be seven zeros
    [b"ok", "text"],
    [b"ok", None],
], ids=repr)
def test_refused_before_anything_is_written(tmp_path, payloads):
    with Journal(tmp_path / "j") as j:
        j.append(MD, b"before")
        with pytest.raises(InvalidArgument):
            j.append_batch(MD, payloads)
        assert j.next_seq == 2
    with Reader(tmp_path / "j") as r:
        assert [rec.payload for rec in r] == [b"before"]


@pytest.mark.parametrize("kwargs", [
    {"ts_ns": np.zeros((2, 1), dtype=np.int64)},
    {"ts_ns": np.array([1.5, 2.5])},
    {"ts_ns": 1.5},
    {"ts_ns": np.array([2 ** 63, 1], dtype=np.uint64)},
    {"ts_ns": [1]},
    {"ts_source": -1},
    {"clock_state": 256},
    {"rtype": "20"},
])
def test_refused_arguments(tmp_path, kwargs):
    args = {"rtype": MD, **kwargs}
    rtype = args.pop("rtype")
    with Journal(tmp_path / "j") as j:
        with pytest.raises(InvalidArgument):
            j.append_batch(rtype, [b"a", b"b"], **args)
        assert j.next_seq == 1


def test_accepted_forms_round_trip(tmp_path):
    timer = PAYLOAD_DTYPES[RecordType.TIMER]
    rows = np.zeros(3, dtype=timer)
    rows["timer_id"] = [1, 2, 3]
    raw = np.frombuffer(b"abcdef", dtype=np.dtype((np.void, 2)))
    with Journal(tmp_path / "j") as j:
        assert j.append_batch(RecordType.TIMER, rows, ts_ns=np.array([5, 6, 7], dtype=np.uint32)) == 1
        assert j.append_batch(MD, raw[::-1], ts_ns=9) == 4                  # strided: copied in order
        assert j.append_batch(MD, [b"x", bytearray(b"yz"), memoryview(b"uvw"), np.uint16(258)]) == 7
    with Reader(tmp_path / "j") as r:
        got = list(r)
    assert [g.payload for g in got[:3]] == [row.tobytes() for row in rows]
    assert [g.ts_ns for g in got[:4]] == [5, 6, 7, 9]
    assert [g.payload for g in got[3:]] == [b"ef", b"cd", b"ab", b"x", b"yz", b"uvw", b"\x02\x01"]


_DTYPES = st.sampled_from([np.uint8, np.int32, np.float64, "S3", "V4", "V1", [("a", "<u4"), ("b", "u1")]])


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3), dtype=_DTYPES, seed=st.integers(0, 2 ** 32))
def test_fuzz_arrays_either_journal_one_record_per_row_or_nothing(tmp_path_factory, shape, dtype, seed):
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    arr = np.frombuffer(np.random.default_rng(seed).bytes(nbytes), dtype=dtype).reshape(shape)
    d = tmp_path_factory.mktemp("fz") / "j"
    with Journal(d) as j:
        ok = arr.ndim == 1 and arr.dtype.kind == "V"
        if ok:
            assert j.append_batch(MD, arr) == 1
        else:
            with pytest.raises(InvalidArgument):
                j.append_batch(MD, arr)
        assert j.next_seq == 1 + (len(arr) if ok else 0)
    with Reader(d) as r:
        assert [g.payload for g in r] == ([row.tobytes() for row in arr] if ok else [])
