"""The guard's armed pulls: prepare() arms the pullable quotes, the runner plans their cancels'
ORDER_SENT payloads and bytes (mm_core.armedpulls), and a trip hands the engine's armed sink the
orders to pull before the pulls are built and counted. The pulls, their records and the state
must be what the built-first path gives; anything the plan does not cover goes that way."""
from __future__ import annotations

import pytest

from mm_core.armedpulls import ArmedPulls
from mm_core.fastbook import ffi
from mm_core.events import SendOrder
from mm_core.runnerrecords import order_sent_payload
from mm_core.types import OrderKind, Side, make_intent
from tests.mm_core.test_guard_lane import TOUCHY, Sink, engine_for, key, quoted
from tests.mm_core.wire import ACME, S, simulate


class ArmedSink:
    """An armed sink noting, when the guard fires, the orders and what the engine had done yet;
    `declines`: it returns None (as the runner does when its plan does not cover them)."""

    def __init__(self, engine, declines: bool = False) -> None:
        self.engine, self.declines = engine, declines
        self.fired: list[tuple[list, int, int]] = []
        self.booked: list[list[SendOrder]] = []
        engine.urgent_armed = self

    def __call__(self, orders):
        e = self.engine
        self.fired.append(([o.token for o in orders], e.counts["cancels_sent"], len(e.risk._cancels)))
        return None if self.declines else self.booked.append


def fill_bid(engine, venue, tokens):
    return engine.on_event(venue.fill(tokens[Side.BUY], 40, 3 * S))


def built_first():
    """The partial fill of our bid through an engine with no armed sink: (engine, sink, actions)."""
    engine, venue, tokens = quoted()
    sink = Sink(engine)
    engine.prepare()
    return engine, sink, fill_bid(engine, venue, tokens)


def test_an_armed_trip_fires_before_the_pulls_are_built_and_books_the_same_pulls():
    engine, venue, tokens = quoted()
    sink, armed = Sink(engine), ArmedSink(engine)
    engine.prepare()
    actions = fill_bid(engine, venue, tokens)
    # fired with the filled bid, before the gateway counted its cancel or the engine built it
    assert armed.fired == [([tokens[Side.BUY]], 0, 0)]
    assert sink.calls == []
    other, other_sink, other_actions = built_first()
    assert [key(a) for a in armed.booked[0]] == [key(a) for c in other_sink.calls for a in c[0]]
    assert [key(a) for a in actions] == [key(a) for a in other_actions]
    assert engine.state_hash() == other.state_hash()


def test_a_declined_fire_hands_the_built_pulls_to_the_early_sink():
    engine, venue, tokens = quoted()
    sink, armed = Sink(engine), ArmedSink(engine, declines=True)
    engine.prepare()
    fill_bid(engine, venue, tokens)
    assert len(armed.fired) == 1 and armed.booked == []
    other, other_sink, _ = built_first()
    assert [key(a) for c in sink.calls for a in c[0]] == [key(a) for c in other_sink.calls for a in c[0]]
    assert engine.state_hash() == other.state_hash()


def test_nothing_fires_when_the_oms_moved_since_the_arming():
    engine, venue, tokens = quoted()
    sink, armed = Sink(engine), ArmedSink(engine)
    engine.prepare()
    ask = engine.oms.get(tokens[Side.SELL])
    engine.oms.on_sent(make_intent(OrderKind.REPLACE, engine.oms.new_token(), ACME, Side.SELL, ask.price + 100,
                                   ask.qty, engine.ids, orig_token=ask.token), 3 * S - 1)
    fill_bid(engine, venue, tokens)
    assert armed.fired == [] and len(sink.calls) == 1


def planned(engine) -> ArmedPulls:
    engine.prepare()
    plan = ArmedPulls()
    plan.plan(engine, order_sent_payload)
    return plan


def test_the_plan_gives_the_records_the_built_pulls_would_have_under_the_send_key():
    engine, _, tokens = quoted()
    plan = planned(engine)
    bid, ask = (engine.oms.get(tokens[s]) for s in (Side.BUY, Side.SELL))
    verdict = (int(engine.risk.state), engine.risk.limits_version)
    key_, payloads, data = plan.out([bid, ask], 1_000, engine.armed_version, verdict)
    pulls = [engine.pull_plan(o) for o in (bid, ask)]
    assert data == pulls[0].packet + pulls[1].packet
    assert key_ == 1_000 + len(data) - 1
    assert payloads == [order_sent_payload(p, key_) for p in pulls]
    # a built pull (the gateway counting it) journals the same record
    built = engine._cancel_order(bid, pulls[0].intent.purpose)
    assert order_sent_payload(built, key_) == payloads[0]


def test_the_plan_covers_nothing_under_another_verdict_version_or_order():
    engine, _, tokens = quoted()
    plan = planned(engine)
    bid = engine.oms.get(tokens[Side.BUY])
    verdict = (int(engine.risk.state), engine.risk.limits_version)
    assert plan.out([bid], 0, engine.armed_version, (verdict[0], verdict[1] + 1)) is None
    assert plan.out([bid], 0, (0, 0), verdict) is None
    stranger = type("O", (), {"token": "NOT-ARMED"})()
    assert plan.out([bid, stranger], 0, engine.armed_version, verdict) is None
    assert plan.out([bid], 0, engine.armed_version, verdict) is not None


def test_re_planning_follows_a_new_arming():
    engine, venue, tokens = quoted()
    plan = planned(engine)
    before = dict(plan.plans)
    fill_bid(engine, venue, tokens)          # the OMS moves: the bid's cancel is pending
    engine.prepare()
    plan.plan(engine, order_sent_payload)
    assert set(before) == set(tokens.values())
    assert tokens[Side.BUY] not in plan.plans and plan.version == engine.armed_version


@pytest.mark.parametrize("seed,config", [(1, None), (2, TOUCHY), (3, TOUCHY)])
def test_the_c_lane_takes_the_fills_and_pulls_what_the_python_lane_does(seed, config):
    """A seeded session, prepare() between events: an engine whose own fills go through the C lane
    (flane_fire, here with no sink: it hears the fill, decides and picks the pulls, which the
    engine builds and hands to the early sink) against one on the Python lane: the same pulls,
    actions and state, and the C lane took fills."""
    events = simulate(seed, 6_000, config)[0]
    out, hashes, asked = [], [], []
    for c_lane in (True, False):
        engine = engine_for(config)
        early: list = []
        engine.urgent = early.extend
        if c_lane:
            engine.urgent_lane = lambda: asked.append(1) or ffi.NULL
        seen = []
        for ev in events:
            before = len(early)
            rest = engine.on_event(ev)
            seen.append(([key(a) for a in early[before:]], [key(a) for a in rest]))
            engine.prepare()
        out.append(seen)
        hashes.append(engine.state_hash())
    assert asked, "no fill took the C lane"
    assert out[0] == out[1]
    assert hashes[0] == hashes[1]
