"""The orders report and Rule 605 time a venue message a crash recovery journaled by the venue's own
OUCH timestamp (an Executed's is its execution time), not the recovery's clock when it journaled it,
and say which time each row has; the record's receipt stays in ts_recorded_ns. Rule 605's time to
execution and quote at execution of such a fill are those of the venue's time, the quote from the
journal's market data, which holds none while the engine was down."""
import datetime as dt
from decimal import Decimal

from journal.catalogue import RecordType, TsSource
from mm_core.protocol import ouch
from reports.run import run
from reports.source import Selection
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
from tests.reports.test_recovered_times import _recovered_fill

NS = 1_000_000_000
DAY = dt.date(2026, 3, 2)


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // NS, dt.timezone.utc).replace(microsecond=ns % NS // 1000)


def _orders(tmp_path, b: DayBuilder, selection: Selection | None = None) -> list[dict]:
    args = (selection,) if selection is not None else ()
    run(["orders"], b.write(tmp_path / "j"), tmp_path / "o", *args, refdata_dir=FIXTURE_REFDATA)
    return read(tmp_path / "o", "orders", "order_events").sort_by("seq").to_pylist()


def test_an_execution_a_recovery_journaled_has_the_venues_time_in_the_orders_report(tmp_path):
    b = _recovered_fill(DAY, (14, 30, 0), 3 * NS)
    rows = _orders(tmp_path, b)
    fills = [r for r in rows if r["event_type"] == "EXECUTED"]
    assert [(r["exec_qty"], r["rts24_event"], r["event_time_source"]) for r in fills] == [
        (100, "PARF", "JOURNAL_RECORD"), (200, "PARF", "VENUE_EXECUTION_TIMESTAMP"), (50, "PARF", "JOURNAL_RECORD")]
    live, recovered, after = fills
    assert recovered["event_time_utc"] == _utc(b.executed_at)          # the venue's, not 3 s later
    assert recovered["ts_source"] == "USER" and recovered["ts_recorded_ns"] == b.recovered_at   # the receipt, kept
    assert live["event_time_utc"] == _utc(live["ts_recorded_ns"] - 37 * NS)      # PHC (TAI) less the offset
    assert {r["event_time_source"] for r in rows if r["event_type"] != "EXECUTED"} == {"JOURNAL_RECORD"}


def _recovered_answers(b: DayBuilder) -> None:
    """After the recovered fill's RECON: a second recovery that journals, 2 s after the venue
    sent them, the acceptance and the cancel of an order the engine had sent before it died."""
    b.advance(1_000_000)
    b.enter("K2", 1, "S", 1_501_000, 300)
    b.advance(20_000)
    accepted_at, accepted_stamp = b.now, b._venue_ts()
    b.advance(1_000_000); b.cancel("K2")
    b.advance(20_000)
    canceled_at, canceled_stamp = b.now, b._venue_ts()
    b.advance(2 * NS)
    b.json_record(RecordType.RECON, {"kind": "begin", "reconciled": False, "requested_sequence": 9})
    b.order_ref += 1
    b._venue(ouch.Accepted(timestamp=accepted_stamp, token="K2", side="S", shares=300, stock="AAPL",
                           price=1_501_000, time_in_force=99999, firm="MMAU", display="Y", order_ref=b.order_ref,
                           capacity="P", intermarket_sweep="N", minimum_quantity=0, cross_type="N",
                           order_state="L", bbo_weight=" "), TsSource.USER)
    b._venue(ouch.Canceled(timestamp=canceled_stamp, token="K2", decrement_shares=300, reason="U"), TsSource.USER)
    b.advance(1_000_000)
    b.json_record(RecordType.RECON, {"kind": "outcome", "reconciled": True, "reasons": []})
    b.answers_at = (accepted_at, canceled_at)


def test_other_venue_answers_a_recovery_journaled_have_the_venues_time_of_their_event(tmp_path):
    b = _recovered_fill(DAY, (14, 30, 0), 3 * NS)
    _recovered_answers(b)
    rows = [r for r in _orders(tmp_path, b) if r["order_id"] == "K2"]
    assert [(r["event_type"], r["rts24_event"], r["event_time_source"]) for r in rows] == [
        ("SENT_NEW", "NEWO", "JOURNAL_RECORD"), ("SENT_CANCEL", None, "JOURNAL_RECORD"),
        ("ACCEPTED", None, "VENUE_EVENT_TIMESTAMP"), ("CANCELED", "CAME", "VENUE_EVENT_TIMESTAMP")]
    assert [r["event_time_utc"] for r in rows[2:]] == [_utc(t) for t in b.answers_at]
    assert all(r["ts_recorded_ns"] > r["event_time_utc"].timestamp() * NS + NS for r in rows[2:])


