"""`mmaudit run` as a real subprocess for end-to-end tests: started, read line by line (bounded
in time: reader threads feed the lines, so a run that hangs silent never hangs the test; stderr
is drained all along, so a chatty run never blocks on a full pipe), stopped with Ctrl-C (SIGINT)
and, whatever happens, never left running."""
from __future__ import annotations

import contextlib
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
_RUN = "from cli.run_cmd import command; command()"
_EOF = None


def stop_signals_as_from_a_terminal() -> None:
    """In the child: the stop signals' default dispositions. A test runner started as a shell's
    background job (`make test &`) ignores SIGINT and SIGQUIT, one under `nohup` SIGHUP; its
    children inherit that, and `mmaudit run` keeps signals its parent ignored (as `nohup` wants),
    so the Ctrl-C or hang-up these tests send would never arrive (test_run_hangup sets them ignored itself where that is the point)."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


class RunProcess:
    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _RUN, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=stop_signals_as_from_a_terminal)
        self.out = self.err = ""
        self._lines: queue.Queue = queue.Queue()
        self._err: list[str] = []
        self._readers = [threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines.put, True),
                                          daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self._err.append, False),
                                          daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream, sink, mark_end: bool) -> None:
        for line in stream:
            sink(line)
        if mark_end:
            sink(_EOF)

    def stderr(self) -> str:
        return "".join(self._err)

    def read_until(self, prefix: str, seconds: float) -> str:
        """stdout lines up to the first starting with `prefix`; AssertionError (with what the
        process said) when none comes in time or the process ends first."""
        deadline, seen = time.monotonic() + seconds, ""
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.0)) if left > 0 else self._lines.get_nowait()
            except queue.Empty:
                break
            if line is _EOF:
                self._lines.put(_EOF)
                break
            seen += line
            self.out += line
            if line.startswith(prefix):
                return seen
        raise AssertionError(f"no line starting {prefix!r} within {seconds:g} s "
                             f"(exit status {self.proc.poll()}): {seen}{self.stderr()}")

    def interrupt(self, seconds: float = 60, sig: int = signal.SIGINT) -> int:
        """Ctrl-C (or `sig`), then the rest of its output; its exit status."""
        self.proc.send_signal(sig)
        self.proc.wait(seconds)
        self.finish()
        return self.proc.returncode

    def finish(self, seconds: float = 10) -> None:
        """Collect what the readers took once the process ended."""
        for reader in self._readers:
            reader.join(seconds)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not _EOF:
                self.out += line
        self.err = self.stderr()


@contextlib.contextmanager
def running(args: list[str]):
    run = RunProcess(args)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)
        run.finish()
