"""Subprocess entry point for the crash driver: a zygote that forks one journal writer per job.

Reads `R <json job>` lines on stdin; for each, forks a writer that appends the job's records and
reports `A <idx> <count> <first_seq>` on stdout after every append returns. A `K` line SIGKILLs the
writer (sent here because only its parent can kill it without racing pid reuse); `D <pid> <wait
status>` follows once the writer is gone. Must not decide when to kill: the driver does that.
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys


def _say(line: str) -> None:
    os.write(1, line.encode() + b"\n")   # one write per line: below PIPE_BUF, so never interleaved


def _writer(job: dict) -> int:
    from journal import Journal
    from journal.stress import write_records
    try:
        journal = Journal(job["path"], segment_size=job["segment_size"], durability=job["durability"])
        write_records(journal, job["start"], job["stop"],
                      lambda idx, count, first: _say(f"A {idx} {count} {first}"))
        journal.close()
    except BaseException as exc:   # report, never hide: the parent counts this run as failed
        _say(f"E {type(exc).__name__}: {exc}".replace("\n", " "))
        return 3
    return 0


class _Commands:
    """Lines from stdin, read unbuffered so that select() on fd 0 stays truthful."""

    def __init__(self) -> None:
        self._pending = b""

    def buffered(self) -> bool:
        return b"\n" in self._pending

    def fill(self) -> bool:
        chunk = os.read(0, 4096)
        self._pending += chunk
        return bool(chunk)

    def next(self) -> str | None:
        """The next line, blocking; None once stdin is closed."""
        while not self.buffered():
            if not self.fill():
                return None
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()


def _supervise(pid: int, commands: _Commands) -> int:
    """Wait for the writer to end, killing it when told; the pid stays ours until waitpid reaps it."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            if not commands.buffered():
                ready = select.select([0, pidfd], [], [])[0]
                if pidfd in ready:
                    return os.waitpid(pid, 0)[1]
                if not commands.fill():   # stdin closed: the driver is gone, stop the writer
                    os.kill(pid, signal.SIGKILL)
                    return os.waitpid(pid, 0)[1]
                continue
            if commands.next() == "K":
                os.kill(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)


def main() -> int:
    import journal  # noqa: F401  (import once here so each fork starts writing at once)
    import journal.stress  # noqa: F401
    _say("Z")
    commands = _Commands()
    while (line := commands.next()) is not None:
        if not line.startswith("R "):
            continue
        job = json.loads(line[2:])
        gate_r, gate_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(gate_w)
            os.read(gate_r, 1)   # wait until the driver has been told our pid
            os._exit(_writer(job))
        os.close(gate_r)
        _say(f"P {pid}")
        os.write(gate_w, b"x")
        os.close(gate_w)
        _say(f"D {pid} {_supervise(pid, commands)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
