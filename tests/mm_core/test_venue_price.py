"""A venue may rest our order at another price than the one we sent (it slides a quote that would
lock the market, rounds to its tick, improves it) and says so in its answer: OUCH Accepted and
Replaced carry the price the order rests at. From then on that is the order's price, in the OMS
and in the risk gateway (working orders, self-trade prevention, a refused replace's restore).
Driven through the embedded venue's own matching engine, the price moved as such a venue would."""
from mm_core.events import SendOrder
from mm_core.oms import OrderState
from mm_core.protocol import ouch
from mm_core.types import OrderIntent, OrderKind, Side
from tests.mm_core.test_gateway_answers import gateway_view, quoting as gateway_quoting, rejected
from tests.mm_core.test_modify import Exchange, drive, mine
from tests.mm_core.wire import ACME, MS

SLIDE = 100     # one cent in price4: the venue rests our quotes one tick away from the market


class SlidingExchange(Exchange):
    """The embedded venue's matching engine resting each order of ours one tick further from the
    market than asked (a bid lower, an offer higher), as a price-to-comply venue does."""

    def resting_price(self, price: int, side: str) -> int:
        return price - SLIDE if side == "B" else price + SLIDE


def quoting():
    return gateway_quoting(venue=SlidingExchange())


def test_an_order_accepted_at_another_price_is_counted_at_the_venues_price():
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    ask, = mine(venue, "S")
    asked = {m.token: m.price for m in venue.sent if isinstance(m, ouch.EnterOrder)}
    assert asked[bid.token] == bid.price + SLIDE and asked[ask.token] == ask.price - SLIDE
    for order in (bid, ask):
        assert engine.oms.get(order.token).state is OrderState.ACCEPTED
        assert engine.oms.get(order.token).price == order.price
    working, _, _, own_buys, own_sells = gateway_view(engine)
    assert working[bid.token] == (ACME, True, bid.shares, bid.price)
    assert working[ask.token] == (ACME, False, ask.shares, ask.price)
    assert own_buys == {bid.token: bid.price} and own_sells == {ask.token: ask.price}


def test_self_trade_prevention_checks_against_where_our_order_rests():
    engine, venue, now = quoting()
    ask, = mine(venue, "S")

    def buy(price):
        return OrderIntent(OrderKind.ENTER, engine.oms.new_token(), ACME, Side.BUY, price, 100,
                           algo_id=1, desk_id=1, trader_id=1, client_id=1)
    # a buy at the price we asked for the offer does not meet it: the offer rests a tick higher
    decision = engine.risk.check(buy(ask.price - SLIDE), now + MS)
    assert decision.allowed, decision
    # at the offer's resting price it would trade with it
    decision = engine.risk.check(buy(ask.price), now + 2 * MS)
    assert not decision.allowed and decision.check_name == "self-trade", decision


def test_a_replace_rested_at_another_price_is_counted_at_it_and_a_refused_one_restores_it():
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    now += 200 * MS
    drive(engine, venue, venue.others("B", 300, 1_000_000, now), now)   # a better bid: ours steps up
    replaced = [m for m in venue.sent if isinstance(m, ouch.ReplaceOrder) and m.existing_token == bid.token]
    assert len(replaced) == 1
    new, = mine(venue, "B")
    assert new.token == replaced[0].replacement_token and new.price == replaced[0].price - SLIDE
    assert engine.oms.get(new.token).price == new.price
    working, _, _, own_buys, _ = gateway_view(engine)
    assert working[new.token] == (ACME, True, new.shares, new.price) and own_buys == {new.token: new.price}
    # once it has rested, the engine steps it up to where it wants it; the venue refuses that
    now += 60 * MS
    actions = engine.on_event(venue.others("S", 100, 1_000_500, now)[0])
    again, = [a.intent for a in actions if isinstance(a, SendOrder) and a.intent.orig_token == new.token]
    assert again.kind is OrderKind.REPLACE and again.price == new.price + SLIDE
    engine.on_event(rejected(again.token, now))
    # the order stands as the venue holds it
    assert engine.oms.get(new.token).state is OrderState.ACCEPTED
    working, _, _, own_buys, _ = gateway_view(engine)
    assert working[new.token] == (ACME, True, new.shares, new.price) and own_buys == {new.token: new.price}


def test_a_venue_price_that_cannot_be_counted_latches_and_keeps_the_price_it_had():
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    engine.risk.on_order_priced(bid.token, 0, now)
    assert "inconsistent-input" in engine.risk.latch_reasons
    assert gateway_view(engine)[0][bid.token][3] == bid.price
