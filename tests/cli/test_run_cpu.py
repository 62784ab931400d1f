"""`mmaudit run --cpu N`: the trading loop alone on CPU N, and every other thread of the process
(those already running included) and every process the session starts (the venue process, the
clock monitor, the journal's helper thread) on the other CPUs; a
CPU the process may not use, or the only one, is refused before anything is made. The affinity is
read back from the kernel (/proc), not from what the code meant to set."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from cli.run_cmd import command as run
from mm_core.cpuplan import CpuPlanError, check_cpu, pinned, rest_elsewhere
from tests.cli.runproc import running

ALLOWED = frozenset(os.sched_getaffinity(0))
needs_two = pytest.mark.skipif(len(ALLOWED) < 2, reason="this process may run on one CPU only: nothing to "
                               "keep the trading loop's CPU apart from")


def _cpus(status_path: str) -> frozenset[int]:
    """The CPUs /proc says a task may run on (its Cpus_allowed_list: 0-1,4)."""
    with open(status_path) as f:
        text = next(line for line in f if line.startswith("Cpus_allowed_list:")).split(":", 1)[1].strip()
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


def _in_thread(fn):
    """fn() run on a thread of its own (affinity changes stay off the test runner's thread); what
    it returned, or what it raised raised again here."""
    box: dict = {}

    def body():
        try:
            box["value"] = fn()
        except BaseException as exc:     # noqa: BLE001 - handed to the caller
            box["error"] = exc
    thread = threading.Thread(target=body)
    thread.start()
    thread.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_a_cpu_this_process_may_not_use_is_refused():
    with pytest.raises(CpuPlanError, match="not one this process may run on"):
        check_cpu(max(ALLOWED) + 1000)


def test_the_only_cpu_is_refused():
    cpu = min(ALLOWED)

    def only_one():
        os.sched_setaffinity(0, {cpu})
        check_cpu(cpu)
    with pytest.raises(CpuPlanError, match="only CPU"):
        _in_thread(only_one)


@needs_two
def test_threads_and_processes_started_while_the_rest_is_elsewhere_stay_off_the_cpu():
    cpu = max(ALLOWED)

    asked, told = threading.Event(), threading.Event()

    def earlier():              # a thread already running (a native library's worker, say)
        for key in ("earlier", "earlier after"):
            asked.wait(10)
            asked.clear()
            seen[key] = frozenset(os.sched_getaffinity(0))
            told.set()
    seen: dict = {}
    waiting = threading.Thread(target=earlier)
    waiting.start()

    def ask():
        told.clear()
        asked.set()
        told.wait(10)

    def plan():
        with rest_elsewhere(cpu) as rest:
            ask()
            seen["rest"] = rest
            seen["self"] = frozenset(os.sched_getaffinity(0))
            child = threading.Thread(target=lambda: seen.setdefault("thread", frozenset(os.sched_getaffinity(0))))
            child.start()
            child.join(10)
            proc = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                                  capture_output=True, text=True, timeout=30, check=True)
            seen["process"] = proc.stdout.strip()
            with pinned(cpu):
                seen["pinned"] = frozenset(os.sched_getaffinity(0))
            seen["after pinned"] = frozenset(os.sched_getaffinity(0))
        seen["after"] = frozenset(os.sched_getaffinity(0))
        ask()
        return seen
    _in_thread(plan)
    waiting.join(10)
    rest = ALLOWED - {cpu}
    assert seen["rest"] == seen["self"] == seen["thread"] == seen["earlier"] == rest
    assert seen["earlier after"] == ALLOWED
    assert seen["process"] == str(sorted(rest))
    assert seen["pinned"] == {cpu} and seen["after pinned"] == rest
    assert seen["after"] == ALLOWED


def test_no_cpu_changes_nothing():
    def plan():
        with rest_elsewhere(None) as allowed, pinned(None):
            return allowed, frozenset(os.sched_getaffinity(0))
    assert _in_thread(plan) == (ALLOWED, ALLOWED)


def test_the_cli_refuses_a_cpu_it_may_not_use_before_anything_is_made(tmp_path):
    out = CliRunner().invoke(run, ["--cpu", str(max(ALLOWED) + 1000), "--journal", str(tmp_path / "j")])
    assert out.exit_code == 2, out.output
    assert "--cpu" in out.output and "not one this process may run on" in out.output
    assert not (tmp_path / "j").exists()


@needs_two
def test_a_session_runs_its_loop_alone_on_the_cpu_and_everything_else_off_it(tmp_path):
    cpu = max(ALLOWED)
    args = ["--venue", "process", "--no-ptp-lab", "--busy-poll", "--cpu", str(cpu), "--duration", "4s",
            "--journal", str(tmp_path / "j"), "--close-out", "1s"]
    with running(args) as session:
        pid = session.proc.pid
        session.read_until("venue ", 60)       # the venue is up: the loop starts right after
        deadline, main = time.monotonic() + 20, f"/proc/{pid}/task/{pid}/status"
        while _cpus(main) != {cpu} and time.monotonic() < deadline and session.proc.poll() is None:
            time.sleep(0.02)
        assert _cpus(main) == {cpu}
        others = {tid: _cpus(f"/proc/{pid}/task/{tid}/status") for tid in os.listdir(f"/proc/{pid}/task")
                  if tid != str(pid)}
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        kids = {c: _cpus(f"/proc/{c}/status") for c in children}
        assert others and kids                  # the journal's helper, the monitor; the venue process
        assert all(cpus == ALLOWED - {cpu} for cpus in (*others.values(), *kids.values())), (others, kids)
        session.proc.wait(60)
        session.finish()
    assert f"the trading loop alone on CPU {cpu} (--cpu)" in session.out, session.out + session.err
