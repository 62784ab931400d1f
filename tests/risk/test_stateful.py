"""Random sequences of faults, recoveries, operator commands, orders, fills and cancels.

Invariants: no order is allowed while any fault is active (including inputs gone quiet); every
cancel is allowed; a fault latches the state until an operator re-enables after it cleared; the
operator is refused while a fault (or a silent clock) remains.
"""
from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mm_core.risk import FaultsActive, InvalidTransition, TradingState
from mm_core.types import OrderKind, Side
from tests.risk.conftest import FAIR, MS, T0, cancel, make_gateway, order

FAULT_INJECTORS = {
    "journal": lambda gw, now, bad: gw.on_journal_health(not bad, now),
    "clock": lambda gw, now, bad: gw.on_clock(None if bad else True, now),
    "reconcile": lambda gw, now, bad: gw.on_reconciled(not bad, now),
    "unknown-outcome": lambda gw, now, bad: gw.on_order_state(None, 2 if bad else 0, now),
    "book": lambda gw, now, bad: gw.on_market(1, FAIR, FAIR, bad, now),
}
LATCHED = (TradingState.REDUCING, TradingState.HALTED)


class GatewayMachine(RuleBasedStateMachine):
    @initialize(latch=st.sampled_from(["HALTED", "REDUCING"]))
    def start(self, latch):
        self.gw = make_gateway(latch_state=latch, throttle={"max_fills": 20},
                               rates={"max_submits": 30, "max_modifies": 30},
                               defaults={"max_position": 2000})
        self.now = T0
        self.faults: set[str] = set()
        self.quiet_clock = False        # no clock sample for longer than its max age
        self.quiet_market = False       # no market data for longer than its max age
        self.must_stay_latched = False
        self.tokens: list[str] = []

    def _refresh(self):
        if "clock" not in self.faults:
            self.gw.on_clock(True, self.now)
        self.gw.on_market(1, FAIR, FAIR, "book" in self.faults, self.now)
        self.quiet_clock = self.quiet_market = False

    @rule(fault=st.sampled_from(sorted(FAULT_INJECTORS)))
    def inject(self, fault):
        FAULT_INJECTORS[fault](self.gw, self.now, True)
        self.faults.add(fault)
        self.must_stay_latched = True

    @rule(fault=st.sampled_from(sorted(FAULT_INJECTORS)))
    def clear(self, fault):
        FAULT_INJECTORS[fault](self.gw, self.now, False)
        self.faults.discard(fault)
        if fault == "clock":
            self.quiet_clock = False
        if fault == "book":
            self.quiet_market = False

    @rule(ms=st.integers(1, 400))
    def tick(self, ms):
        self.now += ms * MS
        self._refresh()

    @rule()
    def go_quiet(self):
        self.now += 3001 * MS           # past both the clock and the market max age
        self.quiet_clock = self.quiet_market = True

    @rule(side=st.sampled_from([Side.BUY, Side.SELL]), qty=st.integers(1, 300),
          offset=st.integers(-5000, 5000),
          kind=st.sampled_from([OrderKind.ENTER, OrderKind.REPLACE, OrderKind.MODIFY]))
    def submit(self, side, qty, offset, kind):
        orig = self.tokens[-1] if self.tokens and kind is not OrderKind.ENTER else ""
        intent = order(side=side, qty=qty, price=FAIR + offset, kind=kind, orig_token=orig)
        decision = self.gw.check(intent, self.now)
        if self.faults or self.quiet_clock or self.quiet_market:
            assert not decision.allowed, (self.faults, decision)
            self.must_stay_latched = True
        if decision.allowed:
            assert decision.state in (TradingState.ACTIVE, TradingState.SAFE_MODE,
                                      TradingState.REDUCING)
            self.tokens.append(intent.token)

    @rule()
    def cancel_one(self):
        assert self.gw.check(cancel(self.tokens[-1] if self.tokens else "T0"), self.now).allowed

    @rule(side=st.sampled_from([Side.BUY, Side.SELL]), qty=st.integers(1, 200))
    def fill(self, side, qty):
        token = self.tokens[-1] if self.tokens else ""
        self.gw.on_fill(1, side, qty, FAIR, self.now, token=token)
        if self.gw.state is TradingState.HALTED:
            self.must_stay_latched = True

    @precondition(lambda self: self.tokens)
    @rule()
    def done(self):
        self.gw.on_order_done(self.tokens.pop(0), self.now)

    @rule()
    def operator_enable(self):
        try:
            self.gw.operator_enable("ops", "recovered", self.now)
        except FaultsActive:
            assert self.faults or self.quiet_clock
            return
        except InvalidTransition:
            assert self.gw.state is TradingState.ACTIVE
            return
        assert not self.faults and not self.quiet_clock
        self.must_stay_latched = False

    @rule(on=st.booleans())
    def safe_mode(self, on):
        try:
            self.gw.set_safe_mode(on, "guard", "flow", self.now)
        except InvalidTransition:
            assert self.gw.state in LATCHED

    @rule()
    def kill(self):
        self.gw.kill("all", 0, "ops", "drill", self.now)
        self.must_stay_latched = True

    @invariant()
    def latched_while_required(self):
        if self.must_stay_latched:
            assert self.gw.state in LATCHED
        assert bool(self.faults) == bool(self.gw.faults)

    @invariant()
    def events_are_transitions(self):
        for event in self.gw.drain_events():
            assert event.from_state is not event.to_state


GatewayMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                            deadline=None)
TestGateway = GatewayMachine.TestCase
