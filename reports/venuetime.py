"""Venue times for the venue messages a recovery journaled: which VENUE_MSG records a crash
recovery wrote (between its RECON "begin" and "outcome" records, stamped with the recovery's own
clock, ts_source USER), and the venue's own time of each (the OUCH timestamp: an execution's time
for an Executed, the event's for another answer; counted in nanoseconds from midnight
America/New_York of the venue session's date, as the venue stamps it: mm_core/venue/sessiontime.py).

A recovery journals the venue messages it missed while the engine was down at the time it
receives them (seconds, or after midnight a day, after the trade): that time is the recovery's,
not the execution's. RTS 22 field 28 (trading date time), the orders report's event time, Rule
605's execution time, CAT's MEOM / MEOC / MEOT eventTimestamp and the trade date of such a message
are the venue's time instead, with its
source named (SOURCES, EVENT_SOURCES; reports/common.py with_venue_times applies it to order
events). Owns the recovery windows, the source codes and the conversion; not the reports' columns.
"""
from __future__ import annotations

import numpy as np

from journal.catalogue import RecordType, TsSource, unpack_json
from reports import timetext

NS_PER_DAY = 86_400 * 1_000_000_000
_FIVE_HOURS = 5 * 3_600 * 1_000_000_000
RECON_BEGIN, RECON_OUTCOME = "begin", "outcome"     # recovery/replay.py RECON kinds (reports may not import it)
# Where each row's trading time comes from: the journal record's own (the firm's clock at receipt),
# or the venue's OUCH execution timestamp (a recovery journaled the record later).
SOURCES = ["JOURNAL_RECORD", "VENUE_EXECUTION_TIMESTAMP"]
# The same for any venue answer (the orders report): another answer's OUCH timestamp (Accepted,
# Canceled, Replaced, ...) is the venue's time of that event, not an execution time.
EVENT_SOURCES = SOURCES + ["VENUE_EVENT_TIMESTAMP"]


def recovery_windows(reader, last_seq: int) -> np.ndarray:
    """(begin, end) journal sequences of each crash recovery up to `last_seq`: from its RECON
    "begin" to its RECON "outcome" (or, when it wrote none, the journal's end). A mid-session
    reconciliation (mid_session: the live runner keeps journaling what it receives, at receipt) is
    not one. RECON records are few: read whole from the journal start."""
    headers, blob, offsets = reader.read_blobs(RecordType.RECON, 1, last_seq)
    out, begin = [], None
    for i, h in enumerate(headers):
        doc = unpack_json(blob[int(offsets[i]):int(offsets[i + 1])])
        kind = doc.get("kind")
        if kind == RECON_BEGIN and not doc.get("mid_session"):
            begin = int(h["seq"]) if begin is None else begin
        elif kind == RECON_OUTCOME and begin is not None:
            out.append((begin, int(h["seq"])))
            begin = None
    if begin is not None:
        out.append((begin, np.iinfo(np.int64).max))
    return np.array(out, np.int64).reshape(-1, 2)


def journaled_by_recovery(seq: np.ndarray, ts_source: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Which records (their sequences and timestamp sources) a recovery journaled with its clock."""
    if len(windows) == 0:
        return np.zeros(len(seq), bool)
    seq = np.asarray(seq, np.int64)
    at = np.searchsorted(windows[:, 0], seq, side="right") - 1
    inside = (at >= 0) & (seq <= windows[np.clip(at, 0, None), 1])
    return inside & (np.asarray(ts_source) == int(TsSource.USER))


def session_midnight_utc(record_utc_ns: np.ndarray, venue_ts: np.ndarray) -> np.ndarray:
    """UTC of the midnight (America/New_York) a venue timestamp counts from, for messages journaled
    at `record_utc_ns` (after the venue stamped them): the New York date of record time less the
    stamp, i.e. the session date, whenever the message was journaled within a day of its stamp.
    The session date itself is not journaled (the venue records it in its own session directory)."""
    day = timetext.eastern_days(np.asarray(record_utc_ns, np.int64) - np.asarray(venue_ts, np.int64))
    local_midnight = day * NS_PER_DAY
    # at 00:00 New York (04:00 or 05:00 UTC) no clock change is due until 02:00: the offset then
    return local_midnight - timetext.eastern_offset_ns(local_midnight + _FIVE_HOURS)


def execution_times(utc_ns: np.ndarray, recovered: np.ndarray, venue_ts: np.ndarray) -> np.ndarray:
    """Trading times: the records' UTC times, but the venue's execution time where `recovered`."""
    out = np.array(utc_ns, np.int64, copy=True)
    rows = np.flatnonzero(recovered)
    if len(rows):
        out[rows] = session_midnight_utc(out[rows], venue_ts[rows]) + venue_ts[rows].astype(np.int64)
    return out
