"""`mmaudit run` as a real subprocess for end-to-end tests: started, read line by line (bounded
in time), stopped with Ctrl-C (SIGINT) and, whatever happens, never left running."""
from __future__ import annotations

import contextlib
import pathlib
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
_RUN = "from cli.run_cmd import command; command()"


class RunProcess:
    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _RUN, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out = self.err = ""

    def read_until(self, prefix: str, seconds: float) -> str:
        """stdout lines up to the first starting with `prefix`; AssertionError (with what the
        process said) when none comes in time or the process ends first."""
        deadline, seen = time.monotonic() + seconds, ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen += line
            if line.startswith(prefix):
                return seen
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        raise AssertionError(f"no line starting {prefix!r}: {seen}{err}")

    def interrupt(self, seconds: float = 60) -> int:
        """Ctrl-C, then the rest of its output; its exit status."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=seconds)
        self.out, self.err = self.out + out, self.err + err
        return self.proc.returncode


@contextlib.contextmanager
def running(args: list[str]):
    run = RunProcess(args)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)
