"""The quote guard's fill lane (Engine._fill_lane): on our own fill of a live quote the guard
decides from the raw OUCH Executed frame and its pulls reach the early sink before the fill is
decoded and booked. It must trip on exactly the fills the guard trips on when it runs in
_on_fill after the booking, pull the same orders (never the one the fill ends), leave the same
state, and journal the same records, live and in replay."""
from __future__ import annotations

import pytest

from journal import Journal
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, SendOrder, Timer, VenueMessage
from mm_core.guard import GuardParams
from mm_core.oms import OrderState
from mm_core.protocol import ouch, soupbintcp
from mm_core.runnerrecords import order_sent_payload
from mm_core.types import OrderKind, Purpose, Side, make_intent
from recovery.replay import replay_journal
from tests.mm_core.wire import (
    ACME, MS, S, SYMBOLS, Feed, Venue, gateway, md, run, simulate, two_sided,
)
from tests.recovery.journaling import RunnerLike

SPIKE1 = EngineConfig(guard=GuardParams(fill_spike_count=1))      # any fill of ours trips its side
TOUCHY = EngineConfig(guard=GuardParams(fill_spike_count=2, fill_window_ns=3 * S))


def engine_for(config: EngineConfig | None = None, *, lane: bool = True, compiled: bool = True) -> Engine:
    """make_engine's engine; lane=False: the guard hears of our fills only in _on_fill, after
    the booking (the order of work before the lane)."""
    engine = Engine(config or EngineConfig(), SYMBOLS, gateway(), compiled=compiled)
    for ev in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(ev)
    if not lane:
        engine._fill_lane = lambda raw, actions: None
    return engine


def key(action) -> tuple:
    """An action as the runner carries it out: an order's bytes and ORDER_SENT record, a note's."""
    if type(action) is SendOrder:
        return ("order", action.packet, order_sent_payload(action, 0), action.intent.purpose)
    return ("note", action.rtype, action.payload)


def session(engine: Engine, events) -> tuple[list, int]:
    """Every event through `engine` with an early sink: per event, (pulls at the sink, the rest),
    and how many of our fills sent pulls to the sink."""
    early: list = []
    engine.urgent = early.extend
    out, fill_trips = [], 0
    for ev in events:
        before = len(early)
        rest = engine.on_event(ev)
        pulls = early[before:]
        fill_trips += bool(pulls) and type(ev) is VenueMessage
        out.append(([key(a) for a in pulls], [key(a) for a in rest]))
    return out, fill_trips


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("seed,config", [(1, None), (3, None), (1, TOUCHY), (2, TOUCHY)])
def test_the_lane_trips_and_pulls_as_the_guard_after_the_booking(seed, config, compiled):
    events, _, _ = simulate(seed, 6_000, config)
    lane, booked_first = engine_for(config, compiled=compiled), engine_for(config, lane=False, compiled=compiled)
    out, fill_trips = session(lane, events)
    assert fill_trips >= 1, "the seeded session no longer trips the guard on a fill"
    assert out == session(booked_first, events)[0]
    assert lane.state_hash() == booked_first.state_hash()
    assert lane.counts == booked_first.counts


def quoted(config: EngineConfig = SPIKE1, **kw) -> tuple[Engine, Venue, dict]:
    """Our quotes resting on ACME, accepted; returns (engine, venue, {side: token})."""
    engine, venue, feed = engine_for(config, **kw), Venue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    tokens = {o.side: o.token for o in engine.oms.live.values() if o.purpose is Purpose.QUOTE}
    assert set(tokens) == {Side.BUY, Side.SELL}
    assert all(engine.oms.get(t).state is OrderState.ACCEPTED for t in tokens.values())
    return engine, venue, tokens


