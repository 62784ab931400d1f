"""`mmaudit run` stops cleanly when its terminal goes away (SIGHUP: the terminal or SSH connection
closed) or on SIGQUIT, as on Ctrl-C: SESSION_STOP journaled, the journal sealed and verified, the
control socket, the PTP lab's ptp4l processes and namespaces gone, exit 0. The hang-up is real: the
run's controlling terminal is a pseudo-terminal whose master the test closes, so the kernel sends
SIGHUP and every later write to the terminal fails, as when an SSH session drops. A shell that
hangs up sends SIGHUP to the whole job: the venue process, ptp4l and pmc the run started are left
to the run (sessions of their own), so its end is not a lost venue link or an unanswered clock."""
from __future__ import annotations

import fcntl
import os
import pathlib
import pty
import select
import signal
import subprocess
import sys
import termios
import time

from audit.ptplab import lab_namespaces
from mm_core.session import lab_available
from journal import Reader, RecordType, verify
from journal.catalogue import unpack
from tests.cli.runproc import running

ROOT = pathlib.Path(__file__).resolve().parents[2]
_RUN = "from cli.run_cmd import command; command()"


def _children(pid: int, name: str) -> list[int]:
    """Live child processes of `pid` called `name`."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
        except (OSError, IndexError):
            continue
        state, ppid = fields[1].split()[:2]
        if comm == name and int(ppid) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _stop_record(journal) -> dict:
    with Reader(str(journal)) as reader:
        stops = [r for r in reader.records() if r.rtype == RecordType.SESSION_STOP]
    assert len(stops) == 1
    return unpack(RecordType.SESSION_STOP, stops[0].payload)


def _controlling_terminal() -> None:
    """In the child: a session of its own, with stdin (the pty's slave) as controlling terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(fd: int, marker: bytes, seconds: float) -> bytes:
    seen, deadline = b"", time.monotonic() + seconds
    while marker not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_a_hung_up_terminal_stops_the_run_cleanly(tmp_path):
    journal = tmp_path / "journal"
    master, slave = pty.openpty()
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _RUN, "--duration", "60s", "--journal", str(journal)],
                                cwd=ROOT, stdin=slave, stdout=slave, stderr=err, preexec_fn=_controlling_terminal)
    os.close(slave)
    try:
        seen = _read_until(master, b"events", 60)
        assert b"events" in seen, seen.decode(errors="replace") + (tmp_path / "stderr").read_text()
        ptp4l = _children(proc.pid, "ptp4l")     # none without the lab (not root): the no-lab path
        os.close(master)                          # the terminal goes away: SIGHUP
        master = -1
        code = proc.wait(60)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0, (tmp_path / "stderr").read_text()
    assert "Traceback" not in (tmp_path / "stderr").read_text()
    assert _stop_record(journal)["reason"] == b"stopped"
    result = verify(str(journal))
    assert result.ok and result.last_sealed
    assert not (journal / "control.sock").exists()
    assert not [pid for pid in ptp4l if _running(pid)]
    assert not lab_namespaces(proc.pid)
    assert not list(pathlib.Path("/tmp").glob(f"mmaudit-ptp-{proc.pid}-*"))


def test_sighup_with_the_terminal_still_there_and_sigquit_stop_cleanly(tmp_path):
    for sig in (signal.SIGHUP, signal.SIGQUIT):
        journal = tmp_path / sig.name
        with running(["--duration", "60s", "--journal", str(journal), "--no-ptp-lab"]) as run_proc:
            seen = run_proc.read_until("[", 30)
            assert "events" in seen, seen
            code = run_proc.interrupt(30, sig)
        assert code == 0, run_proc.err
        assert "stopped: stopped" in run_proc.out           # the summary still printed
        assert _stop_record(journal)["reason"] == b"stopped"
        assert verify(str(journal)).ok


def test_sighup_to_the_whole_job_leaves_the_venue_and_clock_to_the_run(tmp_path):
    journal = tmp_path / "journal"
    proc = subprocess.Popen([sys.executable, "-c", _RUN, "--duration", "60s", "--journal", str(journal),
                             "--venue", "process"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)    # a job of its own, as a shell makes
    try:
        seen = ""
        for line in proc.stdout:
            seen += line
            if line.startswith("["):
                break
        assert "events" in seen, seen
        os.killpg(proc.pid, signal.SIGHUP)                      # what a shell does when it hangs up
        out = seen + proc.stdout.read()
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    assert code == 0, out
    assert "stopped: stopped" in out and "unreconciled" not in out, out    # the venue link held
    assert _stop_record(journal)["reason"] == b"stopped"
    if not lab_available():
        assert "ptp-lab: LOCKED, eu-hft compliant" in out, out               # ptp4l and pmc still answered
    assert not lab_namespaces(proc.pid)


def test_a_sigkilled_run_takes_its_venue_process_with_it(tmp_path):
    """The venue process dies with the run (setpriv --pdeathsig TERM) instead of serving on for
    the run's whole duration: the kernel sends SIGTERM, and the venue stops as it does on one."""
    journal = tmp_path / "journal"
    with running(["--duration", "60s", "--journal", str(journal), "--venue", "process", "--no-ptp-lab"]) as run:
        assert "events" in run.read_until("[", 60)
        venue = _children(run.proc.pid, "python3") + _children(run.proc.pid, "python3.11")
        assert len(venue) == 1, venue
        run.proc.kill()
        run.proc.wait(10)
        deadline = time.monotonic() + 15
        while _running(venue[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = not _running(venue[0])
        if not gone:
            os.kill(venue[0], signal.SIGKILL)
    assert gone, "the venue process outlived the SIGKILLed run"
