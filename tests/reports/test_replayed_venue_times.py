"""A venue message a login's replay brought (the runner lost its order entry and logged in again:
the venue sends every message it missed right after the LoginAccepted) is timed by the venue's own
OUCH timestamp in the orders report, RTS 22 and Rule 605, as one a crash recovery journaled: it was
made before that connection existed, and its receipt is seconds later. Messages after a login that
the venue made after it keep their receipt, the first login's included."""
import datetime as dt

from journal.catalogue import TsSource
from mm_core.protocol import ouch
from reports.rts22 import COLUMNS, TIME_SOURCE
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
from tests.reports.test_recovered_times import _text
from tests.reports.test_recovered_venue_times import _utc

NS = 1_000_000_000
DAY = dt.date(2026, 3, 2)


def _replayed_fill(source: TsSource = TsSource.HW_PHC) -> DayBuilder:
    """Logged in, an order accepted and filled 100 live; the order entry lost; the venue fills 200
    0.4 s later; 2 s after that the runner logs in again and the replay brings that fill; then a
    live fill of 50."""
    b = DayBuilder(day=DAY, start_hms=(14, 30, 0))
    b.session_start()
    b.clock_sample()
    b.login_accepted(1, source)
    b.advance(1_000_000)
    b.enter("K1", 1, "B", 1_500_000, 500)
    b.advance(10_000); b.accept("K1", source)
    b.advance(10_000); b.execute("K1", 100, source=source)
    b.advance(400_000_000)                  # the order entry is down; the venue fills meanwhile
    b.executed_at, stamp = b.now, b._venue_ts()
    b.advance(2 * NS)
    b.login_accepted(3, source)
    b.advance(20_000)
    b.match += 1
    b._venue(ouch.Executed(timestamp=stamp, token="K1", executed_shares=200, execution_price=1_500_000,
                           liquidity_flag="A", match_number=b.match), source)
    b.replayed_at = b.now
    b.advance(1_000_000); b.execute("K1", 50, source=source)
    return b


def _report(tmp_path, b: DayBuilder, kind: str, table: str) -> list[dict]:
    run([kind], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    return read(tmp_path / "o", kind, table).sort_by("seq").to_pylist()


def test_a_fill_a_login_replayed_has_the_venues_time_in_the_orders_report(tmp_path):
    b = _replayed_fill()
    rows = _report(tmp_path, b, "orders", "order_events")
    fills = [r for r in rows if r["event_type"] == "EXECUTED"]
    assert [(r["exec_qty"], r["event_time_source"]) for r in fills] == [
        (100, "JOURNAL_RECORD"), (200, "VENUE_EXECUTION_TIMESTAMP"), (50, "JOURNAL_RECORD")]
    live, replayed, after = fills
    assert replayed["event_time_utc"] == _utc(b.executed_at)          # the venue's, not 2 s later
    assert replayed["ts_recorded_ns"] == b.replayed_at + 37 * NS       # the receipt (PHC, TAI), kept
    assert after["event_time_utc"] == _utc(after["ts_recorded_ns"] - 37 * NS)
    # the acceptance came after the first login was received: its receipt stands
    assert {r["event_time_source"] for r in rows if r["event_type"] != "EXECUTED"} == {"JOURNAL_RECORD"}


def test_a_software_stamped_replay_is_found_the_same_way(tmp_path):
    """The login and the replay stamped by the kernel's software clock (UTC already)."""
    b = _replayed_fill(TsSource.SW_KERNEL)
    fills = [r for r in _report(tmp_path, b, "orders", "order_events") if r["event_type"] == "EXECUTED"]
    assert [r["event_time_source"] for r in fills] == ["JOURNAL_RECORD", "VENUE_EXECUTION_TIMESTAMP", "JOURNAL_RECORD"]
    assert fills[1]["event_time_utc"] == _utc(b.executed_at)


def test_rts22_and_rule_605_time_a_replayed_fill_by_the_venue(tmp_path):
    b = _replayed_fill()
    journal = b.write(tmp_path / "j")
    run(["rts22"], journal, tmp_path / "o1", refdata_dir=FIXTURE_REFDATA)
    rts22 = read(tmp_path / "o1", "rts22", "transactions").to_pylist()
    assert [(r[COLUMNS[30]], r[TIME_SOURCE]) for r in rts22] == [
        ("100", "JOURNAL_RECORD"), ("200", "VENUE_EXECUTION_TIMESTAMP"), ("50", "JOURNAL_RECORD")]
    assert rts22[1][COLUMNS[28]] == _text(b.executed_at)
    run(["execution-quality"], journal, tmp_path / "o2", refdata_dir=FIXTURE_REFDATA)
    fills = read(tmp_path / "o2", "execution-quality", "fills").sort_by("seq").to_pylist()
    assert [(f["exec_qty"], f["exec_time_source"]) for f in fills] == [
        (100, "JOURNAL_RECORD"), (200, "VENUE_EXECUTION_TIMESTAMP"), (50, "JOURNAL_RECORD")]
    assert fills[1]["exec_time_utc"] == _utc(b.executed_at)
