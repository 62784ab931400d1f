"""Format versions 1 and 2 side by side: a version-1 journal stays readable and verifiable, a
current writer continues it in version-2 segments (also after a crash of a version-1 writer),
and a segment's header version decides which chain hash verify recomputes."""
from __future__ import annotations

import random
import struct
import subprocess
import sys
import time

import pytest

from journal import InvalidArgument, Journal, Reader, RecordType, info, verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import payload_for, rewrite_u32, segment_files, write_journal


def versions(d) -> list[int]:
    return [struct.unpack_from("<I", p.read_bytes(), 8)[0] for p in segment_files(d)]


def meta_version(d) -> int:
    return struct.unpack_from("<I", (d / "journal.meta").read_bytes(), 8)[0]


def read_all(d) -> list[tuple[int, bytes]]:
    with Reader(d) as r:
        return [(rec.seq, bytes(rec.payload)) for rec in r]


def append_some(j: Journal, count: int) -> None:
    for _ in range(count):
        seq = j.next_seq
        assert j.append(RecordType.MD_PACKET, payload_for(seq, 40 + seq % 300), ts_ns=seq) == seq


def test_version_1_journal_continued_by_a_current_writer(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=64 * 1024, checkpoint_every=9, format_version=1) as j:
        append_some(j, 900)
    v1_segments = len(segment_files(d))
    assert v1_segments >= 3 and set(versions(d)) == {1}
    assert verify(d).ok
    with Journal(d, segment_size=64 * 1024, checkpoint_every=9) as j:
        append_some(j, 900)
    assert versions(d)[:v1_segments] == [1] * v1_segments
    assert set(versions(d)[v1_segments:]) == {2} and len(versions(d)) > v1_segments + 2
    assert meta_version(d) == 1   # the version the journal was created with
    assert info(d)["segment_versions"] == versions(d) and info(d)["format_version"] == 2
    report = verify(d)
    assert report.ok and report.records == 1800, report
    assert read_all(d) == [(s, payload_for(s, 40 + s % 300)) for s in range(1, 1801)]


_CRASHING_V1_WRITER = """
import os, signal, sys
from journal import Journal, RecordType
from tests.journal.jhelpers import payload_for
j = Journal(sys.argv[1], segment_size=64 * 1024, checkpoint_every=9, format_version=1)
for _ in range(500):
    seq = j.next_seq
    j.append(RecordType.MD_PACKET, payload_for(seq, 40 + seq % 300), ts_ns=seq)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_crashed_version_1_segment_is_sealed_with_its_own_hash(tmp_path):
    d = tmp_path / "j"
    proc = subprocess.run([sys.executable, "-c", _CRASHING_V1_WRITER, str(d)], timeout=60)
    assert proc.returncode == -9
    crashed = len(segment_files(d))
    assert set(versions(d)) == {1}
    with Journal(d, segment_size=64 * 1024, checkpoint_every=9) as j:
        assert j.recovery.sealed_segment == crashed - 1   # recovery sealed the version-1 segment
        append_some(j, 300)
    assert versions(d)[:crashed] == [1] * crashed and set(versions(d)[crashed:]) == {2}
    report = verify(d)
    assert report.ok and report.records == 800, report
    assert [s for s, _ in read_all(d)] == list(range(1, 801))


@pytest.mark.parametrize("version", [1, 2])
def test_header_version_decides_the_chain_hash(tmp_path, version):
    """A segment relabelled to the other version (checksum fixed up) fails at its first link."""
    d = tmp_path / "j"
    write_journal(d, 400)
    if version == 1:
        d2 = tmp_path / "j1"
        with Journal(d2, segment_size=64 * 1024, checkpoint_every=16, format_version=1) as j:
            append_some(j, 400)
        d = d2
    assert verify(d).ok
    first = segment_files(d)[0]
    rewrite_u32(first, 8, 3 - version, 124)
    report = verify(d)
    assert not report.ok and report.first_bad.reason_code == lib.MMJ_R_CHAIN and report.first_bad.segment == 0, report


def test_unknown_format_version_is_refused(tmp_path):
    for bad in (3, -1, 99):
        with pytest.raises(InvalidArgument):
            Journal(tmp_path / "j", format_version=bad)
    assert not (tmp_path / "j").exists() or not segment_files(tmp_path / "j")


@pytest.mark.parametrize("level", [2, 1, 0], ids=["avx512-if-present", "avx2-if-present", "portable"])
def test_long_links_hashed_piecewise_by_the_helper_verify(tmp_path, level):
    """Links of megabytes, hashed by the helper thread in pieces that end at arbitrary record
    boundaries (never at stripe boundaries on purpose), must equal verify's one-shot hash."""
    rng = random.Random(level)
    d = tmp_path / "j"
    try:
        lib.mmj_chain_simd(level)
        with Journal(d, segment_size=8 << 20, checkpoint_every=20_000) as j:
            for burst in range(60):
                for _ in range(rng.randrange(200, 2000)):
                    seq = j.next_seq
                    j.append(RecordType.MD_PACKET, payload_for(seq, rng.randrange(1, 700)), ts_ns=seq)
                time.sleep(0.002)   # let the helper take a piece
        report = verify(d)
    finally:
        lib.mmj_chain_simd(-1)
    assert report.ok and report.checkpoints >= 3, report
