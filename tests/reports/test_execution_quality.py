from decimal import Decimal

from tests.reports.conftest import read


def test_fills_with_quote_spreads_and_categories(all_reports, day):
    fills = {(r["order_id"], r["exec_qty"]): r for r in read(all_reports, "execution-quality", "fills").to_pylist()}
    assert len(fills) == len(day.ledger.fills)
    q1 = fills[("Q1", 100)]
    assert (q1["nbb_at_order"], q1["nbo_at_order"]) == (Decimal("149.9800"), Decimal("150.0200"))
    assert q1["effective_spread"] == Decimal("0.0000")               # bought at the midpoint
    assert q1["realized_spread_1s"] == Decimal("0.0000")             # mid still 150.00 a second later
    assert q1["realized_spread_15s"] is None          # the day's market data stops 1 s later: unknown
    assert q1["order_type_category"] == "INSIDE_QUOTE_LIMIT" and q1["size_category"] == "RL_20K_50K"  # $45k
    assert fills[("Q3", 50)]["size_category"] == "RL_50K_200K"       # 150 shares at 409.95
    assert q1["time_to_execution_ns"] == 2_040_000
    q4 = fills[("Q4", 120)]
    assert q4["effective_spread"] == Decimal("0.0800")               # sold 0.04 below the mid
    mid = (q4["nbb_at_order"] + q4["nbo_at_order"]) / 2
    assert abs(q4["effective_spread_pct"] - float(Decimal("0.0800") / mid * 100)) < 1e-12
    assert q4["order_type_category"] == "MARKETABLE_IOC"
    q7 = fills[("Q7", 100)]
    assert q7["order_type_category"] == "NO_QUOTE" and q7["effective_spread"] is None


def test_summary_is_share_weighted(all_reports):
    rows = {(r["size_category"], r["order_type_category"]): r
            for r in read(all_reports, "execution-quality", "summary").to_pylist()}
    inside = rows[("RL_20K_50K", "INSIDE_QUOTE_LIMIT")]
    assert inside["shares_executed"] == 300 and inside["executions"] == 2
    expected_ms = (100 * 2.04 + 200 * 3.04) / 300
    assert abs(inside["avg_time_to_execution_ms"] - expected_ms) < 1e-9
    no_quote = next(r for (_, kind), r in rows.items() if kind == "NO_QUOTE")   # Q7: no quote, no spread
    assert no_quote["avg_effective_spread"] is None and no_quote["avg_effective_spread_pct"] is None


def test_rule_612_and_610_checks(all_reports, day):
    r612 = {r["order_id"]: r for r in read(all_reports, "execution-quality", "rule612").to_pylist()}
    assert r612["Q8"]["sub_penny_violation"] is True and r612["Q8"]["tick_in_force"] == Decimal("0.0100")
    assert r612["Q2"]["sub_penny_violation"] is False and r612["Q2"]["tick_in_force"] == Decimal("0.0050")
    assert sum(r["sub_penny_violation"] for r in r612.values()) == 1
    r610 = {r["order_id"]: r["status"] for r in read(all_reports, "execution-quality", "rule610").to_pylist()}
    assert r610 == {"Q1": "OK", "Q2": "OK", "Q3": "OK", "Q4": "CROSSES", "Q5": "OK", "Q8": "OK", "Q7": "NO_QUOTE"}
    coverage = {r["measure"]: r["count"] for r in read(all_reports, "execution-quality", "quote_coverage").to_pylist()}
    assert coverage == {"quote_updates_from_itch": 4, "fills_without_bid_at_order": 1,
                        "orders_without_quote_at_send": 1, "broken_executions_excluded": 0,
                        # Broken Trades read to the journal's end, short of the look-ahead horizon
                        "broken_trades_read_through_seq": len(day.records), "broken_trades_horizon_s": 4 * 86_400,
                        "broken_trades_horizon_reached": 0,
                        # Q7 (IVV, 1.5 s in) and then every fill: past the journal's market data
                        "realized_spread_1s_past_market_data": 1, "realized_spread_15s_past_market_data": 5,
                        "realized_spread_60s_past_market_data": 5,
                        # no crash recovery in the day: no fill timed by the venue
                        "recovered_fills_at_venue_time": 0, "recovered_fills_without_quote_at_exec": 0}


