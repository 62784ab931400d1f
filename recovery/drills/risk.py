"""The live risk drill: the fail-closed fault matrix against a running engine on the embedded venue.

Owns the injectors of faults into the running system (a journal that refuses appends, the PTP lab's
clock or a labelled drill clock, dropped MoldUDP64 packets with re-requests held back, venue
answers held back by a loopback relay, a defect planted in a check, tightened limits), the windows
in which each fault was active in the gateway, and the verdict, judged from the venue's session
log and live orders, never from the engine's word. Must not make trading decisions nor decide the
policy it tests: what to expect comes from mm_core.risk.faults.LATCH_POLICY.
"""
from __future__ import annotations

import itertools
import json
import pathlib
import queue
import random
import re
import selectors
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from audit.health import ClockSample as HealthSample, Verdict
from journal import DiskFull, Journal
from journal.catalogue import ClockState, RecordType, TsSource, pack_json
from mm_core.config import EngineConfig, symbols_from_toml
from mm_core.engine import Engine
from mm_core.events import OperatorCommand, Reconciled
from mm_core.protocol import ouch
from mm_core.risk import CheckId, Limits, RiskGateway, TradingState
from mm_core.risk.faults import LATCH_POLICY, RELEASED_ON_CLEAR, Latch
from mm_core.risk.limits import EXAMPLE_TOML
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from mm_core.venue.config import DEFAULT_PATH, load_config
from mm_core.venue.server import Venue
from journal.scratch import scratch_dir
from recovery.codecheck import session_start
from recovery.drills.common import drill_journal, result_on_abort
from recovery.errors import RecoveryError

__all__ = ["DrillError", "DrillSettings", "DrillRow", "DrillReport", "SINGLE_FAULTS", "run_risk_drill"]

USER = "MM01"
PROFILE = "eu-hft"
QUOTED = ("ACME", "BOLT")
WAIT_S = 6.0                 # bound on every wait for the system to react (> the ack timeout)
_ORDER_ECHOES = (ouch.Accepted, ouch.Replaced, ouch.Rejected)   # an order or replacement arrived
_CANCELS = (ouch.Canceled, ouch.AiqCanceled)


class DrillError(RecoveryError):
    """The drill could not run (the venue, runner or clock lab failed to start or to answer)."""


@dataclass(frozen=True)
class DrillSettings:
    seed: int = 1                 # chooses the combinations and seeds the venue's flow
    combinations: int = 4         # fault pairs injected together after the single faults
    journal_dir: str | None = None   # None: a temporary directory
    clock: str = "auto"           # auto (PTP lab if namespaces work) | lab | drill
    hold_s: float = 0.4           # how long each fault is held once active
    only: tuple[str, ...] = ()    # run only these single faults (and combinations among them)


@dataclass
class DrillRow:
    name: str
    faults: tuple[str, ...]
    expected: str
    produced: bool = False            # every injected fault was seen active in the gateway
    orders_at_venue: int = 0          # forbidden orders the venue received while a fault was active
    cancels_at_venue: int = 0         # cancels the venue carried out while the faults were active
    quotes_left: int = -1             # our orders still live at the venue when a pull was due (-1: none due)
    state: str = ""                   # trading state while the faults were active
    expected_state: str = ""
    resumed: str = ""                 # "by itself", "after operator enable" or "no"
    expected_resume: str = ""
    passed: bool = False
    notes: str = ""
    also_active: tuple[str, ...] = ()   # faults the system raised by itself during the row

    @property
    def cancel_blocked(self) -> bool:
        return self.quotes_left > 0


@dataclass
class DrillReport:
    seed: int
    clock: str
    journal: str
    rows: list[DrillRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def orders_during_faults(self) -> int:
        return sum(r.orders_at_venue for r in self.rows)

    @property
    def cancels_blocked(self) -> int:
        return sum(1 for r in self.rows if r.cancel_blocked)

    def as_dict(self) -> dict:
        return {"drill": "risk", "seed": self.seed, "clock": self.clock, "journal": self.journal,
                "seconds": round(self.seconds, 3), "passed": self.passed,
                "orders_during_faults": self.orders_during_faults,
                "cancels_blocked": self.cancels_blocked,
                "rows": [asdict(r) | {"cancel_blocked": r.cancel_blocked} for r in self.rows]}

    def table(self) -> str:
        head = ("fault", "expected", "orders", "cancels", "left", "state", "resumed", "result")
        lines = [head]
        for r in self.rows:
            lines.append((r.name, r.expected, str(r.orders_at_venue), str(r.cancels_at_venue),
                          "-" if r.quotes_left < 0 else str(r.quotes_left), r.state, r.resumed,
                          ("PASS" if r.passed else "FAIL") + (f" ({r.notes})" if r.notes else "")))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1]
                         for line in lines)


# ------------------------------------------------------------------------------ the clocks

