"""Our quotes are sized to the risk gateway's position limit: a symbol's quotes skew and withdraw
against the tighter of the engine's position_limit and the limits file's max_position, are cut
to max_position on the whole position (hedges held included), a fresh enter is cut to the live
room other working orders leave, more size at a resting quote's price is cut to the room a
replace has beside its original (none: the quote rests as it is), and a move the gateway would
deny (its original still counted) is a pull and a fresh quote instead. The gateway never denies
a quote for POSITION_LIMIT where it used to, again and again. The C pricer, the Python reference
and the compiled and reference engines (Lockstep) agree throughout."""
import pytest

from journal.catalogue import RecordType, unpack
from mm_core.config import EngineConfig
from mm_core.events import ClockSample, JournalNote, Timer
from mm_core.inventory import InventoryError, within_position_cap
from mm_core.quotepricer import QuotePricer, price_reference
from mm_core.types import OrderKind, Side
from tests.mm_core import test_sig_engine, wire
from tests.mm_core.test_engine import QUIET_GUARD
from tests.mm_core.test_hedge_hold_pairs import _settled
from tests.mm_core.test_sig_engine import Lockstep
from tests.mm_core.wire import ACME, LIMITS_TEXT, MS, S, Feed, Venue, md, orders, two_sided

CAP = 300           # ACME's max_position in the limits file; the engine's position_limit is 2,000


# ------------------------------------------------------------------------ the sizing functions

@pytest.mark.parametrize("position, cap, bid, ask, want", [
    (0, 300, 200, 200, (200, 200)),         # room 300 each way: nothing cut
    (250, 300, 200, 200, (0, 200)),         # bid room 50: less than a lot
    (150, 300, 200, 200, (100, 200)),       # bid room 150: one lot
    (-300, 300, 200, 200, (200, 0)),        # short at the cap: no ask
    (-450, 300, 200, 200, (200, 0)),        # past the cap (a lowered one): still no ask
    (450, 300, 0, 200, (0, 200)),           # past it long: the reducing ask stays
])
def test_sizes_are_cut_to_whole_lots_within_the_cap(position, cap, bid, ask, want):
    assert within_position_cap(position, cap, 100, bid, ask) == want


def test_a_lot_of_no_shares_is_refused():
    with pytest.raises(InventoryError):
        within_position_cap(0, 300, 0, 200, 200)


def _priced(position: int, held: int, max_position: int) -> tuple[int, int]:
    """(bid size, ask size) of one quote by price_reference, checked equal to the C pricer's."""
    args = dict(fair=1_000_000.0, half_penny=False, variance_per_s=1e4, prior_var_s=0.0,
                position=position, held=held, toxicity=0.0, recent_markout=0.0, adverse_rate=0.0,
                spread_multiplier=1.0, size_multiplier=1.0, collar_fair_bps=200,
                max_position=max_position, max_order_qty=5_000, max_order_value=5_000_000_000,
                reducing=False, bid_blocked=False, ask_blocked=False,
                best_bid=999_900, best_ask=1_000_100)
    cfg = EngineConfig()                # quote_size 200, position_limit 2,000, lot 100
    quote = price_reference(cfg, **args)
    assert QuotePricer(cfg).price(**args) == quote
    return quote[1], quote[3]


def test_the_quote_skews_and_withdraws_against_the_gateways_tighter_limit():
    # limit min(2000, 500) = 500. Long 300: size skew 0.5 x 300/500 -> 200 x 0.7 = 140, one lot.
    assert _priced(300, 0, 500) == (100, 200)
    # long 450 >= withdraw_at 0.8 x 500 = 400: no bid. Against 2,000 the bid was 100 shares (skew
    # 0.5 x 450/2000 -> 177.5, one lot), and the gateway denies it: 450 + 100 > 500.
    assert _priced(450, 0, 500) == (0, 200)
    assert _priced(450, 0, 20_000) == (100, 200)
    # the gateway's limit above ours: ours decides, as before (skew 0.5 x 300/2000 -> 185)
    assert _priced(300, 0, 20_000) == (100, 200)


