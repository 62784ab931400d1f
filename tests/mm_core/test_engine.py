"""Sans-io scenarios through the whole engine, built from real encoded ITCH/MoldUDP64 and
OUCH/SoupBinTCP bytes and the real risk gateway."""
import json

import pytest

from journal.catalogue import RecordType, unpack
from mm_core.config import EngineConfig
from mm_core.engine import Engine, EngineError
from mm_core.events import (
    ClockSample, JournalNote, OperatorCommand, RequestRetransmit, Timer, VenueMessage,
)
from mm_core.guard import GuardParams
from mm_core.oms import OrderState
from mm_core.protocol import moldudp64, ouch, soupbintcp
from mm_core.risk import TradingState
from mm_core.types import OrderKind, Purpose, Side
from tests.mm_core.wire import (
    ACME, BOLT, CHIP, MS, S, SYMBOLS, LIMITS_TEXT, Feed, Venue, gateway, make_engine, md, orders, run, settle, two_sided,
)


def notes(actions, rtype=None):
    return [a for a in actions if isinstance(a, JournalNote) and (rtype is None or a.rtype == rtype)]


def alerts(actions):
    return [json.loads(a.payload)["alert"] for a in notes(actions, RecordType.METRICS)
            if "alert" in json.loads(a.payload)]


def quoted_book(config=None, symbol=ACME, bid=999_900, ask=1_000_100, tick=100):
    engine, venue, feed = make_engine(config), Venue(), Feed()
    msgs, refs = two_sided(feed, symbol, bid, ask, tick=tick)
    acts = run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    return engine, venue, feed, refs, acts


def keep_alive(engine, venue, now):
    """Clock sample and timer, as the runner sends them every second."""
    out = engine.on_event(ClockSample(now, True))
    out += run(engine, venue, Timer(now), now)
    return out


def test_quotes_two_sided_on_the_tick_grid_through_the_gateway():
    engine, venue, _, _, acts = quoted_book()
    sent = orders(acts)
    assert [(o.intent.kind, o.intent.side) for o in sent] == [(OrderKind.ENTER, Side.BUY),
                                                              (OrderKind.ENTER, Side.SELL)]
    bid, ask = sent[0].intent, sent[1].intent
    assert bid.price % 100 == 0 and ask.price % 100 == 0 and bid.price < 999_950 < 1_000_050 < ask.price
    assert bid.qty == ask.qty == 200
    for o in sent:
        assert o.decision.allowed and o.trading_state == TradingState.ACTIVE
        assert (o.intent.algo_id, o.intent.desk_id, o.intent.client_id) == (1, 1, 1)
        msg = ouch.decode_inbound(soupbintcp.decode(o.packet).payload)
        assert (msg.token, msg.price, msg.shares, msg.stock) == (o.intent.token, o.intent.price, 200, "ACME")
    assert all(engine.oms.get(o.intent.token).state is OrderState.ACCEPTED for o in sent)


def test_informed_one_sided_flow_pulls_the_ask_before_it_is_hit():
    engine, venue, feed, refs, acts = quoted_book()
    our_ask = orders(acts)[1].intent.token
    pre_encoded = engine.oms.get(our_ask).cancel_packet
    assert pre_encoded            # encoded when the venue accepted the order
    # buyers lift the 100.01 offer: 200 shares (under the guard's minimum volume) ...
    first = run(engine, venue, md(feed.packet(Feed.execute(refs[1_000_100], 200)), 2 * S + MS), 2 * S + MS)
    assert not [o for o in orders(first) if o.intent.kind is OrderKind.CANCEL]
    # ... then the rest of the level: one-sided aggression trips the guard
    trip = engine.on_event(md(feed.packet(Feed.execute(refs[1_000_100], 300)), 2 * S + 2 * MS))
    sent = orders(trip)
    assert sent[0].intent.kind is OrderKind.CANCEL and sent[0].intent.token == our_ask
    assert sent[0].intent.purpose is Purpose.GUARD_CANCEL
    assert sent[0].packet == pre_encoded                      # the bytes prepared in advance
    assert alerts(trip)[0] == "guard-trip"
    assert trip.index(sent[0]) == 0                           # ahead of every other reaction
    settle(engine, venue, trip, 2 * S + 2 * MS)
    # the informed buyer now takes the 100.02 level where our ask was: nothing of ours is there
    assert venue.resting("ACME", "S") == []
    later = run(engine, venue, md(feed.packet(Feed.execute(refs[1_000_200], 500)), 2 * S + 3 * MS),
                2 * S + 3 * MS)
    assert not [o for o in orders(later) if o.intent.side is Side.SELL and o.intent.kind is not OrderKind.CANCEL]
    assert engine.inventory.position[ACME] == 0
    assert engine.summary()["guard_trips"] == {str(ACME): 1}


QUIET_GUARD = EngineConfig(guard=GuardParams(fill_spike_count=1000, aggression_min_volume=10**9,
                                             vpin_bucket_volume=10**9))


