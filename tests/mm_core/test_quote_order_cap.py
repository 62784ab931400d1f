"""Our quotes are sized to what the risk gateway's size and value checks take of one order: each
side is cut, in whole lots, to the symbol's max_order_qty (halved in safe mode, as the gateway
halves it) and to its max_order_value at the side's own price (RiskGateway.order_caps). A quote
the gateway used to deny for MAX_ORDER_QTY or MAX_ORDER_VALUE, its side then backing off, is
now sent at the size it takes; a side of which not one lot fits is not quoted. The C pricer, the
Python reference and the compiled and reference engines (Lockstep) agree throughout."""
import dataclasses

import pytest

from mm_core.events import ClockSample, OperatorCommand
from mm_core.inventory import InventoryError, within_order_caps
from mm_core.quotepricer import QuotePricer, price_reference
from mm_core.risk import TradingState
from mm_core.risk.limits import PRICE4
from tests.mm_core import test_sig_engine, wire
from tests.mm_core.test_engine import QUIET_GUARD
from tests.mm_core.test_hedge_hold_pairs import _settled
from tests.mm_core.test_quote_position_room import _denials, _resting
from tests.mm_core.test_sig_engine import Lockstep
from tests.mm_core.wire import ACME, BOLT, LIMITS_TEXT, MS, S, Feed, Venue, md, two_sided

BID, ASK = 999_800, 1_000_200       # ACME's quotes around fair $100.00 in a $99.99 / $100.01 book


# ------------------------------------------------------------------------ the sizing function

@pytest.mark.parametrize("qty, price, max_qty, max_value, want", [
    (500, BID, 5_000, 10**12, 500),             # neither cap binds
    (500, BID, 250, 10**12, 200),               # 250 shares: two whole lots
    (500, BID, 99, 10**12, 0),                  # less than a lot
    (500, BID, 5_000, 300 * BID, 300),          # exactly three lots' value at the bid
    (500, ASK, 5_000, 300 * BID, 200),          # 299 shares' worth at the dearer ask: two lots
    (500, BID, 5_000, 100 * BID - 1, 0),        # a price4 short of one lot
    (100, BID, 250, 300 * BID, 100),            # the quote is already smaller
    (500, 0, 5_000, 10**12, 0),                 # no price: no order to size
    (500, -100, 5_000, 10**12, 0),
    (500, BID, -1, 10**12, 0),                  # caps below zero leave nothing, not a negative size
    (500, BID, 5_000, -1, 0),
])
def test_each_side_is_cut_to_whole_lots_within_both_caps(qty, price, max_qty, max_value, want):
    assert within_order_caps(qty, price, max_qty, max_value, 100) == want


def test_a_lot_of_no_shares_is_refused():
    with pytest.raises(InventoryError):
        within_order_caps(500, BID, 5_000, 10**12, 0)


def _priced(max_order_qty: int, max_order_value: int, size_multiplier: float = 1.0):
    """One quote (quote_size 500, lot 100) by price_reference, checked equal to the C pricer's."""
    cfg = dataclasses.replace(QUIET_GUARD, quote_size=500)
    args = dict(fair=1_000_000.0, half_penny=False, variance_per_s=1e4, prior_var_s=0.0,
                position=0, held=0, toxicity=0.0, recent_markout=0.0, adverse_rate=0.0,
                spread_multiplier=1.0, size_multiplier=size_multiplier, collar_fair_bps=200,
                max_position=20_000, max_order_qty=max_order_qty, max_order_value=max_order_value,
                reducing=False, bid_blocked=False, ask_blocked=False, best_bid=999_900,
                best_ask=1_000_100)
    quote = price_reference(cfg, **args)
    assert QuotePricer(cfg).price(**args) == quote
    return quote


def test_the_quote_is_sized_within_max_order_qty():
    assert _priced(5_000, 5_000 * PRICE4 * 10**4) == (BID, 500, ASK, 500)
    assert _priced(250, 5_000 * PRICE4 * 10**4) == (BID, 200, ASK, 200)
    assert _priced(99, 5_000 * PRICE4 * 10**4) == (BID, 0, ASK, 0)


