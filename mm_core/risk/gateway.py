"""The fail-closed pre-trade risk gateway: every order action passes `check()` before it is sent.

Owns the trading state, the inputs the checks need (market, fills, working orders, clock, journal,
reconciliation, option parameters) with their timestamps, and the sliding windows (the order
path's rate, drift and duplicate windows in C by default: mm_core.risk.windows; the Python ones,
compiled=False, are the reference); Reg SHO's state and rules are mm_core.risk.regsho's, which it
calls for a sell that needs them. Sans-io: time arrives as `now_ns`; it never reads a clock, file or
socket and knows nothing of OUCH or the journal.
When a fault latches the state is mm_core.risk.faults.LATCH_POLICY: on report (journal, unknown
outcome, reconciliation, defects, throttle) or only when an order hits it (stale book per symbol,
market data, clock), so transient inputs resume trading by themselves once healthy again.
Its work is split by concern into mixins (gateway_checks, gateway_inputs, gateway_controls,
gateway_book; shared names in gateway_shared, per-symbol state in gateway_state); this module
holds its state, pickling, read-only views and the latches.
"""
from __future__ import annotations

from collections import deque

from mm_core.risk import windows
from mm_core.risk.checks import CheckId, RiskDecision
from mm_core.risk.errors import RiskError
from mm_core.risk.faults import LATCH_POLICY, Latch
from mm_core.risk.gateway_book import GatewayBook
from mm_core.risk.gateway_checks import GatewayChecks
from mm_core.risk.gateway_controls import GatewayControls
from mm_core.risk.gateway_inputs import GatewayInputs
from mm_core.risk.gateway_shared import (
    BOOK_STALE_BIT, FAULT_CHECKS, _ACTIVE, _DUP_PURGE, _F_CLOCK, _F_CLOCK_STALE, _F_JOURNAL,
    _F_UNRECONCILED, _HALTED, _INF, _SAFE, _latch_state,
)
from mm_core.risk.gateway_state import OpenOrder, _Group, _Symbol
from mm_core.risk.limits import Limits
from mm_core.risk.regsho import RegSho
from mm_core.risk.states import StateChange, StateMachine, TradingState, Trigger

__all__ = ["RiskGateway", "OpenOrder", "FAULT_CHECKS", "BOOK_STALE_BIT"]

_LATCH_ON_REPORT = {bit for bit, check in FAULT_CHECKS if LATCH_POLICY[check] is Latch.ON_REPORT}
_LATCHING = frozenset({Trigger.LATCH_HALT, Trigger.LATCH_REDUCE, Trigger.KILL})


def _newest_order_ns(state: dict):
    """The latest time in a pickled gateway's windows (rate, duplicates, drift queues), or -inf."""
    times = [*state.get("_submits", ()), *state.get("_modifies", ()), *state.get("_dup_last", {}).values()]
    for sym in state["_symbols"].values():
        times += [queue[-1][0] for queue in (*sym.drift_buy, *sym.drift_sell) if queue]
    return max(times, default=-_INF)


