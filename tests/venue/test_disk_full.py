"""A venue whose disk fills up mid-session (a real 1 MiB tmpfs) stops by itself: it sends
nothing it could not log, closes its sockets, says why, and what it logged before stays
readable. It must never hang with its stop unreported."""
from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys

import pytest

from mm_core.protocol import ouch
from mm_core.venue import restart
from mm_core.venue.client import ClientError, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from mm_core.venue.errors import SessionLogError
from mm_core.venue.session_log import SessionLog, read_session_log
from tests.journal.conftest import small_tmpfs  # noqa: F401  (the fixture)


def fill(path) -> None:
    """Write to `path` until the file system is full."""
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_mid_session_stops_the_venue_cleanly(small_tmpfs, receiver):  # noqa: F811
    logs = small_tmpfs / "logs"
    config = load_config().with_venue(itch_port=receiver.port, log_dir=str(logs),
                                      session="FULL000001", fsync_interval=0.01)
    venue = Venue(config, background_flow=False)
    venue.start()
    try:
        accepted = []
        with SoupClient(venue.ports.host, venue.ports.ouch) as client:
            client.login("MM01", "mmaudit", 1)
            client.sequenced(1)
            client.enter("K0", "B", 100, "ACME", 9_0000)
            accepted.append(client.sequenced(1)[0].message)
            fill(small_tmpfs / "filler")
            with pytest.raises(ClientError):          # the venue goes away, it does not hang
                for i in range(1, 2000):
                    client.enter(f"K{i}", "B", 100, "ACME", 9_0000)
                    accepted.append(client.sequenced(1, 5.0)[0].message)
        assert venue.wait(10.0), "the venue did not stop"
        assert venue.stop_reason == "write failed" and "No space" in venue.write_error
        venue.stop()                                  # idempotent, no error
        with pytest.raises(OSError):                  # its sockets are closed
            socket.create_connection((venue.ports.host, venue.ports.ouch), timeout=1.0)
        logged = read_session_log(logs / "FULL000001" / "MM01.soup")
        # every Accepted the client got is in the log, in order (write-ahead held)
        sent = [ouch.encode(m) for m in accepted]
        assert all(isinstance(m, ouch.Accepted) for m in accepted)
        assert logged[1:1 + len(sent)] == sent
    finally:
        venue.stop()


def test_a_failed_write_is_latched_and_leaves_only_whole_flushes(small_tmpfs):  # noqa: F811
    log = SessionLog(small_tmpfs / "x.soup")
    log.append(b"first")
    log.flush()
    good = os.path.getsize(log.path)
    fill(small_tmpfs / "filler")
    for i in range(20000):                     # more than the page the file already has
        log.append(b"m%05d" % i + b"." * 60)
    with pytest.raises(SessionLogError, match="No space"):
        log.flush()
    assert os.path.getsize(log.path) == good   # nothing half-written stays
    os.unlink(small_tmpfs / "filler")          # room again, but the failure is latched
    with pytest.raises(SessionLogError, match="failed earlier"):
        log.flush()
    log.close()                                # closes without trying again
    assert read_session_log(log.path) == [b"first"]


def test_a_start_that_cannot_write_its_start_of_day_leaves_nothing_open(small_tmpfs):  # noqa: F811
    logs = small_tmpfs / "logs"
    session_dir = logs / "FULL000002"
    session_dir.mkdir(parents=True)
    (session_dir / restart.MOLD_SESSIONS).write_text("OLDNAME\n")   # room left in its page
    fill(small_tmpfs / "filler")
    with socket.socket() as probe:                                  # a port to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = load_config().with_venue(itch_port=9, ouch_port=port, log_dir=str(logs),
                                      session="FULL000002")
    fds = len(os.listdir("/proc/self/fd"))
    venue = Venue(config, background_flow=False)
    with pytest.raises(SessionLogError, match="No space"):
        venue.start()
    assert len(os.listdir("/proc/self/fd")) == fds                 # no socket, no log left open
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1.0)
    venue.stop()                                                    # nothing to stop


def test_the_venue_process_exits_by_itself_with_status_1_when_its_disk_fills(small_tmpfs):  # noqa: F811
    proc = subprocess.Popen([sys.executable, "-m", "mm_core.venue", "--duration", "60s",
                             "--itch-port", "9", "--log-dir", str(small_tmpfs / "logs"),
                             "--session", "FULL000003"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        ready = json.loads(proc.stdout.readline())
        with SoupClient(ready["host"], ready["ouch_port"]) as client:
            client.login("MM01", "mmaudit", 1)
            fill(small_tmpfs / "filler")
            with pytest.raises(ClientError):
                for i in range(20000):
                    client.enter(f"P{i}", "B", 100, "ACME", 9_0000)
                    client.sequenced(1, 5.0)
        assert proc.wait(15) == 1
        assert "venue stopped: write failed" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