def test_an_orders_row_recovered_after_midnight_utc_stays_on_its_trade_date(tmp_path):
    """The fill at the venue at 23:59:59.4 UTC, journaled by the recovery at 00:00:03 on the 3rd:
    its row is filed under the 2nd and selected by --date 2026-03-02."""
    b = _recovered_fill(DAY, (23, 59, 59), 3 * NS)
    rows = _orders(tmp_path, b, Selection(trade_date=DAY))
    fills = [r for r in rows if r["event_type"] == "EXECUTED"]
    assert [(r["exec_qty"], str(r["trade_date"])) for r in fills] == [(100, "2026-03-02"), (200, "2026-03-02")]


# -- Rule 605 --------------------------------------------------------------------------------------
QUOTE_AT_ORDER = ((1, 1_499_800, 500), (2, 1_500_200, 500))       # AAPL 149.98 x 150.02
QUOTE_LATER = ((11, 1_500_400, 500), (12, 1_500_800, 500))         # 150.04 x 150.08


def _quote_at_order(b: DayBuilder) -> None:
    b.quote(1, *QUOTE_AT_ORDER)


def _quote_after_fill(b: DayBuilder) -> None:
    """The live engine journals a new quote 0.1 s after the venue's fill, then dies (its Executed
    lost): the quote at the fill's time is the one before it, and the journal holds both."""
    b.advance(100_000_000)
    b.quote(1, *QUOTE_LATER, delete=(1, 2))


def _fills(tmp_path, b: DayBuilder) -> tuple[list[dict], dict]:
    b.advance(1_000_000)
    b.quote(1, (21, 1_500_000, 500), (22, 1_501_000, 500), delete=(11, 12) if b.md_seq > 2 else (1, 2))
    run(["execution-quality"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    fills = read(tmp_path / "o", "execution-quality", "fills").sort_by("seq").to_pylist()
    coverage = {r["measure"]: r["count"] for r in read(tmp_path / "o", "execution-quality", "quote_coverage").to_pylist()}
    return fills, coverage


def test_rule_605_times_a_fill_a_recovery_journaled_and_its_quote_by_the_venues_execution_time(tmp_path):
    """The recovery journals the fill 30 s after the venue executed it (0.4 s after the order):
    its time to execution is 0.4 s (under 10 s), not 30 s, and its quote at execution the one in
    force then (149.98 x 150.02), not the one the journal held when the recovery wrote it."""
    b = _recovered_fill(DAY, (14, 30, 0), 30 * NS, before=_quote_at_order, after=_quote_after_fill)
    fills, coverage = _fills(tmp_path, b)
    assert [(f["exec_qty"], f["exec_time_source"]) for f in fills] == [
        (100, "JOURNAL_RECORD"), (200, "VENUE_EXECUTION_TIMESTAMP"), (50, "JOURNAL_RECORD")]
    live, recovered, _ = fills
    assert recovered["exec_time_utc"] == _utc(b.executed_at)
    # sent, accepted 10 us later, a live fill 10 us after that, the venue's fill 0.4 s after it
    assert recovered["time_to_execution_ns"] == 400_020_000 and recovered["time_to_execution_bucket"] == "lt_10s"
    assert (recovered["nbb_at_exec"], recovered["nbo_at_exec"]) == (Decimal("149.9800"), Decimal("150.0200"))
    assert coverage["recovered_fills_at_venue_time"] == 1 and coverage["recovered_fills_without_quote_at_exec"] == 0
    summary, = read(tmp_path / "o", "execution-quality", "summary").to_pylist()
    # the live fills 20 us and (after the restart) 30.4 s after the order; the recovered one 0.4 s after it
    assert summary["shares_tte_lt_10s"] == 300 and summary["shares_tte_30s_60s"] == 50


def test_rule_605_leaves_the_quote_of_a_fill_while_the_engine_was_down_unknown(tmp_path):
    """The venue fills after the last quote the live engine journaled: the quote then is not in the
    journal (the engine missed the market data while down), so it is null and counted, never the
    last quote before the crash."""
    b = _recovered_fill(DAY, (14, 30, 0), 30 * NS, before=_quote_at_order)
    fills, coverage = _fills(tmp_path, b)
    live, recovered, _ = fills
    assert recovered["exec_time_source"] == "VENUE_EXECUTION_TIMESTAMP"
    assert recovered["nbb_at_exec"] is None and recovered["nbo_at_exec"] is None
    assert (live["nbb_at_exec"], live["nbo_at_exec"]) == (Decimal("149.9800"), Decimal("150.0200"))
    assert coverage["recovered_fills_at_venue_time"] == 1 and coverage["recovered_fills_without_quote_at_exec"] == 1