class Sink:
    """The early sink, noting what the engine had booked when the guard's pulls arrived (`calls`),
    and keeping the events' first orders it gets too (`firsts`: test_early_order)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.calls: list[tuple[list, int, int]] = []
        self.firsts: list = []
        engine.urgent = self

    def __call__(self, pulls) -> None:
        if pulls[0].intent.purpose is not Purpose.GUARD_CANCEL:
            self.firsts.extend(pulls)
            return
        self.calls.append((list(pulls), self.engine.counts["fills"], self.engine.inventory.position[ACME]))


def both(frame_of, config: EngineConfig = SPIKE1):
    """The same fill (frame_of(venue, tokens) -> VenueMessage) through a lane engine and one that
    books first: (lane engine, its sink, its actions, the other's actions)."""
    out = []
    for lane in (True, False):
        engine, venue, tokens = quoted(config, lane=lane)
        sink = Sink(engine)
        actions = engine.on_event(frame_of(venue, tokens))
        out.append((engine, sink, actions))
    (engine, sink, actions), (other, other_sink, other_actions) = out
    assert [key(a) for c in sink.calls for a in c[0]] == [key(a) for c in other_sink.calls for a in c[0]]
    assert [key(a) for a in actions] == [key(a) for a in other_actions]
    assert engine.state_hash() == other.state_hash()
    return engine, sink, actions


def test_a_partial_fill_pulls_the_filled_quote_before_booking_it():
    engine, sink, actions = both(lambda venue, t: venue.fill(t[Side.BUY], 40, 3 * S))
    [(pulls, fills, position)] = sink.calls
    bid = engine.oms.get(pulls[0].intent.token)
    assert [(p.intent.kind, p.intent.purpose, p.intent.side) for p in pulls] == [
        (OrderKind.CANCEL, Purpose.GUARD_CANCEL, Side.BUY)]
    assert pulls[0].packet == bid.cancel_packet              # the bytes encoded at its accept
    assert (fills, position) == (0, 0)                       # nothing booked when the pull left
    assert (bid.state, bid.filled, bid.fills_after_cancel) == (OrderState.PENDING_CANCEL, 40, 0)
    assert engine.counts["fills"] == 1 and engine.inventory.position[ACME] == 40
    assert engine.counts["guard_trips"] == 1
    # the guard heard of the fill once (the lane), not again in _on_fill
    assert engine.guards[ACME].state_items()[10] == [[3 * S], []]


def test_a_fill_that_ends_the_quote_pulls_nothing_of_it():
    engine, sink, actions = both(lambda venue, t: venue.fill(t[Side.BUY], engine_qty(venue, t), 3 * S))
    assert sink.calls == []                                  # the only bid at risk is the filled one
    assert engine.counts["guard_trips"] == 1 and engine.counts["cancels_sent"] == 0
    assert any(type(a) is not SendOrder and b"pulled=0" in a.payload for a in actions)
    assert not any(type(a) is SendOrder and a.intent.purpose is Purpose.GUARD_CANCEL for a in actions)


def engine_qty(venue: Venue, tokens: dict) -> int:
    return venue.orders[tokens[Side.BUY]]["qty"]


def test_a_fill_that_ends_a_quote_being_replaced_pulls_neither_it_nor_its_replacement():
    """The OMS abandons an unanswered replacement of an order a fill ends: no cancel for either."""
    for lane in (True, False):
        engine, venue, tokens = quoted(lane=lane)
        bid = engine.oms.get(tokens[Side.BUY])
        replacement = make_intent(OrderKind.REPLACE, engine.oms.new_token(), ACME, Side.BUY, bid.price - 100,
                                  bid.qty, engine.ids, orig_token=bid.token)
        engine.oms.on_sent(replacement, 3 * S)          # a requote in flight, as _submit leaves it
        sink = Sink(engine)
        actions = engine.on_event(venue.fill(bid.token, bid.leaves, 3 * S + MS))
        assert sink.calls == []
        assert not any(type(a) is SendOrder and a.intent.purpose is Purpose.GUARD_CANCEL for a in actions)
        assert engine.oms.get(replacement.token).state is OrderState.REJECTED
        assert engine.counts["guard_trips"] == 1 and engine.counts["halts"] == 0


def test_a_fill_that_does_not_trip_is_heard_once_and_pulls_nothing_early():
    engine, sink, _ = both(lambda venue, t: venue.fill(t[Side.SELL], 10, 3 * S), EngineConfig())
    assert sink.calls == [] and engine.counts["guard_trips"] == 0
    assert engine.guards[ACME].state_items()[10] == [[], [3 * S]]


def test_a_fill_of_a_hedge_order_is_not_the_lanes():
    """A hedge's fill is the cost of hedging, never the guard's: the lane leaves it alone."""
    engine, venue, _ = quoted()
    hedge = make_intent(OrderKind.ENTER, engine.oms.new_token(), ACME, Side.SELL, 999_900, 100, engine.ids,
                        tif=ouch.TIF_IOC, purpose=Purpose.HEDGE)
    engine.oms.on_sent(hedge, 3 * S)
    engine.oms.on_accepted(hedge.token, 77, 3 * S)
    venue.orders[hedge.token] = dict(side="S", marked="S", qty=100, price=999_900, stock="ACME", tif=0)
    frame = venue.fill(hedge.token, 100, 3 * S + MS)
    assert engine._fill_lane(frame.packet, []) is None
    sink = Sink(engine)
    engine.on_event(frame)
    assert sink.calls == [] and engine.counts["guard_trips"] == 0
    assert engine.guards[ACME].state_items()[10] == [[], []]


def executed_frame(token: str, shares: int, flag: bytes = b"A") -> VenueMessage:
    raw = bytearray(soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(
        ouch.Executed(3 * S, token, shares, 999_900, "A", 9)))))
    raw[34:35] = flag
    return VenueMessage(bytes(raw), 3 * S)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_fill_the_oms_or_the_codec_refuses_never_reaches_the_guard(compiled):
    """An over-fill (the engine halts) or a frame the decoder refuses (a protocol error): as
    before the lane, nothing reaches the guard and no pull goes out early."""
    for frame_of, what in ((lambda t, leaves: executed_frame(t, leaves + 1), "halts"),
                           (lambda t, leaves: executed_frame(t, 10, b"\xff"), "protocol_errors")):
        engine, venue, tokens = quoted(compiled=compiled)
        bid = engine.oms.get(tokens[Side.BUY])
        sink = Sink(engine)
        engine.on_event(frame_of(bid.token, bid.leaves))
        assert sink.calls == [] and engine.counts[what] == 1
        assert engine.guards[ACME].state_items()[10] == [[], []] and engine.counts["guard_trips"] == 0


