"""A quote whose enter would repeat, inside the gateway's duplicate window, the very order (symbol,
side, price, size) entered last waits for the window to pass instead of being denied: the venue
took our bid away and the engine wants it back where it was (RiskGateway.duplicate_until). The
compiled engine and the Python reference in lockstep."""
from mm_core.events import Timer
from tests.mm_core.test_quote_order_cap import BID, _quoted
from tests.mm_core.test_hedge_hold_pairs import _settled
from tests.mm_core.test_quote_position_room import _denials, _resting
from tests.mm_core.wire import ACME, MS, md

WINDOW = 50 * MS        # LIMITS_TEXT's [duplicate] window_ms


def test_a_quote_taken_away_comes_back_once_the_duplicate_window_passes(monkeypatch):
    lock, venue, feed, now = _quoted(monkeypatch, "max_order_qty = 5000")
    assert lock.kernel.risk.limits.duplicate_window_ns == WINDOW
    [bid] = venue.resting("ACME", "B")
    entered = venue.orders[bid]
    assert (entered["price"], entered["qty"]) == (BID, 200)
    # the venue cancels our bid (e.g. its own housekeeping) 1 ms after the enter: the same bid now
    # would be a duplicate order
    acts = _settled(lock, venue, venue.cancel_rest(bid, now + MS))
    acts += _settled(lock, venue, Timer(now + 30 * MS))
    assert not _denials(acts) and _resting(venue, "B") == []
    for engine in (lock.kernel, lock.reference):
        assert engine.counts["denials"] == 0
        assert engine.risk.duplicate_until(ACME, True, BID, 200) == now + WINDOW
    # past the window, the first event brings it back, where it was
    acts = _settled(lock, venue, Timer(now + WINDOW))
    assert not _denials(acts) and _resting(venue, "B") == [(BID, 200)]
    assert lock.kernel.counts["denials"] == lock.reference.counts["denials"] == 0
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_a_quote_at_a_new_price_does_not_wait_for_the_old_ones_window(monkeypatch):
    """Only the very order waits: a bid that moved is entered at once (not a duplicate)."""
    lock, venue, feed, now = _quoted(monkeypatch, "max_order_qty = 5000")
    [bid] = venue.resting("ACME", "B")
    acts = _settled(lock, venue, venue.cancel_rest(bid, now + MS))
    assert _resting(venue, "B") == []
    # a bid of theirs at $100.00 moves fair value, and our bid a tick up: a different order,
    # entered at once
    acts += _settled(lock, venue, md(feed.packet(feed.add(ACME, "B", 100, 1_000_000)), now + 2 * MS))
    assert not _denials(acts) and _resting(venue, "B") == [(BID + 100, 200)]
    assert lock.kernel.state_hash() == lock.reference.state_hash()
