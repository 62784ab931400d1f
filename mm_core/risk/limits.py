"""Versioned risk limits parsed from a TOML document.

Owns the document's schema, its validation (LimitsError names the field) and the conversion to
internal units: windows in ns, money in price4 units (currency x 10_000). Every limit must be
stated explicitly: a missing limit is an error, never "unlimited". The Reg SHO table ([reg_sho]:
easy-to-borrow list, locates, bona fide market-making symbols) may be left out: without it no
short sale has a locate, the strictest reading. Knows nothing of positions.
"""
from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

from mm_core.risk.errors import LimitsError
from mm_core.risk.greeks import scenario_move

__all__ = ["Limits", "SymbolLimits", "PRICE4", "EXAMPLE_TOML", "CLOCK_PROFILES"]

PRICE4 = 10_000           # price4: 4 implied decimals
# The clock profiles of DESIGN.md (RTS 25 HFT, RTS 25 other algo, CAT/FINRA 4590); the runner
# judges compliance for the one named here and feeds the verdict to the gateway.
CLOCK_PROFILES = ("eu-hft", "eu-algo", "us-cat")
_MS = 1_000_000           # ns per ms
_U32 = 2**32 - 1


@dataclass(frozen=True, slots=True)
class SymbolLimits:
    max_order_qty: int
    max_order_value: int      # price4 x shares
    max_position: int         # |position| incl. the worst case of open orders


