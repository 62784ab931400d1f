"""Round trips through the real C core: append (single and batch) -> reopen -> read, get, filters,
bulk numpy reads, checkpoints, and the checksum/hash primitives against independent references."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from journal import (ClockState, Journal, PayloadSizeError, Reader, RecordNotFound, RecordType, TsSource,
                     info, row_dtype, verify)
from journal._journal_cffi import ffi, lib
from journal.catalogue import HEADER_DTYPE, PAYLOAD_DTYPES, pack, unpack
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for, segment_files, write_journal


def test_append_reopen_read(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT, checkpoint_every=8) as j:
        assert j.recovery.created and j.recovery.clean
        seqs = [j.append(RecordType.MD_PACKET, payload_for(i + 1, 100), ts_ns=-5 + i,
                         ts_source=TsSource.HW_PHC, clock_state=ClockState.LOCKED) for i in range(1500)]
        journal_id = j.journal_id
    assert seqs == list(range(1, 1501))
    assert len(segment_files(d)) > 2          # 1500 * 136 bytes needs several 64 KiB segments
    with Reader(d) as r:
        assert (r.first_seq, r.last_seq, len(r)) == (1, 1500, 1500)
        assert r.journal_id == journal_id and len(journal_id) == 32
        records = list(r)
        assert [rec.seq for rec in records] == seqs
        for i, rec in enumerate(records):
            assert rec == (i + 1, RecordType.MD_PACKET, -5 + i, TsSource.HW_PHC, ClockState.LOCKED,
                           payload_for(i + 1, 100))
        assert r.stopped is None
    with Journal(d) as j:
        assert not j.recovery.created and j.recovery.clean and j.recovery.previous_clean
        assert j.next_seq == 1501
        assert j.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=3, now_ns=9)) == 1501
    with Reader(d) as r:
        assert r.last_seq == 1501
        assert unpack(RecordType.TIMER, r.get(1501).payload)["timer_id"] == 3


def test_get_every_sequence_and_missing(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 700)
    with Reader(d) as r:
        for seq in range(1, 701):
            assert r.get(seq).payload == payload_for(seq, 40 + seq % 90)
        for missing in (0, 701, 10**12):
            with pytest.raises(RecordNotFound):
                r.get(missing)


def test_records_range_and_type_filter(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        for i in range(300):
            j.append(RecordType.MD_PACKET if i % 3 else RecordType.METRICS, b"%d" % i)
    with Reader(d) as r:
        got = [rec.seq for rec in r.records(first_seq=50, last_seq=120, rtypes=[RecordType.METRICS])]
        assert got == [s for s in range(50, 121) if (s - 1) % 3 == 0]
        assert [rec.seq for rec in r.records(first_seq=299)] == [299, 300]
        assert list(r.records(first_seq=301)) == []


def test_control_records_visible_only_on_request(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 100, checkpoint_every=10, segment_size=1 << 20)
    with Reader(d) as r:
        everything = list(r.records(include_control=True))
    kinds = [rec.rtype for rec in everything]
    assert kinds.count(RecordType.CHECKPOINT) == 10          # after records 10, 20, ... 100
    assert kinds[-1] == RecordType.SEAL and kinds.count(RecordType.SEAL) == 1
    data = [rec for rec in everything if rec.rtype == RecordType.MD_PACKET]
    assert [rec.seq for rec in data] == list(range(1, 101))
    # a checkpoint carries the sequence of the next data record and the running hash
    first_checkpoint = everything[kinds.index(RecordType.CHECKPOINT)]
    assert first_checkpoint.seq == 11 and len(first_checkpoint.payload) == 40


@pytest.mark.parametrize("size", [0, 1, 61, 64, 250, 1000])
def test_fixed_size_batch_runs_across_segments(tmp_path, size):
    """A batch of one payload size (a numpy array of raw rows) is written in runs per segment,
    checksummed several records at a time: every record, its padding and its CRC read back and
    verify, whatever the size (padding or none, short or long CRC paths) and the segment rolls."""
    d = tmp_path / "j"
    count = 3000
    raw = os.urandom(count * size)
    rows = np.frombuffer(raw, dtype=np.dtype((np.void, size))) if size else np.zeros(count, dtype="V0")
    stamps = np.arange(count, dtype=np.int64) * 3 - 7
    with Journal(d, segment_size=SMALL_SEGMENT, checkpoint_every=500) as j:
        assert j.append(RecordType.MD_PACKET, b"x") == 1
        assert j.append_batch(RecordType.MD_PACKET, rows, ts_ns=stamps, ts_source=TsSource.USER,
                              clock_state=ClockState.LOCKED) == 2
        assert j.append_batch(RecordType.MD_PACKET, rows[:5], ts_ns=9) == 2 + count
    assert len(segment_files(d)) > (2 if size >= 61 else 1)
    with Reader(d) as r:
        got = list(r.records(2, 1 + count + 5))
    assert [g.seq for g in got] == list(range(2, 2 + count + 5))
    assert [g.payload for g in got[:count]] == [raw[k * size:(k + 1) * size] for k in range(count)]
    assert [g.ts_ns for g in got] == list(stamps) + [9] * 5
    assert {(g.ts_source, g.clock_state) for g in got[:count]} == {(TsSource.USER, ClockState.LOCKED)}
    report = verify(d)
    assert report.ok and report.records == 1 + count + 5


def test_batch_numpy_and_bytes(tmp_path):
    d = tmp_path / "j"
    dtype = PAYLOAD_DTYPES[RecordType.TX_TS]
    rows = np.zeros(5000, dtype=dtype)
    rows["order_seq"] = np.arange(5000)
    rows["tx_ts_ns"] = np.arange(5000) * 7
    stamps = np.arange(5000, dtype=np.int64) + 10**18
    with Journal(d, segment_size=SMALL_SEGMENT, checkpoint_every=100) as j:
        assert j.append(RecordType.MD_PACKET, b"first") == 1
        assert j.append_batch(RecordType.TX_TS, rows, ts_ns=stamps, ts_source=TsSource.SW_KERNEL) == 2
        blobs = [os.urandom(n) for n in (0, 1, 7, 8, 9, 1000, 3)]
        assert j.append_batch(RecordType.MD_PACKET, blobs, ts_ns=42) == 5002
        assert j.next_seq == 5009
    with Reader(d) as r:
        table = r.read_fixed(RecordType.TX_TS)
        assert table.dtype == row_dtype(RecordType.TX_TS)
        assert len(table) == 5000
        assert (table["seq"] == np.arange(2, 5002)).all()
        assert (table["ts_ns"] == stamps).all()
        assert (table["ts_source"] == TsSource.SW_KERNEL).all()
        assert (table["order_seq"] == rows["order_seq"]).all() and (table["tx_ts_ns"] == rows["tx_ts_ns"]).all()
        part = r.read_fixed(RecordType.TX_TS, first_seq=100, last_seq=199)
        assert list(part["seq"]) == list(range(100, 200))
        headers, blob, offsets = r.read_blobs(RecordType.MD_PACKET)
        assert headers.dtype == HEADER_DTYPE and list(headers["seq"]) == [1] + list(range(5002, 5009))
        payloads = [blob[offsets[k]:offsets[k + 1]] for k in range(len(headers))]
        assert payloads == [b"first"] + blobs
        assert (headers["ts_ns"][1:] == 42).all()


def test_read_fixed_of_variable_type_and_wrong_sizes(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        with pytest.raises(PayloadSizeError):
            j.append(RecordType.TIMER, b"short")
        with pytest.raises(PayloadSizeError):
            j.append_batch(RecordType.TIMER, np.zeros(3, dtype=PAYLOAD_DTYPES[RecordType.TX_TS]))
        j.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=1))
    with Reader(d) as r:
        with pytest.raises(ValueError):
            r.read_fixed(RecordType.MD_PACKET)
        assert len(r.read_fixed(RecordType.TIMER)) == 1
        assert len(r.read_fixed(RecordType.TX_TS)) == 0


def test_payload_containers(tmp_path):
    d = tmp_path / "j"
    rec = np.zeros((), dtype=PAYLOAD_DTYPES[RecordType.TIMER])
    rec["timer_id"] = 77
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        j.append(RecordType.MD_PACKET, bytearray(b"abc"))
        j.append(RecordType.MD_PACKET, memoryview(b"xyz123")[2:])
        j.append(RecordType.TIMER, rec.tobytes())
        j.append(RecordType.MD_PACKET, b"")
    with Reader(d) as r:
        assert [x.payload for x in r] == [b"abc", b"z123", rec.tobytes(), b""]


def test_reader_refresh_sees_new_records(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        j.append(RecordType.MD_PACKET, b"a")
        with Reader(d) as r:
            assert r.last_seq == 1
            for i in range(2000):
                j.append(RecordType.MD_PACKET, payload_for(i, 64))
            assert r.last_seq == 1
            r.refresh()
            assert r.last_seq == 2001 and len(r.segments()) > 1
            assert r.get(2001).payload == payload_for(1999, 64)


def test_info_and_verify_of_a_clean_journal(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 400)
    report = verify(d)
    assert report.ok and report.first_bad is None
    assert report.records == 400 and report.last_seq == 400 and report.last_sealed
    assert report.segments == len(segment_files(d)) and report.checkpoints >= 400 // 16
    summary = info(d)
    assert summary["first_seq"] == 1 and summary["last_seq"] == 400 and summary["records"] == 400
    assert summary["closed_cleanly"] and not summary["writer_live"]
    assert summary["segments"] == len(segment_files(d))


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 63, 64, 65, 191, 192, 193, 383, 384, 385, 577, 1000, 4097])
def test_crc32c_hardware_and_software_agree(size):
    data = os.urandom(size + 16)
    base = ffi.cast("char *", ffi.from_buffer(data))
    for offset in range(16):   # every start address modulo 8 (and 4) exercises the unaligned edges
        chunk, n = base + offset, size
        assert lib.mmj_crc32c_sw(0, chunk, n) == lib.mmj_crc32c_hw(0, chunk, n)
        assert lib.mmj_crc32c(5, chunk, n) == lib.mmj_crc32c_sw(5, chunk, n)


def test_crc32c_known_answers():
    # RFC 3720 B.4 test vectors and the standard check value
    assert lib.mmj_crc32c_sw(0, b"123456789", 9) == 0xE3069283
    assert lib.mmj_crc32c_sw(0, bytes(32), 32) == 0x8A9136AA
    assert lib.mmj_crc32c_sw(0, b"\xff" * 32, 32) == 0x62A8AB43
    assert lib.mmj_crc32c_sw(0, bytes(range(32)), 32) == 0x46DD794E
    # continuing a CRC equals computing it in one go
    whole = lib.mmj_crc32c_sw(0, b"hello world", 11)
    assert lib.mmj_crc32c_sw(lib.mmj_crc32c_sw(0, b"hello ", 6), b"world", 5) == whole


def test_crc32c_hardware_path_is_really_used_when_available():
    with open("/proc/cpuinfo") as f:
        has_sse42 = " sse4_2" in f.read()
    assert bool(lib.mmj_crc32c_hw_available()) == has_sse42


@pytest.mark.parametrize("size", [0, 1, 111, 127, 128, 129, 255, 256, 257, 1000, 100_000])
def test_blake2b_matches_hashlib(size):
    data = os.urandom(size)
    out = ffi.new("uint8_t[32]")
    lib.mmj_blake2b_256(data, size, out)
    assert bytes(out) == hashlib.blake2b(data, digest_size=32).digest()
    # incremental updates in odd pieces give the same digest
    ctx = ffi.new("mmj_blake2b_ctx *")
    lib.mmj_blake2b_init(ctx)
    for start in range(0, size, 77):
        piece = data[start:start + 77]
        lib.mmj_blake2b_update(ctx, piece, len(piece))
    lib.mmj_blake2b_final(ctx, out)
    assert bytes(out) == hashlib.blake2b(data, digest_size=32).digest()


def test_threads_share_one_writer(tmp_path):
    # the C calls drop the GIL, so this really runs appends concurrently; the writer's mutex keeps
    # every record whole and every sequence unique
    import threading
    d = tmp_path / "j"
    got: dict[int, list[int]] = {}
    with Journal(d, segment_size=SMALL_SEGMENT, checkpoint_every=50) as j:
        def work(k):
            got[k] = [j.append(RecordType.MD_PACKET, payload_for(1000 * k + i, 300)) for i in range(1500)]
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    seqs = sorted(s for lst in got.values() for s in lst)
    assert seqs == list(range(1, 6001))
    with Reader(d) as r:
        for k, lst in got.items():
            for i, seq in enumerate(lst[::50]):
                assert r.get(seq).payload == payload_for(1000 * k + i * 50, 300)
    assert verify(d).ok
