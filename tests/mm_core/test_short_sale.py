"""Reg SHO marking of the engine's sells, end to end on real OUCH/ITCH bytes: Rule 200(g) (a sell
is marked long, OUCH side S, only when our position covers it and every other working sell, else
short, T), long-marked sells pulled before they could execute uncovered, and the Rule 201 price
test from ITCH 'Y' (no short sale at or below the national best bid)."""
import json

import pytest

from journal.catalogue import RecordType
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, JournalNote, Timer, VenueMessage
from mm_core.guard import GuardParams
from mm_core.inventory import within_order_caps
from mm_core.mdpath import MarketDataPath
from mm_core.oms import OrderState
from mm_core.orderwire import OrderWire
from mm_core.protocol import itch, ouch, soupbintcp
from mm_core.types import OrderKind, Purpose, Side
from recovery.reconcile import AdoptPending, apply
from tests.mm_core.wire import (
    ACME, BOLT, LIMITS_TEXT, MS, NAMES, S, SYMBOLS, Feed, Venue, gateway, md, orders, run, settle,
    two_sided,
)

QUIET_GUARD = GuardParams(fill_spike_count=1000, aggression_min_volume=10**9, vpin_bucket_volume=10**9)


def wire_side(action) -> str:
    return ouch.decode_inbound(soupbintcp.decode(action.packet).payload).side


def alerts(actions, kind):
    docs = [json.loads(a.payload) for a in actions if isinstance(a, JournalNote) and a.rtype == RecordType.METRICS]
    return [d["detail"] for d in docs if d.get("alert") == kind]


def reg_sho(symbol_id: int, action: str) -> itch.RegShoRestriction:
    return itch.RegShoRestriction(symbol_id, 0, 0, NAMES[symbol_id], action)


def engine_on(compiled: bool = True, config: EngineConfig | None = None, limits: str = LIMITS_TEXT) -> Engine:
    engine = Engine(config or EngineConfig(guard=QUIET_GUARD), SYMBOLS, gateway(limits), compiled=compiled)
    engine.on_event(JournalHealth(S, True))
    engine.on_event(ClockSample(S, True))
    engine.on_event(Timer(S))
    return engine


def quoted(compiled: bool = True, config: EngineConfig | None = None, limits: str = LIMITS_TEXT):
    engine, venue, feed = engine_on(compiled, config, limits), Venue(), Feed()
    msgs, refs = two_sided(feed, ACME, 999_900, 1_000_100)
    acts = run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    return engine, venue, feed, refs, acts


def our(venue: Venue, side: str) -> str:
    [token] = [t for t, o in venue.orders.items() if o["stock"] == "ACME" and o["side"] == side]
    return token


def go_long(engine, venue, now):
    """Our bid filled: long 200; the ask entered flat (short) is pulled by the venue and comes back."""
    run(engine, venue, venue.fill(our(venue, "B"), 200, now), now)
    assert engine.inventory.position[ACME] == 200
    return run(engine, venue, venue.cancel_rest(our(venue, "S"), now + MS), now + MS)


@pytest.mark.parametrize("side", ["B", "S", "T", "E"])
def test_order_bytes_carry_every_ouch_side_as_the_codec_does(side):
    w = OrderWire("MMCO")
    expected = ouch.EnterOrder("TOK1", side, 100, "ACME", 1_000_100, 99999, "MMCO", "Y", "P", "N", 0, "N", " ")
    assert w.enter("TOK1", side, 100, "ACME", 1_000_100, 99999) == \
        soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(expected)))
    assert w.modify("TOK1", side, 50) == \
        soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.ModifyOrder("TOK1", side, 50))))


