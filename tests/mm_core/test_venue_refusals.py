"""The venue's refusals of our orders: a refused replace or enter backs its side off (no retry in
the same breath, counted and alerted); a refused replacement whose replace had timed out to
outcome-unknown gives the original back as it stands at the venue; a cancel reject of an order the
venue never accepted leaves it outcome-unknown, never ACCEPTED. OMS cases through the transition
table, engine cases against the embedded venue's own matching engine (tests.mm_core.test_modify)."""
import pytest

from mm_core.events import JournalNote, SendOrder, Timer, VenueMessage
from mm_core.oms import TRANSITIONS, InvalidTransition, Oms, OrderFsm, OrderState, Trigger
from mm_core.protocol import ouch, soupbintcp
from mm_core.risk.checks import CheckId
from mm_core.types import OrderIntent, OrderKind, Side
from tests.mm_core.test_gateway_answers import gateway_view, quoting, rejected
from tests.mm_core.test_modify import drive, mine
from tests.mm_core.wire import ACME, MS

St, Tr = OrderState, Trigger


def oms() -> Oms:
    return Oms("T1", lambda t: b"X" + t.encode())


def accepted(o: Oms, qty: int = 300) -> str:
    token = o.new_token()
    o.on_sent(OrderIntent(OrderKind.ENTER, token, ACME, Side.BUY, 999_800, qty), 0)
    o.on_accepted(token, 7, 1)
    return token


def replace(o: Oms, token: str, now: int) -> str:
    new = o.new_token()
    o.on_sent(OrderIntent(OrderKind.REPLACE, new, ACME, Side.BUY, 999_900, 300, orig_token=token), now)
    return new


def cancel(o: Oms, token: str, now: int) -> None:
    o.on_sent(OrderIntent(OrderKind.CANCEL, token, ACME, Side.BUY, 0, 0), now)


def cancel_reject(token: str, now: int) -> VenueMessage:
    return VenueMessage(soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(
        ouch.CancelReject(now, token)))), now)


def sends(actions, kind=None) -> list:
    return [a for a in actions if isinstance(a, SendOrder) and (kind is None or a.intent.kind is kind)]


def alerts(actions, kind: str) -> list:
    return [a for a in actions if isinstance(a, JournalNote) and a.summary.startswith(kind + ":")]


# --- 1. a refused replace backs its side off -----------------------------------------------------

def step_up(engine, venue, now):
    """A better bid joins: our bid wants to step up, so the engine replaces it; returns the
    replace and our resting bid (the venue has not answered the replace)."""
    bid, = mine(venue, "B")
    acts = []
    for ev in venue.others("B", 300, 1_000_000, now):
        acts += engine.on_event(ev)
    rep, = [a for a in sends(acts, OrderKind.REPLACE) if a.intent.orig_token == bid.token]
    return rep, bid


def test_a_refused_replace_is_not_sent_again_in_the_same_event_and_is_counted():
    engine, venue, now = quoting()
    now += 200 * MS
    rep, bid = step_up(engine, venue, now)
    acts = engine.on_event(rejected(rep.intent.token, now))
    # the quote still wants the higher price, yet no second replace (nor enter) of that side follows
    assert not [a for a in sends(acts) if a.intent.side is Side.BUY]
    assert engine.oms.working_order(ACME, Side.BUY).token == bid.token
    assert engine.counts["venue_rejects"] == 1
    note, = alerts(acts, "venue-reject")
    assert rep.intent.token in note.summary and bid.token in note.summary
    # nor on the next market-data change within the back-off ...
    now += engine.cfg.deny_backoff_ns // 2
    acts = drive(engine, venue, venue.others("S", 100, 1_000_300, now), now)
    assert not [a for a in sends(acts) if a.intent.side is Side.BUY]
    assert engine.mirrors_stale() == []
    # ... and once it is over, the quote works again (one replace, not a loop)
    now += engine.cfg.deny_backoff_ns
    acts = engine.on_event(Timer(now))
    again = [a for a in sends(acts, OrderKind.REPLACE) if a.intent.orig_token == bid.token]
    assert len(again) == 1
    assert engine.counts["denials"] == 0


