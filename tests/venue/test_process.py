"""The venue as a process: `python3 -m mm_core.venue` and `mmaudit venue run`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from click.testing import CliRunner

from cli.venue_cmd import command
from mm_core.protocol import ouch
from mm_core.venue.client import MoldReceiver, SoupClient


def start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen([sys.executable, "-m", "mm_core.venue", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_module_prints_ports_serves_and_stops_by_itself(tmp_path):
    with MoldReceiver() as rx:
        proc = start("--duration", "3s", "--seed", "5", "--itch-port", str(rx.port),
                     "--log-dir", str(tmp_path), "--session", "PROC000001")
        try:
            ready = json.loads(proc.stdout.readline())
            assert ready["session"] == "PROC000001" and ready["seed"] == 5
            with SoupClient(ready["host"], ready["ouch_port"]) as c:
                c.login("MM01", "mmaudit")
                c.enter("P1", "B", 100, "ACME", 50_0000)
                assert isinstance(c.sequenced(2)[1].message, ouch.Accepted)
            rx.run(None, lambda r: r.ended, 10.0)
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            proc.wait(5)
    assert (tmp_path / "PROC000001" / "MM01.soup").stat().st_size > 0
    assert "venue stopped: duration" in proc.stderr.read()


def test_module_stops_cleanly_on_sigterm_and_refuses_bad_config(tmp_path):
    proc = start("--duration", "60s", "--log-dir", str(tmp_path), "--itch-port", "9")
    try:
        json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait(5)
    assert "venue stopped: signal" in proc.stderr.read()
    bad = tmp_path / "bad.toml"
    bad.write_text('[venue]\nhost = "0.0.0.0"\n')
    proc = start("--config", str(bad))
    assert proc.wait(10) == 2 and "venue.host" in proc.stderr.read()


def test_cli_command_runs_and_reports_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(command, ["run", "--help"])
    assert result.exit_code == 0 and "--duration" in result.output and "Example" in result.output
    result = runner.invoke(command, ["run", "--duration", "0.3s", "--log-dir", str(tmp_path),
                                     "--itch-port", "9", "--session", "CLI0000001"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["session"] == "CLI0000001"
    result = runner.invoke(command, ["run", "--duration", "soon"])
    assert result.exit_code != 0 and "duration" in result.output
