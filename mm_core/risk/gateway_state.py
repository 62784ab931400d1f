"""What the risk gateway keeps per symbol (_Symbol: limits, position, working counts, collars,
market inputs, option risk), per option group (_Group: Greeks and scenario P&L), and per working
order (OpenOrder). Plain state with its pickling; the rules that read it are the gateway's.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from journal.catalogue import Side
from mm_core.risk.greekbatch import GroupPricer
from mm_core.risk.greeks import OptionParams, UnitRisk
from mm_core.risk.limits import SymbolLimits
from mm_core.risk.regsho import ShortSales


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """A working order as the OMS sees it, for `on_order_state` snapshots."""

    token: str
    symbol_id: int
    side: Side
    price: int
    qty: int            # remaining quantity
    mark: str = ""      # a sell's OUCH side byte (S long, T short, E short exempt); "" unknown,


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
