"""Recovery never continues writing into hole-punched space: a clean close gives back the blocks
past a sealed segment's EOS, and if that EOS page is then lost (power loss in pagecache mode) the
segment is reopened for writing; it is allocated whole again first, so that no store into it can
meet a hole (a SIGBUS on a full disk)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from journal import Journal, Reader, RecordType, verify
from tests.journal.jhelpers import ext4_on_loop, payload_for, record_offsets, segment_files
from tests.journal.test_tailer_wake import ROOT

SEGMENT = 1 << 20


@pytest.fixture
def small_ext4(tmp_path):
    """A real 24 MiB ext4 on a loop device: hole punching, and a disk that fills up."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with ext4_on_loop(tmp_path / "disk.img", mnt, 24 << 20):
        yield mnt


def fill(path) -> None:
    """Take every free block of path's filesystem."""
    with open(path, "wb") as f:
        chunk = bytes(64 << 10)
        try:
            while True:
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass
        try:
            while True:
                f.write(bytes(4096))
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def sealed_then_eos_lost(d):
    """A journal of 10 records closed cleanly (segment 0 sealed, its tail given back), whose SEAL
    and EOS records then never reached the disk, left by a writer that looks crashed: segment 0."""
    with Journal(d, segment_size=SEGMENT) as j:
        for _ in range(10):
            j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 40))
    seg = segment_files(d)[0]
    closed_allocation = allocated(seg)
    records = record_offsets(seg)
    seal_off = records[-2][0]
    with open(seg, "r+b") as f:
        f.seek(seal_off)
        f.write(bytes(sum(size for _, size, _ in records[-2:])))
    (d / "LOCK").write_text("pid 999999 open\n")
    return seg, closed_allocation


def test_a_reopened_sealed_segment_is_allocated_again_before_writing(tmp_path):
    d = tmp_path / "j"
    seg, closed_allocation = sealed_then_eos_lost(d)
    if closed_allocation >= SEGMENT:
        pytest.skip("this filesystem does not punch holes (the close kept every block)")
    j = Journal(d, segment_size=SEGMENT)
    assert j.recovery.continued_segment == 0 and j.recovery.reason == "none"
    assert allocated(seg) >= SEGMENT                 # no hole left where the appends go
    for _ in range(5000):                            # through the rest of segment 0 and a roll
        j.append(RecordType.MD_PACKET, payload_for(j.next_seq, 200))
    assert j.segment >= 1
    last = j.next_seq - 1
    j.close()
    assert verify(d).ok
    with Reader(d) as r:
        assert r.last_seq == last
        assert r.get(5).payload == payload_for(5, 40) and r.get(last).payload == payload_for(last, 200)


APPEND_ON_FULL_DISK = textwrap.dedent("""
    import sys
    from journal import DiskFull, Journal, RecordType
    j = Journal(sys.argv[1], segment_size=1 << 20)
    print("low", j.space_low, flush=True)
    n = 0
    try:
        for _ in range(10000):             # the rest of segment 0, into blocks it owns, until its roll
            j.append(RecordType.MD_PACKET, b"r" * 200, reserve=True)
            n += 1
    except DiskFull:                        # no space left for segment 1 (the reserve is spent)
        print("appended", n, flush=True)
    j.close()
""")


def test_on_a_full_disk_recovery_takes_the_reserve_instead_of_writing_into_holes(small_ext4):
    d = small_ext4 / "j"
    seg, closed_allocation = sealed_then_eos_lost(d)
    assert closed_allocation < SEGMENT // 2          # the clean close gave back the tail
    fill(small_ext4 / "filler")
    done = subprocess.run([sys.executable, "-c", APPEND_ON_FULL_DISK, str(d)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != -signal.SIGBUS, "a store into a punched hole on a full disk"
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0] == "low True"                    # the reserve's blocks went to segment 0
    assert lines[1].startswith("appended ")          # DiskFull at the roll, cleanly
    assert int(lines[1].split()[1]) > 4000           # after filling segment 0
    assert allocated(seg) >= SEGMENT
    os.unlink(small_ext4 / "filler")
    assert verify(d).ok
    with Reader(d) as r:
        assert r.get(5).payload == payload_for(5, 40)
