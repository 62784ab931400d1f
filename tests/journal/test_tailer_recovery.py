"""A live tailer across a writer's recovery that rewrites bytes it had already stepped over: a
crash between a segment's SEAL and its EOS marker (at close or during a roll) leaves a SEAL that
recovery drops, writing the next records from the SEAL's offset. A tailer that had read past the
SEAL must notice and carry on with the next sequence: no error for ever, no silent stall, no
record skipped or handed out twice."""
from __future__ import annotations

import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from journal import Journal, Reader, Tailer, verify
from tests.journal.jhelpers import SMALL_SEGMENT, HEADER, payload_for, record_offsets, segment_files

MD = 20


def crash_between_seal_and_eos(d: pathlib.Path, during_roll: bool) -> None:
    """Make the journal look as if its writer died after writing the SEAL of the last segment
    with records but before its EOS marker: at a close, or during a roll (then the successor
    exists, blank)."""
    files = segment_files(d)
    victim = files[-2] if during_roll else files[-1]
    if during_roll:                           # the successor: created, nothing in it yet
        data = bytearray(files[-1].read_bytes())
        data[HEADER:] = bytes(len(data) - HEADER)
        files[-1].write_bytes(bytes(data))
    eos_off, eos_size, word = record_offsets(victim)[-1]
    assert word & 0x40000000                  # the EOS marker
    data = bytearray(victim.read_bytes())
    data[eos_off:eos_off + eos_size] = bytes(eos_size)
    victim.write_bytes(bytes(data))
    for summary in d.glob("seg-*.sum"):
        summary.unlink()
    (d / "LOCK").write_text("pid 999999 open\n")


def journal_with_records(d: pathlib.Path, count: int, size: int, during_roll: bool) -> int:
    """`count` records (more when a roll is wanted: until the second segment has some); returns
    the last sequence before the crash's lost successor."""
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        for _ in range(count):
            j.append(MD, payload_for(j.next_seq, size))
        while during_roll and j.segment == 0:
            j.append(MD, payload_for(j.next_seq, size))
        if during_roll:
            j.append(MD, payload_for(j.next_seq, size))
    with Reader(d) as r:
        segs = r.segments()
    return segs[-2]["first_seq"] + segs[-2]["records"] - 1 if during_roll else segs[-1]["first_seq"] + \
        segs[-1]["records"] - 1


def run_case(d: pathlib.Path, count: int, size: int, after: int, fill: int, during_roll: bool,
             named: bool = False) -> None:
    last = journal_with_records(d, count, size, during_roll)
    crash_between_seal_and_eos(d, during_roll)
    tailer = Tailer(d, name="t" if named else None)
    got = []
    while (rec := tailer.next(0.05)) is not None:
        got.append(rec.seq)
    assert got == list(range(1, last + 1))    # it stepped past the SEAL and waits at the lost EOS
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.next_seq == last + 1
        for k in range(after):
            assert j.append(MD, bytes([fill]) * (size + k % 3)) == last + 1 + k
        for k in range(after):
            rec = tailer.next(2.0)
            assert rec is not None and rec.seq == last + 1 + k and rec.payload == bytes([fill]) * (size + k % 3)
        assert tailer.next(0.01) is None and tailer.position == last + after + 1
    tailer.close()
    assert verify(d).ok


@pytest.mark.parametrize("during_roll", [False, True])
@pytest.mark.parametrize("size,fill", [(40, 0xAA), (40, 0), (8, 0xAA), (48, 0), (1000, 0x55)])
def test_tailer_carries_on_after_recovery_drops_a_seal(tmp_path, during_roll, size, fill):
    run_case(tmp_path / "j", 10, size, 5, fill, during_roll)


def test_reviewer_case_tailer_returns_seq_11(tmp_path):
    d = tmp_path / "j"
    run_case(d, 10, 40, 1, 0xAA, False, named=True)
    with Reader(d) as r:
        assert r.last_seq == 11


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 300), size=st.integers(0, 300), after=st.integers(1, 400),
       fill=st.sampled_from([0, 0xAA, 0x80]), during_roll=st.booleans())
def test_fuzz_tailer_across_dropped_seal(tmp_path_factory, count, size, after, fill, during_roll):
    run_case(tmp_path_factory.mktemp("tr") / "j", count, size, after, fill, during_roll)
