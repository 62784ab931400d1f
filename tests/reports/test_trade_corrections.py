"""The venue's Trade Corrections (OUCH F) and Price Corrections (K) of the firm's executions: RTS 22
cancels the report in force (CANC with its TRN) and reports the corrected transaction (a NEWT of
its own TRN, at the execution's trading time); Rule 605 fills carry the corrected price and shares."""
from reports import auth016
from reports.rts22 import COLUMNS
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order


def _rts22(b, tmp_path):
    result = run(["rts22"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    return result, [(r[COLUMNS[1]], r[COLUMNS[2]][-3:], r[COLUMNS[30]], r[COLUMNS[33]], r[COLUMNS[28]]) for r in rows]


def test_a_price_correction_cancels_the_report_and_restates_it_at_the_new_price(tmp_path):
    b = accepted_order("P1", 1, "B", 1_500_000, 300)        # seq 3 enter, 4 accepted
    b.advance(10_000); b.execute("P1", 300)                # 5: at 150.0000
    b.advance(60_000_000_000); b.price_corrected("P1", b.match, 1_500_100)     # 6: a minute later, 150.0100
    result, rows = _rts22(b, tmp_path)
    assert result.rejected == 0
    assert [r[:4] for r in rows] == [("NEWT", "005", "300", "150.0000"), ("CANC", "005", None, None),
                                     ("NEWT", "006", "300", "150.0100")]
    assert rows[2][4] == rows[0][4] == rows[1][4]          # executed then; corrected later
    xml = next((tmp_path / "o").glob("rts22/auth016/trade_date=*/auth016.xml")).read_bytes()
    assert len(auth016.parse_transactions(xml)) == 2 and len(auth016.parse_transactions(xml, "Cxl")) == 1


def test_a_trade_correction_restates_shares_and_price_and_a_later_break_cancels_the_restated_report(tmp_path):
    b = accepted_order("T1", 1, "S", 1_500_000, 300)
    b.advance(10_000); b.execute("T1", 300)                # 5
    match = b.match
    b.advance(10_000); b.trade_corrected("T1", match, 200, 1_499_900)      # 6
    b.advance(10_000); b.price_corrected("T1", match, 1_499_800)           # 7: keeps the 200 shares
    b.advance(10_000); b.broken("T1", match)                               # 8
    result, rows = _rts22(b, tmp_path)
    assert result.rejected == 0
    assert rows[0][:4] == ("NEWT", "005", "300", "150.0000")
    # after the range's reports, each change's cancellation and restatement (CANCs first)
    assert sorted(r[:4] for r in rows[1:]) == [("CANC", "005", None, None), ("CANC", "006", None, None),
                                                ("CANC", "007", None, None), ("NEWT", "006", "200", "149.9900"),
                                                ("NEWT", "007", "200", "149.9800")]


def test_a_correction_of_no_execution_in_the_journal_is_rejected_with_its_reason(tmp_path):
    b = accepted_order("N1", 1, "B", 1_500_000, 300)
    b.advance(10_000); b.price_corrected("N1", 4242, 1_500_100)
    result = run(["rts22"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    assert not (tmp_path / "o" / "rts22" / "transactions").exists() and result.rejected == 2
    reasons = [r["reason"] for r in read(tmp_path / "o", "rts22", "rejects").to_pylist()]
    assert any("Price Correction of match 4242" in r for r in reasons)


def test_rule_605_fills_carry_the_corrected_price_and_shares(tmp_path):
    b = accepted_order("F1", 1, "B", 1_500_000, 300)
    b.advance(10_000); b.execute("F1", 300)
    b.advance(10_000); b.trade_corrected("F1", b.match, 250, 1_499_900)
    b.advance(10_000); b.execute("F1", 50)
    b.advance(10_000); b.price_corrected("F1", b.match, 1_499_950)
    run(["execution-quality"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    fills = read(tmp_path / "o", "execution-quality", "fills").to_pylist()
    assert [(r["exec_qty"], str(r["exec_price"]), r["corrected"]) for r in fills] == [
        (250, "149.9900", True), (50, "149.9950", True)]