@pytest.mark.parametrize("compiled", [True, False])
def test_a_flat_sell_goes_out_short_and_stays_short_once_filled_and_replaced(compiled):
    engine, venue, feed, refs, acts = quoted(compiled)
    sides = {o.intent.side: wire_side(o) for o in orders(acts) if o.intent.kind is OrderKind.ENTER}
    assert sides == {Side.BUY: "B", Side.SELL: "T"}             # position 0: selling is short
    ask = our(venue, "S")
    assert engine.oms.get(ask).mark == "T" and venue.orders[ask]["marked"] == "T"
    now = 2 * S + MS
    acts = run(engine, venue, venue.fill(ask, 100, now), now)    # now short 100
    assert engine.inventory.position[ACME] == -100
    # the book moves: the replacement keeps the short marking at the venue (Replace keeps the side)
    feed_acts = run(engine, venue, md(feed.packet(Feed.delete(refs[999_900]), Feed.delete(refs[999_800])),
                                       now + MS), now + MS)
    replaced = [o for o in orders(acts + feed_acts) if o.intent.kind is OrderKind.REPLACE and o.intent.side is Side.SELL]
    assert replaced, "the ask moved"
    assert all(engine.oms.get(o.intent.token).mark == "T" for o in replaced)
    assert all(o["marked"] == "T" for o in venue.orders.values() if o["side"] == "S")


@pytest.mark.parametrize("compiled", [True, False])
def test_a_sell_covered_by_the_position_goes_out_long(compiled):
    engine, venue, _, _, _ = quoted(compiled)
    acts = go_long(engine, venue, 2 * S + MS)
    [ask] = [o for o in orders(acts) if o.intent.kind is OrderKind.ENTER and o.intent.side is Side.SELL]
    assert ask.intent.qty <= 200 and wire_side(ask) == "S"        # owned: long
    assert engine.oms.get(ask.intent.token).mark == "S"


def test_a_long_marked_ask_whose_replacement_is_not_covered_is_pulled_and_entered_again():
    """The replacement would keep the long marking (Replace keeps the side) while the original's
    shares could still fill before it lands: the ask is cancelled instead, then entered afresh
    and marked on what we own then."""
    engine, venue, feed, refs, _ = quoted()
    now = 2 * S + MS
    go_long(engine, venue, now)
    ask = engine.oms.get(our(venue, "S"))
    assert ask.mark == "S" and ask.leaves + ask.leaves > engine.inventory.position[ACME]
    now += 2 * MS
    # sellers leave the book: fair value rises and the ask moves up (past the price the ask
    # entered flat had, which the gateway would refuse again so soon as a duplicate)
    acts = run(engine, venue, md(feed.packet(*[Feed.delete(refs[p]) for p in (1_000_100, 1_000_200, 1_000_300)],
                                             feed.add(ACME, "S", 500, 1_000_600)), now), now)
    sells = [o for o in orders(acts) if o.intent.side is Side.SELL]
    assert not [o for o in sells if o.intent.kind is OrderKind.REPLACE and o.intent.orig_token == ask.token]
    assert [o.intent.kind for o in sells][:2] == [OrderKind.CANCEL, OrderKind.ENTER]
    assert sells[0].intent.token == ask.token and wire_side(sells[1]) == "S"
    assert sells[1].intent.price > ask.price and engine.oms.get(ask.token).state is OrderState.CANCELED


def test_a_size_down_modify_keeps_the_short_marking():
    """OUCH Modify carries a side and the venue takes it: a short order sized down stays short."""
    engine, venue, _, _, _ = quoted()
    ask = engine.oms.get(our(venue, "S"))
    acts = []
    engine._work_side(ACME, Side.SELL, ask, ask.price, ask.leaves - 100, acts)
    [modify] = orders(acts)
    assert modify.intent.kind is OrderKind.MODIFY and wire_side(modify) == "T"


def test_a_short_hedge_sell_pulls_the_long_marked_ask_before_it_goes():
    engine, venue, feed, now = long_in_bolt("ask-long")
    ask = our(venue, "S")
    assert engine.oms.get(ask).mark == "S"
    for _ in range(10):
        now += 200 * MS
        engine.on_event(ClockSample(now, True))
        acts = engine.on_event(Timer(now))
        hedge = [o for o in orders(acts) if o.intent.purpose is Purpose.HEDGE]
        if hedge:
            break
    [hedge] = hedge
    assert hedge.intent.symbol_id == ACME and hedge.intent.side is Side.SELL
    assert wire_side(hedge) == "T"          # ask leaves + IOC > the 200 we own
    sent = orders(acts)
    pull = [o for o in sent if o.intent.kind is OrderKind.CANCEL and o.intent.token == ask]
    assert pull and sent.index(pull[0]) < sent.index(hedge)     # out before the short sale exists
    settle(engine, venue, acts, now)        # the venue takes the pull, then the IOC
    assert ask not in venue.orders
    # the IOC fills whole: what was owned is sold, and nothing marked long is left uncovered
    run(engine, venue, venue.fill(hedge.intent.token, hedge.intent.qty, now), now)
    position = engine.inventory.position[ACME]
    assert position == 200 - hedge.intent.qty
    long_marked = [o["qty"] for o in venue.orders.values() if o["stock"] == "ACME" and o["marked"] == "S"]
    assert sum(long_marked) <= max(position, 0)