def test_the_lane_reads_the_frame_at_the_codecs_offsets():
    frame = executed_frame("MM00000000ABCD", 123).packet
    msg = ouch.decode_outbound(soupbintcp.decode(frame, soupbintcp.Direction.FROM_SERVER).payload)
    assert (frame[12:26].decode().rstrip(" "), int.from_bytes(frame[26:30], "big")) == (msg.token, msg.executed_shares)
    assert frame[34] == ord(msg.liquidity_flag)


def test_pulls_journaled_at_the_sink_replay_to_the_same_records_and_state(tmp_path):
    """A journal written as the runner writes it (the sink's pulls journaled inside on_event) replays
    to the same orders and state hash, batched or not."""
    path = str(tmp_path / "j")
    events = [ClockSample(S, True), Timer(S)] + simulate(1, 6_000, TOUCHY)[0]
    with Journal(path) as journal:
        live = RunnerLike(Engine(TOUCHY, SYMBOLS, gateway()), journal)
        live.start(S)
        pulled = []

        def sink(pulls) -> None:
            pulled.extend(pulls)
            live.act(pulls, live.engine.now)
        live.engine.urgent = sink
        for ev in events:
            live.feed(ev)
    assert any(a.intent.purpose is Purpose.GUARD_CANCEL for a in pulled)
    for batch in (True, False):
        result = replay_journal(path, Engine(TOUCHY, SYMBOLS, gateway()), batch=batch)
        assert result.deterministic, result.divergences[:3]
        assert result.orders_checked > 0
        assert result.state_hash == live.engine.state_hash()


def test_the_kernels_one_call_is_the_reference_guards_fill_then_evaluate():
    """fsig_own_fill_evaluate against SymbolGuard.on_own_fill_evaluate on a random fill stream:
    the same trips, the same state."""
    import random

    from mm_core._fastmd_cffi import ffi, lib
    from mm_core.guard import SymbolGuard
    from mm_core.sigkernel import SignalKernel, trip_of

    rng = random.Random(7)
    params = GuardParams(fill_spike_count=3, fill_window_ns=50 * MS, cooldown_ns=20 * MS)
    kernel, ref = SignalKernel(2, params, 0.1), SymbolGuard(1, params)
    out, now, trips = ffi.new("fsig_trip *"), S, 0
    for _ in range(2_000):
        now += rng.randrange(0, 10 * MS)
        bid = rng.random() < 0.5
        rc = lib.fsig_own_fill_evaluate(kernel.handle, 1, bid, now, out)
        assert rc in (lib.FSIG_OK, lib.FSIG_TRIPPED)
        expected = ref.on_own_fill_evaluate(bid, now)
        assert (trip_of(out) if rc == lib.FSIG_TRIPPED else None) == expected
        trips += expected is not None
    assert trips > 10
    assert kernel.guards[1].state_items() == ref.state_items()
