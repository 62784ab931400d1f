"""What a session starts and checks before it runs: the venue (embedded in-process, or a
`python3 -m mm_core.venue` subprocess that dies with its owner), the clock monitor (pmc against a
running ptp4l, or a loopback PTP lab in network namespaces), and the journal (opened with its
lock, checked readable, refused when it holds another session's damage; removed again if the
session wrote nothing). Makes no trading decision.
"""
from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from audit.childproc import die_with_owner, start_in_own_session
from audit.health import HealthConfig, HealthTracker
from audit.monitor import ClockMonitor
from audit.pmc import PmcClient
from audit.ptplab import CLOCK_SOURCE as LAB_SOURCE, NamespaceUnavailable, PtpLab
from audit.sampler import PmcSampler
from journal import Journal, JournalError, JournalLocked, Reader, lock_state
from journal.catalogue import RecordType
from journal.reader import damage_behind_summary
from mm_core import buildid
from mm_core.ownedtmp import owned_tempdir
from mm_core.sessionconfig import (
    ClockSpec, ClockUnavailable, JournalDamaged, JournalInUse, JournalUnavailable, PROJECT_ROOT,
    SessionConfigError, SessionInputs, SessionSettings, VenueSpec, VenueUnavailable, lab_available,
)
from mm_core.venue.config import VenueSettings
from mm_core.venue.errors import VenueError
from mm_core.venue.server import Venue

__all__ = ["LAB_NOTE", "free_udp_port", "joined_group"]

LAB_NOTE = ("clock evidence comes from a loopback PTP lab: a ptp4l grandmaster and client in two "
            "network namespaces of this host, software timestamping; the grandmaster is this "
            "host's own clock, so it shows the monitoring path, not traceability to UTC")
_VENUE_READY_S = 15.0                # bound on a venue subprocess printing its ports
_VENUE_MARGIN_S = 30.0               # an embedded venue outlives the session by this much


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
            self.proc = start_in_own_session([*die_with_owner("KILL"), *argv], stdout=subprocess.PIPE, stderr=log,
                                             stdin=subprocess.DEVNULL, env=env)
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
    # a group's packets, and the answers to re-requests, come from the venue's itch_interface
    sources = spec.md_sources or ((doc["itch_source"],) if doc["itch_group"] else ())
    resolved = VenueSpec(spec.kind, doc["host"], doc["ouch_port"], doc["itch_port"], doc["rerequest_port"],
                         spec.md_bind, sources, spec.md_interface)
    return resolved, {"kind": spec.kind, **doc}


def joined_group(spec: VenueSpec, venue: VenueSettings) -> VenueSpec:
    """A venue this session starts whose config names a multicast group (itch_group): its market
    data is received on that group, joined on its itch_interface unless --md-interface says
    otherwise. An --md-bind elsewhere would receive none of it: refused. An external venue's
    group is its --md-bind. An --md-interface with no group to join would be ignored: refused."""
    group = venue.itch_group if spec.kind != "external" else ""
    if group:
        if spec.md_bind and spec.md_bind != group:
            raise SessionConfigError(f"--md-bind {spec.md_bind}: the venue this session starts publishes its "
                                     f"market data to the multicast group {group} (its config's itch_group)")
        spec = dataclasses.replace(spec, md_bind=group, md_interface=spec.md_interface or venue.itch_interface)
    if spec.md_interface and not ipaddress.IPv4Address(spec.md_bind or "0.0.0.0").is_multicast:
        raise SessionConfigError(f"--md-interface {spec.md_interface}: names the interface a multicast group is "
                                 "joined on; give the group (--md-bind, or the venue config's itch_group)")
    return spec


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