def _summary_from_fills_table(fills):
    """The summary's sums computed from the written fills table, as they were before the summary
    took its values from the builder's arrays: the reference for bit-for-bit equal averages."""
    import numpy as np
    import pyarrow as pa
    from reports.execution import SIZE_NAMES, TYPE_NAMES, Summary
    cells = len(SIZE_NAMES) * len(TYPE_NAMES)
    size = np.array([SIZE_NAMES.index(v) for v in fills["size_category"].to_pylist()], np.int64)
    kind = np.array([TYPE_NAMES.index(v) for v in fills["order_type_category"].to_pylist()], np.int64)
    cell = size * len(TYPE_NAMES) + kind
    qty = fills["exec_qty"].to_numpy()
    weighted, weight = [], []
    for name in Summary.MEASURES:
        col = fills[name].combine_chunks()
        ok = col.is_valid().to_numpy(zero_copy_only=False)
        value = col.cast(pa.float64()).fill_null(0).to_numpy()
        weighted.append(np.bincount(cell, weights=value * qty * ok, minlength=cells))
        weight.append(np.bincount(cell, weights=qty * ok, minlength=cells))
    return np.bincount(cell, minlength=cells), np.array(weighted), np.array(weight)


def test_summary_sums_are_those_of_the_fills_table_bit_for_bit(all_reports):
    import numpy as np
    from reports.execution import SIZE_NAMES, TTE_NAMES, TYPE_NAMES, Summary
    fills = read(all_reports, "execution-quality", "fills").sort_by("seq")
    executions, weighted, weight = _summary_from_fills_table(fills)
    expected = Summary()
    expected.executions, expected.weighted, expected.weight = executions, weighted, weight
    expected.shares = np.bincount(np.array([SIZE_NAMES.index(s) * len(TYPE_NAMES) + TYPE_NAMES.index(k) for s, k in zip(
        fills["size_category"].to_pylist(), fills["order_type_category"].to_pylist())], np.int64),
        weights=fills["exec_qty"].to_numpy(), minlength=len(executions)).astype(np.int64)
    # shares per time-to-execution bucket, from the fills' bucket column (null: the unknown row)
    for row in fills.select(["size_category", "order_type_category", "time_to_execution_bucket",
                             "exec_qty"]).to_pylist():
        bucket = len(TTE_NAMES) if row["time_to_execution_bucket"] is None else \
            TTE_NAMES.index(row["time_to_execution_bucket"])
        cell = SIZE_NAMES.index(row["size_category"]) * len(TYPE_NAMES) + TYPE_NAMES.index(row["order_type_category"])
        expected.tte_shares[bucket, cell] += row["exec_qty"]
    got = read(all_reports, "execution-quality", "summary")
    assert got.to_pylist() == expected.table().to_pylist()
    assert weight.sum() > 0 and any(v is not None for v in got["avg_realized_spread_1s"].to_pylist())


def _fill_then_quotes(b):
    """AAPL 149.98 x 150.02, a buy of 100 at 150.00, then the quote moves 10 s later."""
    from tests.reports.journal_builder import NS
    b.clock_sample()
    b.quote(1, (1, 1_499_800, 500), (2, 1_500_200, 500))
    b.enter("H1", 1, "B", 1_500_000, 100)
    b.advance(40_000); b.accept("H1")
    b.advance(1_000_000); b.execute("H1", 100)
    return NS


