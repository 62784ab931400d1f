"""A named `journal tail` saves its position only past records it printed whole: stopped by
SIGTERM while its stdout is a pipe nobody reads (the write blocked), or when the reader closes the
pipe, the record it could not print is printed by the next run, never skipped. Real processes,
real pipes, real signals."""
from __future__ import annotations

import array
import contextlib
import fcntl
import os
import pathlib
import signal
import subprocess
import sys
import termios
import time

from click.testing import CliRunner

from cli.journal_cmd import command
from journal import Journal, RecordType

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECORDS = 3000                     # about 360 KB of lines: several times a pipe's 64 KiB


def journal_of(d: pathlib.Path) -> pathlib.Path:
    with Journal(d, segment_size=1 << 22) as j:
        for i in range(RECORDS):
            j.append(RecordType.MD_PACKET, b"%08d" % i + bytes(100))
    return d


@contextlib.contextmanager
def named_tail(d: pathlib.Path, stderr: pathlib.Path):
    """`mmaudit journal tail d --name ops` with stdout a pipe, never left running."""
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from cli.main import cli; "
                                 "sys.argv[0] = 'mmaudit'; cli()", "journal", "tail", str(d), "--name", "ops"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def unread(proc: subprocess.Popen) -> int:
    n = array.array("i", [0])
    fcntl.ioctl(proc.stdout.fileno(), termios.FIONREAD, n)
    return n[0]


def wait_until_blocked(proc: subprocess.Popen) -> None:
    """Until the pipe stays full: the tail's write of its next line is blocked."""
    last, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = unread(proc)
        if now == last and now > 60_000:
            return
        last = now
    raise AssertionError(f"the tail never filled its pipe ({last} bytes)")


def whole_lines(data: bytes) -> list[int]:
    return [int(line.split()[0]) for line in data.split(b"\n")[:-1]]      # a torn last line was not printed


def saved_position(d: pathlib.Path) -> int:
    saved = d / "tailers" / "ops.pos"
    return int(saved.read_text().split()[2]) if saved.exists() else 1


def rest_of_journal(d: pathlib.Path) -> list[int]:
    again = CliRunner().invoke(command, ["tail", str(d), "--name", "ops", "--idle-timeout", "0.5"])
    assert again.exit_code == 0, again.output
    return [int(line.split()[0]) for line in again.output.splitlines()]


def test_sigterm_during_a_blocked_write_leaves_that_record_to_the_next_run(tmp_path):
    d = journal_of(tmp_path / "j")
    with named_tail(d, tmp_path / "stderr") as proc:
        got = os.read(proc.stdout.fileno(), 1 << 14)
        started = time.monotonic()
        while time.monotonic() - started < 1.6:      # read slowly for a while: the tail commits on its way
            time.sleep(0.25)
            got += os.read(proc.stdout.fileno(), 1 << 14)
        wait_until_blocked(proc)                     # then nobody reads
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)                        # the blocked write does not keep it alive
        got += proc.stdout.read()
    printed = whole_lines(got)
    assert printed == list(range(1, len(printed) + 1)) and len(printed) < RECORDS
    unprinted = printed[-1] + 1
    resume = saved_position(d)
    assert 1 < resume <= unprinted                    # committed on the way, never past what was printed
    again = rest_of_journal(d)
    assert again == list(range(resume, RECORDS + 1))  # the record the first run never got out comes now
    assert unprinted in again
    message = (tmp_path / "stderr").read_text()
    assert f"seq {unprinted} was not printed whole (stopped by SIGTERM" in message, message
    assert proc.returncode == 1


def test_a_closed_stdout_leaves_the_record_it_failed_on_to_the_next_run(tmp_path):
    d = journal_of(tmp_path / "j")
    with named_tail(d, tmp_path / "stderr") as proc:
        assert os.read(proc.stdout.fileno(), 1 << 16)
        proc.stdout.close()                          # the consumer goes away (`| head`)
        proc.wait(timeout=20)
    message = (tmp_path / "stderr").read_text()
    assert proc.returncode == 1 and "Traceback" not in message, message
    assert "was not printed whole (stdout was closed)" in message
    failed = int(message.split("seq ")[1].split()[0])
    resume = saved_position(d)
    assert resume <= failed                          # the record that got EPIPE is not skipped
    again = rest_of_journal(d)
    assert again == list(range(resume, RECORDS + 1)) and failed in again
