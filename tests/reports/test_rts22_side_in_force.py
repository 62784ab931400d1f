"""RTS 22 field 62 (short selling indicator) is the side in force at each execution: a venue Order
Modified that re-marks a sell as a short sale (or back) applies to the executions after it, in the
Parquet and the auth.016 XML alike, however the journal is chunked; fields 7 and 16 (buyer, seller)
stay the order's (OUCH Modify never turns a buy into a sell)."""
import pytest

from reports import auth016, events
from reports.rts22 import COLUMNS
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def _day() -> DayBuilder:
    b = DayBuilder()
    b.session_start(); b.clock_sample()
    b.enter("S1", 1, "S", 1_500_100, 300); b.advance(10_000); b.accept("S1")
    b.advance(10_000); b.execute("S1", 50)                                   # a plain sell
    b.advance(10_000); b.modify("S1", "T", 250); b.advance(10_000); b.modified("S1", "T", 250)
    b.advance(10_000); b.execute("S1", 100)                                  # now a short sale
    b.advance(10_000); b.enter("B1", 1, "B", 1_499_900, 100); b.advance(10_000); b.accept("B1")
    b.advance(10_000); b.execute("B1", 100)                                  # a buy: no field 62
    b.advance(10_000); b.modify("S1", "S", 150); b.advance(10_000); b.modified("S1", "S", 150)
    b.advance(10_000); b.execute("S1", 150)                                  # re-marked a plain sell
    b.clock_sample()
    return b


@pytest.mark.parametrize("chunk_seqs", [None, 1, 3])
def test_field_62_is_the_side_in_force_at_each_execution(tmp_path, monkeypatch, chunk_seqs):
    if chunk_seqs is not None:
        monkeypatch.setattr(events, "CHUNK_SEQS", chunk_seqs)
    run(["rts22"], _day().write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = sorted(read(tmp_path / "o", "rts22", "transactions").to_pylist(), key=lambda r: r["seq"])
    assert [(r[COLUMNS[30]], r[COLUMNS[62]]) for r in rows] == \
        [("50", "SELL"), ("100", "SESH"), ("100", None), ("150", "SELL")]
    firm = {r[COLUMNS[4]] for r in rows}
    assert [r[COLUMNS[16]] in firm for r in rows] == [True, True, False, True]     # the firm sells
    assert [r[COLUMNS[7]] in firm for r in rows] == [False, False, True, False]
    xml = (tmp_path / "o" / "rts22" / "auth016" / "trade_date=2026-03-02" / "auth016.xml").read_bytes()
    ns = {"a": auth016.NS_AUTH16}
    assert [el.findtext("a:AddtlAttrbts/a:ShrtSellgInd", namespaces=ns) for el in auth016.parse_transactions(xml)] \
        == ["SELL", "SESH", None, "SELL"]


def test_a_range_starting_after_the_re_marking_keeps_it(tmp_path):
    from reports.source import Selection
    journal = _day().write(tmp_path / "j")
    run(["rts22"], journal, tmp_path / "o", selection=Selection(first_seq=8), refdata_dir=FIXTURE_REFDATA)
    rows = sorted(read(tmp_path / "o", "rts22", "transactions").to_pylist(), key=lambda r: r["seq"])
    assert [(r["seq"], r[COLUMNS[62]]) for r in rows] == [(8, "SESH"), (11, None), (14, "SELL")]


def test_a_range_starting_mid_journal_with_no_re_marking_before_it(tmp_path):
    from reports.source import Selection
    b = DayBuilder()
    b.session_start(); b.clock_sample()
    b.enter("S1", 1, "T", 1_500_100, 300); b.advance(10_000); b.accept("S1")
    b.advance(10_000); b.execute("S1", 100)
    run(["rts22"], b.write(tmp_path / "j"), tmp_path / "o", selection=Selection(first_seq=5), refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    assert [(r["seq"], r[COLUMNS[62]]) for r in rows] == [(5, "SESH")]
