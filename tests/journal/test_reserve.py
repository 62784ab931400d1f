"""The reserve segment: on a full disk (a real 1 MiB tmpfs) ordinary appends fail with DiskFull
and the writer is low on space, risk-reducing appends (reserve=True) still go into the reserve
segment, everything stays readable and verifiable, and retry_space returns to normal once space
is freed."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from journal import DiskFull, Journal, Reader, RecordType, info, verify
from journal.catalogue import PAYLOAD_DTYPES
from tests.journal.jhelpers import payload_for, segment_files

SEG = 128 * 1024
RESERVE = "reserve.mmj"


def fill_disk(mnt, leave: int = 0) -> "os.PathLike":
    """Write a filler file until the mount has at most `leave` bytes free; returns its path."""
    path = mnt / "filler"
    chunk = b"\xa5" * 4096
    with open(path, "wb") as f:
        while os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize > leave:
            try:
                f.write(chunk)
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return path


def append_until_full(j: Journal, reserve: bool, size: int = 500) -> list[int]:
    seqs = []
    with pytest.raises(DiskFull):
        for _ in range(100_000):
            seq = j.next_seq
            seqs.append(j.append(RecordType.MD_PACKET, payload_for(seq, size), ts_ns=seq, reserve=reserve))
    return seqs


def assert_all_readable(path, last: int) -> None:
    with Reader(path) as r:
        assert r.first_seq == 1 and r.last_seq == last and r.stopped is None
        for seq in (1, last // 2, last):
            assert r.get(seq).payload == payload_for(seq, len(r.get(seq).payload))
        assert [rec.seq for rec in r] == list(range(1, last + 1))
    report = verify(path)
    assert report.ok, report


def test_reserve_appends_on_a_full_disk_then_retry_space(small_tmpfs):
    d = small_tmpfs / "j"
    j = Journal(d, segment_size=SEG, checkpoint_every=32)
    assert (d / RESERVE).stat().st_size == SEG and not j.space_low
    filler = fill_disk(small_tmpfs)
    ordinary = append_until_full(j, reserve=False)
    assert j.space_low
    with pytest.raises(DiskFull) as again:            # refused at once, nothing written
        j.append(RecordType.MD_PACKET, b"x")
    assert again.value.errno == errno.ENOSPC
    last_ordinary = j.next_seq - 1
    assert last_ordinary == len(ordinary)
    assert not j.retry_space()                        # still full: False, still low
    assert j.space_low
    # risk-reducing records take the reserve segment, which becomes seg-1
    reserved = append_until_full(j, reserve=True)
    assert len(reserved) > 200                       # a whole 128 KiB segment of 500-byte records
    assert not (d / RESERVE).exists() and len(segment_files(d)) == 2
    assert info(d)["reserve_bytes"] == 0
    with pytest.raises(DiskFull):                     # ordinary appends stay refused throughout
        j.append(RecordType.MD_PACKET, b"x")
    assert_all_readable(d, j.next_seq - 1)
    # space comes back: a fresh reserve and a new ordinary segment, normal appends again
    os.unlink(filler)
    assert j.retry_space()
    assert not j.space_low and (d / RESERVE).stat().st_size == SEG == info(d)["reserve_bytes"]
    seq = j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 500))
    assert seq == len(ordinary) + len(reserved) + 1
    assert j.segment == 2
    j.close()
    assert_all_readable(d, seq)


def test_reserve_survives_reopen_and_is_used_by_recovery_on_a_full_disk(small_tmpfs):
    d = small_tmpfs / "j"
    j = Journal(d, segment_size=SEG)
    for _ in range(10):
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 100))
    j.close()
    filler = fill_disk(small_tmpfs)
    # the next writer needs a new segment: the disk has none, so it takes the reserve
    j = Journal(d, segment_size=SEG)
    assert j.space_low
    with pytest.raises(DiskFull):
        j.append(RecordType.MD_PACKET, b"x")
    kill = bytes(PAYLOAD_DTYPES[RecordType.KILL].itemsize)
    assert j.append(RecordType.KILL, kill, reserve=True) == 11
    j.close()
    assert verify(d).ok
    os.unlink(filler)
    with Journal(d, segment_size=SEG) as j:          # space is back: a new reserve at open
        assert not j.space_low and (d / RESERVE).exists()
        assert j.append(RecordType.MD_PACKET, b"y") == 12
    assert verify(d).ok


def test_no_room_for_a_reserve_at_open_starts_low(small_tmpfs):
    filler = fill_disk(small_tmpfs, leave=SEG + 64 * 1024)
    d = small_tmpfs / "j"
    j = Journal(d, segment_size=SEG)
    assert j.space_low and not (d / RESERVE).exists()
    with pytest.raises(DiskFull):
        j.append(RecordType.MD_PACKET, b"x")
    assert j.append(RecordType.MD_PACKET, b"cancel", reserve=True) == 1   # room in the live segment
    assert not j.retry_space()
    os.unlink(filler)
    assert j.retry_space() and not j.space_low and (d / RESERVE).exists()
    assert j.segment == 0                            # no roll needed: the live segment had room
    assert j.append(RecordType.MD_PACKET, b"y") == 2
    j.close()
    assert verify(d).ok


def test_batch_with_reserve(small_tmpfs):
    d = small_tmpfs / "j"
    j = Journal(d, segment_size=SEG)
    fill_disk(small_tmpfs)
    append_until_full(j, reserve=False)
    first = j.next_seq
    with pytest.raises(DiskFull) as refused:
        j.append_batch(RecordType.MD_PACKET, [b"a"] * 10)
    assert refused.value.written == 0 and j.next_seq == first
    assert j.append_batch(RecordType.MD_PACKET, [b"cancel-%d" % i for i in range(10)], reserve=True) == first
    rows = np.zeros(5, dtype=PAYLOAD_DTYPES[RecordType.TIMER])
    assert j.append_batch(RecordType.TIMER, rows, reserve=True) == first + 10
    j.close()
    with Reader(d) as r:
        assert r.get(first + 3).payload == b"cancel-3"
    assert verify(d).ok


def test_retry_space_is_a_no_op_when_space_is_fine(tmp_path):
    with Journal(tmp_path / "j", segment_size=SEG) as j:
        assert not j.space_low and j.retry_space() and j.segment == 0
        assert (tmp_path / "j" / RESERVE).stat().st_size == SEG
