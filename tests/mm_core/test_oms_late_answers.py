"""Venue answers after a timeout: the OMS refuses what the venue cannot say about an order in any
state it may be in then (an accept or reject of an order already accepted, a cancel reject with
no cancel of ours open, an Order Modified with no modify open), changing nothing, so the engine
halts; and it applies a late accept of an order whose cancel followed it without losing that
cancel (the same answers without the timeout in between end the same)."""
import pytest

from journal.catalogue import Side
from mm_core.oms import InvalidTransition, Oms, OmsError, OrderState, check_token_room
from mm_core.types import OrderIntent, OrderKind

St = OrderState
SECOND = 1_000_000_000


def oms() -> Oms:
    return Oms("T1", lambda t: b"X" + t.encode())


def enter(o: Oms, qty: int = 500) -> str:
    token = o.new_token()
    o.on_sent(OrderIntent(OrderKind.ENTER, token, 1, Side.BUY, 10_000, qty), 0)
    return token


def send(o: Oms, kind: OrderKind, token: str, qty: int = 0) -> None:
    o.on_sent(OrderIntent(kind, token, 1, Side.BUY, 10_000, qty), 1)


def replace(o: Oms, token: str) -> str:
    new = o.new_token()
    o.on_sent(OrderIntent(OrderKind.REPLACE, new, 1, Side.BUY, 10_001, 500, orig_token=token), 1)
    return new


def time_out(o: Oms) -> None:
    assert o.check_timeouts(10 * SECOND, SECOND)


def accepted() -> tuple[Oms, str]:
    o = oms()
    token = enter(o)
    o.on_accepted(token, 7, 1)
    return o, token


def cancel_timed_out():
    o, t = accepted()
    send(o, OrderKind.CANCEL, t)
    time_out(o)
    return o, t


def replace_timed_out():
    o, t = accepted()
    replace(o, t)
    time_out(o)
    return o, t


def modify_timed_out():
    o, t = accepted()
    send(o, OrderKind.MODIFY, t, 200)
    time_out(o)
    return o, t


def cancel_refused():
    o, t = accepted()
    send(o, OrderKind.CANCEL, t)
    o.on_cancel_reject(t, 2)
    return o, t


def pending_cancel():
    o, t = accepted()
    send(o, OrderKind.CANCEL, t)
    return o, t


def enter_timed_out():
    o = oms()
    t = enter(o)
    time_out(o)
    return o, t


def modify_answered():
    o, t = accepted()
    send(o, OrderKind.MODIFY, t, 200)
    o.on_modified(t, 200, 2)
    return o, t


@pytest.mark.parametrize("setup, answer, why", [
    (cancel_timed_out, lambda o, t: o.on_accepted(t, 99, 20), "accept of an order already accepted"),
    (cancel_timed_out, lambda o, t: o.on_rejected(t, 20), "reject of an order already accepted"),
    (replace_timed_out, lambda o, t: o.on_accepted(t, 99, 20), "accept of an order already accepted"),
    (modify_timed_out, lambda o, t: o.on_rejected(t, 20), "reject of an order already accepted"),
    (modify_timed_out, lambda o, t: o.on_cancel_reject(t, 20), "cancel-reject with no cancel sent"),
    (cancel_refused, lambda o, t: o.on_cancel_reject(t, 20), "cancel-reject with no cancel sent"),
    (pending_cancel, lambda o, t: o.on_modified(t, 100, 20), "modified with no modify sent"),
    (enter_timed_out, lambda o, t: o.on_modified(t, 100, 20), "modified with no modify sent"),
    (modify_answered, lambda o, t: o.on_modified(t, 100, 20), "modified with no modify sent"),
], ids=["accept-after-cancel-timeout", "reject-after-cancel-timeout", "accept-after-replace-timeout",
        "reject-after-modify-timeout", "cancel-reject-after-modify-timeout", "second-cancel-reject",
        "modified-while-cancelling", "modified-never-accepted", "second-modified"])
def test_an_answer_the_venue_cannot_give_is_refused_and_changes_nothing(setup, answer, why):
    o, t = setup()
    order = o.get(t)
    before = (order.state, order.leaves, order.venue_ref, order.cancel_sent, order.modify_sent, o.counts())
    with pytest.raises(InvalidTransition, match=why):
        answer(o, t)
    assert (order.state, order.leaves, order.venue_ref, order.cancel_sent, order.modify_sent,
            o.counts()) == before
    assert t in o.live


def test_the_modify_answer_after_its_timeout_still_applies():
    o, t = modify_timed_out()
    order = o.on_modified(t, 200, 20)
    assert (order.state, order.leaves, order.modify_sent) == (St.ACCEPTED, 200, False)


def _late_accept(timeout: bool) -> Oms:
    o = oms()
    t = enter(o)
    if timeout:
        time_out(o)
    send(o, OrderKind.CANCEL, t)
    o.on_accepted(t, 7, 20)
    return o


@pytest.mark.parametrize("timeout", [False, True])
def test_a_late_accept_of_an_order_whose_cancel_followed_it_waits_for_that_cancel(timeout):
    o = _late_accept(timeout)
    order = next(iter(o.live.values()))
    assert order.state is St.PENDING_CANCEL and order.cancel_sent and order.acked
    assert o.counts() == (1, 0)
    o.on_canceled(order.token, 500, 30)
    assert order.state is St.CANCELED


@pytest.mark.parametrize("timeout", [False, True])
def test_a_late_replaced_of_a_pulled_replacement_waits_for_its_cancel(timeout):
    o, t = accepted()
    new = replace(o, t)
    if timeout:
        time_out(o)
    send(o, OrderKind.CANCEL, new)
    order = o.on_replaced(new, t, 8, 500, 10_001, 20)
    assert order.state is St.PENDING_CANCEL and order.cancel_sent
    assert o.get(t).state is St.REPLACED


@pytest.mark.parametrize("timeout", [False, True])
def test_a_late_modified_of_a_pulled_order_waits_for_its_cancel(timeout):
    o, t = accepted()
    send(o, OrderKind.MODIFY, t, 200)
    if timeout:
        time_out(o)
    send(o, OrderKind.CANCEL, t)
    order = o.on_modified(t, 200, 20)
    assert (order.state, order.leaves, order.cancel_sent) == (St.PENDING_CANCEL, 200, True)


def test_fills_after_a_cancel_are_counted_also_after_it_timed_out():
    o, t = pending_cancel()
    o.on_executed(t, 100, 2)
    time_out(o)
    assert o.get(t).state is St.UNKNOWN
    order = o.on_executed(t, 100, 20)
    assert order.fills_after_cancel == 2
    o2, t2 = accepted()
    assert o2.on_executed(t2, 100, 2).fills_after_cancel == 0


@pytest.mark.parametrize("prefix", ["MÜ", "Ⅻ", "٣"])
def test_a_token_prefix_must_be_ascii(prefix):
    assert prefix.isalnum()              # what str.isalnum alone let through
    with pytest.raises(OmsError, match="ASCII"):
        Oms(prefix, lambda t: b"")
    with pytest.raises(OmsError, match="ASCII"):
        check_token_room(prefix, "00000")
    check_token_room("MM", "00000")
