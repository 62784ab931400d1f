"""REDUCING latch: the reducing side is sized to what the gateway's reduce-only check accepts
(|position| net of our other working orders on that side), and a resting order larger than that
is sized down or pulled when the latch comes, so no fill can flip the position's sign."""
from journal.catalogue import RecordType
from mm_core.events import ClockSample, JournalNote, Timer, VenueMessage
from mm_core.protocol import ouch
from mm_core.quotepricer import price_reference, QuotePricer
from mm_core.config import EngineConfig
from mm_core.risk import TradingState
from mm_core.risk.checks import CheckId
from mm_core.types import OrderKind, Side
from tests.mm_core.wire import (
    ACME, MS, S, LIMITS_TEXT, Venue, Feed, make_engine, md, orders, run, settle, two_sided,
)

REDUCING_LIMITS = LIMITS_TEXT.replace('latch_state = "HALTED"', 'latch_state = "REDUCING"')


def short_then_latched(fill_qty: int, drain_only: bool = False):
    """Quotes in ACME, our ask filled for `fill_qty` (short), then a fault that latches REDUCING
    and clears. Returns (engine, venue, feed, refs, now, actions of the latch); drain_only: the
    latch's actions are the gateway's state change alone (no timer work before it)."""
    assert 'latch_state = "REDUCING"' in REDUCING_LIMITS
    engine, venue, feed = make_engine(limits=REDUCING_LIMITS), Venue(), Feed()
    msgs, refs = two_sided(feed, ACME, 999_900, 1_000_100)
    now = 2 * S
    acts = run(engine, venue, md(feed.packet(*msgs), now), now)
    ask = [o for o in orders(acts) if o.intent.side is Side.SELL][0].intent
    now += MS
    run(engine, venue, venue.fill(ask.token, fill_qty, now), now)
    assert engine.inventory.position[ACME] == -fill_qty
    now += MS
    engine.risk._latch(CheckId.BOOK_STALE, "a fault that has since cleared", now, "test")
    if drain_only:
        latch: list = []
        engine._drain_risk(latch)
        latch += settle(engine, venue, latch, now)
    else:
        latch = run(engine, venue, Timer(now), now)
    assert engine.risk.state is TradingState.REDUCING and not engine.risk.faults
    return engine, venue, feed, refs, now, latch


def test_reducing_quotes_a_size_the_gateway_accepts():
    engine, venue, feed, refs, now, _ = short_then_latched(100)
    denials, buys = [], []
    bid, ask_px = 999_900, 1_000_100
    for _ in range(8):                      # the market steps up a tick, one level replaced per side
        now += 300 * MS
        m = [feed.delete(refs.pop(bid - 200)), feed.delete(refs.pop(ask_px))]
        bid += 100
        ask_px += 100
        for side, px in (("B", bid), ("S", ask_px + 200)):
            a = feed.add(ACME, side, 500, px)
            refs[px] = a.order_ref
            m.append(a)
        acts = run(engine, venue, md(feed.packet(*m), now), now)
        acts += engine.on_event(ClockSample(now, True)) + run(engine, venue, Timer(now), now)
        denials += [x.summary for x in acts if isinstance(x, JournalNote) and x.rtype == RecordType.RISK_DECISION]
        buys += [o.intent for o in orders(acts) if o.intent.side is Side.BUY and o.intent.kind is not OrderKind.CANCEL]
    assert not denials, denials
    assert buys, "the buy-back never went out"
    assert all(0 < b.qty <= 100 for b in buys), [(b.kind.name, b.qty) for b in buys]
    resting = venue.resting("ACME", "B")
    assert resting and sum(venue.orders[t]["qty"] for t in resting) <= 100
    assert engine.inventory.position[ACME] == -100


def test_the_latch_sizes_down_a_resting_order_larger_than_the_position():
    engine, venue, _, _, _, latch = short_then_latched(50, drain_only=True)   # our 200-share bid rests
    sent = [o.intent for o in orders(latch)]
    buys = [i for i in sent if i.side is Side.BUY]
    # the pre-latch 200-share bid may not rest: modified down to 50 in place (queue kept)
    assert buys and buys[0].kind is OrderKind.MODIFY and buys[0].qty == 50, \
        [(i.kind.name, i.side.name, i.qty) for i in sent]
    # the risk-adding ask is pulled
    assert any(i.side is Side.SELL and i.kind is OrderKind.CANCEL for i in sent)
    # the venue confirms the size-down: the worst case of every working buy filling is flat
    modify = buys[0]
    engine.on_event(VenueMessage(Venue.frame(ouch.OrderModified(0, modify.token, "B", 50)), 3 * S))
    working = sum(q for s, is_buy, q, _ in engine.risk.working_orders().values() if s == ACME and is_buy)
    assert working == 50


def test_after_a_latch_and_a_requote_no_working_buy_passes_flat():
    engine, venue, _, _, _, latch = short_then_latched(50)
    assert not [x for x in latch if isinstance(x, JournalNote) and x.rtype == RecordType.RISK_DECISION]
    working = sum(q for s, is_buy, q, _ in engine.risk.working_orders().values() if s == ACME and is_buy)
    assert 0 < working <= 50
    assert sum(venue.orders[t]["qty"] for t in venue.resting("ACME", "B")) <= 50


def test_the_pricer_caps_the_reducing_side_at_the_position_in_c_and_python():
    cfg = EngineConfig()
    args = dict(fair=1_000_000.0, half_penny=False, variance_per_s=1e4, prior_var_s=0.0, held=0,
                toxicity=0.0, recent_markout=0.0, adverse_rate=0.0, spread_multiplier=1.0,
                size_multiplier=1.0, collar_fair_bps=100, max_position=20_000, max_order_qty=5_000,
                max_order_value=5_000_000_000, reducing=True,
                bid_blocked=False, ask_blocked=False, best_bid=999_900, best_ask=1_000_100)
    pricer = QuotePricer(cfg)
    for position, bid_qty, ask_qty in ((-100, 100, 0), (-30, 30, 0), (70, 0, 70), (0, 0, 0),
                                       (-10_000, None, 0)):
        ref = price_reference(cfg, position=position, **args)
        assert pricer.price(position=position, **args) == ref
        if bid_qty is not None:
            assert (ref[1], ref[3]) == (bid_qty, ask_qty)
        assert ref[1] <= max(-position, 0) and ref[3] <= max(position, 0)