def drive_long_in_bolt(feed_event, venue: Venue, feed: Feed, now: int = 2 * S) -> int:
    """ACME and BOLT books through feed_event (an event in, every reply it causes settled), then
    our BOLT bid hit again and again while it rests. Returns the time reached."""
    acme, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    bolt, _ = two_sided(feed, BOLT, 504_950, 505_050, tick=50)
    feed_event(md(feed.packet(*acme, *bolt), now))
    for _ in range(12):
        token = venue.resting("BOLT", "B")
        if not token:
            break
        now += 50 * MS
        feed_event(venue.fill(token[0], venue.orders[token[0]]["qty"], now))
    return now


def long_in_bolt(config: EngineConfig = QUIET_GUARD):
    """ACME and BOLT books with our quotes in both (guard quiet; `config`: another engine config
    with a quiet guard); our BOLT bid is hit again and again until the position passes the hedge
    trigger. Returns (engine, venue, feed, now)."""
    engine, venue, feed = make_engine(config), Venue(), Feed()
    now = drive_long_in_bolt(lambda ev: run(engine, venue, ev, ev.now_ns), venue, feed)
    assert engine.inventory.position[BOLT] >= QUIET_GUARD.hedge.trigger
    return engine, venue, feed, now


def test_sustained_position_is_hedged_in_the_correlated_instrument():
    engine, venue, feed, now = long_in_bolt()
    cfg = engine.cfg
    position = engine.inventory.position[BOLT]
    hedges = []
    for _ in range(10):
        now += 200 * MS
        acts = keep_alive(engine, venue, now)
        hedges = [o for o in orders(acts) if o.intent.purpose is Purpose.HEDGE]
        if hedges:
            break
    assert len(hedges) == 1
    h = hedges[0].intent
    assert h.symbol_id == ACME and h.side is Side.SELL and h.tif == 0      # IOC
    assert h.price < 999_900 and hedges[0].decision.allowed                # crosses the bid
    # prior beta 1 × price ratio 50.50/100.00 × (position − keep)
    expected = round(0.505 * (position - cfg.hedge.keep) / 100) * 100
    assert h.qty == expected
    # a partial fill, the IOC remainder canceled: the shortfall is sent again
    run(engine, venue, venue.fill(h.token, 100, now), now)
    run(engine, venue, venue.cancel_rest(h.token, now), now)
    assert engine.hedger.hedged(BOLT) == -100
    now += 10 * MS
    again = [o for o in orders(keep_alive(engine, venue, now)) if o.intent.purpose is Purpose.HEDGE]
    assert [(o.intent.side, o.intent.qty) for o in again] == [(Side.SELL, expected - 100)]
    # the hedge shares in ACME are not quoting inventory: ACME quotes stay unskewed
    assert engine._hedge_held(ACME) == -100


def test_moldudp64_gap_pulls_quotes_until_filled():
    engine, venue, feed, refs, acts = quoted_book()
    ours = {o.intent.token for o in orders(acts)}
    lost = feed.packet(feed.add(ACME, "B", 100, 999_800), feed.add(ACME, "S", 100, 1_000_300))
    del lost      # dropped on the wire: sequences 7 and 8 never arrive
    now = 3 * S
    acts = engine.on_event(md(feed.packet(feed.add(ACME, "B", 100, 999_700)), now))
    pulls = [o for o in orders(acts) if o.intent.kind is OrderKind.CANCEL]
    assert {o.intent.token for o in pulls} == ours
    req = [a for a in acts if isinstance(a, RequestRetransmit)]
    # only the two messages lost (was (7, 3): 9 came past the gap and is kept, not asked for again)
    assert len(req) == 1 and (req[0].sequence, req[0].count) == (7, 2)
    assert moldudp64.decode_request(req[0].packet) == moldudp64.RequestPacket(feed.session, 7, 2)
    assert "book-stale" in alerts(acts)
    # the gap is a fault (orders on the book are denied) but no order hit it: nothing latched
    assert engine.risk.faults == ["book-stale"] and engine.risk.state is TradingState.ACTIVE
    settle(engine, venue, acts, now)
    # more live data while in the gap: no quotes, no second request before the timeout
    acts = run(engine, venue, md(feed.packet(feed.add(ACME, "S", 100, 1_000_400)), now + MS), now + MS)
    assert not orders(acts) and not [a for a in acts if isinstance(a, RequestRetransmit)]
    acts = keep_alive(engine, venue, now + 600 * MS)          # still no quotes on the timer
    assert [a.sequence for a in acts if isinstance(a, RequestRetransmit)] == [7]
    assert not orders(acts) and engine.risk.state is TradingState.ACTIVE
    # the re-request reply fills the gap (9 and 10, kept, are applied after it): the book is
    # whole again and quoting resumes by itself
    acts = run(engine, venue, md(feed.resend(7, 2), now + 700 * MS), now + 700 * MS)
    assert "book-recovered" in alerts(acts) and not engine.stale and engine.counts["md_gap_applied"] == 2
    assert engine.book.top(ACME)[0] == 999_900 and engine.book.bids(ACME, 5)[-1] == (999_700, 600)
    assert engine.risk.faults == [] and engine.risk.state is TradingState.ACTIVE
    entered = [o for o in orders(acts) if o.intent.kind is OrderKind.ENTER]
    assert sorted(o.intent.side for o in entered) == [Side.BUY, Side.SELL]
    assert all(o.decision.allowed and o.trading_state == TradingState.ACTIVE for o in entered)
    assert not notes(acts, RecordType.STATE_CHANGE)          # no latch, no operator needed


