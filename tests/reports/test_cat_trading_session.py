"""CAT tradingSession from the OUCH time in force and the event's Eastern time: ALL for system hours
(99999), REG for market hours (99998) and for an IOC or timed order living inside 09:30-16:00 ET;
an order trading only in a pre- or post-market session is rejected (its code unconfirmed), never
labelled REG."""
from reports import cat
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def test_trading_session_follows_the_time_in_force_and_the_eastern_time(tmp_path):
    b = DayBuilder(start_hms=(15, 0, 0))             # 10:00 ET (EST, UTC-5)
    b.session_start(); b.clock_sample()
    b.enter("SYS", 1, "B", 1_499_900, 100, tif=99999)
    b.advance(10_000); b.enter("MKT", 1, "B", 1_499_900, 100, tif=99998)
    b.advance(10_000); b.enter("IOC", 1, "B", 1_499_900, 100, tif=0)
    b.advance(10_000); b.enter("T60", 1, "B", 1_499_900, 100, tif=60)
    b.advance(5 * 3600 * 10**9 + 55 * 60 * 10**9)    # 15:55 ET
    b.clock_sample()
    b.enter("T600", 1, "B", 1_499_900, 100, tif=600)     # lives past 16:00
    b.advance(10_000); b.enter("LATE_SYS", 1, "B", 1_499_900, 100, tif=99999)
    b.advance(3 * 3600 * 10**9 + 4 * 60 * 10**9 + 59 * 10**9)   # 18:59:59 ET
    b.clock_sample()
    b.enter("EVE", 1, "B", 1_499_900, 100, tif=0)         # an IOC in the post-market session
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "cat", "order_events").to_pylist()
    got = {r["orderID"]: r["tradingSession"] for r in rows if r["type"] == "MENO"}
    assert got == {"SYS": "ALL", "MKT": "REG", "IOC": "REG", "T60": "REG", "LATE_SYS": "ALL"}
    assert {r["tradingSession"] for r in rows if r["type"] == "MEOR"} == {"ALL", "REG"}
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    rejected = {r["seq"] for r in rejects}
    assert len(rejected) == 2                             # T600 and EVE (MENO and MEOR each), nothing else
    assert {r["seq"] for r in rejects if r["reason"] == cat.UNKNOWN_SESSION} == rejected


def sessions_from_stamp_digits(tif, stamps):
    """tradingSession as read from the HHMMSS digits of the CAT timestamp text itself."""
    import numpy as np
    digits = stamps[:, 9:15].astype(np.int64) - ord("0")
    second = (digits[:, 0] * 10 + digits[:, 1]) * 3600 + (digits[:, 2] * 10 + digits[:, 3]) * 60 \
        + digits[:, 4] * 10 + digits[:, 5]
    tif = np.asarray(tif, np.int64)
    regular = (second >= cat.REGULAR_OPEN_S) & (second < cat.REGULAR_CLOSE_S) & (second + tif <= cat.REGULAR_CLOSE_S)
    out = np.where(regular, 1, -1).astype(np.int8)
    out[tif == cat.MARKET_HOURS] = 1
    out[tif == cat.SYSTEM_HOURS] = 0
    return out


def test_the_session_second_is_the_one_the_timestamp_text_shows():
    """Taken from the Eastern time as a number, the second of the day is the one the row's CAT
    timestamp prints (before 1970 and across DST changes too), at the session bounds included."""
    import numpy as np
    from reports import orderjoin, timetext
    rng = np.random.default_rng(7)
    day = 86_400 * 10**9
    bounds = np.array([cat.REGULAR_OPEN_S, cat.REGULAR_CLOSE_S], np.int64) * 10**9
    utc = np.concatenate([
        1_772_461_800 * 10**9 + rng.integers(-400 * day, 400 * day, 5_000),
        rng.integers(-(2**61), 2**61, 500),
        (1_772_409_600 * 10**9 + 5 * 3600 * 10**9 + bounds[:, None] + np.arange(-2, 3) * 10**9 // 2).ravel()])
    tif = rng.choice([0, 1, 60, 600, 23_400, cat.MARKET_HOURS, cat.SYSTEM_HOURS], len(utc))
    local = timetext.eastern_local_ns(utc)
    assert np.array_equal(cat._trading_sessions(tif, local),
                          sessions_from_stamp_digits(tif, orderjoin.cat_timestamps(local)))
