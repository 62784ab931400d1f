"""Regulatory date and time text from int64 UTC nanoseconds, built as fixed-width byte arrays in
numpy (digits from small lookup tables; no per-row Python, no strftime through time-zone kernels).

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

from reports import orderjoin

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


def _digit_table(values: np.ndarray, width: int) -> np.ndarray:
    """(len(values), width) uint8 ASCII digits of each value, zero-padded."""
    out = np.empty((len(values), width), np.uint8)
    _digits(out, 0, values, width)
    return out


def _as_bytes(digits: np.ndarray) -> np.ndarray:
    """A (k, w) uint8 digit table as k fixed-width byte strings (one element per row: a gather
    of them is one copy per row, not w)."""
    return np.ascontiguousarray(digits).view(f"S{digits.shape[1]}")[:, 0]


_THREE = _as_bytes(_digit_table(np.arange(1000), 3))            # '000' .. '999'
_HMS = {name: _as_bytes(_digit_table(values, 2)) for name, values in (   # per second of the day
    ("H", np.arange(86_400) // 3600), ("M", np.arange(86_400) // 60 % 60), ("S", np.arange(86_400) % 60))}
_DAY_SPAN = 4096    # a chunk's days looked up in one table when they span at most this many


def _slots(width: int, slots) -> np.dtype:
    """A record dtype over a text row of `width` bytes with a byte-string field per (offset, size)."""
    return np.dtype({"names": [f"f{i}" for i in range(len(slots))], "formats": [f"S{w}" for _, w in slots],
                     "offsets": [at for at, _ in slots], "itemsize": width})


def _text(out: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """A string column over the rows of `out` (ASCII digits and separators): the bytes become the
    data buffer as they are, with fixed-step offsets (no copy, no UTF-8 validation pass)."""
    n, width = out.shape
    if n * width >= 2**31:
        raise ValueError("timetext: more text than one string column holds")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(out).reshape(-1)
    if valid is None or np.all(valid):
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    validity = pa.py_buffer(np.packbits(np.asarray(valid, dtype=bool), bitorder="little"))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data), validity)


def _layout(ns: np.ndarray, template: bytes, fields) -> np.ndarray:
    """Fill `template` per row; `fields` = (offset, width, name) with names from the time parts.
    Digits come from lookup tables, not per-row division: the date part is laid out once per
    distinct day (a chunk spans few) and copied, hours/minutes/seconds from a table of the 86,400
    seconds of a day, fractions three digits at a time."""
    ns = np.asarray(ns, dtype=np.int64)
    n = len(ns)
    days = np.floor_divide(ns, NS_PER_DAY)
    in_day = ns - days * NS_PER_DAY
    first = int(days.min()) if n else 0
    span = int(days.max()) - first + 1 if n else 0
    # one template row per distinct day in the span (or per row when the days are far apart)
    table_days = np.arange(first, first + span, dtype=np.int64) if span <= _DAY_SPAN else days
    year, month, day = civil(table_days)
    day_rows = np.empty((len(table_days), len(template)), np.uint8)
    day_rows[:] = np.frombuffer(template, np.uint8)
    date_parts = {"Y": year, "m": month, "d": day}
    for at, width, name in fields:
        if name in date_parts:
            _digits(day_rows, at, date_parts[name], width)
    pick = days - first if span <= _DAY_SPAN else np.arange(n)
    width = len(template)
    out = day_rows.view(f"S{width}")[:, 0][pick].view(np.uint8).reshape(n, width)
    secs = in_day // NS_PER_S
    frac = in_day - secs * NS_PER_S
    slots, values = [], []
    for at, width_, name in fields:
        if name in _HMS:
            slots.append((at, width_))
            values.append(_HMS[name][secs])
        elif name in ("us", "ns"):
            value = frac // 1000 if name == "us" else frac
            for k in range(width_ - 3, -1, -3):        # three digits at a time, from the right
                slots.append((at + k, 3))
                values.append(_THREE[value % 1000])
                value = value // 1000
    if n and slots:
        rows = out.reshape(-1).view(_slots(width, slots))
        for i, value in enumerate(values):
            rows[f"f{i}"] = value
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
    """CAT Eastern-Time timestamp YYYYMMDD HHMMSS.CCCNNNNNN (nanoseconds), null where not valid:
    laid out by one compiled pass (cat_timestamp_reference is the numpy layout it is tested
    against)."""
    return _text(cat_timestamp_rows(utc_ns), valid)


def cat_timestamp_rows(utc_ns: np.ndarray) -> np.ndarray:
    """The bytes of cat_timestamp, (n, 25) uint8 (whose first 8 are the Eastern date YYYYMMDD)."""
    return orderjoin.cat_timestamps(eastern_local_ns(utc_ns))


def eastern_local_ns(utc_ns: np.ndarray) -> np.ndarray:
    """Each UTC time as America/New_York wall-clock time, ns since 1970-01-01 of that clock: what
    CAT timestamps (orderjoin.cat_timestamps), Eastern dates and times of day are taken from."""
    return np.asarray(utc_ns, dtype=np.int64) + eastern_offset_ns(utc_ns)


def cat_timestamp_reference(utc_ns: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """cat_timestamp laid out by numpy lookup tables."""
    return _text(cat_timestamp_rows_reference(eastern_local_ns(utc_ns)), valid)


def cat_timestamp_rows_reference(local_ns: np.ndarray) -> np.ndarray:
    """orderjoin.cat_timestamps (the rows of Eastern times) laid out by numpy lookup tables."""
    return _layout(np.asarray(local_ns, dtype=np.int64), b"00000000 000000.000000000",
                   ((0, 4, "Y"), (4, 2, "m"), (6, 2, "d"), (9, 2, "H"), (11, 2, "M"), (13, 2, "S"), (16, 9, "ns")))


def eastern_days(utc_ns: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the Eastern-Time calendar date of each time."""
    return np.floor_divide(eastern_local_ns(utc_ns), NS_PER_DAY)


def yyyymmdd(days: np.ndarray) -> np.ndarray:
    """Dates as YYYYMMDD integers (CAT's Date type)."""
    year, month, day = civil(np.asarray(days, dtype=np.int64))
    return year * 10_000 + month * 100 + day
