"""Venue and symbols config: a small TOML file parsed into frozen dataclasses, checked field by field.

Owns the file format (below) and its validation; a bad file raises ConfigError naming the field,
e.g. "symbols[1].reference_price: must be an integer > 0". Must not know about sockets or books.
The trading engine reads the same [[symbols]], [[pairs]] and [[options]] tables.

Format (see default.toml, shipped in this package, for every key with its default):
  [venue]      session (<=10 letters and digits, "" = generated), seed, host (must be 127.0.0.1), ouch_port,
               itch_port (MoldUDP64 destination), itch_group (an IPv4 multicast group the
               MoldUDP64 packets go to instead of host:itch_port; "" = unicast), itch_interface
               (the local IPv4 address they leave from: IP_MULTICAST_IF and their source
               address), itch_ttl (0..255, default 1: the link only), rerequest_port, heartbeat_interval,
               heartbeat_timeout, login_timeout, log_dir, fsync_interval, history, duration,
               max_messages, max_shares; seconds are floats, ports 0..65535 (0 = any free port);
               per source address (login_throttle.py; clients on one address share them):
               max_pending_logins (connections not logged in yet at once, default 8; more are
               refused), login_failures (default 20) connections that end without a login
               (login timeout, rejected login, error or close before it) within
               login_failure_window (60 s) start a cool-off of login_cooloff (10 s) during which
               new connections are refused; a client that logs in promptly never counts
  [[users]]    username (<=6 letters and digits), password (<=10 chars), firm (<=4 chars)
  [flow]       background flow parameters (latent_step, noise_*, informed_*, lp_*, lot)
  [[symbols]]  name (<=8 chars), id (ITCH stock locate 1..65535), reference_price (price4 int;
               the prior day's close: Rule 201's reference, see regsho.py),
               half_penny (bool: $0.005 tick tier), volatility (annualised fraction)
  [[pairs]]    a, b (symbol names), correlation (-1..1): b's latent path loads on a's shocks
  [[options]]  name, id, underlying (a symbol), strike (price4), expiry_days (at most
               mm_core.risk.greeks.MAX_EXPIRY_DAYS), right ("C"/"P"),
               implied_vol, half_penny; priced off the latent underlying by Black-Scholes
  [calendar]   holidays: the exchange's full-day closures, TOML dates (2026-11-26) or
               "YYYY-MM-DD" strings, each a weekday, no repeats (see tradingdays.py)
Missing keys (and a missing [calendar]) take the defaults from default.toml; unknown keys are
errors (typos must not pass).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import math
import pathlib
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Callable

from mm_core.risk.greeks import MAX_EXPIRY_DAYS
from mm_core.venue.errors import ConfigError
from mm_core.venue.matching import MAX_PRICE, Listing
from mm_core.venue.tradingdays import TradingCalendar

DEFAULT_PATH = pathlib.Path(__file__).with_name("default.toml")


@dataclass(frozen=True, slots=True)
class VenueSettings:
    session: str
    seed: int
    host: str
    ouch_port: int
    itch_port: int
    itch_group: str
    itch_interface: str
    itch_ttl: int
    rerequest_port: int
    heartbeat_interval: float
    heartbeat_timeout: float
    login_timeout: float
    max_pending_logins: int
    login_failures: int
    login_failure_window: float
    login_cooloff: float
    log_dir: str
    fsync_interval: float
    history: int
    duration: float
    max_messages: int
    max_shares: int


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password: str
    firm: str


@dataclass(frozen=True, slots=True)
class FlowSettings:
    latent_step: float
    noise_rate: float
    noise_marketable: float
    noise_max_resting: int
    informed_rate: float
    informed_horizon: float
    informed_edge: int
    lp_count: int
    lp_half_spread: int
    lp_size: int
    lp_refresh: float
    lot: int


@dataclass(frozen=True, slots=True)
class SymbolConfig:
    name: str
    id: int
    reference_price: int
    half_penny: bool
    volatility: float


@dataclass(frozen=True, slots=True)
class PairConfig:
    a: str
    b: str
    correlation: float


@dataclass(frozen=True, slots=True)
class OptionConfig:
    name: str
    id: int
    underlying: str
    strike: int
    expiry_days: float
    right: str
    implied_vol: float
    half_penny: bool


@dataclass(frozen=True, slots=True)
class VenueConfig:
    venue: VenueSettings
    users: tuple[User, ...]
    flow: FlowSettings
    symbols: tuple[SymbolConfig, ...]
    pairs: tuple[PairConfig, ...]
    options: tuple[OptionConfig, ...]
    calendar: TradingCalendar = TradingCalendar()

    def listings(self) -> list[Listing]:
        """Every tradable instrument (symbols, then options) for the matching engine."""
        return ([Listing(s.name, s.id, s.half_penny) for s in self.symbols]
                + [Listing(o.name, o.id, o.half_penny) for o in self.options])

    def with_venue(self, **changes: Any) -> "VenueConfig":
        """A copy with some [venue] settings replaced (CLI flags, tests); values are re-checked."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(VenueSettings)}
        if unknown:
            raise ConfigError(f"venue.{sorted(unknown)[0]}", "unknown setting")
        raw = dataclasses.asdict(self.venue) | changes
        return dataclasses.replace(self, venue=_build(VenueSettings, raw, "venue", _VENUE_CHECKS))

    def with_flow(self, **changes: Any) -> "VenueConfig":
        raw = dataclasses.asdict(self.flow) | changes
        return dataclasses.replace(self, flow=_build(FlowSettings, raw, "flow", _FLOW_CHECKS))


