"""Which CPUs a session's threads run on when the trading loop is given a CPU of its own.

Owns the plan's check (the CPU must be one this process may use, and another must be left for
everything else), moving the calling thread off that CPU before the session starts its venue,
clock lab, journal helper, clock monitor and control threads (Linux gives each new thread and
child process its creator's affinity, so they all stay off it), pinning the trading loop's thread
to it, and giving each thread its old affinity back afterwards. Must not know what runs where: the
session and the runner call it.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

__all__ = ["CpuPlanError", "check_cpu", "rest_elsewhere", "pinned"]


class CpuPlanError(ValueError):
    """A trading CPU this process cannot use, or one that would leave no CPU for the rest."""


def _allowed() -> frozenset[int]:
    return frozenset(os.sched_getaffinity(0))


def check_cpu(cpu: int) -> frozenset[int]:
    """The CPUs left for everything but the trading loop when it runs alone on `cpu`; CpuPlanError
    when `cpu` is not one the calling thread may use or is the only one."""
    allowed = _allowed()
    if cpu not in allowed:
        raise CpuPlanError(f"CPU {cpu} is not one this process may run on "
                           f"(allowed: {_cpu_list(allowed)})")
    rest = allowed - {cpu}
    if not rest:
        raise CpuPlanError(f"CPU {cpu} is the only CPU this process may run on: the trading loop "
                           "needs another left for the venue, the clock and the journal's helper")
    return rest


@contextlib.contextmanager
def rest_elsewhere(cpu: int | None) -> Iterator[frozenset[int]]:
    """Every thread of this process (the calling one, those already running, such as a native
    library's workers, and every thread and process started inside) kept off `cpu` until the
    block ends, then each thread that was running before given its affinity back; None does
    nothing (yields the allowed CPUs)."""
    if cpu is None:
        yield _allowed()
        return
    rest = check_cpu(cpu)
    before = {}
    for tid in _threads():
        try:
            before[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, rest)
        except ProcessLookupError:      # the thread ended meanwhile
            before.pop(tid, None)
    try:
        yield rest
    finally:
        for tid, cpus in before.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, cpus)


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """The calling thread alone on `cpu` until the block ends (its affinity back after); None does
    nothing. Threads it starts inside would share the CPU: the trading loop starts none."""
    if cpu is None:
        yield
        return
    before = _allowed()
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _threads() -> list[int]:
    """The kernel's ids of this process's threads, the calling one first."""
    me = threading.get_native_id()
    return [me] + [int(t) for t in os.listdir("/proc/self/task") if int(t) != me]


def _cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
