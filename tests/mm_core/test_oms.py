import pytest

from journal.catalogue import Side
from mm_core.oms import (
    TERMINAL, TRANSITIONS, InvalidTransition, Oms, OmsError, OrderFsm, OrderState, Trigger,
)
from mm_core.types import OrderIntent, OrderKind, Purpose

St, Tr = OrderState, Trigger


def cancel_bytes(token: str) -> bytes:
    return b"X" + token.encode()


def oms() -> Oms:
    return Oms("T1", cancel_bytes)


def enter(o: Oms, side=Side.BUY, qty=300, purpose=Purpose.QUOTE):
    return o.on_sent(OrderIntent(OrderKind.ENTER, o.new_token(), 1, side, 10_000, qty, purpose=purpose), 0)


def test_tokens_are_day_unique_prefix_plus_counter():
    o = oms()
    tokens = [o.new_token() for _ in range(40)]
    assert tokens[0] == "T1000000000001" and tokens[34] == "T100000000000Z" and tokens[35] == "T1000000000010"
    assert len(set(tokens)) == 40 and all(len(t) == 14 for t in tokens)
    with pytest.raises(OmsError):
        Oms("bad prefix", cancel_bytes)


@pytest.mark.parametrize("path, end", [
    ([Tr.ACCEPT, Tr.PARTIAL_FILL, Tr.FILL], St.FILLED),
    ([Tr.REJECT], St.REJECTED),
    ([Tr.ACCEPT, Tr.CANCEL_SENT, Tr.CANCELED], St.CANCELED),
    ([Tr.ACCEPT, Tr.CANCEL_SENT, Tr.PARTIAL_FILL, Tr.CANCELED], St.CANCELED),   # fill after cancel
    ([Tr.ACCEPT, Tr.CANCEL_SENT, Tr.FILL], St.FILLED),
    ([Tr.ACCEPT, Tr.CANCEL_SENT, Tr.CANCEL_REJECT], St.ACCEPTED),
    ([Tr.ACCEPT, Tr.REPLACE_SENT, Tr.REPLACED], St.REPLACED),
    ([Tr.ACCEPT, Tr.REPLACE_SENT, Tr.REPLACE_REJECT], St.ACCEPTED),
    ([Tr.TIMEOUT, Tr.ACCEPT, Tr.FILL], St.FILLED),                               # outcome-unknown resolves
    ([Tr.ACCEPT, Tr.CANCEL_SENT, Tr.TIMEOUT, Tr.CANCELED], St.CANCELED),
    ([Tr.ACCEPT, Tr.REDUCE, Tr.CANCELED], St.CANCELED),
    # a size-down in place (OUCH Modify): fills, pulls and timeouts may cross it
    ([Tr.ACCEPT, Tr.MODIFY_SENT, Tr.MODIFIED], St.ACCEPTED),
    ([Tr.ACCEPT, Tr.PARTIAL_FILL, Tr.MODIFY_SENT, Tr.MODIFIED_PARTIAL], St.PARTIALLY_FILLED),
    ([Tr.ACCEPT, Tr.MODIFY_SENT, Tr.PARTIAL_FILL, Tr.MODIFIED_PARTIAL], St.PARTIALLY_FILLED),
    ([Tr.ACCEPT, Tr.MODIFY_SENT, Tr.FILL], St.FILLED),
    ([Tr.ACCEPT, Tr.MODIFY_SENT, Tr.CANCEL_SENT, Tr.MODIFIED, Tr.CANCELED], St.CANCELED),
    ([Tr.ACCEPT, Tr.MODIFY_SENT, Tr.TIMEOUT, Tr.MODIFIED], St.ACCEPTED),
])
def test_legal_paths(path, end):
    fsm = OrderFsm()
    for trigger in path:
        fsm.fire(trigger)
    assert fsm.state is end


@pytest.mark.parametrize("state, trigger", [
    (St.CANCELED, Tr.FILL), (St.FILLED, Tr.PARTIAL_FILL), (St.REJECTED, Tr.ACCEPT),
    (St.PENDING_NEW, Tr.FILL), (St.ACCEPTED, Tr.ACCEPT), (St.REPLACED, Tr.CANCELED),
    (St.PENDING_NEW, Tr.CANCEL_REJECT),
])
def test_impossible_transitions_raise_with_a_readable_name(state, trigger):
    assert (state, trigger) not in TRANSITIONS
    fsm = OrderFsm(state)
    with pytest.raises(InvalidTransition, match=f"^{state.value} -> {trigger.value}$"):
        fsm.fire(trigger)
    assert fsm.state is state         # nothing changed