# ----------------------------------------------------------------------------- checks
Check = Callable[[Any], str]      # returns "" when fine, else the problem


def _int(lo: int, hi: int | None = None) -> Check:
    def check(v: Any) -> str:
        if not isinstance(v, int) or isinstance(v, bool):
            return "must be an integer"
        if v < lo or (hi is not None and v > hi):
            return f"must be in {lo}..{hi}" if hi is not None else f"must be an integer >= {lo}"
        return ""
    return check


def _num(lo: float, hi: float | None = None, open_lo: bool = False) -> Check:
    def check(v: Any) -> str:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return "must be a finite number"
        if (v <= lo if open_lo else v < lo) or (hi is not None and v > hi):
            bound = f"> {lo}" if open_lo else f">= {lo}"
            return f"must be {bound}" + (f" and <= {hi}" if hi is not None else "")
        return ""
    return check


def _text(max_len: int, min_len: int = 1) -> Check:
    def check(v: Any) -> str:
        if not isinstance(v, str):
            return "must be a string"
        if not min_len <= len(v) <= max_len or not v.isascii() or not v.isprintable():
            return f"must be {min_len}..{max_len} printable ASCII characters"
        if v != v.strip():
            return "must not have leading or trailing spaces"
        return ""
    return check


def _name(max_len: int, min_len: int = 1) -> Check:
    """A SoupBinTCP session name or username: the venue also names its files after it."""
    text = _text(max_len, min_len)

    def check(v: Any) -> str:
        problem = text(v)
        if problem or v.isalnum() or not v:
            return problem
        return f"must be {min_len}..{max_len} letters and digits (it names the venue's log files)"
    return check


def _boolean(v: Any) -> str:
    return "" if isinstance(v, bool) else "must be true or false"


def _loopback(v: Any) -> str:
    return "" if v == "127.0.0.1" else "must be 127.0.0.1 (the venue binds loopback only)"


def _group(v: Any) -> str:
    """"" (unicast to host:itch_port) or an IPv4 multicast group."""
    if v == "":
        return ""
    try:
        multicast = isinstance(v, str) and ipaddress.IPv4Address(v).is_multicast
    except ValueError:
        multicast = False
    return "" if multicast else f'must be "" (unicast) or an IPv4 multicast address (224.0.0.0/4), not {v!r}'


def _interface(v: Any) -> str:
    """A local unicast IPv4 address: the group's packets leave from it and carry it as their
    source, which subscribers filter on (0.0.0.0 would leave both to the kernel's route)."""
    try:
        address = ipaddress.IPv4Address(v) if isinstance(v, str) else None
    except ValueError:
        address = None
    if address is None or address.is_multicast or address.is_unspecified:
        return f"must be the IPv4 address of a local interface (e.g. 127.0.0.1), not {v!r}"
    return ""


