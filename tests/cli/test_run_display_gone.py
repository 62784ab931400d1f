"""A session whose start-up display fails still ends its journal with SESSION_STOP, and a reader
that went away (`mmaudit run | head -1`) stops neither the session nor its exit status."""
from __future__ import annotations

import subprocess
import sys

import pytest

from journal import Reader
from journal.catalogue import RecordType, unpack
from mm_core.session import Session
from mm_core.sessionconfig import ClockSpec, SessionSettings, load_inputs
from tests.cli.runproc import ROOT


def last_records(path) -> list:
    with Reader(str(path)) as reader:
        return list(reader.records())


def test_a_failing_on_started_still_closes_the_session_in_the_journal(tmp_path):
    def broken(session):
        raise BrokenPipeError(32, "Broken pipe")

    settings = SessionSettings(str(tmp_path / "journal"), 5.0, clock=ClockSpec("uds"), control_path=None)
    with pytest.raises(BrokenPipeError):
        Session(settings, load_inputs(), on_started=broken).run()
    recs = last_records(tmp_path / "journal")
    assert recs[0].rtype == RecordType.SESSION_START and recs[-1].rtype == RecordType.SESSION_STOP
    assert unpack(RecordType.SESSION_STOP, recs[-1].payload)["reason"] == b"error"


def test_a_reader_gone_after_the_first_line_stops_nothing(tmp_path):
    journal = tmp_path / "journal"
    run = f"{sys.executable} -c 'from cli.run_cmd import command; command()'"
    script = (f"{run} --duration 2s --journal {journal} --no-ptp-lab --control none | head -1; "
              "exit ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    # exit 3: no clock here, so it never quoted (the session failed its purpose); the stop was clean
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.count("\n") == 1
    recs = last_records(journal)
    assert recs[-1].rtype == RecordType.SESSION_STOP
    assert unpack(RecordType.SESSION_STOP, recs[-1].payload)["reason"] == b"duration"
