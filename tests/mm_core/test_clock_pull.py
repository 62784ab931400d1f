"""A clock fault pulls our resting quotes, as a stale market-data feed does: a sample that is not
compliant, or no sample for longer than max_clock_age (seen by the timer), cancels every quote at
once; quoting resumes by itself with the next compliant sample. Replay of the same inputs makes
the same decisions and ends in the same state."""
from mm_core.engine import feed_batched
from mm_core.events import ClockSample, MarketData, SendOrder, Timer
from mm_core.protocol import moldudp64
from mm_core.risk import TradingState
from mm_core.types import OrderKind
from tests.mm_core.test_modify import Exchange, drive, mine
from tests.mm_core.test_oms_halt import alerts
from tests.mm_core.wire import MS, S, make_engine


class Recorded:
    """The engine, with every event it is given and every order it sends kept in order."""

    def __init__(self, engine) -> None:
        self.engine, self.events, self.sent = engine, [], []

    def on_event(self, event):
        self.events.append(event)
        actions = self.engine.on_event(event)
        self.sent += orders(actions)
        return actions


def orders(actions) -> list[tuple]:
    return [(a.intent.kind, a.intent.token, a.intent.price, a.intent.qty) for a in actions
            if isinstance(a, SendOrder)]


def kinds(actions) -> list[OrderKind]:
    return [a.intent.kind for a in actions if isinstance(a, SendOrder)]


def heartbeat(venue: Exchange, now: int):
    """A MoldUDP64 heartbeat of the venue's feed: the market data stays alive."""
    return MarketData(moldudp64.encode(moldudp64.Heartbeat("TEST000001", venue.seq)), now)


def test_a_noncompliant_clock_pulls_the_quotes_and_a_compliant_one_resumes_them():
    engine, venue, now = make_engine(), Exchange(), 2 * S
    rec = Recorded(engine)
    drive(rec, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now), now)
    assert len(mine(venue, "B")) == len(mine(venue, "S")) == 1
    now += 100 * MS
    acts = drive(rec, venue, [ClockSample(now, False)], now)
    assert kinds(acts) == [OrderKind.CANCEL, OrderKind.CANCEL]
    assert "clock-fault" in alerts(acts)
    assert not mine(venue, "B") and not mine(venue, "S")
    assert engine.risk.state is TradingState.ACTIVE          # nothing was presented: no latch
    # market data and timers while the clock is bad put nothing back
    now += 100 * MS
    acts = drive(rec, venue, venue.others("B", 300, 1_000_000, now) + [Timer(now)], now)
    assert not kinds(acts)
    now += 100 * MS
    acts = drive(rec, venue, [ClockSample(now, True)], now)
    assert "clock-recovered" in alerts(acts)
    assert kinds(acts) == [OrderKind.ENTER, OrderKind.ENTER]
    assert len(mine(venue, "B")) == len(mine(venue, "S")) == 1
    assert engine.risk.state is TradingState.ACTIVE
    # replay: a fresh engine given the same inputs decides the same and ends in the same state
    fresh = make_engine()
    assert [o for ev in rec.events for o in orders(fresh.on_event(ev))] == rec.sent
    assert fresh.state_hash() == engine.state_hash()


def test_a_clock_gone_quiet_is_seen_by_the_timer_and_pulls_the_quotes():
    engine, venue, now = make_engine(), Exchange(), 2 * S
    rec = Recorded(engine)
    drive(rec, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now)
          + [ClockSample(now, True)], now)
    start = now
    # market data keeps arriving, clock samples stop: the timer finds the clock stale after 3 s
    for _ in range(3):
        now += S
        acts = drive(rec, venue, [heartbeat(venue, now), Timer(now)], now)
        assert not kinds(acts)
    now = start + 3 * S + 500 * MS
    acts = drive(rec, venue, [heartbeat(venue, now), Timer(now)], now)
    assert kinds(acts) == [OrderKind.CANCEL, OrderKind.CANCEL]
    assert "clock-fault" in alerts(acts) and "clock-stale" in alerts(acts)["clock-fault"]
    assert not mine(venue, "B") and not mine(venue, "S")
    assert engine.risk.state is TradingState.ACTIVE
    now += 100 * MS
    acts = drive(rec, venue, [ClockSample(now, True)], now)
    assert kinds(acts) == [OrderKind.ENTER, OrderKind.ENTER]
    # replay, one by one and as recovery's batch path takes the packets: the same end state
    replays_alike(engine, rec)


def replays_alike(engine, rec: Recorded) -> None:
    """A fresh engine given rec's events one by one sends the same orders and ends in engine's
    state, and so does one given them as replay's batch path takes them."""
    fresh = make_engine()
    assert [o for ev in rec.events for o in orders(fresh.on_event(ev))] == rec.sent
    assert fresh.state_hash() == engine.state_hash()
    batched = make_engine()
    feed_batched(batched, rec.events)
    assert batched.state_hash() == engine.state_hash()
