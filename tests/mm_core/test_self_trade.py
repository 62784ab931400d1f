"""Self-trade prevention in the engine: a requote never sends a side into our own opposite quote
(the side moving away goes first), and a hedge IOC never executes against our own quote in the
hedge instrument (those quotes are pulled first, and that side stays unquoted while the hedge is
worked). The risk gateway's SELF_TRADE check (tests/risk/test_checks.py) is the backstop."""
from mm_core.types import OrderKind, Purpose, Side
from tests.mm_core.test_engine import keep_alive, long_in_bolt, quoted_book
from tests.mm_core.wire import ACME, BOLT, MS, S, Feed, md, orders, run, settle, two_sided


def _live(engine, symbol_id: int, side: Side) -> list:
    return [o for o in engine.oms.live.values() if o.symbol_id == symbol_id and o.side is side]


def _move_up(feed, refs: dict, bid: int, now: int):
    """Everyone else's ACME book (its `refs`) replaced by one at bid / bid + 2 ticks."""
    moved = [Feed.delete(ref) for ref in refs.values()]
    up, new_refs = two_sided(feed, ACME, bid, bid + 200)
    return md(feed.packet(*moved, *up), now), new_refs


def test_requote_through_our_own_ask_moves_the_ask_first():
    engine, venue, feed, refs, acts = quoted_book()
    _, ask = (o.intent for o in orders(acts))
    # the market moves up four ticks: the new bid is at or above our resting ask
    move, _ = _move_up(feed, refs, 1_000_300, 3 * S)
    sent = orders(run(engine, venue, move, 3 * S))
    replaces = [o.intent for o in sent if o.intent.kind is OrderKind.REPLACE]
    assert [r.side for r in replaces] == [Side.SELL, Side.BUY]          # the ask moved away first
    new_ask, new_bid = replaces
    assert new_bid.price >= ask.price and new_bid.price < new_ask.price
    assert all(o.decision.allowed for o in sent)                       # nothing for the gateway to stop
    assert engine.counts["denials"] == 0


def test_requote_holds_the_bid_while_our_ask_cannot_move_yet():
    engine, venue, feed, refs, acts = quoted_book()
    move, refs = _move_up(feed, refs, 1_000_300, 3 * S)
    first = engine.on_event(move)          # the venue has not answered the ask's replace yet
    ask = next(o.intent for o in orders(first) if o.intent.side is Side.SELL)
    assert ask.kind is OrderKind.REPLACE
    # the market moves up again, past the price that replacement goes to: the ask cannot move
    # while its replace is pending, so the bid waits rather than cross it
    move, refs = _move_up(feed, refs, ask.price + 400, 3 * S + MS)
    second = engine.on_event(move)
    assert not [o for o in orders(second) if o.intent.side is Side.BUY]
    assert engine.counts["denials"] == 0
    # answered: both sides follow the market, the ask first
    later = orders(settle(engine, venue, first + second, 3 * S + MS))
    later += orders(run(engine, venue, md(feed.packet(feed.add(ACME, "B", 100, ask.price + 300)),
                                          3 * S + 2 * MS), 3 * S + 2 * MS))
    sides = [o.intent.side for o in later if o.intent.kind is OrderKind.REPLACE]
    assert sides[:2] == [Side.SELL, Side.BUY]
    assert engine.counts["denials"] == 0


def test_hedge_pulls_our_own_crossed_quote_before_the_ioc():
    engine, venue, feed, now = long_in_bolt()
    own_bid = _live(engine, ACME, Side.BUY)
    assert own_bid                       # our ACME bid rests where a crossing sell IOC would reach
    seen_pull = False
    hedge = None
    for _ in range(10):
        now += 200 * MS
        resting_bids = [o.price for o in _live(engine, ACME, Side.BUY)]
        acts = keep_alive(engine, venue, now)
        for o in orders(acts):
            it = o.intent
            if it.purpose is Purpose.HEDGE:
                hedge = it
                # when the IOC left, none of our ACME bids could be reached by it
                assert all(price < hedge.price for price in resting_bids)
                break
            if it.symbol_id == ACME and it.side is Side.BUY:
                # while the hedge waits, our ACME bid is only ever pulled, never re-entered
                assert it.kind is OrderKind.CANCEL
                seen_pull = True
        if hedge is not None:
            break
        assert engine.hedge_hold[ACME] in (0, -1)
    assert seen_pull and hedge is not None
    assert hedge.symbol_id == ACME and hedge.side is Side.SELL and hedge.tif == 0
    assert engine.hedge_hold[ACME] == -1     # the bid side stays unquoted while the hedge is worked
    assert engine.counts["denials"] == 0


def test_hedge_side_is_quoted_again_once_nothing_is_left_to_hedge():
    engine, venue, feed, now = long_in_bolt()
    hedge = None
    for _ in range(10):
        now += 200 * MS
        hedge = next((o.intent for o in orders(keep_alive(engine, venue, now))
                      if o.intent.purpose is Purpose.HEDGE), None)
        if hedge is not None:
            break
    assert hedge is not None and engine.hedge_hold[ACME] == -1
    # the whole IOC fills: the hedge is done, and the ACME bid comes back on the next decision
    run(engine, venue, venue.fill(hedge.token, hedge.qty, now), now)
    for _ in range(5):
        now += 200 * MS
        acts = keep_alive(engine, venue, now)
        if engine.hedge_hold[ACME] == 0:
            break
    assert engine.hedge_hold[ACME] == 0
    assert engine.hedger.hedged(BOLT) == -hedge.qty
