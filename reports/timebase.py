"""Event times in UTC, with the basis of each conversion and the clock state in force.

Owns the rule that NIC hardware (PHC) timestamps on the PTP timescale are TAI and become UTC only
by subtracting the UTC offset of the CLOCK_SAMPLE in force (audit.phc.phc_offset: the newest with
a valid offset, or on the ARB timescale), with that sample's leap61/leap59 applied as
audit.phc.tai_to_utc_ns applies them; when that sample has the grandmaster on the ARB timescale
(ptpTimescale 0) the PHC is taken as is, as audit.sampler compares it with the system clock and
the runner's engine time takes it; kernel and user timestamps are CLOCK_REALTIME (UTC) already.
Vectorised over arrays; knows nothing of report layouts. Also the
read-ahead past a range's end toward a UTC time (realized-spread quotes, later Broken Trades).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.phc import leap_corrected_ns, phc_offset
from journal.catalogue import ClockState, RecordType, TsSource

NS = 1_000_000_000

# How a row's UTC time was obtained (the `utc_basis` column); index = code stored per row.
BASIS_NAMES = [
    "REALTIME_UTC",                  # SW_KERNEL / USER: CLOCK_REALTIME is UTC
    "PHC_TAI_MINUS_UTC_OFFSET",      # HW_PHC minus currentUtcOffset of the preceding clock sample
    "REPLAY_AS_RECORDED",            # copied from an earlier record by replay; taken as recorded
    "NO_UTC_OFFSET",                 # HW_PHC with no preceding sample carrying a valid offset
    "NO_TIMESTAMP",                  # TsSource.NONE: the time was never taken
    "PHC_ARB_AS_IS",                 # HW_PHC while the sample in force has the GM on ARB time
]
BASIS_REALTIME, BASIS_PHC, BASIS_REPLAY, BASIS_NO_OFFSET, BASIS_NONE, BASIS_PHC_ARB = range(6)

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
    # the sample in force for PHC stamps: the newest that set the offset (audit.phc.phc_offset:
    # a valid offset on the PTP timescale, or the ARB timescale, which takes the PHC as is)
    sets, value = phc_offset(samples)
    setters = np.flatnonzero(sets)
    if len(setters):
        every = len(setters) == len(samples)     # the usual case: the search done above serves
        pos = any_idx if every else preceding(samples["seq"][setters], seq)
        has_offset = pos >= 0
        row = np.clip(pos, 0, None) if every else setters[np.clip(pos, 0, None)]
        offset = value[row].astype(np.int16)
        offset[~has_offset] = 0
        arb_rows = samples["ptp_timescale"][setters] == 0
        arb = has_offset & (samples["ptp_timescale"][row] == 0) if arb_rows.any() else np.zeros(n, bool)
    else:
        row, has_offset = np.zeros(n, np.int64), np.zeros(n, bool)
        offset, arb = np.zeros(n, np.int16), np.zeros(n, bool)

    basis = np.full(n, BASIS_REALTIME, dtype=np.int8)
    phc = (src == TsSource.HW_PHC) | (src == TsSource.HW_PHC_BY)    # an upper bound is on the PHC too
    basis[phc & has_offset] = BASIS_PHC
    basis[phc & ~has_offset] = BASIS_NO_OFFSET
    if arb.any():
        basis[phc & arb] = BASIS_PHC_ARB
    basis[src == TsSource.REPLAY] = BASIS_REPLAY
    basis[src == TsSource.NONE] = BASIS_NONE
    utc = np.asarray(ts_ns, dtype=np.int64).copy()
    applied = basis == BASIS_PHC
    utc[applied] -= offset[applied].astype(np.int64, copy=False) * NS
    if len(samples) and (samples["leap61"].any() or samples["leap59"].any()) and applied.any():
        at = row[applied]               # leap flags of the sample whose offset was applied
        l61, l59 = samples["leap61"][at] != 0, samples["leap59"][at] != 0
        if l61.any() or l59.any():
            utc[applied] = leap_corrected_ns(utc[applied], l61, l59)
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
