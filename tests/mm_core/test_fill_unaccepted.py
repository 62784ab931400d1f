"""An Executed of an order the venue never accepted (OUCH 4.2 sends Accepted ahead of any Executed
on the sequenced stream) is an impossible transition: nothing is booked, trading halts and the halt
is journaled — whether the order is still pending-new, a cancel of it is in flight, or it timed out
to outcome-unknown. The quote guard never hears of such a fill either."""
import pytest

from mm_core.events import SendOrder, Timer
from mm_core.oms import InvalidTransition, OrderState
from mm_core.protocol import moldudp64
from mm_core.risk import TradingState
from mm_core.types import OrderKind
from tests.mm_core.test_md_faults import compiled_or_not, quoting
from tests.mm_core.test_oms_halt import alerts, executed
from tests.mm_core.wire import ACME, MS, S, md


def in_flight(engine, how: str):
    """The engine's bid, entered and never answered, left as `how` says."""
    bid = next(o for o in engine.oms.live.values() if o.symbol_id == ACME and o.side.name == "BUY")
    if how == "cancelling":            # a stray packet makes the book stale: the quotes are pulled
        engine.on_event(md(moldudp64.encode(moldudp64.Heartbeat("SESSION00X", 5)), S + 2 * MS))
        assert bid.state is OrderState.PENDING_CANCEL and bid.cancel_sent
    elif how == "unknown":
        engine.on_event(Timer(S + MS + engine.cfg.ack_timeout_ns + MS))
        assert bid.state is OrderState.UNKNOWN
    else:
        assert bid.state is OrderState.PENDING_NEW
    assert not bid.acked
    return bid


@compiled_or_not
@pytest.mark.parametrize("how", ["pending-new", "cancelling", "unknown"])
def test_a_fill_of_an_order_never_accepted_halts_and_is_not_booked(compiled, how):
    engine, _, _ = quoting(compiled, "SESSION001")
    bid = in_flight(engine, how)
    leaves, position = bid.leaves, list(engine.inventory.position)
    now = engine.now + MS
    acts = engine.on_event(executed(bid.token, 100, bid.price, 91, now))
    assert engine.risk.state is TradingState.HALTED and "unreconciled" in engine.risk.faults
    detail = alerts(acts)["halt"]
    assert "never accepted" in detail and bid.token in detail
    assert bid.leaves == leaves and bid.filled == 0 and engine.counts["fills"] == 0
    assert bid.state is not OrderState.FILLED and bid.state is not OrderState.PARTIALLY_FILLED
    assert list(engine.inventory.position) == position
    # the guard's pulls never went out for it: only the halt's cancels of what still rests
    assert all(a.intent.kind is OrderKind.CANCEL for a in acts if isinstance(a, SendOrder))


def test_the_oms_refuses_a_fill_of_an_order_never_accepted_in_each_state():
    engine, _, _ = quoting(False, "SESSION001")
    bid = in_flight(engine, "cancelling")
    with pytest.raises(InvalidTransition, match="pending-cancel -> fill of an order never accepted"):
        engine.oms.on_executed(bid.token, 100, engine.now)
    engine.oms.on_accepted(bid.token, 7, engine.now)      # once accepted, a fill crossing the cancel books
    assert engine.oms.on_executed(bid.token, 100, engine.now).fills_after_cancel == 1
