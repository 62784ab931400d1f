"""Engine parameters and the symbols it trades, parsed from TOML text into frozen dataclasses.

Owns the engine's own parameter document ([engine], [skew], [guard], [hedge], [fair_value])
and the reading of the [[symbols]] / [[pairs]] / [[options]] tables of the venue's symbols file
(mm_core/venue/default.toml documents that format). Takes text, never a path: the I/O shell reads
files. A bad document raises ConfigError naming the field. Must not know about books or orders.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

from mm_core.gapbuffer import DEFAULT_MAX_BYTES, DEFAULT_MAX_PACKETS
from mm_core.guard import GuardParams
from mm_core.hedger import HedgeParams
from mm_core.inventory import SkewParams
from mm_core.risk.greeks import MAX_EXPIRY_DAYS

__all__ = ["ConfigError", "EngineConfig", "FairValueParams", "SymbolSpec", "PairSpec", "Symbols",
           "symbols_from_toml"]

TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


class ConfigError(ValueError):
    """A config document that does not parse or has a bad field ("section.field: why")."""


# --- range rules: (field, test of (value, the params), what is allowed) -------------------------
# Checked in __post_init__, so a value the engine cannot use fails when the config loads, naming
# the field, never at the first order of a session (an id that does not fit ORDER_SENT, a firm
# OUCH cannot carry) nor as a quietly idle engine (a zero EWMA weight, a zero interval).

_U32_MAX = 2**32 - 1
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
_INT64_TEXT = "an integer TOML allows (a signed 64-bit value)"


def _check_rules(params: Any, rules: tuple) -> None:
    for name, ok, allowed in rules:
        value = getattr(params, name)
        if not ok(value, params):
            raise ConfigError(f"{name}: must be {allowed}, not {value!r}")


def _alpha_rule(width: int, alnum: bool = False) -> Any:
    """Text an OUCH alpha field of `width` carries as it is: printable ASCII, 1..width characters,
    no leading or trailing spaces (the field's padding); `alnum`: letters and digits only."""
    return lambda v, _: (type(v) is str and 0 < len(v) <= width and v.isascii() and v.isprintable()
                         and v == v.strip(" ") and (v.isalnum() or not alnum))


def _weight(v: float, _: Any) -> bool:
    return 0.0 < v <= 1.0


def _positive(v: float, _: Any) -> bool:
    return v > 0


def _not_negative(v: float, _: Any) -> bool:
    return v >= 0


def _ascending(v: tuple, _: Any) -> bool:
    return bool(v) and v[0] > 0 and all(a < b for a, b in zip(v, v[1:]))


_ID = (lambda v, _: 0 <= v <= _U32_MAX, f"within 0..{_U32_MAX} (ORDER_SENT holds it in a uint32)")
_EWMA = (_weight, "within (0, 1] (an EWMA weight)")

_ENGINE_RULES = (
    ("algo_id", *_ID), ("desk_id", *_ID), ("trader_id", *_ID), ("client_id", *_ID),
    ("session_prefix", _alpha_rule(8, alnum=True), "1-8 ASCII letters or digits (it starts every order token)"),
    ("firm", _alpha_rule(4), "1-4 printable ASCII characters without leading or trailing spaces "
                            "(the OUCH Firm field)"),
    ("vol_halflife_ns", _positive, "> 0 (the volatility estimate's half-life, ns)"),
    ("min_depth_ticks", _not_negative, ">= 0"),
    ("adverse_rate_weight", _not_negative, ">= 0"),
    ("toxicity_weight", _not_negative, ">= 0"),
    ("rerequest_timeout_ns", _positive, "> 0 (0 would re-request a gap at every event)"),
    ("rerequest_max_count", lambda v, _: type(v) is int and 1 <= v <= 0xFFFE,
     "an integer 1..65534 (MoldUDP64's message count; 65535 means end of session)"),
    ("gap_buffer_packets", lambda v, _: type(v) is int and v >= 0,
     "an integer >= 0 (packets kept past a market-data gap; 0 keeps none)"),
    ("gap_buffer_bytes", lambda v, _: type(v) is int and v >= 0,
     "an integer >= 0 (bytes of packets kept past a market-data gap; 0 keeps none)"),
    ("risk_refresh_ns", _positive, "> 0"),
    ("metrics_interval_ns", _positive, "> 0"),
    ("markout_horizons_ns", _ascending, "one or more positive horizons, strictly ascending"),
    ("adverse_horizon", lambda v, c: 0 <= v < len(c.markout_horizons_ns),
     "an index into markout_horizons_ns (0 for the first)"),
    ("deny_backoff_ns", _not_negative, ">= 0"),
    ("prune_after_ns", _not_negative, ">= 0"),
    ("requote_rest_ns", _not_negative, ">= 0"),
    ("ack_timeout_ns", _positive, "> 0"),
    # quote sizes are whole lots: under one lot the engine would never quote; over OUCH's u32
    # shares field no quote could be encoded
    ("quote_size", lambda v, c: c.skew.lot <= v <= _U32_MAX, f"at least one lot (skew.lot), at most {_U32_MAX}"),
    ("position_limit", lambda v, c: v >= c.skew.lot, "at least one lot (skew.lot)"),
    ("size_skew", lambda v, _: 0.0 <= v <= 1.0, "within [0, 1]"),
    ("withdraw_at", _weight, "within (0, 1]"),
    ("max_depth_bps", _positive, "> 0"),
    ("max_vol_ratio", lambda v, _: v >= 1.0, ">= 1"),
)

_FAIR_VALUE_RULES = (
    ("base", lambda v, _: v in ("micro", "mid", "weighted"), 'one of "micro", "mid", "weighted"'),
    ("imbalance_levels", lambda v, _: 1 <= v <= 100, "within 1..100 (book levels in the depth imbalance)"),
    ("level_decay", _weight, "within (0, 1]"),
    ("w_imbalance", _not_negative, ">= 0 (0 turns the imbalance term off)"),
    ("w_flow", _not_negative, ">= 0 (0 turns the flow term off)"),
    ("flow_alpha", *_EWMA),
    ("lead_alpha", *_EWMA),
    # the estimator keeps a (n_imb·n_spread)² transition count per symbol: 16 × 16 is 0.5 MB each
    ("n_imb", lambda v, _: 2 <= v <= 16, "within 2..16 (imbalance buckets of the micro-price table)"),
    ("n_spread", lambda v, _: 1 <= v <= 16, "within 1..16 (spread rows of the micro-price table)"),
    ("calibrate_every", _not_negative, ">= 0 (0: no recalibration)"),
)


@dataclass(frozen=True, slots=True)
class FairValueParams:
    base: str = "micro"           # "micro" (Stoikov), "mid" or "weighted" (weighted mid)
    imbalance_levels: int = 3
    level_decay: float = 0.5
    w_imbalance: float = 0.2      # × half spread per unit of multi-level imbalance
    w_flow: float = 0.2           # × half spread per unit of trade-flow signal
    flow_alpha: float = 0.1
    lead_alpha: float = 0.05
    lead_prior: float = 0.0
    lead_min_samples: int = 20    # the lead uses lead_prior until its beta has this many samples
    n_imb: int = 4
    n_spread: int = 4
    calibrate_every: int = 500    # book observations between micro-price recalibrations; 0 = off
    # a starting micro-price table G*(imbalance bucket, spread) in ticks, row by row (n_spread rows
    # of n_imb values), used by every symbol until online calibration replaces it; () = zeros
    micro_table: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.lead_min_samples <= 1_000_000_000:   # the C kernel holds it in an int64
            raise ValueError("lead_min_samples must be within 0..1000000000")
        _check_rules(self, _FAIR_VALUE_RULES)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    session_prefix: str = "MM"
    firm: str = "MMCO"
    algo_id: int = 1
    desk_id: int = 1
    trader_id: int = 1
    client_id: int = 1
    quoted: tuple[str, ...] = ()          # symbol names to quote; empty = every stock symbol
    quote_size: int = 200
    position_limit: int = 2_000
    size_skew: float = 0.5
    withdraw_at: float = 0.8
    vol_halflife_ns: int = 5_000_000_000  # the realized-volatility EWMA's half-life in time
    min_depth_ticks: float = 0.5          # each side at least this far from fair value
    max_depth_bps: int = 100              # each side at most this far from fair value (and inside
                                          # the risk gateway's fair-value collar)
    max_vol_ratio: float = 10.0           # quoting volatility at most this multiple of the prior
    requote_rest_ns: int = 50_000_000     # a quote rests this long before a one-tick step toward
                                          # the market (moves away, size-downs, pulls: at once)
    adverse_rate_weight: float = 0.5
    toxicity_weight: float = 1.0
    ack_timeout_ns: int = 2_000_000_000
    rerequest_timeout_ns: int = 500_000_000
    # messages asked for in one re-request: at most what the venue answers to one (the embedded
    # venue's 2,000), so a full answer that leaves the gap open is followed by the next request at
    # once, not after rerequest_timeout with the quotes pulled
    rerequest_max_count: int = 2000
    # packets that come past a gap are kept (this many, of at most this many bytes together) and
    # applied once the gap before them is filled; the re-request asks only for what is missing.
    # One past either cap is dropped (counted, alerted) and asked for again
    gap_buffer_packets: int = DEFAULT_MAX_PACKETS
    gap_buffer_bytes: int = DEFAULT_MAX_BYTES
    risk_refresh_ns: int = 100_000_000    # re-send an unchanged fair value to the gateway this often
    metrics_interval_ns: int = 1_000_000_000
    markout_horizons_ns: tuple[int, ...] = (100_000_000, 1_000_000_000, 5_000_000_000)
    adverse_horizon: int = 1
    deny_backoff_ns: int = 100_000_000
    prune_after_ns: int = 60_000_000_000
    skew: SkewParams = field(default_factory=SkewParams)
    guard: GuardParams = field(default_factory=GuardParams)
    hedge: HedgeParams = field(default_factory=HedgeParams)
    fair_value: FairValueParams = field(default_factory=FairValueParams)

    def __post_init__(self) -> None:
        """ConfigError naming the first field the engine cannot work with (from_toml prefixes the
        section): what would otherwise fail at the first book or order, or quietly never quote."""
        _check_rules(self, _ENGINE_RULES)

    @property
    def vol_rate(self) -> float:
        """The volatility EWMA's decay per second (ln 2 / the half-life): VolEstimator's rate."""
        return math.log(2.0) / (self.vol_halflife_ns / 1e9)

    @classmethod
    def from_toml(cls, text: str) -> "EngineConfig":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not TOML: {exc}") from None
        known = {"engine", "skew", "guard", "hedge", "fair_value"}
        for key in doc:
            if key not in known:
                raise ConfigError(f"{key}: unknown section (expected one of {sorted(known)})")
        sub = {name: _build(kind, doc.get(name, {}), name)
               for name, kind in (("skew", SkewParams), ("guard", GuardParams),
                                  ("hedge", HedgeParams), ("fair_value", FairValueParams))}
        engine = doc.get("engine", {})
        if not isinstance(engine, dict):
            raise ConfigError("engine: must be a table ([engine])")
        for name in sub:
            if name in engine:
                raise ConfigError(f"engine.{name}: give it as its own [{name}] section")
        return _build(cls, {**engine, **sub}, "engine")


# fields an earlier config format had, and what took their place
_REPLACED = {"engine.vol_alpha": "replaced by vol_halflife_ns (the volatility estimate is an EWMA in time, "
                                 "not per move)"}


def _build(kind: type, values: Any, section: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: must be a table")
    defaults = kind()
    types = {f.name: str(f.type) for f in dataclasses.fields(kind)}
    names = set(types)
    out = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{section}.{key}: {_REPLACED.get(f'{section}.{key}', 'unknown field')}")
        default = getattr(defaults, key)
        if dataclasses.is_dataclass(default):
            out[key] = value
            continue
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"{section}.{key}: must be a list")
            declared = types[key]          # e.g. "tuple[float, ...]" (annotations are strings here)
            elem = float if "float" in declared else int if "int" in declared else str
            if elem is float and all(type(v) in (int, float) for v in value):
                value = [float(v) for v in value]
            if not all(type(v) is elem for v in value):
                raise ConfigError(f"{section}.{key}: every item must be {elem.__name__}")
            if elem is int and not all(_INT64_MIN <= v <= _INT64_MAX for v in value):
                raise ConfigError(f"{section}.{key}: every item must be {_INT64_TEXT}")
            value = tuple(value)
        elif isinstance(default, bool):
            if type(value) is not bool:
                raise ConfigError(f"{section}.{key}: must be true or false")
        elif isinstance(default, int):
            if type(value) is not int:
                raise ConfigError(f"{section}.{key}: must be an integer")
            if not _INT64_MIN <= value <= _INT64_MAX:      # tomllib reads any size; the C kernels cannot
                raise ConfigError(f"{section}.{key}: must be {_INT64_TEXT}, not {value}")
        elif isinstance(default, float):
            if type(value) not in (int, float) or not math.isfinite(value):
                raise ConfigError(f"{section}.{key}: must be a finite number")
            value = float(value)
        elif isinstance(default, str) and type(value) is not str:
            raise ConfigError(f"{section}.{key}: must be a string")
        out[key] = value
    if kind is FairValueParams and out.get("micro_table"):
        size = out.get("n_imb", 4) * out.get("n_spread", 4)
        if len(out["micro_table"]) != size:
            raise ConfigError(f"{section}.micro_table: needs n_spread × n_imb = {size} numbers")
    try:
        return kind(**out)
    except ConfigError as exc:                 # a range rule: "field: must be ..."
        raise ConfigError(f"{section}.{exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{section}: {exc}") from None


# --- symbols ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SymbolSpec:
    name: str
    id: int                      # ITCH stock locate; the index of every per-symbol array
    reference_price: int         # price4
    half_penny: bool
    volatility: float            # annualised
    is_option: bool = False
    underlying: int = 0          # an option's underlying symbol id (0 for a symbol)
    expiry_days: float = 0.0     # an option's days to expiry, counted from the session's start
    is_call: bool = True         # an option's right (the venue's "C"/"P")

    @property
    def prior_sigma(self) -> float:
        """Volatility as price4 per sqrt(second) of trading time, from the annual figure."""
        return self.volatility * self.reference_price / math.sqrt(TRADING_SECONDS_PER_YEAR)


@dataclass(frozen=True, slots=True)
class PairSpec:
    a: int          # symbol id of the factor (leader, the hedge instrument)
    b: int          # symbol id loading on a (follower, hedged in a)
    correlation: float


@dataclass(frozen=True, slots=True)
class Symbols:
    symbols: tuple[SymbolSpec, ...]
    pairs: tuple[PairSpec, ...]

    @property
    def n_slots(self) -> int:
        return max(s.id for s in self.symbols) + 1

    def by_name(self, name: str) -> SymbolSpec:
        for s in self.symbols:
            if s.name == name:
                return s
        raise ConfigError(f"symbols: no symbol named {name!r}")

    def by_id(self) -> dict[int, SymbolSpec]:
        return {s.id: s for s in self.symbols}


def _field(table: dict, where: str, key: str, kind: type, default: Any = None) -> Any:
    if key not in table:
        if default is None:
            raise ConfigError(f"{where}.{key}: missing")
        return default
    value = table[key]
    ok = type(value) is kind or (kind is float and type(value) is int)
    if not ok:
        raise ConfigError(f"{where}.{key}: must be {kind.__name__}")
    return kind(value)


def _bounded(where: str, key: str, value: float, lo: float, hi: float, open_lo: bool = False) -> float:
    if not (math.isfinite(value) and (lo < value if open_lo else lo <= value) and value <= hi):
        raise ConfigError(f"{where}.{key}: must be within {'(' if open_lo else '['}{lo:g}, {hi:g}], not {value!r}")
    return value


def _option_fields(table: dict, where: str, symbols: list[SymbolSpec]) -> dict:
    """An [[options]] row's underlying (a [[symbols]] name, as its id), expiry_days and right."""
    underlying = _field(table, where, "underlying", str)
    ids = {s.name: s.id for s in symbols if not s.is_option}
    if underlying not in ids:
        raise ConfigError(f"{where}.underlying: unknown symbol {underlying!r}")
    expiry_days = _bounded(where, "expiry_days", _field(table, where, "expiry_days", float), 0.0,
                           MAX_EXPIRY_DAYS, open_lo=True)
    right = _field(table, where, "right", str)
    if right not in ("C", "P"):
        raise ConfigError(f"{where}.right: must be \"C\" or \"P\"")
    return {"underlying": ids[underlying], "expiry_days": expiry_days, "is_call": right == "C"}


def _tables(doc: dict, kind: str) -> list[dict]:
    """The [[kind]] array of tables, or ConfigError for any other shape (a scalar, a list of
    values, a single [kind] table)."""
    rows = doc.get(kind, [])
    if not isinstance(rows, list) or not all(isinstance(t, dict) for t in rows):
        raise ConfigError(f"{kind}: must be an array of tables, one [[{kind}]] per entry")
    return rows


def symbols_from_toml(text: str) -> Symbols:
    """The [[symbols]], [[options]] and [[pairs]] tables of a venue symbols file (other tables
    belong to the venue and are ignored here)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not TOML: {exc}") from None
    specs: list[SymbolSpec] = []
    for kind, is_option in (("symbols", False), ("options", True)):
        for i, t in enumerate(_tables(doc, kind)):
            where = f"{kind}[{i}]"
            name = _field(t, where, "name", str)
            if not _alpha_rule(8)(name, None):
                raise ConfigError(f"{where}.name: {name!r} must be 1-8 printable ASCII characters "
                                  "(the ITCH/OUCH Stock field), without trailing spaces")
            sid = _field(t, where, "id", int)
            if not 1 <= sid <= 65535:
                raise ConfigError(f"{where}.id: must be 1..65535")
            option = {}
            if is_option:
                ref = _field(t, where, "strike", int)
                vol = _field(t, where, "implied_vol", float)
                option = _option_fields(t, where, specs)
            else:
                ref = _field(t, where, "reference_price", int)
                vol = _field(t, where, "volatility", float, 0.0)
            if ref <= 0:
                raise ConfigError(f"{where}.{'strike' if is_option else 'reference_price'}: must be > 0")
            # as the venue's parser: a vol outside 0..10 (or NaN) gives a nonsense prior sigma
            _bounded(where, "implied_vol" if is_option else "volatility", vol, 0.0, 10.0, open_lo=is_option)
            specs.append(SymbolSpec(name, sid, ref, _field(t, where, "half_penny", bool, False),
                                    vol, is_option, **option))
    if not specs:
        raise ConfigError("symbols: no [[symbols]] table")
    names = [s.name for s in specs]
    ids = [s.id for s in specs]
    if len(set(names)) != len(names) or len(set(ids)) != len(ids):
        raise ConfigError("symbols: names and ids must be unique")
    by_name = {s.name: s for s in specs}
    pairs = []
    for i, t in enumerate(_tables(doc, "pairs")):
        where = f"pairs[{i}]"
        a, b = _field(t, where, "a", str), _field(t, where, "b", str)
        if a not in by_name or b not in by_name or a == b:
            raise ConfigError(f"{where}: a and b must name two different symbols")
        correlation = _bounded(where, "correlation", _field(t, where, "correlation", float, 0.0), -1.0, 1.0)
        pairs.append(PairSpec(by_name[a].id, by_name[b].id, correlation))
    return Symbols(tuple(sorted(specs, key=lambda s: s.id)), tuple(pairs))
