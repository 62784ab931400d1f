"""OUCH 4.2 Modify for a same-price size-down: the OMS's pending-modify state, the bytes, the
gateway's verdict (risk-reducing: it passes as a partial cancel does) and a session against the
embedded venue's own matching engine and wire encoders (mm_core.venue), in process."""
import pytest

from mm_core.events import MarketData, OperatorCommand, SendOrder, VenueMessage
from mm_core.oms import TRANSITIONS, InvalidTransition, Oms, OmsError, OrderFsm, OrderState, Trigger
from mm_core.orderwire import OrderWire
from mm_core.protocol import moldudp64, ouch, soupbintcp
from mm_core.risk.checks import CheckId
from mm_core.types import OrderIntent, OrderKind, Side
from mm_core.venue import matching as m
from mm_core.venue.wire import DEFAULT_ECHO, itch_message, ouch_message
from tests.mm_core.wire import ACME, LIMITS_TEXT, MS, S, SYMBOLS, make_engine

St, Tr = OrderState, Trigger
SAFE_SIZE_ONLY = LIMITS_TEXT.replace("spread_multiplier = 2.0", "spread_multiplier = 1.0")


# --- OMS ---------------------------------------------------------------------------------------

def accepted(o: Oms, qty=300) -> str:
    token = o.new_token()
    o.on_sent(OrderIntent(OrderKind.ENTER, token, ACME, Side.BUY, 10_000, qty), 0)
    o.on_accepted(token, 7, 1)
    return token


def modify(o: Oms, token: str, qty: int):
    return o.on_sent(OrderIntent(OrderKind.MODIFY, token, ACME, Side.BUY, 10_000, qty), 2)


@pytest.mark.parametrize("state, trigger", [
    (St.PENDING_NEW, Tr.MODIFY_SENT), (St.PENDING_MODIFY, Tr.MODIFY_SENT),
    (St.PENDING_MODIFY, Tr.REPLACE_SENT), (St.ACCEPTED, Tr.MODIFIED), (St.CANCELED, Tr.MODIFIED),
])
def test_impossible_modify_transitions(state, trigger):
    assert (state, trigger) not in TRANSITIONS
    with pytest.raises(InvalidTransition):
        OrderFsm(state).fire(trigger)


def test_oms_modify_keeps_the_token_and_sets_leaves_from_the_venue():
    o = Oms("T1", lambda t: b"X" + t.encode())
    token = accepted(o)
    order = modify(o, token, 100)
    assert order.token == token and order.state is St.PENDING_MODIFY and order.leaves == 300
    assert o.working_order(ACME, Side.BUY) is order               # still the working quote
    o.on_executed(token, 100, 3)                                  # a fill crosses the modify
    assert order.state is St.PENDING_MODIFY and order.leaves == 200
    o.on_modified(token, 100, 4)                                   # the venue: 100 left
    assert order.state is St.PARTIALLY_FILLED and order.leaves == 100 and order.filled == 100
    assert o.counts() == (1, 0)


def test_oms_refuses_a_modify_that_is_not_a_size_down_and_a_modified_that_grew():
    o = Oms("T1", lambda t: b"X" + t.encode())
    token = accepted(o, 200)
    with pytest.raises(OmsError):
        modify(o, token, 200)
    modify(o, token, 100)
    with pytest.raises(InvalidTransition, match="modified to 300 with 200 left"):
        o.on_modified(token, 300, 3)


def test_a_pending_modify_without_an_answer_becomes_outcome_unknown():
    o = Oms("T1", lambda t: b"X" + t.encode())
    token = accepted(o)
    modify(o, token, 100)
    assert [x.token for x in o.check_timeouts(2 + 5, 5)] == [token]
    assert o.get(token).state is St.UNKNOWN


# --- bytes and the gateway ---------------------------------------------------------------------

@pytest.mark.parametrize("token, side, shares", [("MM000000000001", "B", 100), ("X", "S", 4_000_000_000),
                                                 ("MM1", "S", 0)])
