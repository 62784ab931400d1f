import json

import pytest

from journal.catalogue import Side
from mm_core.metrics import Metrics, MetricsError

MS = 1_000_000


def test_fifo_realized_and_unrealized_pnl_in_integers():
    m = Metrics(2, (100 * MS,))
    m.on_fill(1, Side.BUY, 100, 10_000, 0, 0)
    m.on_fill(1, Side.BUY, 100, 10_100, 0, 0)
    m.on_fill(1, Side.SELL, 150, 10_200, 0, 0)
    # FIFO: 100·(10200 − 10000) + 50·(10200 − 10100)
    assert m.realized[1] == 25_000
    assert m.position(1) == 50
    assert m.unrealized_x2(1, 2 * 10_300) == 2 * 50 * 200
    m.on_fill(1, Side.SELL, 100, 10_000, 0, 0)      # through flat: short 50 at 10000
    assert m.realized[1] == 25_000 + 50 * (10_000 - 10_100)
    assert m.position(1) == -50 and m.unrealized_x2(1, 2 * 9_900) == 2 * 50 * 100


def test_quote_fills_without_a_mid_are_counted_apart_from_the_spread_captured():
    m = Metrics(2, (100 * MS,))
    m.on_fill(1, Side.BUY, 100, 9_990, 0, 0)          # no mid yet: no spread to capture
    m.on_fill(1, Side.BUY, 30, 9_990, 20_000, 0)
    m.on_fill(1, Side.SELL, 50, 10_015, 20_000, 0)
    doc = m.summary([0, 20_000])
    assert doc["spread_captured_x2"] == 2 * (30 * 10 + 50 * 15)
    assert doc["filled_qty"] == {"bid": 130, "ask": 50}
    assert doc["spread_marked_qty"] == {"bid": 30, "ask": 50}
    assert doc["symbols"]["1"]["spread_marked_qty"] == 80


def test_fills_after_a_cancel_are_counted_per_symbol():
    m = Metrics(3, (100 * MS,))
    m.on_fill(2, Side.BUY, 100, 9_990, 20_000, 0)
    m.on_fill_after_cancel(2, 100)
    m.on_hedge_fill(1, Side.SELL, 40, 10_000, 20_000)
    m.on_fill_after_cancel(1, 40)
    doc = m.summary([0, 20_000, 20_000])
    assert doc["fills_after_cancel"] == {"fills": 2, "qty": 140}
    assert doc["symbols"]["2"]["fills_after_cancel"] == 1 and doc["symbols"]["1"]["fills_after_cancel"] == 1


def test_spread_captured_against_the_mid():
    m = Metrics(2, (100 * MS,))
    m.on_fill(1, Side.BUY, 100, 9_990, 20_000, 0)    # mid 10000: bought 10 below
    m.on_fill(1, Side.SELL, 100, 10_015, 20_000, 0)  # sold 15 above
    assert m.spread_x2[1] // 2 == 100 * 10 + 100 * 15


def test_markouts_mature_per_horizon_and_feed_the_adverse_rate():
    m = Metrics(2, (100 * MS, 1000 * MS), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    m.on_fill(1, Side.SELL, 100, 10_000, 20_000, 0)
    assert m.on_time(50 * MS, [0, 20_000]) == []
    matured = m.on_time(100 * MS, [0, 19_980])       # mid fell 10: the buy lost, the sell won
    assert matured == [(1, True, 0, -10.0), (1, False, 0, 10.0)]
    assert m.adverse_rate() == 0.5
    later = m.on_time(2000 * MS, [0, 20_100])
    assert [x[3] for x in later] == [50.0, -50.0]
    doc = m.summary([0, 20_100])
    json.dumps(doc)
    assert doc["markout_per_share"] == {str(100 * MS): 0.0, str(1000 * MS): 0.0}
    assert doc["fills"] == {"bid": 1, "ask": 1} and doc["realized"] == 0


def test_fill_rates_and_turnover():
    m = Metrics(2, (MS,))
    for _ in range(4):
        m.on_quote_sent(Side.BUY, 100)
    m.on_quote_sent(Side.SELL, 100)
    m.on_fill(1, Side.BUY, 100, 10_000, 0, 0)
    m.sample_position([0, 100])
    m.sample_position([0, 300])
    doc = m.summary([0, 20_000])
    assert doc["fill_rate"] == {"bid": 0.25, "ask": 0.0}
    assert doc["inventory_turnover"] == pytest.approx(100 / 200)


def test_bad_inputs():
    with pytest.raises(MetricsError):
        Metrics(2, (5, 1))
    with pytest.raises(MetricsError):
        Metrics(2, (MS,)).on_fill(1, Side.BUY, 0, 10_000, 0, 0)


def test_a_quote_filled_in_parts_is_filled_once():
    """Fill rate is shares filled over shares quoted: two partial executions of one 200-share
    quote fill it once (the executions are counted apart, under fills)."""
    m = Metrics(2, (100,), 0)
    m.on_quote_sent(Side.BUY, 200)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_002, 0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_002, 1)
    doc = m.summary([0, 20_002])
    assert doc["fill_rate"] == {"bid": 1.0, "ask": 0.0} and doc["fills"] == {"bid": 2, "ask": 0}
    assert doc["quoted_qty"] == {"bid": 200, "ask": 0} and doc["filled_qty"] == {"bid": 200, "ask": 0}


def test_figures_against_a_half_price4_mid_are_exact():
    """A mid of 10_000.5 (mid2 20_001): a short of 100 at 10_000 is 50 under water and sold 50
    below the mid, reported exactly (doubled), not floored toward the short's favour."""
    m = Metrics(2, (100,), 0)
    m.on_fill(1, Side.SELL, 100, 10_000, 20_001, 0)
    doc = m.summary([0, 20_001])
    assert doc["unrealized_x2"] == -100 and doc["spread_captured_x2"] == -100
    assert doc["symbols"]["1"]["unrealized_x2"] == -100
    m2 = Metrics(2, (100,), 0)
    m2.on_fill(1, Side.BUY, 1, 10_000, 19_999, 0)     # one share bought 0.5 above the mid
    assert m2.summary([0, 19_999])["spread_captured_x2"] == -1
