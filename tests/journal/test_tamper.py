"""Tamper evidence: any single changed byte of a sealed segment is caught by verify(), which names
the record (segment, offset, sequence); edits that keep the CRCs valid are caught by the hash
chain; missing segments and records are named too."""
from __future__ import annotations

import random
import struct

import pytest

from journal import verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import HEADER, flip_byte, record_offsets, segment_files, write_journal


def expected_sequences(segment_path, first_seq):
    """(offset, size, seq-expected-there) of every record, computed from the raw file."""
    out, seq = [], first_seq
    for off, size, word in record_offsets(segment_path):
        out.append((off, size, seq))
        if not word & (lib.MMJ_FLAG_CONTROL | lib.MMJ_FLAG_EOS):
            seq += 1
    return out


@pytest.fixture(scope="module")
def sealed_journal(tmp_path_factory):
    d = tmp_path_factory.mktemp("tamper") / "j"
    write_journal(d, 1500, checkpoint_every=16)
    files = segment_files(d)
    assert len(files) >= 3
    return d, files


def test_every_sampled_byte_of_a_sealed_segment_is_named(sealed_journal):
    d, files = sealed_journal
    seg = files[1]                          # a sealed segment in the middle
    data = seg.read_bytes()
    first_seq = struct.unpack_from("<Q", data, 40)[0]
    layout = expected_sequences(seg, first_seq)
    end_of_records = layout[-1][0] + layout[-1][1]
    rng = random.Random(7)
    positions = set(range(0, HEADER)) | set(range(layout[3][0], layout[3][0] + layout[3][1]))
    positions |= {rng.randrange(HEADER, end_of_records) for _ in range(400)}
    positions |= {rng.randrange(end_of_records, len(data)) for _ in range(50)} | {len(data) - 1}
    for pos in sorted(positions):
        flip_byte(seg, pos)
        try:
            report = verify(d)
        finally:
            flip_byte(seg, pos)
        assert not report.ok, f"byte {pos} changed but verify passed"
        bad = report.first_bad
        assert bad.segment == 1, pos
        if pos < HEADER:
            assert (bad.offset, bad.reason_code) == (0, lib.MMJ_R_BAD_HEADER), pos
        elif pos >= end_of_records:
            assert (bad.offset, bad.reason_code) == (pos, lib.MMJ_R_TRAILING), pos
        else:
            off, size, seq = next(r for r in layout if r[0] <= pos < r[0] + r[1])
            assert (bad.offset, bad.seq) == (off, seq), (pos, bad)
    assert verify(d).ok                     # every byte was restored


def rewrite_with_valid_crc(seg, off, size, edit):
    """Change a record's bytes and recompute its CRC as a forger would."""
    data = bytearray(seg.read_bytes())
    edit(data)
    word = data[off:off + 4]
    salt_check = struct.unpack_from("<I", data, off + 28)[0]
    crc = lib.mmj_crc32c(salt_check, bytes(word), 4)
    crc = lib.mmj_crc32c(crc, bytes(data[off + 8:off + size]), size - 8)
    struct.pack_into("<I", data, off + 4, crc)
    seg.write_bytes(bytes(data))


def test_forged_record_with_valid_crc_breaks_the_chain(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 1500, checkpoint_every=16)
    seg = segment_files(d)[1]
    first_seq = struct.unpack_from("<Q", seg.read_bytes(), 40)[0]
    layout = expected_sequences(seg, first_seq)
    off, size, seq = layout[20]

    def edit(data):
        data[off + 40] ^= 0x01

    rewrite_with_valid_crc(seg, off, size, edit)
    report = verify(d)
    assert not report.ok and report.first_bad.reason_code == lib.MMJ_R_CHAIN
    bad = report.first_bad
    assert bad.segment == 1 and bad.chain_from_seq <= seq < bad.seq
    assert "hash link covering" in str(bad)


def test_forged_timestamp_breaks_the_chain(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 300, checkpoint_every=10)
    seg = segment_files(d)[0]
    off, size, seq = expected_sequences(seg, 1)[5]

    def edit(data):
        struct.pack_into("<q", data, off + 16, 123)

    rewrite_with_valid_crc(seg, off, size, edit)
    report = verify(d)
    assert report.first_bad.reason_code == lib.MMJ_R_CHAIN and report.first_bad.chain_from_seq <= seq


def test_missing_middle_segment_is_named(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 1500)
    files = segment_files(d)
    files[1].unlink()
    report = verify(d)
    assert not report.ok
    assert (report.first_bad.reason_code, report.first_bad.segment) == (lib.MMJ_R_MISSING_SEGMENT, 1)


def test_removed_record_is_a_sequence_gap(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 200, checkpoint_every=1000)
    seg = segment_files(d)[0]
    layout = expected_sequences(seg, 1)
    off, size, seq = layout[10]
    data = seg.read_bytes()
    # cut record 11 out and shift the rest down: every later record is intact but one is missing
    spliced = data[:off] + data[off + size:] + bytes(size)
    seg.write_bytes(spliced)
    report = verify(d)
    assert not report.ok
    assert (report.first_bad.reason_code, report.first_bad.offset, report.first_bad.seq) == \
        (lib.MMJ_R_SEQ_GAP, off, seq)


def test_swapped_segments_are_detected(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 1500)
    a, b = segment_files(d)[1:3]
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    report = verify(d)
    assert not report.ok and report.first_bad.segment == 1
    assert report.first_bad.reason_code == lib.MMJ_R_BAD_HEADER