def _right(v: Any) -> str:
    return "" if v in ("C", "P") else 'must be "C" or "P"'


# A run lasts at most a day: the venue stamps ITCH/OUCH times from its session date's midnight (48
# bits of nanoseconds, 78 h), a session's limits, journal and reports are one trading day's, and
# the bound keeps every deadline computed from a duration a finite count of nanoseconds. Timeouts
# get the same bound: a finite 1e300 s is "never" in all but name.
MAX_DURATION_S = 24 * 3600.0
PORT = _int(0, 65535)
SECONDS = _num(0, MAX_DURATION_S, open_lo=True)
_VENUE_CHECKS = {
    "session": _name(10, 0), "seed": _int(0), "host": _loopback, "ouch_port": PORT,
    "itch_port": _int(1, 65535), "itch_group": _group, "itch_interface": _interface,
    "itch_ttl": _int(0, 255), "rerequest_port": PORT,
    "heartbeat_interval": SECONDS, "heartbeat_timeout": SECONDS,
    "login_timeout": SECONDS, "max_pending_logins": _int(1),
    "login_failures": _int(1), "login_failure_window": SECONDS,
    "login_cooloff": SECONDS,
    "log_dir": lambda v: "" if isinstance(v, str) else "must be a string",
    "fsync_interval": _num(0), "history": _int(1), "duration": SECONDS,
    "max_messages": _int(0), "max_shares": _int(1, 2**31 - 1),
}
_USER_CHECKS = {"username": _name(6), "password": _text(10), "firm": _text(4)}
_FLOW_CHECKS = {
    "latent_step": _num(0, 1, open_lo=True), "noise_rate": _num(0), "noise_marketable": _num(0, 1),
    "noise_max_resting": _int(1), "informed_rate": _num(0), "informed_horizon": _num(0),
    "informed_edge": _int(0), "lp_count": _int(0, 9), "lp_half_spread": _int(1),
    "lp_size": _int(1), "lp_refresh": _num(0, open_lo=True), "lot": _int(1),
}
_SYMBOL_CHECKS = {
    "name": _text(8), "id": _int(1, 65535), "reference_price": _int(1, MAX_PRICE),
    "half_penny": _boolean, "volatility": _num(0, 10),
}
_PAIR_CHECKS = {"a": _text(8), "b": _text(8), "correlation": _num(-1, 1)}
_OPTION_CHECKS = {
    "name": _text(8), "id": _int(1, 65535), "underlying": _text(8),
    "strike": _int(1, MAX_PRICE), "expiry_days": _num(0, MAX_EXPIRY_DAYS, open_lo=True),
    "right": _right,
    "implied_vol": _num(0, 10, open_lo=True), "half_penny": _boolean,
}


def _build(cls: type, raw: Any, where: str, checks: dict[str, Check],
           defaults: dict[str, Any] | None = None) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a table")
    unknown = set(raw) - set(checks)
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown key")
    values = {}
    for name, check in checks.items():
        if name in raw:
            value = raw[name]
        elif defaults is not None and name in defaults:
            value = defaults[name]
        else:
            raise ConfigError(f"{where}.{name}", "missing")
        if isinstance(value, int) and not isinstance(value, bool) and check in _FLOATY[cls]:
            value = float(value)
        problem = check(value)
        if problem:
            raise ConfigError(f"{where}.{name}", problem)
        values[name] = value
    return cls(**values)


_FLOATY: dict[type, set[Check]] = {}
for _cls, _checks in ((VenueSettings, _VENUE_CHECKS), (FlowSettings, _FLOW_CHECKS),
                      (SymbolConfig, _SYMBOL_CHECKS), (PairConfig, _PAIR_CHECKS),
                      (OptionConfig, _OPTION_CHECKS), (User, _USER_CHECKS)):
    _FLOATY[_cls] = {_checks[f.name] for f in dataclasses.fields(_cls) if f.type == "float"}


def _rows(doc: dict, key: str, cls: type, checks: dict[str, Check]) -> tuple:
    rows = doc.get(key, [])
    if not isinstance(rows, list):
        raise ConfigError(key, "must be an array of tables ([[%s]])" % key)
    return tuple(_build(cls, row, f"{key}[{i}]", checks) for i, row in enumerate(rows))