def test_every_terminal_state_is_a_dead_end():
    for (state, _), _next in TRANSITIONS.items():
        assert state not in (St.FILLED, St.CANCELED, St.REPLACED, St.REJECTED)


def test_accept_pre_encodes_the_cancel_and_fills_track_leaves():
    o = oms()
    order = enter(o)
    assert order.cancel_packet == b""
    o.on_accepted(order.token, 77, 5)
    assert order.cancel_packet == cancel_bytes(order.token) and order.venue_ref == 77
    o.on_executed(order.token, 100, 6)
    assert (order.state, order.leaves, order.filled) == (St.PARTIALLY_FILLED, 200, 100)
    with pytest.raises(InvalidTransition):
        o.on_executed(order.token, 500, 7)          # more than is left: impossible
    o.on_executed(order.token, 200, 8)
    assert order.state is St.FILLED and o.working_order(1, Side.BUY) is None
    with pytest.raises(InvalidTransition, match="filled -> fill"):
        o.on_executed(order.token, 1, 9)


def test_fill_after_cancel_is_counted():
    o = oms()
    order = enter(o)
    o.on_accepted(order.token, 1, 0)
    o.on_sent(OrderIntent(OrderKind.CANCEL, order.token, 1, Side.BUY, 10_000, 0), 1)
    o.on_executed(order.token, 100, 2)
    o.on_canceled(order.token, 200, 3)
    assert order.state is St.CANCELED and order.fills_after_cancel == 1 and order.filled == 100


def test_replace_moves_the_working_slot_to_the_new_token():
    o = oms()
    old = enter(o)
    o.on_accepted(old.token, 1, 0)
    new = o.on_sent(OrderIntent(OrderKind.REPLACE, o.new_token(), 1, Side.BUY, 10_100, 300,
                                orig_token=old.token), 1)
    assert old.state is St.PENDING_REPLACE and o.working_order(1, Side.BUY) is new
    o.on_replaced(new.token, old.token, 2, 300, 10_100, 2)
    assert old.state is St.REPLACED and new.state is St.ACCEPTED and new.cancel_packet


def test_replacement_dies_with_its_original():
    o = oms()
    old = enter(o)
    o.on_accepted(old.token, 1, 0)
    new = o.on_sent(OrderIntent(OrderKind.REPLACE, o.new_token(), 1, Side.BUY, 10_100, 300,
                                orig_token=old.token), 1)
    o.on_executed(old.token, 300, 2)              # filled before the replace arrived
    assert old.state is St.FILLED
    assert new.state is St.REJECTED and o.counts() == (0, 0)   # the replace can never happen
    assert o.working_order(1, Side.BUY) is None


def test_timeouts_make_outcome_unknown_and_prune_forgets_old_terminal_orders():
    o = oms()
    a, b = enter(o), enter(o, side=Side.SELL)
    o.on_accepted(b.token, 1, 0)
    late = o.check_timeouts(1_000, 500)
    assert late == [a] and a.state is St.UNKNOWN and o.counts() == (2, 1)
    o.on_rejected(a.token, 1_100)
    assert o.counts() == (1, 0)
    assert o.prune(1_200, 500) == 0 and o.prune(2_000, 500) == 1
    with pytest.raises(OmsError):
        o.get(a.token)


def test_cancel_racing_a_replace_passes_to_the_replacement():
    """Replace sent, then a sweep cancels the original before the venue answered: the venue
    replaces first and ignores the stale cancel, so the replacement must be cancelled in turn."""
    o = oms()
    old = enter(o)
    o.on_accepted(old.token, 7, 1)
    new_token = o.new_token()
    o.on_sent(OrderIntent(OrderKind.REPLACE, new_token, 1, Side.BUY, 10_100, 300, orig_token=old.token), 2)
    o.on_sent(OrderIntent(OrderKind.CANCEL, old.token, 1, Side.BUY, 10_000, 0, purpose=Purpose.GUARD_CANCEL), 3)
    assert old.state is St.PENDING_CANCEL
    new = o.on_replaced(new_token, old.token, 8, 300, 10_100, 4)
    assert old.state is St.REPLACED and new.state is St.ACCEPTED
    assert new.cancel_on_accept is Purpose.GUARD_CANCEL
    assert [order.token for order in o.open_orders()] == [new_token]


