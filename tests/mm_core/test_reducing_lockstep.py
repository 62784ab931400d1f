"""REDUCING in lockstep: with the gateway configured to latch REDUCING, a fault latches it partway
through a seeded session (once a position is held), and the rest of the session quotes only the reducing sides, sized by the room
the gateway leaves (Engine._reduce_room, on the Python path in both engines), and hedges only
what reduces the hedge instrument's position: nothing asked is refused as reduce-only. The
compiled and the reference engine must still decide identically, event by event."""
import pytest

from journal.catalogue import RecordType
from mm_core.events import JournalNote
from mm_core.oms import OrderState
from mm_core.risk import TradingState
from mm_core.risk.checks import CheckId
from mm_core.types import OrderKind
from tests.mm_core import test_sig_engine
from tests.mm_core.test_reducing_sizes import REDUCING_LIMITS
from tests.mm_core.test_sig_engine import CONFIGS, Lockstep, drive
from tests.mm_core.wire import SendOrder, gateway


_ASKED = (OrderState.PENDING_MODIFY, OrderState.PENDING_CANCEL)


class Watched(Lockstep):
    """Lockstep that also records, after each event in REDUCING, whether a quote side's working
    orders could flip a position if they all filled."""

    flips = 0
    reducing_events = 0
    reducing_orders = 0
    reduce_denials = 0          # quotes or hedges asked that the gateway refused as reduce-only

    def on_event(self, event) -> list:
        k = self.kernel
        # latched once a position is held whose reducing side the quote guard lets quote (a
        # blocked side sends nothing to look at)
        if k.risk.state is TradingState.ACTIVE and self.events > 500 and any(
                k.inventory.position[s] and not k.guards[s].side_blocked(k.inventory.position[s] < 0, k.now)
                for s in k.quoted):
            for engine in (k, self.reference):      # a fault latches, then clears
                engine.risk._latch(CheckId.BOOK_STALE, "a fault that has since cleared",
                                   engine.now, "test")
        out = super().on_event(event)
        if k.risk.state is TradingState.REDUCING:
            self.reducing_events += 1
            self.reducing_orders += sum(1 for a in out if type(a) is SendOrder and
                                        a.intent.kind is not OrderKind.CANCEL)
            self.reduce_denials += sum(1 for a in out if type(a) is JournalNote and
                                       a.rtype == RecordType.RISK_DECISION and "reduce-only" in a.summary)
            for s in k.quoted:
                pos = k.risk.position(s)
                buys = sells = 0
                for token, (sym, is_buy, qty, _) in k.risk.working_orders().items():
                    order = k.oms.orders.get(token)
                    if order is not None and order.state in _ASKED:
                        continue            # sized down or pulled already: the venue has not answered
                    if sym == s:
                        if is_buy:
                            buys += qty
                        else:
                            sells += qty
                self.flips += (pos < 0 and pos + buys > 0) or (pos > 0 and pos - sells < 0)
        return out


@pytest.mark.parametrize("seed", [1, 2])
def test_reducing_sessions_in_lockstep(monkeypatch, seed):
    monkeypatch.setattr(test_sig_engine, "gateway", lambda: gateway(REDUCING_LIMITS))
    config = CONFIGS["calibrating-hedging"]
    engines = Watched(config)
    drive(seed, 1_500, config, engines)
    k, ref = engines.kernel, engines.reference
    assert engines.reducing_events > 100 and engines.reducing_orders > 0
    assert k.state_hash() == ref.state_hash()
    assert k.summary() == ref.summary()
    assert engines.flips == 0 and engines.reduce_denials == 0
