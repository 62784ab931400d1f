"""A venue's OUCH Broken Trade: the RTS 22 transaction already reported for the execution is
cancelled (a CANC row with the original TRN, and <Cxl> in auth.016), and the execution leaves the
Rule 605 statistics. Journals written through the journal API, Parquet read back with pyarrow."""
import xml.etree.ElementTree as ET

from reports import auth016
from reports.rts22 import COLUMNS
from reports.run import run
from reports.source import Selection
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, NS, DayBuilder

NS_A = {"a": auth016.NS_AUTH16}


def _day_with_a_break(break_seen: bool = True) -> DayBuilder:
    b = DayBuilder()
    b.clock_sample()
    b.quote(1, (1, 1_499_800, 500), (2, 1_500_200, 500))
    b.enter("K1", 1, "B", 1_500_000, 300)
    b.advance(40_000); b.accept("K1")
    b.advance(2_000_000); b.execute("K1", 100)          # match 1001: broken below
    b.advance(1_000_000); b.execute("K1", 200)          # match 1002: stands
    b.advance(3 * NS)
    b.clock_sample()
    if break_seen:
        b.broken("K1", 1001)
    return b


def _cancellations(xml: bytes) -> list[ET.Element]:
    return ET.fromstring(xml).findall(".//a:FinInstrmRptgTxRpt/a:Tx/a:Cxl", NS_A)


