import datetime as dt
from collections import Counter

import pyarrow.compute as pc
import pytest

from journal.catalogue import ClockState, TsSource
from reports import refdata
from reports.run import run
from reports.source import Selection
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, TAI_MINUS_UTC, NS, DayBuilder, standard_day


def test_every_order_event_is_a_row(all_reports, day):
    t = read(all_reports, "orders", "order_events")
    kinds = Counter(t["event_type"].cast("string").to_pylist())
    c = day.ledger.counts
    assert kinds["SENT_NEW"] == c["SENT_NEW"]
    assert kinds["SENT_REPLACE"] == c["SENT_REPLACE"]
    assert kinds["SENT_CANCEL"] == c["SENT_CANCEL"]
    assert kinds["ACCEPTED"] == c["Accepted"]
    assert kinds["EXECUTED"] == c["Executed"]
    assert kinds["CANCELED"] == c["Canceled"]
    assert kinds["REJECTED"] == c["Rejected"]
    assert t.num_rows == sum(kinds.values())
    assert t["seq"].to_pylist() == sorted(t["seq"].to_pylist())


def test_shares_and_notional_reconcile_with_the_journal(all_reports, day):
    t = read(all_reports, "orders", "order_events")
    fills = t.filter(pc.equal(t["event_type"].cast("string"), "EXECUTED"))
    shares = pc.sum(fills["exec_qty"]).as_py()
    notional = sum(q * p for q, p in zip(fills["exec_qty"].to_pylist(), fills["exec_price"].to_pylist()))
    assert shares == sum(f[3] for f in day.ledger.fills)
    expected = sum(f[3] * f[4] for f in day.ledger.fills)             # price4 · shares
    assert notional * 10_000 == expected
    assert sorted(fills["tvtic"].to_pylist()) == sorted(f[5] for f in day.ledger.fills)


def test_rts24_event_codes(all_reports):
    t = read(all_reports, "orders", "order_events")
    rows = [(r["order_id"], r["event_type"], r["rts24_event"]) for r in
            t.select(["order_id", "event_type", "rts24_event"]).to_pylist()]
    assert ("Q1", "SENT_NEW", "NEWO") in rows
    q1 = [r[2] for r in rows if r[0] == "Q1" and r[1] == "EXECUTED"]
    assert q1 == ["PARF", "FILL"]
    # coded where the venue did it: the firm's requests carry no code, the venue's answers do
    assert ("Q3", "SENT_REPLACE", None) in rows and ("Q3", "SENT_CANCEL", None) in rows
    assert ("Q3", "REPLACED", "REME") in rows and ("Q3", "CANCELED", "CAME") in rows
    assert ("Q4", "CANCELED", "EXPI") in rows                  # IOC remainder
    assert ("Q5", "REJECTED", None) in rows


def test_responsibility_and_side_columns(all_reports):
    t = read(all_reports, "orders", "order_events")
    new = {r["order_id"]: r for r in t.filter(pc.equal(t["event_type"].cast("string"), "SENT_NEW")).to_pylist()}
    assert new["Q1"]["investment_decision_algo"] == "MMQUOTE01" and new["Q1"]["liquidity_provision"] is True
    assert new["Q5"]["investment_decision_algo"] == "MMHEDGE01" and new["Q5"]["liquidity_provision"] is False
    assert new["Q5"]["client_code"] == "5493001KJTIIGC8Y1R12" and new["Q1"]["client_code"] is None
    assert new["Q1"]["desk_code"] == "EQMM" and new["Q1"]["trader_code"] == "DE19800101JOHNSMITH"
    assert new["Q4"]["short_sale"] is True and new["Q4"]["validity_period"] == "IOCV"
    assert new["Q2"]["side"] == "SELL" and new["Q1"]["side"] == "BUYI"
    assert new["Q1"]["isin"] == "US0378331005" and new["Q1"]["segment_mic"] == "XNGS"
    assert str(new["Q2"]["limit_price"]) == "410.0050"


def test_phc_tai_timestamps_become_utc_with_the_sample_offset(all_reports):
    t = read(all_reports, "orders", "order_events").to_pylist()
    venue = [r for r in t if r["ts_source"] == "HW_PHC"]
    assert venue
    for r in venue:
        utc_ns = int(r["event_time_utc"].timestamp()) * NS + r["event_time_utc"].microsecond * 1000
        assert r["utc_basis"] == "PHC_TAI_MINUS_UTC_OFFSET" and r["utc_offset_s"] == TAI_MINUS_UTC
        assert r["ts_recorded_ns"] // 1000 * 1000 - utc_ns == TAI_MINUS_UTC * NS
    user = [r for r in t if r["ts_source"] == "USER"]
    assert all(r["utc_basis"] == "REALTIME_UTC" and r["utc_offset_s"] == 0 for r in user)
    assert {r["clock_state"] for r in t} == {"LOCKED", "HOLDOVER"}