def parse_config(doc: dict, defaults: dict | None = None) -> VenueConfig:
    """Build a VenueConfig from a parsed TOML document; [venue]/[flow] keys default to `defaults`."""
    defaults = defaults if defaults is not None else _default_doc()
    unknown = set(doc) - {"venue", "users", "flow", "symbols", "pairs", "options", "calendar"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown table")
    venue = _build(VenueSettings, doc.get("venue", {}), "venue", _VENUE_CHECKS, defaults["venue"])
    flow = _build(FlowSettings, doc.get("flow", {}), "flow", _FLOW_CHECKS, defaults["flow"])
    users = _rows(doc, "users", User, _USER_CHECKS)
    symbols = _rows(doc, "symbols", SymbolConfig, _SYMBOL_CHECKS)
    pairs = _rows(doc, "pairs", PairConfig, _PAIR_CHECKS)
    options = _rows(doc, "options", OptionConfig, _OPTION_CHECKS)
    if not symbols:
        raise ConfigError("symbols", "at least one [[symbols]] entry is required")
    _check_unique(users, "users", "username")
    _check_unique(symbols + options, "symbols/options", "name")
    _check_unique(symbols + options, "symbols/options", "id")
    names = {s.name for s in symbols}
    for i, pair in enumerate(pairs):
        for side in ("a", "b"):
            if getattr(pair, side) not in names:
                raise ConfigError(f"pairs[{i}].{side}", f"unknown symbol {getattr(pair, side)!r}")
        if pair.a == pair.b:
            raise ConfigError(f"pairs[{i}].b", "must differ from a")
    followers = [p.b for p in pairs]
    if len(set(followers)) != len(followers) or set(followers) & {p.a for p in pairs}:
        raise ConfigError("pairs", "a symbol may follow one leader only, and leaders follow none")
    for i, option in enumerate(options):
        if option.underlying not in names:
            raise ConfigError(f"options[{i}].underlying", f"unknown symbol {option.underlying!r}")
    calendar = _calendar(doc["calendar"] if "calendar" in doc else defaults.get("calendar", {}))
    return VenueConfig(venue, users, flow, symbols, pairs, options, calendar)


def _calendar(raw: Any) -> TradingCalendar:
    if not isinstance(raw, dict):
        raise ConfigError("calendar", "must be a table")
    unknown = set(raw) - {"holidays"}
    if unknown:
        raise ConfigError(f"calendar.{sorted(unknown)[0]}", "unknown key")
    days = raw.get("holidays", [])
    if not isinstance(days, list):
        raise ConfigError("calendar.holidays", "must be an array of dates")
    holidays: set[dt.date] = set()
    for i, value in enumerate(days):
        day = _date(value)
        where = f"calendar.holidays[{i}]"
        if day is None:
            raise ConfigError(where, f'must be a date (2026-11-26 or "2026-11-26"), not {value!r}')
        if day.weekday() >= 5:
            raise ConfigError(where, f"{day.isoformat()} is a {day:%A}: not a weekday closure")
        if day in holidays:
            raise ConfigError(where, f"duplicate {day.isoformat()}")
        holidays.add(day)
    return TradingCalendar(frozenset(holidays))


def _date(value: Any) -> dt.date | None:
    """A TOML local date, or an ISO "YYYY-MM-DD" string; None for anything else (a date-time
    included)."""
    if type(value) is dt.date:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _check_unique(rows: tuple, where: str, key: str) -> None:
    seen: set = set()
    for row in rows:
        value = getattr(row, key)
        if value in seen:
            raise ConfigError(f"{where}.{key}", f"duplicate {value!r}")
        seen.add(value)


def _read(path: pathlib.Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    except UnicodeDecodeError:          # tomllib decodes the bytes as UTF-8 before parsing
        raise ConfigError(str(path), "not UTF-8 text") from None


def _default_doc() -> dict:
    return _read(DEFAULT_PATH)


def load_config(path: str | pathlib.Path | None = None) -> VenueConfig:
    """Load a config file (None: the shipped default.toml)."""
    defaults = _default_doc()
    doc = defaults if path is None else _read(pathlib.Path(path))
    return parse_config(doc, defaults)