def test_realized_spreads_read_the_quote_past_the_range_end(tmp_path):
    """The range ends just after the fill; the quote at the 15 s and 60 s horizons is journaled
    after it: it is read from there, not the last quote of the range."""
    from decimal import Decimal
    from reports.run import run
    from reports.source import Selection
    from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
    b = DayBuilder()
    ns = _fill_then_quotes(b)
    range_end = len(b.records)
    b.advance(10 * ns)
    b.quote(1, (11, 1_500_400, 500), (12, 1_500_600, 500), delete=(1, 2))    # mid 150.05
    b.advance(60 * ns)
    b.quote(1, (13, 1_500_000, 500), None, delete=(11,))                        # mid 150.03
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, Selection(last_seq=range_end),
        refdata_dir=FIXTURE_REFDATA)
    fill, = read(out, "execution-quality", "fills").to_pylist()
    assert fill["realized_spread_1s"] == Decimal("0.0000")          # mid 150.00 a second after
    assert fill["realized_spread_15s"] == Decimal("-0.1000")        # mid 150.05, journaled past the range
    assert fill["realized_spread_60s"] == Decimal("-0.1000")
    coverage = {r["measure"]: r["count"] for r in read(out, "execution-quality", "quote_coverage").to_pylist()}
    assert coverage["realized_spread_15s_past_market_data"] == 0


def test_a_realized_spread_past_the_journals_market_data_is_left_out_and_counted(tmp_path):
    """The journal's market data stops 5 s after the fill: the 1 s horizon is known, the 15 s and
    60 s ones are not, so those spreads are null (not the last quote's) and counted."""
    from decimal import Decimal
    from reports.run import run
    from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
    b = DayBuilder()
    ns = _fill_then_quotes(b)
    b.advance(5 * ns)
    b.quote(1, (11, 1_500_400, 500), (12, 1_500_600, 500), delete=(1, 2))    # mid 150.05 at +5 s
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    fill, = read(out, "execution-quality", "fills").to_pylist()
    assert fill["realized_spread_1s"] == Decimal("0.0000")
    assert fill["realized_spread_15s"] is None and fill["realized_spread_60s"] is None
    coverage = {r["measure"]: r["count"] for r in read(out, "execution-quality", "quote_coverage").to_pylist()}
    assert coverage["realized_spread_1s_past_market_data"] == 0
    assert coverage["realized_spread_15s_past_market_data"] == 1
    assert coverage["realized_spread_60s_past_market_data"] == 1
    summary, = read(out, "execution-quality", "summary").to_pylist()
    assert summary["avg_realized_spread_15s"] is None and summary["avg_realized_spread_1s"] == 0.0


def test_a_fill_of_an_order_recovery_adopted_is_rejected_for_its_missing_order_sent(tmp_path):
    """An order whose ORDER_SENT a torn journal tail lost, adopted from the venue by recovery (a
    RECON resolution), then filled: rejected as the other reports reject it, for the missing
    ORDER_SENT, not as an unknown symbol_id 0."""
    from journal.catalogue import RecordType
    from reports.run import run
    from tests.reports.conftest import read
    from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order
    b = accepted_order("A1", 1, "B", 1_500_000, 300)
    b.ledger.orders["LOST1"] = dict(b.ledger.orders["A1"])        # its ORDER_SENT is not journaled
    b.json_record(RecordType.RECON, {"kind": "resolution", "resolution": {"kind": "adopt", "token": "LOST1"}})
    b.advance(10_000); b.execute("LOST1", 100)
    b.advance(10_000); b.execute("A1", 100)
    run(["execution-quality"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rejects = [r for r in read(tmp_path / "o", "execution-quality", "rejects").to_pylist() if r["table"] == "fills"]
    assert [(r["field"], r["reason"]) for r in rejects] == [
        ("order_id", "no ORDER_SENT in the journal created this order token")]
    assert [r["order_id"] for r in read(tmp_path / "o", "execution-quality", "fills").to_pylist()] == ["A1"]
