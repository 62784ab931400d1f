"""The venue's session date and its ITCH/OUCH timestamps: nanoseconds since midnight US/Eastern.

Owns the conversion both ways and the session date record. NASDAQ counts ITCH 5.0 and OUCH 4.2
timestamps from midnight America/New_York, so the session's date decides the UTC offset (EST or
EDT). A stamp is the time elapsed since that midnight: on the two days a year the clocks change it
differs from the New York time of day after 02:00, but it only grows and converts back exactly
(`to_utc_ns`). The session date is the New York date when the session first started, recorded
once (fsynced) as `session.date` in the session directory, so that a restart after a crash counts
from the same midnight; it is trusted only once the session has written a message (a start that
failed before that, e.g. on a busy port, dates nothing). Pure but for that record; must not know
about sockets.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from mm_core.venue.errors import SessionLogError, VenueStateError
from mm_core.venue.session_log import record_line

EASTERN = ZoneInfo("America/New_York")
NS_PER_S = 1_000_000_000
MAX_STAMP = (1 << 48) - 1              # ITCH's 6-byte timestamp (about 3.26 days)
DATE_FILE = "session.date"
_EPOCH = dt.date(1970, 1, 1)


def midnight_utc_ns(day: dt.date) -> int:
    """UTC nanoseconds of 00:00 America/New_York on `day`."""
    offset = dt.datetime(day.year, day.month, day.day, tzinfo=EASTERN).utcoffset()
    return ((day - _EPOCH).days * 86_400 - int(offset.total_seconds())) * NS_PER_S


def eastern_date(utc_ns: int) -> dt.date:
    """The New York calendar date at a UTC instant."""
    seconds, _ = divmod(utc_ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).astimezone(EASTERN).date()


def stamp(utc_ns: int, day: dt.date) -> int:
    """The ITCH/OUCH timestamp of a UTC instant in the session dated `day`."""
    return utc_ns - midnight_utc_ns(day)


def to_utc_ns(ts: int, day: dt.date) -> int:
    """The UTC instant of an ITCH/OUCH timestamp of the session dated `day`."""
    return midnight_utc_ns(day) + ts


def session_date(session_dir: Path, now_ns: int, duration_s: float, written: bool) -> dt.date:
    """The session's date: the recorded one when the session has `written` a message, else
    today's in New York (recorded now, replacing one a start that failed before its first
    message left). Raises VenueStateError when a run of `duration_s` seconds from `now_ns` would
    stamp outside ITCH's range from that date (a session taken up days after its date, or a clock
    before it)."""
    path = session_dir / DATE_FILE
    try:
        day = dt.date.fromisoformat(path.read_text("ascii").strip()) if written else None
    except FileNotFoundError:
        day = None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SessionLogError(f"cannot read the session date in {path}: {exc}") from exc
    fresh = day is None
    if fresh:
        day = eastern_date(now_ns)
    if fresh:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise SessionLogError(f"cannot replace the session date in {path}: "
                                  f"{exc.strerror or exc}") from exc
        record_line(path, day.isoformat(), "the session date", exclusive=True)
    first = stamp(now_ns, day)
    run_ns = int(duration_s * NS_PER_S)
    today = eastern_date(now_ns)
    if 0 <= first and first + run_ns > MAX_STAMP and stamp(now_ns, today) + run_ns > MAX_STAMP:
        # too long for any session started now: a new session would not help
        raise VenueStateError(f"a run of {duration_s:g} s from now ({stamp(now_ns, today) / NS_PER_S / 3600:.1f} h "
                              f"after midnight in New York) would stamp past ITCH's 48-bit nanosecond "
                              f"timestamps, which cover {MAX_STAMP / NS_PER_S / 3600:.1f} h from a session's "
                              f"midnight: give a shorter duration")
    if first < 0 or first + run_ns > MAX_STAMP:
        raise VenueStateError(f"session {session_dir.name} is dated {day} (New York): a run from "
                              f"{eastern_date(now_ns)} cannot stamp from its midnight; "
                              f"start a new session under a new name")
    return day
