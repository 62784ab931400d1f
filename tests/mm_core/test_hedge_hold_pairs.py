"""The hedge hold belongs to a (hedged symbol, hedge instrument) pair: with BOLT and CHIP both
hedged in ACME, an idle CHIP does not clear the hold BOLT's in-flight hedge keeps on ACME's bids
(our own bid there is what the sell hedge would hit, and a quote that undoes the hedge)."""
import dataclasses

import pytest

from mm_core.config import PairSpec
from mm_core.engine import Engine
from mm_core.events import ClockSample, Timer
from mm_core.metrics import Metrics
from mm_core.types import Purpose, Side
from tests.mm_core import test_sig_engine
from tests.mm_core.test_engine import QUIET_GUARD, drive_long_in_bolt
from tests.mm_core.test_sig_engine import Lockstep
from tests.mm_core.wire import ACME, BOLT, CHIP, MS, SYMBOLS, Feed, Venue, md, orders, two_sided

TWO_PAIRS = dataclasses.replace(SYMBOLS, pairs=SYMBOLS.pairs + (PairSpec(ACME, CHIP, 0.5),))


def _settled(lock, venue, event) -> list:
    """One event into both engines, and every venue reply it causes."""
    out = pending = lock.on_event(event)
    while pending:
        replies = venue.answer(pending, event.now_ns)
        pending = [a for r in replies for a in lock.on_event(r)]
        out += pending
    return out


@pytest.fixture
def lock(monkeypatch):
    monkeypatch.setattr(test_sig_engine, "SYMBOLS", TWO_PAIRS)
    return Lockstep(QUIET_GUARD)


def _acme_bids(venue):
    return venue.resting("ACME", "B")


def test_an_idle_pair_keeps_the_other_pairs_hold_on_the_shared_hedge_instrument(lock):
    assert sorted(lock.kernel.hedge_of[ACME]) == [BOLT, CHIP] and not lock.kernel.hedger.pairs[CHIP].active
    feed, venue = Feed(), Venue()
    lock.on_event(ClockSample(2 * 10**9, True))
    chip, _ = two_sided(feed, CHIP, 8_490, 8_510, tick=1)
    now = drive_long_in_bolt(lambda ev: _settled(lock, venue, ev), venue, feed)
    _settled(lock, venue, md(feed.packet(*chip), now))
    hedge = None
    for _ in range(10):
        now += 200 * MS
        acts = _settled(lock, venue, ClockSample(now, True)) + _settled(lock, venue, Timer(now))
        hedges = [o.intent for o in orders(acts) if o.intent.purpose is Purpose.HEDGE]
        if hedges:
            hedge = hedges[0]
            break
    assert hedge is not None and hedge.symbol_id == ACME and hedge.side is Side.SELL
    for engine in (lock.kernel, lock.reference):
        assert engine.hedge_hold[ACME] == -1        # ACME's bids wait while the sell hedge is worked
    # the hedge is in flight (accepted, not done); CHIP's book moves: its pair is idle
    now += MS
    acts = _settled(lock, venue, md(feed.packet(feed.add(CHIP, "B", 300, 8_495)), now))
    for engine in (lock.kernel, lock.reference):
        assert engine.hedge_hold[ACME] == -1, "an idle pair cleared the in-flight hedge's hold"
    assert not [o for o in orders(acts) if o.intent.symbol_id == ACME and o.intent.side is Side.BUY]
    assert not _acme_bids(venue)
    # the hedge filled in full: nothing left to hedge, the hold is lifted, ACME bids again
    now += MS
    _settled(lock, venue, venue.fill(hedge.token, hedge.qty, now))
    for engine in (lock.kernel, lock.reference):
        assert engine.hedge_hold[ACME] == 0 and engine.pair_hold[BOLT] == 0
    now += 200 * MS
    _settled(lock, venue, Timer(now))
    assert _acme_bids(venue)
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_two_pairs_hedging_opposite_ways_hold_both_sides_of_the_shared_instrument(lock):
    engine = lock.reference
    engine._hold(BOLT, ACME, 1)             # BOLT's hedge buys ACME: our asks wait
    engine._hold(CHIP, ACME, -1)            # CHIP's sells ACME: our bids wait too
    assert engine.hedge_hold[ACME] == 2
    engine._hold(BOLT, ACME, 0)
    assert engine.hedge_hold[ACME] == -1
    engine._hold(CHIP, ACME, 0)
    assert engine.hedge_hold[ACME] == 0


def test_a_snapshot_from_before_pair_holds_restores_with_each_pair_holding(lock):
    engine = lock.reference
    engine._hold(BOLT, ACME, -1)
    state = engine.__getstate__()
    del state["pair_hold"]                          # as an engine pickled before pair holds
    metrics = dict(state["metrics"].__dict__)
    for name in ("hedge_fills", "hedge_qty", "hedge_cost_x2", "hedge_marked_qty"):
        del metrics[name]
    state["metrics"] = Metrics.__new__(Metrics)
    state["metrics"].__setstate__(metrics)
    copy = Engine.__new__(Engine)
    copy.__setstate__(state)
    assert copy.hedge_hold[ACME] == -1 and copy.pair_hold[BOLT] == copy.pair_hold[CHIP] == -1
    copy._hold(CHIP, ACME, 0)                       # an idle pair lifts only its own part
    assert copy.hedge_hold[ACME] == -1
    assert copy.metrics.summary([0] * copy.n)["hedging"]["fills"] == 0
