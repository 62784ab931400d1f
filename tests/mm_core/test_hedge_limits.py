"""A hedge sized past the gateway's limits: the engine cuts each hedge IOC to what the gateway
takes (RiskGateway.order_room), the rest going out next; a hedge the gateway denies anyway leaves
no hold on our quotes in the hedge instrument; no order size outside OUCH's u32 reaches the
encoder; our own quotes that hold position room a hedge needs are pulled for it. The compiled
engine and the Python reference agree throughout (Lockstep)."""
import dataclasses

from journal.catalogue import RecordType, unpack
from mm_core.config import PairSpec
from mm_core.events import ClockSample, JournalNote, Timer
from mm_core.engine_hedging import HOLD_BOTH, HOLD_ROOM
from mm_core.hedger import HedgeParams
from mm_core.types import OrderKind, Purpose, Side
from tests.mm_core import test_sig_engine, wire
from tests.mm_core.test_engine import QUIET_GUARD, drive_long_in_bolt
from tests.mm_core.test_hedge_hold_pairs import _settled
from tests.mm_core.test_sig_engine import Lockstep
from tests.mm_core.wire import ACME, BOLT, CHIP, LIMITS_TEXT, MS, SYMBOLS, Feed, Venue, md, orders, two_sided


def _lockstep(monkeypatch, limits: str, config=QUIET_GUARD, symbols=SYMBOLS) -> Lockstep:
    monkeypatch.setattr(test_sig_engine, "gateway", lambda: wire.gateway(limits))
    monkeypatch.setattr(test_sig_engine, "SYMBOLS", symbols)
    return Lockstep(config)


def _tick(lock, venue, now) -> list:
    return _settled(lock, venue, ClockSample(now, True)) + _settled(lock, venue, Timer(now))


def _hedges(actions) -> list:
    return [o.intent for o in orders(actions) if o.intent.purpose is Purpose.HEDGE]


def _denials(actions) -> list:
    return [a for a in actions if isinstance(a, JournalNote) and a.rtype == RecordType.RISK_DECISION
            and a.summary.startswith("denied")]


def _first_hedge(lock, venue, now) -> tuple[list, int]:
    """Timer ticks until the hedger's first IOC goes out (none denied on the way): (IOCs, time)."""
    for _ in range(10):
        now += 200 * MS
        acts = _tick(lock, venue, now)
        assert not _denials(acts)
        if _hedges(acts):
            return _hedges(acts), now
    return [], now


def _long_in_bolt(lock, venue) -> int:
    feed = Feed()
    lock.on_event(ClockSample(2 * 10**9, True))
    return drive_long_in_bolt(lambda ev: _settled(lock, venue, ev), venue, feed)


def test_a_hedge_past_max_order_qty_goes_out_in_ioc_the_gateway_takes(monkeypatch):
    limits = LIMITS_TEXT.replace("[defaults]\nmax_order_qty = 5000", "[defaults]\nmax_order_qty = 250")
    assert limits != LIMITS_TEXT
    lock, venue = _lockstep(monkeypatch, limits), Venue()
    now = _long_in_bolt(lock, venue)
    engine = lock.reference
    target = engine.hedger.target(BOLT, engine.inventory.position[BOLT], engine.fv.mids[BOLT], engine.fv.mids[ACME])
    assert target == -500                           # two IOCs of the 250 the gateway takes
    first, now = _first_hedge(lock, venue, now)
    assert [(h.symbol_id, h.side, h.qty) for h in first] == [(ACME, Side.SELL, 250)]
    # filled: the shortfall goes out next, cut the same way, past the gateway's duplicate window
    # (the same IOC again inside it would be denied as a duplicate)
    now += MS
    acts = _settled(lock, venue, venue.fill(first[0].token, 250, now))
    assert not _hedges(acts) and not _denials(acts)
    now += 200 * MS
    acts = _tick(lock, venue, now)
    second = _hedges(acts)
    assert [(h.side, h.qty) for h in second] == [(Side.SELL, 250)] and not _denials(acts)
    now += MS
    _settled(lock, venue, venue.fill(second[0].token, 250, now))
    for engine in (lock.kernel, lock.reference):
        assert engine.hedger.hedged(BOLT) == -500 and engine.counts["denials"] == 0
        assert engine.hedge_hold[ACME] == 0         # hedged: our ACME bids quote again
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def _no_room_alerts(actions) -> list:
    return [a for a in actions if "hedge-no-room" in getattr(a, "summary", "")]