def test_a_broken_trade_cancels_its_transaction_report(tmp_path):
    b = _day_with_a_break()
    out = tmp_path / "o"
    result = run(["rts22"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    assert result.rejected == 0
    rows = read(out, "rts22", "transactions").to_pylist()
    newt = {r[COLUMNS[3]]: r for r in rows if r[COLUMNS[1]] == "NEWT"}
    canc = [r for r in rows if r[COLUMNS[1]] == "CANC"]
    assert set(newt) == {"1001", "1002"} and len(canc) == 1
    c = canc[0]
    assert c[COLUMNS[2]] == newt["1001"][COLUMNS[2]] != newt["1002"][COLUMNS[2]]
    assert c["seq"] == len(b.records)                    # the Broken Trade's own record
    assert c[COLUMNS[3]] == "1001" and c[COLUMNS[28]] == newt["1001"][COLUMNS[28]]
    assert c[COLUMNS[4]] == newt["1001"][COLUMNS[4]] and c[COLUMNS[6]] == newt["1001"][COLUMNS[6]]
    assert all(c[COLUMNS[num]] is None for num in (7, 16, 30, 33, 36, 41, 57, 59))
    xml = (out / "rts22" / "auth016" / "trade_date=2026-03-02" / "auth016.xml").read_bytes()
    assert len(auth016.parse_transactions(xml)) == 2
    cxl = _cancellations(xml)
    assert [(x.findtext("a:TxId", namespaces=NS_A), x.findtext("a:ExctgPty", namespaces=NS_A),
             x.findtext("a:SubmitgPty", namespaces=NS_A)) for x in cxl] == \
        [(c[COLUMNS[2]], c[COLUMNS[4]], c[COLUMNS[6]])]


def test_a_range_starting_after_the_execution_still_cancels_the_original_reference(tmp_path):
    b = _day_with_a_break()
    j = b.write(tmp_path / "j")
    run(["rts22"], j, tmp_path / "all", refdata_dir=FIXTURE_REFDATA)
    whole = read(tmp_path / "all", "rts22", "transactions").to_pylist()
    original = next(r[COLUMNS[2]] for r in whole if r[COLUMNS[3]] == "1001" and r[COLUMNS[1]] == "NEWT")
    run(["rts22"], j, tmp_path / "late", Selection(first_seq=len(b.records)), refdata_dir=FIXTURE_REFDATA)
    late = read(tmp_path / "late", "rts22", "transactions").to_pylist()
    assert [(r[COLUMNS[1]], r[COLUMNS[2]]) for r in late] == [("CANC", original)]


def test_a_break_the_journal_cannot_tie_to_an_execution_or_repeated_is_rejected_with_its_reason(tmp_path):
    b = _day_with_a_break(break_seen=False)
    b.broken("K1", 7777)                                  # no execution with that match number
    b.broken("K1", 1002)
    b.broken("K1", 1002)                                  # the venue said it twice: one cancellation
    out = tmp_path / "o"
    result = run(["rts22"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    assert result.rejected == 2
    rejects = sorted(read(out, "rts22", "rejects").to_pylist(), key=lambda r: r["seq"])
    last = len(b.records)
    assert [(r["seq"], r["field"]) for r in rejects] == [(last - 2, COLUMNS[2]), (last, COLUMNS[2])]
    assert "7777" in rejects[0]["reason"] and "repeats" in rejects[1]["reason"]
    rows = read(out, "rts22", "transactions").to_pylist()
    assert sorted((r[COLUMNS[1]], r[COLUMNS[3]]) for r in rows) == [("CANC", "1002"), ("NEWT", "1001"), ("NEWT", "1002")]


def test_a_broken_execution_leaves_the_rule_605_statistics(tmp_path):
    b = _day_with_a_break()
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    summary = read(out, "execution-quality", "summary").to_pylist()
    assert [(r["executions"], r["shares_executed"]) for r in summary] == [(1, 200)]
    fills = {r["exec_qty"]: r for r in read(out, "execution-quality", "fills").to_pylist()}
    assert fills[100]["broken"] is True and fills[200]["broken"] is False     # kept, and said so
    coverage = {r["measure"]: r["count"] for r in read(out, "execution-quality", "quote_coverage").to_pylist()}
    assert coverage["broken_executions_excluded"] == 1


def test_a_break_on_the_next_day_is_cancelled_in_that_days_report(tmp_path):
    import datetime as dt
    b = _day_with_a_break(break_seen=False)
    b.advance(86_400 * NS)
    b.clock_sample()
    b.broken("K1", 1001)
    j = b.write(tmp_path / "j")
    for day, expected in ((dt.date(2026, 3, 2), [("NEWT", "1001"), ("NEWT", "1002")]),
                          (dt.date(2026, 3, 3), [("CANC", "1001")])):
        out = tmp_path / day.isoformat()
        assert run(["rts22"], j, out, Selection(trade_date=day), refdata_dir=FIXTURE_REFDATA).rejected == 0
        rows = read(out, "rts22", "transactions").to_pylist()
        assert sorted((r[COLUMNS[1]], r[COLUMNS[3]]) for r in rows) == expected
    first_day = read(tmp_path / "2026-03-02", "rts22", "transactions").to_pylist()
    cancel, = read(tmp_path / "2026-03-03", "rts22", "transactions").to_pylist()
    assert cancel[COLUMNS[2]] == next(r[COLUMNS[2]] for r in first_day if r[COLUMNS[3]] == "1001")
    xml = (tmp_path / "2026-03-03" / "rts22" / "auth016" / "trade_date=2026-03-03" / "auth016.xml").read_bytes()
    assert [x.findtext("a:TxId", namespaces=NS_A) for x in auth016.parse_transactions(xml, "Cxl")] == [cancel[COLUMNS[2]]]


def _break_of_an_unreported_execution() -> DayBuilder:
    """K1's execution 1001 is broken; K9's order names an algo the registry lacks, so the report of
    its execution 1003 is rejected, and the venue breaks that execution too."""
    b = _day_with_a_break(break_seen=False)
    b.enter("K9", 1, "S", 1_500_100, 100, algo=99)
    b.advance(40_000); b.accept("K9")
    b.advance(1_000_000); b.execute("K9", 100)          # match 1003: its NEWT is rejected
    b.advance(3 * NS)
    b.clock_sample()
    b.broken("K1", 1001)
    b.broken("K9", 1003)
    return b


def test_a_break_of_an_execution_whose_report_was_rejected_is_rejected_too(tmp_path):
    """A cancellation must refer to a transaction that was reported: the break of an execution whose
    NEWT row was rejected yields no CANC, but a reject naming why, counted."""
    b = _break_of_an_unreported_execution()
    j = b.write(tmp_path / "j")
    out = tmp_path / "o"
    result = run(["rts22"], j, out, refdata_dir=FIXTURE_REFDATA)
    rows = read(out, "rts22", "transactions").to_pylist()
    assert sorted((r[COLUMNS[1]], r[COLUMNS[3]]) for r in rows) == \
        [("CANC", "1001"), ("NEWT", "1001"), ("NEWT", "1002")]
    rejects = read(out, "rts22", "rejects").to_pylist()
    last = len(b.records)
    assert result.rejected == len(rejects) and sorted({r["seq"] for r in rejects}) == [last - 3, last]
    cancel = next(r for r in rejects if r["seq"] == last)
    assert cancel["field"] == COLUMNS[2] and "was rejected" in cancel["reason"] and "algo_id 99" in cancel["reason"]
    xml = (out / "rts22" / "auth016" / "trade_date=2026-03-02" / "auth016.xml").read_bytes()
    assert len(_cancellations(xml)) == 1


def test_the_break_is_rejected_in_a_range_or_day_that_does_not_hold_the_execution(tmp_path):
    """The execution's report belongs to an earlier range (or day): whether it was rejected is
    decided from the journal again, by the same checks."""
    import datetime as dt
    b = _break_of_an_unreported_execution()
    j = b.write(tmp_path / "j")
    last = len(b.records)
    late = tmp_path / "late"
    assert run(["rts22"], j, late, Selection(first_seq=last - 1), refdata_dir=FIXTURE_REFDATA).rejected == 1
    late_rows = read(late, "rts22", "transactions").to_pylist()
    assert [(r[COLUMNS[1]], r[COLUMNS[3]]) for r in late_rows] == [("CANC", "1001")]
    assert [(r["seq"], r["field"]) for r in read(late, "rts22", "rejects").to_pylist()] == [(last, COLUMNS[2])]
    c = DayBuilder()
    c.records = list(b.records[:-2])
    c.now = b.now
    c.advance(86_400 * NS)
    c.clock_sample()
    c.broken("K9", 1003)
    day2 = tmp_path / "day2"
    result = run(["rts22"], c.write(tmp_path / "j2"), day2, Selection(trade_date=dt.date(2026, 3, 3)),
                 refdata_dir=FIXTURE_REFDATA)
    assert result.rejected == 1 and result.results[0].rows.get("transactions", 0) == 0
    assert "was rejected" in read(day2, "rts22", "rejects").to_pylist()[0]["reason"]


def test_a_break_after_the_range_end_still_takes_the_execution_out_of_rule_605(tmp_path):
    """The range ends before the venue's Broken Trade: Broken Trades are read past the range end
    (up to the look-ahead horizon), and the coverage says through which sequence."""
    b = _day_with_a_break(break_seen=False)
    end = len(b.records)                       # the range: up to the clock sample after both fills
    b.advance(20 * 60 * NS)
    b.clock_sample()
    b.broken("K1", 1001)
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, Selection(last_seq=end), refdata_dir=FIXTURE_REFDATA)
    fills = {r["exec_qty"]: r["broken"] for r in read(out, "execution-quality", "fills").to_pylist()}
    assert fills == {100: True, 200: False}
    summary = read(out, "execution-quality", "summary").to_pylist()
    assert [(r["executions"], r["shares_executed"]) for r in summary] == [(1, 200)]
    coverage = {r["measure"]: r["count"] for r in read(out, "execution-quality", "quote_coverage").to_pylist()}
    assert coverage["broken_executions_excluded"] == 1
    assert coverage["broken_trades_read_through_seq"] == len(b.records)       # the journal's end
    assert coverage["broken_trades_horizon_reached"] == 0 and coverage["broken_trades_horizon_s"] > 0


def test_a_break_past_the_horizon_is_not_read_and_the_coverage_says_how_far_it_read(tmp_path):
    from reports import breaks
    b = _day_with_a_break(break_seen=False)
    end = len(b.records)
    b.advance(breaks.HORIZON_NS + NS)
    b.clock_sample()                             # past the horizon: reading stops before it
    b.broken("K1", 1001)
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, Selection(last_seq=end), refdata_dir=FIXTURE_REFDATA)
    assert {r["exec_qty"]: r["broken"] for r in read(out, "execution-quality", "fills").to_pylist()} == \
        {100: False, 200: False}
    coverage = {r["measure"]: r["count"] for r in read(out, "execution-quality", "quote_coverage").to_pylist()}
    assert coverage["broken_trades_read_through_seq"] == end and coverage["broken_trades_horizon_reached"] == 1
