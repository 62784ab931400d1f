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

A runner that lost its order entry and logged in again (mmaudit drill venue-disconnect, a dropped
session) is sent, right after the venue's LoginAccepted, every message of the session it missed:
those are journaled at their receipt too, after the events. A venue message whose venue time is
earlier than the receipt of the LoginAccepted before it was made before that connection existed,
so it is a replay: it is timed by the venue as well (replayed). The comparison takes the login's
UTC from the message's own (the two receipts' difference, on the same timestamp source): a
message stamped by a venue clock ahead of ours by more than its answer's round trip could be
taken for a replay, which only moves its time by that skew.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from journal.catalogue import RecordType, TsSource, unpack_json
from reports import timetext

NS_PER_DAY = 86_400 * 1_000_000_000
_FIVE_HOURS = 5 * 3_600 * 1_000_000_000
_LOGIN_ACCEPTED = ord("A")            # SoupBinTCP packet type of the venue's LoginAccepted
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


class VenueTiming:
    """What with_venue_times needs of the whole journal, read once per run: the recovery windows
    and every LoginAccepted (its journal sequence, receipt timestamp and timestamp source). The
    LoginAccepted records are found by reading every VENUE_MSG (~25 ms a million records), on a
    thread of its own beside the report's first decode, taken when first asked for."""

    def __init__(self, reader, last_seq: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="venue-logins")
        self._logins = self._pool.submit(_logins, reader, last_seq)
        self._pool.shutdown(wait=False)
        self.windows = recovery_windows(reader, last_seq)

    @property
    def logins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sequences, receipt timestamps, timestamp sources) of the LoginAccepted records."""
        return self._logins.result()


def _logins(reader, last_seq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    venue = reader.read_fixed(RecordType.VENUE_MSG, 1, last_seq)
    rows = venue[venue["packet_type"] == _LOGIN_ACCEPTED]
    return rows["seq"].astype(np.int64), rows["ts_ns"].astype(np.int64), rows["ts_source"].astype(np.int64)


def venue_timing(reader, last_seq: int) -> VenueTiming:
    """The recovery windows and the LoginAccepted records up to `last_seq`."""
    return VenueTiming(reader, last_seq)


def replayed(seq: np.ndarray, ts_ns: np.ndarray, ts_source: np.ndarray, utc_ns: np.ndarray,
             venue_utc_ns: np.ndarray, timing: VenueTiming) -> np.ndarray:
    """Which venue messages (their sequences, receipt timestamps, sources, receipt UTC and venue
    time in UTC) came in a login's replay: journaled after a LoginAccepted, on its timestamp
    source, with a venue time earlier than that login's receipt."""
    out = np.zeros(len(seq), bool)
    login_seq, login_ts, login_source = timing.logins
    if len(login_seq) == 0 or len(seq) == 0:
        return out
    at = np.searchsorted(login_seq, np.asarray(seq, np.int64), side="right") - 1
    ok = at >= 0
    k = np.clip(at, 0, None)
    ok &= np.asarray(ts_source, np.int64) == login_source[k]
    login_utc = np.asarray(utc_ns, np.int64) - (np.asarray(ts_ns, np.int64) - login_ts[k])
    return ok & (np.asarray(venue_utc_ns, np.int64) < login_utc)


def venue_timed(seq: np.ndarray, ts_ns: np.ndarray, ts_source: np.ndarray, utc_ns: np.ndarray,
                valid: np.ndarray, venue_ts: np.ndarray, timing: VenueTiming) -> np.ndarray:
    """Which venue messages (sequences, receipt timestamps and sources, receipt UTC and its
    validity, OUCH timestamps) are timed by the venue: those a crash recovery journaled, and,
    with a valid receipt, those a login's replay brought."""
    recovered = journaled_by_recovery(seq, ts_source, timing.windows)
    rows = np.flatnonzero(~recovered & np.asarray(valid, bool))
    if len(rows) and len(timing.logins[0]):
        venue_utc = execution_times(np.asarray(utc_ns, np.int64)[rows], np.ones(len(rows), bool),
                                    np.asarray(venue_ts)[rows])
        recovered[rows] = replayed(np.asarray(seq)[rows], np.asarray(ts_ns)[rows], np.asarray(ts_source)[rows],
                                   np.asarray(utc_ns)[rows], venue_utc, timing)
    return recovered


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
