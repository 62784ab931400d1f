"""A known order reconciliation cancels at the venue is counted by the risk gateway as the venue
holds it — its shares and its price — until the venue answers the cancel, and a replay of the
RECON record rebuilds exactly that. Before, only its size was recounted and the gateway kept the
price it had sent: self-trade prevention then guarded a price where nothing of ours rests (a buy
that would trade with our own ask at the venue passed, one that could not was denied)."""
from __future__ import annotations

import pytest

from journal import Journal, RecordType
from journal.catalogue import pack_json
from mm_core.events import ClockSample, VenueMessage
from mm_core.oms import OrderState
from mm_core.protocol import ouch
from mm_core.risk import CheckId
from mm_core.types import OrderIntent, OrderKind, Side
from recovery.reconcile import CancelAtVenue, apply, resolution_json
from recovery.replay import RECON_RESOLUTION, replay_journal
from tests.mm_core.wire import ACME, S
from tests.recovery import journaling
from tests.recovery.test_reconcile import NOW, accepted, frame, local, quoting, reconcile


def buy(price: int) -> OrderIntent:
    return OrderIntent(OrderKind.ENTER, "MMTESTBUY0001", ACME, Side.BUY, price, 100, algo_id=1,
                       desk_id=1, trader_id=1, client_id=1)


def healthy(risk, now: int) -> None:
    """Every input fresh at `now`, so only the order's own checks decide."""
    sym = risk._symbols[ACME]
    risk.on_clock(True, now)
    risk.on_market(ACME, sym.fair, sym.reference, False, now)


@pytest.mark.parametrize("moved", [-50, 50], ids=["venue-lower", "venue-higher"])
def test_an_ask_cancelled_by_reconciliation_guards_its_venue_price_until_answered(moved):
    engine, venue, _, ask = quoting()
    at_venue = ask.price + moved
    index = next(i for i, p in enumerate(venue.log) if ouch.decode_outbound(p).token == ask.token)
    original = ouch.decode_outbound(venue.log[index])
    log = list(venue.log)
    log[index] = accepted(ask.token, "S", original.shares, at_venue, original.order_ref)
    result = reconcile(local(engine, venue), venue.view(log=log))
    (cancel,) = result.resolutions
    assert isinstance(cancel, CancelAtVenue) and not cancel.adopt and cancel.price == at_venue
    apply(engine, cancel, NOW)
    assert engine.oms.get(ask.token).state is OrderState.PENDING_CANCEL
    healthy(engine.risk, NOW)
    # a buy at the ask's venue price would trade with it there: denied, whichever way it moved
    crossing = engine.risk.check(buy(at_venue), NOW)
    assert not crossing.allowed and crossing.check is CheckId.SELF_TRADE, crossing
    assert (crossing.value, crossing.limit) == (at_venue, at_venue)
    # one below it cannot, even at the price the gateway had sent
    below = engine.risk.check(buy(at_venue - 1), NOW)
    assert below.allowed, below
    # counted as it rests at the venue: its shares and its price
    assert engine.risk.working_orders()[ask.token] == (ACME, False, original.shares, at_venue)
    # the venue answers the cancel: released
    engine.on_event(VenueMessage(frame(ouch.encode(ouch.Canceled(NOW, ask.token, original.shares, "U"))), NOW))
    assert ask.token not in engine.risk.working_orders()


def test_a_replay_of_the_resolution_rebuilds_the_gateway_the_live_one_had(tmp_path):
    path = str(tmp_path / "journal")
    events = journaling.session_events(11, 300)
    with Journal(path, checkpoint_every=64) as journal:
        shell = journaling.RunnerLike(journaling.fresh_engine(), journal)
        shell.start(events[0].now_ns)
        for event in events:
            shell.feed(event)
        engine = shell.engine
        resting = sorted(t for t, o in engine.oms.orders.items()
                         if o.state in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED))
        assert resting, "the session left no order resting"
        order = engine.oms.orders[resting[0]]
        now = events[-1].now_ns + S
        # the venue holds it one tick higher than the journal says (price mismatch)
        moved = order.price + 100
        resolution = CancelAtVenue(order.token, order.symbol_id, chr(int(order.side)), moved,
                                   order.leaves, order.venue_ref, False)
        doc = {"kind": RECON_RESOLUTION, "resolution": resolution_json(resolution), "found": "price-mismatch"}
        journal.append(RecordType.RECON, pack_json(doc), ts_ns=now, ts_source=1)
        shell.act(apply(engine, resolution, now), now)
        live = engine.risk.working_orders()
        assert live[order.token][2:] == (order.leaves, moved)
        shell.feed(ClockSample(now + 1, True))
        live_hash = engine.state_hash()
    replayed = replay_journal(path, journaling.fresh_engine())
    assert replayed.deterministic
    assert replayed.engine.risk.working_orders() == engine.risk.working_orders()
    assert replayed.state_hash == live_hash
