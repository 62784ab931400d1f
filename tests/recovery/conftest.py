"""Shared fixtures of the recovery tests: a venue on loopback and a runner SIGKILLed mid-session."""
from __future__ import annotations

import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from journal import JournalError, Reader, RecordType
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue

ROOT = pathlib.Path(__file__).resolve().parents[2]
USER = "MM01"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count(path: str, rtype: RecordType) -> int:
    try:
        with Reader(path) as reader:
            return sum(1 for _ in reader.records(rtypes=[rtype]))
    except JournalError:        # not created yet
        return 0


def fills_journaled(path: str) -> int:
    """The OUCH Executed messages the journal holds (a fill the venue made is not one the runner
    has read and journaled yet)."""
    try:
        with Reader(path) as reader:
            return int((reader.read_fixed(RecordType.VENUE_MSG)["msg_type"] == ord("E")).sum())
    except JournalError:
        return 0


def sigkilled_session(journal: str, ports, itch_port: int, ready, what: str) -> None:
    """The session module trading into `journal` in a subprocess, SIGKILLed once `ready()` (bounded:
    it runs 30 s; not ready after 27 s fails the test with `what` it did not do)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.recovery.session", journal, str(ports.ouch),
                             str(itch_port), str(ports.rerequest), "30"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, done = time.monotonic() + 27, False
        while not done and time.monotonic() < deadline and proc.poll() is None:
            done = ready()
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert done, f"the session {what} in 27 s"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def crashed_session(tmp_path):
    """A venue, and the journal of a runner SIGKILLed once it had sent orders and journaled fills
    (bounded: the session runs 30 s; if it got no fill by then the fixture fails saying so, rather
    than hand a test a journal without the fills it needs)."""
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=40.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=5.0)
    with Venue(config) as venue:
        journal = str(tmp_path / "journal")
        sigkilled_session(journal, venue.ports, port, lambda: count(journal, RecordType.ORDER_SENT) >= 12
                          and fills_journaled(journal) > 0, "journaled no fill (machine overloaded?)")
        yield venue, journal, ("127.0.0.1", venue.ports.ouch)
