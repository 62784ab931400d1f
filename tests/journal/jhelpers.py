"""Helpers for the journal tests: small journals, payload generators, raw file access.

Owns nothing beyond test conveniences; uses only the public journal API and journal.h's layout.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import struct
import subprocess
import time

import pytest

from journal import Journal, RecordType
from journal._journal_cffi import lib

SMALL_SEGMENT = 64 * 1024
HEADER = lib.MMJ_HEADER_SIZE
REC_HEADER = lib.MMJ_RECORD_HEADER_SIZE


def payload_for(seq: int, size: int) -> bytes:
    """A payload whose bytes depend on its sequence, so a misplaced record cannot pass."""
    pattern = struct.pack("<Q", seq * 0x9E3779B97F4A7C15 % (1 << 64))
    return (pattern * (size // 8 + 1))[:size]


def write_journal(path, count: int, *, size_of=lambda i: 40 + i % 90, segment_size=SMALL_SEGMENT,
                  checkpoint_every=16, close=True, rtype=RecordType.MD_PACKET) -> Journal:
    """A journal with `count` MD_PACKET records (seq i has payload_for(i, size_of(i)))."""
    j = Journal(path, segment_size=segment_size, checkpoint_every=checkpoint_every)
    for i in range(count):
        seq = j.next_seq
        got = j.append(rtype, payload_for(seq, size_of(seq)), ts_ns=seq * 1000, ts_source=2, clock_state=1)
        assert got == seq
    if close:
        j.close()
    return j


def segment_files(path) -> list[pathlib.Path]:
    return sorted(pathlib.Path(path).glob("seg-*.mmj"))


def record_offsets(segment: pathlib.Path) -> list[tuple[int, int, int]]:
    """(offset, size, word) of every published record of a segment file, read raw."""
    data = segment.read_bytes()
    out, off = [], HEADER
    while off + REC_HEADER <= len(data):
        (word,) = struct.unpack_from("<I", data, off)
        if word == 0:
            break
        size = (REC_HEADER + (word & lib.MMJ_LENGTH_MASK) + 7) & ~7
        out.append((off, size, word))
        off += size
    return out


def rewrite_u32(path: pathlib.Path, offset: int, value: int, crc_span: int) -> None:
    """Overwrite the u32 at offset and refresh the CRC-32C of bytes 0..crc_span-1 stored right
    after them (journal.meta: 60, segment header: 124), so only the field's meaning changes."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, offset, value)
    struct.pack_into("<I", data, crc_span, lib.mmj_crc32c(0, bytes(data[:crc_span]), crc_span))
    path.write_bytes(bytes(data))


def flip_byte(path: pathlib.Path, offset: int, xor: int = 0xFF) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ xor]))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_for(predicate, seconds: float = 30.0) -> bool:
    """Poll predicate until it holds (True) or seconds pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return False


def run(*cmd) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True)


@contextlib.contextmanager
def ext4_on_loop(image: pathlib.Path, mnt: pathlib.Path, size: int):
    """A real ext4 (no fs journal) on a loop device over `image` (made `size` bytes, sparse),
    mounted at mnt; skips the test where loop devices or mounting are not available (root)."""
    missing = [tool for tool in ("mount", "umount", "losetup", "mkfs.ext4") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (util-linux, e2fsprogs)")
    with open(image, "wb") as f:
        f.truncate(size)
    made = run("losetup", "-f", "--show", str(image))
    if made.returncode != 0:
        pytest.skip(f"no loop device available: {made.stderr.strip()}")
    loop = made.stdout.strip()
    try:
        mkfs = run("mkfs.ext4", "-q", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-O",
                   "^has_journal", loop)
        assert mkfs.returncode == 0, mkfs.stderr
        mounted = run("mount", loop, str(mnt))
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount ext4 on a loop device: {mounted.stderr.strip()}")
        try:
            yield mnt
        finally:
            run("umount", "-l", str(mnt))
    finally:
        run("losetup", "-d", loop)


def build_preload(directory: pathlib.Path, source: str) -> pathlib.Path:
    """Compile `source` into an LD_PRELOAD library (fault or delay injection around one libc call
    of the journal's C core, run in a subprocess); skips without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler on this machine (the Makefile's `debs` target installs gcc)")
    (directory / "preload.c").write_text(source)
    out = directory / "preload.so"
    built = run(cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(directory / "preload.c"), "-ldl")
    assert built.returncode == 0, built.stderr
    return out
