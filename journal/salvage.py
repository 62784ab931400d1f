"""salvage(): the records recovery kept in discarded/r<N>/ (journal.h DISCARDED DATA), read back.

Owns the SalvagedRun / SalvagedFile / SalvagedRecord / UnreadableFile shapes and the comparison
of each salvaged data record with the journal's record of that sequence: a record the repair
zeroed that the journal still holds is not lost. Kept files are read by mmj_salvage_segment
(journal.h SALVAGE), each on its own: one that cannot be read is reported and the rest still are.
Nothing here repairs, moves or writes a file.
"""
from __future__ import annotations

import dataclasses
import mmap
import os
import re

import numpy as np

from journal._journal_cffi import ffi, lib
from journal.catalogue import RecordType
from journal.errors import InvalidArgument, JournalError, JournalIOError, check, error_for, reason_text
from journal.reader import Reader

_SEGMENT_NAME = re.compile(r"seg-(\d{16})\.mmj")


@dataclasses.dataclass(frozen=True)
class SalvagedRecord:
    """A record of a kept file that validates (crc and salt check of its segment; any sequence)."""

    offset: int          # byte offset in the kept file
    seq: int             # a data record's sequence; CHECKPOINT, SEAL and EOS carry the next one
    rtype: int
    flags: int           # MMJ_FLAG_CONTROL for CHECKPOINT/SEAL, MMJ_FLAG_EOS for the end marker
    ts_ns: int
    ts_source: int
    clock_state: int
    payload: bytes
    in_journal: bool = False   # a data record, and the journal holds one with this sequence
    identical: bool = False    # ... with the same type, timestamp, source, clock state and payload

    @property
    def is_control(self) -> bool:
        return bool(self.flags)

    @property
    def lost(self) -> bool:
        """A data record the journal no longer holds (nothing, or another record, at its sequence)."""
        return not self.is_control and not self.identical

    @property
    def type_name(self) -> str:
        if self.flags & lib.MMJ_FLAG_EOS:
            return "EOS"
        try:
            return RecordType(self.rtype).name
        except ValueError:
            return str(self.rtype)


@dataclasses.dataclass(frozen=True)
class InvalidRange:
    """Bytes of a kept file in which no record validates: the damage, located."""

    offset: int
    length: int


@dataclasses.dataclass(frozen=True)
class SalvagedFile:
    """One kept segment file: what its header says, its records that validate, the bytes that do not."""

    path: str
    index: int                 # the header's segment index (its records were checked against it)
    version: int
    first_seq: int             # the header's first sequence
    segment_size: int          # the header's segment size; a kept copy of a damaged segment is shorter
    file_size: int
    header_problem: str | None   # None when the header is intact and names this file's segment
    records: tuple             # SalvagedRecord, in file order
    invalid: tuple             # InvalidRange, in file order

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def data_records(self) -> list:
        return [r for r in self.records if not r.is_control]

    @property
    def seq_range(self) -> tuple[int, int] | None:
        """Lowest and highest sequence of its data records, None without any."""
        seqs = [r.seq for r in self.data_records]
        return (min(seqs), max(seqs)) if seqs else None

    @property
    def lost(self) -> int:
        """Data records the journal no longer holds."""
        return sum(r.lost for r in self.records)


@dataclasses.dataclass(frozen=True)
class UnreadableFile:
    """A kept segment file (or a run directory) that could not be read: where, and the typed
    error (JournalCorrupt: not a segment; JournalVersionError: a newer format; JournalIOError:
    the file or directory cannot be opened)."""

    path: str
    error: JournalError

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclasses.dataclass(frozen=True)
class SalvagedRun:
    """One discarded/r<N>: what one recovery kept."""

    run: int
    path: str
    files: tuple               # SalvagedFile, by name
    other_files: tuple = ()    # names not read as segments (summaries, a copy cut short by a crash)
    unreadable: tuple = ()     # UnreadableFile: segment-named files (or the run itself) not read


def salvage(path) -> list[SalvagedRun]:
    """Every discarded/r<N> of the journal at path, in order, each kept segment file read back:
    the records that validate (compared with the journal's) and the byte ranges that do not.
    A kept file that cannot be read as a segment is reported in its run's `unreadable` with its
    typed error, and the other files are still read. NotAJournal when path is not a journal."""
    path = os.fspath(path)
    cell = ffi.new("uint8_t[16]")
    check(lib.mmj_read_salt(os.fsencode(path), cell), f"salvage {path}")
    salt = bytes(cell)
    runs = _runs(path)
    if not runs:
        return []
    out = []
    with Reader(path) as journal:
        for number, run in runs:
            try:
                names = sorted(os.listdir(run))
            except OSError as exc:
                error = JournalIOError(f"salvage {run}: cannot list the run: {exc.strerror}", errno=exc.errno)
                out.append(SalvagedRun(run=number, path=run, files=(), unreadable=(UnreadableFile(run, error),)))
                continue
            files, unreadable = [], []
            for name in filter(_SEGMENT_NAME.fullmatch, names):
                try:
                    files.append(_compared(salvage_file(os.path.join(run, name), salt), journal))
                except JournalError as exc:
                    unreadable.append(UnreadableFile(os.path.join(run, name), exc))
            out.append(SalvagedRun(run=number, path=run, files=tuple(files),
                                   other_files=tuple(n for n in names if not _SEGMENT_NAME.fullmatch(n)),
                                   unreadable=tuple(unreadable)))
    return out


