"""The engine's sells through the gateway's own Reg SHO controls, end to end on real OUCH/ITCH
bytes: a short ask with no locate is denied and journaled (the bid still quotes), the bona fide
market-making exception is journaled with the order it let through, and the gateway stops a sale
the engine mismarked, or a short sale under a Rule 201 restriction the engine missed."""
import pytest

from journal.catalogue import RecordType, unpack
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, JournalNote, SendOrder, Timer
from mm_core.protocol import itch
from mm_core.risk import CheckId
from mm_core.types import OrderKind, Side
from tests.mm_core.test_short_sale import QUIET_GUARD, wire_side
from tests.mm_core.wire import (
    ACME, LIMITS_TEXT, NAMES, S, SYMBOLS, Feed, Venue, gateway, md, orders, run, two_sided,
)

NOT_BORROWABLE = LIMITS_TEXT.replace("easy_to_borrow = [1, 2, 3]", "easy_to_borrow = [2, 3]")
BONA_FIDE = NOT_BORROWABLE.replace("bona_fide_market_making = []", "bona_fide_market_making = [1]")


def quoted(limits: str = LIMITS_TEXT, compiled: bool = True, patch=None):
    engine = Engine(EngineConfig(guard=QUIET_GUARD), SYMBOLS, gateway(limits), compiled=compiled)
    if patch is not None:
        patch(engine)
    for event in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(event)
    venue, feed = Venue(), Feed()
    msgs, refs = two_sided(feed, ACME, 999_900, 1_000_100)
    acts = run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    return engine, venue, feed, acts


def decisions(actions):
    return [unpack(RecordType.RISK_DECISION, a.payload) for a in actions
            if isinstance(a, JournalNote) and a.rtype == RecordType.RISK_DECISION]


def acme_sides(venue) -> dict:
    return {o["side"]: o["marked"] for o in venue.orders.values() if o["stock"] == "ACME"}


@pytest.mark.parametrize("compiled", [True, False])
def test_a_short_ask_without_a_locate_is_denied_and_journaled_while_the_bid_quotes(compiled):
    engine, venue, _, acts = quoted(NOT_BORROWABLE, compiled)
    assert acme_sides(venue) == {"B": "B"}
    [denial] = decisions(acts)
    assert denial["allowed"] == 0 and denial["check_id"] == CheckId.LOCATE_REQUIRED
    assert denial["side"] == Side.SELL and denial["limit"] == 0 and denial["value"] == denial["qty"]
    assert engine.counts["denials"] == 1


def test_the_bona_fide_exception_is_journaled_ahead_of_the_order_it_let_through():
    engine, venue, _, acts = quoted(BONA_FIDE)
    assert acme_sides(venue) == {"B": "B", "S": "T"}
    [used] = decisions(acts)
    assert used["allowed"] == 1 and used["check_id"] == CheckId.LOCATE_EXCEPTION
    assert b"bona fide" in used["detail"]
    ask = [a for a in acts if isinstance(a, SendOrder) and a.intent.side is Side.SELL
           and a.intent.kind is OrderKind.ENTER]
    note = [a for a in acts if isinstance(a, JournalNote) and a.rtype == RecordType.RISK_DECISION]
    assert used["token"].decode() == ask[0].intent.token and acts.index(note[0]) < acts.index(ask[0])
    assert engine.counts["denials"] == 0


def test_a_flat_sell_the_engine_marks_long_is_denied_by_the_gateway():
    def mismark(engine):        # a marking defect: every new sell claims to be long
        engine._sell_mark = lambda intent: ("S", [])
    engine, venue, _, acts = quoted(patch=mismark)
    assert acme_sides(venue) == {"B": "B"}
    [denial] = decisions(acts)
    assert denial["check_id"] == CheckId.SALE_MARKING and int(denial["value"]) == -int(denial["qty"])


class _Deaf(list):
    """The engine's Rule 201 flags with the restriction never recorded (an engine defect)."""

    def __setitem__(self, index, value):
        return None


def test_a_short_sale_under_a_restriction_the_engine_missed_is_denied():
    def deaf(engine):
        engine.ssr = _Deaf(engine.ssr)
    engine, venue, feed, _ = quoted(patch=deaf)
    assert acme_sides(venue) == {"B": "B", "S": "T"}
    restriction = itch.RegShoRestriction(ACME, 0, 0, NAMES[ACME], "1")
    now = 3 * S
    run(engine, venue, md(feed.packet(restriction), now), now)
    assert not engine.ssr[ACME] and engine.risk.state_items()[3][0][:2] == (ACME, True)
    # the ask moves up: the engine sends no national best bid, so the gateway cannot test it
    acts = run(engine, venue, md(feed.packet(feed.add(ACME, "S", 500, 1_000_000)), now + 1), now + 1)
    moved = [d for d in decisions(acts) if d["side"] == Side.SELL]
    assert moved and all(d["check_id"] == CheckId.SHORT_SALE_PRICE_TEST for d in moved)
    assert not [o for o in orders(acts) if o.intent.side is Side.SELL
                and o.intent.kind is not OrderKind.CANCEL and wire_side(o) == "T"]
