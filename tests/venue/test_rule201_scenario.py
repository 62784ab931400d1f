"""Scenario: on the embedded venue ACME trades 11% below its prior close, the venue publishes
ITCH 'Y' '1', and the engine reading that market data (its orders answered by the scripted
counter-party) turns the price test on and prices no short sale at or below the best bid."""
from __future__ import annotations

import time

import pytest

from mm_core.engine import Engine
from mm_core.protocol import itch, moldudp64, ouch
from mm_core.types import OrderKind, Side
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from mm_core.config import EngineConfig
from mm_core.events import ClockSample, JournalHealth, Timer
from tests.mm_core.test_short_sale import QUIET_GUARD, alerts
from tests.mm_core.wire import (
    ACME, LIMITS_TEXT, MS, S, SYMBOLS, Venue as ScriptedVenue, gateway, md, orders, run, settle,
)

# the example limits keep orders within 5% of the reference price (the prior close): a symbol
# 11% down would get no quotes at all, so the collar here is 20%
WIDE_COLLAR = LIMITS_TEXT.replace("reference_bps = 500", "reference_bps = 2000")


def packets_until(rx: MoldReceiver, until, timeout: float = 5.0) -> list[bytes]:
    """The raw MoldUDP64 packets received until `until(rx)` (in order: loopback, no gaps)."""
    got, deadline = [], time.monotonic() + timeout
    while not until(rx):
        assert time.monotonic() < deadline, "timed out waiting for market data"
        data = rx.receive(0.2)
        if data is not None and isinstance(moldudp64.decode(data), moldudp64.Packet):
            assert rx.on_packet(data) is None
            got.append(data)
    return got


def has(kind, **fields):
    return lambda rx: any(isinstance(m, kind) and all(getattr(m, k) == v for k, v in fields.items())
                          for m in rx.decoded())


def quoting_engine(compiled: bool) -> Engine:
    engine = Engine(EngineConfig(guard=QUIET_GUARD), SYMBOLS, gateway(WIDE_COLLAR),
                    compiled=compiled)
    for event in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(event)
    return engine


def feed(engine: Engine, counterparty: ScriptedVenue, packets: list[bytes], now: int) -> list:
    acts = []
    for i, packet in enumerate(packets):
        acts += run(engine, counterparty, md(packet, now + i * MS), now + i * MS)
    return acts


@pytest.mark.parametrize("compiled", [True, False])
def test_a_price_fall_on_the_venue_turns_on_the_price_test_in_the_engine(tmp_path, compiled):
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(tmp_path / "logs"),
                                          session="SSR0000001")
        with Venue(config, background_flow=False) as venue, \
                SoupClient(venue.ports.host, venue.ports.ouch) as seller, \
                SoupClient(venue.ports.host, venue.ports.ouch) as buyer:
            seller.login("MM01", "mmaudit", 0)
            buyer.login("MM02", "mmaudit2", 0)
            for token, side, price in (("B1", "B", 89_0000), ("B2", "B", 88_9900),
                                       ("B3", "B", 88_9800)):
                buyer.enter(token, side, 500, "ACME", price)
            for token, side, price in (("A1", "S", 89_2000), ("A2", "S", 89_2100),
                                       ("A3", "S", 89_2200)):
                seller.enter(token, side, 500, "ACME", price)
            before = packets_until(rx, lambda r: sum(isinstance(m, itch.AddOrder)
                                                     for m in r.decoded()) == 6)
            seller.sequenced(3)
            seller.enter("HIT1", "S", 100, "ACME", 89_0000, tif=ouch.TIF_IOC)   # 11% down
            after = packets_until(rx, has(itch.RegShoRestriction, stock="ACME",
                                          reg_sho_action="1"))
    engine, counterparty = quoting_engine(compiled), ScriptedVenue()
    feed(engine, counterparty, before, 2 * S)
    assert not engine.ssr[ACME]
    acts = feed(engine, counterparty, after, 3 * S)
    assert engine.ssr[ACME]
    assert alerts(acts, "reg-sho") == ["ACME: short sale price test in force"]
    nbb = engine._nbb(ACME)
    assert nbb == 89_0000                          # 400 shares left at the bid
    sells = [o for o in orders(acts) if o.intent.side is Side.SELL
             and o.intent.kind is not OrderKind.CANCEL]
    working = [o for o in counterparty.orders.values() if o["stock"] == "ACME" and o["side"] == "S"]
    assert working and all(o["marked"] == "T" and o["price"] > nbb for o in working)  # flat: short
    assert sells and all(o.intent.price > nbb for o in sells)
    # and where pricing would put the short ask at the bid, the rule keeps it a tick above (our
    # bid, above theirs, moves down to theirs first: the ask waits until it has)
    _, bq, _, aq = engine._quote(ACME)
    engine._quote = lambda s: (nbb, bq, nbb, aq)
    moved: list = []
    for step in range(2):
        acts = []
        engine._requote(ACME, acts)
        moved += acts + settle(engine, counterparty, acts, 4 * S + step * MS)
    prices = [o.intent.price for o in orders(moved) if o.intent.side is Side.SELL
              and o.intent.kind is not OrderKind.CANCEL]
    assert prices == [engine.ticks[ACME].tick_above(nbb)]
