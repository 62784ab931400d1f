"""A session log's torn tail (power loss) is cut at start and reported: a log line, the
venue's log_tail_cut and the process's start line; its sequence numbers then carry new messages."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from mm_core.venue.client import SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from mm_core.venue.session_log import SessionLog

SESSION = "CRASH00001"


def start_process(logs: str, itch_port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen([sys.executable, "-m", "mm_core.venue", "--duration", "60s",
                             "--itch-port", str(itch_port), "--log-dir", logs,
                             "--session", SESSION], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def torn_log(tmp_path) -> tuple[str, int]:
    """A session whose MM01 log ends in half a record, as after a power loss mid-session."""
    logs = str(tmp_path / "logs")
    proc = start_process(logs, 9)
    try:
        ports = json.loads(proc.stdout.readline())
        with SoupClient(ports["host"], ports["ouch_port"]) as c:
            c.login("MM01", "mmaudit")
            c.enter("T1", "B", 100, "ACME", 10_0000)
            c.sequenced(2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    path = Path(logs) / SESSION / "MM01.soup"
    with open(path, "ab") as fh:
        fh.write(b"\x00\x43S" + b"x" * 20)        # a record cut short
    return logs, 23


def test_a_cut_session_log_tail_is_reported_in_the_log_and_the_start_line(tmp_path, caplog):
    logs, cut = torn_log(tmp_path)
    caplog.set_level(logging.WARNING, "mm_core.venue")
    config = load_config().with_venue(itch_port=9, log_dir=logs, session=SESSION)
    with Venue(config, background_flow=False) as venue:
        assert venue.log_tail_cut == {"MM01": cut}
    assert any("MM01" in r.getMessage() and f"{cut} bytes" in r.getMessage()
               for r in caplog.records)
    # the cut is gone now: nothing to report (the session ended, so read the log, not restart)
    reread = SessionLog(Path(logs) / SESSION / "MM01.soup", readonly=True)
    assert reread.discarded_bytes == 0
    reread.close()


def test_the_venue_process_prints_the_cut_tail(tmp_path):
    logs, cut = torn_log(tmp_path)
    proc = start_process(logs, 9)
    try:
        assert json.loads(proc.stdout.readline())["log_tail_cut"] == {"MM01": cut}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert f"{cut} bytes" in proc.stderr.read()