def test_the_value_cap_applies_at_each_sides_price():
    """$29,994.00 is 300 shares at the bid's $99.98 to the cent; at the ask's $100.02 it is 299.88
    shares, two whole lots."""
    assert _priced(5_000, 300 * BID) == (BID, 300, ASK, 200)
    assert _priced(5_000, 300 * ASK) == (BID, 300, ASK, 300)


def test_safe_mode_cuts_the_size_and_the_cap_the_engine_is_given():
    """RiskGateway.order_caps halves max_order_qty in SAFE_MODE as check() does (250 -> 125);
    the quote's base is halved too (500 -> 250, two lots), then cut to 125: one lot."""
    gw = wire.gateway(LIMITS_TEXT + f"\n[symbols.{ACME}]\nmax_order_qty = 250\nmax_order_value = 30000\n")
    assert gw.order_caps(ACME) == (250, 30_000 * PRICE4)
    assert gw.order_caps(BOLT) == (5_000, 500_000 * PRICE4)     # the defaults
    gw.set_safe_mode(True, "ops", "test", S)
    assert gw.state is TradingState.SAFE_MODE and gw.size_multiplier == 0.5
    assert gw.order_caps(ACME) == (125, 30_000 * PRICE4)
    assert _priced(*gw.order_caps(ACME), size_multiplier=gw.size_multiplier) == (BID, 100, ASK, 100)


# ------------------------------------------------------------------------ the engine

def _quoted(monkeypatch, symbol_limits: str, quote_size: int = 200):
    """Both engines (compiled and reference) quoting ACME, with these [symbols.ACME] limits, into
    a 200-share wide book: (lockstep, venue, feed, now)."""
    limits = LIMITS_TEXT + f"\n[symbols.{ACME}]\n{symbol_limits}\n"
    monkeypatch.setattr(test_sig_engine, "gateway", lambda: wire.gateway(limits))
    lock, venue, feed = Lockstep(dataclasses.replace(QUIET_GUARD, quote_size=quote_size)), Venue(), Feed()
    now = 2 * S
    lock.on_event(ClockSample(now, True))
    book, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    acts = _settled(lock, venue, md(feed.packet(*book), now))
    assert not _denials(acts)
    for engine in (lock.kernel, lock.reference):
        assert engine.counts["denials"] == 0
    assert lock.kernel.state_hash() == lock.reference.state_hash()
    return lock, venue, feed, now


def test_quotes_rest_at_max_order_qty_without_a_denial(monkeypatch):
    """max_order_qty 150 below the 200-share quote: each side rests at one lot. The gateway denied
    the 200 shares before (MAX_ORDER_QTY), and the side backed off."""
    _, venue, _, _ = _quoted(monkeypatch, "max_order_qty = 150")
    assert _resting(venue, "B") == [(BID, 100)] and _resting(venue, "S") == [(ASK, 100)]


def test_quotes_rest_within_max_order_value_at_each_sides_price(monkeypatch):
    """max_order_value $10,000: 100 shares at the bid's $99.98 ($9,998) fit, 100 at the ask's
    $100.02 ($10,002) do not, and less than a lot is no quote: the ask side is not quoted."""
    _, venue, _, _ = _quoted(monkeypatch, "max_order_value = 10000")
    assert _resting(venue, "B") == [(BID, 100)] and _resting(venue, "S") == []


def test_safe_mode_sizes_the_quotes_within_its_cut_of_max_order_qty(monkeypatch):
    """quote_size 400 under max_order_qty 250: the quotes rest at 200. Safe mode halves both (base
    200, cap 125) and doubles the spread: the quotes move out at one lot, where the gateway
    denied 200 shares over its 125 before."""
    lock, venue, feed, now = _quoted(monkeypatch, "max_order_qty = 250", quote_size=400)
    assert _resting(venue, "B") == [(BID, 200)] and _resting(venue, "S") == [(ASK, 200)]
    acts = _settled(lock, venue, OperatorCommand(now + 10 * MS, "safe-mode-on", "ops", "test"))
    acts += _settled(lock, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_700)), now + 20 * MS))
    assert not _denials(acts)
    for engine in (lock.kernel, lock.reference):
        assert engine.risk.state is TradingState.SAFE_MODE and engine.counts["denials"] == 0
    assert [q for _, q in _resting(venue, "B")] == [100] and [q for _, q in _resting(venue, "S")] == [100]
    assert lock.kernel.state_hash() == lock.reference.state_hash()
