"""A session's configuration and reports: the inputs read from files (engine config, limits,
venue/symbols file, each checked by its own parser), the venue and clock specs (whether this
machine can run the PTP lab decides the default warm-up), the settings `mmaudit run` passes, the
progress and summary it shows, and the session's errors. Reads the config files; starts nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import pathlib
import re
import shutil
import tomllib
from dataclasses import dataclass

from audit.health import PROFILES
from audit.pmc import DEFAULT_UDS
from audit.rxbuffer import DEFAULT_RCVBUF, MAX_RCVBUF, MIN_RCVBUF
from mm_core.config import ConfigError, EngineConfig, Symbols, symbols_from_toml
from mm_core.control import ControlError, check_path
from mm_core.cpuplan import CpuPlanError, check_cpu
from mm_core.engine import Engine, EngineError
from mm_core.oms import OmsError, check_token_room
from mm_core.risk import CheckId, EXAMPLE_TOML, Limits, LimitsError, RiskError, RiskGateway
from mm_core.runnertypes import RunnerReport
from mm_core.sessionfacts import OperatorHalt
from mm_core.sessiontag import TAG_WIDTH
from mm_core.venue.config import DEFAULT_PATH as VENUE_DEFAULT_PATH, VenueConfig, parse_config
from mm_core.venue.errors import VenueError

__all__ = ["ClockReport", "ClockSpec", "ClockUnavailable", "JournalDamaged", "JournalInUse",
           "JournalUnavailable", "MAX_CLOSE_OUT_S", "MAX_SESSION_S", "MAX_WARMUP_S", "PROJECT_ROOT",
           "Progress", "SessionConfigError", "SessionError", "SessionInputs", "SessionInterrupted",
           "SessionSettings", "SessionSummary", "VenueSpec", "VenueUnavailable", "load_inputs",
           "with_clock_profile", "lab_available"]

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]
# under the venue's day (mm_core.venue.process.MAX_DURATION_S), which the venue started for the
# session must also cover with its clock warm-up and margin
MAX_SESSION_S = 23 * 3600.0
MAX_WARMUP_S = 900.0                 # a clock that has not locked in 15 min will not in time
MAX_CLOSE_OUT_S = 60.0               # the close-out's wait for the venue's answers, at most
_CONTROL_HINT = "; give another --control path, or --control none for no control socket"
_LATCHED = ("HALTED", "REDUCING")     # trading states a fault latches
_KILLED = CheckId.KILLED.label         # an operator's kill latches too: not a problem
# the key's line, indented or not ([ \t]: \s would reach back over blank lines); tomllib then
# checks that it was the top-level key (schema) the override set
_PROFILE_LINE = re.compile(r"^[ \t]*clock_profile[ \t]*=.*$", re.MULTILINE)


class SessionError(Exception):
    """A session that cannot be built or run; the message is one line for the user."""


class SessionConfigError(SessionError):
    """A bad engine config, limits file, venue/symbols file or setting."""


class VenueUnavailable(SessionError):
    """The venue cannot be started or reached."""


class ClockUnavailable(SessionError):
    """The clock source the user asked for cannot be monitored (pmc or ptp4l missing, no netns)."""


class SessionInterrupted(SessionError):
    """Stopped (Ctrl-C, SIGTERM) while starting: nothing was journaled."""


class JournalUnavailable(SessionError):
    """The journal cannot be opened for writing (locked by another writer, not a journal)."""


class JournalDamaged(JournalUnavailable):
    """An invalid record inside a sealed segment the writer's open trusted: appending would put
    this session where no reader reaches it."""


class JournalInUse(JournalUnavailable):
    """The journal already holds a session: a new session's fresh engine would not know what the
    earlier one left (its orders, positions, venue sequence), and a replay of the journal could
    not reproduce both. `mmaudit recover` resumes from such a journal; a new session needs a new one."""


@dataclass(frozen=True)
class SessionInputs:
    """What the engine is built from; recovery rebuilds the same engine from the same inputs."""

    engine_config: EngineConfig
    symbols: Symbols
    limits: Limits
    limits_text: str
    venue_config: VenueConfig
    venue_config_path: str | None
    sources: dict[str, str]          # which file each part came from ("built-in ..." otherwise)

    def config_sha256(self) -> bytes:
        """Ties a journal to its inputs: engine parameters, limits document, symbols file."""
        h = hashlib.sha256()
        for part in (repr(self.engine_config), self.limits_text, repr(self.symbols)):
            h.update(part.encode())
            h.update(b"\0")
        return h.digest()

    def build_engine(self) -> Engine:
        return Engine(self.engine_config, self.symbols, RiskGateway(self.limits))


def _read_text(path: str | os.PathLike, what: str) -> str:
    try:
        return pathlib.Path(path).read_text()
    except OSError as exc:
        raise SessionConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SessionConfigError(f"the {what} {path} is not UTF-8 text") from None


def with_clock_profile(limits_text: str, profile: str) -> str:
    """The limits document with its clock_profile set to `profile`. The gateway, the runner and a
    later replay all judge the clock by the limits' profile, so an override must live there."""
    line = f'clock_profile = "{profile}"'
    text, n = _PROFILE_LINE.subn(line, limits_text, count=1)
    if not n:
        text = f"{line}\n{limits_text}"     # a top-level key must precede the tables
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        try:
            tomllib.loads(limits_text)
        except tomllib.TOMLDecodeError:
            return limits_text              # not TOML to begin with: the limits parser says where
        doc = {}
    if doc.get("clock_profile") != profile:
        raise SessionConfigError(f"cannot set clock_profile to {profile!r}: the document's top-level "
                                 "clock_profile is not on a line of its own as clock_profile = \"...\"")
    return text


