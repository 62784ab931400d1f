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
"""
from __future__ import annotations

import math
import operator
from collections import deque
from dataclasses import dataclass
from typing import Iterable

from journal.catalogue import Side
from mm_core.risk.checks import CheckId, RiskDecision
from mm_core.risk.errors import FaultsActive, LimitsError, RiskError
from mm_core.risk.faults import LATCH_POLICY, Latch
from mm_core.risk.feedlog import FeedLog
from mm_core.risk.greekbatch import GroupPricer
from mm_core.risk.greeks import OptionParams, UnitRisk, scenario_grid, underlying_risk, unit_risk
from mm_core.risk.kill import KillOrder, KillScope, parse_scope, scope_matches
from mm_core.risk.limits import PRICE4, Limits, SymbolLimits
from mm_core.risk.regsho import RegSho, ShortSales
from mm_core.risk.states import StateChange, StateMachine, TradingState, Trigger
from mm_core.risk import windows
from mm_core._fastmd_cffi import lib as _lib
from mm_core.types import OrderIntent, OrderKind

__all__ = ["RiskGateway", "OpenOrder", "FAULT_CHECKS", "BOOK_STALE_BIT"]

_BUY = Side.BUY
_SELL = Side.SELL
_ENTER = OrderKind.ENTER
_REPLACE = OrderKind.REPLACE
_MODIFY = OrderKind.MODIFY
_CANCEL = OrderKind.CANCEL
_IOC = 0                   # OrderIntent.tif of an immediate-or-cancel order (OUCH time in force 0)
_ACTIVE = TradingState.ACTIVE
_SAFE = TradingState.SAFE_MODE
_REDUCING = TradingState.REDUCING
_HALTED = TradingState.HALTED

# Fail-closed faults held as bits; a set bit denies orders until the input reports healthy (every
# order for the global bits, orders on the stale symbols for _F_BOOK_STALE).
_INF = math.inf
_PLAIN = (int, float)      # types whose comparisons need no conversion on the market path
REPRICE_MOVE = 1e-4       # revalue options when the underlying moved 1 bp since the last time
REPRICE_NS = 1_000_000_000   # ... or a second passed (time decay)
_DUP_PURGE = 4096          # duplicate-detection keys kept before old ones are purged
_F_JOURNAL = 1
_F_CLOCK = 2
_F_UNRECONCILED = 4
_F_UNKNOWN_OUTCOME = 8
_F_BOOK_STALE = 16
_F_CLOCK_STALE = 32        # seen by on_timer; the order path also compares the clock's age itself
_F_GLOBAL = _F_JOURNAL | _F_CLOCK | _F_UNRECONCILED | _F_UNKNOWN_OUTCOME | _F_CLOCK_STALE
BOOK_STALE_BIT = _F_BOOK_STALE
FAULT_CHECKS: tuple[tuple[int, CheckId], ...] = (
    (_F_JOURNAL, CheckId.JOURNAL_UNHEALTHY),
    (_F_CLOCK, CheckId.CLOCK_NONCOMPLIANT),
    (_F_CLOCK_STALE, CheckId.CLOCK_STALE),
    (_F_UNRECONCILED, CheckId.UNRECONCILED),
    (_F_UNKNOWN_OUTCOME, CheckId.UNKNOWN_OUTCOME),
    (_F_BOOK_STALE, CheckId.BOOK_STALE),
)
_LATCH_ON_REPORT = {bit for bit, check in FAULT_CHECKS if LATCH_POLICY[check] is Latch.ON_REPORT}
_LATCHING = frozenset({Trigger.LATCH_HALT, Trigger.LATCH_REDUCE, Trigger.KILL})
_frk_check, _frk_commit, _FRK_RANGE = _lib.frk_check, _lib.frk_commit, _lib.FRK_RANGE
assert _lib.FRK_DUP_PURGE == _DUP_PURGE


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """A working order as the OMS sees it, for `on_order_state` snapshots."""

    token: str
    symbol_id: int
    side: Side
    price: int
    qty: int            # remaining quantity
    mark: str = ""      # a sell's OUCH side byte (S long, T short, E short exempt); "" unknown,
                        # which counts as short against the locates


class _Symbol:
    """Everything the gateway knows about one symbol; plain slots for cheap attribute access."""

    __slots__ = ("symbol_id", "fair", "reference", "md_ns", "book_stale", "position", "open_buy",
                 "open_sell", "limits", "notional", "multiplier", "option", "underlying_id", "under",
                 "risk", "group", "pnl_lo", "pnl_hi", "drift_buy", "drift_sell", "fair_band",
                 "reference_band", "drift_band", "headroom", "own_buys", "own_sells", "sho", "work_buy",
                 "work_sell", "fair_lo", "fair_hi", "reference_lo", "reference_hi")

    def __init__(self, symbol_id: int, limits: SymbolLimits, sho: ShortSales) -> None:
        self.symbol_id = symbol_id
        self.fair = 0                    # price4; 0 = never received
        self.reference = 0
        self.md_ns = 0
        self.book_stale = False
        self.position = 0
        self.open_buy = 0
        self.open_sell = 0
        # the working orders' notional per side as counted (qty x price x multiplier, price4 x
        # shares): the account-wide credit checks count every symbol's working orders
        self.work_buy = 0
        self.work_sell = 0
        self.limits = limits
        self.notional = 0                # position x fair x multiplier, price4 x shares
        self.multiplier = 1
        self.option: OptionParams | None = None
        self.under: _Symbol | None = None    # an option's underlying symbol
        self.underlying_id = symbol_id   # an underlying or plain symbol is its own group
        self.risk: UnitRisk | None = None
        self.group: _Group | None = None    # set when the symbol is an option or has options
        self.pnl_lo = 0.0                   # min and max of risk.scenario_pnl, for a cheap bound
        self.pnl_hi = 0.0
        self.headroom = -1.0                # |qty| this symbol may add before any Greek or scenario
                                            # limit could bind; below it the exact check is skipped
        self.fair_band = 0                  # collar half-widths in price4, set with each price
        self.reference_band = 0
        self.drift_band = 0
        self.bound_collars()
        # per side, monotonic deques of (ts, price) for the drift window's max and min: bids and
        # asks drift separately, so our own quoted spread is not mistaken for drift
        self.drift_buy: tuple[deque, deque] = (deque(), deque())
        self.drift_sell: tuple[deque, deque] = (deque(), deque())
        # our working orders' prices per side, token -> price4: an order that would execute
        # against one of them is a wash trade (self-trade prevention); a handful each
        self.own_buys: dict[str, int] = {}
        self.own_sells: dict[str, int] = {}
        # Reg SHO: the symbol's state in the gateway's RegSho (price test, markings of working
        # sells, locates used), read and written here by the order path
        self.sho = sho

    def __setstate__(self, state) -> None:
        """Loads a pickled symbol (engine snapshots), one pickled while its Reg SHO state was
        slots of its own (ssr, marks, short_filled) too: they become its ShortSales."""
        slots = dict((state[1] if isinstance(state, tuple) else state) or {})
        slots.setdefault("work_buy", 0)         # pickled before they existed: the gateway
        slots.setdefault("work_sell", 0)        # recounts them from its working orders
        if "sho" not in slots:
            slots["sho"] = ShortSales(slots.pop("ssr", False), slots.pop("marks", {}),
                                      slots.pop("short_filled", 0))
        for name, value in slots.items():
            setattr(self, name, value)
        self.bound_collars()                    # pickled before the bounds were kept

    def bound_collars(self) -> None:
        """The prices the fair and reference collars allow, from the prices and half-widths: the
        order path compares a price with them (a gap past a half-width is a price past a bound)."""
        self.fair_lo = self.fair - self.fair_band
        self.fair_hi = self.fair + self.fair_band
        self.reference_lo = self.reference - self.reference_band
        self.reference_hi = self.reference + self.reference_band


class _Group:
    """Aggregated Greeks and scenario P&L of one underlying and every option on it."""

    __slots__ = ("underlying_id", "members", "delta", "gamma", "vega", "scenario", "worst", "grid",
                 "priced_fair", "priced_ns", "pricer")

    def __init__(self, underlying_id: int) -> None:
        self.underlying_id = underlying_id
        self.members: list[int] = [underlying_id]
        self.delta = 0.0
        self.gamma = 0.0
        self.vega = 0.0
        self.scenario: list[float] = []
        self.worst = 0.0                     # min(scenario): the group's worst P&L, currency
        self.priced_fair = 0                 # underlying price4 and time of the last revaluation
        self.priced_ns = 0
        self.grid: tuple[tuple[float, float], ...] = ()
        self.pricer: GroupPricer | None = None   # the options and grid packed for the C revaluation

    def __setstate__(self, state) -> None:
        """Loads a pickled group (engine snapshots), one pickled before the pricer existed too:
        without a pricer, the next revaluation builds it."""
        self.pricer = None
        for part in (state,) if isinstance(state, dict) else state:     # (None, slots) as pickled
            for name, value in (part or {}).items():
                setattr(self, name, value)


def _latch_state(value) -> TradingState:
    if isinstance(value, TradingState) and value in (_HALTED, _REDUCING):
        return value
    if isinstance(value, str) and value.upper() in ("HALTED", "REDUCING"):
        return TradingState[value.upper()]
    raise RiskError(f"latch_state must be HALTED or REDUCING, got {value!r}")


class RiskGateway:
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

    def order_room(self, symbol_id: int, is_buy: bool, price: int) -> int:
        """The most shares one new order on this side at `price` may carry and pass check()'s
        size (safe mode's cut included), value and position checks now, every working order on
        the side counted as check() counts them; 0 when none would. Read-only: what the engine
        cuts an order it sizes itself (a hedge) to, rather than be denied asking for more."""
        sym = self._symbols.get(symbol_id)
        if sym is None or price <= 0:
            return 0
        slim = sym.limits
        room = slim.max_order_qty
        if self._state is _SAFE:
            room = int(room * self._limits.safe_size_multiplier)
        room = min(room, int(slim.max_order_value // (price * sym.multiplier)), slim.max_position - (
            sym.position + sym.open_buy if is_buy else sym.open_sell - sym.position))
        return room if room > 0 else 0

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

    # ------------------------------------------------------------------------ the order check
    def check(self, intent: OrderIntent, now_ns: int, mark: str | None = None,
              best_bid: int | None = None) -> RiskDecision:
        """Verdict on one order action. Never raises: a denial is the returned event.

        `mark`: the OUCH side byte the order goes out with: "B", or a sell's Reg SHO marking "S"
        (long), "T" (short) or "E" (short exempt); None: the byte of intent.side (B, or S: long).
        `best_bid`: the national best bid (price4, 0 none) when the engine sees the Rule 201 price
        test in force; a short sale on a symbol the gateway knows restricted needs it.
        Order of checks: identity and fields (the marking's byte too), fail-closed inputs,
        throttle, trading state, time (never before the last order's), message rate, size and
        value, collars, duplicates, a replace of a replacement in flight or of an original whose
        replace is in flight (and a modify of such an original, or of a replacement off its side),
        open orders, position, notional, Greeks and scenario, drawdown, self-trade, then for sells
        Reg SHO (a long sale covered, a short sale's price test and locate). One flat body with
        locals: this runs for every order.
        """
        try:
            kind = intent.kind
            enter = kind is _ENTER
            if not enter:
                if kind is _CANCEL or (kind is _MODIFY and intent.qty == 0):
                    return self._check_cancel(now_ns)
                if kind is _MODIFY:
                    held = self._working.get(intent.token)
                    if held is not None and 0 < intent.qty < (
                            held[2] if not self._replacing or intent.token not in self._replacing
                            else self._replacing[intent.token][3]) and (mark is None or mark == (
                            "B" if held[1] else held[0].sho.marks.get(intent.token, "S"))):
                        # a size-down in place: the price the collars judged stays, exposure only
                        # shrinks, so it passes as a partial cancel does (and counts as one); the
                        # larger size stays counted until the venue confirms (on_order_confirmed).
                        # A replacement in flight shrinks only below its own size, not below the
                        # original's shares left that are counted with it.
                        # One that changes the side byte (OUCH Modify carries it) is checked in full.
                        return self._check_cancel(now_ns)
            lim = self._limits
            if not intent.algo_id or not intent.client_id or not (intent.desk_id or intent.trader_id):
                return self._deny(CheckId.MISSING_IDS, 0, 0, "algo, desk/trader and client ids required")
            qty = intent.qty
            price = intent.price
            if qty <= 0 or price <= 0:
                return self._deny(CheckId.INVALID_ORDER, qty, price, "qty and price must be positive")
            if self._faults & _F_GLOBAL:
                return self._deny_fault(intent.symbol_id, now_ns)
            if now_ns > self._clock_due:          # now_ns - self._clock_ns > max_clock_age_ns
                return self._deny_latched(CheckId.CLOCK_STALE, now_ns - self._clock_ns,
                                          lim.max_clock_age_ns, "no recent clock sample", now_ns)
            symbol_id = intent.symbol_id
            if symbol_id in lim.restricted:
                return self._deny(CheckId.RESTRICTED_SYMBOL, symbol_id, 0, "symbol is restricted")
            if self._scoped_kills and self.blocks(symbol_id, intent.algo_id, intent.desk_id, intent.client_id):
                return self._deny(CheckId.KILLED, symbol_id, 0, "a scoped kill is in force")
            sym = self._symbols.get(symbol_id)
            if sym is None or not sym.fair or now_ns - sym.md_ns > lim.max_market_age_ns \
                    or sym.book_stale:
                return self._deny_market(sym, symbol_id, now_ns)
            under = sym.under
            if under is not None:     # an option: its valuation needs the underlying's price too
                if not under.fair or sym.risk is None or now_ns - under.md_ns > lim.max_market_age_ns \
                        or under.book_stale:
                    return self._deny_market(sym, symbol_id, now_ns)

            fills = self._fills
            if fills:             # (none in the window: under any limit, which is at least 1)
                horizon = now_ns - lim.throttle_window_ns
                while fills and fills[0] <= horizon:
                    fills.popleft()
                if len(fills) > lim.throttle_max_fills:
                    return self._deny_latched(CheckId.EXECUTION_THROTTLE, len(fills),
                                              lim.throttle_max_fills, "repeated executions", now_ns)

            # Worst case: every working order on this side fills, and so does this one.
            side = intent.side
            if side is _BUY:
                is_buy = True
            elif side is _SELL:
                is_buy = False
            elif side == _BUY or side == _SELL:     # a plain int 66/83 rather than the enum
                is_buy = side == _BUY
            else:
                return self._deny(CheckId.INVALID_ORDER, 0, 0, f"side must be B or S, got {side!r}"[:48])
            if mark is not None and (mark != "B" if is_buy else mark != "S" and mark != "T" and mark != "E"):
                return self._deny(CheckId.SALE_MARKING, 0, 0, (f"a buy marked {mark!r}" if is_buy else
                                  f"a sell marked {mark!r}, not S, T or E")[:48])
            same_side = sym.open_buy if is_buy else sym.open_sell
            replaced = pending = held_mark = None
            if not enter:
                replaced = self._working.get(intent.orig_token if kind is _REPLACE else intent.token)
                # a modify changes the order in place; a replace's original stays counted: the
                # venue sets the replacement's size whatever the original filled meanwhile
                if replaced is not None and kind is _MODIFY and replaced[0] is sym and replaced[1] is is_buy:
                    # a replacement in flight: only its own size changes, as the original's shares
                    # left counted with it may still fill before the replace lands
                    pending = self._replacing.get(intent.token) if self._replacing else None
                    same_side -= replaced[2] if pending is None else pending[3]
            signed = same_side + qty if is_buy else -(same_side + qty)
            position = sym.position
            post = position + signed

            state = self._state
            if state is not _ACTIVE and state is not _SAFE:
                if state is _HALTED:
                    return self._halted          # the flood case while halted: no allocation
                if not _reduces(position, post):
                    return self._deny(CheckId.REDUCE_ONLY, post, position, "only reducing orders")

            # The windows keep their times in arrival order and expire them from the front: an
            # order stamped before one they saw would break that (the drift collar lost its
            # queue's high while the low stayed), so time running backwards latches instead.
            if now_ns < self._order_ns:
                return self._deny_latched(CheckId.INCONSISTENT_INPUT, now_ns, self._order_ns,
                                          "order time before the last order's", now_ns)
            self._order_ns = now_ns

            # The message rate. The C windows (_win) check it with the drift collar and the
            # duplicates, in one call after the size and collar checks: a denial those checks make
            # first asks _rate_first for the rate's verdict, which comes before theirs.
            win = self._win
            if win is None:
                denial = self._rate_py(kind, now_ns)
                if denial is not None:
                    return denial

            slim = sym.limits
            max_qty = slim.max_order_qty
            if state is _SAFE:
                max_qty = int(max_qty * lim.safe_size_multiplier)
            if qty > max_qty:
                return self._rate_first(kind, now_ns) or self._deny(CheckId.MAX_ORDER_QTY, qty, max_qty,
                                                                    "order volume")
            value = qty * price * sym.multiplier
            if value > slim.max_order_value:
                return self._rate_first(kind, now_ns) or self._deny(
                    CheckId.MAX_ORDER_VALUE, value, slim.max_order_value, "order value")

            fair = sym.fair
            if price > sym.fair_hi or price < sym.fair_lo:      # |price - fair| > the half-width
                return self._rate_first(kind, now_ns) or self._deny(
                    CheckId.COLLAR_FAIR, price - fair if price >= fair else fair - price, sym.fair_band,
                    "price away from fair value")
            if price > sym.reference_hi or price < sym.reference_lo:
                reference = sym.reference
                return self._rate_first(kind, now_ns) or self._deny(
                    CheckId.COLLAR_REFERENCE, price - reference if price >= reference else reference - price,
                    sym.reference_band, "price away from reference")
            if win is not None:
                try:
                    verdict = _frk_check(win, enter, now_ns, symbol_id, is_buy, price, qty, sym.drift_band)
                except (TypeError, OverflowError):      # not an int64_t: the Python windows decide
                    verdict = _FRK_RANGE
                if verdict:
                    if verdict != _FRK_RANGE:
                        return self._window_denial(verdict, kind, sym)
                    self._decompile()
                    win = None
                    denial = self._rate_py(kind, now_ns)
                    if denial is not None:
                        return denial
            if win is None:
                denial = self._drift_duplicate_py(sym, is_buy, price, qty, enter, now_ns)
                if denial is not None:
                    return denial

            if kind is _REPLACE and self._replacing and (
                    intent.orig_token in self._replacing or intent.orig_token in self._replaced_by):
                # the venue has not said which of the two rests: a chain of replaces would count
                # one of them too small whichever answer comes first; a second replace of the same
                # original would count it as a new order (its original is counted in the first)
                return self._deny(CheckId.INVALID_ORDER, 0, 0, "its original's replace is in flight"
                                  if intent.orig_token in self._replacing else
                                  "a replace of its original is in flight")
            if kind is _MODIFY and pending is None and self._replacing and (
                    intent.token in self._replacing or intent.token in self._replaced_by):
                # an original in flight is counted in its replacement, and a replacement's count
                # is tied to its original's on the symbol and side the replace named
                return self._deny(CheckId.INVALID_ORDER, 0, 0, "modify of an order whose replace is in flight")

            working = self._working
            if enter and len(working) >= lim.max_open_orders:
                return self._deny(CheckId.MAX_OPEN_ORDERS, len(working) + 1, lim.max_open_orders,
                                  "working orders")

            cap = slim.max_position
            if (post > cap or -post > cap) and not _reduces(position, post):
                return self._deny(CheckId.POSITION_LIMIT, post, slim.max_position,
                                  "position incl. working orders")

            notional = sym.notional
            post_notional = post * fair * sym.multiplier
            # the other symbols' working orders count too (15c3-5: in the aggregate): for gross
            # the larger side of each, for net the side this order is on
            work_buy = sym.work_buy
            work_sell = sym.work_sell
            all_buy = self._work_buy
            all_sell = self._work_sell
            held = self._gross + self._work_gross - (work_buy if work_buy > work_sell else work_sell)
            gross = held - (notional if notional >= 0 else -notional) + \
                (post_notional if post_notional >= 0 else -post_notional)
            if gross > lim.max_gross_notional and gross > held:
                return self._deny(CheckId.GROSS_NOTIONAL, gross, lim.max_gross_notional, "gross notional")
            before = self._net + (all_buy - work_buy if is_buy else work_sell - all_sell)
            net = before - notional + post_notional
            abs_net = net if net >= 0 else -net
            if abs_net > lim.max_net_notional and abs_net > (before if before >= 0 else -before):
                return self._deny(CheckId.NET_NOTIONAL, net, lim.max_net_notional, "net notional")

            group = sym.group
            if group is not None and ((signed if signed >= 0 else -signed) > sym.headroom or (
                    (all_buy != work_buy or all_sell != work_sell)     # others work
                    and self._group_working(sym, group))):
                # Near a Greek or scenario limit, or other orders in the group may fill too (the
                # headroom counts positions only): the exact post-order numbers decide.
                denial = self._check_greeks(sym, group, signed)
                if denial is not None:
                    return denial

            if self._pnl_peak - self._cash - self._net > lim.max_drawdown and \
                    not _reduces(position, post):
                return self._deny(CheckId.DRAWDOWN, self._pnl_peak - self._cash - self._net,
                                  lim.max_drawdown, "drawdown from P&L peak")

            # Self-trade prevention: never cross one of our own working orders (a pending cancel
            # still counts: the venue may not have taken it out yet). A replaced order is on the
            # same side, so it is never among those looked at.
            own = sym.own_sells if is_buy else sym.own_buys
            if own:
                for own_price in own.values():
                    if (own_price <= price) if is_buy else (own_price >= price):
                        return self._deny(CheckId.SELF_TRADE, price, own_price,
                                          "would trade with our own working order")

            # Reg SHO: a sell's own checks (in _reg_sho) unless plainly clear: a long sale the
            # position covers, or a short sale of an easy-to-borrow symbol with no price test on
            # (mark None: the side's own byte, S)
            allowed = self._allowed
            if not is_buy and (kind is _REPLACE or (
                    ((post < 0 or self._replacing) and sym.option is None)
                    if mark is None or mark == "S" else
                    sym.sho.ssr or symbol_id not in lim.easy_to_borrow)):
                allowed = self._reg_sho(sym, intent, kind, mark or "S", post, best_bid)
                if not allowed.allowed:
                    return allowed

            # Allowed: record it in every window before it leaves (RTS 6: include all orders sent).
            if win is None:
                self._record_py(sym, is_buy, price, qty, enter, now_ns)
            else:
                _frk_commit(win)
            token = intent.token
            if kind is _REPLACE and replaced is not None and replaced[0] is sym \
                    and replaced[1] is is_buy and token not in working:
                if not is_buy and mark is not None and mark != "S":
                    sym.sho.marks[token] = mark
                self._hold_original(intent.orig_token, token, replaced, qty, price, intent.tif != _IOC)
                return allowed
            if (replaced is not None and kind is not _REPLACE) or token in working:
                if not is_buy:
                    held_mark = sym.sho.marks.get(token)     # short (T, E, "" unknown) or None
                self._remove_working(token)
                work_buy = sym.work_buy         # what it counted left the totals
                work_sell = sym.work_sell
            if pending is not None:
                # a replacement in flight: its new size, with the original's shares left beside it
                pending[3] = qty
                qty += pending[1]
                value = qty * price * sym.multiplier
            elif kind is _MODIFY and replaced is not None and replaced[2] > qty and \
                    replaced[0] is sym and replaced[1] is is_buy:
                # a size-down that changes the side byte: checked in full at its new size, but, as
                # a plain size-down, counted at the larger until the venue confirms (on_order_confirmed),
                # at the price held (a Modify leaves the price at the venue as it is)
                qty = replaced[2]
                price = replaced[3]
                value = qty * price * sym.multiplier
            working[token] = (sym, is_buy, qty, price)
            # self._work(sym, is_buy, value) inlined, as this runs for every order sent (value >= 0:
            # the symbol's larger side grows by what this side comes to exceed it). An IOC never
            # rests: whatever we send after it on the session reaches the venue after it is gone,
            # so only orders that can rest count for self-trade prevention.
            if is_buy:
                sym.work_buy = work_buy + value
                self._work_buy += value
                if work_buy >= work_sell:
                    self._work_gross += value
                elif work_buy + value > work_sell:
                    self._work_gross += work_buy + value - work_sell
                sym.open_buy += qty
                if intent.tif != _IOC:
                    sym.own_buys[token] = price
            else:
                sym.work_sell = work_sell + value
                self._work_sell += value
                if work_sell >= work_buy:
                    self._work_gross += value
                elif work_sell + value > work_buy:
                    self._work_gross += work_sell + value - work_buy
                sym.open_sell += qty
                if mark is not None and mark != "S":
                    sym.sho.marks[token] = mark
                elif held_mark is not None:
                    # a short sale modified to long: the venue holds it short until it applies the
                    # Modify, and a fill before then uses a locate; long once it confirms the side
                    sym.sho.marks[token] = held_mark
                if intent.tif != _IOC:
                    sym.own_sells[token] = price
            return allowed
        except Exception as exc:  # fail closed on any defect inside a check
            detail = f"{type(exc).__name__}: {exc}"[:48]
            self._latch(CheckId.INTERNAL_ERROR, detail, now_ns, "risk-gateway")
            if _is_cancel(intent):
                return self._allowed          # a cancel is never refused, even by a defect
            return self._deny(CheckId.INTERNAL_ERROR, 0, 0, detail)

    def _reg_sho(self, sym: _Symbol, intent: OrderIntent, kind: OrderKind, mark: str, post: int,
                 best_bid: int | None) -> RiskDecision:
        """Reg SHO's verdict on a sell whose own checks passed (mm_core.risk.regsho.RegSho.check):
        self._allowed, the bona fide market-making exception (allowed, for the engine to journal)
        or a denial."""
        verdict = self._regsho.check(sym, intent, kind, mark, post, best_bid, self._limits,
                                     self._working)
        if verdict is None:
            return self._allowed
        allowed, check, value, limit, detail = verdict
        if allowed:
            return RiskDecision(True, check, value, limit, detail, self._fsm.state, self._limits.version)
        return self._deny(check, value, limit, detail)

    def _check_cancel(self, now_ns: int) -> RiskDecision:
        window = self._cancels
        horizon = now_ns - self._limits.rate_window_ns
        while window and window[0] <= horizon:
            window.popleft()
        window.append(now_ns)
        count = len(window)
        if count > self._limits.max_cancels:
            # Cancels always pass; the breach is still reported so the engine can journal it.
            return RiskDecision(True, CheckId.MSG_RATE_CANCEL, count, self._limits.max_cancels,
                                "cancel rate over limit; cancels always pass",
                                self._fsm.state, self._limits.version)
        return self._allowed

    def _deny(self, check: CheckId, value: int, limit: int, detail: str) -> RiskDecision:
        return RiskDecision(False, check, int(value), int(limit), detail, self._fsm.state,
                            self._limits.version)

    def _deny_latched(self, check: CheckId, value: int, limit: int, detail: str,
                      now_ns: int) -> RiskDecision:
        self._latch(check, detail, now_ns, "risk-gateway")
        return self._deny(check, value, limit, detail)

    def _deny_market(self, sym: _Symbol | None, symbol_id: int, now_ns: int) -> RiskDecision:
        """An order on a symbol whose market input is unusable: denied, and (having been presented
        while the fault is active) it latches the state."""
        return self._deny_latched(*self._market_problems(sym, symbol_id, now_ns)[0], now_ns)

    def _market_problems(self, sym: _Symbol | None, symbol_id: int, now_ns: int) -> list:
        """Every unusable market input an order on the symbol meets, in the order check() looks:
        its own book and prices, then an option's underlying's, then an option's valuation."""
        problems = [self._market_problem(sym, symbol_id, now_ns)]
        under = sym.under if sym is not None else None
        if under is not None:
            problems.append(self._market_problem(under, under.symbol_id, now_ns))
            if problems[-1] is None and sym.risk is None:
                problems.append((CheckId.OPTION_PARAMS_MISSING, symbol_id, 0,
                                 f"option {symbol_id} has no valuation"))
        return [p for p in problems if p is not None]

    def _market_problem(self, sym: _Symbol | None, symbol_id: int, now_ns: int):
        """(check, value, limit, detail) of a symbol whose market input is unusable, else None."""
        if sym is not None and sym.book_stale:
            return CheckId.BOOK_STALE, symbol_id, 0, f"stale book: symbol {symbol_id}"
        if sym is None or not sym.fair:
            return CheckId.MARKET_DATA_MISSING, symbol_id, 0, f"no market data for symbol {symbol_id}"
        age = now_ns - sym.md_ns
        if age <= self._limits.max_market_age_ns:
            return None
        return (CheckId.MARKET_DATA_STALE, age, self._limits.max_market_age_ns,
                f"market data of symbol {symbol_id} too old")

    # ------------------------------------------------- the windows in Python: the reference
    def _rate_py(self, kind: OrderKind, now_ns: int) -> RiskDecision | None:
        """The message rate: the kind's window popped; its denial, else None."""
        lim = self._limits
        if kind is _ENTER:
            window = self._submits
            most = lim.max_submits
        else:
            window = self._modifies
            most = lim.max_modifies
        horizon = now_ns - lim.rate_window_ns
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= most:
            return self._deny_rate(kind, len(window) + 1)
        return None

    def _drift_duplicate_py(self, sym: _Symbol, is_buy: bool, price: int, qty: int, enter: bool,
                            now_ns: int) -> RiskDecision | None:
        """The drift collar (the side's queues popped) then the duplicates; a denial, else None."""
        lim = self._limits
        dmax, dmin = sym.drift_buy if is_buy else sym.drift_sell
        horizon = now_ns - lim.collar_drift_window_ns
        while dmax and dmax[0][0] <= horizon:
            dmax.popleft()
        while dmin and dmin[0][0] <= horizon:
            dmin.popleft()
        if dmax or dmin:         # both or neither: one empty is a defect (IndexError, as the C)
            high = dmax[0][1]
            low = dmin[0][1]
            spread = (price if price > high else high) - (price if price < low else low)
            if spread > sym.drift_band:
                return self._deny(CheckId.COLLAR_DRIFT, spread, sym.drift_band, "own prices drifted in window")
        if enter and lim.duplicate_window_ns:
            dup_key = (sym.symbol_id, is_buy, price, qty)
            dup_last = self._dup_last
            if dup_key in dup_last and now_ns - dup_last[dup_key] < lim.duplicate_window_ns:
                last = dup_last[dup_key]
                return self._deny(CheckId.DUPLICATE_ORDER, now_ns - last, lim.duplicate_window_ns,
                                  "same symbol/side/price/qty")
        return None

    def _record_py(self, sym: _Symbol, is_buy: bool, price: int, qty: int, enter: bool, now_ns: int) -> None:
        """An allowed order in the kind's rate window, the side's drift queues and the duplicates."""
        (self._submits if enter else self._modifies).append(now_ns)
        dmax, dmin = sym.drift_buy if is_buy else sym.drift_sell
        stamped = (now_ns, price)
        while dmax and dmax[-1][1] <= price:
            dmax.pop()
        dmax.append(stamped)
        while dmin and dmin[-1][1] >= price:
            dmin.pop()
        dmin.append(stamped)
        if enter and self._limits.duplicate_window_ns:
            dup_last = self._dup_last
            dup_last[(sym.symbol_id, is_buy, price, qty)] = now_ns
            if len(dup_last) >= self._dup_purge_at:
                self._purge_duplicates(now_ns)

    # ---------------------------------------------------------------- the windows in C
    def _rate_first(self, kind: OrderKind, now_ns: int) -> RiskDecision | None:
        """With the C windows, the rate's denial for an order a later check denies (the reference
        checks the rate first), else None; nothing without them (the rate was checked)."""
        win = self._win
        if win is None:
            return None
        try:
            count = _lib.frk_rate(win, kind is _ENTER, now_ns)
        except (TypeError, OverflowError):
            count = -1
        if count < 0:                       # a time out of the C's range: the Python windows
            self._decompile()
            return self._rate_py(kind, now_ns)
        most = self._limits.max_submits if kind is _ENTER else self._limits.max_modifies
        return self._deny_rate(kind, count + 1) if count >= most else None

    def _window_denial(self, verdict: int, kind: OrderKind, sym: _Symbol) -> RiskDecision:
        """The denial frk_check answered, with the values the reference reports."""
        value = _lib.frk_value(self._win)
        if verdict == _lib.FRK_RATE:
            return self._deny_rate(kind, value + 1)
        if verdict == _lib.FRK_DRIFT:
            return self._deny(CheckId.COLLAR_DRIFT, value, sym.drift_band, "own prices drifted in window")
        if verdict == _lib.FRK_DUPLICATE:
            return self._deny(CheckId.DUPLICATE_ORDER, value, self._limits.duplicate_window_ns,
                              "same symbol/side/price/qty")
        if verdict == _lib.FRK_EMPTY:       # as the reference's [0] on an empty deque
            raise IndexError("deque index out of range")
        raise MemoryError("fastrisk: frk_check")

    def _purge_duplicates(self, now_ns: int) -> None:
        """Drops keys older than the window; amortised O(1) as the next purge waits for growth."""
        horizon = now_ns - self._limits.duplicate_window_ns
        self._dup_last = {k: ts for k, ts in self._dup_last.items() if ts > horizon}
        self._dup_purge_at = max(_DUP_PURGE, 2 * len(self._dup_last))

    def _deny_rate(self, kind: OrderKind, count: int) -> RiskDecision:
        if kind is _ENTER:
            return self._deny(CheckId.MSG_RATE_SUBMIT, count, self._limits.max_submits, "message rate")
        return self._deny(CheckId.MSG_RATE_MODIFY, count, self._limits.max_modifies, "message rate")

    def _group_working(self, sym: _Symbol, group: _Group) -> bool:
        """True when another symbol of the group has working orders."""
        symbols = self._symbols
        for member_id in group.members:
            member = symbols[member_id]
            if member is not sym and (member.open_buy or member.open_sell):
                return True
        return False

    def _others(self, sym: _Symbol, group: _Group) -> list:
        """(buys, -sells, symbol) of the group's other symbols with working orders: any of them
        may fill too, so the Greeks and scenarios count each at its worst (15c3-5: aggregate)."""
        symbols = self._symbols
        others = []
        for member_id in group.members:
            member = symbols[member_id]
            if member is not sym and (member.open_buy or member.open_sell):
                others.append((member.open_buy, -member.open_sell, member))
        return others

    def _check_greeks(self, sym: _Symbol, group: _Group, signed: int) -> RiskDecision | None:
        """A Greek past its limit denies only if the order makes it worse (reducing passes);
        then the full-revaluation scenario loss, if its cheap lower bound is past the limit. The
        group's other working orders move each Greek anywhere between all their buys and all their
        sells filling: the worse end counts, before and after this order."""
        lim = self._limits
        risk = sym.risk
        if risk is None:                # its group could not be revalued: fail closed
            return self._deny(CheckId.OPTION_PARAMS_MISSING, sym.symbol_id, 0,
                              f"symbol {sym.symbol_id} has no valuation")
        others = self._others(sym, group)
        for _, _, other in others:
            if other.risk is None:      # cannot be valued: fail closed
                return self._deny(CheckId.OPTION_PARAMS_MISSING, other.symbol_id, 0,
                                  f"option {other.symbol_id} has no valuation")
        for check, before, unit, cap, scale, name in (
                (CheckId.DELTA_LIMIT, group.delta, risk.delta, lim.max_delta, 1, "delta"),
                (CheckId.GAMMA_LIMIT, group.gamma, risk.gamma, lim.max_gamma, 1, "gamma"),
                (CheckId.VEGA_LIMIT, group.vega, risk.vega, lim.max_vega, PRICE4, "vega")):
            after = before + signed * unit
            if others:
                low = high = 0.0
                for buys, sells, other in others:
                    u = getattr(other.risk, name)
                    low += min(buys * u, sells * u)
                    high += max(buys * u, sells * u)
                worst_before = max(abs(before + high), abs(before + low))
                after = after + high if abs(after + high) >= abs(after + low) else after + low
            else:
                worst_before = abs(before)
            if abs(after) > cap and abs(after) > worst_before:
                return self._deny(check, round(after * scale), round(cap * scale), check.label)
        # a lower bound of what the others can lose (<= 0: buys lose at pnl_lo, sells at pnl_hi)
        bound = sum([min(b * o.pnl_lo, s * o.pnl_hi) for b, s, o in others]) if others else 0.0
        if group.worst + bound + signed * (sym.pnl_lo if signed > 0 else sym.pnl_hi) < self._loss_floor:
            return self._check_scenario(group, risk, signed, others)
        return None

    def _check_scenario(self, group: _Group, risk: UnitRisk, signed: int,
                        others: list = ()) -> RiskDecision | None:
        """Full-revaluation scenario loss after the order (per-contract P&L is linear in qty), the
        group's other working orders at their worst in each scenario."""
        base = group.scenario
        if others:
            base = [a + sum(min(b * o.risk.scenario_pnl[i], s * o.risk.scenario_pnl[i])
                                for b, s, o in others) for i, a in enumerate(base)]
        post_worst = min([a + signed * b for a, b in zip(base, risk.scenario_pnl)])
        loss = -post_worst * PRICE4
        if loss > self._limits.scenario_max_loss and post_worst < (min(base) if others else group.worst):
            return self._deny(CheckId.SCENARIO_LOSS, round(loss), self._limits.scenario_max_loss,
                              "scenario loss")
        return None

    def _deny_fault(self, symbol_id: int, now_ns: int) -> RiskDecision:
        """An order presented while a global fault is active: denied for the first one, and the
        state latches for every fault and unusable input the order met. A clean reconciliation
        releases only its own latch, so one that a clock or market fault met alongside it must
        still need the operator (fail closed)."""
        first = None
        for bit, check in FAULT_CHECKS:
            if self._faults & _F_GLOBAL & bit:
                value = self._unknown_outcome if bit == _F_UNKNOWN_OUTCOME else \
                    now_ns - self._clock_ns if bit == _F_CLOCK_STALE else 0
                limit = self._limits.max_clock_age_ns if bit == _F_CLOCK_STALE else 0
                first = first or (check, value, limit, self._fault_detail(bit))
                self._latch(check, self._fault_detail(bit), now_ns, "risk-gateway")
        if first is None:
            raise AssertionError("no fault bit set")
        if now_ns - self._clock_ns > self._limits.max_clock_age_ns:     # the checks after this one
            self._latch(CheckId.CLOCK_STALE, "no recent clock sample", now_ns, "risk-gateway")
        for problem in self._market_problems(self._symbols.get(symbol_id), symbol_id, now_ns):
            self._latch(problem[0], problem[3], now_ns, "risk-gateway")
        return self._deny(*first)

    def _fault_detail(self, bit: int) -> str:
        if bit == _F_CLOCK:
            return "clock not compliant" if self._clock_ns >= 0 else "no clock sample yet"
        if bit == _F_BOOK_STALE:
            return "stale book: symbols " + ",".join(map(str, sorted(self._stale_books)))[:28]
        return {_F_JOURNAL: "journal cannot take records", _F_UNRECONCILED: "inventory not reconciled",
                _F_UNKNOWN_OUTCOME: "orders with unknown outcome",
                _F_CLOCK_STALE: "no recent clock sample"}[bit]

    # ------------------------------------------------------------------------- input feeds
    def on_market(self, symbol_id: int, fair_value, reference_price, book_stale: bool,
                  now_ns: int) -> None:
        """Fair value and reference price (price4) of a symbol; book_stale marks a gap. A price
        that is not a finite positive number counts as a stale book (fail closed)."""
        sym = self._symbols.get(symbol_id) or self._symbol(symbol_id)
        valid = (0 < fair_value < _INF and 0 < reference_price < _INF) \
            if type(fair_value) in _PLAIN and type(reference_price) in _PLAIN \
            else _positive_price(fair_value) and _positive_price(reference_price)
        sym.md_ns = now_ns
        if valid:
            fair = int(round(fair_value))
            reference = int(round(reference_price))
            if fair != sym.fair or reference != sym.reference:
                sym.fair = fair
                sym.reference = reference
                self._set_bands(sym)
        stale = not valid or book_stale is True or bool(book_stale)
        if stale is not sym.book_stale:
            sym.book_stale = stale
            (self._stale_books.add if stale else self._stale_books.discard)(symbol_id)
            if self._stale_books:
                self._set_fault(_F_BOOK_STALE, now_ns)
            else:
                self._clear_fault(_F_BOOK_STALE)
        if valid:
            self._revalue(sym, now_ns)

    def on_markets(self, symbol_ids, fair_values, reference_prices, times) -> None:
        """on_market(s, fair, reference, False, now) of each, in order (the engine's replay hands
        over the feeds its batch path deferred): the common case, a symbol already known and fed,
        a finite positive float fair value and an integer reference price, is on_market inlined
        (an option group's revaluation when due included); anything else goes through on_market
        itself."""
        symbols, groups, set_bands = self._symbols, self._groups, self._set_bands
        for symbol_id, fair_value, reference, now_ns in zip(symbol_ids, fair_values, reference_prices, times):
            sym = symbols.get(symbol_id)
            if sym is None or sym.book_stale or type(fair_value) is not float or type(reference) is not int \
                    or not (0 < fair_value < _INF and reference > 0):
                self.on_market(symbol_id, fair_value, reference, False, now_ns)
                continue
            sym.md_ns = now_ns
            fair = int(round(fair_value))
            if fair != sym.fair or reference != sym.reference:
                sym.fair = fair
                sym.reference = reference
                set_bands(sym)
            self._mark(sym)
            if sym.underlying_id in groups:
                self._reprice_group(sym, now_ns)

    def on_feed_log(self, n: int, symbols, fair_values, times, references) -> None:
        """on_market(symbols[k], fair_values[k], references[symbols[k]], False, times[k]) for each
        k below n, in order: the engine's replay hands over the feeds its batch path deferred as
        C arrays (uint32_t, double, int64_t; `references` is indexed by symbol). The common case
        is one C call over the log (mm_core.risk.feedlog); the rest goes through on_market. A
        short log goes through on_markets: copying its symbols in and out would cost more."""
        log = self.__dict__.get("_feed_log")
        if log is None:
            log = self._feed_log = FeedLog()
        log.apply(self, n, symbols, fair_values, times, references, REPRICE_NS, REPRICE_MOVE)

    def on_fill(self, symbol_id: int, side: Side, qty: int, price: int, now_ns: int,
                token: str = "") -> None:
        """An execution of ours; `token` (if known) reduces that working order. A fill that makes
        no sense (qty or price not positive, no side) cannot be booked: the state latches."""
        qty, price = _whole(qty), _whole(price)
        if qty is None or qty <= 0 or price is None or price <= 0 or side not in (_BUY, _SELL):
            self._latch(CheckId.INCONSISTENT_INPUT,
                        f"fill {symbol_id} {side!r} {qty!r}@{price!r}"[:48], now_ns, "risk-gateway")
            return
        sym = self._symbol(symbol_id)
        signed = qty if side == _BUY else -qty
        sym.position += signed
        self._cash -= signed * price * sym.multiplier
        if token and signed < 0:
            self._regsho.on_sell_fill(sym.sho, token, qty)     # sold short: its locate is used
        if token:
            if self._replacing:
                self._fill_during_replace(token, qty)
            order = self._working.get(token)
            if order is not None:
                if order[2] > qty:
                    self._working[token] = (order[0], order[1], order[2] - qty, order[3])
                    self._work(order[0], order[1], -qty * order[3] * order[0].multiplier)
                    if order[1]:
                        order[0].open_buy -= qty
                    else:
                        order[0].open_sell -= qty
                else:
                    self._remove_working(token)
        lim = self._limits
        fills = self._fills
        fills.append(now_ns)
        horizon = now_ns - lim.throttle_window_ns
        while fills and fills[0] <= horizon:
            fills.popleft()
        self._revalue(sym, now_ns, positions_changed=True)
        if len(fills) > lim.throttle_max_fills:
            # RTS 6 Art. 15(3): disabled until a designated person re-enables, whatever the config.
            self._latch(CheckId.EXECUTION_THROTTLE, f"{len(fills)} fills in window", now_ns,
                        "risk-gateway", halt=True)

    def on_position(self, symbol_id: int, position: int, now_ns: int) -> None:
        """Set a position outright (reconciliation after a restart)."""
        sym = self._symbol(symbol_id)
        sym.position = int(position)
        self._revalue(sym, now_ns, positions_changed=True)

    def on_order_state(self, open_orders: Iterable | None = None, unknown_outcome: int = 0,
                       now_ns: int = 0) -> None:
        """Resynchronise working orders (None keeps the gateway's own view) and the count of
        orders whose outcome is unknown (any > 0 is a fault)."""
        if open_orders is not None:
            for sym in self._symbols.values():
                sym.open_buy = sym.open_sell = sym.work_buy = sym.work_sell = 0
                sym.own_buys.clear()
                sym.own_sells.clear()
            self._regsho.clear_markings()
            self._working.clear()
            self._work_buy = self._work_sell = self._work_gross = 0
            self._replacing.clear()
            self._replaced_by.clear()
            for order in open_orders:
                sym = self._symbol(order.symbol_id)
                self._add_working(order.token, sym, order.side == _BUY, order.qty, order.price)
                if order.side != _BUY:
                    self._regsho.hold_marking(sym.sho, order.token, getattr(order, "mark", "") or "")
        self._unknown_outcome = int(unknown_outcome)
        if unknown_outcome:
            self._set_fault(_F_UNKNOWN_OUTCOME, now_ns)
        else:
            self._clear_fault(_F_UNKNOWN_OUTCOME)

    def on_order_adopted(self, token: str, symbol_id: int, side: Side, qty: int, price: int,
                         mark: str = "", orig_token: str = "", now_ns: int = 0) -> None:
        """An order that exists at the venue without having passed check() (reconciliation adopts
        it after a crash lost its record): counted from now on as a confirmed order is, with its
        remaining qty, price and, for a sell, the venue's side byte as its marking ("" unknown:
        short; a short one holds its locate). A replacement of a working order is held with its
        original as an allowed replace is, until the venue answers; one whose original is itself a
        replacement in flight counts in full beside it (the venue's answers come in order and
        release each). No limit is checked: the order is there whatever the limits say, so the
        next order meets it."""
        qty, price = _whole(qty), _whole(price)
        if qty == 0:
            return                  # nothing left working: nothing to count
        if qty is None or qty < 0 or price is None or price <= 0 or side not in (_BUY, _SELL):
            self._latch(CheckId.INCONSISTENT_INPUT, f"adopted {token} {side!r} {qty!r}@{price!r}"[:48],
                        now_ns, "risk-gateway")
            return
        sym = self._symbol(symbol_id)
        is_buy = side == _BUY
        held = self._working.get(orig_token) if orig_token else None
        if token not in self._working and held is not None and held[0] is sym and held[1] is is_buy \
                and orig_token not in self._replaced_by and orig_token not in self._replacing:
            self._hold_original(orig_token, token, held, qty, price, True)
        else:
            self._add_working(token, sym, is_buy, qty, price)
        if not is_buy:
            self._regsho.hold_marking(sym.sho, token, mark)

    def on_trading_day(self, day: int, now_ns: int = 0) -> None:
        """The venue started trading day `day` (days since 1970-01-01 of its calendar date): the
        locates short sales used up belong to the day before, so a later day than the one held
        starts with none used. The first day told only names the day (what was used before it
        stays used: fail closed); the same or an earlier day changes nothing."""
        day = _whole(day)
        if day is not None:
            self._regsho.on_trading_day(day)

    def on_order_done(self, token: str, now_ns: int = 0) -> None:
        """A working order left the book (cancelled, filled, rejected, expired). A replacement the
        venue refused leaves its original resting as it was, and counted as such again."""
        if self._replacing and (token in self._replacing or token in self._replaced_by):
            self._end_replace(token, refused=True)
            return
        self._remove_working(token)

    def on_order_confirmed(self, token: str, qty: int, now_ns: int = 0, mark: str | None = None) -> None:
        """The venue confirmed an order working with `qty` shares left: a replace it accepted (its
        original is gone) or a size-down it applied. Only now does a smaller size count. `mark`:
        the side byte the venue holds for it (Order Modified echoes it): a sell's marking follows
        it from now on (S long; any other byte short), so a short sale modified to long is long
        only now."""
        if self._replacing and token in self._replacing:
            self._end_replace(token, refused=False)
        order = self._working.get(token)
        if order is not None:
            qty = _whole(qty)
            if qty is None or qty <= 0:
                self._remove_working(token)
                return
            if qty != order[2]:
                self._recount(token, qty)
            if mark is not None and not order[1]:
                if mark == "S":
                    order[0].sho.marks.pop(token, None)
                else:
                    order[0].sho.marks[token] = mark

    def on_order_resting(self, token: str, qty: int, price: int, now_ns: int = 0) -> None:
        """The venue's own record of a working order of ours (reconciliation, which cancels it
        next): `qty` shares rest there at `price`. Counted so until the venue answers the cancel,
        as any order a pending cancel pulls (the venue may fill it first): its shares in the open
        exposure, its price for self-trade prevention, whatever the gateway had counted before. A
        replace in flight ends as confirmed; no shares left releases it; a price that is not a
        positive integer cannot be counted: the state latches and the order keeps the price it had."""
        self.on_order_confirmed(token, qty, now_ns)
        order = self._working.get(token)
        if order is not None and self.on_order_priced(token, price, now_ns, "resting"):
            (order[0].own_buys if order[1] else order[0].own_sells)[token] = self._working[token][3]

    def on_order_priced(self, token: str, price: int, now_ns: int = 0, what: str = "priced") -> bool:
        """The venue's price of a working order of ours (its Accepted or Replaced echoes it; a
        venue may improve or round the price we asked for): counted at it from now on, in the
        working orders and for self-trade prevention. An original whose replace is in flight keeps
        it for a refused replace to restore. A price that is not a positive integer cannot be
        counted: the state latches and the order keeps the price it had (False)."""
        venue_price = _whole(price)
        if venue_price is None or venue_price <= 0:
            self._latch(CheckId.INCONSISTENT_INPUT, f"{what} {token} @{price!r}"[:48], now_ns,
                        "risk-gateway")
            return False
        replacement = self._replaced_by.get(token)
        if replacement is not None:
            pending = self._replacing[replacement]
            pending[2] = venue_price
            own = self._symbols[pending[4]].own_buys if pending[5] else self._symbols[pending[4]].own_sells
            if token in own:
                own[token] = venue_price
            return True
        order = self._working.get(token)
        if order is not None and order[3] != venue_price:
            sym, is_buy, counted, old_price = order
            self._working[token] = (sym, is_buy, counted, venue_price)
            self._work(sym, is_buy, counted * (venue_price - old_price) * sym.multiplier)
            own = sym.own_buys if is_buy else sym.own_sells
            if token in own:         # an IOC never rests: no own price to move
                own[token] = venue_price
        return True

    def on_clock(self, compliant: bool | None, now_ns: int, measured_ns: int | None = None) -> None:
        """Clock health for the configured profile, told at now_ns; None (unknown) counts as not
        compliant. measured_ns: when the sample was measured (default now_ns). The clock ages from
        then, not from when the sample arrived (the runner journals a sample up to a monitor period
        after it was taken): a compliant sample that is already older than max_clock_age leaves the
        clock stale, and one stamped after now_ns counts from now_ns (no credit for the future)."""
        if compliant is True:
            at = now_ns if measured_ns is None or measured_ns > now_ns else measured_ns
            if at > self._clock_ns:
                self._clock_ns = at
            self._clear_fault(_F_CLOCK)
            if now_ns - self._clock_ns > self._limits.max_clock_age_ns:
                self._set_fault(_F_CLOCK_STALE, now_ns)
            else:
                self._clear_fault(_F_CLOCK_STALE)
            self._clock_deadline()
        else:
            self._set_fault(_F_CLOCK, now_ns)

    def on_journal_health(self, ok: bool, now_ns: int) -> None:
        """The journal can (True) or cannot (False: append failed, disk full) take records."""
        if ok is True:
            self._clear_fault(_F_JOURNAL)
        else:
            self._set_fault(_F_JOURNAL, now_ns)

    def on_reconciled(self, ok: bool, now_ns: int) -> None:
        """Inventory matches the venue (True) or does not (False). A clean reconciliation releases
        the latch it caused and returns to ACTIVE, but only when no other latch reason is in force
        (one from before a restart, e.g. the throttle or a kill, still needs the operator)."""
        if ok is not True:
            self._set_fault(_F_UNRECONCILED, now_ns)
            return
        self._clear_fault(_F_UNRECONCILED)
        reasons = self._latch_reasons
        if reasons.pop(CheckId.UNRECONCILED, None) is not None and not reasons \
                and self._fsm.state in (_HALTED, _REDUCING):
            if self._safe_requested:     # the operator's safe mode is the operator's to lift
                self._fire(Trigger.RECONCILED_SAFE, CheckId.UNRECONCILED, "reconciled: inventory "
                           "matches the venue, no other latch; back to the operator's safe mode",
                           "reconciliation", now_ns)
            else:
                self._fire(Trigger.RECONCILED, CheckId.UNRECONCILED,
                           "reconciled: inventory matches the venue, no other latch", "reconciliation",
                           now_ns)

    def on_timer(self, now_ns: int) -> None:
        """Detects a clock that has gone quiet without waiting for the next order: a fault (listed
        in `faults`, so the engine stops presenting orders) that latches only if an order hits it.
        The engine calls it on its timer and on any event past clock_stale_at, so the fault is
        raised the same way whichever event comes first."""
        if now_ns - self._clock_ns > self._limits.max_clock_age_ns and self._clock_ns >= 0:
            self._set_fault(_F_CLOCK_STALE, now_ns)
        self._clock_deadline()

    def _clock_deadline(self) -> None:
        """clock_stale_at: max_clock_age after the newest compliant sample's measurement, while
        there is one and the clock is not flagged stale already (inf otherwise); and for the order
        path, when the newest sample becomes too old whatever the faults say."""
        self._clock_due = self._clock_ns + self._limits.max_clock_age_ns
        self.clock_stale_at = _INF if self._clock_ns < 0 or self._faults & _F_CLOCK_STALE \
            else self._clock_due

    def on_reg_sho(self, symbol_id: int, restricted: bool, now_ns: int = 0) -> None:
        """ITCH Reg SHO ('Y') for a symbol: the Rule 201 short sale price test is in force (True)
        or lifted (False); anything but False counts as in force (fail closed)."""
        self._symbol(symbol_id)
        self._regsho.on_reg_sho(symbol_id, restricted)

    def on_option_params(self, symbol_id: int, underlying_id: int, strike: int, expiry_ns: int,
                         vol: float, rate: float, is_call: bool, multiplier: int = 1,
                         now_ns: int = 0) -> None:
        """Declare (or update) an option symbol at now_ns; raises RiskError on bad parameters
        (check_option)."""
        params = OptionParams(symbol_id, underlying_id, int(strike), int(expiry_ns), float(vol),
                              float(rate), bool(is_call), int(multiplier))
        self.check_option(params, now_ns)
        sym = self._symbol(symbol_id)
        under = self._symbol(underlying_id)
        if under.option is not None:
            raise RiskError(f"option {symbol_id}: underlying {underlying_id} is itself an option")
        if sym.underlying_id != symbol_id and sym.underlying_id != underlying_id:
            old_group = self._groups[sym.underlying_id]     # the option moves to another underlying
            old_group.members.remove(symbol_id)
            sym.risk = sym.group = None
            self._refresh_group(old_group, None)
        group = self._groups.get(underlying_id)
        if group is None:
            group = self._groups[underlying_id] = _Group(underlying_id)
        if symbol_id not in group.members:
            group.members.append(symbol_id)
        under.underlying_id = underlying_id
        sym.option = params
        sym.under = under
        sym.underlying_id = underlying_id
        if sym.multiplier != params.multiplier:
            sym.multiplier = params.multiplier
            self._recount_work()         # its working orders' notional is in contracts now
        self._revalue(under, now_ns, force_reprice=True)

    def check_option(self, params: OptionParams, now_ns: int | None = None) -> None:
        """What on_option_params refuses before it changes anything: parameters out of range
        (RiskError; with now_ns, an expiry not after it or more than greeks.MAX_EXPIRY_DAYS
        later), or a vol whose scenario grid moves the underlying to zero or below under the
        limits in force (LimitsError naming scenario.spot_sigmas): none of it could be valued."""
        params.validate(now_ns)
        self._limits.check_scenario_vol(params.vol, f"option {params.symbol_id}'s vol")

    # ------------------------------------------------------------------------ commands
    def operator_enable(self, actor: str, reason: str, now_ns: int = 0) -> None:
        """An authorised person re-enables trading; refused while a fault is still active."""
        faults = self.faults
        if now_ns and now_ns - self._clock_ns > self._limits.max_clock_age_ns \
                and CheckId.CLOCK_STALE.label not in faults:
            faults.append(CheckId.CLOCK_STALE.label)
        if faults:
            raise FaultsActive(faults)
        self._fire(Trigger.OPERATOR_ENABLE, CheckId.OPERATOR, reason, actor, now_ns)
        self._safe_requested = False     # the operator chose ACTIVE
        # the throttle's window restarts with the operator's decision; only after the transition,
        # so an enable refused as invalid (already trading) cannot reset the throttle
        self._fills.clear()

    def release_kill(self, actor: str, reason: str) -> None:
        """Lift the latch of a kill of everything that only ended a session (recovery.closeout
        decides from the journal that it was the session's own close-out): the kill's latch
        reason goes, the state stays HALTED under the restart's own latch (unreconciled) until a
        clean reconciliation releases it (on_reconciled). RiskError when no such kill is in force
        or anything else holds: another latch reason, or a fault besides the reconciliation."""
        reasons = self._latch_reasons
        if self._fsm.state is not _HALTED or CheckId.KILLED not in reasons:
            raise RiskError(f"release by {actor}: no kill of everything is in force")
        others = [check.label for check in reasons if check not in (CheckId.KILLED, CheckId.UNRECONCILED)]
        if others or CheckId.UNRECONCILED not in reasons:
            raise RiskError(f"release by {actor}: only a kill awaiting the restart's reconciliation is "
                            f"released; latched by {', '.join(others) or 'the kill alone'}")
        faults = [f for f in self.faults if f != CheckId.UNRECONCILED.label]
        if faults:
            raise FaultsActive(faults)
        del reasons[CheckId.KILLED]

    def set_safe_mode(self, on: bool, actor: str, reason: str, now_ns: int = 0) -> None:
        """Enter or leave SAFE_MODE; a no-op when already there, InvalidTransition when latched."""
        state = self._fsm.state
        if (on and state is _SAFE) or (not on and state is _ACTIVE):
            return
        self._fire(Trigger.SAFE_MODE_ON if on else Trigger.SAFE_MODE_OFF, CheckId.OPERATOR, reason,
                   actor, now_ns)
        self._safe_requested = on

    def kill(self, scope: "KillScope | str | int", scope_id: int, requested_by: str, reason: str,
             now_ns: int) -> KillOrder:
        """Kill switch; returns what the OMS must cancel (cancels still pass). A kill of
        everything latches HALTED (operator_enable lifts it); a scoped one refuses new orders in
        its scope only, the rest trades on (lift_kill lifts it)."""
        order = KillOrder(parse_scope(scope), int(scope_id), requested_by, reason, now_ns)
        if order.scope is KillScope.ALL:
            self._fire(Trigger.KILL, CheckId.KILLED, f"kill {order.scope.name.lower()} "
                       f"{order.scope_id}: {reason}", requested_by, now_ns)
        else:
            self._scoped_kills = self._scoped_kills | {(int(order.scope), order.scope_id)}
        return order

    def lift_kill(self, scope: "KillScope | str | int", scope_id: int) -> None:
        """An operator's enable of one scope: that scoped kill only is lifted; RiskError when no
        kill of that scope is in force (a kill of everything is lifted by operator_enable)."""
        kind = parse_scope(scope)
        key = (int(kind), int(scope_id))
        if kind is KillScope.ALL or key not in self._scoped_kills:
            raise RiskError(f"no kill of {kind.name.lower()} {scope_id} is in force"
                            + (f" (in force: {self.scoped_kills_text()})" if self._scoped_kills else ""))
        self._scoped_kills = self._scoped_kills - {key}

    @property
    def scoped_kills(self) -> list[tuple[KillScope, int]]:
        """The scoped kills in force, (scope, scope_id), sorted."""
        return [(KillScope(scope), ident) for scope, ident in sorted(self._scoped_kills)]

    def scoped_kills_text(self) -> str:
        return ", ".join(f"{scope.name.lower()} {ident}" for scope, ident in self.scoped_kills)

    def blocks(self, symbol_id: int, algo_id: int, desk_id: int, client_id: int) -> bool:
        """True when a scoped kill in force covers an order with these ids."""
        return any(scope_matches(scope, ident, symbol_id, algo_id, desk_id, client_id)
                   for scope, ident in self._scoped_kills)

    def replace_limits(self, new_text: str) -> int:
        """Install a new limits document; a bad one raises LimitsError and the old stays, whole
        (_install_limits)."""
        new = Limits.from_toml(new_text)
        if new.version <= self._limits.version:
            raise LimitsError("version", f"{new.version} must be greater than the version in force "
                              f"({self._limits.version})")
        self._install_limits(new)
        return new.version

    # ------------------------------------------------------------------------ internals
    def _admit_limits(self, limits: Limits) -> TradingState:
        """The state `limits` latch to; raises (changing nothing) for limits the gateway cannot
        run: a scenario grid that moves the underlying of a group to zero or below (LimitsError)."""
        latch_to = self._latch_override or _latch_state(limits.latch_state)
        limits.check_scenario_vol(limits.scenario_default_vol, "scenario.default_vol")
        for sym in self._symbols.values():
            if sym.option is not None:
                limits.check_scenario_vol(sym.option.vol, f"option {sym.symbol_id}'s vol")
        return latch_to

    def _install_limits(self, limits: Limits) -> None:
        """Puts `limits` in force, all or nothing: limits the gateway cannot run raise before
        anything changes (_admit_limits), and should installing fail past that, the limits in
        force before are installed again and LimitsError says so."""
        latch_to = self._admit_limits(limits)
        old = getattr(self, "_limits", None), getattr(self, "_latch_to", None)   # None: the first
        try:
            self._put_limits(limits, latch_to)
        except Exception as exc:
            if old[0] is None:
                raise
            self._put_limits(*old)
            raise LimitsError("<document>", f"not installed ({type(exc).__name__}: {exc}); "
                              f"version {old[0].version} stays in force") from exc

    def _put_limits(self, limits: Limits, latch_to: TradingState) -> None:
        """Admitted limits into every place that holds them: bands, group grids, the windows."""
        self._limits = limits
        self._latch_to = latch_to
        self._loss_floor = -limits.scenario_max_loss / PRICE4     # currency, for the cheap bound
        for symbol_id, sym in self._symbols.items():
            sym.limits = limits.for_symbol(symbol_id)
            self._set_bands(sym)
        for group in self._groups.values():
            group.grid = ()       # rebuilt with the new scenario parameters
            self._refresh_group(group, None)
        self._refresh_allowed()
        self._clock_deadline()       # max_clock_age may have changed
        if self._win is not None and not windows.set_limits(self._win, limits):
            self._decompile()
        elif self._win is None:
            self._compile()

    def _set_bands(self, sym: _Symbol) -> None:
        """Collar half-widths follow the prices and the limits, not each order."""
        lim = self._limits
        sym.fair_band = sym.fair * lim.collar_fair_bps // 10_000
        sym.reference_band = sym.reference * lim.collar_reference_bps // 10_000
        sym.drift_band = sym.reference * lim.collar_drift_bps // 10_000
        sym.bound_collars()

    def _refresh_allowed(self) -> None:
        self._allowed = RiskDecision(True, CheckId.OK, 0, 0, "", self._fsm.state, self._limits.version)
        self._halted = RiskDecision(False, CheckId.TRADING_HALTED, 0, 0, "trading halted",
                                    self._fsm.state, self._limits.version)

    def _symbol(self, symbol_id: int) -> _Symbol:
        sym = self._symbols.get(symbol_id)
        if sym is None:
            sym = self._symbols[symbol_id] = _Symbol(symbol_id, self._limits.for_symbol(symbol_id),
                                                     self._regsho.symbol(symbol_id))
        return sym

    def _add_working(self, token: str, sym: _Symbol, is_buy: bool, qty: int, price: int) -> None:
        if token in self._working:
            self._remove_working(token)
        self._working[token] = (sym, is_buy, qty, price)
        self._work(sym, is_buy, qty * price * sym.multiplier)
        if is_buy:
            sym.open_buy += qty
            sym.own_buys[token] = price
        else:
            sym.open_sell += qty
            sym.own_sells[token] = price

    def _remove_working(self, token: str) -> None:
        order = self._working.pop(token, None)
        if order is not None:
            sym = order[0]
            self._work(sym, order[1], -order[2] * order[3] * sym.multiplier)
            if order[1]:
                sym.open_buy -= order[2]
                sym.own_buys.pop(token, None)
            else:
                sym.open_sell -= order[2]
                sym.own_sells.pop(token, None)
                marks = sym.sho.marks
                if marks and token not in self._replaced_by:
                    marks.pop(token, None)

    def _recount(self, token: str, qty: int) -> None:
        """A working order's counted quantity becomes `qty` (price and own-price entry unchanged)."""
        sym, is_buy, old, price = self._working[token]
        self._working[token] = (sym, is_buy, qty, price)
        self._work(sym, is_buy, (qty - old) * price * sym.multiplier)
        if is_buy:
            sym.open_buy += qty - old
        else:
            sym.open_sell += qty - old

    def _hold_original(self, orig: str, token: str, held: tuple, qty: int, price: int,
                       rests: bool) -> None:
        """An allowed replace of a working order: until the venue answers, the original may fill
        and the replacement then rest in full (the venue sets its size whatever filled), so the
        two count together, and the original's price stays for self-trade prevention. The
        original is never a replacement in flight itself (check() and on_order_adopted see to it):
        a token is the replacement or the original of one pending replace, never both."""
        sym, is_buy, left, old_price = held
        counted = qty + left
        del self._working[orig]
        self._working[token] = (sym, is_buy, counted, price)
        self._work(sym, is_buy, (counted * price - left * old_price) * sym.multiplier)
        if is_buy:
            sym.open_buy += counted - left
            if rests:
                sym.own_buys[token] = price
        else:
            sym.open_sell += counted - left
            if rests:
                sym.own_sells[token] = price
        self._replacing[token] = [orig, left, old_price, qty, sym.symbol_id, is_buy]
        self._replaced_by[orig] = token

    def _fill_during_replace(self, token: str, qty: int) -> None:
        """A fill of an order whose replace is in flight: of the original, it shrinks what a refused
        replace restores; of the replacement, it shows the venue took the replace."""
        replacement = self._replaced_by.get(token)
        if replacement is not None:
            pending = self._replacing[replacement]
            pending[1] = left = max(pending[1] - qty, 0)
            self._recount(replacement, left + pending[3])
        elif token in self._replacing:
            self._end_replace(token, refused=False)

    def _end_replace(self, token: str, refused: bool) -> None:
        """A replace in flight ends. `token` is the replacement (confirmed, or refused: the original
        rests on with what is left of it) or the original (it left the book first: only the
        replacement can remain, until the venue refuses it as a replace of a dead order)."""
        replacement = token if token in self._replacing else self._replaced_by[token]
        orig, left, old_price, qty, symbol_id, is_buy = self._replacing.pop(replacement)
        del self._replaced_by[orig]
        sym = self._symbols[symbol_id]
        if token == replacement and refused:
            self._remove_working(replacement)
            if left > 0:
                self._add_working(orig, sym, is_buy, left, old_price)
                return
        elif replacement in self._working:
            self._recount(replacement, qty)
        (sym.own_buys if is_buy else sym.own_sells).pop(orig, None)
        if not is_buy:
            sym.sho.marks.pop(orig, None)

    def _work(self, sym: _Symbol, is_buy: bool, delta: int) -> None:
        """`delta` (price4 x shares x multiplier) more working notional on one side of a symbol,
        kept in the account's totals too."""
        buy, sell = sym.work_buy, sym.work_sell
        old = buy if buy > sell else sell          # no max(): this runs for every order sent
        if is_buy:
            sym.work_buy = buy = buy + delta
            self._work_buy += delta
        else:
            sym.work_sell = sell = sell + delta
            self._work_sell += delta
        self._work_gross += (buy if buy > sell else sell) - old

    def _recount_work(self) -> None:
        """Every working notional recounted from the working orders (a multiplier changed, or a
        gateway pickled before they were kept)."""
        self._work_buy = self._work_sell = self._work_gross = 0
        for sym in self._symbols.values():
            sym.work_buy = sym.work_sell = 0
        for sym, is_buy, qty, price in self._working.values():
            self._work(sym, is_buy, qty * price * sym.multiplier)

    def _mark(self, sym: _Symbol) -> None:
        """The symbol's notional at its fair value into gross and net, and the P&L peak moved."""
        old = sym.notional
        new = sym.position * sym.fair * sym.multiplier
        if new != old:                  # else nothing moves but the peak check
            sym.notional = new
            self._gross += abs(new) - abs(old)
            self._net += new - old
        pnl = self._cash + self._net
        if pnl > self._pnl_peak:
            self._pnl_peak = pnl

    def _revalue(self, sym: _Symbol, now_ns: int, *, positions_changed: bool = False,
                 force_reprice: bool = False) -> None:
        """Marks a symbol to fair value, moves the P&L peak and keeps its group's Greeks current:
        options are revalued when the underlying moved REPRICE_MOVE or REPRICE_NS passed (full
        revaluation costs tens of microseconds per option), re-aggregated when positions change."""
        self._mark(sym)
        self._reprice_group(sym, now_ns, positions_changed, force_reprice)

    def _reprice_group(self, sym: _Symbol, now_ns: int, positions_changed: bool = False,
                       force_reprice: bool = False) -> None:
        """_revalue's part for a symbol in an option group (nothing for any other)."""
        group = self._groups.get(sym.underlying_id)
        if group is None:
            return
        if force_reprice or (sym.symbol_id == group.underlying_id and (
                now_ns - group.priced_ns >= REPRICE_NS or
                abs(sym.fair - group.priced_fair) >= group.priced_fair * REPRICE_MOVE)):
            self._refresh_group(group, now_ns)
        elif positions_changed:
            self._refresh_group(group, None)

    def _refresh_group(self, group: _Group, reprice_at: int | None) -> None:
        """Re-aggregates a group; `reprice_at` (now_ns) also revalues every option in it: one C call
        (greekbatch), the grid and packed options kept while the options and limits stay."""
        symbols = self._symbols
        under = symbols[group.underlying_id]
        spot = under.fair / PRICE4
        if reprice_at is not None or not group.grid:
            if not under.fair:
                for symbol_id in group.members:
                    member = symbols[symbol_id]
                    member.risk = member.group = None
            else:
                options = [symbols[s].option for s in group.members[1:]]
                pricer = group.pricer
                if pricer is None or not group.grid or pricer.options != options:
                    lim = self._limits
                    vol_ref = max([o.vol for o in options]) if options else lim.scenario_default_vol
                    group.grid = scenario_grid(lim.scenario_spot_sigmas, vol_ref,
                                               lim.scenario_horizon_days, lim.scenario_vol_shift)
                    pricer = group.pricer = GroupPricer(options, group.grid)
                at = reprice_at if reprice_at is not None else under.md_ns
                group.priced_fair = under.fair
                group.priced_ns = at
                rows = pricer.revalue(spot, at)
                if rows is None:      # the reference: values the rest, or finds them unpriceable
                    self._revalue_reference(group, under, spot, at)
                else:
                    for symbol_id, (risk, lo, hi) in zip(group.members, rows):
                        member = symbols[symbol_id]
                        member.risk = risk
                        member.group = group
                        member.pnl_lo = lo
                        member.pnl_hi = hi
        delta = gamma = vega = 0.0
        scenario = [0.0] * len(group.grid)
        members = [symbols[symbol_id] for symbol_id in group.members]
        for member in members:
            risk = member.risk
            q = member.position
            if risk is None or not q:
                continue
            delta += q * risk.delta
            gamma += q * risk.gamma
            vega += q * risk.vega
            # the same additions, in the same order, as scenario[i] += q * pnl for each i
            scenario[:len(risk.scenario_pnl)] = _add_scaled(scenario, q, risk.scenario_pnl)
        group.delta, group.gamma, group.vega, group.scenario = delta, gamma, vega, scenario
        worst = group.worst = min(scenario) if scenario else 0.0
        lim = self._limits
        # |after - before| <= |qty| x |unit| for each Greek, and the scenario bound moves by at
        # most |qty| x max(|pnl_lo|, |pnl_hi|): so below this many shares nothing can bind.
        # each bound's room is (cap - |level|) / |unit| shares (inf for a zero unit; negative when
        # already past the cap), written inline: this runs for every member at every revaluation
        room_d, room_g, room_v = lim.max_delta - abs(delta), lim.max_gamma - abs(gamma), lim.max_vega - abs(vega)
        floor = worst - self._loss_floor               # the scenario bound's cap - |level|, level 0
        for member in members:
            risk = member.risk
            if risk is None:
                continue
            d, g, v = abs(risk.delta), abs(risk.gamma), abs(risk.vega)
            u = max(abs(member.pnl_lo), abs(member.pnl_hi))
            member.headroom = (1.0 - 1e-9) * min(
                room_d / d if d else _INF, room_g / g if g else _INF, room_v / v if v else _INF,
                floor / u if u else _INF)

    def _revalue_reference(self, group: _Group, under: _Symbol, spot: float, at: int) -> None:
        """_refresh_group's revaluation in Python (greeks.unit_risk, which the C equals), for what
        the C does not mirror: an exception, or integers past int64_t or 2^53. One that raises
        leaves the whole group without a valuation (its orders denied: option-params-missing) and
        latches internal-error with the reason, rather than raising out of the feed that asked."""
        members = [self._symbols[symbol_id] for symbol_id in group.members]
        try:
            risks = [underlying_risk(spot, group.grid)]
            risks += [unit_risk(member.option, spot, at, group.grid) for member in members[1:]]
        except Exception as exc:        # fail closed on any defect, as check() does
            risks = [None] * len(members)
            self._latch(CheckId.INTERNAL_ERROR, f"revaluing {group.underlying_id}: "
                        f"{type(exc).__name__}: {exc}"[:48], at, "risk-gateway")
        for member, risk in zip(members, risks):
            member.risk = risk
            member.group = group
            if risk is None:
                member.headroom = -1.0          # every order on it takes _check_greeks, which denies
            else:
                member.pnl_lo = min(risk.scenario_pnl)
                member.pnl_hi = max(risk.scenario_pnl)

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


def _add_scaled(scenario: list[float], q: int, pnl) -> list[float]:
    """scenario[i] + q * pnl[i] for each i of pnl (which must not be longer than scenario)."""
    if len(pnl) > len(scenario):
        raise IndexError("list index out of range")
    return [s + q * p for s, p in zip(scenario, pnl)]


def _newest_order_ns(state: dict):
    """The latest time in a pickled gateway's windows (rate, duplicates, drift queues), or -inf."""
    times = [*state.get("_submits", ()), *state.get("_modifies", ()), *state.get("_dup_last", {}).values()]
    for sym in state["_symbols"].values():
        times += [queue[-1][0] for queue in (*sym.drift_buy, *sym.drift_sell) if queue]
    return max(times, default=-_INF)


def _reduces(position: int, post: int) -> bool:
    """True when the worst case after the order is smaller in size and not flipped in sign."""
    return abs(post) < abs(position) and (post == 0 or (post > 0) == (position > 0))


def _whole(value) -> int | None:
    """An integer (Python or numpy), or None for anything else (bools, floats, text)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _is_cancel(intent) -> bool:
    try:
        return intent.kind is _CANCEL or (intent.kind is _MODIFY and intent.qty == 0)
    except Exception:
        return False


def _positive_price(value) -> bool:
    """A finite positive number (int, float or a numpy scalar); anything else is bad input."""
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number > 0 and math.isfinite(number)
