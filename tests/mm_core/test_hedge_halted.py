"""No hedge IOC goes into a halted hedge instrument: the hedge waits, and goes out when the
instrument trades again (ITCH Stock Trading Action H, then T)."""
from mm_core.events import ClockSample, Timer
from mm_core.protocol import itch
from mm_core.types import Purpose, Side
from tests.mm_core.test_engine import QUIET_GUARD, drive_long_in_bolt, keep_alive, long_in_bolt
from tests.mm_core.test_sig_engine import Lockstep
from tests.mm_core.wire import ACME, BOLT, MS, S, Feed, Venue, md, orders, run


def _hedges(acts):
    return [o.intent for o in orders(acts) if o.intent.purpose is Purpose.HEDGE]


def _trading_action(state: str):
    return itch.StockTradingAction(ACME, 0, 0, "ACME", state, " ", "")


def test_no_hedge_ioc_into_a_halted_hedge_instrument_and_hedged_when_it_resumes():
    engine, venue, feed, now = long_in_bolt()
    now += MS
    run(engine, venue, md(feed.packet(_trading_action("H")), now), now)
    assert engine.halted_symbols[ACME]
    sent = []
    for _ in range(10):
        now += 200 * MS
        sent += _hedges(keep_alive(engine, venue, now))
    assert not sent, [(i.symbol_id, i.side.name, i.qty, i.price) for i in sent]
    assert engine.hedge_hold[ACME] == 0          # ACME's quotes are not held for a hedge that waits
    now += MS
    resumed = run(engine, venue, md(feed.packet(_trading_action("T")), now), now)
    for _ in range(3):
        now += 200 * MS
        resumed += keep_alive(engine, venue, now)
    hedges = _hedges(resumed)
    assert hedges and hedges[0].symbol_id == ACME and hedges[0].side is Side.SELL
    assert engine.inventory.position[BOLT] > 0


def _feed(lock, venue, event) -> list:
    """One event into both engines, and every venue reply it causes; returns all actions."""
    out = pending = lock.on_event(event)
    for _ in range(20):
        replies = venue.answer(pending, event.now_ns)
        if not replies:
            break
        pending = []
        for r in replies:
            pending += lock.on_event(r)
        out += pending
    return out


def test_the_c_reaction_and_the_reference_agree_through_a_hedge_instrument_halt():
    """The compiled engine and the reference, in lockstep, through the same halt of the hedge
    instrument: the C check (symbol_acts) skips it exactly as Engine._hedge does."""
    lock, feed, venue = Lockstep(QUIET_GUARD), Feed(), Venue()
    lock.on_event(ClockSample(2 * S, True))
    t = drive_long_in_bolt(lambda ev: _feed(lock, venue, ev), venue, feed)
    assert lock.kernel.inventory.position[BOLT] >= QUIET_GUARD.hedge.trigger
    t += MS
    _feed(lock, venue, md(feed.packet(_trading_action("H")), t))
    sent = []
    for i in range(6):
        t += 200 * MS
        sent += _hedges(_feed(lock, venue, ClockSample(t, True)) + _feed(lock, venue, Timer(t)))
        t += MS
        sent += _hedges(_feed(lock, venue, md(feed.packet(feed.add(BOLT, "S", 100, 505_200 + 50 * i)), t)))
    assert not sent
    t += MS
    resumed = _feed(lock, venue, md(feed.packet(_trading_action("T")), t))
    for _ in range(3):
        t += 200 * MS
        resumed += _feed(lock, venue, ClockSample(t, True)) + _feed(lock, venue, Timer(t))
    assert _hedges(resumed)
    assert lock.kernel.state_hash() == lock.reference.state_hash()