def test_a_silent_feed_pulls_quotes_until_a_packet_arrives():
    """No packet, not even a heartbeat, for longer than the gateway's market-data age: the books
    may be far from the market, so the quotes are pulled and nothing new may go out, although the
    timer keeps telling the gateway each price; a heartbeat shows the feed alive again."""
    engine, venue, feed, refs, acts = quoted_book()
    ours = {o.intent.token for o in orders(acts)}
    limit = engine.risk.limits.max_market_age_ns
    acts = keep_alive(engine, venue, 2 * S + limit)            # at the limit: still quoting
    assert not [o for o in orders(acts) if o.intent.kind is OrderKind.CANCEL] and not engine.stale
    now = 2 * S + limit + 100 * MS
    acts = keep_alive(engine, venue, now)
    pulls = [o for o in orders(acts) if o.intent.kind is OrderKind.CANCEL]
    assert {o.intent.token for o in pulls} == ours and engine.stale
    assert "book-stale" in alerts(acts) and engine.risk.faults == ["book-stale"]
    assert engine.risk.state is TradingState.ACTIVE          # a fault, not a latch
    acts = keep_alive(engine, venue, now + S)                  # still silent: nothing goes out
    assert not [o for o in orders(acts) if o.intent.kind is OrderKind.ENTER]
    heartbeat = moldudp64.encode(moldudp64.Heartbeat(feed.session, feed.seq))
    acts = run(engine, venue, md(heartbeat, now + S + MS), now + S + MS)
    assert "book-recovered" in alerts(acts) and not engine.stale and engine.risk.faults == []
    entered = [o for o in orders(acts) if o.intent.kind is OrderKind.ENTER]
    assert sorted(o.intent.side for o in entered) == [Side.BUY, Side.SELL]


def test_impossible_transition_halts_trading_and_is_journaled():
    engine, venue, feed, refs, acts = quoted_book()
    bid, ask = (o.intent.token for o in orders(acts))
    now = 3 * S
    run(engine, venue, venue.cancel_rest(bid, now), now)      # the engine re-quotes the bid
    resting = sorted(o.token for o in engine.oms.open_orders())
    assert ask in resting and bid not in resting and len(resting) == 2
    # an execution for an order the venue already canceled: impossible
    fill = VenueMessage(Venue.frame(ouch.Executed(now, bid, 100, 999_800, "A", 99)), now)
    acts = engine.on_event(fill)
    assert engine.risk.state is TradingState.HALTED
    kills = notes(acts, RecordType.KILL)
    assert len(kills) == 1 and unpack(RecordType.KILL, kills[0].payload)["requested_by"] == b"engine"
    changes = [unpack(RecordType.STATE_CHANGE, n.payload) for n in notes(acts, RecordType.STATE_CHANGE)]
    assert [(c["from_state"], c["to_state"]) for c in changes] == [(TradingState.ACTIVE, TradingState.HALTED)]
    halt = [json.loads(n.payload) for n in notes(acts, RecordType.METRICS)][0]
    assert halt["alert"] == "halt" and "canceled -> fill" in halt["detail"]
    assert sorted(o.intent.token for o in orders(acts) if o.intent.kind is OrderKind.CANCEL) == resting
    assert engine.inventory.position[ACME] == 0              # the impossible fill was not booked
    # nothing new is quoted while halted
    assert not [o for o in orders(run(engine, venue, Timer(now + MS), now + MS))
                if o.intent.kind is not OrderKind.CANCEL]


def test_unanswered_orders_become_outcome_unknown_and_fail_closed():
    engine, venue, feed = make_engine(), Venue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    acts = engine.on_event(md(feed.packet(*msgs), 2 * S))      # the venue never answers
    assert len(orders(acts)) == 2
    now = 2 * S + engine.cfg.ack_timeout_ns
    engine.on_event(ClockSample(now, True))
    acts = engine.on_event(Timer(now))
    assert "outcome-unknown" in alerts(acts)
    assert engine.oms.counts() == (2, 2)
    assert engine.risk.state is TradingState.HALTED
    assert "unknown-outcome" in engine.risk.faults