def test_the_cap_counts_the_shares_held_as_hedges():
    """Short 300 of a hedge instrument, all of it held as a hedge: the quoting inventory is flat
    (both sides 200), the gateway's position is at its cap of 300 (no ask)."""
    assert _priced(-300, -300, CAP) == (200, 0)
    assert _priced(-200, -200, CAP) == (200, 100)


# ------------------------------------------------------------------------ the engine

def _denials(actions) -> list[dict]:
    return [unpack(RecordType.RISK_DECISION, a.payload) for a in actions
            if isinstance(a, JournalNote) and a.rtype == RecordType.RISK_DECISION
            and a.summary.startswith("denied")]


def _resting(venue: Venue, side: str) -> list[tuple[int, int]]:
    """(price, shares) of our resting ACME orders on one side."""
    return [(venue.orders[t]["price"], venue.orders[t]["qty"]) for t in venue.resting("ACME", side)]


@pytest.fixture
def quoted(monkeypatch):
    """Both engines (compiled and reference) quoting ACME, whose max_position is CAP, into a
    100-share wide book: (lockstep, venue, feed, the book's order refs, now)."""
    limits = LIMITS_TEXT + f"\n[symbols.{ACME}]\nmax_position = {CAP}\n"
    monkeypatch.setattr(test_sig_engine, "gateway", lambda: wire.gateway(limits))
    lock, venue, feed = Lockstep(QUIET_GUARD), Venue(), Feed()
    now = 2 * S
    lock.on_event(ClockSample(now, True))
    book, refs = two_sided(feed, ACME, 999_900, 1_000_100)
    _settled(lock, venue, md(feed.packet(*book), now))
    assert _resting(venue, "B") == [(999_800, 200)] and _resting(venue, "S") == [(1_000_200, 200)]
    return lock, venue, feed, refs, now


def _fill_bid(lock, venue: Venue, now: int) -> list:
    token = venue.resting("ACME", "B")[0]
    return _settled(lock, venue, venue.fill(token, venue.orders[token]["qty"], now))


