"""CAT tradingSession from the OUCH time in force and the event's Eastern time: ALL for system hours
(99999), REG for market hours (99998), and for an IOC or timed order the sessions its life touches
(CAT JSON schema 4.1.0 r15 codes): PRE (04:00-09:30 ET), REG (09:30-16:00), POST (16:00-20:00),
PREREG, REGPOST, and ALL from pre- through post-market; an order alive outside 04:00-20:00 ET is
rejected, never labelled."""
import datetime as dt
import json

import pytest

from reports import cat, cat_json
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder

# (Eastern time of the Enter, and its nanoseconds; OUCH time in force; tradingSession, None:
# rejected). 2026-03-02 is EST (UTC-5).
CASES = [
    ((3, 59, 59), 0, 0, None),                 # an IOC before the pre-market opens
    ((4, 0, 0), 0, 0, "PRE"),
    ((5, 0, 0), 0, 99998, "REG"),              # market hours: waits for the regular session
    ((7, 0, 0), 0, 600, "PRE"),
    ((8, 0, 0), 0, 43_200, "ALL"),             # until 20:00: pre-market through post-market
    ((9, 25, 0), 0, 600, "PREREG"),            # 09:25-09:35
    ((9, 29, 59), 0, 1, "PRE"),                # gone at 09:30:00 exactly
    ((9, 29, 59), 1_000, 1, "PREREG"),         # alive until 09:30:00.000001
    ((10, 0, 0), 0, 0, "REG"),
    ((10, 0, 1), 0, 60, "REG"),
    ((15, 55, 0), 0, 600, "REGPOST"),          # 15:55-16:05
    ((15, 59, 59), 0, 1, "REG"),               # gone at 16:00:00 exactly
    ((15, 59, 59), 500_000_000, 1, "REGPOST"),
    ((16, 30, 0), 0, 0, "POST"),
    ((19, 55, 0), 0, 300, "POST"),             # gone at 20:00:00 exactly
    ((19, 59, 0), 0, 120, None),               # alive until 20:01
    ((20, 30, 0), 0, 0, None),                 # after the post-market closed
    ((20, 30, 1), 0, 99999, "ALL"),            # system hours: every session the venue has
]


def _day(cases) -> DayBuilder:
    b = DayBuilder(start_hms=(0, 0, 0))
    b.session_start()
    for i, ((h, m, s), ns, tif, _) in enumerate(cases):
        when = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc) + dt.timedelta(hours=h + 5, minutes=m, seconds=s)
        b.now = int(when.timestamp()) * 10**9 - 10**6
        b.clock_sample()
        b.now += 10**6 + ns
        b.enter(f"S{i}", 1, "B", 1_499_900, 100, tif=tif)
    return b


def test_trading_session_is_the_span_of_sessions_the_order_lives_in(tmp_path):
    b = _day(CASES)
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "cat", "order_events").to_pylist()
    wanted = {f"S{i}": name for i, (*_, name) in enumerate(CASES) if name}
    for kind in ("MENO", "MEOR"):
        assert {r["orderID"]: r["tradingSession"] for r in rows if r["type"] == kind} == wanted, kind
    files = sorted((tmp_path / "o" / "cat" / cat_json.DIRECTORY).glob("*_OrderEvents_*[0-9].json"))
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert {e["orderID"]: e["tradingSession"] for e in lines if e["type"] == "MENO"} == wanted
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    sent = {r["orderID"]: r["seq"] for r in rows if r["type"] == "MENO"}
    assert len(rejects) == 2 * 3                          # the three orders, MENO and MEOR each
    assert all(r["field"] == "tradingSession" and r["reason"] == cat.NO_SESSION for r in rejects)
    assert not {r["seq"] for r in rejects} & set(sent.values())
    assert "04:00-20:00 ET" in cat.NO_SESSION and "extended hours" in cat.NO_SESSION


def test_the_extended_hours_are_four_to_eight_eastern():
    assert (cat.PRE_OPEN_S, cat.REGULAR_OPEN_S, cat.REGULAR_CLOSE_S, cat.POST_CLOSE_S) == \
        (4 * 3600, 9 * 3600 + 1800, 16 * 3600, 20 * 3600)
    assert set(cat.TRADING_SESSIONS) == {"ALL", "REG", "PRE", "PREREG", "REGPOST", "POST"}   # no PREPOST, FOR


_SPANS = {("PRE", "PRE"): "PRE", ("PRE", "REG"): "PREREG", ("PRE", "POST"): "ALL", ("REG", "REG"): "REG",
          ("REG", "POST"): "REGPOST", ("POST", "POST"): "POST"}


def _session_at(ns_of_day: int) -> str | None:
    hour = 3600 * 10**9
    if 4 * hour <= ns_of_day < 9 * hour + hour // 2:
        return "PRE"
    if 9 * hour + hour // 2 <= ns_of_day < 16 * hour:
        return "REG"
    if 16 * hour <= ns_of_day < 20 * hour:
        return "POST"
    return None


def sessions_from_stamp_digits(tif, stamps):
    """tradingSession as read from the CAT timestamp text itself (HHMMSS and its nine fraction
    digits), row by row: the session of the order's first instant and of its last."""
    import numpy as np
    out = []
    for row, force in zip(stamps, np.asarray(tif, np.int64).tolist()):
        text = bytes(row).decode()
        start = ((int(text[9:11]) * 60 + int(text[11:13])) * 60 + int(text[13:15])) * 10**9 + int(text[16:25])
        if force in (cat.SYSTEM_HOURS, cat.MARKET_HOURS):
            name = "ALL" if force == cat.SYSTEM_HOURS else "REG"
        else:
            first = _session_at(start)
            last = first if force == 0 else _session_at(start + force * 10**9 - 1)
            name = _SPANS.get((first, last))
        out.append(cat.TRADING_SESSIONS.index(name) if name else -1)
    return np.array(out, np.int8)


@pytest.mark.parametrize("seed", [7, 8])
def test_the_session_is_the_one_the_timestamp_text_shows(seed):
    """Taken from the Eastern time as a number, the sessions are those the row's CAT timestamp
    prints (before 1970 and across DST changes too), at every session bound, to the nanosecond."""
    import numpy as np
    from reports import orderjoin, timetext
    rng = np.random.default_rng(seed)
    day = 86_400 * 10**9
    bounds = np.array([cat.PRE_OPEN_S, cat.REGULAR_OPEN_S, cat.REGULAR_CLOSE_S, cat.POST_CLOSE_S], np.int64) * 10**9
    near = (bounds[:, None] + np.array([-10**9, -1, 0, 1, 10**9 // 2, 10**9])).ravel()
    utc = np.concatenate([
        1_772_461_800 * 10**9 + rng.integers(-400 * day, 400 * day, 5_000),
        rng.integers(-(2**61), 2**61, 500),
        1_772_409_600 * 10**9 + 5 * 3600 * 10**9 + near,                  # 2026-03-02 (EST)
        1_782_864_000 * 10**9 + 4 * 3600 * 10**9 + near])                 # 2026-07-01 (EDT)
    tif = rng.choice([0, 1, 2, 60, 600, 3600, 23_400, 43_200, 57_600, cat.MARKET_HOURS, cat.SYSTEM_HOURS],
                     len(utc))
    local = timetext.eastern_local_ns(utc)
    got = cat._trading_sessions(tif, local)
    assert np.array_equal(got, sessions_from_stamp_digits(tif, orderjoin.cat_timestamps(local)))
    assert {cat.TRADING_SESSIONS[i] for i in got[got >= 0]} == set(cat.TRADING_SESSIONS) and (got < 0).any()