def test_denials_are_journaled_not_raised():
    limits = gateway().limits
    # ACME restricted (a limit the engine does not size its quotes within, as it does the order
    # size, value and position limits): both quotes are denied
    tight = LIMITS_TEXT.replace("restricted = []", f"restricted = [{ACME}]")
    engine, venue, feed = make_engine(limits=tight), Venue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    acts = engine.on_event(md(feed.packet(*msgs), 2 * S))
    assert not orders(acts)
    denials = [unpack(RecordType.RISK_DECISION, n.payload) for n in notes(acts, RecordType.RISK_DECISION)]
    assert len(denials) == 2
    assert all(d["allowed"] == 0 and d["check_id"] == 11 and d["value"] == ACME and d["limit"] == 0
               for d in denials)
    assert limits.version == 1
    # backoff: the same denial is not retried on every packet, and a side backing off takes no
    # order token
    tokens = engine.oms.counter
    acts = engine.on_event(md(feed.packet(feed.add(ACME, "B", 100, 999_800)), 2 * S + MS))
    assert not notes(acts, RecordType.RISK_DECISION) and not orders(acts)
    assert engine.oms.counter == tokens
    # once the backoff is over the quote is asked for again (and denied again)
    acts = engine.on_event(md(feed.packet(feed.add(ACME, "B", 100, 999_700)),
                              2 * S + engine.cfg.deny_backoff_ns + MS))
    assert len(notes(acts, RecordType.RISK_DECISION)) == 2 and engine.oms.counter == tokens + 2


def test_protocol_garbage_is_reported_not_fatal():
    engine, venue, feed, refs, acts = quoted_book()
    out = engine.on_event(md(b"\x00\x01garbage", 3 * S))
    assert alerts(out) == ["md-protocol-error"] and not engine.stale
    out = engine.on_event(VenueMessage(b"\x00\x05Sjunk", 3 * S))
    assert alerts(out) == ["venue-protocol-error"]
    assert engine.counts["protocol_errors"] == 2
    with pytest.raises(EngineError):
        engine.on_event("not an event")


def test_metrics_are_emitted_periodically_as_json():
    engine, venue, feed, refs, acts = quoted_book()
    bid = orders(acts)[0].intent.token
    run(engine, venue, venue.fill(bid, 100, 2 * S + MS), 2 * S + MS)
    out = keep_alive(engine, venue, 3 * S + MS)
    docs = [json.loads(n.payload) for n in notes(out, RecordType.METRICS)]
    doc = [d for d in docs if "realized" in d][0]
    assert doc["fills"] == {"bid": 1, "ask": 0} and doc["symbols"]["1"]["position"] == 100
    assert doc["trading_state"] == "ACTIVE" and doc["counts"]["fills"] == 1
    assert doc["spread_captured_x2"] > 0


def test_kill_switch_cancels_every_resting_order_and_journals_who():
    engine, venue, feed, refs, acts = quoted_book()
    out = engine.on_event(OperatorCommand(3 * S, "kill", "risk.officer", "desk limit", "all", 0))
    assert sorted(o.intent.token for o in orders(out)) == sorted(o.intent.token for o in orders(acts))
    kill = unpack(RecordType.KILL, notes(out, RecordType.KILL)[0].payload)
    assert kill["orders_cancelled"] == 2 and kill["requested_by"] == b"risk.officer"
    assert engine.risk.state is TradingState.HALTED
    settle(engine, venue, out, 3 * S)
    quiet = run(engine, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_800)), 3 * S + MS), 3 * S + MS)
    assert not orders(quiet)
    # re-enabling is refused while a fault is active (the clock went quiet: the command is the
    # first event past the clock's deadline, so it raises the clock fault first) ...
    refused = engine.on_event(OperatorCommand(10 * S, "enable", "ops1", "resume"))
    assert alerts(refused) == ["clock-fault", "operator-refused"]
    assert engine.risk.state is TradingState.HALTED
    # ... and works once it is healthy again; quoting resumes at once
    engine.on_event(ClockSample(10 * S, True))
    engine.on_event(md(feed.packet(feed.add(ACME, "B", 100, 999_700)), 10 * S))
    back = engine.on_event(OperatorCommand(10 * S, "enable", "ops1", "resume"))
    assert engine.risk.state is TradingState.ACTIVE and len(orders(back)) == 2


def test_no_orders_until_every_gateway_input_is_healthy():
    engine, venue, feed = Engine(EngineConfig(), SYMBOLS, gateway()), Venue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    acts = engine.on_event(md(feed.packet(*msgs), S))
    assert not orders(acts) and engine.risk.state is TradingState.ACTIVE     # not latched
    engine.on_event(ClockSample(S, True))
    acts = run(engine, venue, Timer(S), S)
    assert not orders(acts)                                                   # journal not yet healthy
    from mm_core.events import JournalHealth
    engine.on_event(JournalHealth(S, True))
    acts = run(engine, venue, Timer(S + MS), S + MS)
    assert len([o for o in orders(acts) if o.intent.kind is OrderKind.ENTER]) == 2


