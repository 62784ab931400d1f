"""audit.childproc.start_in_own_session: a child started in a session of its own is not killed by
a job signal (a terminal's hang-up, sent to the whole process group) that arrives while it starts,
and the owner still gets that signal. The job here is a real process group of its own, hung up
over and over by a real killer process while the owner starts real children. run_in_own_session
captures as subprocess.run does and kills a child that outlives its timeout."""
from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from audit.childproc import JOB_SIGNALS, run_in_own_session, start_in_own_session

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The owner: a session of its own (the test runner's group is never signalled), a SIGHUP handler
# as `mmaudit run` has, a killer child hanging up the owner's whole group every 0.5 ms, and a loop
# starting /bin/true both ways (bounded in count and time). Prints how the children ended.
_OWNER = r"""
import json, os, signal, subprocess, sys, time
from audit.childproc import start_in_own_session
hangups = 0
def on_hangup(*_):
    global hangups
    hangups += 1
signal.signal(signal.SIGHUP, on_hangup)
group = os.getpgrp()
killer = os.fork()
if killer == 0:
    end = time.monotonic() + 8
    while time.monotonic() < end and os.getppid() != 1:
        os.killpg(group, signal.SIGHUP)
        time.sleep(0.0005)
    os._exit(0)
signal.signal(signal.SIGHUP, on_hangup)
ends = {"shielded": {}, "plain": {}}
deadline = time.monotonic() + 3
for i in range(4000):
    if time.monotonic() > deadline:
        break
    way = "shielded" if i % 2 else "plain"
    if way == "shielded":
        child = start_in_own_session(["/bin/true"], stdin=subprocess.DEVNULL)
    else:
        child = subprocess.Popen(["/bin/true"], stdin=subprocess.DEVNULL, start_new_session=True)
    code = str(child.wait(5))
    ends[way][code] = ends[way].get(code, 0) + 1
os.kill(killer, signal.SIGKILL)
os.waitpid(killer, 0)
print(json.dumps({"ends": ends, "hangups": hangups}))
"""


def test_a_hang_up_while_the_child_starts_neither_kills_it_nor_is_lost_to_the_owner():
    owner = subprocess.run([sys.executable, "-c", _OWNER], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, start_new_session=True)
    assert owner.returncode == 0, owner.stderr
    seen = json.loads(owner.stdout)
    shielded = seen["ends"]["shielded"]
    assert sum(shielded.values()) >= 100, seen                  # enough starts to meet the hang-ups
    # every shielded child ran to its exit; a plain start_new_session child can die of SIGHUP
    # (exit -1) when the hang-up comes between CPython's unblocking and its setsid()
    assert shielded == {"0": sum(shielded.values())}, seen
    assert seen["hangups"] > 0, seen                            # the owner still had its hang-ups


def _blocked(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigBlk in /proc status")


def test_the_child_holds_the_job_signals_and_still_stops_on_sigterm():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    child = start_in_own_session(["sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        assert signal.pthread_sigmask(signal.SIG_BLOCK, ()) == before     # the owner's mask is back
        mask = _blocked(child.pid)
        assert all(mask >> (sig - 1) & 1 for sig in JOB_SIGNALS), hex(mask)
        assert not mask >> (signal.SIGTERM - 1) & 1, hex(mask)
        child.send_signal(signal.SIGHUP)                   # held: the child goes on
        try:
            child.wait(0.3)
        except subprocess.TimeoutExpired:
            pass
        assert child.poll() is None
        child.terminate()
        assert child.wait(5) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)


def test_run_in_own_session_gives_what_subprocess_run_gives_and_kills_at_its_timeout():
    done = run_in_own_session(["sh", "-c", "echo out; echo err >&2; exit 3"], 10, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_in_own_session(["sh", "-c", "echo $$; exec sleep 30"], 0.5, text=True)
    assert time.monotonic() - started < 10                 # killed at its timeout, not waited for