def load_inputs(config_path: str | None = None, limits_path: str | None = None,
                venue_config_path: str | None = None, profile: str | None = None) -> SessionInputs:
    """Engine config (None: EngineConfig's defaults), limits (None: mm_core.risk.EXAMPLE_TOML) and
    the venue/symbols file (None: the venue's default.toml), each checked with its own parser.
    `profile` overrides the limits' clock_profile (eu-hft, eu-algo, us-cat)."""
    sources = {}
    if config_path is None:
        engine_config, sources["engine"] = EngineConfig(), "built-in defaults (mm_core.config.EngineConfig)"
    else:
        try:
            engine_config = EngineConfig.from_toml(_read_text(config_path, "engine config"))
        except ConfigError as exc:
            raise SessionConfigError(f"engine config {config_path}: {exc}") from None
        sources["engine"] = str(config_path)
    if limits_path is None:
        limits_text, sources["limits"] = EXAMPLE_TOML, "built-in example (mm_core.risk.EXAMPLE_TOML)"
    else:
        limits_text, sources["limits"] = _read_text(limits_path, "limits file"), str(limits_path)
    if profile is not None:
        if profile not in PROFILES:
            raise SessionConfigError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
        try:
            limits_text = with_clock_profile(limits_text, profile)
        except SessionConfigError as exc:
            raise SessionConfigError(f"limits {sources['limits']}: {exc}") from None
    try:
        limits = Limits.from_toml(limits_text)
    except LimitsError as exc:
        raise SessionConfigError(f"limits {sources['limits']}: {exc}") from None
    venue_path = venue_config_path or VENUE_DEFAULT_PATH
    sources["venue"] = str(venue_path)
    venue_text = _read_text(venue_path, "venue config")
    try:
        venue_config = parse_config(tomllib.loads(venue_text))
        symbols = symbols_from_toml(venue_text)
    except (VenueError, ConfigError, ValueError) as exc:
        raise SessionConfigError(f"venue config {venue_path}: {exc}") from None
    try:
        Engine(engine_config, symbols, RiskGateway(limits))     # fails here, not mid-session
        check_token_room(engine_config.session_prefix, "0" * TAG_WIDTH)   # room for the session tag
    except (EngineError, ConfigError, RiskError, OmsError) as exc:
        raise SessionConfigError(f"engine config {sources['engine']}: {exc}") from None
    except (ValueError, OverflowError) as exc:   # a component's own check the config missed
        raise SessionConfigError(f"engine config {sources['engine']}: cannot build the engine: {exc}") from None
    return SessionInputs(engine_config, symbols, limits, limits_text, venue_config,
                         None if venue_config_path is None else str(venue_config_path), sources)


@dataclass(frozen=True)
class VenueSpec:
    """embedded: in this process; process: `python3 -m mm_core.venue`; external: HOST:PORT."""

    kind: str = "embedded"
    host: str = "127.0.0.1"
    ouch_port: int = 0
    itch_port: int = 0               # 0: a free port (embedded/process); external: where it publishes
    rerequest_port: int = 0
    md_bind: str = ""                # local address (or multicast group) of the market data; "" see
                                     # mm_core.mdsocket.md_bind_address
    md_sources: tuple[str, ...] = ()  # addresses the market data comes from; () = the venue's host
    md_interface: str = ""           # local address a multicast md_bind is joined on; "" = the
                                     # kernel's choice (a venue started here: its itch_interface)

    @classmethod
    def parse(cls, text: str, itch_port: int | None = None, rerequest_port: int | None = None,
              md_bind: str = "", md_sources: tuple[str, ...] = (), md_interface: str = "") -> "VenueSpec":
        """"embedded", "process" or "HOST:PORT" (the venue's SoupBinTCP port)."""
        given = [("--md-bind", md_bind), ("--md-interface", md_interface)]
        for option, address in [g for g in given if g[1]] + [("--md-source", a) for a in md_sources]:
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise SessionConfigError(f"{option} {address!r}: expected an IPv4 address") from None
        if text in ("embedded", "process"):
            return cls(text, itch_port=itch_port or 0, md_bind=md_bind, md_sources=tuple(md_sources),
                       md_interface=md_interface)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SessionConfigError(f"venue {text!r}: expected embedded, process or HOST:PORT")
        if not rerequest_port:
            raise SessionConfigError(f"venue {text}: give the venue's MoldUDP64 re-request port "
                                     "(--rerequest-port) so market data gaps can be filled")
        return cls("external", host, int(port), itch_port or 31001, rerequest_port, md_bind, tuple(md_sources),
                   md_interface)


