"""Hedge fills are not adverse selection of our quotes: the quote metrics (markouts, the
adverse-selection rate, spread captured, fill rates) and the quote guard's markouts take quote
fills only; a hedge fill is counted as the cost of hedging in its own figures, and still moves
P&L and inventory."""
import pytest

from journal.catalogue import Side
from mm_core.metrics import Metrics, MetricsError
from mm_core.types import Purpose
from tests.mm_core.test_engine import QUIET_GUARD, keep_alive, long_in_bolt
from tests.mm_core.wire import ACME, MS, orders, run


def hedge_filled(config=QUIET_GUARD):
    """long_in_bolt(config), then the hedge IOC in ACME sent and filled in full. Returns
    (engine, venue, now, the hedge intent, ACME's doubled mid when it was sent)."""
    engine, venue, _, now = long_in_bolt(config)
    hedges = []
    for _ in range(10):
        now += 200 * MS
        hedges = [o for o in orders(keep_alive(engine, venue, now)) if o.intent.purpose is Purpose.HEDGE]
        if hedges:
            break
    h = hedges[0].intent
    mid2 = engine.mid2[ACME]
    run(engine, venue, venue.fill(h.token, h.qty, now), now)
    return engine, venue, now, h, mid2


def test_a_hedge_fill_is_not_marked_as_adverse_selection_of_our_quotes():
    engine, venue, now, h, mid2 = hedge_filled()
    m = engine.metrics
    assert h.symbol_id == ACME and h.side is Side.SELL and 2 * h.price < mid2     # it crossed
    marked, adverse, recent = m.marked_by[ACME], m.adverse_by[ACME], m.recent_markout[ACME]
    quote_fills = list(m.fills)
    guard_markouts = engine.guards[ACME].state_items()
    for _ in range(8):
        now += 500 * MS
        keep_alive(engine, venue, now)
    # the crossing hedge would have marked negative at every horizon: none of it reaches ACME's
    # quote figures or its guard
    assert (m.marked_by[ACME], m.adverse_by[ACME], m.recent_markout[ACME]) == (marked, adverse, recent)
    assert m.adverse_rate(ACME) == (adverse / marked if marked else 0.0)
    assert m.fills == quote_fills
    assert engine.guards[ACME].state_items()[9] == guard_markouts[9]
    # its own figures: the cost of crossing, in price4 · shares, and the inventory it moved
    doc = engine.summary()
    hedging = doc["hedging"]
    assert hedging["fills"] == 1 and hedging["qty"] == h.qty
    assert hedging["cost_x2"] == (mid2 - 2 * h.price) * h.qty > 0
    assert engine.inventory.position[ACME] == -h.qty == doc["symbols"][str(ACME)]["position"]


def test_metrics_keep_hedge_fills_out_of_the_quote_figures():
    m = Metrics(3, (100, 1000), adverse_horizon=0)
    m.on_quote_sent(Side.BUY, 100)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_010, 0)              # a quote fill, 5 inside the mid
    m.on_hedge_fill(1, Side.SELL, 100, 9_990, 20_010)           # a hedge crossing 15 under it
    assert m.on_time(100, [0, 20_010, 0]) == [(1, True, 0, 5.0)]  # only the quote fill is marked
    assert m.position(1) == 0 and m.realized[1] == -10 * 100     # P&L and lots take both
    doc = m.summary([0, 20_010, 0])
    assert doc["fills"] == {"bid": 1, "ask": 0} and doc["spread_captured_x2"] == 1_000
    assert doc["hedging"] == {"fills": 1, "qty": 100, "cost_x2": 3_000, "cost_per_share": 15.0}
    assert doc["symbols"]["1"]["traded"] == 200
    with pytest.raises(MetricsError):
        m.on_hedge_fill(1, Side.SELL, 0, 9_990, 20_010)
