"""A venue message the OMS cannot apply (an execution of more than the order has left, of an
unknown token) halts trading, pulls everything, journals what was not booked, and keeps the
gateway closed until a reconciliation with the venue says the inventory is right again: an
operator cannot re-enable on a position the engine knows may be wrong."""
from journal.catalogue import RecordType, unpack_json
from mm_core.events import JournalNote, OperatorCommand, Reconciled, SendOrder, VenueMessage
from mm_core.protocol import ouch, soupbintcp
from mm_core.risk import TradingState
from mm_core.types import OrderKind
from tests.mm_core.test_gateway_answers import quoting
from tests.mm_core.test_modify import mine
from tests.mm_core.wire import MS


def executed(token: str, shares: int, price: int, match: int, now: int) -> VenueMessage:
    return VenueMessage(soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(
        ouch.Executed(now, token, shares, price, "A", match)))), now)


def alerts(actions) -> dict[str, str]:
    out = {}
    for a in actions:
        if isinstance(a, JournalNote) and a.rtype is RecordType.METRICS:
            doc = unpack_json(a.payload)
            if "alert" in doc:
                out[doc["alert"]] = doc["detail"]
    return out


def test_an_execution_the_oms_cannot_book_latches_until_reconciled():
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    now += MS
    acts = engine.on_event(executed(bid.token, bid.shares + 300, bid.price, 77, now))
    risk = engine.risk
    assert risk.state is TradingState.HALTED
    assert {a.intent.kind for a in acts if isinstance(a, SendOrder)} == {OrderKind.CANCEL}
    detail = alerts(acts)["halt"]
    assert bid.token in detail and f"{bid.shares + 300}@{bid.price}" in detail and "77" in detail
    assert "unreconciled" in risk.faults and "unreconciled" in risk.latch_reasons
    # the operator cannot put it back to trading on an inventory that may be wrong
    acts = engine.on_event(OperatorCommand(now + 1, "enable", "ops", "looks fine"))
    assert "operator-refused" in alerts(acts) and risk.state is TradingState.HALTED
    # a clean reconciliation with the venue clears the fault; the halt still needs the operator
    acts = engine.on_event(Reconciled(now + 2, True))
    assert "unreconciled" not in risk.faults and risk.state is TradingState.HALTED
    assert "still-latched" in alerts(acts)
    engine.on_event(OperatorCommand(now + 3, "enable", "ops", "reconciled"))
    assert risk.state is TradingState.ACTIVE


def test_an_execution_of_an_unknown_token_is_journaled_with_its_details():
    engine, venue, now = quoting()
    now += MS
    acts = engine.on_event(executed("ZZ000000000099", 100, 999_800, 78, now))
    assert engine.risk.state is TradingState.HALTED and "unreconciled" in engine.risk.faults
    detail = alerts(acts)["halt"]
    assert "ZZ000000000099" in detail and "100@999800" in detail