def test_our_quotes_that_hold_a_hedges_room_are_pulled_and_the_rest_is_not_asked_for(monkeypatch):
    """ACME's position limit 300, our 200-share ACME ask working: a 500-share sell hedge would
    have room for only 100 (300 − 200) while the ask works. The ask is pulled instead (the hedge
    reduces risk, the quote can wait) with both ACME sides held for the pair (HOLD_ROOM), and the
    hedge goes out with the whole 300 the limit allows once the pull is confirmed. The rest, which
    no quote of ours holds room for, is not asked for at all: no denial, the hold cleared (our ACME
    bids quote again), and an alert says why it is not hedged; no ask is quoted while the hedge
    holds the whole room. Before, the IOC was cut to 100 and the ask kept the other 200 of the
    room for good."""
    limits = LIMITS_TEXT + "\n[symbols.1]\nmax_position = 300\n"
    lock, venue = _lockstep(monkeypatch, limits), Venue()
    now = _long_in_bolt(lock, venue)
    assert venue.resting("ACME", "S")
    pulled = False
    for _ in range(10):
        now += 200 * MS
        acts = _tick(lock, venue, now)
        assert not _denials(acts) and not _no_room_alerts(acts)
        if _hedges(acts):
            break
        cancels = [o.intent for o in orders(acts) if o.intent.kind is OrderKind.CANCEL]
        if any(c.symbol_id == ACME and c.side is Side.SELL for c in cancels):
            pulled = True
            for engine in (lock.kernel, lock.reference):
                assert engine.pair_hold[BOLT] == HOLD_ROOM and engine.hedge_hold[ACME] == HOLD_BOTH
    hedge = _hedges(acts)
    assert pulled and [(h.symbol_id, h.side, h.qty) for h in hedge] == [(ACME, Side.SELL, 300)]
    # both ACME sides held meanwhile: only the IOC is at the venue
    assert venue.resting("ACME", "S") == [hedge[0].token] and not venue.resting("ACME", "B")
    now += MS
    _settled(lock, venue, venue.fill(hedge[0].token, 300, now))
    now += 200 * MS
    acts = _tick(lock, venue, now) + _tick(lock, venue, now + 200 * MS)
    assert _no_room_alerts(acts) and not _hedges(acts)
    # the gateway is not asked for the rest, nor for an ask once the hold is cleared: our quotes
    # are sized to its cap on the whole position (short 300 of 300: no ask)
    assert not _denials(acts) and not venue.resting("ACME", "S")
    for engine in (lock.kernel, lock.reference):
        assert engine.hedger.hedged(BOLT) == -300 and engine.pair_hold[BOLT] == 0 and engine.hedge_hold[ACME] == 0
    assert venue.resting("ACME", "B")           # the hold cleared: our ACME bids quote again
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_a_denied_hedge_leaves_no_hold_on_our_quotes(monkeypatch):
    """cross_ticks past the fair-value collar: the gateway denies the hedge IOC whatever its size.
    The hold it set is cleared with the denial, so our ACME bids quote again (they were pulled
    for good while a denied hedge was re-sent every back-off)."""
    config = dataclasses.replace(QUIET_GUARD, hedge=HedgeParams(cross_ticks=300))
    lock, venue = _lockstep(monkeypatch, LIMITS_TEXT, config), Venue()
    now = _long_in_bolt(lock, venue)
    denied = False
    for _ in range(10):
        now += 200 * MS
        acts = _tick(lock, venue, now)
        if _denials(acts):
            denied = True
            assert "collar-fair" in _denials(acts)[0].summary
            break
    assert denied and not _hedges(acts)
    for engine in (lock.kernel, lock.reference):
        assert engine.hedge_hold[ACME] == 0 and engine.pair_hold[BOLT] == 0
    now += 20 * MS                      # inside the back-off: the bid is quoted again
    _tick(lock, venue, now)
    assert venue.resting("ACME", "B")
    assert lock.kernel.state_hash() == lock.reference.state_hash()