class DrillClock:
    """The labelled drill clock, used when the PTP lab cannot run: it reports LOCKED and compliant
    for the profile until the drill makes it non-compliant. Honest only because the clock itself
    is one of the injected faults; every CLOCK_SAMPLE it produces says "drill clock"."""

    label = "drill clock (no PTP lab: compliance set by the drill)"

    def __init__(self, profile: str = PROFILE) -> None:
        self.profile = profile
        self.ok = True

    def current(self) -> HealthSample:
        ok = self.ok
        reasons = () if ok else ("drill: clock made non-compliant",)
        return HealthSample(
            ClockState.LOCKED if ok else ClockState.FREERUN, time.clock_gettime_ns(time.CLOCK_REALTIME),
            time.monotonic_ns(), 0, 0, 100 if ok else 10**9, 0, None, None, 6, 0x21, 37, True, False,
            False, True, True, 1, ("drill clock",) + reasons, {self.profile: Verdict(self.profile, ok, reasons)})

    def compliant(self, profile: str, now_mono_ns: int | None = None) -> bool:
        return self.ok and profile == self.profile

    def break_(self) -> None:
        self.ok = False

    def mend(self) -> None:
        self.ok = True

    def close(self) -> None:
        pass


class LabClock:
    """A real audit.monitor.ClockMonitor on the PTP lab: a ptp4l grandmaster and client in two
    network namespaces. The fault is real: the client's ptp4l is SIGKILLed (pmc unanswered, state
    UNKNOWN, not compliant); mending restarts it and waits until the monitor is compliant again."""

    def __init__(self, profile: str = PROFILE) -> None:
        from audit.health import HealthConfig, HealthTracker
        from audit.monitor import ClockMonitor
        from audit.pmc import PmcClient
        from audit.ptplab import PtpLab
        from audit.sampler import PmcSampler
        self.profile = profile
        self.lab = PtpLab()
        try:
            self.lab.create()
            self.lab.start_gm()
            self.lab.start_client()
            self.monitor = ClockMonitor(PmcSampler(PmcClient(self.lab.client_uds)),
                                        HealthTracker(HealthConfig(free_running=True)), rate_hz=20,
                                        stale_after_s=0.5).start()
            self.samples_since = self.monitor.samples_since   # the runner journals every sample
            self._wait_compliant()
        except BaseException:
            self.close()
            raise
        self.label = f"PTP lab ClockMonitor ({self.lab.ns_client}, ptp4l software timestamping)"

    def _wait_compliant(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.monitor.compliant(self.profile):
                return
            time.sleep(0.05)
        raise DrillError("the PTP lab client did not become compliant within 15 s")

    def current(self):
        return self.monitor.current()

    def compliant(self, profile: str, now_mono_ns: int | None = None) -> bool:
        return self.monitor.compliant(profile, now_mono_ns)

    def break_(self) -> None:
        self.lab.kill("client")

    def mend(self) -> None:
        self.lab.start_client()
        self._wait_compliant()

    def close(self) -> None:
        monitor = getattr(self, "monitor", None)
        if monitor is not None:
            monitor.stop()
        self.lab.close()


def open_clock(choice: str):
    """(clock, note): the PTP lab when asked or when `auto` finds namespaces usable."""
    if choice not in ("auto", "lab", "drill"):
        raise DrillError(f"clock must be auto, lab or drill, not {choice!r}")
    if choice == "drill":
        return DrillClock(), "drill clock chosen"
    try:
        return LabClock(), ""
    except Exception as exc:          # no namespaces, no ptp4l: say so and fall back
        if choice == "lab":
            raise DrillError(f"PTP lab unavailable: {exc}") from exc
        return DrillClock(), f"PTP lab unavailable ({type(exc).__name__}: {str(exc)[:80]})"


# ------------------------------------------------------------------------------ the injectors

class _Tap:
    """Wraps the runner's clock: the runner asks it for a sample every clock period on its own
    thread, between engine events, which is where the drill's commands run (the engine is
    single-threaded and must not be touched from the drill's thread)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        since = getattr(clock, "samples_since", None)      # passed through where the clock has one
        if since is not None:
            self.samples_since = since

    def current(self):
        while True:
            try:
                fn, done, box = self._queue.get_nowait()
            except queue.Empty:
                break
            try:
                box.append(fn())
            except BaseException as exc:       # handed back to the drill's thread
                box.append(exc)
            done.set()
        return self.clock.current()

    def compliant(self, profile: str, now_mono_ns: int | None = None) -> bool:
        return self.clock.compliant(profile, now_mono_ns)

    def call(self, fn: Callable[[], object]):
        done, box = threading.Event(), []
        self._queue.put((fn, done, box))
        if not done.wait(WAIT_S):
            raise DrillError("the runner did not run a drill command within its clock period")
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]


class _FaultyJournal:
    """The real journal, behaving as it does on a full disk when the drill says so: ordinary
    appends raise the journal's own DiskFull from then on, risk-reducing ones (reserve=True) still
    write, and retry_space() says whether space is back. `once`: the next market-data packet
    finds the disk full, and space is back at the runner's next retry; `full`: until the drill
    frees space (mode None)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.mode: str | None = None
        self.space_low = False

    def append(self, rtype, payload, reserve: bool = False, **kw):
        if self.mode == "full" or (self.mode == "once" and rtype == RecordType.MD_PACKET):
            self.space_low = True
            if self.mode == "once":
                self.mode = None
        if self.space_low and not reserve:
            raise DiskFull("drill: no space left on the journal's device (reserve only)")
        return self.journal.append(rtype, payload, reserve=reserve, **kw)

    def retry_space(self) -> bool:
        if self.mode == "full":
            return False
        self.space_low = False
        return self.journal.retry_space()


class _AckHold:
    """A loopback TCP relay between the runner and the venue's SoupBinTCP port. The runner's
    orders always pass; while `hold` is set the venue's answers wait here, so orders go out and
    their outcome is unknown to the engine, as on a link that stalls after sending."""

    def __init__(self, venue_addr: tuple[str, int]) -> None:
        self.venue_addr = venue_addr
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT_S * 2)
        self.port = self.listener.getsockname()[1]
        self.hold = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-ack-hold", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(self.venue_addr, timeout=WAIT_S)
        held = bytearray()
        with client, upstream, selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, None)
            while not self._stop.is_set():
                for key, _ in sel.select(0.01):
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    if key.data is not None:
                        upstream.sendall(data)
                    else:
                        held += data
                if held and not self.hold.is_set():
                    client.sendall(held)
                    held.clear()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(WAIT_S)