@dataclass(frozen=True, slots=True)      # slots: the order path reads a dozen of them per order
class Limits:
    version: int                         # journaled (u32) with every decision
    latch_state: str                     # "HALTED" or "REDUCING"
    start_reconciled: bool               # a fresh session with nothing to reconcile
    clock_profile: str
    max_market_age_ns: int
    max_clock_age_ns: int
    rate_window_ns: int
    max_submits: int
    max_modifies: int
    max_cancels: int                     # cancels pass regardless; the count is reported
    throttle_max_fills: int
    throttle_window_ns: int
    duplicate_window_ns: int
    collar_fair_bps: int
    collar_reference_bps: int
    collar_drift_bps: int
    collar_drift_window_ns: int
    max_open_orders: int
    max_gross_notional: int              # price4 x shares
    max_net_notional: int                # price4 x shares
    max_drawdown: int                    # price4
    restricted: frozenset[int]
    safe_size_multiplier: float
    safe_spread_multiplier: float
    max_delta: float                     # share-equivalents per underlying
    max_gamma: float                     # delta shares per 1% move, per underlying
    max_vega: float                      # currency per vol point, per underlying
    scenario_spot_sigmas: float
    scenario_vol_shift: float            # absolute, 0.05 = 5 vol points
    scenario_horizon_days: float
    scenario_max_loss: int               # price4
    scenario_default_vol: float          # underlying vol when no option on it gives one
    defaults: SymbolLimits
    symbols: Mapping[int, SymbolLimits] = field(default_factory=lambda: MappingProxyType({}))
    digest: str = ""                     # sha256 of the document text
    # Reg SHO 203(b) ([reg_sho], optional: without it no short sale has a locate): symbols on the
    # easy-to-borrow list, shares located per symbol for the day, and the symbols whose quotes may
    # use the bona fide market-making exception when no locate is left
    easy_to_borrow: frozenset[int] = frozenset()
    locates: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    bona_fide_mm: frozenset[int] = frozenset()

    def for_symbol(self, symbol_id: int) -> SymbolLimits:
        return self.symbols.get(symbol_id, self.defaults)

    def check_scenario_vol(self, vol: float, whose: str) -> None:
        """LimitsError when the scenario grid of an underlying whose volatility is `vol` (given by
        `whose`) moves spot to zero or below: every option on it would fail to revalue."""
        move = scenario_move(self.scenario_spot_sigmas, vol, self.scenario_horizon_days)
        if not move < 1.0:
            raise LimitsError("scenario.spot_sigmas", (
                f"{self.scenario_spot_sigmas:g} sigmas over scenario.horizon_days "
                f"{self.scenario_horizon_days:g} at {whose} {vol:g} move spot by -{move:.0%}: "
                "spot_sigmas x vol x sqrt(horizon_days / 365) must stay below 1"))

    def __setstate__(self, state) -> None:
        """Loads pickled limits: the field values in order, as pickled now, or a dict of them, as
        pickled before the slots; a field the pickle does not have (added since) takes its
        default, as the dict's class attribute gave it."""
        named = state if isinstance(state, dict) else dict(zip([f.name for f in fields(self)], state))
        for f in fields(self):
            if f.name in named:
                value = named[f.name]
            elif f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                raise LimitsError(f.name, "missing from the pickled limits")
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_toml(cls, text: str) -> "Limits":
        """Parse and validate a limits document; raises LimitsError naming the bad field."""
        if not isinstance(text, str):
            raise LimitsError("<document>", f"expected TOML text, got {type(text).__name__}")
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LimitsError("<document>", f"not valid TOML: {exc}") from None
        r = _Reader(doc)
        limits = cls(
            version=r.integer("version", 0, _U32),
            latch_state=r.choice("latch_state", ("HALTED", "REDUCING"), "HALTED"),
            start_reconciled=r.boolean("start_reconciled", False),
            clock_profile=r.choice("clock_profile", CLOCK_PROFILES, "eu-hft"),
            max_market_age_ns=r.integer("staleness.max_market_age_ms", 1) * _MS,
            max_clock_age_ns=r.integer("staleness.max_clock_age_ms", 1) * _MS,
            rate_window_ns=r.integer("rates.window_ms", 1) * _MS,
            max_submits=r.integer("rates.max_submits", 1),
            max_modifies=r.integer("rates.max_modifies", 1),
            max_cancels=r.integer("rates.max_cancels", 1),
            throttle_max_fills=r.integer("throttle.max_fills", 1),
            throttle_window_ns=r.integer("throttle.window_ms", 1) * _MS,
            duplicate_window_ns=r.integer("duplicate.window_ms", 0) * _MS,
            collar_fair_bps=r.integer("collar.fair_bps", 0, 10_000),
            collar_reference_bps=r.integer("collar.reference_bps", 0, 10_000),
            collar_drift_bps=r.integer("collar.drift_bps", 0, 10_000),
            collar_drift_window_ns=r.integer("collar.drift_window_ms", 1) * _MS,
            max_open_orders=r.integer("account.max_open_orders", 1),
            max_gross_notional=r.integer("account.max_gross_notional", 0) * PRICE4,
            max_net_notional=r.integer("account.max_net_notional", 0) * PRICE4,
            max_drawdown=r.integer("account.max_drawdown", 0) * PRICE4,
            restricted=frozenset(r.int_list("account.restricted")),
            safe_size_multiplier=r.number("safe_mode.size_multiplier", 0.0, 1.0),
            safe_spread_multiplier=r.number("safe_mode.spread_multiplier", 1.0, 1000.0),
            max_delta=r.number("greeks.max_delta", 0.0),
            max_gamma=r.number("greeks.max_gamma", 0.0),
            max_vega=r.number("greeks.max_vega", 0.0),
            scenario_spot_sigmas=r.number("scenario.spot_sigmas", 0.0, 100.0),
            scenario_vol_shift=r.number("scenario.vol_shift", 0.0, 10.0),
            scenario_horizon_days=r.number("scenario.horizon_days", 0.0, 3650.0),
            scenario_max_loss=r.integer("scenario.max_loss", 0) * PRICE4,
            scenario_default_vol=r.number("scenario.default_vol", 0.0, 10.0),
            defaults=r.symbol_limits("defaults", None),
            digest=hashlib.sha256(text.encode()).hexdigest(),
            easy_to_borrow=frozenset(r.int_list("reg_sho.easy_to_borrow")),
            locates=MappingProxyType(r.locates("reg_sho.locates")),
            bona_fide_mm=frozenset(r.int_list("reg_sho.bona_fide_market_making")),
        )
        symbols = {}
        for key in r.table_keys("symbols"):
            symbol_id = _symbol_key("symbols", key)
            symbols[symbol_id] = r.symbol_limits(f"symbols.{key}", limits.defaults)
        r.reject_unknown()
        limits.check_scenario_vol(limits.scenario_default_vol, "scenario.default_vol")
        object.__setattr__(limits, "symbols", MappingProxyType(symbols))
        return limits


_SYMBOL_KEYS = ("max_order_qty", "max_order_value", "max_position")


def _symbol_key(path: str, key: str) -> int:
    """A table key that names a symbol: its integer id."""
    try:
        symbol_id = int(key)
    except ValueError:
        raise LimitsError(f"{path}.{key}", "keyed by integer symbol id") from None
    if not 0 <= symbol_id <= _U32:
        raise LimitsError(f"{path}.{key}", "symbol id out of range")
    return symbol_id


