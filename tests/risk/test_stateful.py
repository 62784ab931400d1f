"""Random sequences of faults, recoveries, operator commands, orders, fills and cancels.

Invariants: no order is allowed while any fault is active (including inputs gone quiet, and a
stale book for orders on that symbol); every cancel is allowed; an on-report fault latches at once,
an on-order fault only when an order is presented while it is active, and a latch holds until an
operator re-enables after the faults cleared — except that a clean reconciliation releases its own
latch when no other reason latched; while nothing latched, trading resumes by itself; the operator
is refused while a fault (or a silent clock) remains.
"""
from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mm_core.risk import CheckId, FaultsActive, InvalidTransition, TradingState
from mm_core.types import OrderKind, Side
from tests.risk.conftest import FAIR, MS, T0, cancel, make_gateway, order

FAULT_INJECTORS = {
    "journal": lambda gw, now, bad: gw.on_journal_health(not bad, now),
    "clock": lambda gw, now, bad: gw.on_clock(None if bad else True, now),
    "clock-off": lambda gw, now, bad: gw.on_clock(not bad, now),
    "reconcile": lambda gw, now, bad: gw.on_reconciled(not bad, now),
    "unknown-outcome": lambda gw, now, bad: gw.on_order_state(None, 2 if bad else 0, now),
    "book": lambda gw, now, bad: gw.on_market(1, FAIR, FAIR, bad, now),
    "book-2": lambda gw, now, bad: gw.on_market(2, FAIR, FAIR, bad, now),
    "bad-price": lambda gw, now, bad: gw.on_market(1, float("nan") if bad else FAIR, FAIR, False, now),
}
LATCHES_ON_REPORT = {"journal", "reconcile", "unknown-outcome"}
SYMBOL_FAULTS = {"book": 1, "bad-price": 1, "book-2": 2}      # deny only orders on their symbol
LATCHED = (TradingState.REDUCING, TradingState.HALTED)


class GatewayMachine(RuleBasedStateMachine):
    @initialize(latch=st.sampled_from(["HALTED", "REDUCING"]))
    def start(self, latch):
        self.gw = make_gateway(feeds=((1, FAIR, FAIR), (2, FAIR, FAIR)), latch_state=latch,
                               throttle={"max_fills": 20}, rates={"max_submits": 30, "max_modifies": 30},
                               defaults={"max_position": 2000})
        self.now = T0
        self.faults: set[str] = set()
        self.quiet_clock = False        # no clock sample for longer than its max age
        self.quiet_market: set[int] = set()   # symbols without market data for longer than its max age
        self.latched_by: set[str] = set()     # why the state must be latched now
        self.fills: list[int] = []            # fill times since the operator last enabled
        self.tokens: list[str] = []

    def _refresh(self):
        if not {"clock", "clock-off"} & self.faults:
            self.gw.on_clock(True, self.now)
        self.gw.on_market(1, float("nan") if "bad-price" in self.faults else FAIR, FAIR,
                          "book" in self.faults, self.now)
        self.gw.on_market(2, FAIR, FAIR, "book-2" in self.faults, self.now)
        self.quiet_clock = False
        self.quiet_market = set()

    def _blocking(self, symbol_id: int) -> set[str]:
        """The faults that must deny an order on this symbol now."""
        return {f for f in self.faults if SYMBOL_FAULTS.get(f, symbol_id) == symbol_id}

    @rule(fault=st.sampled_from(sorted(FAULT_INJECTORS)))
    def inject(self, fault):
        FAULT_INJECTORS[fault](self.gw, self.now, True)
        self.faults.add(fault)
        if fault in LATCHES_ON_REPORT:
            self.latched_by.add(fault)

    @rule(fault=st.sampled_from(sorted(FAULT_INJECTORS)))
    def clear(self, fault):
        # the two faults of symbol 1's market feed clear together: one on_market call says both
        cleared = {"book", "bad-price"} if fault in ("book", "bad-price") else {fault}
        for name in sorted(cleared & self.faults) or [fault]:
            FAULT_INJECTORS[name](self.gw, self.now, False)
        self.faults -= cleared
        if fault == "reconcile":            # a clean reconciliation releases its own latch
            self.latched_by.discard("reconcile")
        if fault in ("clock", "clock-off"):
            self.faults -= {"clock", "clock-off"}
            self.quiet_clock = False
        if fault in SYMBOL_FAULTS:          # that symbol's market data arrived just now
            self.quiet_market.discard(SYMBOL_FAULTS[fault])

    @rule()
    def timer(self):
        self.gw.on_timer(self.now)

    @rule(ms=st.integers(1, 400))
    def tick(self, ms):
        self.now += ms * MS
        self._refresh()

    @rule()
    def go_quiet(self):
        self.now += 3001 * MS           # past both the clock and the market max age
        self.quiet_clock = True
        self.quiet_market = {1, 2}

    @rule(side=st.sampled_from([Side.BUY, Side.SELL]), qty=st.integers(1, 300),
          offset=st.integers(-5000, 5000), symbol_id=st.sampled_from([1, 2]),
          kind=st.sampled_from([OrderKind.ENTER, OrderKind.REPLACE, OrderKind.MODIFY]))
    def submit(self, side, qty, offset, symbol_id, kind):
        orig = self.tokens[-1] if self.tokens and kind is not OrderKind.ENTER else ""
        intent = order(symbol_id=symbol_id, side=side, qty=qty, price=FAIR + offset, kind=kind,
                       orig_token=orig)
        decision = self.gw.check(intent, self.now, "B" if side is Side.BUY else "T")
        blocking = self._blocking(symbol_id)
        if blocking or self.quiet_clock or symbol_id in self.quiet_market:
            assert not decision.allowed, (self.faults, decision)
            if blocking - LATCHES_ON_REPORT or self.quiet_clock or symbol_id in self.quiet_market:
                # an order hit an on-order fault: latched until the operator (the on-report
                # faults it met latched when reported, and reconciliation may release its own)
                self.latched_by.add("order")
        elif not self.latched_by and decision.allowed is False:
            # nothing latched and no fault: only a limit may deny, never the trading state
            assert decision.check not in (CheckId.TRADING_HALTED, CheckId.REDUCE_ONLY), decision
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
        self.fills.append(self.now)
        lim = self.gw.limits
        if sum(t > self.now - lim.throttle_window_ns for t in self.fills) > lim.throttle_max_fills:
            self.latched_by.add("throttle")

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
        self.latched_by.clear()
        self.fills.clear()

    @rule(on=st.booleans())
    def safe_mode(self, on):
        try:
            self.gw.set_safe_mode(on, "guard", "flow", self.now)
        except InvalidTransition:
            assert self.gw.state in LATCHED

    @rule()
    def kill(self):
        self.gw.kill("all", 0, "ops", "drill", self.now)
        self.latched_by.add("kill")

    @invariant()
    def latched_while_required(self):
        if self.latched_by:
            assert self.gw.state in LATCHED, self.latched_by
        elif self.gw.state is not TradingState.SAFE_MODE:
            assert self.gw.state is TradingState.ACTIVE       # transient faults alone never latch
        expected = set(self.faults)
        if "clock-stale" in self.gw.faults:    # the timer saw a quiet clock
            assert self.quiet_clock or {"clock", "clock-off"} & self.faults
            expected.add("timer")
        assert bool(expected) == bool(self.gw.faults)

    @invariant()
    def events_are_transitions(self):
        for event in self.gw.drain_events():
            assert event.from_state is not event.to_state


GatewayMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                            deadline=None)
TestGateway = GatewayMachine.TestCase
