"""A drill that aborts (DrillError) still journals its DRILL_RESULT: the partial report, passed
false, the error named; the error itself still reaches the caller."""
from __future__ import annotations

import pytest

from recovery.drills import crash
from recovery.drills.common import DrillError
from recovery.drills.crash import CrashSettings, run_crash_drill
from tests.recovery.test_drills import drill_results


def test_an_aborted_crash_drill_journals_its_partial_result(tmp_path, monkeypatch):
    # the engine process is given 20 ms to run (seconds = 2 * WAIT_S): it ends by itself before
    # its first kill (or before it quotes), which aborts the drill in its warm-up
    monkeypatch.setattr(crash, "WAIT_S", 0.01)
    journal = str(tmp_path / "journal")
    with pytest.raises(DrillError) as raised:
        run_crash_drill(CrashSettings(runs=2, seed=1, journal_dir=journal))
    results = drill_results(journal)
    assert len(results) == 1
    result = results[0]
    assert result["drill"] == "crash" and result["passed"] is False and result["runs"] == []
    assert result["error"] == {"type": "DrillError", "message": str(raised.value)}
    assert result["seconds"] > 0