def test_a_long_marked_sell_the_position_does_not_cover_is_pulled_as_soon_as_the_venue_shows_it():
    """Recovery adopts a sell we never journaled; the venue holds it as long while we are flat:
    its Accepted makes the engine cancel it before it can execute as a mismarked short sale."""
    engine, venue, _, _, _ = quoted()
    now = 3 * S
    apply(engine, AdoptPending("LOST00000001", ACME, "S", 1_000_300, 100), now)
    accepted = venue.frame(ouch.Accepted(now, "LOST00000001", "S", 100, "ACME", 1_000_300, 99999, "MMCO",
                                         "Y", 77, "P", "N", 0, "N", "L", " "))
    acts = engine.on_event(VenueMessage(accepted, now))
    cancels = [o for o in orders(acts) if o.intent.kind is OrderKind.CANCEL]
    assert [o.intent.token for o in cancels] == ["LOST00000001"]
    assert engine.oms.get("LOST00000001").state is OrderState.PENDING_CANCEL


def test_the_reg_sho_message_is_read_on_the_market_data_path():
    feed = Feed()
    path = MarketDataPath(8, [True] * 8)
    up = path.on_packet(feed.packet(reg_sho(ACME, "1"), reg_sho(BOLT, "2"), reg_sho(ACME, "0"),
                                    reg_sho(BOLT, "?")))
    assert up.reg_sho == [(ACME, True), (BOLT, True), (ACME, False), (BOLT, True)]   # unknown: in force


@pytest.mark.parametrize("compiled", [True, False])
def test_the_restriction_is_engine_state_and_journaled(compiled):
    engine, venue, feed, _, _ = quoted(compiled)
    before = engine.state_hash()
    acts = run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), 3 * S), 3 * S)
    assert engine.ssr[ACME] and not engine.ssr[BOLT]
    assert alerts(acts, "reg-sho") == ["ACME: short sale price test in force"]
    assert engine.state_hash() != before
    acts = run(engine, venue, md(feed.packet(reg_sho(ACME, "0")), 4 * S), 4 * S)
    assert not engine.ssr[ACME] and alerts(acts, "reg-sho") == ["ACME: short sale price test lifted"]


@pytest.mark.parametrize("compiled", [True, False])
def test_under_the_restriction_the_short_ask_rests_above_the_best_bid(compiled):
    engine, venue, feed, refs, _ = quoted(compiled)
    run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), 3 * S), 3 * S)
    # sellers leave: our short ask is repriced toward a market whose best bid is ours or theirs
    acts = run(engine, venue, md(feed.packet(*(Feed.delete(refs[p]) for p in (1_000_100, 1_000_200))),
                                  3 * S + MS), 3 * S + MS)
    nbb = engine._nbb(ACME)
    asks = [o for o in orders(acts) if o.intent.side is Side.SELL and o.intent.kind is not OrderKind.CANCEL]
    assert asks and all(o.intent.price > nbb for o in asks)
    # and should pricing ever want it at or below the bid, the rule moves it a tick above
    bid, bq, _, aq = engine._quote(ACME)
    engine._quote = lambda s: (bid, bq, nbb, aq)
    acts = []
    engine._requote(ACME, acts)
    moved = [o for o in orders(acts) if o.intent.side is Side.SELL and o.intent.kind is not OrderKind.CANCEL]
    assert [o.intent.price for o in moved] == [engine.ticks[ACME].tick_above(nbb)]


