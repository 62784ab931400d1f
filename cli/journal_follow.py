"""The follow loop of `mmaudit journal tail`: print records as they arrive, and save a named
tailer's position only past records that were printed whole (at least once: a record fetched but
not printed is printed again by the next run, never skipped).

Owns SIGTERM and SIGINT while it runs. Must not know how a record is rendered (the command
passes that in).
"""
from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from typing import Callable

import click

import journal

COMMIT_EVERY_S = 1.0
_WAIT_S = 0.2


class NotPrinted(Exception):
    """A record was fetched but not printed whole: SIGTERM or SIGINT during a write that blocked
    (a consumer that stopped reading), or stdout closed."""

    def __init__(self, seq: int, why: str):
        super().__init__(f"seq {seq} was not printed whole ({why})")
        self.seq = seq


class _Stop:
    """SIGTERM (how a service manager stops a follower) and SIGINT (Ctrl-C) ask the loop to stop
    at its next check, instead of raising wherever the loop is (between next() and the echo, a
    record handed out but not printed could not be committed: the next run would repeat it).
    A write to stdout is the one place the loop could wait for ever (a pipe nobody reads), so a
    signal during a write that stdout cannot take ends that write: the record counts as not
    printed. A write stdout can take is left to finish (it may have finished already: the
    handler runs just after the write's system call returns as well as inside a blocked one)."""

    def __init__(self) -> None:
        self.requested = False
        self.writing: int | None = None      # the seq being written

    def _on_signal(self, signum, frame) -> None:
        self.requested = True
        if self.writing is not None and not _stdout_writable():
            raise NotPrinted(self.writing, f"stopped by {signal.Signals(signum).name} while stdout was not "
                                           f"taking it")

    @contextlib.contextmanager
    def installed(self):
        try:
            previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        except ValueError:                   # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def echo(self, seq: int, line: str) -> None:
        self.writing = seq
        try:
            click.echo(line)
        except BrokenPipeError:
            raise NotPrinted(seq, "stdout was closed") from None
        finally:
            self.writing = None


def follow(tailer: journal.Tailer, render: Callable[[journal.Record], str], *, count: int | None,
           idle_timeout: float | None, named: bool) -> None:
    """Print records until count, idle_timeout, SIGTERM or SIGINT. A named tailer's position is
    committed every COMMIT_EVERY_S and on the way out, and only while every record it handed out
    was printed: before next(), never between next() and the echo, and not at all when the echo
    failed or an exception landed in between."""
    stop = _Stop()
    printed, waited, committed = 0, 0.0, time.monotonic()
    done = tailer.position                   # every record before this one was printed
    try:
        with stop.installed():
            while (count is None or printed < count) and not stop.requested:
                if named and time.monotonic() - committed >= COMMIT_EVERY_S:
                    tailer.commit()          # a follower killed for good prints at most this much again
                    committed = time.monotonic()
                rec = tailer.next(timeout_s=_WAIT_S)
                if rec is None:
                    done = tailer.position
                    waited += _WAIT_S
                    if idle_timeout is not None and waited >= idle_timeout:
                        break
                    continue
                waited = 0.0
                stop.echo(rec.seq, render(rec))
                done = tailer.position
                printed += 1
    finally:
        if named and tailer.position == done:
            tailer.commit()


def _stdout_fd() -> int | None:
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):     # not a real file (a test runner's buffer)
        return None


def _stdout_writable() -> bool:
    """Whether a write to stdout can go on now (a full pipe cannot)."""
    fd = _stdout_fd()
    if fd is None:
        return True
    try:
        return bool(select.select([], [fd], [], 0)[1])
    except (OSError, ValueError):
        return True


def drop_stdout() -> None:
    """After a write that did not finish: point stdout at /dev/null, so the bytes left in
    Python's buffer neither block the exit's flush again nor fail it (the record they belong to
    is printed again by the next run)."""
    fd = _stdout_fd()
    if fd is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
