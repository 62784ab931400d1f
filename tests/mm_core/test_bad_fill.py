"""A fill the venue reports at an impossible price, or one whose booking fails past the OMS: the
engine halts (journaled, everything pulled, the gateway unreconciled) instead of raising out of
on_event with the fill half booked."""
import json

import pytest

from journal.catalogue import RecordType
from mm_core.engine import Engine
from mm_core.events import JournalNote, VenueMessage
from mm_core.metrics import MetricsError
from mm_core.oms import OrderState
from mm_core.protocol import ouch
from mm_core.risk import TradingState
from mm_core.types import OrderKind
from tests.mm_core import wire
from tests.mm_core.wire import CHIP, MS, S, Feed, Venue, make_engine, md, orders, run, two_sided


@pytest.fixture(params=[True, False], ids=["compiled", "reference"])
def engine(request, monkeypatch):
    monkeypatch.setattr(wire, "Engine", lambda *a, **kw: Engine(*a, compiled=request.param, **kw))
    return make_engine()


def quoted(engine):
    venue, feed = Venue(), Feed()
    msgs, _ = two_sided(feed, CHIP, 8400, 8600, qty=500, levels=3, tick=10)
    run(engine, venue, md(feed.packet(*msgs), S), S)
    bid = venue.resting("CHIP", "B")[0]
    return venue, bid


def halt_detail(actions) -> str:
    docs = [json.loads(a.payload) for a in actions
            if isinstance(a, JournalNote) and a.rtype == RecordType.METRICS]
    return next(d["detail"] for d in docs if d.get("alert") == "halt")


def test_an_execution_at_price_zero_is_not_booked_and_halts(engine):
    venue, bid = quoted(engine)
    order = engine.oms.orders[bid]
    leaves = order.leaves
    acts = engine.on_event(VenueMessage(venue.frame(ouch.Executed(S, bid, 100, 0, "A", 999)), S + MS))
    # nothing of the fill booked anywhere: the OMS, inventory, gateway and metrics still agree
    assert order.leaves == leaves and order.filled == 0
    assert engine.inventory.position[CHIP] == 0 and engine.risk.position(CHIP) == 0
    assert engine.metrics.traded[CHIP] == 0
    assert engine.risk.state is TradingState.HALTED and engine.counts["halts"] == 1
    detail = halt_detail(acts)
    assert "execution at price 0" in detail and f"{bid} 100@0 match 999" in detail
    pulled = {o.intent.token for o in orders(acts) if o.intent.kind is OrderKind.CANCEL}
    assert bid in pulled and order.state is OrderState.PENDING_CANCEL


def test_a_booking_error_past_the_oms_halts_instead_of_raising(engine, monkeypatch):
    venue, bid = quoted(engine)

    def refuse(*args):
        raise MetricsError("fill refused")
    monkeypatch.setattr(engine.metrics, "on_fill", refuse)
    acts = engine.on_event(VenueMessage(venue.frame(ouch.Executed(S, bid, 100, 8400, "A", 7)), S + MS))
    assert engine.risk.state is TradingState.HALTED
    assert "booking: fill refused; partly applied" in halt_detail(acts)
