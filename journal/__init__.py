"""mmaudit's write-ahead journal: C core (journal.h is the on-disk format spec) and Python API.

Writers append records (type, timestamp, its source and clock state, payload bytes); readers,
tailers and verify() read them back. Record meanings live in journal.catalogue. Nothing here
imports anything else from the project.
"""
from journal.catalogue import ClockState, RecordType, TsSource
from journal.errors import (
    DiskFull, DurabilityFailed, InvalidArgument, JournalClosed, JournalCorrupt, JournalError, JournalExists,
    JournalIOError, JournalLocked, JournalVersionError, NotAJournal, PayloadSizeError, RecordNotFound,
    RecordTooLarge, SegmentsMissing, TailerPositionLost,
)
from journal.reader import Reader, Record, Tailer, row_dtype
from journal.salvage import InvalidRange, SalvagedFile, SalvagedRecord, SalvagedRun, salvage, salvage_file
from journal.verify import BadRecord, VerifyReport, info, lock_state, verify
from journal.writer import Journal, RecoveryReport

__all__ = [
    "Journal", "Reader", "Record", "Tailer", "RecoveryReport", "VerifyReport", "BadRecord",
    "verify", "info", "lock_state", "row_dtype", "salvage", "salvage_file", "SalvagedRun", "SalvagedFile",
    "SalvagedRecord", "InvalidRange", "RecordType", "TsSource", "ClockState",
    "JournalError", "InvalidArgument", "JournalIOError", "NotAJournal", "JournalVersionError", "JournalLocked",
    "JournalCorrupt", "RecordTooLarge", "JournalClosed", "DiskFull", "DurabilityFailed", "RecordNotFound",
    "PayloadSizeError", "JournalExists", "SegmentsMissing", "TailerPositionLost",
]