@dataclass(frozen=True)
class ClockSpec:
    """lab: start audit.ptplab.PtpLab and monitor its client; uds: monitor the ptp4l at `uds`;
    auto: the lab when this machine can run it, else uds (which then most likely finds nothing).
    `explicit` means the user named this ptp4l, so a missing pmc is an error, not UNKNOWN."""

    source: str = "uds"
    uds: str = DEFAULT_UDS
    free_running: bool = False       # the ptp4l is a verifier (free_running 1): judge by stability
    explicit: bool = False
    warmup_s: float | None = None    # wait this long for a compliant clock before trading
    ptp4l_log: str | None = None     # that ptp4l's log: a jump logged between two samples counts
    phc2sys_log: str | None = None   # the phc2sys copying its PHC into CLOCK_REALTIME
    phc_device: str | None = None    # that ptp4l's PHC (hardware timestamping); None: ethtool -T

    def __post_init__(self) -> None:
        if self.source not in ("lab", "uds", "auto"):
            raise SessionConfigError(f"clock source {self.source!r}: expected lab, uds or auto")
        if (self.ptp4l_log or self.phc2sys_log or self.phc_device) and not self.explicit:
            raise SessionConfigError("a ptp4l or phc2sys log, or a PHC, belongs to a named ptp4l (--ptp-uds)")
        if self.warmup_s is not None and not (isinstance(self.warmup_s, (int, float))
                                              and 0 <= self.warmup_s <= MAX_WARMUP_S):
            raise SessionConfigError(f"clock warm-up {self.warmup_s!r}: expected 0..{MAX_WARMUP_S:g} seconds")

    @property
    def warmup(self) -> float:
        if self.warmup_s is not None:
            return self.warmup_s
        if self.source == "auto":
            return 15.0 if not lab_available() else 0.0
        return 15.0 if self.source == "lab" else 10.0 if self.explicit else 0.0


@dataclass(frozen=True)
class SessionSettings:
    journal_dir: str
    duration_s: float = 60.0
    venue: VenueSpec = VenueSpec()
    clock: ClockSpec = ClockSpec()
    seed: int | None = None          # the embedded venue's background flow
    busy_poll: bool = False
    warm_interval_ns: int | None = None   # busy-poll's idle-time warming (RunnerSettings); None: its default
    durability: str = "pagecache"
    venue_log_dir: str | None = None
    progress_interval_s: float = 1.0
    clock_rate_hz: float = 1.0
    control_path: str | None = None  # the operator's control socket (mm_core.control); None: none
    close_out_s: float = 2.0         # at a clean end, wait this long at most for the venue to close
                                     # the orders the engine pulls (RunnerSettings.close_out_ns)
    md_rcvbuf: int = DEFAULT_RCVBUF  # the market-data socket's receive buffer (RunnerSettings.md_rcvbuf)
    trading_cpu: int | None = None   # the trading loop alone on this CPU, the rest off it (mm_core.cpuplan)

    def __post_init__(self) -> None:
        if self.trading_cpu is not None:
            try:
                check_cpu(self.trading_cpu)
            except CpuPlanError as exc:
                raise SessionConfigError(str(exc)) from None
        if not 0 < self.duration_s <= MAX_SESSION_S:      # NaN and infinity fail too
            raise SessionConfigError(f"duration must be positive and at most {MAX_SESSION_S:g} s "
                                     f"({MAX_SESSION_S / 3600:g} h), not {self.duration_s}")
        if not 0 < self.close_out_s <= MAX_CLOSE_OUT_S:
            raise SessionConfigError(f"the close-out bound must be above 0 and at most {MAX_CLOSE_OUT_S:g} s, "
                                     f"not {self.close_out_s}")
        if self.warm_interval_ns is not None and not self.busy_poll:
            raise SessionConfigError("--warm-interval applies to --busy-poll only (an epoll wait sleeps in the kernel)")
        if self.warm_interval_ns is not None and self.warm_interval_ns < 0:
            raise SessionConfigError(f"the warm interval must be 0 (off) or positive, not {self.warm_interval_ns} ns")
        if type(self.md_rcvbuf) is not int or not MIN_RCVBUF <= self.md_rcvbuf <= MAX_RCVBUF:
            raise SessionConfigError(f"the market-data receive buffer must be {MIN_RCVBUF}..{MAX_RCVBUF} "
                                     f"bytes, not {self.md_rcvbuf!r}")
        if self.seed is not None and self.venue.kind == "external":
            raise SessionConfigError("--seed applies to a venue this session starts, not to HOST:PORT")
        if self.control_path:
            try:
                check_path(self.control_path)
            except ControlError as exc:
                raise SessionConfigError(f"{exc}{_CONTROL_HINT}") from None


