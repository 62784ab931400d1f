"""RTS 22 field 28 (trading date time), the trade date and --date of an execution that a crash
recovery journaled: the venue's own execution time (the OUCH Executed timestamp, from midnight New
York of the session date), not the recovery's clock when it journaled the message, and labelled so."""
import datetime as dt

import pytest

from journal.catalogue import RecordType, TsSource
from mm_core.protocol import ouch
from reports.rts22 import COLUMNS, TIME_SOURCE
from reports.run import run
from reports.source import Selection
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder

NS = 1_000_000_000


def _recovered_fill(day: dt.date, hms: tuple, delay_ns: int, before=None, after=None) -> DayBuilder:
    """An order accepted, a live fill of 100, the engine killed; a fill of 200 at the venue
    0.4 s later that a recovery journals `delay_ns` after it (its clock, ts_source USER), between
    its RECON begin and outcome; then the live session again with a fill of its own. `before(b)`
    journals what comes before the order is sent, `after(b)` what the live engine journals after
    the venue's fill (its Executed then lost, e.g. with a torn tail) and before the delay."""
    b = DayBuilder(day=day, start_hms=hms)
    b.session_start()
    b.clock_sample()
    if before is not None:
        before(b)
    b.enter("K1", 1, "B", 1_500_000, 500)
    b.advance(10_000); b.accept("K1")
    b.advance(10_000); b.execute("K1", 100)
    b.advance(400_000_000)                          # killed; the venue fills while the engine is down
    executed_at, stamp = b.now, b._venue_ts()
    if after is not None:
        after(b)
    b.advance(delay_ns)
    b.recovered_at = b.now
    b.json_record(RecordType.RECON, {"kind": "begin", "reconciled": False, "requested_sequence": 4})
    b.match += 1
    b._venue(ouch.Executed(timestamp=stamp, token="K1", executed_shares=200, execution_price=1_500_000,
                           liquidity_flag="A", match_number=b.match), TsSource.USER)
    b.advance(1_000_000)
    b.json_record(RecordType.RECON, {"kind": "outcome", "reconciled": True, "reasons": []})
    b.advance(1_000_000); b.execute("K1", 50)
    b.executed_at = executed_at
    return b


def _text(utc_ns: int) -> str:
    t = dt.datetime.fromtimestamp(utc_ns // NS, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc_ns % NS // 1000:06d}Z"


@pytest.mark.parametrize("day, hms", [(dt.date(2026, 3, 2), (14, 30, 0)),      # EST
                                      (dt.date(2026, 7, 1), (13, 30, 0))])     # EDT
def test_field_28_of_a_fill_recovery_journaled_is_the_venues_execution_time(tmp_path, day, hms):
    b = _recovered_fill(day, hms, 3 * NS)
    run(["rts22"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    assert [(r[COLUMNS[30]], r[TIME_SOURCE]) for r in rows] == [
        ("100", "JOURNAL_RECORD"), ("200", "VENUE_EXECUTION_TIMESTAMP"), ("50", "JOURNAL_RECORD")]
    assert rows[1][COLUMNS[28]] == _text(b.executed_at)


def test_a_fill_before_midnight_utc_recovered_after_it_stays_on_its_trade_date(tmp_path):
    """The fill at the venue at 23:59:59.4 UTC, while the engine is down (still the 2nd); the recovery
    journals it at 00:00:03 on the 3rd: filed under the 2nd, and selected by --date 2026-03-02."""
    b = _recovered_fill(dt.date(2026, 3, 2), (23, 59, 59), 3 * NS)
    journal = b.write(tmp_path / "j")
    run(["rts22"], journal, tmp_path / "o", Selection(trade_date=dt.date(2026, 3, 2)), refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    assert [(r[COLUMNS[30]], str(r["trade_date"])) for r in rows] == [("100", "2026-03-02"),
                                                                       ("200", "2026-03-02")]
    assert rows[1][COLUMNS[28]] == _text(b.executed_at) and rows[1][COLUMNS[28]].startswith("2026-03-02T23:59:59.")


def test_a_break_of_a_recovered_fill_cancels_it_at_its_venue_time(tmp_path):
    b = _recovered_fill(dt.date(2026, 3, 2), (14, 30, 0), 5 * NS)
    b.advance(1_000_000); b.broken("K1", b.match - 1)          # the recovered fill's match
    run(["rts22"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    canc = [r for r in rows if r[COLUMNS[1]] == "CANC"]
    assert [(r[COLUMNS[28]], r[TIME_SOURCE]) for r in canc] == [(_text(b.executed_at), "VENUE_EXECUTION_TIMESTAMP")]