def test_kill_racing_an_unanswered_replace_cancels_the_replacement():
    """The kill sweep cancels the original token while its replace is in flight; the venue
    replaces first and ignores the stale cancel, so the engine must cancel the replacement."""
    engine, venue, feed, refs, acts = quoted_book()
    moved = []
    for i, price in enumerate((1_000_000, 1_000_100, 1_000_200)):      # lift the market until we requote
        moved = engine.on_event(md(feed.packet(feed.add(ACME, "B", 500, price)), 3 * S + i * MS))
        if any(o.intent.kind is OrderKind.REPLACE for o in orders(moved)):
            break
    replaces = [o.intent for o in orders(moved) if o.intent.kind is OrderKind.REPLACE]
    assert replaces, "the market move should make the engine replace a quote"
    now = 4 * S
    kill = engine.on_event(OperatorCommand(now, "kill", "risk.officer", "race", "all", 0))
    # the venue sees the replace first, then the cancel of the token it no longer holds
    after = []
    for reply in venue.answer(orders(moved) + orders(kill), now + MS):
        after += engine.on_event(reply)
    # the replacement is cancelled by its own token in the sweep (it lands after the replace)
    # or, had the sweep missed it, once the venue confirms the replace
    follow = [o.intent for o in orders(kill) + orders(after) if o.intent.kind is OrderKind.CANCEL]
    assert {i.token for i in follow} >= {r.token for r in replaces}
    settle(engine, venue, after, now + 2 * MS)
    assert venue.resting("ACME", "B") == [] and venue.resting("ACME", "S") == []
    assert not any(o.state.value.startswith("pending") for o in engine.oms.open_orders())


# --- latches pull orders the venue has not answered; the answers that cross the cancel ----------

from mm_core.events import JournalHealth, Reconciled  # noqa: E402  (tests added below)

def unanswered_quotes(limits=None):
    """Two quotes sent, the venue's answers not yet back."""
    engine = make_engine(limits=limits) if limits else make_engine()
    venue, feed = Venue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    enters = orders(engine.on_event(md(feed.packet(*msgs), 2 * S)))
    assert len(enters) == 2
    assert all(engine.oms.get(o.intent.token).state is OrderState.PENDING_NEW for o in enters)
    return engine, venue, enters


def test_a_latch_cancels_orders_the_venue_has_not_answered_yet():
    engine, venue, enters = unanswered_quotes()
    latch = engine.on_event(Reconciled(2 * S + MS, False))          # an on-report fault
    assert engine.risk.state is TradingState.HALTED
    assert [(o.intent.kind, o.intent.token) for o in orders(latch)] == [
        (OrderKind.CANCEL, o.intent.token) for o in enters]
    # the venue takes each enter before the cancel behind it: accepted, then canceled
    after = []
    for reply in venue.answer(enters + orders(latch), 2 * S + 2 * MS):
        after += engine.on_event(reply)
    assert not orders(after) and engine.counts["halts"] == 0
    assert venue.resting("ACME", "B") == [] and venue.resting("ACME", "S") == []
    assert [engine.oms.get(o.intent.token).state for o in enters] == [OrderState.CANCELED] * 2


def test_a_fill_before_the_pull_lands_is_booked_without_halting():
    engine, venue, enters = unanswered_quotes()
    latch = engine.on_event(Reconciled(2 * S + MS, False))
    now = 2 * S + 2 * MS
    for reply in venue.answer(enters, now):                          # accepts cross the cancels
        assert not orders(engine.on_event(reply))
    bid = enters[0].intent
    engine.on_event(venue.fill(bid.token, 50, now))                  # filled before the cancel
    for reply in venue.answer(orders(latch), now):
        engine.on_event(reply)
    assert engine.inventory.position[ACME] == 50 and engine.counts["halts"] == 0
    order = engine.oms.get(bid.token)
    assert (order.state, order.filled, order.fills_after_cancel) == (OrderState.CANCELED, 50, 1)


def test_reducing_latch_pulls_only_the_side_that_adds_risk():
    reducing = LIMITS_TEXT.replace('latch_state = "HALTED"', 'latch_state = "REDUCING"')
    engine, venue, enters = unanswered_quotes(reducing)
    now = 2 * S + MS
    for reply in venue.answer(enters, now):
        engine.on_event(reply)
    requoted = engine.on_event(venue.fill(enters[1].intent.token, 100, now))   # short 100 now
    assert engine.inventory.position[ACME] == -100 and orders(requoted)        # left unanswered
    latch = engine.on_event(Reconciled(now + MS, False))
    assert engine.risk.state is TradingState.REDUCING
    pulled = [engine.oms.get(o.intent.token) for o in orders(latch)]
    assert pulled and all(o.state is OrderState.PENDING_CANCEL for o in engine.oms.open_orders()
                          if o.side is Side.SELL)                     # selling adds to a short
    # buying back may rest, but not more than the short: the pre-latch 200-share bid would flip
    # it, and cannot be sized down while the gateway is unreconciled, so it is pulled too
    assert all(o.side is Side.SELL or o.leaves > 100 for o in pulled)
    assert all(o.state is not OrderState.PENDING_CANCEL for o in engine.oms.open_orders()
               if o.side is Side.BUY and o.leaves <= 100)