@dataclass(frozen=True)
class Progress:
    """A live view for a progress line (read from other threads: plain numbers only)."""

    elapsed_s: float
    events: int
    orders_sent: int
    fills: int
    positions: dict[str, int]
    pnl_price4: int                  # realised + marked to fair, the gateway's figure
    trading_state: str
    clock_state: str
    clock_compliant: bool


@dataclass(frozen=True)
class ClockReport:
    source: str                      # "ptp-lab" or "ptp4l at UDS"
    note: str                        # what the evidence is worth
    profile: str
    state: str                       # at the end of the session
    compliant: bool
    reasons: tuple[str, ...]         # why not, when not compliant
    compliant_at_start: bool
    warmup_s: float


@dataclass
class SessionSummary:
    session_id: int
    journal_dir: str
    venue: dict
    clock: ClockReport
    runner: RunnerReport
    engine: dict                     # Engine.summary(): P&L, fills, spread captured, markouts ...
    trading_state: str
    faults: list[str]
    positions: dict[str, int]
    journal: dict                    # session sequence range, records per type, segments, bytes
    seconds: float
    inputs: dict[str, str]
    not_trading_reason: str = ""     # set when no order left: why, in one line
    # per stage of the market-data packets that sent orders: {"n", "p50_us", "p99_us"}
    # (mm_core.runnertypes.stage_latencies: RX stamp -> read -> journaled -> decided -> sent)
    latency: dict = dataclasses.field(default_factory=dict)
    # symbol id (as the engine document's keys are text) -> name, for the rows that name symbols
    symbol_names: dict[str, str] = dataclasses.field(default_factory=dict)
    # a CLOCK_SAMPLE of the session said compliant for the profile (False: the gateway never
    # let an order out); the operator's kill of everything in force at the end (mm_core.sessionfacts)
    clock_compliant_seen: bool = False
    operator_halt: OperatorHalt | None = None
    # the checks holding the latch as trading ended, label -> why (RiskGateway.latch_details)
    latch: dict[str, str] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        doc = dataclasses.asdict(self)
        doc["clock"]["reasons"] = list(self.clock.reasons)
        doc["problems"] = self.problems()
        return doc

    def breaches(self) -> list[str]:
        """Why the gateway latched, besides an operator's kill (named apart) and faults (named by
        themselves): a limit breach, for one, which an operator must look at before an enable."""
        return [why for label, why in self.latch.items() if label != _KILLED and label not in self.faults]

    def problems(self) -> list[str]:
        """Why the session did not end cleanly, one line each (none: it did): the venue lost, a
        latch with faults, or by a limit's breach, in force when trading ended, journal failures,
        orders left open, the clock never compliant (the gateway let no order out: the session
        failed its purpose)."""
        r, out = self.runner, []
        if r.venue_lost:
            out.append(f"venue lost ({r.stop_reason})")
        if self.trading_state in _LATCHED and self.faults:
            out.append(f"trading latched {self.trading_state} with faults: {', '.join(self.faults)}")
        elif self.trading_state in _LATCHED and self.breaches():
            out.append(f"trading latched {self.trading_state} by the risk gateway: {'; '.join(self.breaches())}")
        if r.journal_failures:
            out.append(f"{r.journal_failures} journal failures")
        if r.orders_open and r.close_out_ran and not r.venue_lost:
            out.append(f"{len(r.orders_open)} orders still open at the venue")
        elif r.orders_open:
            out.append(f"{len(r.orders_open)} orders left open, state at the venue unknown")
        if not self.clock_compliant_seen:
            out.append(f"the clock was never compliant for {self.clock.profile}: the gateway let no order out")
        return out


def lab_available() -> str:
    """"" when this machine can run the PTP lab, else why not (one line)."""
    if os.geteuid() != 0:
        return "not running as root: network namespaces cannot be created"
    missing = [tool for tool in ("ip", "ptp4l", "pmc") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (Debian packages iproute2, linuxptp)"
    return ""
