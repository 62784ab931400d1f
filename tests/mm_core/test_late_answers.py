"""The engine against a slow or confused venue: an answer about an accepted order the venue cannot
give once its cancel timed out halts trading (journaled, fail-closed) instead of being applied; a
cancel already on its way is sent once, not again by every later pull; a late accept of an order
we pulled leaves it pending that cancel; fills that beat our cancel are counted in the METRICS
summary; and an order whose bytes cannot be encoded leaves no trace in the OMS or the gateway."""
import dataclasses

import pytest

from mm_core.config import EngineConfig, Symbols
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, OperatorCommand, SendOrder, Timer, VenueMessage
from mm_core.oms import OrderState
from mm_core.protocol import ouch, soupbintcp
from mm_core.protocol.errors import BadField
from mm_core.risk import TradingState
from mm_core.types import OrderKind
from tests.mm_core.test_gateway_answers import quoting
from tests.mm_core.test_modify import Exchange, drive, mine
from tests.mm_core.test_oms_halt import alerts, executed
from tests.mm_core.wire import ACME, MS, S, SYMBOLS, gateway, make_engine


def frame(msg, now: int) -> VenueMessage:
    return VenueMessage(soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(msg))), now)


def cancel_timed_out():
    """Quoting; our ACME quotes pulled by a symbol kill, the venue never answers the cancels, and
    the ack timeout passes: the bid is outcome-unknown, accepted, its cancel sent."""
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    now += MS
    engine.on_event(OperatorCommand(now, "kill", "ops", "test", "symbol", ACME))
    now += 3 * S
    engine.on_event(Timer(now))
    order = engine.oms.get(bid.token)
    assert order.state is OrderState.UNKNOWN and order.acked and order.cancel_sent
    return engine, bid, order, now


def assert_halted_unapplied(engine, acts, order, token: str) -> None:
    assert engine.counts["halts"] == 1 and engine.risk.state is TradingState.HALTED
    assert "unreconciled" in engine.risk.faults
    assert token in alerts(acts)["halt"]
    assert order.state is OrderState.UNKNOWN and token in engine.oms.live
    assert token in engine.risk.working_orders()      # the gateway still counts it resting


def test_a_rejected_of_an_accepted_order_whose_cancel_timed_out_halts():
    engine, bid, order, now = cancel_timed_out()
    acts = engine.on_event(frame(ouch.Rejected(now, bid.token, "X"), now + 1))
    assert_halted_unapplied(engine, acts, order, bid.token)


def test_a_second_accepted_of_an_order_whose_cancel_timed_out_halts():
    engine, bid, order, now = cancel_timed_out()
    ref, unknown = order.venue_ref, engine.oms.counts()[1]
    dup = ouch.Accepted(now, bid.token, "B", bid.shares, "ACME", bid.price, 99999, "MM01", "Y",
                        424242, "P", "N", 0, "N", "L", " ")
    acts = engine.on_event(frame(dup, now + 1))
    assert_halted_unapplied(engine, acts, order, bid.token)
    assert order.venue_ref == ref and engine.oms.counts()[1] == unknown


def cancels(actions) -> list[str]:
    return [a.intent.token for a in actions if isinstance(a, SendOrder) and a.intent.kind is OrderKind.CANCEL]


def test_timed_out_enters_are_pulled_once_and_a_late_accept_keeps_the_cancel():
    engine, venue = make_engine(), Exchange()
    now = 2 * S
    queued = []                      # our messages, held back by a slow venue
    for ev in venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now):
        queued += [a for a in engine.on_event(ev) if isinstance(a, SendOrder)]
    tokens = [a.intent.token for a in queued]
    assert len(tokens) == 2
    # the timeout, a stale book, an unhealthy clock and the HALTED latch all pull: one cancel each
    now += 3 * S
    acts = engine.on_event(Timer(now))
    assert sorted(cancels(acts)) == sorted(tokens) and engine.risk.state is TradingState.HALTED
    for k in range(3):
        assert cancels(engine.on_event(Timer(now + (k + 1) * 100 * MS))) == []
    assert engine.counts["cancels_sent"] == 2
    queued += [a for a in acts if isinstance(a, SendOrder)]
    answers = [a for a in venue.ours(queued, now + MS) if isinstance(a, VenueMessage)]
    engine.on_event(answers[0])                       # the first enter's late Accepted
    first = engine.oms.get(tokens[0])
    assert first.state is OrderState.PENDING_CANCEL and first.cancel_sent
    for answer in answers[1:]:
        engine.on_event(answer)
    assert [engine.oms.get(t).state for t in tokens] == [OrderState.CANCELED] * 2
    assert engine.counts["halts"] == 0 and engine.counts["cancels_sent"] == 2


def test_fills_after_our_cancel_are_reported_also_after_it_timed_out():
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    now += MS
    engine.on_event(OperatorCommand(now, "kill", "ops", "test", "symbol", ACME))
    engine.on_event(executed(bid.token, 100, bid.price, 77, now + 1))     # before the cancel landed
    now += 3 * S
    engine.on_event(Timer(now))
    assert engine.oms.get(bid.token).state is OrderState.UNKNOWN
    engine.on_event(executed(bid.token, 50, bid.price, 78, now + 1))      # ... after it timed out
    doc = engine.summary()
    assert doc["fills_after_cancel"] == {"fills": 2, "qty": 150}
    assert doc["symbols"][str(ACME)]["fills_after_cancel"] == 2
    assert engine.counts["halts"] == 0


def test_an_order_that_cannot_be_encoded_leaves_no_trace():
    bad = Symbols(tuple(dataclasses.replace(s, name="ÄCME") if s.id == ACME else s for s in SYMBOLS.symbols),
                  SYMBOLS.pairs)
    engine = Engine(EngineConfig(), bad, gateway())
    for ev in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(ev)
    venue, now = Exchange(), 2 * S
    with pytest.raises(BadField, match="not ASCII"):
        drive(engine, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now), now)
    assert engine.oms.orders == {} and engine.risk.working_orders() == {}