def test_unsent_orders_are_forgotten_and_everything_else_pulled_on_a_journal_fault():
    engine, venue, enters = unanswered_quotes()
    refused, sent = enters[1].intent.token, enters[0].intent.token
    acts = engine.on_event(JournalHealth(2 * S + MS, False, unsent=(refused,)))
    assert engine.oms.get(refused).state is OrderState.REJECTED      # it never left
    assert [(o.intent.kind, o.intent.token) for o in orders(acts)] == [(OrderKind.CANCEL, sent)]
    assert engine.risk.state is TradingState.HALTED
    assert {n.rtype for n in notes(acts)} >= {RecordType.STATE_CHANGE}


def test_clean_reconciliation_resumes_trading_and_journals_why():
    engine, venue, feed, refs, acts = quoted_book()
    now = 3 * S
    run(engine, venue, Reconciled(now, False), now)          # a restart: recovery begins
    assert engine.risk.state is TradingState.HALTED and not venue.orders     # quotes pulled
    released = engine.on_event(Reconciled(now + MS, True))
    changes = [unpack(RecordType.STATE_CHANGE, n.payload) for n in notes(released, RecordType.STATE_CHANGE)]
    assert [(int(c["from_state"]), int(c["to_state"])) for c in changes] == [
        (TradingState.HALTED, TradingState.ACTIVE)]
    assert b"reconciled" in bytes(changes[0]["reason"])
    assert engine.risk.state is TradingState.ACTIVE
    # the book is the journal's: no quote until market data shows it current
    assert not orders(released) and engine.stale
    engine.on_event(ClockSample(now + 2 * MS, True))
    fresh = run(engine, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_800)), now + 2 * MS), now + 2 * MS)
    assert not engine.stale
    assert [o.intent.kind for o in orders(fresh)] == [OrderKind.ENTER, OrderKind.ENTER]


def test_clean_reconciliation_leaves_a_kill_from_before_the_restart_latched():
    engine, venue, feed, refs, acts = quoted_book()
    now = 3 * S
    engine.on_event(OperatorCommand(now, "kill", "risk.officer", "before the crash", "all", 0))
    engine.on_event(Reconciled(now + MS, False))
    after = engine.on_event(Reconciled(now + 2 * MS, True))
    assert engine.risk.state is TradingState.HALTED and not notes(after, RecordType.STATE_CHANGE)
    assert "still-latched" in alerts(after)
    back = engine.on_event(OperatorCommand(now + 3 * MS, "enable", "ops1", "looked"))
    assert engine.risk.state is TradingState.ACTIVE and back is not None


def test_a_book_left_stale_after_a_gap_blocks_only_its_own_symbol():
    """After a gap is filled, a symbol whose book cannot be priced (one side emptied during the
    gap) stays stale at the gateway; the other symbols quote again (only a feed gap stops all)."""
    engine, venue, feed = make_engine(), Venue(), Feed()
    acme, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    bolt, bolt_refs = two_sided(feed, BOLT, 504_900, 505_100)
    acts = run(engine, venue, md(feed.packet(*acme, *bolt), 2 * S), 2 * S)
    assert {o.intent.symbol_id for o in orders(acts)} >= {ACME, BOLT}
    first_lost = feed.seq
    feed.packet(*[feed.delete(bolt_refs[px]) for px in (505_100, 505_200, 505_300)])   # lost
    now = 3 * S
    acts = run(engine, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_700)), now), now)
    assert engine.stale and "book-stale" in alerts(acts)
    now += 700 * MS
    acts = run(engine, venue, md(feed.resend(first_lost, 4), now), now)
    assert "book-recovered" in alerts(acts) and not engine.stale
    assert engine.book.top(BOLT)[2] == 0                     # BOLT has no asks: no fair value
    assert engine.risk.faults == ["book-stale"] and engine.risk.state is TradingState.ACTIVE
    entered = [o for o in orders(acts) if o.intent.kind is OrderKind.ENTER]
    assert {o.intent.symbol_id for o in entered} == {ACME}   # ACME quotes again, BOLT does not
    assert sorted(o.intent.side for o in entered) == [Side.BUY, Side.SELL]
    assert not notes(acts, RecordType.STATE_CHANGE)           # nothing latched


