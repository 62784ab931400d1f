"""No stale or late mid values a fill: while the book is stale (a MoldUDP64 gap) a fill's spread
and the markouts due are counted unmarked (book stale), and nothing of them reaches the guard;
a markout whose symbol has no mid at its horizon (the book emptied by a session change) is counted
unmarked, not marked at the first mid a minute later. The compiled engine and the Python reference
end in the same state."""
import pytest

from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, Timer
from mm_core.protocol import moldudp64
from tests.mm_core.wire import ACME, BOLT, MS, S, SYMBOLS, Feed, Venue, gateway, md, run, two_sided


def _engine(compiled: bool) -> Engine:
    engine = Engine(EngineConfig(), SYMBOLS, gateway(), compiled=compiled)
    for ev in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(ev)
    return engine


def _quoting(compiled: bool):
    engine, venue, feed = _engine(compiled), Venue(), Feed()
    msgs, refs = two_sided(feed, ACME, 1_000_000, 1_001_000)
    run(engine, venue, md(feed.packet(*msgs), S + MS), S + MS)
    bid = venue.resting("ACME", "B")[0]
    return engine, venue, feed, refs, bid, venue.orders[bid]["price"]


def _gap(feed: Feed, refs: dict) -> bytes:
    """The market falls ten cents in a packet that is lost; the next one shows the gap."""
    feed.packet(*[Feed.delete(refs[p]) for p in (1_000_000, 999_900, 999_800)],
                feed.add(ACME, "B", 500, 990_000), feed.add(ACME, "S", 500, 991_000),
                *[Feed.delete(refs[p]) for p in (1_001_000, 1_001_100, 1_001_200)])
    return feed.packet(feed.add(ACME, "B", 100, 989_000))


def _markout_in_gap(compiled: bool, timer: bool = False) -> Engine:
    engine, venue, feed, refs, bid, px = _quoting(compiled)
    t0 = S + 2 * MS
    run(engine, venue, venue.fill(bid, 100, t0, px), t0)
    run(engine, venue, md(_gap(feed, refs), t0 + 30 * MS), t0 + 30 * MS)
    assert engine.stale
    t = t0 + 150 * MS                   # past the 100 ms horizon, the book still stale
    # a partial answer (7..13: 14 still missing), so the book stays stale after it too (the whole
    # answer, 7..14, now closes the gap: 15, which came past it, is kept and applied after it)
    run(engine, venue, Timer(t) if timer else md(feed.resend(7, 7), t), t)
    return engine


def _markout_in_gap_timer(compiled: bool) -> Engine:
    return _markout_in_gap(compiled, timer=True)


def _fill_in_gap(compiled: bool) -> Engine:
    engine, venue, feed, refs, bid, px = _quoting(compiled)
    t0 = S + 2 * MS
    engine.on_event(md(_gap(feed, refs), t0))
    assert engine.stale
    engine.on_event(venue.fill(bid, 100, t0 + MS, px))     # hit before our pull lands
    engine.on_event(md(feed.resend(7, 9), t0 + 5 * MS))
    assert not engine.stale and engine.mid2[ACME] == 2 * 990_500   # the market was 98 c lower
    return engine


def _session_change(compiled: bool) -> Engine:
    engine, venue, feed, refs, bid, px = _quoting(compiled)
    t = S + 2 * MS
    run(engine, venue, venue.fill(bid, 100, t, px), t)
    t += MS
    engine.on_event(md(moldudp64.encode(moldudp64.EndOfSession(feed.session, feed.seq)), t))
    new = Feed("SESSION002")
    t += MS
    engine.on_event(md(new.packet(new.add(BOLT, "B", 300, 500_000), new.add(BOLT, "S", 300, 501_000)), t))
    assert engine.mid2[ACME] == 0 and not engine.stale
    t += 200 * MS
    engine.on_event(md(new.packet(new.add(BOLT, "B", 100, 499_900)), t))
    t += 60 * S                         # ACME's new book, five dollars lower, a minute later
    engine.on_event(md(new.packet(new.add(ACME, "B", 300, 950_000), new.add(ACME, "S", 300, 951_000)), t))
    return engine


@pytest.mark.parametrize("timer", [False, True])
@pytest.mark.parametrize("compiled", [True, False])
def test_a_markout_due_while_the_book_is_stale_is_unmarked(compiled, timer):
    engine = _markout_in_gap(compiled, timer)
    m = engine.metrics
    assert m.markout_n[0] == 0 and m.markout_x2[0] == 0 and m.adverse == 0
    assert m.markout_unmarked[0] == 1 and m.markout_unmarked_stale[0] == 1
    assert m.recent_markout[ACME] == 0.0 and m.marked_by[ACME] == 0   # the guard heard nothing
    doc = engine.summary()
    assert doc["markout_per_share"][str(100 * MS)] is None
    assert doc["markout_unmarked"][str(100 * MS)] == {"fills": 1, "book_stale": 1}


@pytest.mark.parametrize("compiled", [True, False])
def test_a_fill_while_the_book_is_stale_captures_no_spread(compiled):
    engine = _fill_in_gap(compiled)
    m = engine.metrics
    assert m.filled_qty[0] == 100 and m.spread_marked_qty[ACME] == 0 and m.spread_x2[ACME] == 0
    assert engine.summary()["stale_fill_qty"] == {"quote": 100, "hedge": 0}


@pytest.mark.parametrize("compiled", [True, False])
def test_a_markout_with_no_mid_at_its_horizon_is_not_marked_a_minute_later(compiled):
    engine = _session_change(compiled)
    m = engine.metrics
    assert m.markout_n == [0, 0, 0] and m.markout_x2 == [0, 0, 0]
    assert m.markout_unmarked == [1, 1, 1] and m.markout_unmarked_stale == [0, 0, 0]
    assert m.recent_markout[ACME] == 0.0 and m.adverse == 0
    assert not any(m.pending) and m.blocked == []


@pytest.mark.parametrize("scenario", [_markout_in_gap, _markout_in_gap_timer, _fill_in_gap, _session_change])
def test_compiled_and_reference_agree(scenario):
    assert scenario(True).state_hash() == scenario(False).state_hash()
