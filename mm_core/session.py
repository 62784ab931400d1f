"""One trading session from config files: the I/O shell's composition root.

Owns building a session — venue (embedded in-process, a `python3 -m mm_core.venue` subprocess, or
HOST:PORT), engine, risk gateway with its limits, journal, clock monitor (a ptp4l through pmc, or
a loopback PTP lab) — running it through the runner, and tearing everything down on every exit.
Must not make trading decisions (mm_core.engine) nor judge the clock (audit.health): it only wires.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from typing import Callable

from audit.childproc import die_with_owner
from audit.health import PROFILES, HealthConfig, HealthTracker
from audit.monitor import ClockMonitor
from audit.pmc import DEFAULT_UDS, PmcClient
from audit.ptplab import CLOCK_SOURCE as LAB_SOURCE, NamespaceUnavailable, PtpLab
from audit.rxbuffer import DEFAULT_RCVBUF, MAX_RCVBUF, MIN_RCVBUF
from audit.sampler import PmcSampler
from journal import Journal, JournalError, JournalLocked, Reader, lock_state
from journal.reader import damage_behind_summary
from journal.catalogue import RecordType, TsSource, pack, pack_json, session_stop
from mm_core import buildid
from mm_core.config import ConfigError, EngineConfig, Symbols, symbols_from_toml
from mm_core.control import ControlError, ControlServer, check_path
from mm_core.engine import Engine, EngineError
from mm_core.oms import OmsError, check_token_room
from mm_core.ownedtmp import owned_tempdir
from mm_core.risk import EXAMPLE_TOML, CheckId, Limits, LimitsError, RiskError, RiskGateway
from mm_core.mdsocket import open_market_data
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerError, RunnerReport, RunnerSettings, stage_latencies
from mm_core.sessionfacts import OperatorHalt, read_session
from mm_core.sessiontag import TAG_WIDTH
from mm_core.tagclaim import claim_tag
from mm_core.venue.config import DEFAULT_PATH as VENUE_DEFAULT_PATH, VenueConfig, parse_config
from mm_core.venue.errors import VenueError
from mm_core.venue.server import Venue

__all__ = [
    "SessionError", "SessionConfigError", "SessionInterrupted", "VenueUnavailable", "ClockUnavailable",
    "JournalUnavailable",
    "JournalInUse",
    "SessionInputs", "load_inputs", "with_clock_profile", "VenueSpec", "ClockSpec", "SessionSettings", "Progress", "lab_available",
    "ClockReport", "SessionSummary", "Session", "run_session", "LAB_NOTE", "PROJECT_ROOT", "MAX_SESSION_S",
    "MAX_CLOSE_OUT_S",
]

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]
LAB_NOTE = ("clock evidence comes from a loopback PTP lab: a ptp4l grandmaster and client in two "
            "network namespaces of this host, software timestamping; the grandmaster is this "
            "host's own clock, so it shows the monitoring path, not traceability to UTC")
_VENUE_READY_S = 15.0                # bound on a venue subprocess printing its ports
_VENUE_MARGIN_S = 30.0               # an embedded venue outlives the session by this much
# under the venue's day (mm_core.venue.process.MAX_DURATION_S), which the venue started for the
# session must also cover with its clock warm-up and margin
MAX_SESSION_S = 23 * 3600.0
MAX_WARMUP_S = 900.0                 # a clock that has not locked in 15 min will not in time
MAX_CLOSE_OUT_S = 60.0               # the close-out's wait for the venue's answers, at most
END_NOTE = "session-end"             # the METRICS note of the end-of-run summary journaled
RESUME_NOTE = "session-resume"       # the METRICS note where a resumed session goes on (Session.resume)
_CONTROL_HINT = "; give another --control path, or --control none for no control socket"
_LATCHED = ("HALTED", "REDUCING")     # trading states a fault latches
_KILLED = CheckId.KILLED.label         # an operator's kill latches too: not a problem
# the key's line, indented or not ([ \t]: \s would reach back over blank lines); tomllib then
# checks that it was the top-level key (schema) the override set
_PROFILE_LINE = re.compile(r"^[ \t]*clock_profile[ \t]*=.*$", re.MULTILINE)


# ------------------------------------------------------------------------------------ errors

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


# ------------------------------------------------------------------------------------ inputs

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


# ------------------------------------------------------------------------------------ settings

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

    @classmethod
    def parse(cls, text: str, itch_port: int | None = None, rerequest_port: int | None = None,
              md_bind: str = "", md_sources: tuple[str, ...] = ()) -> "VenueSpec":
        """"embedded", "process" or "HOST:PORT" (the venue's SoupBinTCP port)."""
        for option, address in [("--md-bind", md_bind)] * bool(md_bind) + [("--md-source", a) for a in md_sources]:
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise SessionConfigError(f"{option} {address!r}: expected an IPv4 address") from None
        if text in ("embedded", "process"):
            return cls(text, itch_port=itch_port or 0, md_bind=md_bind, md_sources=tuple(md_sources))
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SessionConfigError(f"venue {text!r}: expected embedded, process or HOST:PORT")
        if not rerequest_port:
            raise SessionConfigError(f"venue {text}: give the venue's MoldUDP64 re-request port "
                                     "(--rerequest-port) so market data gaps can be filled")
        return cls("external", host, int(port), itch_port or 31001, rerequest_port, md_bind, tuple(md_sources))


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

    def __post_init__(self) -> None:
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


# ------------------------------------------------------------------------------------ outputs

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


# ------------------------------------------------------------------------------------ pieces

def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _refuse_stale_build() -> None:
    """A compiled module built from other C than the sources beside it would trade on code the
    journal's fingerprint does not name: refused before anything is written."""
    try:
        buildid.check_compiled()
    except buildid.StaleBuild as exc:
        raise SessionConfigError(str(exc)) from None


def _code_digest() -> bytes:
    """The running code's fingerprint for SESSION_START; empty (read as unknown) when its sources
    cannot be read: recovery then refuses the journal unless told to accept other code."""
    try:
        return buildid.digest()
    except buildid.BuildIdError:
        return b""


def _code_version() -> str:
    try:
        from importlib.metadata import version
        return version("mmaudit")
    except Exception:      # not installed (running from a checkout): say so rather than guess
        return "uninstalled"


class _VenueProcess:
    """`python3 -m mm_core.venue` with its ready line parsed; its log goes to a file (a pipe
    nobody reads could fill and stall it); SIGTERM, then SIGKILL by pid, on close."""

    def __init__(self, argv: list[str], log_path: pathlib.Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        self.log_path = log_path
        with open(log_path, "ab") as log:
            # a session of its own: a terminal's Ctrl-C or hang-up (sent to the whole job) is the
            # session's to act on; the venue it stops first would leave the session's end unreconciled.
            # SIGKILL when the session dies (SIGKILLed too): a venue whose client died mid-session is
            # a crashed venue, which its restart handles (its clean stop on SIGTERM could write to
            # the dead session's pipe and hang)
            self.proc = subprocess.Popen([*die_with_owner("KILL"), *argv], stdout=subprocess.PIPE, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.ports = self._ready()

    def _ready(self) -> dict:
        deadline = time.monotonic() + _VENUE_READY_S
        out = self.proc.stdout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([out], [], [], 0.1)
            if ready:
                line = out.readline()
                if not line:
                    break
                try:
                    return json.loads(line)
                except ValueError:
                    continue
            if self.proc.poll() is not None:
                break
        self.close()
        log = self.log_path.read_text(errors="replace").strip()[-300:]
        raise VenueUnavailable(f"the venue process did not start: {log or 'no ready line'}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)       # a clean end of session first
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()


def _start_venue(spec: VenueSpec, inputs: SessionInputs, settings: SessionSettings,
                 stack: contextlib.ExitStack) -> tuple[VenueSpec, dict]:
    """Start (or point at) the venue; returns the resolved ports and a description."""
    if spec.kind == "external":
        return spec, {"kind": "external", "host": spec.host, "ouch_port": spec.ouch_port,
                      "itch_port": spec.itch_port, "rerequest_port": spec.rerequest_port, "session": ""}
    itch = spec.itch_port or free_udp_port()
    # The runner sends SoupBinTCP client heartbeats only from its loop: not between connect() and
    # run(), nor while an operator's reconciliation holds its thread. The venue we start waits
    # as long as the session lasts rather than dropping it after heartbeat_timeout of that
    # silence (a dead venue is the runner's to detect: RunnerSettings.rx_timeout_ns).
    lifetime = settings.duration_s + settings.clock.warmup + _VENUE_MARGIN_S
    log_dir = settings.venue_log_dir or owned_tempdir(stack)     # a killed session's is swept later
    if spec.kind == "embedded":
        changes = dict(itch_port=itch, duration=lifetime, heartbeat_timeout=lifetime, log_dir=log_dir)
        if settings.seed is not None:
            changes["seed"] = settings.seed
        try:
            venue = Venue(inputs.venue_config.with_venue(**changes))
            ports = venue.start()
        except VenueError as exc:
            raise VenueUnavailable(f"the embedded venue did not start: {exc}") from None
        stack.callback(venue.stop)
        doc = ports.as_dict()
        if not settings.venue_log_dir:
            doc.pop("log_dir", None)        # a temporary directory, gone after the session
    else:
        try:        # the process's own log goes there before the venue could make it
            pathlib.Path(log_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VenueUnavailable(f"cannot make the venue log directory {log_dir}: {exc.strerror or exc}") from None
        argv = [sys.executable, "-m", "mm_core.venue", "--duration", f"{lifetime}s", "--itch-port", str(itch),
                "--heartbeat-timeout", str(lifetime), "--log-dir", log_dir]
        if inputs.venue_config_path:
            argv += ["--config", inputs.venue_config_path]
        if settings.seed is not None:
            argv += ["--seed", str(settings.seed)]
        proc = _VenueProcess(argv, pathlib.Path(log_dir) / "venue-process.log")
        stack.callback(proc.close)
        doc = dict(proc.ports)
        doc["pid"] = proc.proc.pid
        if not settings.venue_log_dir:
            doc.pop("log_dir", None)
    resolved = VenueSpec(spec.kind, doc["host"], doc["ouch_port"], doc["itch_port"], doc["rerequest_port"],
                         spec.md_bind, spec.md_sources)
    return resolved, {"kind": spec.kind, **doc}


def lab_available() -> str:
    """"" when this machine can run the PTP lab, else why not (one line)."""
    if os.geteuid() != 0:
        return "not running as root: network namespaces cannot be created"
    missing = [tool for tool in ("ip", "ptp4l", "pmc") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (Debian packages iproute2, linuxptp)"
    return ""


def _start_clock(spec: ClockSpec, stack: contextlib.ExitStack) -> tuple[ClockMonitor, str, str]:
    """A clock monitor over pmc (not yet sampling); returns it with its source and a note."""
    if spec.source == "auto":
        why = lab_available()
        if not why:
            try:
                return _start_clock(dataclasses.replace(spec, source="lab"), stack)
            except ClockUnavailable as exc:
                why = str(exc)
        monitor, source, note = _start_clock(dataclasses.replace(spec, source="uds", explicit=False), stack)
        return monitor, source, f"PTP lab unavailable ({why}); {note}"
    if spec.source == "lab":
        for tool in ("ip", "ptp4l", "pmc"):
            if shutil.which(tool) is None:
                raise ClockUnavailable(f"the PTP lab needs {tool} (Debian packages iproute2, linuxptp)")
        lab = PtpLab()
        stack.callback(lab.close)         # namespaces and processes go on every exit path
        try:
            lab.create()
            lab.start_gm()
            lab.start_client()
        except NamespaceUnavailable as exc:
            raise ClockUnavailable(f"cannot create network namespaces for the PTP lab: {exc}") from None
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            raise ClockUnavailable(f"the PTP lab did not start: {exc}") from None
        uds, free_running, source, note = lab.client_uds, True, LAB_SOURCE, LAB_NOTE
    else:
        if spec.explicit and shutil.which("pmc") is None:
            raise ClockUnavailable("pmc is not installed (Debian package linuxptp): cannot monitor "
                                   f"the ptp4l at {spec.uds}")
        uds, free_running, source = spec.uds, spec.free_running, f"ptp4l at {spec.uds}"
        note = (f"clock evidence from the ptp4l at {spec.uds} through pmc" if spec.explicit else
                f"no clock source given: looked for a ptp4l at {spec.uds}")
        note += "".join(f", following {name} log {path}" for name, path in
                        (("its", spec.ptp4l_log), ("the phc2sys", spec.phc2sys_log)) if path)
        note += f", its PHC {spec.phc_device}" if spec.phc_device else ""
    sampler = PmcSampler(PmcClient(uds, timeout_s=2.0), spec.phc_device, phc2sys_log=spec.phc2sys_log,
                         ptp4l_log=spec.ptp4l_log)
    stack.callback(sampler.close)
    monitor = ClockMonitor(sampler, HealthTracker(HealthConfig(free_running=free_running)),
                           labels={"uds": uds})
    return monitor, source, note


def _wait_for_clock(monitor: ClockMonitor, profile: str, warmup_s: float, stop: threading.Event) -> bool:
    """Sample quickly until the clock is compliant or warmup_s passed (bounded). The gateway
    latches on the first non-compliant sample, so trading starts only after this."""
    deadline = time.monotonic() + warmup_s
    while True:
        monitor.sample_once()
        if monitor.compliant(profile):
            return True
        if time.monotonic() >= deadline or stop.is_set():
            return False
        stop.wait(0.1)


def _refuse_used(path: str) -> None:
    """A journal that holds any record is refused (JournalInUse) before the writer opens it (the
    open would touch its files): a session starts a fresh engine, which knows nothing of an earlier
    session's orders, positions or venue sequence (it would log in from sequence 1 and be fed them
    again), and replay feeds a journal through one engine. No journal there yet: nothing to say."""
    if not os.path.isdir(path):
        return
    try:
        with Reader(path) as reader:
            records = len(reader)
            starts = reader.read_fixed(RecordType.SESSION_START) if records else ()
    except JournalError:
        return                   # not a readable journal: the writer's open says what is wrong
    if records:
        held = (f"session {int(starts['session_id'].max())}" if len(starts)
                else "records of no named session")
        raise JournalInUse(f"journal {path} already holds {held} ({records} records): a new session "
                           f"needs a new --journal; to go on trading in this one, run `mmaudit run --resume "
                           f"--journal {path} --venue HOST:PORT ...` (it replays the journal and reconciles "
                           f"with the venue first; `mmaudit recover` does only that)")


def _check_readable(path: str, resumed: bool = False) -> None:
    """The journal at path, read after the writer's open repaired it: the read checks every record,
    so damage the open trusted past (a sealed segment believed from its summary) is refused here,
    before this session appends records no reader would reach; a record the open let through is
    refused as a used journal (JournalInUse), unless the session is `resumed` in it."""
    try:
        with Reader(path) as reader:
            stop = reader.stopped
            records = len(reader)
    except JournalError as exc:
        raise JournalUnavailable(f"cannot read journal {path}: {exc}") from None
    if stop is not None:
        raise JournalDamaged(damage_behind_summary(path, stop, "a read of the journal", "run again"))
    if records and not resumed:
        _refuse_used(path)


def _open_journal(path: str, durability: str) -> Journal:
    try:
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        return Journal(path, durability=durability)
    except OSError as exc:
        raise JournalUnavailable(f"cannot create journal {path}: {exc.strerror or exc}") from None
    except JournalLocked:
        pid = lock_state(path).get("pid", 0)
        raise JournalUnavailable(f"journal {path} is locked by another writer (pid {pid})") from None
    except JournalError as exc:
        raise JournalUnavailable(f"cannot open journal {path}: {exc}") from None


def _journal_made(path: str) -> tuple[pathlib.Path, bool] | None:
    """What opening a journal at path would make: (its topmost missing directory, False), or
    (path, True) when it is an empty directory, whose contents only are the journal's; None when
    something is there already (never removed)."""
    p = pathlib.Path(path).absolute()
    try:
        if p.is_dir():
            return None if any(p.iterdir()) else (p, True)
        if p.exists() or p.is_symlink():
            return None
    except OSError:
        return None
    while not p.parent.exists():
        p = p.parent
    return p, False


def _unmake_unused(made: tuple[pathlib.Path, bool], path: str) -> None:
    """A journal this start made and wrote no record to is removed (_journal_made)."""
    try:
        with Reader(path) as reader:
            if len(reader):
                return
    except JournalError:
        if os.path.isdir(path) and any(pathlib.Path(path).iterdir()):
            return                   # something unreadable: not ours to judge
    top, given = made
    if not given:
        shutil.rmtree(top, ignore_errors=True)
        return
    for child in top.iterdir():
        with contextlib.suppress(OSError):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


# ------------------------------------------------------------------------------------ the session

def positions_by_name(engine: Engine, names: dict[int, str]) -> dict[str, int]:
    """Symbol name -> position of every quoted symbol and every other symbol with a position (a
    hedge, an adopted order's fill), by symbol id: what the positions row and line show."""
    pos, quoted = engine.inventory.position, set(engine.quoted)
    return {names[i]: pos[i] for i in sorted(names) if i in quoted or pos[i]}


@dataclass(frozen=True)
class Resumed:
    """What a recovery of the journal's crashed session hands a session that trades on in it
    (`mmaudit run --resume`): the replayed and reconciled engine, the session id of the journal's
    last SESSION_START (its SESSION_STOP names it), and the UTC offset the journal last recorded."""

    engine: Engine
    session_id: int
    utc_offset_s: int | None
    utc_leap: int = 0
    start_seq: int = 0               # that SESSION_START's sequence (the summary reads commands from it)


class Session:
    """Build, run and tear down one session. `run()` returns a SessionSummary.

    Example:
        summary = Session(SessionSettings("/tmp/j", 10, clock=ClockSpec("lab"))).run()
    `stop` (a threading.Event) ends the session early and cleanly (Ctrl-C in the CLI);
    `progress` is called about once per progress_interval_s from a helper thread; `reconciler`
    carries out an operator's "reconcile" (recovery.midsession.LiveReconciler: mm_core may not
    import recovery, so the caller hands it in; without one the command is refused). `resume`
    trades on in a journal whose session crashed: called once the clock and venue are up, it
    recovers that session (replay, reconciliation) and returns the engine to go on with, or raises
    SessionError when trading may not resume; no SESSION_START is written, the session's own
    SESSION_STOP ends it.
    """

    def __init__(self, settings: SessionSettings, inputs: SessionInputs | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 stop: threading.Event | None = None,
                 on_started: Callable[["Session"], None] | None = None,
                 reconciler: Callable | None = None,
                 resume: Callable[["SessionInputs"], Resumed] | None = None) -> None:
        self.settings = settings
        self.reconciler = reconciler
        self.resume = resume
        self.inputs = inputs or load_inputs()
        self.profile = self.inputs.limits.clock_profile
        self.progress = progress
        self.stop = stop or threading.Event()
        self.on_started = on_started
        self.engine: Engine | None = None
        self.runner: Runner | None = None
        self.monitor: ClockMonitor | None = None
        self.venue: dict = {}
        self.clock_source = self.clock_note = ""
        self._started = 0.0
        self.end_metrics: dict | None = None    # the engine summary journaled at the end (printed)
        self._commands_from: int | None = None   # resumed: where the session's operator commands start
        self._md_early = None                     # the market-data socket opened before the venue

    # -- progress ----------------------------------------------------------------------------
    def snapshot(self) -> Progress:
        """Plain reads of counters the runner thread updates (no engine method is called)."""
        engine, runner, monitor = self.engine, self.runner, self.monitor
        names = {s.id: s.name for s in self.inputs.symbols.symbols}
        sample = monitor.current()
        return Progress(
            elapsed_s=time.monotonic() - self._started, events=engine.counts["events"],
            orders_sent=runner.report.orders_sent, fills=sum(engine.metrics.fills),
            positions=positions_by_name(engine, names),
            pnl_price4=engine.risk.pnl, trading_state=engine.risk.state.name,
            clock_state=sample.state.name, clock_compliant=monitor.compliant(self.profile))

    def _progress_loop(self, done: threading.Event) -> None:
        while not done.wait(self.settings.progress_interval_s):
            try:
                self.progress(self.snapshot())
            except Exception:      # a display problem must never stop trading or teardown
                pass

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> SessionSummary:
        s = self.settings
        self._started = time.monotonic()
        with contextlib.ExitStack() as stack:
            _refuse_stale_build()
            if self.resume is None:
                _refuse_used(s.journal_dir)
            session_id, resumed = 1, None
            # the clock and the venue before the journal: a start that fails there leaves nothing
            self.monitor, source, note = _start_clock(s.clock, stack)
            self.clock_source, self.clock_note = source, note
            warm_at_start = _wait_for_clock(self.monitor, self.profile, s.clock.warmup, self.stop)
            self._refuse_interrupted()
            venue_spec, self.venue = _start_venue(self._md_first(s, stack), self.inputs, s, stack)
            if self.resume is not None:
                resumed = self.resume(self.inputs)     # the journal is closed again when it returns
                self.engine, session_id = resumed.engine, resumed.session_id
                self._commands_from = resumed.start_seq or None
            else:
                self.engine = self.inputs.build_engine()
            # what the open makes is removed again if no record is written (a refused login, a
            # control path in use, Ctrl-C): the runner's sockets need the journal
            made = _journal_made(s.journal_dir)
            if made is not None:
                stack.callback(_unmake_unused, made, s.journal_dir)
            journal = _open_journal(s.journal_dir, s.durability)
            stack.callback(journal.close)
            _check_readable(s.journal_dir, resumed=resumed is not None)
            user = self.inputs.venue_config.users[0] if venue_spec.kind != "external" else None
            self.runner = Runner(self.engine, journal, RunnerSettings(
                host=venue_spec.host, itch_port=venue_spec.itch_port, ouch_port=venue_spec.ouch_port,
                rerequest_port=venue_spec.rerequest_port, md_bind=venue_spec.md_bind,
                md_sources=venue_spec.md_sources, clock_profile=self.profile,
                busy_poll=s.busy_poll, close_out_ns=max(1, round(s.close_out_s * 1e9)), md_rcvbuf=s.md_rcvbuf,
                **({} if resumed is None else {"fresh_session": False, "utc_offset_s": resumed.utc_offset_s,
                                               "utc_leap": resumed.utc_leap}),
                **({} if s.warm_interval_ns is None else {"warm_interval_ns": s.warm_interval_ns}),
                **({"username": user.username, "password": user.password} if user else {})), self.monitor,
                reconciler=self.reconciler, md_socket=self._md_early)
            # the control socket before the session's first record: a path another session
            # answers on stops this one before it writes anything (commands sent meanwhile wait
            # in the runner's queue until it runs)
            control = self._start_control(stack)
            # the venue's sockets before the session's first record too: one it cannot reach
            # leaves the journal empty, free for the next attempt (a used journal is refused)
            stack.callback(self.runner.close)
            try:
                self.runner.connect()
            except RunnerError as exc:
                raise VenueUnavailable(str(exc)) from None
            self._refuse_interrupted()
            first_seq = (self._journal_start(journal, session_id, source, note) if resumed is None
                         else self._journal_resume(journal, session_id, source, note))
            # from here on every exit writes the session's closing records, a failure to start
            # the monitor, the progress thread or the caller's on_started included
            try:
                self.monitor.start()
                stack.callback(self.monitor.stop)
                done = threading.Event()
                if self.progress is not None:
                    thread = threading.Thread(target=self._progress_loop, args=(done,),
                                              name="session-progress", daemon=True)
                    thread.start()
                    stack.callback(thread.join, 5)
                stack.callback(done.set)
                if self.on_started is not None:
                    self.on_started(self)
                report = self.runner.run(s.duration_s, self.stop)
            except RunnerError as exc:
                raise VenueUnavailable(str(exc)) from None
            finally:
                if control is not None:
                    control.stop()           # nothing is taken once the runner stopped draining
                self._journal_stop(journal, session_id)
            end_sample = self.monitor.current()
            end_compliant = self.monitor.compliant(self.profile)
        return self._summary(session_id, first_seq, report, source, note, end_sample, end_compliant,
                             warm_at_start)

    def _refuse_interrupted(self) -> None:
        """A stop (Ctrl-C) during start-up ends it before the session's first record."""
        if self.stop.is_set():
            raise SessionInterrupted("interrupted before trading: no session was journaled")

    def _md_first(self, s: "SessionSettings", stack: contextlib.ExitStack) -> VenueSpec:
        """The venue to start, its market data on a socket opened now (kept for the runner) when
        this session starts the venue: the venue's start of day then waits there for the runner,
        stamped by the kernel as it arrives, instead of being sent before anything listens and
        re-requested as a gap at every session's start. An external venue is already running."""
        spec = s.venue
        if spec.kind == "external":
            return spec
        try:
            md = open_market_data(RunnerSettings(host=spec.host, itch_port=spec.itch_port, md_bind=spec.md_bind,
                                                 md_rcvbuf=s.md_rcvbuf))
        except RunnerError as exc:
            raise VenueUnavailable(str(exc)) from None
        stack.callback(md.close)
        self._md_early = md
        return dataclasses.replace(spec, itch_port=md.sock.getsockname()[1])

    def _start_control(self, stack: contextlib.ExitStack) -> ControlServer | None:
        """The operator's control socket, when the settings ask for one (`mmaudit operator`)."""
        if not self.settings.control_path:
            return None
        engine, runner = self.engine, self.runner
        symbols = {sym.name: sym.id for sym in self.inputs.symbols.symbols}
        cfg = engine.cfg                # the ids every order of the session carries

        def status() -> dict:       # plain reads of what the runner thread updates
            return {"trading_state": engine.risk.state.name, "faults": list(engine.risk.faults),
                    "orders_sent": runner.report.orders_sent}
        try:
            server = ControlServer(self.settings.control_path, runner.operator, status, symbols=symbols,
                                   ids={"algo": cfg.algo_id, "desk": cfg.desk_id, "client": cfg.client_id}).start()
        except ControlError as exc:
            raise SessionConfigError(f"{exc}{_CONTROL_HINT}") from None
        stack.callback(server.stop)
        return server

    def _journal_start(self, journal: Journal, session_id: int, source: str, note: str) -> int:
        """SESSION_START, the limits document in force, and a note saying where the clock
        evidence comes from (the lab's is not traceable: it says so in the journal too). The
        engine's tokens carry the session's tag (mm_core.sessiontag, claimed on this host by
        mm_core.tagclaim) from here on."""
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        tag = claim_tag(self.engine.oms.prefix, now)
        self.engine.oms.start_session(tag)
        first = journal.append(RecordType.SESSION_START, pack(
            RecordType.SESSION_START, session_id=session_id, config_sha256=self.inputs.config_sha256(),
            code_version=_code_version().encode()[:16], code_fingerprint=_code_digest(),
            limits_version=str(self.inputs.limits.version).encode(),
            venue_session=str(self.venue.get("session", "")).encode()[:10],
            profile=self.profile.encode()[:8], token_tag=tag.encode()),
            ts_ns=now, ts_source=int(TsSource.USER))
        journal.append(RecordType.LIMITS_LOADED, pack_json({
            "version": self.inputs.limits.version, "sha256": self.inputs.limits.digest,
            "source": self.inputs.sources["limits"], "document": self.inputs.limits_text}),
            ts_ns=now, ts_source=int(TsSource.USER))
        journal.append(RecordType.METRICS, pack_json({
            "note": "session-start", "session_id": session_id, "clock_profile": self.profile,
            "clock_source": source, "clock_evidence": note, "venue": self.venue,
            "inputs": self.inputs.sources, "md_socket": self.runner.md_drops.facts()}),
            ts_ns=now, ts_source=int(TsSource.USER))
        return first

    def _journal_resume(self, journal: Journal, session_id: int, source: str, note: str) -> int:
        """A METRICS "session-resume" note where a resumed session goes on (recovery's records
        before it), in place of SESSION_START: the session, its clock evidence and inputs."""
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        return journal.append(RecordType.METRICS, pack_json({
            "note": RESUME_NOTE, "session_id": session_id, "clock_profile": self.profile,
            "clock_source": source, "clock_evidence": note, "venue": self.venue,
            "inputs": self.inputs.sources, "config_sha256": self.inputs.config_sha256().hex(),
            "md_socket": self.runner.md_drops.facts()}), ts_ns=now, ts_source=int(TsSource.USER))

    def _journal_stop(self, journal: Journal, session_id: int) -> None:
        """The engine's end-of-run summary (a METRICS "session-end" document: the figures the
        summary table prints), then the records that end the session."""
        report = self.runner.report
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        stamp = {"ts_ns": now, "ts_source": int(TsSource.USER), "clock_state": self.runner.clock_state}
        self.end_metrics = self.engine.summary(session_end=True)
        try:
            journal.append(RecordType.METRICS, pack_json({"note": END_NOTE, "session_id": session_id,
                                                          **self.end_metrics}), **stamp)
        except JournalError:
            report.journal_failures += 1
        try:
            for rtype, payload in session_stop(session_id, report.inputs, report.orders_sent,
                                               report.stop_reason or "error"):
                journal.append(rtype, payload, **stamp)
        except JournalError:
            report.journal_failures += 1

    def _summary(self, session_id, first_seq, report, source, note, sample, compliant, warm) -> SessionSummary:
        engine = self.engine
        facts = read_session(self.settings.journal_dir, first_seq, self.profile, self._commands_from)
        names = {s.id: s.name for s in self.inputs.symbols.symbols}
        verdict = sample.verdicts.get(self.profile)
        reasons = tuple(str(r) for r in verdict.reasons) if verdict is not None else ("no verdict",)
        clock = ClockReport(source, note, self.profile, sample.state.name, compliant,
                            () if compliant else reasons, warm, self.settings.clock.warmup)
        summary = SessionSummary(
            session_id=session_id, journal_dir=self.settings.journal_dir, venue=self.venue, clock=clock,
            runner=report, engine=self.end_metrics or engine.summary(session_end=True),
            # as trading ended: the close-out's own kill latches HALTED after it
            trading_state=report.closing_state or engine.risk.state.name,
            faults=list(report.closing_faults if report.closing_state else engine.risk.faults),
            latch=dict(report.closing_latch if report.closing_state else engine.risk.latch_details),
            positions=positions_by_name(engine, names),
            journal=facts.journal,
            seconds=round(time.monotonic() - self._started, 3), inputs=dict(self.inputs.sources),
            symbol_names={str(i): name for i, name in names.items()},
            clock_compliant_seen=facts.clock_compliant_seen, operator_halt=facts.operator_halt)
        if report.orders_sent == 0:
            summary.not_trading_reason = self._why_idle(summary, warm, reasons)
        stages = self.runner.packet_stages() if self.runner is not None else []
        for stage, values in stage_latencies(stages).items():
            if values:
                values.sort()
                summary.latency[stage] = {"n": len(values), "p50_us": round(values[len(values) // 2] / 1e3, 1),
                                          "p99_us": round(values[int(0.99 * (len(values) - 1))] / 1e3, 1)}
        return summary

    def _why_idle(self, summary: SessionSummary, warm: bool, reasons: tuple[str, ...]) -> str:
        if not warm:
            return (f"the risk gateway refused to trade: the clock was not compliant for {self.profile} "
                    f"({summary.clock.source}: {'; '.join(reasons[:3])})")
        if summary.faults or summary.breaches():
            return f"the risk gateway is {summary.trading_state}: {', '.join(summary.faults or summary.breaches())}"
        return f"no order was needed (trading state {summary.trading_state}, stop: {summary.runner.stop_reason})"


def run_session(settings: SessionSettings, inputs: SessionInputs | None = None, **kw) -> SessionSummary:
    """Session(settings, inputs, **kw).run()"""
    return Session(settings, inputs, **kw).run()