def test_a_filled_gap_clears_the_staleness_of_symbols_it_did_not_touch():
    """The gap made every priced symbol stale at the gateway; the packets that fill it carry
    only ACME, yet CHIP's book (priced, not quoted, no follower of ACME: not repriced here) is
    current too and its fault must clear with the feed's: left set, the gateway reports
    book-stale while ACME quotes again."""
    engine, venue, feed = make_engine(EngineConfig(quoted=("ACME",))), Venue(), Feed()
    acme, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    chip, _ = two_sided(feed, CHIP, 8_400, 8_600)
    run(engine, venue, md(feed.packet(*acme, *chip), 2 * S), 2 * S)
    first_lost = feed.seq
    feed.packet(feed.add(ACME, "B", 100, 999_800))                       # lost
    now = 3 * S
    run(engine, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_700)), now), now)
    assert engine.stale and engine.risk.faults == ["book-stale"]
    now += 700 * MS
    acts = run(engine, venue, md(feed.resend(first_lost, 2), now), now)
    assert "book-recovered" in alerts(acts) and engine.risk.faults == []
    assert {o.intent.symbol_id for o in orders(acts) if o.intent.kind is OrderKind.ENTER} == {ACME}


def _trade(match, aggressor_buys, qty, symbol=ACME, price=1_000_000):
    from mm_core.protocol import itch
    resting = "S" if aggressor_buys else "B"         # P carries the resting (hidden) order's side
    return itch.Trade(symbol, 0, 0, 0, resting, qty, "ACME", price, match)


def test_itch_broken_trade_reverses_flow_guard_window_and_vpin_and_is_journaled():
    from mm_core.protocol import itch
    engine, venue, feed, refs, acts = quoted_book()
    fv, guard = engine.fv, engine.guards[ACME]
    a = fv.flow_alpha
    now = 3 * S
    run(engine, venue, md(feed.packet(_trade(41, True, 300), _trade(42, False, 100)), now), now)
    assert guard.buy_vol == 300 and guard.sell_vol == 100 and guard.vpin.buy == 300
    acts = run(engine, venue, md(feed.packet(itch.BrokenTrade(ACME, 0, 0, 41)), now + MS), now + MS)
    broken = [json.loads(n.payload) for n in notes(acts, RecordType.METRICS)
              if json.loads(n.payload).get("alert") == "trade-broken"]
    assert len(broken) == 1 and "match 41 symbol 1 buy 300" in broken[0]["detail"]
    assert "window=True vpin=True" in broken[0]["detail"]
    # as if only the sell of 100 had printed: its own EWMA term is all that is left
    assert fv.flow_signed[ACME] == pytest.approx(-a * 100) and fv.flow_abs[ACME] == pytest.approx(a * 100)
    assert guard.buy_vol == 0 and guard.sell_vol == 100 and list(guard.prints) == [(False, 100)]
    assert guard.vpin.buy == 0 and guard.vpin.sell == 100
    # the same break again, or one of a print never seen: journaled as unknown, nothing changes
    acts = run(engine, venue, md(feed.packet(itch.BrokenTrade(ACME, 0, 0, 41),
                                             itch.BrokenTrade(ACME, 0, 0, 999)), now + 2 * MS), now + 2 * MS)
    assert alerts(acts).count("trade-break-unknown") == 2
    assert guard.sell_vol == 100 and fv.flow_abs[ACME] == pytest.approx(a * 100)


def test_a_broken_trade_that_closed_a_vpin_bucket_leaves_the_bucket_as_history():
    from mm_core.protocol import itch
    engine, venue, feed, refs, acts = quoted_book()
    guard = engine.guards[ACME]
    size = guard.vpin.bucket_volume
    now = 3 * S
    run(engine, venue, md(feed.packet(_trade(7, True, size + 10)), now), now)
    closed = guard.vpin.completed
    assert closed == 1 and guard.vpin.buy == 10
    acts = run(engine, venue, md(feed.packet(itch.BrokenTrade(ACME, 0, 0, 7)), now + MS), now + MS)
    assert "trade-broken" in alerts(acts)
    assert guard.vpin.completed == closed and guard.vpin.buy == 10 and guard.buy_vol == 0


@pytest.mark.parametrize("levels, w_imbalance, moves", [(5, 0.2, True), (3, 0.2, False), (5, 0.0, False)])
def test_book_changes_reprice_when_they_reach_the_levels_fair_value_reads(levels, w_imbalance, moves):
    """A change at the 5th level moves fair value only when the depth imbalance reads 5 levels."""
    from mm_core.config import FairValueParams
    config = EngineConfig(fair_value=FairValueParams(imbalance_levels=levels, w_imbalance=w_imbalance))
    engine, venue, feed = make_engine(config), Venue(), Feed()
    msgs, refs = two_sided(feed, ACME, 999_900, 1_000_100, levels=5)
    run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    before = engine.fv.fair[ACME]
    run(engine, venue, md(feed.packet(feed.delete(refs[999_500])), 3 * S), 3 * S)   # 5th bid level
    assert (engine.fv.fair[ACME] != before) is moves