def test_modify_bytes_equal_the_codecs(token, side, shares):
    expected = soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.ModifyOrder(token, side, shares))))
    assert OrderWire("MMCO").modify(token, side, shares) == expected


def test_the_gateway_passes_a_size_down_as_risk_reducing_even_at_the_modify_rate_limit():
    one = SAFE_SIZE_ONLY.replace("max_modifies = 200", "max_modifies = 1")
    engine = make_engine(limits=one)
    gw = engine.risk
    now = 2 * S
    gw.on_market(ACME, 1_000_000.0, 1_000_000, False, now)
    enter = OrderIntent(OrderKind.ENTER, "MM01", ACME, Side.BUY, 999_900, 300, algo_id=1, desk_id=1, client_id=1)
    assert gw.check(enter, now).allowed
    up = OrderIntent(OrderKind.REPLACE, "MM02", ACME, Side.BUY, 999_900, 400, algo_id=1, desk_id=1,
                     client_id=1, orig_token="MM01")
    assert gw.check(up, now).allowed                          # the one modify this second
    again = OrderIntent(OrderKind.REPLACE, "MM03", ACME, Side.BUY, 999_800, 400, algo_id=1, desk_id=1,
                        client_id=1, orig_token="MM02")
    assert gw.check(again, now).check is CheckId.MSG_RATE_MODIFY
    # the market runs away: the resting price is outside the collar now; a size-down still passes
    gw.on_market(ACME, 1_100_000.0, 1_000_000, False, now)
    down = OrderIntent(OrderKind.MODIFY, "MM02", ACME, Side.BUY, 999_900, 100, algo_id=1, desk_id=1, client_id=1)
    verdict = gw.check(down, now)
    assert verdict.allowed
    # the original's 300 and the replacement's 400 may still fill ...
    assert gw._symbols[ACME].open_buy == 700
    gw.on_order_confirmed("MM02", 100, now)                   # ... until Order Modified
    assert gw._symbols[ACME].open_buy == 100


# --- against the embedded venue's matching engine -----------------------------------------------

class Exchange:
    """The embedded venue's matching engine and message encoders without the sockets: our OUCH
    orders in, its OUCH answers (to us) and ITCH (to everyone) out, as the venue server sends them."""

    OWNER = "MM01"

    def __init__(self) -> None:
        listings = [m.Listing(s.name, s.id, s.half_penny) for s in SYMBOLS.symbols if not s.is_option]
        self.locate = {x.name: x.locate for x in listings}
        self.engine = m.MatchingEngine(listings)
        self.seq = 1
        self.n = 0
        self.sent: list = []
        self.stream: list[bytes] = []          # our session's sequenced OUCH payloads, in order

    def _events(self, events, now: int) -> list:
        itch, out = [], []
        for ev in events:
            raw = itch_message(ev, now, self.locate[ev.symbol]) if hasattr(ev, "symbol") else None
            if raw is not None:
                itch.append(raw)
            if getattr(ev, "owner", None) == self.OWNER:
                msg = ouch_message(ev, now, DEFAULT_ECHO, True)
                if msg is not None:
                    self.stream.append(msg)
                    out.append(VenueMessage(soupbintcp.encode(soupbintcp.SequencedData(msg)), now))
        if itch:   # the feed first, then the order-entry answers
            out.insert(0, MarketData(moldudp64.encode(moldudp64.Packet("TEST000001", self.seq, tuple(itch))), now))
            self.seq += len(itch)
        return out

    def others(self, side: str, shares: int, price: int, now: int, symbol: str = "ACME") -> list:
        self.n += 1
        return self._events(self.engine.enter("~LP", f"LP{self.n}", symbol, side, shares, price,
                                              m.DAY, "LPCO"), now)

    def resting_price(self, price: int, side: str) -> int:
        """Where the venue rests an order of ours sent at `price`: there (a subclass may move it)."""
        return price

    def ours(self, actions, now: int) -> list:
        out = []
        for a in actions:
            if not isinstance(a, SendOrder):
                continue
            msg = ouch.decode_inbound(soupbintcp.decode(a.packet, soupbintcp.Direction.FROM_CLIENT).payload)
            self.sent.append(msg)
            e, o = self.engine, self.OWNER
            if isinstance(msg, ouch.EnterOrder):
                events = e.enter(o, msg.token, msg.stock, msg.side, msg.shares,
                                 self.resting_price(msg.price, msg.side), msg.time_in_force, msg.firm)
            elif isinstance(msg, ouch.ReplaceOrder):
                old = next((v for v in e.live_orders(o) if v.token == msg.existing_token), None)
                price = msg.price if old is None else self.resting_price(msg.price, old.side)
                events = e.replace(o, msg.existing_token, msg.replacement_token, msg.shares, price)
            elif isinstance(msg, ouch.CancelOrder):
                events = e.cancel(o, msg.token, msg.shares)
            else:
                events = e.modify(o, msg.token, msg.side, msg.shares)
            out += self._events(events, now)
        return out