def test_replacement_not_flagged_without_a_cancel_race():
    o = oms()
    old = enter(o)
    o.on_accepted(old.token, 7, 1)
    new_token = o.new_token()
    o.on_sent(OrderIntent(OrderKind.REPLACE, new_token, 1, Side.BUY, 10_100, 300, orig_token=old.token), 2)
    assert o.on_replaced(new_token, old.token, 8, 300, 10_100, 4).cancel_on_accept is None


# --- a pull before the venue answered: the answers cross our cancel -------------------------

def cancel_intent(token, purpose=Purpose.QUOTE):
    return OrderIntent(OrderKind.CANCEL, token, 1, Side.BUY, 10_000, 0, purpose=purpose)


def test_cancel_of_an_unanswered_enter_then_accepted_then_canceled():
    o = oms()
    order = enter(o)
    o.on_sent(cancel_intent(order.token), 1)
    assert order.state is St.PENDING_CANCEL and not order.acked
    o.on_accepted(order.token, 9, 2)               # the enter's answer crosses our cancel
    assert order.state is St.PENDING_CANCEL and order.acked and order.venue_ref == 9
    o.on_canceled(order.token, 300, 3)
    assert order.state is St.CANCELED and o.counts() == (0, 0)
    assert o.working_order(1, Side.BUY) is None


def test_cancel_of_an_unanswered_enter_filled_before_the_cancel_landed():
    o = oms()
    order = enter(o)
    o.on_sent(cancel_intent(order.token), 1)
    o.on_accepted(order.token, 9, 2)
    o.on_executed(order.token, 100, 3)
    assert (order.state, order.leaves, order.fills_after_cancel) == (St.PENDING_CANCEL, 200, 1)
    o.on_executed(order.token, 200, 4)             # filled entirely: the venue ignores our cancel
    assert order.state is St.FILLED and o.counts() == (0, 0)


def test_cancel_of_an_unanswered_enter_that_the_venue_refused():
    o = oms()
    order = enter(o)
    o.on_sent(cancel_intent(order.token), 1)
    o.on_rejected(order.token, 2)
    assert order.state is St.REJECTED and o.counts() == (0, 0)


def test_a_second_accept_or_a_reject_after_an_accept_stays_impossible():
    o = oms()
    order = enter(o)
    o.on_sent(cancel_intent(order.token), 1)
    o.on_accepted(order.token, 9, 2)
    with pytest.raises(InvalidTransition, match="already accepted"):
        o.on_accepted(order.token, 9, 3)
    with pytest.raises(InvalidTransition, match="already accepted"):
        o.on_rejected(order.token, 3)
    accepted = enter(o, side=Side.SELL)
    o.on_accepted(accepted.token, 10, 1)
    o.on_sent(cancel_intent(accepted.token), 2)
    with pytest.raises(InvalidTransition, match="already accepted"):
        o.on_accepted(accepted.token, 10, 3)


def pending_replace(o: Oms):
    old = enter(o)
    o.on_accepted(old.token, 7, 1)
    new = o.on_sent(OrderIntent(OrderKind.REPLACE, o.new_token(), 1, Side.BUY, 10_100, 300,
                                orig_token=old.token), 2)
    return old, new


def pulled_pending_replace(o: Oms):
    """A pull of a pending replace: cancels of the original and of the replacement, both sent."""
    old, new = pending_replace(o)
    o.on_sent(cancel_intent(old.token), 3)
    assert new.cancel_on_accept is Purpose.QUOTE
    o.on_sent(cancel_intent(new.token), 3)
    return old, new


