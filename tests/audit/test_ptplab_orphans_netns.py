"""A PTP lab whose owner dies without close() (SIGKILL) leaves nothing running: its ptp4l processes
die with it (PR_SET_PDEATHSIG), and the next lab made on the machine removes its namespaces and
directory; a lab whose owner is alive, and namespaces of other names, are never touched. Real
processes and real network namespaces throughout (skipped where the machine cannot make them)."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from audit.ptplab import PtpLab, lab_namespaces, owner_pid, remove_stale_labs
from tests.audit.test_linuxptp_netns import created_lab

pytestmark = pytest.mark.netns

ROOT = pathlib.Path(__file__).resolve().parents[2]
_OWNER = """\
import json, time
from audit.ptplab import PtpLab
lab = PtpLab().create()
lab.start_gm()
lab.start_client()
print(json.dumps({"pids": [p.pid for p in lab.procs.values()], "dir": str(lab.dir)}), flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    """A live process (a zombie nobody reaped yet counts as dead)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _dead_pid() -> int:
    """The pid of a process that has just ended."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _add_ns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=10)


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_names_carry_the_whole_owner_pid():
    lab = PtpLab()
    try:
        assert owner_pid(lab.ns_gm) == owner_pid(lab.ns_client) == owner_pid(lab.dir.name) == os.getpid()
        assert len(lab.if_gm) <= 15 and len(lab.if_client) <= 15     # IFNAMSIZ
    finally:
        lab.close()
    assert owner_pid("mmagm8520") is None           # the pid is not read from names it cannot be sure of
    assert owner_pid("mmagm12-0x") is None and owner_pid("other123-0") is None


def test_a_killed_owner_leaves_no_ptp4l_and_the_next_lab_removes_its_namespaces():
    with created_lab():             # skips where namespaces cannot be made
        pass
    owner = subprocess.Popen([sys.executable, "-c", _OWNER], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        started = json.loads(owner.stdout.readline())
    finally:
        owner.kill()
        owner.wait(10)
        owner.stdout.close()
    pids, lab_dir = started["pids"], pathlib.Path(started["dir"])
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if _running(pid)], "ptp4l outlived the lab's owner"
    assert len(lab_namespaces(owner.pid)) == 2 and lab_dir.is_dir()     # left behind by the SIGKILL
    with created_lab() as lab:      # the next lab cleans up after the dead one
        assert not lab_namespaces(owner.pid) and not lab_dir.exists()
        assert lab_namespaces(os.getpid()) >= {lab.ns_gm, lab.ns_client}
    assert not lab_namespaces(os.getpid())


def test_only_labs_of_dead_owners_are_removed():
    with created_lab():
        pass
    alive = subprocess.Popen(["sleep", "60"])
    dead = _dead_pid()
    live_ns, dead_ns, other_ns = f"mmagm{alive.pid}-9", f"mmacl{dead}-9", f"mmatest{dead}-9"
    try:
        for name in (live_ns, dead_ns, other_ns):
            _add_ns(name)
        removed = remove_stale_labs()
        assert dead_ns in removed and dead_ns not in _namespaces()
        assert {live_ns, other_ns} <= _namespaces()           # a live owner's, and a name not ours
        alive.send_signal(signal.SIGTERM)
        alive.wait(10)
        assert live_ns in remove_stale_labs() and live_ns not in _namespaces()
    finally:
        if alive.poll() is None:
            alive.kill()
            alive.wait(10)
        for name in (live_ns, dead_ns, other_ns):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)


def test_an_old_style_lab_namespace_is_removed_only_when_nothing_runs_in_it():
    with created_lab():
        pass
    empty, busy = f"mmagm9{os.getpid()}7", f"mmacl9{os.getpid()}7"    # names labs had before the separator
    inside = None
    try:
        for name in (empty, busy):
            _add_ns(name)
        inside = subprocess.Popen(["ip", "netns", "exec", busy, "sleep", "60"])
        deadline = time.monotonic() + 10
        while not subprocess.run(["ip", "netns", "pids", busy], capture_output=True, text=True,
                                 timeout=10).stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.05)
        removed = remove_stale_labs()
        assert empty in removed and empty not in _namespaces()
        assert busy not in removed and busy in _namespaces()    # someone still uses it
        assert inside.poll() is None
    finally:
        if inside is not None:
            inside.kill()
            inside.wait(10)
        for name in (empty, busy):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)