def drive(engine, venue: Exchange, inputs: list, now: int) -> list:
    """Feed inputs and everything the venue answers, to a fixed point; returns all actions."""
    actions, pending = [], list(inputs)
    for _ in range(50):
        if not pending:
            break
        step = []
        for ev in pending:
            step += engine.on_event(ev)
        actions += step
        pending = venue.ours(step, now)
    return actions


def mine(venue: Exchange, side: str):
    return [o for o in venue.engine.live_orders(Exchange.OWNER) if o.symbol == "ACME" and o.side == side]


def test_safe_mode_halves_our_quotes_in_place_and_they_keep_the_front_of_the_queue():
    engine, venue = make_engine(limits=SAFE_SIZE_ONLY), Exchange()
    now = 2 * S
    book = venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now)
    drive(engine, venue, book, now)
    bid, = mine(venue, "B")
    ask, = mine(venue, "S")
    assert bid.shares == ask.shares == 200
    # others join our bid's price level behind us
    now += MS
    drive(engine, venue, venue.others("B", 300, bid.price, now), now)
    now += MS
    acts = drive(engine, venue, [OperatorCommand(now, "safe-mode-on", "ops", "test")], now)
    sent = [a.intent for a in acts if isinstance(a, SendOrder)]
    assert {(i.kind, i.token, i.qty) for i in sent} == {(OrderKind.MODIFY, bid.token, 100),
                                                        (OrderKind.MODIFY, ask.token, 100)}
    assert all(a.packet[3] == ord("M") for a in acts if isinstance(a, SendOrder))   # journaled msg_type
    assert [type(x).__name__ for x in venue.sent[-2:]] == ["ModifyOrder", "ModifyOrder"]
    for token in (bid.token, ask.token):
        order = engine.oms.get(token)
        assert order.state is St.ACCEPTED and order.leaves == 100
    (b2,), = [mine(venue, "B")]
    assert (b2.token, b2.ref, b2.shares) == (bid.token, bid.ref, 100)          # same order, same place
    # a seller hits our price for 100: ours is first in the queue, not the later joiner's
    now += MS
    drive(engine, venue, venue.others("S", 100, bid.price, now), now)
    assert engine.inventory.position[ACME] == 100
    assert engine.oms.get(bid.token).state is St.FILLED
    assert sum(o.shares for o in venue.engine.live_orders("~LP") if o.side == "B" and o.price == bid.price) == 300


