"""`mmaudit run --duration` and `mmaudit demo --duration` refuse infinity (a 400-digit number) and
anything over a session's maximum as a usage error (exit 2) before anything is made: no journal
directory, no lab, no venue; the venue and any path to it never see such a duration."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.demo_cmd import command as demo
from cli.run_cmd import command as run


@pytest.mark.parametrize("duration", ["9" * 400, "9" * 400 + "s", "24h", "23.5h", "82801s"])
@pytest.mark.parametrize("venue", [["--venue", "127.0.0.1:9", "--rerequest-port", "9"], ["--no-ptp-lab"]])
def test_run_refuses_an_endless_or_too_long_duration_before_anything_is_made(tmp_path, duration, venue):
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--duration", duration, "--journal", str(journal), *venue])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --duration" in result.output
    assert "longer than the most a run may last, 82800 s (23 h)" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert not journal.exists()


def test_demo_refuses_an_endless_duration_before_anything_is_made(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(demo, ["--duration", "9" * 400, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "longer than the most a run may last" in result.output
    assert not out.exists()
