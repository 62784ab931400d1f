"""CAT times a venue answer a crash recovery journaled (at the recovery's clock, ts_source USER,
seconds or a day after the venue acted) by the venue's own OUCH timestamp: the eventTimestamp of
its MEOC (Canceled) or MEOM (Replaced, Order Modified), and with it the row's Eastern date (the
trade_date partition, firmROEID, --date and the submission file). The firm's own events (MENO, MEOR,
MEMR, MECR: its send times) and a venue answer the live runner journaled keep the journal's time;
event_time_source says which a row has."""
import datetime as dt
import json
from zoneinfo import ZoneInfo

from journal.catalogue import RecordType, TsSource
from reports import cat_json
from reports.run import run
from reports.source import Selection
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
from tests.reports.test_recovered_times import _recovered_fill
from tests.reports.test_recovered_venue_times import _recovered_answers

NS = 1_000_000_000
DAY = dt.date(2026, 3, 2)
NEW_YORK = ZoneInfo("America/New_York")
JOURNAL, VENUE = "JOURNAL_RECORD", "VENUE_EVENT_TIMESTAMP"


def _cat_ts(utc_ns: int) -> str:
    """CAT eventTimestamp text of a UTC time: Eastern Time, YYYYMMDD HHMMSS.CCCNNNNNN."""
    t = dt.datetime.fromtimestamp(utc_ns // NS, NEW_YORK)
    return t.strftime("%Y%m%d %H%M%S.") + f"{utc_ns % NS:09d}"


def _cat(tmp_path, b: DayBuilder, selection: Selection | None = None) -> list[dict]:
    args = (selection,) if selection is not None else ()
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", *args, refdata_dir=FIXTURE_REFDATA)
    return read(tmp_path / "o", "cat", "order_events").sort_by("seq").to_pylist()


def _timed(rows: list[dict], order: str) -> list[tuple]:
    return [(r["type"], r["eventTimestamp"], r["event_time_source"]) for r in rows if r["orderID"] == order]


def _missed(b: DayBuilder, script) -> list:
    """The venue messages `script(b)` sends while the engine is down: none is journaled then (the
    venue stamps them at b.now); returned for _recover."""
    held = []
    b._venue = lambda msg, source=TsSource.HW_PHC: held.append(msg)
    try:
        script(b)
    finally:
        del b._venue                # the class's again
    return held


def _recover(b: DayBuilder, held: list, delay_ns: int, mid_session: bool = False) -> None:
    """A reconciliation `delay_ns` later that journals `held` at its own clock (ts_source USER)
    between its RECON begin and outcome: a crash recovery's, or the live runner's (`mid_session`)."""
    b.advance(delay_ns)
    begin = {"kind": "begin", "reconciled": False, "requested_sequence": 4}
    b.json_record(RecordType.RECON, {**begin, "mid_session": True} if mid_session else begin)
    for msg in held:
        b._venue(msg, TsSource.USER)
    b.advance(1_000_000)
    b.json_record(RecordType.RECON, {"kind": "outcome", "reconciled": True, "reasons": []})


def _order(day: dt.date = DAY, hms: tuple = (14, 30, 0), token: str = "K1", qty: int = 500) -> DayBuilder:
    b = DayBuilder(day=day, start_hms=hms)
    b.session_start()
    b.clock_sample()
    b.enter(token, 1, "B", 1_500_000, qty)
    b.sent_at = [b.now]
    b.advance(10_000); b.accept(token)
    return b


def test_a_cancel_a_recovery_journaled_is_a_meoc_at_the_venues_time(tmp_path):
    """The venue's Canceled 20 us after the firm's Cancel, journaled by the recovery 2 s later: the
    MEOC is at the venue's time; the MENO, MEOR and MECR keep the firm's send times."""
    b = _recovered_fill(DAY, (14, 30, 0), 3 * NS)
    sent_at = b.now + 1_000_000                    # _recovered_answers: K2 entered 1 ms on, cancelled 1 ms later
    _recovered_answers(b)
    rows = _cat(tmp_path, b)
    canceled_at = b.answers_at[1]
    assert _timed(rows, "K2") == [("MENO", _cat_ts(sent_at), JOURNAL), ("MEOR", _cat_ts(sent_at), JOURNAL),
                                  ("MECR", _cat_ts(sent_at + 1_020_000), JOURNAL),
                                  ("MEOC", _cat_ts(canceled_at), VENUE)]


def test_a_replace_and_a_modify_a_recovery_journaled_are_meoms_at_the_venues_time(tmp_path):
    """The firm sends a Replace, then the engine dies; the venue's Replaced and, after the firm's
    Modify, its Order Modified are journaled by recoveries 5 s and 1 h later: each MEOM is at the
    venue's time, each MEMR at the firm's send time."""
    b = _order()
    b.advance(1_000_000); b.replace("K1", "K2", 1_499_900, 400)
    replace_sent = b.now
    held = _missed(b, lambda b: (b.advance(15_000), b.replaced("K1", "K2")))
    replaced_at = b.now
    _recover(b, held, 5 * NS)
    b.advance(1_000_000); b.modify("K2", "B", 300)
    modify_sent = b.now
    held = _missed(b, lambda b: (b.advance(25_000), b.modified("K2", "B", 300)))
    modified_at = b.now
    _recover(b, held, 3_600 * NS)
    rows = _cat(tmp_path, b)
    assert [(r["type"], r["eventTimestamp"], r["event_time_source"]) for r in rows if r["type"] in ("MEMR", "MEOM")] == [
        ("MEMR", _cat_ts(replace_sent), JOURNAL), ("MEOM", _cat_ts(replaced_at), VENUE),
        ("MEMR", _cat_ts(modify_sent), JOURNAL), ("MEOM", _cat_ts(modified_at), VENUE)]
    # the replaced order's key date stays the firm's Enter: not moved with the venue's time
    assert [(r["orderID"], r["priorOrderID"], r["priorOrderKeyDate"], r["eventTimestamp"])
            for r in rows if r["type"] == "MEOM"] == [("K2", "K1", _cat_ts(b.sent_at[0]), _cat_ts(replaced_at)),
                                                      ("K2", None, None, _cat_ts(modified_at))]


def test_live_venue_answers_keep_the_time_they_were_journaled(tmp_path):
    """A Canceled the live runner journals (NIC timestamp), and one a mid-session reconciliation
    journals later at its clock (the runner was up: that is its receipt, no crash recovery's) keep
    the journal's time, beside a crash recovery's answer timed by the venue."""
    b = _order(token="L1", qty=100)
    b.enter("L2", 1, "B", 1_500_000, 100); b.advance(10_000); b.accept("L2")
    b.enter("L3", 1, "B", 1_500_000, 100); b.advance(10_000); b.accept("L3")
    b.advance(1_000_000); b.cancel("L1")
    b.advance(20_000); b.canceled("L1", 100)
    live_at = b.now
    b.advance(1_000_000); b.cancel("L2")
    held = _missed(b, lambda b: (b.advance(20_000), b.canceled("L2", 100)))
    _recover(b, held, 2 * NS, mid_session=True)
    mid_session_at = b.now - 1_000_000
    b.advance(1_000_000); b.cancel("L3")
    held = _missed(b, lambda b: (b.advance(20_000), b.canceled("L3", 100)))
    venue_at = b.now
    _recover(b, held, 2 * NS)
    rows = _cat(tmp_path, b)
    assert [(r["orderID"], r["eventTimestamp"], r["event_time_source"]) for r in rows if r["type"] == "MEOC"] == [
        ("L1", _cat_ts(live_at), JOURNAL), ("L2", _cat_ts(mid_session_at), JOURNAL), ("L3", _cat_ts(venue_at), VENUE)]


def test_a_cancel_recovered_after_eastern_midnight_is_reported_on_its_venue_day(tmp_path):
    """The venue cancels at 23:59:59.5 ET on the 2nd (04:59:59.5 UTC on the 3rd), the recovery
    journals it at 00:00:02.5 ET on the 3rd: the MEOC is the 2nd's (trade_date, firmROEID, --date,
    the submission file), with the order's other events."""
    b = _order(dt.date(2026, 3, 3), (4, 59, 59))
    b.advance(1_000_000); b.cancel("K1")
    held = _missed(b, lambda b: (b.advance(500_000_000 - 1_010_000), b.canceled("K1", 500)))
    canceled_at = b.now
    _recover(b, held, 3 * NS)
    rows = _cat(tmp_path, b, Selection(trade_date=DAY))
    assert [(r["type"], r["trade_date"], r["firmROEID"][:9]) for r in rows] == [
        ("MENO", "2026-03-02", "20260302_"), ("MEOR", "2026-03-02", "20260302_"),
        ("MECR", "2026-03-02", "20260302_"), ("MEOC", "2026-03-02", "20260302_")]
    assert rows[-1]["eventTimestamp"] == _cat_ts(canceled_at) == "20260302 235959.500000000"
    submission = tmp_path / "o" / "cat" / cat_json.DIRECTORY
    lines = [json.loads(line) for p in sorted(submission.glob("*_20260302_*OrderEvents_000001.json"))
             for line in p.read_text().splitlines()]
    assert [e["type"] for e in lines] == ["MENO", "MEOR", "MECR", "MEOC"]
    # the next Eastern day has none of them
    run(["cat"], tmp_path / "j", tmp_path / "next", Selection(trade_date=dt.date(2026, 3, 3)),
        refdata_dir=FIXTURE_REFDATA)
    assert not (tmp_path / "next" / "cat" / "order_events").exists()      # no rows: no Parquet