def test_hot_path_intents_equal_the_dataclass_built_ones():
    import dataclasses
    from mm_core.types import OrderIntent, make_intent
    fast = make_intent(OrderKind.REPLACE, "T2", ACME, Side.SELL, 1_000_100, 300, (1, 2, 3, 4),
                       orig_token="T1", tif=0, purpose=Purpose.HEDGE)
    slow = OrderIntent(OrderKind.REPLACE, "T2", ACME, Side.SELL, 1_000_100, 300, 0, 1, 2, 3, 4, "T1",
                       Purpose.HEDGE)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert type(fast) is OrderIntent and dataclasses.astuple(fast) == dataclasses.astuple(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.qty = 1


def test_a_replacement_that_dies_with_its_filled_original_leaves_the_gateway_count():
    """The original fills before its replace arrives: the venue ignores the replace, the OMS
    rejects the replacement with it, and the gateway must forget the replacement's working slot
    (a leak here denies every entry once it reaches max_open_orders)."""
    engine, venue, feed, refs, acts = quoted_book()
    moved = []
    for i, price in enumerate((1_000_000, 1_000_100, 1_000_200)):
        moved = engine.on_event(md(feed.packet(feed.add(ACME, "B", 500, price)), 3 * S + i * MS))
        if any(o.intent.kind is OrderKind.REPLACE for o in orders(moved)):
            break
    replace = next(o.intent for o in orders(moved) if o.intent.kind is OrderKind.REPLACE)
    working_before = len(engine.oms.open_orders())
    # the original fills in full at the venue before the replace is processed
    after = engine.on_event(venue.fill(replace.orig_token, venue.orders[replace.orig_token]["qty"],
                                       4 * S))
    assert engine.oms.get(replace.token).state.value == "rejected"
    settle(engine, venue, after, 4 * S + MS)
    assert engine.risk.open_order_count == len(engine.oms.open_orders())
    assert len(engine.oms.open_orders()) <= working_before


def test_a_new_market_data_session_pulls_quotes_and_rebuilds_the_books_from_it():
    """A venue restarted after a crash publishes under a new MoldUDP64 session from sequence 1:
    once the old session is silent past the market-data age limit, the old books are dropped
    (never quoted on, frozen), the quotes pulled, and the new session is followed from its first
    message; a later first packet is a gap, re-requested."""
    engine, venue, feed, refs, acts = quoted_book()
    assert len(orders(acts)) == 2 and engine.book.best_bid(ACME) == 999_900
    restarted = Feed(session="TEST00000R")
    t = 2 * S + engine.risk.limits.max_market_age_ns + MS      # the old session silent since 2 s
    for now in range(3 * S, t, S):                              # the clock healthy meanwhile
        engine.on_event(ClockSample(now, True))
    out = engine.on_event(md(restarted.packet(restarted.add(ACME, "B", 300, 999_500)), t))
    assert alerts(out)[:2] == ["md-session-change", "book-stale"]
    pulled = orders(out)
    assert [o.intent.kind for o in pulled] == [OrderKind.CANCEL, OrderKind.CANCEL]
    # the old session's orders are gone: only the new session's bid, no ask yet
    assert engine.book.best_bid(ACME) == 999_500 and engine.book.best_ask(ACME) == 0
    assert engine.md.tracker.session == "TEST00000R" and engine.tracker.next_expected == 2
    assert engine.counts["md_session_changes"] == 1 and engine.counts["protocol_errors"] == 0
    # a late packet of the old session is refused, never followed back (no flip-flop of books)
    late = engine.on_event(md(feed.packet(feed.add(ACME, "S", 100, 1_000_000)), t + MS))
    assert alerts(late) == ["md-protocol-error"] and engine.counts["md_session_changes"] == 1
    assert engine.md.tracker.session == "TEST00000R" and engine.book.best_ask(ACME) == 0
    # the new session goes on: its next message applies
    engine.on_event(md(restarted.packet(restarted.add(ACME, "S", 300, 1_000_500)), t + 2 * MS))
    assert engine.book.best_ask(ACME) == 1_000_500


def test_a_new_session_heard_first_past_its_start_is_a_gap_and_re_requested():
    engine, venue, feed, refs, acts = quoted_book()
    restarted = Feed(session="TEST00000R")
    restarted.packet(restarted.add(ACME, "B", 300, 999_500))        # sequence 1, lost
    t = 2 * S + engine.risk.limits.max_market_age_ns + MS
    for now in range(3 * S, t, S):
        engine.on_event(ClockSample(now, True))
    out = engine.on_event(md(restarted.packet(restarted.add(ACME, "S", 300, 1_000_500)), t))
    assert alerts(out)[0] == "md-foreign-session"          # one packet past its start: not yet
    out = engine.on_event(md(restarted.packet(restarted.add(ACME, "S", 300, 1_000_600)), t + MS))
    assert "md-session-change" in alerts(out) and engine.stale and engine.tracker.in_gap
    requests = [a for a in out if isinstance(a, RequestRetransmit)]
    assert len(requests) == 1 and engine.book.best_ask(ACME) == 0