def test_bids_filled_up_to_the_cap_withdraw_the_bid_without_a_denial(quoted):
    """Long 200: skew 0.5 x 200/300 -> 133 shares, one lot (the gateway's room is 100). Long 300:
    at the cap, past withdraw_at 0.8 x 300, no bid. Against position_limit 2,000 the bid at 300
    was 100 shares (skew 0.5 x 300/2000 -> 185), which the gateway denied: 300 + 100 > 300."""
    lock, venue, _, _, now = quoted
    acts = _fill_bid(lock, venue, now + 50 * MS)
    assert _resting(venue, "B") == [(999_600, 100)]
    acts += _fill_bid(lock, venue, now + 100 * MS)
    assert not _denials(acts)
    assert not venue.resting("ACME", "B") and [q for _, q in _resting(venue, "S")] == [200]
    for engine in (lock.kernel, lock.reference):
        assert engine.inventory.position[ACME] == CAP and engine.counts["denials"] == 0
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_a_move_the_cap_has_no_room_for_is_a_pull_and_a_fresh_quote(quoted):
    """The market steps down five ticks: both quotes move. A replace counts its original until
    the venue answers (200 + 200 > 300), so each quote is pulled and entered again at the new
    price once the pull is confirmed, instead of a POSITION_LIMIT denial and a back-off."""
    lock, venue, feed, refs, now = quoted
    lower, _ = two_sided(feed, ACME, 999_400, 999_600)
    moved = feed.packet(*[feed.delete(r) for r in refs.values()], *lower)
    acts = _settled(lock, venue, md(moved, now + 10 * MS))
    assert not _denials(acts)
    sent = [(o.intent.kind, o.intent.side) for o in orders(acts)]
    assert OrderKind.REPLACE not in [kind for kind, _ in sent]
    assert sent.count((OrderKind.CANCEL, Side.BUY)) == sent.count((OrderKind.ENTER, Side.BUY)) == 1
    assert _resting(venue, "B") == [(999_300, 200)] and _resting(venue, "S") == [(999_700, 200)]
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_a_lowered_cap_sizes_the_resting_quotes_down_in_place(quoted):
    """New limits cut ACME's max_position to 100: at the next book update both 200-share quotes
    are sized down to 100 in place (OUCH Modify: same price, queue position kept)."""
    lock, venue, feed, _, now = quoted
    text = LIMITS_TEXT.replace("version = 1", "version = 2", 1) + f"\n[symbols.{ACME}]\nmax_position = 100\n"
    for engine in (lock.kernel, lock.reference):
        engine.risk.replace_limits(text)
    acts = _settled(lock, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_800)), now + 10 * MS))
    assert not _denials(acts)
    assert sorted((o.intent.kind, o.intent.side, o.intent.price, o.intent.qty) for o in orders(acts)) == [
        (OrderKind.MODIFY, Side.BUY, 999_800, 100), (OrderKind.MODIFY, Side.SELL, 1_000_200, 100)]
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_a_fresh_quote_is_cut_to_the_room_another_working_order_leaves(quoted):
    """Another working buy of 100 in ACME (an order a recovery adopted, say) beside our bid of 200
    fills the cap of 300. Our bid fills: long 200, the bid the position alone leaves room for is
    100 (as in the test above), but the other order takes that room: no bid, where the gateway
    denied one (POSITION_LIMIT 200 + 100 + 100 > 300) and the side backed off."""
    from mm_core.types import make_intent
    lock, venue, _, _, now = quoted
    for engine in (lock.kernel, lock.reference):
        other = make_intent(OrderKind.ENTER, "OTHER1", ACME, Side.BUY, 999_000, 100, engine.ids)
        assert engine.risk.check(other, now + MS, "B").allowed
        assert engine.risk.position_room(ACME, True) == 0
    acts = _fill_bid(lock, venue, now + 50 * MS)
    assert not _denials(acts) and not venue.resting("ACME", "B")
    for engine in (lock.kernel, lock.reference):
        assert engine.inventory.position[ACME] == 200 and engine.counts["denials"] == 0
    # the other order goes: the room is back, and so is the bid, at 100
    for engine in (lock.kernel, lock.reference):
        engine.risk.on_order_done("OTHER1", now + 60 * MS)
    acts = _settled(lock, venue, Timer(now + 70 * MS))
    assert not _denials(acts) and _resting(venue, "B") == [(999_600, 100)]
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_more_size_the_room_cannot_take_leaves_the_quote_resting(quoted):
    """The venue takes our bid away; while the bid waits out the duplicate window, another working
    buy of 200 (an adopted order, say) takes most of the cap: the bid comes back cut to the room,
    100. Once it has rested, the engine wants 200 at the same price: a replace counts the original
    beside it, and there is no room for more. The bid rests as it is, where it was pulled and
    entered again at 100 each time it had rested (the room stayed taken); once the other order is
    gone it grows to 200 in one replace."""
    from mm_core.types import make_intent
    lock, venue, _, _, now = quoted
    [bid] = venue.resting("ACME", "B")
    price = venue.orders[bid]["price"]
    acts = _settled(lock, venue, venue.cancel_rest(bid, now + MS))
    for engine in (lock.kernel, lock.reference):
        other = make_intent(OrderKind.ENTER, "OTHER1", ACME, Side.BUY, 999_000, 200, engine.ids)
        assert engine.risk.check(other, now + 2 * MS, "B").allowed
    acts += _settled(lock, venue, Timer(now + 60 * MS))
    assert _resting(venue, "B") == [(price, 100)]
    rest = lock.kernel.cfg.requote_rest_ns
    for k in range(1, 6):           # five rest periods: the bid stays, nothing sent on its side
        more = _settled(lock, venue, Timer(now + 60 * MS + k * rest + MS))
        assert not [o for o in orders(more) if o.intent.side == Side.BUY], k
        acts += more
    assert not _denials(acts) and _resting(venue, "B") == [(price, 100)]
    for engine in (lock.kernel, lock.reference):
        engine.risk.on_order_done("OTHER1", now + 60 * MS + 6 * rest)
    acts = _settled(lock, venue, Timer(now + 60 * MS + 6 * rest + MS))
    grown = [(o.intent.kind, o.intent.qty) for o in orders(acts) if o.intent.side == Side.BUY]
    assert grown == [(OrderKind.REPLACE, 200)] and _resting(venue, "B") == [(price, 200)]
    assert not _denials(acts)
    assert lock.kernel.state_hash() == lock.reference.state_hash()
