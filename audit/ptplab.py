"""A two-namespace PTP lab (tests, benchmarks, drills): a veth pair, a ptp4l grandmaster and a client.

Both run software timestamping (-S), layer-2 transport (-2, no IP addresses) and free_running 1,
so nothing ever adjusts the machine's clock; a plain client (free_running 0) is started only with
a clock of its own to steer (tests/audit/vclock.c, preloaded through start_client's env).
Everything created is removed by close(), which is safe to call after any partial failure.
Processes are killed by pid with SIGKILL. A lab whose owner died without close() (SIGKILL, a
crash) leaves nothing running: its children are started under setpriv --pdeathsig KILL, so they
die with the thread that started them (start and restart them from a thread that lives as long
as the lab, e.g. the main thread); the next lab created on the machine removes the namespaces
and directory of labs whose owner pid is no longer alive (names carry the owner's pid).
"""
from __future__ import annotations

import itertools
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time

from audit.childproc import die_with_owner, pid_alive, run_in_own_session, start_in_own_session

_counter = itertools.count()
_DIR_PREFIX = "mmaudit-ptp-"
# namespaces mmagm<pid>-<n> / mmacl<pid>-<n> and the directory mmaudit-ptp-<pid>-<n>-<random>:
# the owner's whole pid and a separator, so that it reads back unambiguously
_OWNED = (re.compile(r"mma(?:gm|cl)(\d+)-\d+"), re.compile(_DIR_PREFIX + r"(\d+)-\d+-\w+"))
# the names labs made before the owner's pid had a separator (mmagm<pid><n>): the owner cannot be
# read back, so such a namespace is removed only while no process is inside it
_OLD_NAME = re.compile(r"mma(?:gm|cl)\d+")
_PDEATHSIG = die_with_owner("KILL")
CLOCK_SOURCE = "ptp-lab"     # the clock_source a session journals when its clock is this lab's

# Fast intervals so a client follows the GM within ~2 s (Sync 8/s, Announce 4/s).
COMMON = """\
[global]
free_running 1
kernel_leap 0
logSyncInterval -3
logAnnounceInterval -2
logMinDelayReqInterval -3
announceReceiptTimeout 3
summary_interval 0
"""
GM_EXTRA = """\
priority1 10
clockClass 6
clockAccuracy 0x21
"""
CLIENT_EXTRA = """\
slaveOnly 1
"""


