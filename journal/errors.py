"""The journal's exception tree and the one place C status codes become Python exceptions.

Owns the mapping from mmj_status (journal.h) to exception classes. Must not know about
records, files or anything above the journal.
"""
from __future__ import annotations

import errno
import os

from journal._journal_cffi import ffi, lib


class JournalError(Exception):
    """Base of every journal error. `status` is the C mmj_status, `errno` the OS error if any;
    `written`: from append_batch, how many of the batch's records were published before it
    stopped (they are in the journal and will be replayed; 0 for anything else)."""

    written = 0

    def __init__(self, message: str, *, status: int = 0, errno: int = 0):
        super().__init__(message)
        self.status = status
        self.errno = errno


class InvalidArgument(JournalError, ValueError):
    """A bad argument: reserved record type, bad option, wrong payload container."""


class JournalIOError(JournalError, OSError):
    """A system call failed."""


class NotAJournal(JournalError):
    """The directory does not hold a journal (no or bad journal.meta)."""


class JournalVersionError(JournalError):
    """The journal was written by a newer format version than this library reads."""


class JournalLocked(JournalError):
    """Another live process is the journal's writer."""


class JournalCorrupt(JournalError):
    """An invalid record or header where a valid one must be."""


class RecordTooLarge(JournalError, ValueError):
    """The record cannot fit in an empty segment."""


class JournalClosed(JournalError):
    """The journal, reader or tailer was closed."""


class DiskFull(JournalError):
    """No space to preallocate a segment."""


class DurabilityFailed(JournalError):
    """An msync/fsync failed: the writer is latched failed and refuses every later append."""


class RecordNotFound(JournalError, KeyError):
    """No record with that sequence."""


class PayloadSizeError(JournalError, ValueError):
    """A payload's size does not match its record type's fixed layout."""


class JournalExists(JournalError):
    """A journal exists where a new one was required."""


class SegmentsMissing(JournalCorrupt):
    """Segments were removed from the end of the journal: LOCK names a segment, sequence or seal
    the directory no longer holds. The writer refuses to open (nothing is changed) until they are
    restored, or an operator who accepts the loss removes LOCK. A tailer raises it too when it
    reaches a missing segment (one in front of later segments, or past the end LOCK names): it hands
    out nothing past the gap."""


class TailerPositionLost(JournalError):
    """A recovery cut the journal back behind what this tailer had read (power loss or damage):
    the record it handed out last is gone or different, so what follows is not the continuation
    of what it read. The consumer chooses where to resume (from_seq)."""


_BY_STATUS = {
    lib.MMJ_E_ARG: InvalidArgument,
    lib.MMJ_E_IO: JournalIOError,
    lib.MMJ_E_NOT_JOURNAL: NotAJournal,
    lib.MMJ_E_VERSION: JournalVersionError,
    lib.MMJ_E_LOCKED: JournalLocked,
    lib.MMJ_E_CORRUPT: JournalCorrupt,
    lib.MMJ_E_TOO_LARGE: RecordTooLarge,
    lib.MMJ_E_CLOSED: JournalClosed,
    lib.MMJ_E_DISK_FULL: DiskFull,
    lib.MMJ_E_DURABILITY: DurabilityFailed,
    lib.MMJ_E_NOT_FOUND: RecordNotFound,
    lib.MMJ_E_NOMEM: MemoryError,
    lib.MMJ_E_PAYLOAD_SIZE: PayloadSizeError,
    lib.MMJ_E_EXISTS: JournalExists,
    lib.MMJ_E_POSITION_LOST: TailerPositionLost,
    lib.MMJ_E_SEGMENTS_MISSING: SegmentsMissing,
}


def status_text(status: int) -> str:
    return ffi.string(lib.mmj_strerror(status)).decode()


def reason_text(reason: int) -> str:
    return ffi.string(lib.mmj_reason_name(reason)).decode()


def error_for(status: int, context: str, err: int = 0) -> Exception:
    """The exception for a negative mmj_status."""
    cls = _BY_STATUS.get(status, JournalError)
    message = f"{context}: {status_text(status)}"
    if err:
        message += f" ({os.strerror(err)})"
    if cls is MemoryError:
        return MemoryError(message)
    return cls(message, status=status, errno=err)


def open_context(path: str, err: int) -> str:
    """The context of an open error: names the missing directory when that is the cause, or the
    missing journal.meta of a directory that exists."""
    if err == errno.ENOENT and os.path.isdir(path):
        return f"open {path}: the directory holds no journal.meta"
    if err == errno.ENOENT:
        missing = os.path.abspath(path)
        while not os.path.exists(os.path.dirname(missing)) and os.path.dirname(missing) != missing:
            missing = os.path.dirname(missing)
        return f"open {path}: directory {missing} does not exist"
    return f"open {path}"


def check(status: int, context: str, err: int = 0) -> int:
    """Return status if it is not an error, else raise its exception."""
    if status < 0:
        raise error_for(status, context, err)
    return status