class _RerequestGate:
    """The runner's MoldUDP64 re-requests pass through this loopback UDP relay; while closed they
    are dropped, so a gap made by dropped packets stays open until the drill opens the gate."""

    def __init__(self, runner_addr: tuple[str, int], venue_addr: tuple[str, int]) -> None:
        self.runner_addr, self.venue_addr = runner_addr, venue_addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-rerequest-gate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            if addr == self.runner_addr:
                if self.closed.is_set():
                    self.dropped += 1
                else:
                    self.sock.sendto(data, self.venue_addr)
            else:                      # the venue's answer, back to the runner's feed socket
                self.sock.sendto(data, self.runner_addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        self.sock.close()


class _Defect:
    """Stands in for a symbol's limits: reading any of them raises, as a defect in a check would."""

    def __getattr__(self, name: str):
        raise RuntimeError(f"drill: defect planted in the {name} check")


class _WatchedGateway(RiskGateway):
    """The real gateway, telling the drill whenever its set of faults may have changed and which
    checks denied orders, so fault windows are exact points in the stream of order tokens."""

    observer: Callable[[], None] | None = None

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.denials: set[CheckId] = set()
        self.at_fair: set[str] = set()      # tokens allowed at exactly their symbol's fair value
        self._saved: dict[int, object] = {}

    def check(self, intent, now_ns, mark=None, best_bid=None):
        decision = super().check(intent, now_ns, mark, best_bid)
        if not decision.allowed:
            self.denials.add(decision.check)
        else:
            sym = self._symbols.get(intent.symbol_id)
            if sym is not None and intent.price == sym.fair:
                self.at_fair.add(intent.token)
        return decision

    def _set_fault(self, bit: int, now_ns: int) -> None:
        super()._set_fault(bit, now_ns)
        if self.observer is not None:
            self.observer()

    def _clear_fault(self, bit: int) -> None:
        super()._clear_fault(bit)
        if self.observer is not None:
            self.observer()

    def _install_limits(self, limits: Limits) -> None:
        super()._install_limits(limits)
        for symbol_id in getattr(self, "_saved", ()):     # a planted defect outlives new limits
            sym = self._symbols[symbol_id]
            self._saved[symbol_id] = sym.limits
            sym.limits = _Defect()

    def plant_defect(self, symbol_ids) -> None:
        for symbol_id in symbol_ids:
            sym = self._symbols[symbol_id]
            self._saved[symbol_id] = sym.limits
            sym.limits = _Defect()

    def remove_defect(self) -> None:
        for symbol_id, limits in self._saved.items():
            self._symbols[symbol_id].limits = limits
        self._saved.clear()


# ------------------------------------------------------------------------------ the live system

def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _System:
    """Venue, relays, engine with the watched gateway, and the runner on its own thread."""

    def __init__(self, journal: Journal, clock, seed: int, log_dir: str, session_id: int = 1) -> None:
        # a fresh engine: a new session, which names the code it runs
        journal.append(RecordType.SESSION_START, session_start(session_id, profile=PROFILE.encode()),
                       ts_ns=_now(), ts_source=int(TsSource.USER))
        self.faulty = _FaultyJournal(journal)
        self.clock = clock
        itch_port = _free_udp_port()
        config = load_config().with_venue(itch_port=itch_port, duration=600.0, log_dir=log_dir,
                                          heartbeat_timeout=60.0, seed=seed)
        self.venue = Venue(config)
        self.venue.start()
        ports = self.venue.ports
        self.acks = _AckHold(("127.0.0.1", ports.ouch))
        self.gate = _RerequestGate(("127.0.0.1", itch_port), ("127.0.0.1", ports.rerequest))
        symbols = symbols_from_toml(DEFAULT_PATH.read_text())
        self.symbol_ids = {s.name: s.id for s in symbols.symbols}
        self.quoted_ids = [self.symbol_ids[n] for n in QUOTED]
        self.limits_text = EXAMPLE_TOML
        self.limits_version = Limits.from_toml(EXAMPLE_TOML).version
        self.limit_edits: dict[int, dict[str, object]] = {}
        self.gateway = _WatchedGateway(Limits.from_toml(EXAMPLE_TOML))
        self.engine = Engine(EngineConfig(quoted=QUOTED), symbols, self.gateway)
        self.tap = _Tap(clock)
        settings = RunnerSettings(itch_port=itch_port, ouch_port=self.acks.port,
                                  rerequest_port=self.gate.port, username=USER,
                                  clock_profile=PROFILE, timer_ns=50_000_000,
                                  clock_period_ns=20_000_000)
        self.runner = Runner(self.engine, self.faulty, settings, self.tap)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="drill-runner", daemon=True)
        self.error: BaseException | None = None
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run(600.0, stop=self.stop_event)
        except BaseException as exc:      # reported by the drill's thread
            self.error = exc

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(WAIT_S * 2)
        self.acks.close()
        self.gate.close()
        self.venue.stop()

    # -- commands on the runner's thread
    def call(self, fn: Callable[[], object]):
        if not self.thread.is_alive():
            raise DrillError(f"the runner stopped: {self.error or self.runner.report.stop_reason}")
        return self.tap.call(fn)

    def feed(self, event) -> None:
        """An input the runner itself would give the engine (journal health, reconciliation)."""
        self.call(lambda: self.runner._feed_internal(event))

    def enable(self) -> bool:
        """Operator re-enable through the runner (journaled OPERATOR_CMD) from the drill's own
        thread, as an operator console would; retried while refused."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise DrillError(f"the runner stopped: {self.error or self.runner.report.stop_reason}")
            now = time.clock_gettime_ns(time.CLOCK_REALTIME)
            done = self.runner.operator(OperatorCommand(now, "enable", "risk-drill", "drill: fault cleared"))
            if not done.wait(WAIT_S):
                raise DrillError("the runner did not take the operator's command")
            if self.gateway.state is TradingState.ACTIVE:
                return True
            time.sleep(0.05)
        return False

    def set_limit_edits(self, key: int, edits: dict[str, object] | None) -> None:
        """On the runner's thread: the example limits with the edits of every limit fault in force
        (one per key; None removes that fault's), under a new version, so limits in one row add up."""
        if edits is None:
            self.limit_edits.pop(key, None)
        else:
            self.limit_edits[key] = edits
        merged: dict[str, object] = {}
        for one in self.limit_edits.values():
            merged.update(one)
        self.limits_version += 1
        self.gateway.replace_limits(_edit_limits(EXAMPLE_TOML, {"version": self.limits_version, **merged}))

    # -- the venue's view
    def counter(self, token: str) -> int | None:
        """The issue number inside one of our tokens (prefix + tag + base 36), None for anything else."""
        return self.engine.oms.counter_of(token)

    def messages(self, first: int) -> list:
        return [ouch.decode_outbound(p) for p in self.venue.session_messages(USER, first)]

    def log_end(self) -> int:
        return len(self.venue.session_messages(USER)) + 1

    def live(self) -> int:
        return len(self.venue.live_orders(USER))

    def steady(self, timeout: float = WAIT_S) -> bool:
        """Quoting: nothing faulty, trading ACTIVE, our quotes live at the venue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                return False
            if not self.gateway.faults and self.gateway.state is TradingState.ACTIVE and self.live() >= 2:
                return True
            time.sleep(0.05)
        return False


def _edit_limits(text: str, edits: dict[str, object]) -> str:
    """The limits document with `section.key` (or top-level `key`) values replaced."""
    for dotted, value in edits.items():
        section, _, key = dotted.rpartition(".")
        literal = json.dumps(value)
        start = text.find(f"[{section}]") if section else 0
        if start < 0:
            raise DrillError(f"no [{section}] in the limits document")
        pattern = re.compile(rf"^{re.escape(key)} = [^#\n]*", re.M)
        match = pattern.search(text, start)
        if match is None:
            raise DrillError(f"no {dotted} in the limits document")
        text = text[:match.start()] + f"{key} = {literal}" + text[match.end():]
    return text


# ------------------------------------------------------------------------------ the matrix

@dataclass
class _Window:
    """Token issue numbers (open, close] during which a fault was active in the gateway."""

    spans: list[list[int | None]] = field(default_factory=list)

    def open(self, at: int) -> None:
        if not self.spans or self.spans[-1][1] is not None:
            self.spans.append([at, None])

    def close(self, at: int) -> None:
        if self.spans and self.spans[-1][1] is None:
            self.spans[-1][1] = at

    def holds(self, n: int) -> bool:
        return any(a < n and (b is None or n <= b) for a, b in self.spans)


@dataclass(frozen=True)
class _Fault:
    """One injectable fault. With a `label` it is an input fault, injected from the drill's thread
    and active while the gateway lists it; without, inject and clear run on the runner's thread and
    the fault is active from one to the other (a planted defect, tightened limits)."""

    name: str
    live: str                                  # how it is produced in the running system
    inject: Callable[[_System, dict], None]
    clear: Callable[[_System, dict], None]
    check: CheckId                             # the check that denies orders while it is active
    label: str | None = None                   # its name in gateway.faults, if it is an input fault
    forbidden: Callable[[object, dict, "_VenueView"], bool] = lambda msg, state, view: True
    needs_orders: bool = False                 # needs orders flowing to appear: injected first
    deafens: bool = False                      # the engine hears no market data while it lasts: injected last
    poisons: bool = False                      # leaves state behind: the next row gets a fresh system
    also: tuple[CheckId, ...] = ()             # other checks whose denials show it took effect
    sized_within: bool = False                 # the engine sizes its orders within this limit, so
                                               # it shows by being in force, not by a denial

    @property
    def latches(self) -> bool:
        """Whether the trading state must latch (LATCH_POLICY; a defect latches when it is hit)."""
        return LATCH_POLICY.get(self.check) is Latch.ON_REPORT

    @property
    def releases_itself(self) -> bool:
        """Whether its latch goes when it clears, if it is the only one (RELEASED_ON_CLEAR)."""
        return self.check in RELEASED_ON_CLEAR


def _journal(mode: str | None):
    def inject(system: _System, state: dict) -> None:
        system.faulty.mode = mode
    return inject


def _journal_mended(system: _System, state: dict) -> None:
    """Space freed: the runner's own 1 Hz retry finds it and tells the engine."""
    system.faulty.mode = None


def _gap(system: _System, state: dict) -> None:
    system.gate.closed.set()
    first = system.venue.publisher.next_sequence + 2
    system.venue.withhold_itch(range(first, first + 4))


def _limits(**edits) -> Callable[[_System, dict], None]:
    def inject(system: _System, state: dict) -> None:
        system.set_limit_edits(id(state), {k: (system.quoted_ids if v is _QUOTED else v)
                                           for k, v in edits.items()})
    return inject


_QUOTED = object()      # stands for the quoted symbols' ids in a limits edit


def _with_gateway(inject: Callable[[_System, dict], None]) -> Callable[[_System, dict], None]:
    """inject, keeping the system's gateway in the fault's state for its forbidden() judge."""
    def with_gateway(system: _System, state: dict) -> None:
        state["gateway"] = system.gateway
        inject(system, state)
    return with_gateway


def _away_from_fair(msg, state: dict, view: "_VenueView") -> bool:
    """A collar of 0 bps still admits an order priced exactly at fair value (a gap of 0 is within
    it: an inventory-skewed quote can land there), so only one priced elsewhere breaches it."""
    return msg.token.strip() not in state["gateway"].at_fair


def _restore_limits(system: _System, state: dict) -> None:
    system.set_limit_edits(id(state), None)


class _VenueView:
    """Our orders and position as the venue's session log tells them, message by message."""

    def __init__(self) -> None:
        self.orders: dict[str, tuple[str, str, int]] = {}     # token -> (stock, side, shares)
        self.position: dict[str, int] = {}
        self.open: dict[str, int] = {}      # token -> shares still open at the venue

    def apply(self, msg) -> None:
        if isinstance(msg, (ouch.Accepted, ouch.Replaced)):
            token = msg.token.strip()
            self.orders[token] = (msg.stock.strip(), msg.side, msg.shares)
            if isinstance(msg, ouch.Replaced):
                self.open.pop(msg.previous_token.strip(), None)
            if msg.shares > 0:
                self.open[token] = msg.shares
        elif isinstance(msg, (ouch.Executed, ouch.ExecutedWithReferencePrice)):
            token = msg.token.strip()
            order = self.orders.get(token)
            if order is not None:
                signed = msg.executed_shares if order[1] == "B" else -msg.executed_shares
                self.position[order[0]] = self.position.get(order[0], 0) + signed
            self._take(token, msg.executed_shares)
        elif isinstance(msg, (ouch.Canceled, ouch.AiqCanceled)):
            self._take(msg.token.strip(), msg.decrement_shares)
        elif isinstance(msg, ouch.OrderModified):
            # a size-down in place: the shares it restates are what is open now (left as they
            # were, a later cancel of the rest would leave the difference open for ever)
            token = msg.token.strip()
            if token in self.open:
                if msg.shares > 0:
                    self.open[token] = msg.shares
                else:
                    self.open.pop(token)
            order = self.orders.get(token)
            if order is not None:
                self.orders[token] = (order[0], order[1], msg.shares)

    def _take(self, token: str, shares: int) -> None:
        left = self.open.get(token, 0) - shares
        if left > 0:
            self.open[token] = left
        else:
            self.open.pop(token, None)


def _increases_position(msg, state: dict, view: _VenueView) -> bool:
    """An order that grows |position| as the venue held it when the order arrived; a replace that
    adds nothing on its side (no more shares than the order it replaces) is not counted."""
    if isinstance(msg, ouch.Rejected):
        return False
    if isinstance(msg, ouch.Replaced):
        old = view.orders.get(msg.previous_token.strip())
        if old is not None and old[1] == msg.side and msg.shares <= old[2]:
            return False
    held = view.position.get(msg.stock.strip(), 0)
    return held >= 0 if msg.side == "B" else held <= 0


def _beyond_one(*kinds: type) -> Callable[[object, dict, _VenueView], bool]:
    """For a limit of one per window (rate) or one open order: what came beyond the first of each
    kind is forbidden (lenient by one: orders sent before the limit may already have used it)."""
    def forbidden(msg, state: dict, view: _VenueView) -> bool:
        if not isinstance(msg, kinds):
            return False
        seen = state.setdefault("seen", {})
        kind = type(msg).__name__
        seen[kind] = seen.get(kind, 0) + 1
        return seen[kind] > 1
    return forbidden


def _open_beyond_one(msg, state: dict, view: _VenueView) -> bool:
    """For a cap of one open order: an order accepted while another of ours was still open at the
    venue (lenient by one: an order sent before the cap may land after it). Orders accepted one
    after another, each once the last was gone, keep within the cap."""
    if not isinstance(msg, ouch.Accepted) or not view.open:
        return False
    state["over"] = state.get("over", 0) + 1
    return state["over"] > 1


def _max_open(system: _System, state: dict) -> None:
    """Cap open orders at one, then drop a few packets (re-requests still answered): the gap pulls
    every quote, so after it fills the engine must enter new orders against the cap."""
    _limits(**{"account.max_open_orders": 1})(system, state)
    first = system.venue.publisher.next_sequence + 2
    system.venue.withhold_itch(range(first, first + 2))


def _now() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


SINGLE_FAULTS: tuple[_Fault, ...] = (
    _Fault("check-exception", "a defect planted in the quoted symbols' limit checks",
           lambda s, st: s.gateway.plant_defect(s.quoted_ids),
           lambda s, st: s.gateway.remove_defect(), CheckId.INTERNAL_ERROR),
    _Fault("journal-append-failed", "one market-data packet's journal append raises DiskFull",
           _journal("once"),
           _journal_mended, CheckId.JOURNAL_UNHEALTHY, "journal-unhealthy"),
    _Fault("clock-not-compliant", "the clock stops being compliant for eu-hft",
           lambda s, st: s.clock.break_(), lambda s, st: s.clock.mend(),
           CheckId.CLOCK_NONCOMPLIANT, "clock-noncompliant"),
    _Fault("market-data-gap", "MoldUDP64 packets dropped, re-requests held back", _gap,
           lambda s, st: s.gate.closed.clear(), CheckId.BOOK_STALE, "book-stale"),
    _Fault("unreconciled", "reconciliation reports a break (as recovery feeds it after a restart)",
           lambda s, st: s.feed(Reconciled(_now(), False)),
           lambda s, st: s.feed(Reconciled(_now(), True)), CheckId.UNRECONCILED, "unreconciled"),
    _Fault("unknown-outcome", "venue answers held back past the ack timeout",
           lambda s, st: s.acks.hold.set(), lambda s, st: s.acks.hold.clear(),
           CheckId.UNKNOWN_OUTCOME, "unknown-outcome", needs_orders=True),
    _Fault("price-collar", "collar.fair_bps = 0 (an order priced exactly at fair value still passes)",
           _with_gateway(_limits(**{"collar.fair_bps": 0})), _restore_limits, CheckId.COLLAR_FAIR,
           forbidden=_away_from_fair),
    _Fault("order-value", "defaults.max_order_value = 1 (quotes are sized within it: not a lot fits)",
           _limits(**{"defaults.max_order_value": 1}), _restore_limits, CheckId.MAX_ORDER_VALUE,
           sized_within=True),
    _Fault("message-rate", "one submit and one replace per 10 minutes",
           _limits(**{"rates.window_ms": 600_000, "rates.max_submits": 1, "rates.max_modifies": 1}),
           _restore_limits, CheckId.MSG_RATE_MODIFY, forbidden=_beyond_one(ouch.Accepted, ouch.Replaced),
           also=(CheckId.MSG_RATE_SUBMIT,)),
    _Fault("position", "defaults.max_position = 1 (quotes are sized within it: none is left)",
           _limits(**{"defaults.max_position": 1}), _restore_limits, CheckId.POSITION_LIMIT,
           forbidden=_increases_position, sized_within=True),
    _Fault("restricted-symbol", "the quoted symbols restricted",
           _limits(**{"account.restricted": _QUOTED}), _restore_limits, CheckId.RESTRICTED_SYMBOL),
    _Fault("max-open-orders", "account.max_open_orders = 1, quotes pulled by a short feed gap",
           _max_open, _restore_limits, CheckId.MAX_OPEN_ORDERS, forbidden=_open_beyond_one),
    # last: the engine hears no market data while it lasts (venue answers use the reserve)
    _Fault("disk-full", "the journal's disk is full: ordinary appends raise DiskFull, cancels and "
           "venue answers use its reserve, until space is freed", _journal("full"), _journal_mended,
           CheckId.JOURNAL_UNHEALTHY, "journal-unhealthy", deafens=True),
)
_BY_NAME = {f.name: f for f in SINGLE_FAULTS}


def _expectation(faults: list[_Fault]) -> tuple[str, str, bool]:
    """(trading state while active, how trading resumes, whether quotes must be pulled). Beside an
    input fault the engine presents no order, so a planted defect is never reached and cannot latch."""
    silenced = any(f.label is not None for f in faults)
    latching = [f for f in faults if f.latches and (f.label is not None or not silenced)]
    held = any(not f.releases_itself for f in latching)
    pull = bool(latching) or any(f.check is CheckId.BOOK_STALE for f in faults)
    return ("HALTED" if latching else "ACTIVE", "after operator enable" if held else "by itself", pull)


def _run_row(system: _System, faults: list[_Fault], hold_s: float) -> DrillRow:
    name = "+".join(f.name for f in faults)
    state_expected, resume_expected, pull = _expectation(faults)
    row = DrillRow(name, tuple(f.name for f in faults),
                   f"0 orders; {state_expected}; {'quotes pulled; ' if pull else ''}resumes {resume_expected}",
                   expected_state=state_expected, expected_resume=resume_expected)
    notes: list[str] = []
    # an input fault is seen active before a limit or defect beside it is put in force, so the
    # engine (which then presents no order) cannot meet the limit in between
    order = sorted(faults, key=lambda f: (not f.needs_orders, f.deafens, f.label is None))
    windows = {f.name: _Window() for f in order}
    states: dict[str, dict] = {f.name: {} for f in order}
    gw = system.gateway
    oms = system.engine.oms
    armed: set[str] = set()

    injected = {f.label for f in order}
    also: set[str] = set()

    def observe() -> None:            # on the runner's thread, inside the engine's event
        faults_now = gw.faults
        also.update(label for label in faults_now if label not in injected)
        for f in order:
            if f.label is not None and f.name in armed:
                (windows[f.name].open if f.label in faults_now else windows[f.name].close)(oms.counter)

    gw.denials.clear()
    gw.observer = observe
    first = system.log_end()
    try:
        for f in order:
            armed.add(f.name)
            if f.label is None:        # in force from this point of the token stream on
                system.call(lambda f=f: (f.inject(system, states[f.name]),
                                         windows[f.name].open(oms.counter)))
            else:
                f.inject(system, states[f.name])
                system.call(observe)
                if not _wait(lambda f=f: windows[f.name].spans, WAIT_S):
                    notes.append(f"{f.name} not seen active")
        time.sleep(hold_s)
        silenced = any(f.label is not None for f in order)     # the engine presents nothing
        for f in order:               # a limit shows itself only when an order meets it
            if f.label is None and not silenced:
                _wait(lambda f=f: {f.check, *f.also} & gw.denials, WAIT_S)
        row.state = gw.state.name
        raised = _latching(also)
        if raised:                    # the system latched by itself (e.g. venue answers late on a
            state_expected, pull = "HALTED", True        # loaded machine): the policy applies to it
        if pull:                      # answers in flight get a moment to settle the venue's view
            _wait(lambda: system.live() == 0, 1.0)
            row.quotes_left = system.live()
        closing = system.log_end()
        for f in reversed(order):
            if f.label is None:
                system.call(lambda f=f: (f.clear(system, states[f.name]),
                                         windows[f.name].close(oms.counter)))
            else:
                f.clear(system, states[f.name])
        cleared_at = system.call(lambda: oms.counter)
        for f in order:
            if f.label is not None and not _wait(lambda f=f: f.label not in gw.faults, WAIT_S):
                notes.append(f"{f.name} still active after clearing")
        # with an input fault active the engine presents no order, so a limit or defect beside it
        # is shown by being in force (its window) rather than by a denial; so is a limit the
        # engine sizes its orders within (the venue's log still shows whether one breached it)
        produced = [bool(windows[f.name].spans) if f.label or silenced or f.sized_within else
                    bool({f.check, *f.also} & gw.denials) for f in order]
        row.produced = all(produced)
        if not row.produced:
            notes.append("not produced: " + ",".join(f.name for f, p in zip(order, produced) if not p))
        enabled = False
        if gw.state is not TradingState.ACTIVE:
            enabled = system.enable()
            if not enabled:
                notes.append("operator enable refused: " + ",".join(gw.faults))
        resumed = _wait(lambda: _quoting_since(system, first, cleared_at), WAIT_S)
        row.resumed = "no" if not resumed else "after operator enable" if enabled else "by itself"
    finally:
        gw.observer = None
    offenders: list[str] = []
    view = _VenueView()
    for seq, msg in enumerate(system.messages(1), start=1):
        if seq >= first and isinstance(msg, _ORDER_ECHOES):
            n = system.counter(msg.token)
            if n is not None and any(windows[f.name].holds(n) and f.forbidden(msg, states[f.name], view)
                                     for f in order):
                row.orders_at_venue += 1
                offenders.append(f"{type(msg).__name__} {msg.token.strip()}")
        view.apply(msg)
    row.cancels_at_venue = sum(1 for m in system.messages(first)[:max(0, closing - first)]
                               if isinstance(m, _CANCELS))
    if offenders:
        notes.append("orders during the fault: " + ", ".join(offenders[:6]))
    row.also_active = tuple(sorted(also))
    if also:
        notes.append("also raised during the row: " + ",".join(sorted(also)))
    if _latching(also):
        resume_expected = "after operator enable"
        notes.append(f"judged as {state_expected if raised else row.expected_state}, resumes "
                     f"{resume_expected}: the policy for what the system raised itself")
    if row.cancel_blocked:
        notes.append(f"cancel blocked: {row.quotes_left} of our orders still live at the venue")
    row.passed = (row.produced and row.orders_at_venue == 0 and not row.cancel_blocked
                  and row.state == state_expected and row.resumed == resume_expected)
    row.notes = "; ".join(notes)
    return row


_CHECK_BY_LABEL = {check.label: check for check in CheckId}


def _latching(labels) -> set[str]:
    """The faults among `labels` that latch when reported (LATCH_POLICY)."""
    return {label for label in labels
            if LATCH_POLICY.get(_CHECK_BY_LABEL.get(label)) is Latch.ON_REPORT}


def _quoting_since(system: _System, first: int, after: int) -> bool:
    """The venue received an order of ours issued after the faults were cleared."""
    for msg in system.messages(first):
        if isinstance(msg, (ouch.Accepted, ouch.Replaced)):
            n = system.counter(msg.token)
            if n is not None and n > after:
                return True
    return False


def _wait(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def _plan(settings: DrillSettings) -> list[list[_Fault]]:
    unknown = [n for n in settings.only if n not in _BY_NAME]
    if unknown:
        raise DrillError(f"unknown fault {unknown[0]!r}; known: {', '.join(_BY_NAME)}")
    pool = [f for f in SINGLE_FAULTS if not settings.only or f.name in settings.only]
    # pairs with an input fault: two limits (or a limit and a defect) together only show the
    # gateway's check order, one shadowing the other, not what the fail-closed policy does
    pairs = [p for p in itertools.combinations(pool, 2) if any(f.label is not None for f in p)]
    random.Random(settings.seed).shuffle(pairs)
    return [[f] for f in pool] + [list(p) for p in pairs[:max(0, settings.combinations)]]


def run_risk_drill(settings: DrillSettings = DrillSettings(),
                   progress: Callable[[DrillRow], None] | None = None) -> DrillReport:
    """Run the matrix; the result is also journaled as a DRILL_RESULT record (JSON)."""
    started = time.monotonic()
    plan = _plan(settings)
    journal_dir = drill_journal(settings.journal_dir, "mmaudit-risk-drill-", DrillError)
    # the venue's session logs on tmpfs where there is one: its writes then never queue behind its
    # own fsyncs on a busy disk, which would delay answers past the engine's ack timeout; in a
    # lock-owned scratch, as a drill killed before its cleanup would leave them in RAM for good
    shm = pathlib.Path("/dev/shm")
    with scratch_dir("mmaudit-risk-drill-venue-", dir=shm if shm.is_dir() else None) as log_dir:
        clock, clock_note = open_clock(settings.clock)
        report = DrillReport(settings.seed, clock.label + (f"; {clock_note}" if clock_note else ""),
                             journal_dir)
        try:
            with Journal(journal_dir) as journal:
                def record(doc: dict) -> int:
                    return journal.append(RecordType.DRILL_RESULT, pack_json(doc), ts_ns=_now(),
                                          ts_source=int(TsSource.USER))
                system, sessions = None, 0
                with result_on_abort(report, started, record):
                    try:
                        for faults in plan:
                            broken = report.rows and (report.rows[-1].resumed == "no" or any(
                                _BY_NAME[name].poisons for name in report.rows[-1].faults))
                            if system is None or broken or not system.steady(WAIT_S):
                                if system is not None:      # the last row left it unable to quote
                                    system.close()
                                sessions += 1
                                system = _System(journal, clock, settings.seed, log_dir, sessions)
                                if not system.steady(WAIT_S * 2):
                                    raise DrillError("the engine did not start quoting on the embedded venue")
                            row = _run_row(system, faults, settings.hold_s)
                            report.rows.append(row)
                            if progress is not None:
                                progress(row)
                    finally:
                        if system is not None:
                            system.close()
                report.seconds = time.monotonic() - started
                record(report.as_dict())
        finally:
            clock.close()
    return report
