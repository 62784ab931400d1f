from decimal import Decimal

from tests.reports.conftest import read


def test_fills_with_quote_spreads_and_categories(all_reports, day):
    fills = {(r["order_id"], r["exec_qty"]): r for r in read(all_reports, "execution-quality", "fills").to_pylist()}
    assert len(fills) == len(day.ledger.fills)
    q1 = fills[("Q1", 100)]
    assert (q1["nbb_at_order"], q1["nbo_at_order"]) == (Decimal("149.9800"), Decimal("150.0200"))
    assert q1["effective_spread"] == Decimal("0.0000")               # bought at the midpoint
    assert q1["realized_spread_15s"] == Decimal("-0.1000")           # mid rose to 150.05 after
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


def test_rule_612_and_610_checks(all_reports):
    r612 = {r["order_id"]: r for r in read(all_reports, "execution-quality", "rule612").to_pylist()}
    assert r612["Q8"]["sub_penny_violation"] is True and r612["Q8"]["tick_in_force"] == Decimal("0.0100")
    assert r612["Q2"]["sub_penny_violation"] is False and r612["Q2"]["tick_in_force"] == Decimal("0.0050")
    assert sum(r["sub_penny_violation"] for r in r612.values()) == 1
    r610 = {r["order_id"]: r["status"] for r in read(all_reports, "execution-quality", "rule610").to_pylist()}
    assert r610 == {"Q1": "OK", "Q2": "OK", "Q3": "OK", "Q4": "CROSSES", "Q5": "OK", "Q8": "OK", "Q7": "NO_QUOTE"}
    coverage = {r["measure"]: r["count"] for r in read(all_reports, "execution-quality", "quote_coverage").to_pylist()}
    assert coverage == {"quote_updates_from_itch": 4, "fills_without_bid_at_order": 1,
                        "orders_without_quote_at_send": 1, "broken_executions_excluded": 0}


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
    from reports.execution import SIZE_NAMES, TYPE_NAMES, Summary
    fills = read(all_reports, "execution-quality", "fills").sort_by("seq")
    executions, weighted, weight = _summary_from_fills_table(fills)
    expected = Summary()
    expected.executions, expected.weighted, expected.weight = executions, weighted, weight
    expected.shares = np.bincount(np.array([SIZE_NAMES.index(s) * len(TYPE_NAMES) + TYPE_NAMES.index(k) for s, k in zip(
        fills["size_category"].to_pylist(), fills["order_type_category"].to_pylist())], np.int64),
        weights=fills["exec_qty"].to_numpy(), minlength=len(executions)).astype(np.int64)
    got = read(all_reports, "execution-quality", "summary")
    assert got.to_pylist() == expected.table().to_pylist()
    assert weight.sum() > 0 and any(v is not None for v in got["avg_realized_spread_15s"].to_pylist())