def test_phc_timestamp_without_utc_offset_is_rejected_not_dropped(tmp_path):
    b = DayBuilder()
    b.enter("E1", 1, "B", 1_500_000, 100)
    b.accept("E1")                                     # PHC time, no CLOCK_SAMPLE yet
    b.clock_sample()
    b.execute("E1", 100)
    result = run(["orders"], b.write(tmp_path / "j"), tmp_path / "out", refdata_dir=FIXTURE_REFDATA)
    assert result.rejected == 1
    rej = read(tmp_path / "out", "orders", "rejects").to_pylist()
    assert rej[0]["seq"] == 2 and rej[0]["field"] == "event_time_utc"
    assert "no preceding CLOCK_SAMPLE" in rej[0]["reason"]
    assert read(tmp_path / "out", "orders", "order_events").num_rows == 2


def test_unknown_symbol_algo_and_token_are_rejected_with_reasons(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    b.enter("U1", 9, "B", 1_500_000, 100)              # symbol 9 is not in the reference data
    b.enter("U2", 1, "B", 1_500_000, 100, algo=42)     # algo 42 is not registered
    b.ledger.orders["ZZ"] = dict(symbol_id=1, side="B", price=1, qty=1, tif=0, algo=1, desk=1, trader=1, client=0)
    b.execute("ZZ", 5, 1_500_000)                      # the venue reports a token we never sent
    result = run(["orders"], b.write(tmp_path / "j"), tmp_path / "out", refdata_dir=FIXTURE_REFDATA)
    rej = read(tmp_path / "out", "orders", "rejects").to_pylist()
    reasons = {(r["seq"], r["field"]): r["reason"] for r in rej}
    assert result.rejected == len(rej) >= 3
    assert "symbol_id 9 not in instrument reference data" in reasons[(2, "symbol_id")]
    assert "algo_id 42" in reasons[(3, "algo_id")]
    assert "no ORDER_SENT" in reasons[(4, "order_id")]
    assert not (tmp_path / "out" / "orders" / "order_events").exists() or \
        read(tmp_path / "out", "orders", "order_events").num_rows == 0


def _two_day_journal(path):
    b = standard_day(DayBuilder(day=dt.date(2026, 3, 2)))     # session 1
    b.advance(86_400 * NS)
    b.session_start(2)
    b.clock_sample()
    b.enter("D2", 2, "B", 4_000_000, 100)
    b.accept("D2")
    return b.write(path)


def test_selection_by_date_session_and_sequence(tmp_path):
    j = _two_day_journal(tmp_path / "j")
    run(["orders"], j, tmp_path / "all", refdata_dir=FIXTURE_REFDATA)
    everything = read(tmp_path / "all", "orders", "order_events")
    dates = sorted(set(everything["trade_date"].cast("string").to_pylist()))
    assert dates == ["2026-03-02", "2026-03-03"]
    run(["orders"], j, tmp_path / "d", Selection(trade_date=dt.date(2026, 3, 3)), refdata_dir=FIXTURE_REFDATA)
    assert read(tmp_path / "d", "orders", "order_events")["order_id"].to_pylist() == ["D2", "D2"]
    run(["orders"], j, tmp_path / "s", Selection(session_id=1), refdata_dir=FIXTURE_REFDATA)
    assert read(tmp_path / "s", "orders", "order_events").num_rows == everything.num_rows - 2
    first = everything["seq"].to_pylist()[3]
    run(["orders"], j, tmp_path / "q", Selection(first_seq=first, last_seq=first + 4), refdata_dir=FIXTURE_REFDATA)
    seqs = read(tmp_path / "q", "orders", "order_events")["seq"].to_pylist()
    assert seqs and min(seqs) >= first and max(seqs) <= first + 4


def test_unknown_session_is_a_typed_error(day_journal, tmp_path):
    from reports.errors import JournalRangeError
    with pytest.raises(JournalRangeError, match="session 77"):
        run(["orders"], day_journal, tmp_path / "o", Selection(session_id=77), refdata_dir=FIXTURE_REFDATA)


def test_clock_state_in_record_header_is_reported(tmp_path):
    b = DayBuilder(clock_state=ClockState.FREERUN)
    b.clock_sample(state=ClockState.FREERUN, error_bound_ns=-1)
    b.enter("F1", 1, "B", 1_500_000, 100)
    run(["orders"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    row = read(tmp_path / "o", "orders", "order_events").to_pylist()[0]
    assert row["clock_state"] == "FREERUN" and row["ts_source"] == TsSource.USER.name
    assert refdata.load(FIXTURE_REFDATA).firm.lei == row["executing_entity_lei"]


def test_ouch_stock_that_disagrees_with_reference_data_is_rejected_not_mislabelled(tmp_path):
    """symbol_id 1 is AAPL in the reference data; an order whose OUCH stock says MSFT must not be
    reported with AAPL's ISIN: every event of it (the Enter, the venue's Accepted that echoes the
    stock, and the execution that carries none) goes to rejects with the reason."""
    b = DayBuilder()
    b.clock_sample()
    b.enter("M1", 1, "B", 1_500_000, 100, stock="MSFT")
    b.accept("M1")
    b.execute("M1", 100, 1_500_000)
    b.enter("OK", 1, "B", 1_500_000, 100)
    b.accept("OK")
    result = run(["orders"], b.write(tmp_path / "j"), tmp_path / "out", refdata_dir=FIXTURE_REFDATA)
    rej = [r for r in read(tmp_path / "out", "orders", "rejects").to_pylist() if r["field"] == "symbol"]
    assert [r["seq"] for r in rej] == [2, 3, 4] and result.rejected == 3
    assert all("OUCH stock 'MSFT' does not match symbol 'AAPL' of symbol_id 1" in r["reason"] for r in rej)
    kept = read(tmp_path / "out", "orders", "order_events")
    assert kept["seq"].to_pylist() == [5, 6] and set(kept["isin"].to_pylist()) == {"US0378331005"}


@pytest.mark.parametrize("chunk_seqs", [1, 3, 7])
def test_chunked_build_gives_the_rows_of_a_whole_range_build(day_journal, all_reports, tmp_path, monkeypatch,
                                                             chunk_seqs):
    """Orders joined across chunk boundaries (their creator, replace chain and remaining quantity
    carried over) give exactly the rows one whole-range pass gives, for every report kind that
    streams; a mid-journal range does too."""
    from reports import events
    monkeypatch.setattr(events, "CHUNK_SEQS", chunk_seqs)
    out = tmp_path / "chunked"
    run(["orders", "clock"], day_journal, out, refdata_dir=FIXTURE_REFDATA)
    for kind, table in (("orders", "order_events"), ("clock", "event_clock"),
                        ("clock", "summary"), ("clock", "intervals")):
        key = {"summary": "profile", "intervals": "start_seq"}.get(table, "seq")
        whole, chunked = read(all_reports, kind, table).sort_by(key), read(out, kind, table).sort_by(key)
        assert chunked.to_pylist() == whole.to_pylist(), (kind, table)
    first = 9
    sel = Selection(first_seq=first)
    monkeypatch.setattr(events, "CHUNK_SEQS", 1 << 19)
    run(["orders"], day_journal, tmp_path / "mid-whole", sel, refdata_dir=FIXTURE_REFDATA)
    monkeypatch.setattr(events, "CHUNK_SEQS", chunk_seqs)
    run(["orders"], day_journal, tmp_path / "mid-chunked", sel, refdata_dir=FIXTURE_REFDATA)
    whole = read(tmp_path / "mid-whole", "orders", "order_events").sort_by("seq").to_pylist()
    assert whole and whole[0]["seq"] >= first
    assert read(tmp_path / "mid-chunked", "orders", "order_events").sort_by("seq").to_pylist() == whole


def test_a_record_damaged_behind_a_believed_segment_summary_stops_the_report_and_publishes_nothing(tmp_path):
    from reports.errors import JournalIncompleteError
    from tests.journal.jhelpers import record_offsets, segment_files
    journal_dir = standard_day().write(tmp_path / "j")
    segment = segment_files(journal_dir)[0]
    assert segment.with_suffix(".sum").exists()          # sealed at close: a reader opens it from its summary
    offsets = record_offsets(segment)
    off, size, _ = offsets[len(offsets) // 2]            # a record in the middle; the SEAL at the end stays intact
    raw = bytearray(segment.read_bytes())
    raw[off + size - 1] ^= 0xFF
    segment.write_bytes(bytes(raw))
    out = tmp_path / "out"
    with pytest.raises(JournalIncompleteError, match="failed their check when read"):
        run(["orders"], journal_dir, out, refdata_dir=FIXTURE_REFDATA)
    assert not (out / "orders").exists() or not any((out / "orders").rglob("*.parquet"))
