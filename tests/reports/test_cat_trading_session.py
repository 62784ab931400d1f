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
