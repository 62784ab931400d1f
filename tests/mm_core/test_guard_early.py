"""The guard's pulls reach the I/O shell's early sink (Engine.urgent) before the rest of the
event's work, and a replay without the sink produces the same orders in the same order."""
from __future__ import annotations

from mm_core.events import SendOrder
from mm_core.guard import Trip
from mm_core.types import Purpose

from tests.mm_core.wire import make_engine, simulate


def _orders(actions) -> list[bytes]:
    return [a.packet for a in actions if type(a) is SendOrder]


def test_pulls_go_to_the_sink_first_and_replay_matches():
    events, _, _ = simulate(1, 6_000)
    live, replay = make_engine(), make_engine()
    early: list = []
    live.urgent = early.extend
    sent_live, sent_replay, trips = [], [], 0
    for ev in events:
        before = len(early)
        rest = live.on_event(ev)
        at_sink = early[before:]       # the pulls, and an event's first order (test_early_order)
        pulls = [a for a in at_sink if a.intent.purpose is Purpose.GUARD_CANCEL]
        assert not any(type(a) is SendOrder and a.intent.purpose is Purpose.GUARD_CANCEL for a in rest)
        trips += bool(pulls)
        sent_live += _orders(at_sink) + _orders(rest)    # what the runner sends, in its order
        sent_replay += _orders(replay.on_event(ev))
    assert trips >= 1, "the seeded session no longer trips the guard"
    assert sent_live == sent_replay
    assert live.state_hash() == replay.state_hash()


def _with_a_resting_quote():
    """An engine fed the seeded session up to its first accepted resting quote, and that quote."""
    events, _, _ = simulate(1, 6_000)
    engine = make_engine()
    resting = []
    for ev in events:
        engine.on_event(ev)
        resting = [o for o in engine.oms.live.values() if o.purpose is Purpose.QUOTE and o.venue_ref]
        if resting:
            break
    assert resting, "the seeded session never has an accepted resting quote"
    return engine, resting[0]


def test_no_sink_when_orders_of_the_event_are_already_queued():
    engine, quote = _with_a_resting_quote()
    called: list = []
    engine.urgent = called.append
    queued = [SendOrder(None, b"queued", None, 0)]
    trip = Trip(quote.symbol_id, True, True, 1, 1.0, 1.0)
    engine._pull_on_trip(trip, queued)
    assert called == []                        # the event's earlier order stays first
    assert any(type(a) is SendOrder and a.intent is not None and
               a.intent.purpose is Purpose.GUARD_CANCEL for a in queued[1:])


def test_the_sink_is_not_part_of_the_engines_state():
    engine = make_engine()
    engine.urgent = print
    state = engine.__getstate__()
    assert state["urgent"] is None and engine.urgent is print      # snapshots never carry it
    fresh = make_engine()
    fresh.__setstate__(state)
    assert fresh.urgent is None


def test_a_fill_that_trips_the_guard_pulls_before_the_fills_bookkeeping():
    """On our own fill the guard decides first (the fill lane, Engine._fill_lane): when its pulls
    reach the sink, neither the OMS nor the desk metrics have been told of that fill yet (their
    work waits for the pull)."""
    from mm_core.events import VenueMessage
    events, _, _ = simulate(1, 20_000)
    engine = make_engine()
    seen: list[tuple[int, int]] = []

    def sink(pulls) -> None:
        if pulls[0].intent.purpose is Purpose.GUARD_CANCEL:     # not an event's first order
            seen.append((engine.counts["fills"], sum(engine.metrics.fills)))
    engine.urgent = sink
    tripped_on_fill = 0
    for ev in events:
        fills, metric_fills = engine.counts["fills"], sum(engine.metrics.fills)
        before = len(seen)
        engine.on_event(ev)
        if type(ev) is VenueMessage and len(seen) > before and engine.counts["fills"] > fills:
            tripped_on_fill += 1
            # neither counted (the OMS had not booked it) nor in the metrics yet
            assert seen[before] == (fills, metric_fills)
    assert tripped_on_fill >= 1, "the seeded session no longer trips the guard on a fill"



def test_a_trip_hands_its_pulls_to_the_sink_before_the_oms_books_them():
    from mm_core.oms import OrderState
    engine, quote = _with_a_resting_quote()
    seen: list = []
    engine.urgent = lambda pulls: seen.extend((a.intent.token, engine.oms.get(a.intent.token).state) for a in pulls)
    cancels = engine.counts["cancels_sent"]
    engine._pull_on_trip(Trip(quote.symbol_id, True, True, 1, 1.0, 1.0), [])
    assert seen and all(state is not OrderState.PENDING_CANCEL for _, state in seen)
    assert all(engine.oms.get(token).state is OrderState.PENDING_CANCEL for token, _ in seen)
    assert engine.counts["cancels_sent"] == cancels + len(seen)


def test_prepare_after_every_event_changes_no_order_and_no_state():
    """The idle upkeep (Engine.prepare, which also keeps the pull path warm) changes nothing."""
    events, _, _ = simulate(1, 6_000)
    live, replay = make_engine(), make_engine()
    sent_live, sent_replay = [], []
    for ev in events:
        sent_live += _orders(live.on_event(ev))
        live.prepare()
        sent_replay += _orders(replay.on_event(ev))
    assert sent_live == sent_replay
    assert live.state_hash() == replay.state_hash() and live.counts == replay.counts
