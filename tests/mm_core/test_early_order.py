"""A decision's first order leaves through the shell's early sink (Engine.urgent) while on_event
still runs, when nothing else of the event waits to be journaled before it (a requote's orders
together, at its end): the orders, in order, the records and the state are what the engine gives
with no sink (replay), and what the sink got first were that event's first outputs there."""
from __future__ import annotations

import pytest

from mm_core.events import SendOrder, Timer
from mm_core.types import Purpose
from tests.mm_core.test_guard_lane import TOUCHY, engine_for, key
from tests.mm_core.wire import simulate


def _orders(actions) -> list:
    return [key(a) for a in actions if type(a) is SendOrder]


# seed 1's session has events whose first output is a note, with an order after it
@pytest.mark.parametrize("seed,config,notes_first", [(1, None, True), (2, TOUCHY, False), (4, None, False)])
def test_the_first_order_leaves_early_and_the_orders_and_state_are_the_replays(seed, config, notes_first):
    events = simulate(seed, 6_000, config)[0]
    replay, live = engine_for(config), engine_for(config)
    early: list = []
    calls: list = []
    live.urgent = lambda orders: (calls.append(len(orders)), early.extend(orders))
    went_early = together = held_behind_a_note = 0
    for ev in events:
        want = replay.on_event(ev)
        before, calls_before = len(early), len(calls)
        rest = live.on_event(ev)
        sent = early[before:]
        # the orders as the journal gets them: the sink's inside on_event, then the rest
        assert _orders(sent + rest) == _orders(want)
        decided = [a for a in sent if a.intent.purpose is not Purpose.GUARD_CANCEL]
        if decided:
            went_early += 1
            # the event's first outputs in the replay too, handed over in one call (a requote's
            # orders together)
            n = len(decided)
            assert sent[:n] == decided and [key(a) for a in want[:n]] == [key(a) for a in decided], \
                "an order went early that was not among the event's first outputs"
            assert calls[calls_before] == n, "an event's early orders came in more than one call"
            together += n > 1
        first_order = next((i for i, a in enumerate(want) if type(a) is SendOrder), None)
        if first_order and not sent:
            held_behind_a_note += 1         # a note came first: the order waited its turn
    assert live.state_hash() == replay.state_hash()
    assert went_early > 50 and together > 0
    assert (held_behind_a_note > 0) is notes_first


def test_the_sink_is_closed_between_events_and_after_a_failed_one():
    engine = engine_for()
    early: list = []
    engine.urgent = early.extend
    for ev in simulate(1, 2_000)[0]:
        engine.on_event(ev)
        assert engine._early is None        # closed once on_event returns
        engine.prepare()
    assert early, "no order left early"
    broken = Timer(engine.now + 1)
    engine._handlers[Timer] = lambda ev: 1 / 0
    with pytest.raises(ZeroDivisionError):
        engine.on_event(broken)
    assert engine._early is None
