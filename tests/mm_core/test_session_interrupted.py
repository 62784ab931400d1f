"""Ctrl-C during a session's start-up ends it before its first record: no session journaled, no
trading, an error that says it was interrupted (not the clock's fault)."""
import threading

import pytest

from mm_core.session import Session
from mm_core.sessionconfig import ClockSpec, SessionInterrupted, SessionSettings, load_inputs


def test_a_stop_during_start_up_journals_no_session(tmp_path):
    stop = threading.Event()
    stop.set()                       # Ctrl-C while the clock warms up
    settings = SessionSettings(str(tmp_path / "journal"), 5.0, clock=ClockSpec("uds", warmup_s=5.0))
    with pytest.raises(SessionInterrupted, match="interrupted before trading"):
        Session(settings, load_inputs(), stop=stop).run()
    assert not (tmp_path / "journal").exists()      # stopped before the journal was opened