def test_no_hedge_size_past_ouchs_u32_reaches_the_encoder(monkeypatch):
    """BOLT hedged in CHIP at a few hundredths of a cent with the largest limits allowed (order
    size 2^32 − 1, OUCH's u32 shares field: the limits refuse more): the ratio (beta 100 × 50.50 /
    0.0003) sizes the hedge past 2^32 shares. It is cut to the gateway's size room, 2^32 − 1, and
    put to the gateway; Engine.on_event does not raise."""
    symbols = dataclasses.replace(SYMBOLS, pairs=(PairSpec(CHIP, BOLT, 1.0),))
    huge = LIMITS_TEXT.replace("[defaults]\nmax_order_qty = 5000\nmax_order_value = 500000\nmax_position = 20000",
                               f"[defaults]\nmax_order_qty = {2**32 - 1}\nmax_order_value = 100000000000\n"
                               "max_position = 100000000000")
    assert huge != LIMITS_TEXT
    config = dataclasses.replace(QUIET_GUARD, hedge=HedgeParams(max_beta=100.0, beta_prior=100.0))
    lock, venue = _lockstep(monkeypatch, huge, config, symbols), Venue()
    feed = Feed()
    lock.on_event(ClockSample(2 * 10**9, True))
    chip, _ = two_sided(feed, CHIP, 2, 4, tick=1)
    _settled(lock, venue, md(feed.packet(*chip), 2 * 10**9))
    now = drive_long_in_bolt(lambda ev: _settled(lock, venue, ev), venue, feed, now=2 * 10**9 + MS)
    engine = lock.reference
    assert engine.hedger.target(BOLT, engine.inventory.position[BOLT], engine.fv.mids[BOLT],
                                engine.fv.mids[CHIP]) < -(2**32)
    asked = []
    for _ in range(10):
        now += 200 * MS
        acts = _tick(lock, venue, now)      # raised BadField from the encoder before
        asked += [unpack(RecordType.RISK_DECISION, a.payload)["qty"] for a in acts if isinstance(a, JournalNote)
                  and a.rtype == RecordType.RISK_DECISION and unpack(RecordType.RISK_DECISION, a.payload)["qty"] > 200]
        if asked:
            break
    # the gateway had its say on the cut IOC (here: too far from CHIP's fair value for its collar)
    assert asked == [2**32 - 1]


def test_a_cut_hedge_whose_rest_is_inside_the_band_is_finished(monkeypatch):
    """The gateway takes 450 of a 500-share hedge: the 50 left (under the hedger's 100-share band)
    still go out, since the band damps moves of the goal, not what a cut left short of it."""
    limits = LIMITS_TEXT.replace("[defaults]\nmax_order_qty = 5000", "[defaults]\nmax_order_qty = 450")
    assert limits != LIMITS_TEXT
    lock, venue = _lockstep(monkeypatch, limits), Venue()
    now = _long_in_bolt(lock, venue)
    first, now = _first_hedge(lock, venue, now)
    assert [(h.symbol_id, h.side, h.qty) for h in first] == [(ACME, Side.SELL, 450)]
    now += MS
    _settled(lock, venue, venue.fill(first[0].token, 450, now))
    now += 200 * MS
    acts = _tick(lock, venue, now)
    assert [(h.side, h.qty) for h in _hedges(acts)] == [(Side.SELL, 50)] and not _denials(acts)
    now += MS
    _settled(lock, venue, venue.fill(_hedges(acts)[0].token, 50, now))
    for engine in (lock.kernel, lock.reference):
        assert engine.hedger.hedged(BOLT) == -500 and engine.hedge_hold[ACME] == 0
    assert lock.kernel.state_hash() == lock.reference.state_hash()
