"""Event times in UTC, with the basis of each conversion and the clock state in force.

Owns the rule that NIC hardware (PHC) timestamps are TAI and become UTC only by subtracting the UTC
offset from the nearest preceding CLOCK_SAMPLE with a valid offset; kernel and user timestamps are
CLOCK_REALTIME (UTC) already. Vectorised over arrays; knows nothing of report layouts. Also the
read-ahead past a range's end toward a UTC time (realized-spread quotes, later Broken Trades).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journal.catalogue import ClockState, RecordType, TsSource

NS = 1_000_000_000

# How a row's UTC time was obtained (the `utc_basis` column); index = code stored per row.
BASIS_NAMES = [
    "REALTIME_UTC",                  # SW_KERNEL / USER: CLOCK_REALTIME is UTC
    "PHC_TAI_MINUS_UTC_OFFSET",      # HW_PHC minus currentUtcOffset of the preceding clock sample
    "REPLAY_AS_RECORDED",            # copied from an earlier record by replay; taken as recorded
    "NO_UTC_OFFSET",                 # HW_PHC with no preceding sample carrying a valid offset
    "NO_TIMESTAMP",                  # TsSource.NONE: the time was never taken
]
BASIS_REALTIME, BASIS_PHC, BASIS_REPLAY, BASIS_NO_OFFSET, BASIS_NONE = range(5)

TS_SOURCE_NAMES = [s.name for s in sorted(TsSource, key=int)]
CLOCK_STATE_NAMES = [s.name for s in sorted(ClockState, key=int)]


@dataclass(frozen=True)
class UtcTimes:
    utc_ns: np.ndarray          # int64, meaningful where `valid`
    valid: np.ndarray           # bool
    basis: np.ndarray           # int8 index into BASIS_NAMES
    utc_offset_s: np.ndarray    # int16 offset applied (0 when none)
    sample_index: np.ndarray    # int64 index of the preceding CLOCK_SAMPLE (any), -1 if none


def preceding(sample_seq: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Index of the last sample with sequence < seq (samples sorted by sequence), -1 if none."""
    return np.searchsorted(sample_seq, seq, side="left") - 1


def to_utc(seq: np.ndarray, ts_ns: np.ndarray, ts_source: np.ndarray, samples: np.ndarray) -> UtcTimes:
    """Convert record timestamps to UTC using the journal's CLOCK_SAMPLE records (sorted by seq)."""
    n = len(seq)
    src = np.asarray(ts_source)
    any_idx = preceding(samples["seq"], seq)
    valid_rows = np.flatnonzero(samples["utc_offset_valid"] != 0)
    off_pos = any_idx if len(valid_rows) == len(samples) else preceding(samples["seq"][valid_rows], seq)
    has_offset = off_pos >= 0
    if n and has_offset.all():          # the usual case: one gather, no masked stores
        offset = samples["utc_offset"][valid_rows[off_pos]].astype(np.int16, copy=False)
    else:
        offset = np.zeros(n, dtype=np.int16)
        offset[has_offset] = samples["utc_offset"][valid_rows[off_pos[has_offset]]]

    basis = np.full(n, BASIS_REALTIME, dtype=np.int8)
    phc = (src == TsSource.HW_PHC) | (src == TsSource.HW_PHC_BY)    # an upper bound is on the PHC too
    basis[phc & has_offset] = BASIS_PHC
    basis[phc & ~has_offset] = BASIS_NO_OFFSET
    basis[src == TsSource.REPLAY] = BASIS_REPLAY
    basis[src == TsSource.NONE] = BASIS_NONE
    utc = np.asarray(ts_ns, dtype=np.int64).copy()
    applied = basis == BASIS_PHC
    utc[applied] -= offset[applied].astype(np.int64, copy=False) * NS
    offset[~applied] = 0
    valid = (basis != BASIS_NO_OFFSET) & (basis != BASIS_NONE)
    return UtcTimes(utc_ns=utc, valid=valid, basis=basis, utc_offset_s=offset, sample_index=any_idx)


READ_AHEAD_SEQS = 1 << 16     # journal sequences scanned at a time past a range's end


def read_ahead(src, samples: np.ndarray, after_ns: int, fields=("seq", "ts_ns", "ts_source")):
    """Past the end of the range `src` (a JournalSlice), toward `after_ns` past the UTC time of its
    last record: yields (the chunk's last sequence, header columns `fields` of its sequences,
    their UtcTimes, the UTC ns aimed at, the CLOCK_SAMPLEs so far) chunk by chunk of
    READ_AHEAD_SEQS up to the journal's end; `samples` (those up to the range end, sorted by seq)
    grows by the ones read. The caller stops when it has read far enough. Nothing when the
    last record has no UTC time."""
    end = src.reader.scan(src.last_seq, src.last_seq, fields=("seq", "ts_ns", "ts_source"))
    end_utc = to_utc(end.seq, end.ts_ns, end.ts_source, samples)
    if not (len(end.seq) and end_utc.valid[0]):
        return
    until = int(end_utc.utc_ns[0]) + after_ns
    last = int(src.reader.last_seq)
    for a in range(src.last_seq + 1, last + 1, READ_AHEAD_SEQS):
        b = min(a + READ_AHEAD_SEQS - 1, last)
        more = src.reader.read_fixed(RecordType.CLOCK_SAMPLE, first_seq=a, last_seq=b)
        samples = np.concatenate([samples, more[np.argsort(more["seq"], kind="stable")].astype(samples.dtype)])
        cols = src.reader.scan(a, b, fields=tuple(fields))
        yield b, cols, to_utc(cols.seq, cols.ts_ns, cols.ts_source, samples), until, samples