def test_pull_of_a_pending_replace_cancels_both_tokens_replace_wins():
    o = oms()
    old, new = pulled_pending_replace(o)
    assert new.cancel_on_accept is None          # its own cancel is on the way: no second one
    assert (old.state, new.state) == (St.PENDING_CANCEL, St.PENDING_CANCEL)
    o.on_replaced(new.token, old.token, 8, 300, 10_100, 4)   # the venue replaced first
    assert (old.state, new.state) == (St.REPLACED, St.PENDING_CANCEL) and new.acked
    o.on_canceled(new.token, 300, 5)            # then our cancel of the replacement landed
    assert new.state is St.CANCELED and o.counts() == (0, 0)


def test_pull_of_a_pending_replace_cancels_both_tokens_replace_refused():
    o = oms()
    old, new = pulled_pending_replace(o)
    o.on_rejected(new.token, 4)                  # the replace was refused ...
    assert (old.state, new.state) == (St.PENDING_CANCEL, St.REJECTED)
    assert o.working_order(1, Side.BUY) is old   # ... the original still rests until its cancel
    o.on_canceled(old.token, 300, 5)
    assert old.state is St.CANCELED and o.counts() == (0, 0)


def test_pulled_replacement_dies_with_its_original():
    o = oms()
    old, new = pulled_pending_replace(o)
    o.on_executed(old.token, 300, 4)             # filled before the replace arrived
    assert old.state is St.FILLED and new.state is St.REJECTED and o.counts() == (0, 0)


def test_a_late_replacement_dies_with_its_original_even_after_its_timeout():
    """Answers held back: original and replacement time out, the pull cancels both, then the
    venue reports the original filled (the replace reached a dead token and was ignored)."""
    o = oms()
    old, new = pending_replace(o)
    assert o.check_timeouts(10_000, 500) == [old, new]
    o.on_sent(cancel_intent(old.token), 10_001)
    o.on_sent(cancel_intent(new.token), 10_001)
    assert (old.state, new.state) == (St.UNKNOWN, St.UNKNOWN)
    o.on_executed(old.token, 300, 10_002)
    assert (old.state, new.state) == (St.FILLED, St.REJECTED) and o.counts() == (0, 0)


def test_a_partial_fill_does_not_resolve_an_unknown_replace():
    """A replace whose answer is late: the original times out, is partly filled before the
    replace reaches the venue, then the replace is confirmed. No impossible transition."""
    o = oms()
    old, new = pending_replace(o)
    o.check_timeouts(10_000, 500)
    o.on_executed(old.token, 100, 10_001)
    assert old.state is St.UNKNOWN and o.counts() == (2, 2)     # still unknown: was it replaced?
    o.on_replaced(new.token, old.token, 8, 200, 10_100, 10_002)
    assert (old.state, new.state, new.leaves) == (St.REPLACED, St.ACCEPTED, 200)
    assert o.counts() == (1, 0)


def _prune_reference(o: Oms, now_ns: int, keep_ns: int) -> set[str]:
    """What prune must forget: every terminal order whose last transition is older than keep_ns."""
    return {t for t, order in o.orders.items()
            if order.state in TERMINAL and now_ns - order.last_ns > keep_ns}


def test_prune_forgets_exactly_what_a_full_scan_finds():
    """prune takes orders from its expiry heap instead of scanning them all: over random
    sessions (times that may step back, prunes at random moments, an OMS pickled mid-way) it
    forgets the same orders as scanning every order each time."""
    import pickle
    import random
    rng = random.Random(11)
    for _ in range(40):
        o, now, keep, forgotten = oms(), 0, rng.choice([50, 400, 2_000]), 0
        for step in range(300):
            now += rng.randrange(-20, 60)
            r = rng.random()
            live = list(o.live.values())
            if r < 0.3 or not live:
                o.on_sent(OrderIntent(OrderKind.ENTER, o.new_token(), 1, Side.BUY, 10_000, 100), now)
            elif r < 0.75:
                order = rng.choice(live)
                if order.state is St.PENDING_NEW:
                    o.on_accepted(order.token, 7, now) if rng.random() < 0.8 else o.on_rejected(order.token, now)
                elif order.state is St.ACCEPTED:
                    o.on_executed(order.token, order.leaves, now)
            elif r < 0.95:
                want = _prune_reference(o, now, keep)
                before = set(o.orders)
                assert o.prune(now, keep) == len(want)
                assert before - set(o.orders) == want
                forgotten += len(want)
            else:
                o = pickle.loads(pickle.dumps(o))
        assert forgotten > 0 or keep == 2_000