def test_a_fill_crossing_the_modify_and_a_pull_crossing_its_answer():
    engine, venue = make_engine(limits=SAFE_SIZE_ONLY), Exchange()
    now = 2 * S
    drive(engine, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now), now)
    ask, = mine(venue, "S")
    now += MS
    acts = engine.on_event(OperatorCommand(now, "safe-mode-on", "ops", "test"))
    modifies = [a for a in acts if isinstance(a, SendOrder) and a.intent.kind is OrderKind.MODIFY]
    assert len(modifies) == 2
    # before the venue sees the modifies, a buyer lifts 100 of our ask
    lifted = venue.others("B", 100, ask.price, now)
    answers = venue.ours(modifies, now)       # then the modifies land: the ask has 100 left
    for ev in lifted + answers:
        engine.on_event(ev)
    order = engine.oms.get(ask.token)
    assert order.filled == 100 and order.leaves == 100
    # short now, the ask is the adding side: at half size it rounds to no lot and is pulled
    assert order.state is St.PENDING_CANCEL
    assert engine.inventory.position[ACME] == -100


def test_a_kill_while_the_modifies_are_in_flight_ends_flat_and_closed():
    engine, venue = make_engine(limits=SAFE_SIZE_ONLY), Exchange()
    now = 2 * S
    drive(engine, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now), now)
    now += MS
    acts = engine.on_event(OperatorCommand(now, "safe-mode-on", "ops", "test"))
    acts += engine.on_event(OperatorCommand(now, "kill", "ops", "test"))
    kinds = [a.intent.kind for a in acts if isinstance(a, SendOrder)]
    assert kinds == [OrderKind.MODIFY, OrderKind.MODIFY, OrderKind.CANCEL, OrderKind.CANCEL]
    assert all(o.state is St.PENDING_CANCEL for o in engine.oms.open_orders())
    drive(engine, venue, venue.ours(acts, now), now)     # Order Modified, then Canceled, each
    assert not mine(venue, "B") and not mine(venue, "S")
    assert not engine.oms.open_orders() and engine.counts["halts"] == 0


def test_recovery_reads_order_modified_and_finds_nothing_to_fix():
    """Recovery folds the venue's outbound stream into its view of our orders: an Order Modified
    must set the open shares there as it does in the OMS, or a clean session shows a quantity
    mismatch and recovery cancels a quote that was fine."""
    from recovery.reconcile import local_view, reconcile, venue_view

    engine, venue = make_engine(limits=SAFE_SIZE_ONLY), Exchange()
    now = 2 * S
    drive(engine, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now), now)
    now += MS
    drive(engine, venue, [OperatorCommand(now, "safe-mode-on", "ops", "test")], now)
    stream = venue.stream
    assert sum(1 for p in stream if p[:1] == b"M") == 2            # two Order Modified
    view = venue_view(enumerate(stream, 1))
    assert sorted(o.leaves for o in view.orders.values() if o.status == "live") == [100, 100]
    assert reconcile(local_view(engine, range(1, len(stream) + 1)), view).clean


def test_recovery_pulls_an_order_whose_size_down_never_reached_the_venue():
    from recovery.reconcile import ResendCancel, apply, local_view, reconcile, venue_view

    engine, venue = make_engine(limits=SAFE_SIZE_ONLY), Exchange()
    now = 2 * S
    drive(engine, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now), now)
    now += MS
    lost = engine.on_event(OperatorCommand(now, "safe-mode-on", "ops", "test"))   # crash: never sent
    assert [a.intent.kind for a in lost if isinstance(a, SendOrder)] == [OrderKind.MODIFY] * 2
    stream = venue.stream
    result = reconcile(local_view(engine, range(1, len(stream) + 1)), venue_view(enumerate(stream, 1)))
    fixes = [d.resolution for d in result.discrepancies]
    assert len(fixes) == 2 and all(isinstance(f, ResendCancel) for f in fixes)
    pulled = {f.token for f in fixes}
    cancels = [a for f in fixes for a in apply(engine, f, now)]
    drive(engine, venue, venue.ours(cancels, now), now)
    assert not pulled & {o.token for o in venue.engine.live_orders(Exchange.OWNER)}
    assert all(engine.oms.get(t).state is St.CANCELED for t in pulled)
