"""A sealed segment opened from its summary and found damaged when first read: the check cuts the
snapshot, and the read that triggered it (get, seek, scan, the reports' chunked scans) answers
from the cut extent, exactly as a reader that scanned everything at open answers. A C reader
built with AddressSanitizer makes each kind of first read and must not touch memory it does not
own."""
from __future__ import annotations

import shutil
import struct
import subprocess
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from journal import Journal, Reader, RecordNotFound
from tests.journal.jhelpers import REC_HEADER, compile_c_program, flip_byte, record_offsets, segment_files

COUNT = 10_000
FIRST_READ = pathlib.Path(__file__).resolve().parent / "c" / "first_read.c"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """10,000 records in one sealed segment with a believed summary."""
    d = tmp_path_factory.mktemp("cut") / "j"
    with Journal(d, segment_size=1 << 20, durability="group") as j:
        for i in range(COUNT):
            j.append(20, struct.pack("<Q", i + 1), i, 0, 0)
    assert len(segment_files(d)) == 1 and (d / "seg-0000000000000000.sum").exists()
    return d


def damaged(base, dest: pathlib.Path, seq: int) -> pathlib.Path:
    """A copy of base with one payload byte of data record `seq` flipped (bit rot, tampering)."""
    shutil.copytree(base, dest)
    seg0 = segment_files(dest)[0]
    data = seg0.read_bytes()
    for off, _size, word in record_offsets(seg0):
        if not word & 0x60000000 and struct.unpack_from("<Q", data, off + 8)[0] == seq:
            flip_byte(seg0, off + REC_HEADER)
            return dest
    raise AssertionError(f"no record {seq}")


def outcome(fn):
    try:
        return fn()
    except RecordNotFound:
        return "not found"


def first_read(reader: Reader, op: str, a: int, b: int):
    if op == "get":
        return outcome(lambda: reader.get(a).seq)
    if op == "scan":
        return [int(s) for s in reader.scan(a, b, fields=("seq",)).seq]
    if op == "records":
        return [rec.seq for rec in reader.records(a, b)]
    if op == "blobs":
        return [int(s) for s in reader.read_blobs(None, a, b)[0]["seq"]]
    raise AssertionError(op)


def assert_same_as_full_scan(d, op: str, a: int, b: int) -> None:
    with Reader(d, full_scan=True) as full, Reader(d) as lazy:
        assert lazy.unchecked_segments == 1 and lazy.last_seq == COUNT    # the summary's extent
        assert first_read(lazy, op, a, b) == first_read(full, op, a, b)
        if lazy.unchecked_segments:      # the read stayed outside the segment: nothing checked it yet
            assert a > COUNT
            list(lazy.records())
        assert (lazy.first_seq, lazy.last_seq, lazy.stopped) == (full.first_seq, full.last_seq, full.stopped)


@pytest.mark.parametrize("op,a,b", [("get", 9000, 9000), ("get", 100, 100), ("get", 99, 99),
                                    ("get", 1, 1), ("scan", 9000, 9100), ("scan", 50, 9100),
                                    ("records", 9000, 9100), ("records", 95, 200), ("blobs", 9000, 9100)])
def test_first_read_past_the_damage_answers_as_a_full_scan(base, tmp_path, op, a, b):
    d = damaged(base, tmp_path / "j", 100)
    assert_same_as_full_scan(d, op, a, b)
    with Reader(d) as r:
        first_read(r, op, a, b)
        assert r.last_seq == 99 and r.stopped["reason"] == "bad crc" and r.stopped["seq"] == 100
        with pytest.raises(RecordNotFound):
            r.get(9000)


def test_chunked_scan_as_reports_run_it_stops_at_the_damage(base, tmp_path):
    """reports.events scans a range in chunks, each chunk a seek then a walk."""
    d = damaged(base, tmp_path / "j", 4321)
    with Reader(d) as r:
        first, last = r.first_seq, r.last_seq         # the summary's extent, before any read
        seqs = []
        for a in range(first, last + 1, 1000):
            seqs.extend(int(s) for s in r.scan(a, min(a + 999, last), fields=("seq",)).seq)
        assert seqs == list(range(1, 4321))
        assert r.stopped["seq"] == 4321 and r.last_seq == 4320
        assert len(r.scan(5000, 6000, fields=("seq", "pos"))) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.integers(1, COUNT), op=st.sampled_from(["get", "scan", "records", "blobs"]),
       a=st.integers(1, COUNT + 5), span=st.integers(0, 300))
def test_fuzz_first_read_after_damage(base, tmp_path_factory, bad, op, a, span):
    d = damaged(base, tmp_path_factory.mktemp("fz") / "j", bad)
    assert_same_as_full_scan(d, op, a, a + span)


@pytest.fixture(scope="module")
def asan_reader(tmp_path_factory):
    out = tmp_path_factory.mktemp("asan") / "first_read"
    done = compile_c_program(FIRST_READ, out, ["-std=gnu11", "-O1", "-g", "-fsanitize=address,undefined",
                                               "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"])
    if done.returncode != 0 and "sanitize" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip(f"this compiler has no AddressSanitizer: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    probe = subprocess.run([str(out), "/nonexistent", "get", "1"], capture_output=True, text=True, timeout=60)
    if "AddressSanitizer" in probe.stderr and "ERROR" not in probe.stderr:
        pytest.skip(f"AddressSanitizer cannot run here: {probe.stderr.strip()[:200]}")
    return out


@pytest.mark.parametrize("args,expect", [
    (["get", "9000"], "status=no record with that sequence rows=0 seqs=0..0"),
    (["get", "100"], "status=no record with that sequence rows=0 seqs=0..0"),
    (["get", "99"], "status=ok rows=1 seqs=99..99"),
    (["scan", "9000", "9100"], "status=ok rows=0 seqs=0..0"),
    (["scan", "50", "9100"], "status=ok rows=50 seqs=50..99"),
    (["next", "9000"], "rows=0 seqs=0..0"),
    (["next", "90"], "rows=10 seqs=90..99"),
])
def test_first_reads_under_address_sanitizer(base, tmp_path, asan_reader, args, expect):
    d = damaged(base, tmp_path / "j", 100)
    done = subprocess.run([str(asan_reader), str(d), *args], capture_output=True, text=True, timeout=120,
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "Sanitizer" not in done.stderr, done.stderr[-3000:]
    assert expect in done.stdout and "range=1..99 stop=bad crc" in done.stdout, done.stdout
