"""The on-disk format is what journal.h's top comment says: a journal is decoded here with
struct, hashlib's BLAKE2b (and numpy for version 2's lane layout) and a bitwise CRC-32C written
from the definition, independent of the C code, and every field, checksum, salt check and hash
link must match the spec, in both format versions."""
from __future__ import annotations

import hashlib
import os
import struct

import numpy as np
import pytest

from journal import Journal, RecordType
from journal._journal_cffi import ffi, lib
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for, segment_files


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C straight from the definition: reflected polynomial 0x82F63B78, init/xorout ~0."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def blake(data: bytes, person: bytes = b"") -> bytes:
    return hashlib.blake2b(data, digest_size=32, person=person).digest()


def chain_hash(version: int, x: bytes) -> bytes:
    """H(x) of journal.h's HASH CHAIN for a segment of `version`."""
    if version == 1:
        return blake(x)
    k = len(x) // 1024
    stripes = np.frombuffer(x[:k * 1024], dtype="<u8").reshape(k, 16, 8)   # [stripe, row j, lane l]
    lanes = b"".join(blake(stripes[:, :, lane].tobytes(), b"mmj-chain-lane" + bytes([lane])) for lane in range(8))
    return blake(lanes + x[k * 1024:] + struct.pack("<Q", len(x)), b"mmj-chain-root")


@pytest.mark.parametrize("simd", [2, 1, 0], ids=["avx512-if-present", "avx2-if-present", "portable"])
@pytest.mark.parametrize("size", [0, 1, 991, 992, 993, 1024, 2015, 2016, 2017, 4064, 10_000, 100_003])
def test_chain_hash_of_both_versions_matches_the_spec(size, simd):
    anchor, data = os.urandom(32), os.urandom(size)
    out = ffi.new("uint8_t[32]")
    try:
        lib.mmj_chain_simd(simd)
        for version in (1, 2):
            lib.mmj_chain_hash(version, anchor, data, len(data), out)
            assert bytes(out) == chain_hash(version, anchor + data)
    finally:
        lib.mmj_chain_simd(-1)


@pytest.mark.parametrize("version", [1, 2])
def test_a_journal_decodes_by_the_spec_alone(tmp_path, version):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT, checkpoint_every=7, format_version=version) as j:
        for i in range(700):
            j.append(RecordType.MD_PACKET, payload_for(i + 1, i % 50), ts_ns=-i, ts_source=1, clock_state=3)
    assert crc32c(b"123456789") == 0xE3069283

    meta = (d / "journal.meta").read_bytes()
    assert len(meta) == 64 and meta[:8] == b"MMJMETA\n" and struct.unpack_from("<I", meta, 8)[0] == version
    assert struct.unpack_from("<I", meta, 60)[0] == crc32c(meta[:60])
    salt = meta[16:32]
    lock = (d / "LOCK").read_text()
    assert lock.endswith("\n") and lock.split()[0] == "pid" and lock.split()[2] == "closed"

    prev_seal = blake(b"mmj-genesis-v1" + salt)
    seq = 1
    files = segment_files(d)
    assert [f.name for f in files] == [f"seg-{i:016d}.mmj" for i in range(len(files))]
    for index, path in enumerate(files):
        seg = path.read_bytes()
        assert len(seg) == SMALL_SEGMENT
        magic, hsize = seg[:8], struct.unpack_from("<I", seg, 12)[0]
        assert (magic, struct.unpack_from("<I", seg, 8)[0], hsize) == (b"MMJSEG1\n", version, 128)
        assert seg[16:32] == salt
        assert struct.unpack_from("<QQQ", seg, 32) == (index, seq, SMALL_SEGMENT)
        assert seg[56:88] == prev_seal and seg[88:124] == bytes(36)
        assert struct.unpack_from("<I", seg, 124)[0] == crc32c(seg[:124])
        salt_check = crc32c(salt + struct.pack("<Q", index))
        anchor_off, anchor_hash, data_in_segment = 0, prev_seal, 0
        off, sealed = 128, False
        while True:
            word, crc, rseq, ts, rtype, src, state, k = struct.unpack_from("<IIQqHBBI", seg, off)
            length = word & 0x0FFFFFFF
            size = (32 + length + 7) & ~7
            assert word >> 31 == 1 and not word & (1 << 28)
            assert k == salt_check and rseq == seq
            assert crc == crc32c(seg[off + 8:off + size], crc32c(struct.pack("<I", word), salt_check))
            assert seg[off + 32 + length:off + size] == bytes(size - 32 - length)    # zero padding
            if word & (1 << 30):                                                   # EOS
                assert length == 0 and rtype == 0 and sealed
                assert seg[off + size:] == bytes(len(seg) - off - size)
                break
            if word & (1 << 29):                                                   # CHECKPOINT / SEAL
                assert rtype in (RecordType.CHECKPOINT, RecordType.SEAL) and length == 40
                link = chain_hash(version, anchor_hash + seg[anchor_off:off])
                payload = seg[off + 32:off + 72]
                assert payload[:32] == link and struct.unpack("<Q", payload[32:])[0] == data_in_segment
                anchor_off, anchor_hash = off, link
                sealed = rtype == RecordType.SEAL
            else:
                assert not sealed and rtype == RecordType.MD_PACKET and (ts, src, state) == (-(seq - 1), 1, 3)
                assert seg[off + 32:off + 32 + length] == payload_for(seq, (seq - 1) % 50)
                seq += 1
                data_in_segment += 1
            off += size
        prev_seal = anchor_hash
    assert seq == 701
    # a clean close names the journal's end in LOCK: last segment, next sequence, its seal hash
    assert lock.split()[3:] == [str(len(files) - 1), str(seq), prev_seal.hex()]