@pytest.mark.parametrize("compiled", [True, False])
def test_an_ask_the_rule_moves_up_is_cut_again_to_the_value_cap(compiled):
    """max_order_value $99,995: 1,000 shares at the best bid $99.99 fit ($99,990), 1,000 a tick
    above ($100,000) do not. An ask sized at the bid and moved above it by the rule goes out cut
    to the lots that fit at its new price, not denied by the gateway's value check."""
    limits = LIMITS_TEXT + f"\n[symbols.{ACME}]\nmax_order_value = 99995\nmax_order_qty = 5000\n"
    engine, venue, feed, refs, _ = quoted(compiled, limits=limits)
    run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), 3 * S), 3 * S)
    nbb = engine._nbb(ACME)
    lot = engine.cfg.skew.lot
    caps = engine.risk.order_caps(ACME)
    sized = within_order_caps(10**6, nbb, *caps, lot)
    above = engine.ticks[ACME].tick_above(nbb)
    want = within_order_caps(sized, above, *caps, lot)
    assert 0 < want < sized, (nbb, sized, want)          # the case holds: the move crosses a lot
    bid, bq, _, _ = engine._quote(ACME)
    engine._quote = lambda s: (bid, bq, nbb, sized)
    denials = engine.counts["denials"]
    acts = []
    engine._requote(ACME, acts)
    moved = [o for o in orders(acts) if o.intent.side is Side.SELL and o.intent.kind is not OrderKind.CANCEL]
    assert [(o.intent.price, o.intent.qty) for o in moved] == [(above, want)]
    assert engine.counts["denials"] == denials


def test_under_the_restriction_a_short_hedge_sell_is_not_sent_and_a_long_one_is():
    engine, venue, feed, now = long_in_bolt()
    run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), now), now)
    acts = hedge_attempts(engine, venue, now)
    assert not [o for o in orders(acts) if o.intent.purpose is Purpose.HEDGE]
    [detail, *_] = alerts(acts, "short-sale-price-test")
    assert "hedge short sale" in detail and "Rule 201" in detail
    # the same hedge while we own the ACME shares is a long sale: allowed to hit the bid
    engine, venue, feed, now = long_in_bolt("long")
    run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), now), now)
    acts = hedge_attempts(engine, venue, now)
    [hedge] = [o for o in orders(acts) if o.intent.purpose is Purpose.HEDGE]
    assert wire_side(hedge) == "S" and hedge.intent.price <= engine._nbb(ACME)


def long_in_bolt(acme: str = "flat", compiled: bool = True):
    """ACME and BOLT quoted, then BOLT long past the hedge trigger (the hedger sells ACME). ACME:
    "flat"; "ask-long": long 200 with our ask re-entered marked long; "long": our bid hit again
    and again, long far more than any hedge sells."""
    cfg = EngineConfig(guard=QUIET_GUARD)
    engine, venue, feed = engine_on(compiled, cfg), Venue(), Feed()
    acme_book, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    bolt, _ = two_sided(feed, BOLT, 504_950, 505_050, tick=50)
    now = 2 * S
    run(engine, venue, md(feed.packet(*acme_book, *bolt), now), now)
    if acme == "ask-long":
        go_long(engine, venue, now + MS)
        now += MS
    elif acme == "long":
        now = fill_bids(engine, venue, "ACME", 1_400, now)
    now = fill_bids(engine, venue, "BOLT", cfg.hedge.trigger, now)
    assert engine.inventory.position[BOLT] >= cfg.hedge.trigger
    return engine, venue, feed, now


def fill_bids(engine, venue, stock: str, until: int, now: int) -> int:
    """Fill our bid in `stock` whole, again and again, until the position reaches `until`."""
    symbol_id = SYMBOLS.by_name(stock).id
    for _ in range(20):
        token = [t for t, o in venue.orders.items() if o["stock"] == stock and o["side"] == "B"]
        if not token or engine.inventory.position[symbol_id] >= until:
            break
        now += 50 * MS
        run(engine, venue, venue.fill(token[0], venue.orders[token[0]]["qty"], now), now)
    return now


def hedge_attempts(engine, venue, now):
    acts = []
    for _ in range(10):
        now += 200 * MS
        engine.on_event(ClockSample(now, True))
        acts += run(engine, venue, Timer(now), now)
        if [o for o in orders(acts) if o.intent.purpose is Purpose.HEDGE] or alerts(acts, "short-sale-price-test"):
            break
    return acts
