"""Regulatory date and time text from int64 UTC nanoseconds, built as fixed-width byte arrays in
numpy (digits by integer division; no per-row Python, no strftime through time-zone kernels).

Owns the RTS 22/24 {DATE_TIME_FORMAT} (YYYY-MM-DDThh:mm:ss.ffffffZ, UTC, microseconds), CAT's
Eastern-Time timestamp (YYYYMMDD HHMMSS.CCCNNNNNN) and YYYYMMDD dates, and the US Eastern UTC
offset in force (from the tz database, one lookup per UTC hour run: DST changes on the hour).
Knows nothing of reports; callers pass times and validity.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

NS_PER_S = 1_000_000_000
NS_PER_HOUR = 3600 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S
EASTERN = ZoneInfo("America/New_York")


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm)."""
    z = days.astype(np.int64, copy=False) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def _digits(out: np.ndarray, at: int, value: np.ndarray, width: int) -> None:
    v = value.astype(np.int64, copy=True)
    for k in range(width - 1, -1, -1):
        out[:, at + k] = 48 + v % 10
        v //= 10


def _text(out: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    width = out.shape[1]
    fixed = np.ascontiguousarray(out).view(f"S{width}")[:, 0]
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(fixed, pa.binary(width), mask=mask).cast(pa.binary()).cast(pa.string())


def _layout(ns: np.ndarray, template: bytes, fields) -> np.ndarray:
    """Fill `template` per row; `fields` = (offset, width, name) with names from the time parts."""
    ns = np.asarray(ns, dtype=np.int64)
    days = np.floor_divide(ns, NS_PER_DAY)
    in_day = ns - days * NS_PER_DAY
    year, month, day = civil(days)
    secs = in_day // NS_PER_S
    parts = {"Y": year, "m": month, "d": day, "H": secs // 3600, "M": secs // 60 % 60, "S": secs % 60,
             "us": (in_day % NS_PER_S) // 1000, "ns": in_day % NS_PER_S}
    out = np.empty((len(ns), len(template)), np.uint8)
    out[:] = np.frombuffer(template, np.uint8)
    for at, width, name in fields:
        _digits(out, at, parts[name], width)
    return out


def rts_datetime(utc_ns: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """YYYY-MM-DDThh:mm:ss.ffffffZ (UTC, microseconds truncated), null where not valid."""
    out = _layout(utc_ns, b"0000-00-00T00:00:00.000000Z",
                  ((0, 4, "Y"), (5, 2, "m"), (8, 2, "d"), (11, 2, "H"), (14, 2, "M"), (17, 2, "S"), (20, 6, "us")))
    return _text(out, valid)


def eastern_offset_ns(utc_ns: np.ndarray) -> np.ndarray:
    """UTC offset of America/New_York in force at each time (ns, negative). One tz lookup per run
    of equal UTC hours (journal order is nearly time order, so runs are few)."""
    hours = np.floor_divide(np.asarray(utc_ns, dtype=np.int64), NS_PER_HOUR)
    if len(hours) == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1]])
    cache: dict[int, int] = {}
    run_offset = np.empty(len(starts), np.int64)
    for i, h in enumerate(hours[starts].tolist()):
        if h not in cache:
            moment = dt.datetime.fromtimestamp(h * 3600, tz=dt.timezone.utc).astimezone(EASTERN)
            cache[h] = int(moment.utcoffset().total_seconds()) * NS_PER_S
        run_offset[i] = cache[h]
    return np.repeat(run_offset, np.diff(np.r_[starts, len(hours)]))


def cat_timestamp(utc_ns: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """CAT Eastern-Time timestamp YYYYMMDD HHMMSS.CCCNNNNNN (nanoseconds), null where not valid."""
    local = np.asarray(utc_ns, dtype=np.int64) + eastern_offset_ns(utc_ns)
    out = _layout(local, b"00000000 000000.000000000",
                  ((0, 4, "Y"), (4, 2, "m"), (6, 2, "d"), (9, 2, "H"), (11, 2, "M"), (13, 2, "S"), (16, 9, "ns")))
    return _text(out, valid)


def eastern_days(utc_ns: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the Eastern-Time calendar date of each time."""
    local = np.asarray(utc_ns, dtype=np.int64) + eastern_offset_ns(utc_ns)
    return np.floor_divide(local, NS_PER_DAY)


def yyyymmdd(days: np.ndarray) -> np.ndarray:
    """Dates as YYYYMMDD integers (CAT's Date type)."""
    year, month, day = civil(np.asarray(days, dtype=np.int64))
    return year * 10_000 + month * 100 + day
