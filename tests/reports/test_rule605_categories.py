"""Rule 605 categories in the execution-quality report: the round lot by price tier, the size
categories at each edge, the time-to-execution buckets at theirs and the summary cells they fill,
from journals the builder writes and Parquet read back; expectations computed by hand."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from reports import rule605
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, NS, DayBuilder

D = 10_000          # price4 per dollar
FILL_COLUMNS = ["order_id", "round_lot", "size_category", "order_type_category", "time_to_execution_ns",
                "time_to_execution_bucket"]


def _fills(out) -> dict[str, dict]:
    return {r["order_id"]: r for r in read(out, "execution-quality", "fills").select(FILL_COLUMNS).to_pylist()}


@pytest.mark.parametrize("price4, lot", [
    (1, 100), (250 * D, 100),                       # $250.00 or less: 100
    (250 * D + 100, 40), (1_000 * D, 40),           # $250.01 - $1,000.00: 40
    (1_000 * D + 100, 10), (10_000 * D, 10),        # $1,000.01 - $10,000.00: 10
    (10_000 * D + 100, 1), (400_000 * D, 1),        # $10,000.01 or more: 1
    (250 * D + 1, 40),                              # a sub-cent price just above $250.00: the next tier
])
def test_round_lot_tier_boundaries(price4, lot):
    assert rule605.round_lot(np.array([price4], np.int64)).tolist() == [lot]


# (token, limit price4, shares, round lot, size category): each edge from both sides
SIZES = [
    ("T1", 250 * D, 99, 100, "ODD_LOT"),                  # a share short of the $250.00 tier's lot
    ("T2", 250 * D, 100, 100, "RL_20K_50K"),              # $25,000.00
    ("T3", 250 * D + 100, 39, 40, "ODD_LOT"),             # $250.01: lot 40
    ("T4", 250 * D + 100, 40, 40, "RL_LT_20K"),           # $10,000.40
    ("T5", 1_000 * D, 39, 40, "ODD_LOT"),
    ("T6", 1_000 * D, 40, 40, "RL_20K_50K"),              # $40,000.00
    ("T7", 1_000 * D + 100, 9, 10, "ODD_LOT"),            # $1,000.01: lot 10
    ("T8", 1_000 * D + 100, 10, 10, "RL_LT_20K"),         # $10,000.10
    ("T9", 10_000 * D, 9, 10, "ODD_LOT"),
    ("T10", 10_000 * D, 10, 10, "RL_50K_200K"),           # $100,000.00
    ("T11", 10_000 * D + 100, 1, 1, "RL_LT_20K"),         # $10,000.01: lot 1, one share a round lot
    ("T12", 199 * D + 9_900, 100, 100, "RL_LT_20K"),      # $19,999.00
    ("T13", 200 * D, 100, 100, "RL_20K_50K"),             # $20,000.00: the edge belongs above
    ("T14", 499 * D + 9_900, 100, 40, "RL_20K_50K"),      # $49,999.00 ($499.99: lot 40)
    ("T15", 500 * D, 100, 40, "RL_50K_200K"),             # $50,000.00 ($500: lot 40)
    ("T16", 1_999 * D + 9_900, 100, 10, "RL_50K_200K"),   # $199,999.00
    ("T17", 2_000 * D, 100, 10, "RL_GE_200K"),            # $200,000.00
]


def test_size_categories_and_round_lots_at_each_edge(tmp_path):
    b = DayBuilder()
    b.session_start()
    b.clock_sample()
    b.quote(1, (1, 1_499_800, 500), (2, 1_500_200, 500))
    for token, price, qty, _, _ in SIZES:
        b.enter(token, 1, "B", price, qty)
        b.advance(10_000); b.accept(token)
        b.advance(10_000); b.execute(token, qty)
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    fills = _fills(out)
    assert {t: (fills[t]["round_lot"], fills[t]["size_category"]) for t, *_ in SIZES} == \
        {t: (lot, size) for t, _, _, lot, size in SIZES}
    summary = {r["size_category"]: r for r in read(out, "execution-quality", "summary").to_pylist()}
    assert {s: (r["executions"], r["shares_executed"]) for s, r in summary.items()} == {
        "ODD_LOT": (5, 99 + 39 + 39 + 9 + 9), "RL_LT_20K": (4, 40 + 10 + 1 + 100),
        "RL_20K_50K": (4, 100 + 40 + 100 + 100), "RL_50K_200K": (3, 10 + 100 + 100), "RL_GE_200K": (1, 100)}


# (token, shares, time from the order's send to its execution, bucket): each edge from both sides
TIMES = [
    ("E1", 100, 1_000_000, "lt_10s"),
    ("E2", 101, 10 * NS - 1, "lt_10s"),
    ("E3", 102, 10 * NS, "10s_30s"),
    ("E4", 103, 30 * NS - 1, "10s_30s"),
    ("E5", 104, 30 * NS, "30s_60s"),
    ("E6", 105, 60 * NS - 1, "30s_60s"),
    ("E7", 106, 60 * NS, "60s_5min"),
    ("E8", 107, 300 * NS - 1, "60s_5min"),
    ("E9", 108, 300 * NS, "5min_30min"),
    ("E10", 109, 1_800 * NS - 1, "5min_30min"),
    ("E11", 110, 1_800 * NS, "ge_30min"),
]


def _timed_day(tmp_path):
    """AAPL 149.98 x 150.02; buys of 100-110 shares at 150.00 (inside the quote, $15,000-$16,500: one
    cell) all sent at once, each executed its TIMES delay later; then an IOC of 100 at 150.02
    (marketable) executed at once, in a second cell."""
    b = DayBuilder()
    b.session_start()
    b.clock_sample()
    b.quote(1, (1, 1_499_800, 500), (2, 1_500_200, 500))
    for token, qty, _, _ in TIMES:
        b.enter(token, 1, "B", 1_500_000, qty)
    b.enter("IOC1", 1, "B", 1_500_200, 100, tif=0)
    b.advance(500); b.execute("IOC1", 100)
    start = b.now - 500
    for token, qty, delay, _ in TIMES:
        b.advance(start + delay - b.now)
        b.execute(token, qty)
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    return out


def test_time_to_execution_buckets_at_their_edges_and_the_summary_cells(tmp_path):
    out = _timed_day(tmp_path)
    fills = _fills(out)
    assert {t: (fills[t]["time_to_execution_ns"], fills[t]["time_to_execution_bucket"]) for t, *_ in TIMES} == \
        {t: (delay, bucket) for t, _, delay, bucket in TIMES}
    assert (fills["IOC1"]["time_to_execution_bucket"], fills["IOC1"]["order_type_category"]) == \
        ("lt_10s", "MARKETABLE_IOC")
    rows = {(r["size_category"], r["order_type_category"]): r
            for r in read(out, "execution-quality", "summary").to_pylist()}
    assert set(rows) == {("RL_LT_20K", "INSIDE_QUOTE_LIMIT"), ("RL_LT_20K", "MARKETABLE_IOC")}
    inside = rows[("RL_LT_20K", "INSIDE_QUOTE_LIMIT")]
    total = sum(qty for _, qty, _, _ in TIMES)                      # 1,155 shares
    by_bucket = {"lt_10s": 100 + 101, "10s_30s": 102 + 103, "30s_60s": 104 + 105, "60s_5min": 106 + 107,
                 "5min_30min": 108 + 109, "ge_30min": 110}
    assert (inside["executions"], inside["shares_executed"]) == (11, total)
    assert {n: inside[f"shares_tte_{n}"] for n in rule605.TTE_NAMES} == by_bucket
    assert {n: inside[f"pct_shares_tte_{n}"] for n in rule605.TTE_NAMES} == \
        pytest.approx({n: 100.0 * v / total for n, v in by_bucket.items()}, abs=1e-12)
    assert inside["shares_tte_unknown"] == 0
    ioc = rows[("RL_LT_20K", "MARKETABLE_IOC")]
    assert {n: ioc[f"shares_tte_{n}"] for n in rule605.TTE_NAMES} == dict.fromkeys(rule605.TTE_NAMES, 0) | {"lt_10s": 100}
    assert ioc["pct_shares_tte_lt_10s"] == 100.0 and ioc["pct_shares_tte_ge_30min"] == 0.0


def test_a_fill_without_a_time_counts_in_the_unknown_bucket(tmp_path):
    """Orders a recovery adopted (their send time lost with the ORDER_SENT): their fills have no
    bucket, their shares count as unknown, and a cell with no timed shares has null percentages."""
    from tests.reports.test_adopted_orders import _day
    b, _, _ = _day()
    out = tmp_path / "o"
    run(["execution-quality"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    fills = _fills(out).values()
    assert [(f["order_id"], f["time_to_execution_ns"], f["time_to_execution_bucket"]) for f in fills] == [
        ("R1", None, None), ("C1", None, None)]
    rows = read(out, "execution-quality", "summary").to_pylist()
    assert sum(r["shares_tte_unknown"] for r in rows) == 150
    assert all(r[f"shares_tte_{n}"] == 0 and r[f"pct_shares_tte_{n}"] is None
               for r in rows for n in rule605.TTE_NAMES)


def test_the_round_lot_approximation_is_said_in_every_file_and_the_manifest(tmp_path):
    out = _timed_day(tmp_path)
    manifest = json.loads((out / "execution-quality" / "_manifest.json").read_text())
    note = manifest["provenance"]["rule605_notes"]
    assert "order's own limit price" in note and "approximation" in note and "unconfirmed" in note.lower()
    for path in sorted((out / "execution-quality").rglob("*.parquet")):
        assert (pq.read_schema(path).metadata or {})[b"mmaudit.rule605_notes"].decode() == note