class RiskGateway(GatewayChecks, GatewayInputs, GatewayControls, GatewayBook):
    """Pre-trade checks plus the trading state; see mm_core.risk for the calling contract."""

    # when the clock, not flagged stale yet, turns stale (an instance attribute kept by on_clock,
    # on_timer and new limits; inf: no deadline). The engine compares each event's time with it to
    # see a clock that aged before any order meets it. A gateway restored from before the
    # attribute existed has this class default: the first event looks at once and sets it.
    clock_stale_at: float = -1
    # Slots for what check() reads: a plain instance of this many attributes keeps them in a
    # dict looked up by name on every access (CPython shares an instance dict's keys only up to
    # 30), several times per order. The __dict__ keeps the rest (clock_stale_at, the feed log's
    # scratch space) and anything a subclass or a drill adds.
    __slots__ = ("_latch_override", "_fsm", "_state", "_events", "_latch_reasons", "_symbols",
                 "_groups", "_working", "_replacing", "_replaced_by", "_submits", "_modifies",
                 "_cancels", "_fills", "_dup_last", "_dup_purge_at", "_cash", "_gross", "_net",
                 "_work_buy", "_work_sell", "_work_gross", "_pnl_peak", "_clock_ns", "_clock_due",
                 "_unknown_outcome", "_stale_books", "_faults", "_regsho", "_limits", "_latch_to",
                 "_loss_floor", "_allowed", "_halted", "_safe_requested", "_scoped_kills", "_win",
                 "_order_ns", "__dict__")
    # compiled (the default): the rate windows, drift queues and duplicate table live in one C
    # object, _win (mm_core.risk.windows), and the Python ones are its snapshot form; False, or
    # None in _win: check() keeps them in Python, the reference (an instance attribute when False)
    _compiled = True

    def __init__(self, limits: Limits, *, latch_state: "str | TradingState | None" = None,
                 compiled: bool = True) -> None:
        if not isinstance(limits, Limits):
            raise RiskError("RiskGateway needs a Limits (use Limits.from_toml)")
        self._latch_override = None if latch_state is None else _latch_state(latch_state)
        self._fsm = StateMachine(_ACTIVE)
        self._state = _ACTIVE            # mirror of self._fsm.state for the order path
        self._events: list[StateChange] = []
        # why the state is latched, oldest first: every check that latched (or would have, had the
        # state not been latched already) since the last operator enable
        self._latch_reasons: dict[CheckId, str] = {}
        self._symbols: dict[int, _Symbol] = {}
        self._groups: dict[int, _Group] = {}
        # token -> (symbol, is_buy, remaining qty, price4): a tuple, cheaper to make than an object
        self._working: dict[str, list] = {}
        # replaces the venue has not answered: replacement token -> [original token, its remaining
        # qty, its price4, the replacement's qty, symbol, is_buy], and original -> replacement
        self._replacing: dict[str, list] = {}
        self._replaced_by: dict[str, str] = {}
        self._submits: deque = deque()
        self._modifies: deque = deque()
        self._cancels: deque = deque()
        self._fills: deque = deque()
        self._dup_last: dict[tuple, int] = {}    # (symbol, is_buy, price, qty) -> last allowed ns
        self._dup_purge_at = _DUP_PURGE
        self._order_ns = -_INF           # the latest time an order met the windows at
        self._cash = 0                   # price4 x shares, from fills
        self._gross = 0                  # sum of |notional|
        self._net = 0                    # sum of notional
        # every symbol's working notional: per side, and the larger side's summed over symbols
        # (what working orders can add to gross notional at worst)
        self._work_buy = 0
        self._work_sell = 0
        self._work_gross = 0
        self._pnl_peak = 0
        self._clock_ns = -1              # last compliant clock sample, -1 = none yet
        self._unknown_outcome = 0
        self._stale_books: set[int] = set()
        self._faults = _F_CLOCK | _F_JOURNAL | (0 if limits.start_reconciled else _F_UNRECONCILED)
        self._regsho = RegSho()
        # the operator's SAFE_MODE, remembered through a latch: a clean reconciliation returns to
        # it (only the operator lifts it); the scoped kills in force, (scope, scope_id) pairs
        self._safe_requested = False
        self._scoped_kills = frozenset()
        self._win = None
        if not compiled:
            self._compiled = False
        self._install_limits(limits)

    def __setstate__(self, state) -> None:
        """Loads a pickled gateway (engine snapshots): (instance dict, slots) as pickled now, or
        one dict as pickled before the slots, while the Reg SHO state was its own (the trading
        day, and each symbol's, which _Symbol.__setstate__ takes) or before the operator's safe
        mode and the scoped kills were kept, too."""
        if isinstance(state, tuple):
            state = {**(state[0] or {}), **(state[1] or {})}
        else:
            state = dict(state)
        if "_regsho" not in state:
            state["_regsho"] = RegSho({symbol_id: sym.sho for symbol_id, sym in state["_symbols"].items()},
                                      state.pop("_locate_day", 0))
        state.setdefault("_safe_requested", False)
        state.setdefault("_scoped_kills", frozenset())
        if "_order_ns" not in state:     # not kept before: the latest time the windows hold
            state["_order_ns"] = _newest_order_ns(state)
        for name, value in state.items():
            setattr(self, name, value)
        self._clock_due = self._clock_ns + self._limits.max_clock_age_ns    # not kept before
        if "_work_gross" not in state:
            # pickled while a replace in flight counted the larger of its two orders: both count
            self._work_buy = self._work_sell = self._work_gross = 0
            for replacement, pending in self._replacing.items():
                if replacement in self._working:
                    self._recount(replacement, pending[1] + pending[3])
            self._recount_work()
        self._win = None
        self._compile()

    def __getstate__(self):
        """(instance dict, slots) as pickled before the C windows: their snapshot form, the
        reference's deques and dict (each symbol's drift queues are written back into it)."""
        attrs, slots = object.__getstate__(self)
        slots = dict(slots)
        win = slots.pop("_win", None)
        if win is not None:
            windows.export(win, self, symbols_only=True)
            slots.update(windows.gateway_windows(win))
        return attrs, slots

    def _compile(self) -> None:
        """The windows into a C object when compiled and every value fits it (else they stay in
        Python); the Python ones are emptied, to be rewritten from the C for a snapshot."""
        if not self._compiled:
            return
        win = windows.new(self._limits)
        if win is None or not windows.load(win, self):
            return
        self._win = win
        self._submits, self._modifies, self._dup_last = deque(), deque(), {}
        for sym in self._symbols.values():
            sym.drift_buy = (deque(), deque())
            sym.drift_sell = (deque(), deque())

    def _decompile(self) -> None:
        """From now on the Python windows, as the C object leaves them (a value out of its range)."""
        win, self._win = self._win, None
        windows.export(win, self)

    @property
    def compiled(self) -> bool:
        """Whether check() runs its windows in C now."""
        return self._win is not None

    # ----------------------------------------------------------------------------- properties
    @property
    def state(self) -> TradingState:
        return self._fsm.state

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def limits_version(self) -> int:
        return self._limits.version

    @property
    def cancel_verdict(self) -> RiskDecision:
        """What check() returns for a cancel now under the cancel-rate limit, without counting
        one: its trading state and limits version are every cancel's, over the limit too."""
        return self._allowed

    @property
    def size_multiplier(self) -> float:
        """What the engine multiplies its quote sizes by (below 1 only in SAFE_MODE)."""
        return self._limits.safe_size_multiplier if self._fsm.state is _SAFE else 1.0

    @property
    def spread_multiplier(self) -> float:
        """What the engine multiplies its quoted spread by (above 1 only in SAFE_MODE)."""
        return self._limits.safe_spread_multiplier if self._fsm.state is _SAFE else 1.0

    @property
    def fault_bits(self) -> int:
        """The fail-closed faults active now as FAULT_CHECKS bits (0: none; BOOK_STALE_BIT alone:
        only books are stale): what `faults` names, without building the list (the order path)."""
        return self._faults

    @property
    def faults(self) -> list[str]:
        """Names of the fail-closed faults active now (inputs that have not reported healthy)."""
        return [check.label for bit, check in FAULT_CHECKS if self._faults & bit]

    @property
    def clock_fault(self) -> str:
        """The clock fault in force once a clock sample has been compliant ("" when healthy, or
        before the first compliant sample): not compliant, or stale (seen by on_timer)."""
        if self._clock_ns < 0 or not self._faults & (_F_CLOCK | _F_CLOCK_STALE):
            return ""
        return (CheckId.CLOCK_NONCOMPLIANT if self._faults & _F_CLOCK else CheckId.CLOCK_STALE).label

    @property
    def latch_reasons(self) -> list[str]:
        """Names of the checks holding the latch (empty when not latched)."""
        return [check.label for check in self._latch_reasons]

    @property
    def latch_details(self) -> dict[str, str]:
        """The checks holding the latch, label -> why (the reason each first latched with)."""
        return {check.label: why for check, why in self._latch_reasons.items()}

    @property
    def pnl(self) -> int:
        """Realised plus marked-to-fair P&L, price4."""
        return self._cash + self._net

    @property
    def open_order_count(self) -> int:
        return len(self._working)

    def working_orders(self) -> dict[str, tuple[int, bool, int, int]]:
        """token -> (symbol, is_buy, counted qty, price4) of every order the gateway counts."""
        return {token: (o[0].symbol_id, o[1], o[2], o[3]) for token, o in self._working.items()}

    def position(self, symbol_id: int) -> int:
        sym = self._symbols.get(symbol_id)
        return 0 if sym is None else sym.position

    def order_room(self, symbol_id: int, is_buy: bool, price: int, freed: int = 0) -> int:
        """The most shares one new order on this side at `price` may carry and pass check()'s
        size (safe mode's cut included), value and position checks now, every working order on
        the side counted as check() counts them, less `freed` shares of them (orders the caller
        would cancel first); 0 when none would. Read-only: what the engine cuts an order it sizes
        itself (a hedge) to, rather than be denied asking for more."""
        if price <= 0 or symbol_id not in self._symbols:
            return 0
        max_qty, max_value = self.order_caps(symbol_id)
        room = min(max_qty, max_value // price, self.position_room(symbol_id, is_buy, freed))
        return room if room > 0 else 0

    def order_caps(self, symbol_id: int) -> tuple[int, int]:
        """(shares, value): what check()'s size and value checks take of one new order in the
        symbol now. Shares: its max_order_qty, cut by safe mode's multiplier in SAFE_MODE as
        check() cuts it. Value: its max_order_value over its multiplier (price4 x shares), so an
        order passes the value check exactly when qty x price is at most it (floor division by
        positive integers nests: V // (price * m) == V // m // price). Read from the limits in
        force (check() keeps the symbol's copy of them), at a multiplier of 1 for a symbol the
        gateway has not seen. Read-only: what the engine sizes its quotes within, and
        order_room its hedges."""
        sym = self._symbols.get(symbol_id)
        slim = self._limits.for_symbol(symbol_id)
        max_qty = slim.max_order_qty
        if self._state is _SAFE:
            max_qty = int(max_qty * self._limits.safe_size_multiplier)
        return max_qty, slim.max_order_value // (1 if sym is None else sym.multiplier)

    def position_room(self, symbol_id: int, is_buy: bool, freed: int = 0) -> int:
        """The most shares one new order on this side may carry and pass check()'s position
        limit now: max_position less the position and every working order on the side as check()
        counts them (a replace's original included until the venue answers), plus `freed` shares
        of them; 0 or less when none would (0 for a symbol the gateway does not know). Read from
        the limits in force, as order_caps: a defect in the symbol's copy check() reads is left
        for check() to meet and latch on (the engine sizes its quotes by this, so a room of 0
        there would keep every order from reaching it). Read-only."""
        sym = self._symbols.get(symbol_id)
        if sym is None:
            return 0
        try:
            cap = self._limits.for_symbol(symbol_id).max_position
        except Exception:   # fail closed: a defect in the limits in force leaves no room
            return 0
        return cap + freed - (sym.position + sym.open_buy if is_buy else sym.open_sell - sym.position)

    def duplicate_until(self, symbol_id: int, is_buy: bool, price: int, qty: int) -> int:
        """The event time from which check()'s duplicate check takes an ENTER of this symbol,
        side, price and size again (the last such ENTER allowed plus the window); -1 when it
        takes one now whatever the time (none recorded, or the check off). Read-only: what the
        engine waits out instead of sending an enter only to have it denied."""
        window = self._limits.duplicate_window_ns
        if not window:
            return -1
        key = (symbol_id, is_buy, price, qty)
        last = self._dup_last.get(key) if self._win is None else windows.duplicate_last(self._win, key)
        return -1 if last is None else last + window

    def locates_used(self, symbol_id: int) -> int:
        """Shares of the symbol sold short by fills on the trading day held (their locates used)."""
        return self._regsho.locates_used(symbol_id)

    @property
    def trading_day(self) -> int:
        """The venue's trading day the used locates belong to (days since 1970-01-01), 0 unknown."""
        return self._regsho.day

    def greeks(self, underlying_id: int) -> tuple[float, float, float]:
        """(delta, gamma, vega) of an underlying's group in limit units; zeros if unknown."""
        group = self._groups.get(underlying_id)
        return (0.0, 0.0, 0.0) if group is None else (group.delta, group.gamma, group.vega)

    def scenario_worst_loss(self, underlying_id: int) -> float:
        """Largest scenario loss of the group now, currency (positive = loss)."""
        group = self._groups.get(underlying_id)
        if group is None or not group.scenario:
            return 0.0
        return max(0.0, -min(group.scenario))

    def state_items(self) -> tuple:
        """The order-related state replay must reproduce (for the engine's state hash): working
        orders as counted, replaces in flight, fault bits, Reg SHO's state and trading day."""
        regsho = self._regsho
        return (sorted(self.working_orders().items()), sorted(self._replacing.items()), self._faults,
                regsho.state_items(), self._safe_requested, sorted(self._scoped_kills), regsho.day)

    def drain_events(self) -> list[StateChange]:
        """State changes since the last drain, oldest first, for the engine to journal."""
        events, self._events = self._events, []
        return events

    def _set_fault(self, bit: int, now_ns: int) -> None:
        """Marks an input unhealthy; latches now only if the policy says so for this fault."""
        self._faults |= bit
        if bit in _LATCH_ON_REPORT:
            for fault_bit, check in FAULT_CHECKS:
                if fault_bit == bit:
                    self._latch(check, self._fault_detail(bit), now_ns, "risk-gateway")

    def _clear_fault(self, bit: int) -> None:
        self._faults &= ~bit

    def _latch(self, check: CheckId, reason: str, now_ns: int, actor: str, halt: bool = False) -> None:
        trigger = Trigger.LATCH_HALT if halt or self._latch_to is _HALTED else Trigger.LATCH_REDUCE
        self._fire(trigger, check, f"{check.label}: {reason}", actor, now_ns)

    def _fire(self, trigger: Trigger, check: CheckId, reason: str, actor: str, now_ns: int) -> None:
        before, after = self._fsm.fire(trigger)
        self._state = after
        if trigger in _LATCHING:
            self._latch_reasons.setdefault(check, reason)
        elif after is _ACTIVE:
            self._latch_reasons.clear()
        if before is not after:
            self._events.append(StateChange(before, after, trigger, reason, actor, now_ns, int(check)))
            self._refresh_allowed()
