"""Durability modes against real storage: sync and group modes msync, and a failed msync/fsync
(a real I/O error from an ext4 on a loop device whose backing tmpfs is full) is fatal and latched:
every later append and close report it; nothing is retried or reported as success."""
from __future__ import annotations

import errno
import os

import pytest

from journal import DurabilityFailed, Journal, Reader, RecordType, verify
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for


@pytest.mark.parametrize("mode", ["pagecache", "group", "sync"])
def test_modes_round_trip(tmp_path, mode):
    d = tmp_path / mode
    with Journal(d, segment_size=SMALL_SEGMENT, durability=mode, group_records=5, group_us=100) as j:
        for i in range(300):
            j.append(RecordType.MD_PACKET, payload_for(i + 1, 200))
        j.sync()
        j.append_batch(RecordType.MD_PACKET, [b"a", b"b", b"c"])
    with Reader(d) as r:
        assert r.last_seq == 303 and r.get(300).payload == payload_for(300, 200)
    assert verify(d).ok


@pytest.mark.parametrize("mode,group_records,group_us", [
    ("sync", 1, 1),
    ("group", 8, 1_000_000_000),        # the record budget triggers the msync
    ("group", 1_000_000_000, 1),        # the time budget triggers the msync
])
def test_failed_msync_is_fatal_and_latched(failing_disk, mode, group_records, group_us):
    j = Journal(failing_disk / "j", segment_size=4 << 20, durability=mode, group_records=group_records,
                group_us=group_us)
    appended = 0
    with pytest.raises(DurabilityFailed) as first:
        for i in range(20_000):          # 60 MB of records: far more than the backing store holds
            j.append(RecordType.MD_PACKET, payload_for(i + 1, 3000))
            appended += 1
    assert first.value.errno in (errno.ENOSPC, errno.EIO)
    assert 1000 < appended < 4500        # it failed near the ~12 MiB the device can store
    for attempt in (lambda: j.append(RecordType.MD_PACKET, b"again"),
                    lambda: j.append_batch(RecordType.MD_PACKET, [b"x", b"y"]), j.sync, j.checkpoint):
        with pytest.raises(DurabilityFailed):
            attempt()
    with pytest.raises(DurabilityFailed):
        j.close()                        # close reports the failure too, and releases the lock
    assert j.closed
    os.sync()


@pytest.mark.parametrize("mode", ["group", "sync"])
def test_close_msyncs_only_what_is_not_durable_yet(tmp_path, mode):
    """Closing a group/sync writer msyncs the SEAL and EOS it writes, once: not again the whole
    segment from its header (pages already msynced cost a walk of the segment's mapping)."""
    j = Journal(tmp_path / mode, segment_size=SMALL_SEGMENT, durability=mode, group_records=1, group_us=1)
    for i in range(50):
        j.append(RecordType.MD_PACKET, payload_for(i + 1, 200))
    j.sync()
    synced = []
    j.on_sync(lambda seg, start, stop: synced.append((seg, start, stop)))
    j.close()
    assert len(synced) == 1, synced
    seg, start, stop = synced[0]
    assert start > 0, synced          # from the page of the last durable byte, not the header
    with Reader(tmp_path / mode) as r:
        assert r.last_seq == 50
    assert verify(tmp_path / mode).ok
