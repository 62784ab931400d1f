"""Durable, sequenced outbound log of one SoupBinTCP session (what a reconnecting client replays),
also the store of one MoldUDP64 session's ITCH messages (what a re-request is answered from).

Owns the on-disk format and sequence numbering. A record is the exact SoupBinTCP 'S' frame
(length u16 BE, b"S", OUCH payload) followed by a CRC-32 (zlib, u32 BE) of that frame; message
sequence n is the n-th record. Appends are buffered until flush() (one write() per batch, done
before anything is sent, so the log is always ahead of the wire: survives a process crash);
sync() fsyncs (the caller runs it on a time budget, possibly on another thread); a failed
write is latched; once seal()ed (its last message written) no append is taken. Opening an
existing file drops a torn or corrupt tail and reports how many bytes went. Must not know about
sockets, OUCH fields or clocks.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from array import array
from pathlib import Path

from mm_core.venue.errors import SessionLogError, SessionSealedError

log = logging.getLogger("mm_core.venue")

_CRC = struct.Struct(">I")
_READ_CHUNK = 1 << 16


class SessionLog:
    """Append-only log; sequence numbers start at 1."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        flags = os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT | os.O_APPEND
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise SessionLogError(f"cannot open session log {self.path}: {exc.strerror}") from exc
        self._ends = array("Q", [0])      # _ends[n] = file offset just past record n
        self.discarded_bytes = self._scan()
        self._pending = bytearray()
        self._pending_ends: list[int] = []
        self.synced_sequence = self.durable_sequence   # what the last fsync covered
        self.failed = ""          # why a write failed: latched, no later write is tried
        self.sealed = False       # the last message is appended: seal()

    # ------------------------------------------------------------------ writing
    @property
    def next_sequence(self) -> int:
        """Sequence number the next appended message will get."""
        return len(self._ends) + len(self._pending_ends)

    @property
    def durable_sequence(self) -> int:
        """Highest sequence written to the file (readable by replays)."""
        return len(self._ends) - 1

    def append(self, payload: bytes) -> int:
        """Queue one outbound message; returns its sequence number."""
        if self.readonly:
            raise SessionLogError(f"session log {self.path} is open read-only")
        if self.sealed:
            raise SessionSealedError(f"session log {self.path} is sealed after message "
                                     f"{self.next_sequence - 1}: nothing may follow it")
        frame = (len(payload) + 1).to_bytes(2, "big") + b"S" + payload
        self._pending += frame
        self._pending += _CRC.pack(zlib.crc32(frame))
        end = (self._pending_ends[-1] if self._pending_ends else self._ends[-1]) + len(frame) + 4
        self._pending_ends.append(end)
        return self.next_sequence - 1

    def seal(self) -> None:
        """The log's last message is appended (End of Day): every later append is refused."""
        self.sealed = True

    def flush(self) -> None:
        """Write every queued message to the file (one write; page cache, not yet fsynced).
        A failed write is latched: the file is cut back to the end of the last whole flush
        and every later flush fails, so no message is ever written twice or half."""
        if not self._pending:
            return
        if self.failed:
            raise SessionLogError(f"session log {self.path} failed earlier: {self.failed}")
        written = 0
        try:
            while written < len(self._pending):
                written += os.write(self._fd, self._pending[written:] if written else self._pending)
        except OSError as exc:
            self.failed = exc.strerror or str(exc)
            try:
                os.ftruncate(self._fd, self._ends[-1])
            except OSError:
                pass                  # the torn tail is cut when the log is opened again
            raise SessionLogError(f"cannot write session log {self.path}: {self.failed}") from exc
        self._ends.extend(self._pending_ends)
        self._pending = bytearray()
        self._pending_ends = []

    def sync(self) -> None:
        """fsync what flush() wrote, if anything. May run on another thread than flush()."""
        target = self.durable_sequence
        if target > self.synced_sequence:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise SessionLogError(f"cannot fsync session log {self.path}: {exc.strerror}") from exc
            self.synced_sequence = target

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Write and fsync what is queued (unless a write failed) and close; the file is
        closed even when that fails (the error is raised after)."""
        if self._fd < 0:
            return
        try:
            if not self.failed:
                self.flush()
                self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1

    # ------------------------------------------------------------------ reading
    def read_frames(self, first: int, max_bytes: int = _READ_CHUNK) -> tuple[bytes, int]:
        """SoupBinTCP 'S' frames of the durable messages from `first` on, about `max_bytes`
        of them (at least one when any exists); returns (frames, next sequence to read)."""
        last = self.durable_sequence
        if first > last:
            return b"", first
        start = self._ends[first - 1]
        stop_seq = first
        while stop_seq <= last and (stop_seq == first or self._ends[stop_seq] - start <= max_bytes):
            stop_seq += 1
        raw = os.pread(self._fd, self._ends[stop_seq - 1] - start, start)
        out = bytearray()
        offset = 0
        for seq in range(first, stop_seq):
            end = self._ends[seq] - start
            out += raw[offset:end - 4]
            offset = end
        return bytes(out), stop_seq

    def messages(self, first: int = 1, count: int | None = None) -> list[bytes]:
        """The payloads of the durable messages from `first` on, at most `count` of them."""
        out: list[bytes] = []
        seq = max(first, 1)
        while count is None or len(out) < count:
            frames, seq = self.read_frames(seq)
            if not frames:
                break
            offset = 0
            while offset < len(frames):
                length = int.from_bytes(frames[offset:offset + 2], "big")
                out.append(frames[offset + 3:offset + 2 + length])
                offset += 2 + length
        return out if count is None else out[:count]

    # ------------------------------------------------------------------ recovery
    def _scan(self) -> int:
        """Index the records already in the file; cut a torn/corrupt tail. Returns bytes cut."""
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size, 0) if size else b""
        offset = 0
        while offset + 3 <= size:
            length = int.from_bytes(data[offset:offset + 2], "big")
            end = offset + 2 + length + 4
            if length < 1 or end > size or data[offset + 2] != ord("S"):
                break
            (crc,) = _CRC.unpack_from(data, end - 4)
            if crc != zlib.crc32(data[offset:end - 4]):
                break
            self._ends.append(end)
            offset = end
        if offset < size and not self.readonly:   # a reader never cuts a writer's tail
            os.ftruncate(self._fd, offset)
            os.fsync(self._fd)
        return size - offset


def read_session_log(path: str | Path, first: int = 1) -> list[bytes]:
    """Every OUCH payload in a session log file from sequence `first` on, in sequence order
    (safe while the venue runs)."""
    log = SessionLog(path, readonly=True)
    try:
        return log.messages(first)
    finally:
        log.close()


def record_line(path: str | Path, line: str, what: str, exclusive: bool = False) -> int:
    """Append one ASCII line to a small record file (created if missing; `exclusive`: it must
    not exist yet) and fsync it; SessionLogError naming `what` when that fails. A torn last
    line (a crash during an earlier append) is cut back to the last newline first, so the new
    line never merges with it: returns how many bytes were cut."""
    flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if exclusive else os.O_APPEND)
    try:
        fd = os.open(path, flags, 0o644)
        try:
            cut = _cut_torn_line(fd)
            if cut:
                log.warning("%s: a torn last line of %d bytes was cut", path, cut)
            os.write(fd, f"{line}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SessionLogError(f"cannot record {what} in {path}: {exc.strerror or exc}") from exc
    return cut


def _cut_torn_line(fd: int) -> int:
    """Truncate a record file after its last newline; returns the bytes cut."""
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep = os.pread(fd, size, 0).rfind(b"\n") + 1
    os.ftruncate(fd, keep)
    return size - keep