class _Reader:
    """Typed access to a parsed document by dotted path, remembering which keys were used."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.used: set[str] = set()

    def _get(self, path: str, required: bool = True) -> Any:
        node: Any = self.doc
        parts = path.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict):
                raise LimitsError(".".join(parts[:i]), "expected a table")
            if part not in node:
                if required:
                    raise LimitsError(path, "required field is missing")
                return None
            node = node[part]
        if not isinstance(node, dict):
            self.used.add(path)
        return node

    def integer(self, path: str, lo: int | None = None, hi: int | None = None,
                default: int | None = None, *, required: bool = True) -> int:
        value = self._get(path, required and default is None)
        if value is None:
            return default  # type: ignore[return-value]
        if isinstance(value, bool) or not isinstance(value, int):
            raise LimitsError(path, f"expected an integer, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise LimitsError(path, f"{value} is outside [{lo}, {hi if hi is not None else 'inf'}]")
        return value

    def number(self, path: str, lo: float, hi: float = math.inf) -> float:
        value = self._get(path)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LimitsError(path, f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or not lo <= value <= hi:
            raise LimitsError(path, f"{value} is outside [{lo}, {hi}]")
        return value

    def boolean(self, path: str, default: bool) -> bool:
        value = self._get(path, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise LimitsError(path, f"expected true or false, got {value!r}")
        return value

    def string(self, path: str, default: str) -> str:
        value = self._get(path, required=False)
        if value is None:
            return default
        if not isinstance(value, str):
            raise LimitsError(path, f"expected a string, got {value!r}")
        return value

    def choice(self, path: str, options: tuple[str, ...], default: str) -> str:
        value = self.string(path, default)
        if value not in options:
            raise LimitsError(path, f"{value!r} is not one of {', '.join(options)}")
        return value

    def int_list(self, path: str) -> list[int]:
        value = self._get(path, required=False)
        if value is None:
            return []
        if not isinstance(value, list) or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value):
            raise LimitsError(path, "expected a list of non-negative integer symbol ids")
        return value

    def table_keys(self, path: str) -> list[str]:
        value = self._get(path, required=False)
        if value is None:
            return []
        if not isinstance(value, dict):
            raise LimitsError(path, "expected a table")
        return list(value)

    def locates(self, path: str) -> dict[int, int]:
        """A table of symbol id = located shares (each a non-negative integer)."""
        located = {}
        for key in self.table_keys(path):
            located[_symbol_key(path, key)] = self.integer(f"{path}.{key}", 0, _U32)
        return located

    def symbol_limits(self, path: str, base: SymbolLimits | None) -> SymbolLimits:
        """A [defaults] table (every key required) or a [symbols.N] table (keys override base)."""
        self._get(path)
        values = {}
        for key in _SYMBOL_KEYS:
            inherited = None if base is None else getattr(base, key)
            if key == "max_order_value" and inherited is not None:
                inherited //= PRICE4
            # an order larger than OUCH's u32 shares field could not be encoded: refused here,
            # not raised by the encoder on the order path
            values[key] = self.integer(f"{path}.{key}", 1, _U32 if key == "max_order_qty" else None,
                                       default=inherited)
        values["max_order_value"] *= PRICE4
        return SymbolLimits(**values)

    def reject_unknown(self) -> None:
        """Typos must not silently fall back to defaults."""
        def walk(node: dict[str, Any], prefix: str) -> None:
            for key, value in node.items():
                path = f"{prefix}{key}"
                if isinstance(value, dict):
                    walk(value, path + ".")
                elif path not in self.used:
                    raise LimitsError(path, "unknown field")
        walk(self.doc, "")


EXAMPLE_TOML = """\
# Risk limits (mm_core.risk). Money in whole currency units; windows in ms.
version = 1
latch_state = "HALTED"        # or "REDUCING": where a fail-closed fault latches
start_reconciled = false      # true only for a fresh session with nothing to reconcile
clock_profile = "eu-hft"

[staleness]
max_market_age_ms = 2000
max_clock_age_ms = 3000

[rates]
window_ms = 1000
max_submits = 200
max_modifies = 200
max_cancels = 400

[throttle]                    # RTS 6 Art. 15(3): N fills within the window disable trading
max_fills = 100
window_ms = 1000

[duplicate]
window_ms = 50

[collar]
fair_bps = 200
reference_bps = 500
drift_bps = 1000
drift_window_ms = 60000

[account]
max_open_orders = 100
max_gross_notional = 5000000
max_net_notional = 2000000
max_drawdown = 100000
restricted = []

[safe_mode]
size_multiplier = 0.5
spread_multiplier = 2.0

[greeks]                      # per underlying
max_delta = 20000             # share-equivalents
max_gamma = 5000              # delta shares per 1% move
max_vega = 50000              # currency per vol point

[scenario]
spot_sigmas = 3.0
vol_shift = 0.05
horizon_days = 1.0
max_loss = 250000
default_vol = 0.3

[defaults]
max_order_qty = 5000
max_order_value = 500000
max_position = 20000

[reg_sho]                     # Reg SHO 203(b): a short sale (marked T or E) needs a locate
easy_to_borrow = [1, 2, 3]    # symbol ids on the easy-to-borrow list: no per-order locate
bona_fide_market_making = []  # symbol ids whose quotes may short without a locate (203(b)(2)(iii))

[reg_sho.locates]             # symbol id = shares located for the day (used up by short sales)
"""
