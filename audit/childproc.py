"""Child processes that die with their owner: the argv prefix that makes the kernel signal a
child when the thread that started it dies (a SIGKILLed `mmaudit run` must not leave its PTP lab
or its venue process running), whether the owner a leftover names is still alive, and starting a
child in a session of its own that a job signal sent while it starts cannot kill."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

__all__ = ["JOB_SIGNALS", "die_with_owner", "pid_alive", "run_in_own_session", "start_in_own_session"]

# What a terminal or a shell sends to a whole job: hang-up, Ctrl-C, Ctrl-\ and Ctrl-Z (a child
# stopped before its setsid() would miss the job's SIGCONT and stay stopped)
JOB_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP})


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (another user's included): what a leftover's owner pid is
    checked with before the leftover is removed."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # someone else's live process
        return True
    return True


def die_with_owner(signal_name: str) -> list[str]:
    """`setpriv --pdeathsig SIGNAL` (util-linux: it sets PR_SET_PDEATHSIG and execs the child)
    to put before a child's argv; [] without setpriv (the child then outlives a killed owner
    until its own bounds end it). A Popen preexec_fn calling prctl would do the same but runs
    Python between fork and exec, which is unsafe with other threads."""
    return ["setpriv", "--pdeathsig", signal_name] if shutil.which("setpriv") else []


def start_in_own_session(argv: list[str], **popen) -> subprocess.Popen:
    """Popen(argv, start_new_session=True, **popen), shielded from the job's signals while it
    starts. A session of its own keeps a terminal's hang-up or Ctrl-C, sent to the whole job, for
    the owner to act on; but CPython's child unblocks signals before it calls setsid(), so a job
    signal sent in between is delivered there with the default action and kills the child before
    it runs (a hang-up during a pmc query then reads as a failed clock sample). Holding the job's
    signals blocked in this thread while it forks closes that gap: the child starts with them
    blocked (inherited across exec), so one that reached it before setsid() stays pending and
    undelivered; it is stopped with SIGTERM or SIGKILL, which stay deliverable. The owner gets a
    signal held here as soon as the mask is restored (or at once, in another thread)."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, JOB_SIGNALS)
    try:
        return subprocess.Popen(argv, start_new_session=True, **popen)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def run_in_own_session(argv: list[str], timeout_s: float, **popen) -> subprocess.CompletedProcess:
    """subprocess.run(argv, capture_output=True, timeout=timeout_s, **popen), started as
    start_in_own_session starts it: as there, a child still running after timeout_s (then
    subprocess.TimeoutExpired) or when the wait is interrupted is killed and the exception raised."""
    with start_in_own_session(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen) as proc:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except BaseException:        # never left running; leaving the block reaps it
            proc.kill()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