class NamespaceUnavailable(Exception):
    """The machine cannot create network namespaces (not root, or no CAP_SYS_ADMIN)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    # a session of its own, as ptp4l's: a second Ctrl-C while the lab is torn down must not kill
    # the `ip netns delete` that removes it
    done = run_in_own_session(["ip", *args], 10, text=True, stdin=subprocess.DEVNULL)
    if check:
        done.check_returncode()
    return done


def owner_pid(name: str) -> int | None:
    """The pid of the process that made a lab namespace or directory called `name`; None when
    the name is not one a PtpLab makes."""
    for pattern in _OWNED:
        match = pattern.fullmatch(name)
        if match:
            return int(match.group(1))
    return None


def lab_namespaces(pid: int | None = None) -> set[str]:
    """The PTP lab namespaces on this machine (those of process `pid` only, when given)."""
    res = _ip("netns", "list", check=False)
    names = {line.split()[0] for line in res.stdout.splitlines() if line.strip()}
    return {n for n in names if owner_pid(n) is not None and (pid is None or owner_pid(n) == pid)}


def _old_lab_namespaces() -> set[str]:
    res = _ip("netns", "list", check=False)
    return {line.split()[0] for line in res.stdout.splitlines()
            if line.strip() and _OLD_NAME.fullmatch(line.split()[0])}


def _netns_pids(ns: str) -> list[str]:
    return _ip("netns", "pids", ns, check=False).stdout.split()


def remove_stale_labs() -> list[str]:
    """Remove what labs whose owner is no longer alive left (a SIGKILLed session): any process
    still in their namespaces (SIGKILL), the namespaces, their directories. Only names a PtpLab
    makes, and only when the pid they carry is no live process (a pid reused since keeps the lab:
    it is left, never a live one removed); a namespace named as labs were before the pid had a
    separator (mmagm8520) only while no process is inside it. Returns what was removed."""
    removed = []
    for ns in sorted(lab_namespaces()):
        if pid_alive(owner_pid(ns)):
            continue
        for pid in _netns_pids(ns):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        if _ip("netns", "delete", ns, check=False).returncode == 0:
            removed.append(ns)
    for ns in sorted(_old_lab_namespaces()):      # nothing inside: nobody's lab any more
        if not _netns_pids(ns) and _ip("netns", "delete", ns, check=False).returncode == 0:
            removed.append(ns)
    for path in pathlib.Path(tempfile.gettempdir()).glob(_DIR_PREFIX + "*"):
        pid = owner_pid(path.name)
        if pid is not None and not pid_alive(pid) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


class PtpLab:
    def __init__(self) -> None:
        tag = f"{os.getpid()}-{next(_counter)}"
        self.ns_gm, self.ns_client = f"mmagm{tag}", f"mmacl{tag}"
        # each end lives in its own namespace, so the names need not be unique machine-wide
        self.if_gm, self.if_client = f"mg{tag}"[:15], f"mc{tag}"[:15]
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{tag}-"))
        self.gm_uds = str(self.dir / "gm.sock")
        self.client_uds = str(self.dir / "client.sock")
        self.procs: dict[str, subprocess.Popen] = {}
        self._namespaces: list[str] = []
        self._log_handles: dict[str, object] = {}

    # -- network -----------------------------------------------------------------------------------

    def create(self) -> "PtpLab":
        if os.geteuid() == 0:
            remove_stale_labs()
        for ns in (self.ns_gm, self.ns_client):
            res = _ip("netns", "add", ns, check=False)
            if res.returncode != 0:
                raise NamespaceUnavailable(f"ip netns add failed: {res.stderr.strip()}")
            self._namespaces.append(ns)
        _ip("link", "add", self.if_gm, "netns", self.ns_gm, "type", "veth",
            "peer", "name", self.if_client, "netns", self.ns_client)
        for ns, iface in ((self.ns_gm, self.if_gm), (self.ns_client, self.if_client)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", iface, "up")
        return self

    # -- ptp4l ---------------------------------------------------------------------------------------

    def _start(self, role: str, ns: str, iface: str, uds: str, extra: str,
               env: dict[str, str] | None = None, free_running: bool = True) -> subprocess.Popen:
        self.stop(role)
        cfg = self.dir / f"{role}.cfg"
        common = COMMON if free_running else COMMON.replace("free_running 1", "free_running 0")
        cfg.write_text(common + f"uds_address {uds}\n" + extra)
        log = open(self.dir / f"{role}.log", "ab")
        self._log_handles[role] = log
        # env (e.g. LD_PRELOAD) is set by env(1) inside the namespace, so it reaches ptp4l only;
        # a session of its own: a terminal's Ctrl-C or hang-up, which a shell sends to the whole
        # job, is the owner's to act on (the clock stays monitored until its session ends)
        with_env = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
        proc = start_in_own_session([*_PDEATHSIG, "ip", "netns", "exec", ns, *with_env, "ptp4l", "-f", str(cfg),
                                     "-i", iface, "-S", "-2", "-m", "-q"], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.procs[role] = proc
        self._wait_socket(uds, proc)
        return proc

    def _wait_socket(self, uds: str, proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if os.path.exists(uds):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"ptp4l exited {proc.returncode}: {self.log_text()}")
            time.sleep(0.02)
        raise RuntimeError(f"ptp4l did not create {uds} within {timeout_s} s")

    def start_gm(self, extra: str = "") -> subprocess.Popen:
        proc = self._start("gm", self.ns_gm, self.if_gm, self.gm_uds, GM_EXTRA + extra)
        # A GM locked to a traceable reference states so; ptp4l 3.x takes these flags via pmc.
        self.pmc(self.gm_uds, "SET GRANDMASTER_SETTINGS_NP clockClass 6 clockAccuracy 0x21 "
                 "offsetScaledLogVariance 0xffff currentUtcOffset 37 leap61 0 leap59 0 "
                 "currentUtcOffsetValid 1 ptpTimescale 0 timeTraceable 1 frequencyTraceable 1 "
                 "timeSource 0x20", ns=self.ns_gm)
        return proc

    def start_client(self, extra: str = "", env: dict[str, str] | None = None,
                     free_running: bool = True) -> subprocess.Popen:
        """free_running False (a plain client whose servo steers its clock) only with a clock of
        its own to steer, e.g. tests/audit/vclock.c preloaded through `env`: the machine's clock
        is never adjusted."""
        return self._start("client", self.ns_client, self.if_client, self.client_uds, CLIENT_EXTRA + extra,
                           env, free_running)

    def running(self, role: str) -> bool:
        proc = self.procs.get(role)
        return proc is not None and proc.poll() is None

    def kill(self, role: str) -> None:
        """SIGKILL, as a crashed grandmaster would vanish."""
        proc = self.procs.pop(role, None)
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        handle = self._log_handles.pop(role, None)
        if handle is not None:
            handle.close()

    stop = kill

    def pmc(self, uds: str, command: str, ns: str | None = None) -> str:
        argv = ["pmc", "-u", "-b", "0", "-s", uds, command]
        if ns is not None:
            argv = [*_PDEATHSIG, "ip", "netns", "exec", ns, *argv]
        # a session of its own, as ptp4l's: a hang-up while the lab starts is the owner's to act on
        return run_in_own_session(argv, 10, text=True, stdin=subprocess.DEVNULL).stdout

    def log_text(self, role: str | None = None) -> str:
        roles = [role] if role else ["gm", "client"]
        parts = []
        for r in roles:
            path = self.dir / f"{r}.log"
            if path.exists():
                parts.append(f"--- {r}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def wait_until(self, predicate, timeout_s: float, interval_s: float = 0.1):
        """Poll `predicate` (bounded in time); returns its last truthy value or raises."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval_s)
        raise AssertionError(f"condition not met within {timeout_s} s (last: {last!r})\n{self.log_text()}")

    # -- teardown -------------------------------------------------------------------------------------

    def close(self) -> None:
        for role in list(self.procs):
            try:
                self.kill(role)
            except Exception:
                pass
        for ns in self._namespaces:
            _ip("netns", "delete", ns, check=False)   # deleting a namespace removes its veth end
        self._namespaces.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
