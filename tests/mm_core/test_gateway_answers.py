"""The venue's answers to our replaces and size-downs reach the risk gateway through the engine:
a refused replace (OUCH Rejected on the replacement token) leaves the original resting, in the OMS
and in the gateway, as if the replace had never been sent; a size-down counts at its larger size
until Order Modified confirms it. Driven through the embedded venue's own matching engine."""
from mm_core.events import OperatorCommand, SendOrder, VenueMessage
from mm_core.oms import Oms, OrderState
from mm_core.protocol import ouch, soupbintcp
from mm_core.types import OrderIntent, OrderKind, Side
from tests.mm_core.test_modify import SAFE_SIZE_ONLY, Exchange, drive, mine
from tests.mm_core.wire import ACME, MS, S, make_engine


def gateway_view(engine):
    sym = engine.risk._symbols[ACME]
    return (engine.risk.working_orders(), sym.open_buy, sym.open_sell, dict(sym.own_buys),
            dict(sym.own_sells))


def rejected(token: str, now: int) -> VenueMessage:
    return VenueMessage(soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(
        ouch.Rejected(now, token, "X")))), now)


def quoting(limits=None, venue=None):
    engine, venue = (make_engine(limits=limits) if limits else make_engine()), venue or Exchange()
    now = 2 * S
    drive(engine, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now), now)
    return engine, venue, now


def test_a_replace_the_venue_rejects_leaves_the_original_counted_by_the_gateway():
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    before = gateway_view(engine)
    assert before[0][bid.token] == (ACME, True, bid.shares, bid.price)
    # the market moves up: the engine replaces its bid; the venue refuses the replace
    now += 200 * MS
    acts = []
    for ev in venue.others("B", 300, 1_000_000, now):     # a better bid joins: ours steps up
        acts += engine.on_event(ev)
    replaces = [a for a in acts if isinstance(a, SendOrder) and a.intent.kind is OrderKind.REPLACE
                and a.intent.orig_token == bid.token]
    assert len(replaces) == 1
    new_token = replaces[0].intent.token
    # the better bid leaves again before the venue's answer: the original price is wanted again
    for ev in venue._events(venue.engine.cancel("~LP", f"LP{venue.n}"), now):
        assert not [a for a in engine.on_event(ev) if isinstance(a, SendOrder)]
    assert not [a for a in engine.on_event(rejected(new_token, now)) if isinstance(a, SendOrder)]
    original = engine.oms.get(bid.token)
    assert original.state is OrderState.ACCEPTED and original.leaves == bid.shares
    assert engine.oms.get(new_token).state is OrderState.REJECTED
    view = gateway_view(engine)
    assert view[0][bid.token] == (ACME, True, bid.shares, bid.price)
    assert new_token not in view[0] and new_token not in view[3]
    assert view[3][bid.token] == bid.price
    assert view[1] == sum(q for _, b, q, _ in view[0].values() if b)


def test_a_partly_filled_original_is_partly_filled_again_after_its_replace_is_rejected():
    o = Oms("T1", lambda t: b"X" + t.encode())
    token = o.new_token()
    o.on_sent(OrderIntent(OrderKind.ENTER, token, ACME, Side.BUY, 999_800, 300), 0)
    o.on_accepted(token, 7, 1)
    o.on_executed(token, 100, 2)
    new = o.new_token()
    o.on_sent(OrderIntent(OrderKind.REPLACE, new, ACME, Side.BUY, 999_900, 300, orig_token=token), 3)
    o.on_executed(token, 50, 4)                       # the original trades while the replace flies
    o.on_rejected(new, 5)
    original = o.get(token)
    assert original.state is OrderState.PARTIALLY_FILLED and (original.filled, original.leaves) == (150, 150)
    assert o.working_order(ACME, Side.BUY) is original


def test_a_size_down_counts_the_larger_size_until_order_modified():
    engine, venue, now = quoting(SAFE_SIZE_ONLY)
    bid, = mine(venue, "B")
    now += MS
    acts = engine.on_event(OperatorCommand(now, "safe-mode-on", "ops", "test"))
    modifies = [a for a in acts if isinstance(a, SendOrder) and a.intent.kind is OrderKind.MODIFY]
    assert {a.intent.token for a in modifies} == {bid.token, mine(venue, "S")[0].token}
    small = next(a.intent.qty for a in modifies if a.intent.token == bid.token)
    assert small < bid.shares
    # until the venue answers, the whole original size may still fill
    assert engine.risk.working_orders()[bid.token][2] == bid.shares
    assert engine.risk._symbols[ACME].open_buy == bid.shares
    drive(engine, venue, venue.ours(modifies, now), now)         # Order Modified
    assert engine.risk.working_orders()[bid.token][2] == small
    assert engine.risk._symbols[ACME].open_buy == small


def test_an_invalid_replace_the_venue_answers_by_canceling_the_original_leaves_nothing_counted():
    """OUCH: a replace whose details are invalid cancels the live original and no answer names the
    replacement; the OMS abandons the replacement, and the gateway counts neither order."""
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    now += 200 * MS
    acts = []
    for ev in venue.others("B", 300, 1_000_000, now):
        acts += engine.on_event(ev)
    replace, = [a for a in acts if isinstance(a, SendOrder) and a.intent.kind is OrderKind.REPLACE
                and a.intent.orig_token == bid.token]
    new_token = replace.intent.token
    answers = venue._events(venue.engine.refuse_replace(venue.OWNER, bid.token, new_token), now)
    assert [type(ouch.decode_outbound(soupbintcp.decode(a.packet).payload)).__name__
            for a in answers if isinstance(a, VenueMessage)] == ["Canceled"]
    for ev in answers:
        engine.on_event(ev)
    assert engine.oms.get(bid.token).state is OrderState.CANCELED
    assert engine.oms.get(new_token).state is OrderState.REJECTED
    view = gateway_view(engine)
    assert bid.token not in view[0] and new_token not in view[0]
    assert bid.token not in view[3] and new_token not in view[3]
    assert view[1] == sum(q for _, b, q, _ in view[0].values() if b)