def _runs(path: str) -> list[tuple[int, str]]:
    """(N, directory) of each discarded/r<N> (journal.h DISCARDED DATA), in order of N."""
    root = os.path.join(path, "discarded")
    try:
        names = [n for n in os.listdir(root) if n[:1] == "r" and n[1:].isdigit()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise JournalIOError(f"salvage {root}: {exc.strerror}", errno=exc.errno) from exc
    return sorted((int(n[1:]), os.path.join(root, n)) for n in names)


def salvage_file(path, salt: bytes) -> SalvagedFile:
    """One segment file read on its own with the journal's 16-byte salt (no comparison with the
    journal: in_journal and identical stay False)."""
    if not isinstance(salt, bytes) or len(salt) != lib.MMJ_SALT_SIZE:
        raise InvalidArgument(f"salt must be {lib.MMJ_SALT_SIZE} bytes (the journal id), not {salt!r}")
    path = os.fspath(path)
    cpath = os.fsencode(path)
    report = ffi.new("mmj_salvage_report *")
    err = ffi.new("int *")
    status = lib.mmj_salvage_segment(cpath, salt, ffi.NULL, 0, ffi.NULL, 0, report, err)
    records = ffi.new("mmj_record[]", max(1, report.records))
    invalid = ffi.new("mmj_byte_range[]", max(1, report.invalid))
    if status == lib.MMJ_OK:     # the second call fills what the first counted
        status = lib.mmj_salvage_segment(cpath, salt, records, report.records, invalid, report.invalid, report, err)
    if status < 0:
        shape = " (shorter than a segment header, or no segment magic)" if status == lib.MMJ_E_CORRUPT else ""
        raise error_for(status, f"salvage {path}{shape}", err[0])
    header_problem = None if report.header_reason == lib.MMJ_R_NONE else reason_text(report.header_reason)
    named = _SEGMENT_NAME.fullmatch(os.path.basename(path))
    if named and int(named.group(1)) != report.index:
        header_problem = f"{header_problem or 'header'}: segment index {report.index}, not the file name's"
    return SalvagedFile(path=path, index=report.index, version=report.version, first_seq=report.first_seq,
                        segment_size=report.size, file_size=report.file_size, header_problem=header_problem,
                        records=tuple(_payloads(path, records, report.records, report.file_size)),
                        invalid=tuple(InvalidRange(invalid[i].offset, invalid[i].length)
                                      for i in range(report.invalid)))


def _payloads(path: str, records, count: int, file_size: int):
    """SalvagedRecords with their payload bytes from the file (zeros past its end: journal.h SALVAGE)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), file_size, prot=mmap.PROT_READ) as data:
        for rec in (records[i] for i in range(count)):
            start = rec.offset + lib.MMJ_RECORD_HEADER_SIZE
            payload = data[start:start + rec.length].ljust(rec.length, b"\0")
            yield SalvagedRecord(offset=rec.offset, seq=rec.seq, rtype=rec.rtype, flags=rec.flags,
                                 ts_ns=rec.ts_ns, ts_source=rec.ts_source, clock_state=rec.clock_state,
                                 payload=payload)


def _compared(kept: SalvagedFile, journal: Reader) -> SalvagedFile:
    """kept with each data record marked by what the journal holds at its sequence."""
    seqs = [r.seq for r in kept.data_records]
    lo, hi = max(min(seqs, default=1), journal.first_seq), min(max(seqs, default=0), journal.last_seq)
    if lo > hi:
        return kept
    headers, blob, offsets = journal.read_blobs(None, lo, hi)
    held = headers["seq"]

    def marked(rec: SalvagedRecord) -> SalvagedRecord:
        row = int(np.searchsorted(held, rec.seq))
        if rec.is_control or row == len(held) or held[row] != rec.seq:
            return rec
        head = headers[row]
        same = ((int(head["rtype"]), int(head["ts_ns"]), int(head["ts_source"]), int(head["clock_state"]))
                == (rec.rtype, rec.ts_ns, rec.ts_source, rec.clock_state)
                and blob[offsets[row]:offsets[row + 1]] == rec.payload)
        return dataclasses.replace(rec, in_journal=True, identical=same)

    return dataclasses.replace(kept, records=tuple(marked(r) for r in kept.records))
