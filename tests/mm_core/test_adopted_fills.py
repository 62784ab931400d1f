"""A fill of an order recovery adopted (purpose RECOVERY) moves P&L and inventory and is counted
apart: it is not a quote fill (fill rates, spread captured, markouts, adverse selection) and the
quote guard never hears of it. The compiled engine and the Python reference agree."""
import pytest

from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, Timer, VenueMessage
from mm_core.protocol import ouch
from recovery.reconcile import AdoptPending, apply
from tests.mm_core.wire import ACME, MS, S, SYMBOLS, Feed, Venue, gateway, md, run, two_sided


def _adopted_fill(compiled: bool) -> Engine:
    engine, venue, feed = Engine(EngineConfig(), SYMBOLS, gateway(), compiled=compiled), Venue(), Feed()
    for ev in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(ev)
    msgs, _ = two_sided(feed, ACME, 1_000_000, 1_001_000)
    run(engine, venue, md(feed.packet(*msgs), S + MS), S + MS)
    now = 2 * S
    apply(engine, AdoptPending("LOST00000001", ACME, "B", 1_001_000, 300), now)
    engine.on_event(VenueMessage(venue.frame(ouch.Accepted(
        now, "LOST00000001", "B", 300, "ACME", 1_001_000, 0, "MMCO", "Y", 77, "P", "N", 0, "N", "L", " ")), now))
    engine.on_event(VenueMessage(venue.frame(ouch.Executed(now, "LOST00000001", 300, 1_001_000, "R", 5)), now))
    engine.on_event(Timer(now + 1100 * MS))     # past the markout horizons a quote fill would have
    return engine


@pytest.mark.parametrize("compiled", [True, False])
def test_an_adopted_orders_fill_is_not_a_quote_fill(compiled):
    engine = _adopted_fill(compiled)
    m = engine.metrics
    assert engine.inventory.position[ACME] == 300 and m.position(ACME) == 300
    assert m.fills == [0, 0] and m.filled_qty == [0, 0] and m.spread_x2[ACME] == 0
    assert not any(m.pending) and m.markout_n == [0, 0, 0] and m.adverse == 0
    assert m.marked_by[ACME] == 0 and m.recent_markout[ACME] == 0.0
    assert (m.adopted_fills, m.adopted_qty) == (1, 300) and m.hedge_fills == 0
    doc = engine.summary()
    assert doc["adopted_fills"] == {"fills": 1, "qty": 300}
    assert doc["fill_rate"] == {"bid": 0.0, "ask": 0.0} and doc["adverse_selection_rate"] == 0.0
    assert doc["symbols"][str(ACME)]["position"] == 300


def test_the_guard_never_hears_of_an_adopted_fill():
    guard = _adopted_fill(False).guards[ACME]
    assert [list(f) for f in guard.fills] == [[], []]
    assert [list(m) for m in guard.markouts] == [[], []]


def test_compiled_and_reference_agree():
    assert _adopted_fill(True).state_hash() == _adopted_fill(False).state_hash()
