"""Property tests: random record sizes, types, timestamps, batch boundaries, checkpoint intervals
and segment rolls; what is read back (iteration, get, read_fixed, read_blobs, tailer) is exactly
what was appended, and verify() passes; reopening continues the sequence."""
from __future__ import annotations

import shutil
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journal import Journal, Reader, RecordType, Tailer, verify
from journal.catalogue import PAYLOAD_DTYPES

VARIABLE = [RecordType.MD_PACKET, RecordType.RECON, RecordType.METRICS]
TIMER_SIZE = PAYLOAD_DTYPES[RecordType.TIMER].itemsize

single = st.tuples(st.just("one"), st.sampled_from(VARIABLE), st.binary(max_size=3000),
                   st.integers(-(2**63), 2**63 - 1), st.integers(0, 255), st.integers(0, 255))
batch_bytes = st.tuples(st.just("blobs"), st.sampled_from(VARIABLE),
                        st.lists(st.binary(max_size=500), min_size=0, max_size=40), st.integers(0, 2**40))
batch_fixed = st.tuples(st.just("fixed"), st.just(RecordType.TIMER),
                        st.lists(st.binary(min_size=TIMER_SIZE, max_size=TIMER_SIZE), min_size=1, max_size=60),
                        st.lists(st.integers(-(2**62), 2**62), min_size=60, max_size=60))
operations = st.lists(st.one_of(single, batch_bytes, batch_fixed), min_size=1, max_size=40)


def apply(j, op, expected):
    kind = op[0]
    if kind == "one":
        _, rtype, payload, ts, src, state = op
        seq = j.append(rtype, payload, ts_ns=ts, ts_source=src, clock_state=state)
        expected.append((seq, rtype, ts, src, state, payload))
    elif kind == "blobs":
        _, rtype, payloads, ts = op
        first = j.append_batch(rtype, payloads, ts_ns=ts, ts_source=2, clock_state=1)
        expected.extend((first + k, rtype, ts, 2, 1, p) for k, p in enumerate(payloads))
    else:
        _, rtype, payloads, stamps = op
        rows = np.frombuffer(b"".join(payloads), dtype=PAYLOAD_DTYPES[rtype])
        stamps = np.array(stamps[:len(payloads)], dtype=np.int64)
        first = j.append_batch(rtype, rows, ts_ns=stamps, ts_source=1, clock_state=2)
        expected.extend((first + k, rtype, int(stamps[k]), 1, 2, p) for k, p in enumerate(payloads))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, reopen_at=st.integers(0, 40), checkpoint_every=st.integers(1, 50),
       segment_kib=st.sampled_from([64, 68, 128]))
def test_whatever_is_appended_is_read_back(ops, reopen_at, checkpoint_every, segment_kib):
    root = tempfile.mkdtemp(prefix="mmj-prop-")
    try:
        d = f"{root}/j"
        expected = []
        j = Journal(d, segment_size=segment_kib * 1024, checkpoint_every=checkpoint_every)
        for i, op in enumerate(ops):
            if i == reopen_at:
                j.close()
                j = Journal(d, segment_size=segment_kib * 1024, checkpoint_every=checkpoint_every)
                assert j.recovery.clean
            apply(j, op, expected)
        assert j.next_seq == len(expected) + 1
        j.close()
        assert [e[0] for e in expected] == list(range(1, len(expected) + 1))
        with Reader(d) as r:
            got = [tuple(rec) for rec in r]
            assert got == expected
            for e in expected[:: max(1, len(expected) // 25)]:
                assert tuple(r.get(e[0])) == e
            timers = [e for e in expected if e[1] == RecordType.TIMER]
            table = r.read_fixed(RecordType.TIMER)
            assert list(table["seq"]) == [e[0] for e in timers]
            assert list(table["ts_ns"]) == [e[2] for e in timers]
            raw, width = table.tobytes(), table.dtype.itemsize
            assert [raw[k * width + 20:(k + 1) * width] for k in range(len(timers))] == [e[5] for e in timers]
            for rtype in VARIABLE:
                headers, blob, offsets = r.read_blobs(rtype)
                mine = [e for e in expected if e[1] == rtype]
                assert list(headers["seq"]) == [e[0] for e in mine]
                assert [blob[offsets[k]:offsets[k + 1]] for k in range(len(mine))] == [e[5] for e in mine]
            headers, blob, offsets = r.read_blobs(None)        # every type, in sequence order
            assert [(int(h["seq"]), int(h["rtype"]), int(h["ts_ns"]), int(h["ts_source"]),
                     int(h["clock_state"]), blob[offsets[k]:offsets[k + 1]])
                    for k, h in enumerate(headers)] == expected
        report = verify(d)
        assert report.ok and report.records == len(expected) and report.unanchored == 0
        if expected:
            with Tailer(d, from_seq=expected[len(expected) // 2][0]) as t:
                tail = [tuple(t.next(1)) for _ in range(len(expected) - len(expected) // 2)]
                assert tail == expected[len(expected) // 2:]
                assert t.next(0) is None
    finally:
        shutil.rmtree(root, ignore_errors=True)
