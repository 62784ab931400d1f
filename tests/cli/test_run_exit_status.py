"""`mmaudit run` exits non-zero, with a documented code the summary names, when a session that ran
did not end cleanly: the venue lost mid-session (3), orders still open at the venue after the
close-out (4)."""
from __future__ import annotations

import os
import signal
import threading

import pytest
from click.testing import CliRunner

from cli.run_cmd import EXIT_FAILED, EXIT_ORDERS_OPEN, command as run, exit_status
from mm_core.session import ClockSpec, Session, SessionSettings, VenueSpec, lab_available, load_inputs
from mm_core.venue.server import Venue

LAB = lab_available()


def test_the_help_documents_the_exit_codes():
    text = CliRunner().invoke(run, ["--help"]).output
    assert f"{EXIT_FAILED} it ended failed" in text and f"{EXIT_ORDERS_OPEN} orders still open" in text


def test_a_session_that_lost_its_venue_exits_failed(tmp_path):
    def kill_venue(session: Session) -> None:
        pid = session.venue["pid"]
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()

    settings = SessionSettings(str(tmp_path / "journal"), 20.0, VenueSpec("process"), ClockSpec("uds"),
                               venue_log_dir=str(tmp_path))
    summary = Session(settings, load_inputs(), on_started=kill_venue).run()
    assert summary.runner.venue_lost and summary.seconds < 15
    code, text = exit_status(summary)
    assert code == EXIT_FAILED and text.startswith(f"FAILED (exit {EXIT_FAILED}): venue lost")


@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_orders_left_open_by_the_venue_exit_with_their_own_code(tmp_path, monkeypatch):
    on_ouch = Venue._on_ouch
    monkeypatch.setattr(Venue, "_on_ouch", lambda self, conn, payload: None if payload[:1] == b"X"
                        else on_ouch(self, conn, payload))          # a venue deaf to cancels
    result = CliRunner().invoke(run, ["--duration", "3s", "--close-out", "0.3s", "--journal",
                                      str(tmp_path / "journal")], catch_exceptions=False)
    assert result.exit_code == EXIT_ORDERS_OPEN, result.output
    assert "STILL OPEN after" in result.output
    assert f"FAILED (exit {EXIT_ORDERS_OPEN}): " in result.output and "orders still open at the venue" in result.output