def test_a_refused_replace_of_a_quote_now_too_good_pulls_it():
    engine, venue, now = quoting()
    now += 200 * MS
    rep, bid = step_up(engine, venue, now)
    drive(engine, venue, [rejected(rep.intent.token, now)], now)
    # the better bids leave and a lower one comes: the wanted bid is now below the one resting,
    # which backs off from a replace, so it is pulled rather than left resting too high
    now += MS
    evs = (venue._events(venue.engine.cancel("~LP", f"LP{venue.n}"), now)
           + venue._events(venue.engine.cancel("~LP", "LP1"), now) + venue.others("B", 300, 999_400, now))
    acts = drive(engine, venue, evs, now)
    assert engine._quote(ACME)[0] < bid.price
    buys = [a for a in sends(acts) if a.intent.side is Side.BUY]
    assert [a.intent.kind for a in buys] == [OrderKind.CANCEL]
    assert buys[0].intent.token == bid.token


def venue_cancels_our_bid(engine, venue, now) -> tuple[str, int]:
    """The venue cancels our resting bid on its own; the engine enters a new one (after the
    gateway's duplicate-order back-off). Returns its token and the time."""
    bid, = mine(venue, "B")
    for ev in venue._events(venue.engine.cancel(venue.OWNER, bid.token), now):
        engine.on_event(ev)
    now += engine.cfg.deny_backoff_ns
    enter, = [a for a in sends(engine.on_event(Timer(now)), OrderKind.ENTER) if a.intent.side is Side.BUY]
    return enter.intent.token, now


def test_a_refused_enter_backs_off_too():
    engine, venue, now = quoting()
    now += MS
    token, now = venue_cancels_our_bid(engine, venue, now)
    acts = engine.on_event(rejected(token, now))
    assert engine.oms.get(token).state is St.REJECTED
    assert not [a for a in sends(acts) if a.intent.side is Side.BUY]
    assert engine.counts["venue_rejects"] == 1 and alerts(acts, "venue-reject")
    now += engine.cfg.deny_backoff_ns // 2                   # still backing off on the timer
    assert not [a for a in sends(engine.on_event(Timer(now))) if a.intent.side is Side.BUY]


# --- 2. a timed-out replace that is then refused -------------------------------------------------

@pytest.mark.parametrize("fill, state", [(0, St.ACCEPTED), (100, St.PARTIALLY_FILLED)])
def test_oms_a_refused_replacement_gives_back_an_unknown_original(fill, state):
    o = oms()
    token = accepted(o)
    new = replace(o, token, 2)
    assert {x.token for x in o.check_timeouts(10, 5)} == {token, new}
    assert o.counts() == (2, 2)
    if fill:
        o.on_executed(token, fill, 11)          # says nothing about the replace
        assert o.get(token).state is St.UNKNOWN
    o.on_rejected(new, 12)
    original = o.get(token)
    assert original.state is state and (original.filled, original.leaves) == (fill, 300 - fill)
    assert o.get(new).state is St.REJECTED
    assert o.working_order(ACME, Side.BUY) is original
    assert o.counts() == (1, 0)


def test_oms_an_unknown_original_with_its_own_cancel_in_flight_is_pending_that_cancel():
    o = oms()
    token = accepted(o)
    new = replace(o, token, 2)
    o.check_timeouts(10, 5)
    cancel(o, token, 11)                        # a latch pulls it while its outcome is unknown
    o.on_rejected(new, 12)
    assert o.get(token).state is St.PENDING_CANCEL
    assert o.counts() == (1, 0)
    o.on_canceled(token, 300, 13)               # the venue then cancels it
    assert o.get(token).state is St.CANCELED and o.counts() == (0, 0)


def test_oms_a_replacement_timed_out_alone_is_refused_the_original_returns():
    o = oms()
    token = accepted(o)
    new = replace(o, token, 2)
    o.on_executed(token, 50, 4)                 # the original trades: its own clock restarts
    o.check_timeouts(2 + 5, 5)
    assert (o.get(token).state, o.get(new).state) == (St.PENDING_REPLACE, St.UNKNOWN)
    o.on_rejected(new, 8)
    assert o.get(token).state is St.PARTIALLY_FILLED and o.counts() == (1, 0)


def test_engine_a_refused_replace_after_its_timeout_clears_the_fault_and_the_gateway_counts_it():
    engine, venue, now = quoting()
    now += 200 * MS
    rep, bid = step_up(engine, venue, now)
    now += engine.cfg.ack_timeout_ns
    acts = engine.on_event(Timer(now))
    assert alerts(acts, "outcome-unknown")
    assert engine.oms.get(bid.token).state is St.UNKNOWN
    assert CheckId.UNKNOWN_OUTCOME.label in engine.risk.faults
    now += MS
    acts = engine.on_event(rejected(rep.intent.token, now))
    original = engine.oms.get(bid.token)
    # the latch pulled the original while unknown: it is pending that cancel now, not unknown
    assert original.state is St.PENDING_CANCEL and original.leaves == bid.shares
    assert engine.oms.counts()[1] == 0
    assert CheckId.UNKNOWN_OUTCOME.label not in engine.risk.faults
    view = gateway_view(engine)
    assert view[0][bid.token] == (ACME, True, bid.shares, bid.price)
    assert rep.intent.token not in view[0]
    assert view[1] == sum(q for _, b, q, _ in view[0].values() if b)


