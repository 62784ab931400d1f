"""The interactive pmc session's failure paths (the happy path runs against ptp4l in netns tests)."""
import time

import pytest

from audit.errors import ToolMissing
from audit.pmc import CORE_DATASETS, PmcSession


def test_no_ptp4l_gives_an_empty_snapshot_within_the_timeout(tmp_path):
    session = PmcSession(str(tmp_path / "nobody"), timeout_s=0.3)
    try:
        session.query()                      # first call also probes with a one-shot pmc
        start = time.monotonic()
        snap = session.query()
        assert time.monotonic() - start < 2.0
        assert not snap.answered and set(snap.missing) == set(CORE_DATASETS)
    finally:
        session.close()


def test_session_restarts_pmc_after_it_died(tmp_path):
    session = PmcSession(str(tmp_path / "nobody"), timeout_s=0.2)
    try:
        session.query()
        first = session._proc.pid
        session._proc.kill()
        session._proc.wait(timeout=5)
        assert not session.query().answered
        assert session._proc.pid != first and session._proc.poll() is None
    finally:
        session.close()
    assert session._proc is None


def test_missing_pmc_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing):
        PmcSession(str(tmp_path / "x")).query()