# --- 3. a cancel reject of an order never accepted -----------------------------------------------

def test_the_table_sends_a_cancel_reject_of_an_unaccepted_order_to_unknown_never_accepted():
    assert TRANSITIONS[(St.PENDING_CANCEL, Tr.CANCEL_REJECT_UNACCEPTED)] is St.UNKNOWN
    assert TRANSITIONS[(St.UNKNOWN, Tr.CANCEL_REJECT_UNACCEPTED)] is St.UNKNOWN
    assert TRANSITIONS[(St.PENDING_CANCEL, Tr.CANCEL_REJECT)] is St.ACCEPTED
    for state in (St.PENDING_NEW, St.ACCEPTED, St.CANCELED, St.REJECTED):
        with pytest.raises(InvalidTransition):
            OrderFsm(state).fire(Tr.CANCEL_REJECT_UNACCEPTED)


def test_oms_cancel_reject_of_a_never_accepted_order():
    o = oms()
    token = o.new_token()
    o.on_sent(OrderIntent(OrderKind.ENTER, token, ACME, Side.BUY, 999_800, 300), 0)
    cancel(o, token, 1)
    order = o.on_cancel_reject(token, 2)
    assert order.state is St.UNKNOWN and not order.acked
    assert o.counts() == (1, 1)
    o.on_accepted(token, 9, 3)                  # the venue's late word on it resolves it
    assert order.state is St.ACCEPTED and order.acked and o.counts() == (1, 0)


def test_oms_cancel_reject_of_an_accepted_order_is_still_accepted():
    o = oms()
    token = accepted(o)
    cancel(o, token, 2)
    assert o.on_cancel_reject(token, 3).state is St.ACCEPTED
    assert not o.get(token).cancel_sent


def test_engine_cancel_reject_of_an_unaccepted_order_is_a_fault_not_a_working_quote():
    engine, venue, now = quoting()
    now += MS
    token, now = venue_cancels_our_bid(engine, venue, now)
    order = engine.oms.get(token)
    engine._cancel(order, order.purpose, [])          # pulled before the venue answered the enter
    acts = engine.on_event(cancel_reject(token, now + MS))
    assert engine.counts["halts"] == 0
    assert order.state is St.UNKNOWN and not order.acked
    assert engine.oms.working_order(ACME, Side.BUY) is order    # no second bid beside it
    # fail closed: the unknown outcome latches, and the latch cancels the order again (it may rest)
    assert [(a.intent.kind, a.intent.token) for a in sends(acts) if a.intent.side is Side.BUY] == \
        [(OrderKind.CANCEL, token)]
    assert alerts(acts, "outcome-unknown")
    assert CheckId.UNKNOWN_OUTCOME.label in engine.risk.faults


@pytest.mark.parametrize("fill, state", [(0, St.ACCEPTED), (100, St.PARTIALLY_FILLED)])
def test_oms_a_cancel_that_timed_out_then_refused_leaves_the_order_standing(fill, state):
    o = oms()
    token = accepted(o)
    if fill:
        o.on_executed(token, fill, 1)
    cancel(o, token, 2)
    o.check_timeouts(10, 5)
    assert o.get(token).state is St.UNKNOWN and o.counts() == (1, 1)
    order = o.on_cancel_reject(token, 11)
    assert order.state is state and order.leaves == 300 - fill and not order.cancel_sent
    assert o.counts() == (1, 0)


def test_oms_a_cancel_reject_says_nothing_of_a_replace_still_open():
    o = oms()
    token = accepted(o)
    new = replace(o, token, 2)
    cancel(o, token, 3)                         # pulled while its replace flies
    o.check_timeouts(10, 5)
    assert o.on_cancel_reject(token, 11).state is St.UNKNOWN    # the replace is still open
    o.on_rejected(new, 12)                      # ... until the venue refuses it
    assert o.get(token).state is St.ACCEPTED and o.counts() == (1, 0)
