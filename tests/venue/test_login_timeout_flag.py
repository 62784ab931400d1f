"""`--login-timeout SECONDS` of `python3 -m mm_core.venue` and `mmaudit venue run` overrides the
config's [venue] login_timeout: a connection that has not logged in is closed after the flag's
time, not the config's; a value that is not a number of seconds > 0 is refused naming the flag."""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from cli.venue_cmd import command

MODULE = ["-m", "mm_core.venue"]
CLI = ["-c", "from cli.venue_cmd import run_command; run_command()"]


def start(entry: list[str], *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen([sys.executable, *entry, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@contextlib.contextmanager
def serving(entry: list[str], *args: str):
    """(the ready line, the process) of a venue process, stopped by SIGTERM on exit (killed if
    it does not stop); the caller reads its stderr after."""
    proc = start(entry, *args)
    try:
        readable, _, _ = select.select([proc.stdout], [], [], 30.0)
        assert readable, "the venue printed no ready line in time"
        yield json.loads(proc.stdout.readline()), proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait(5)


def closed_after(host: str, port: int, limit: float) -> float:
    """Seconds until the venue closes a connection that sends nothing (at most `limit`)."""
    with socket.create_connection((host, port), timeout=limit) as sock:
        start = time.monotonic()
        try:
            assert sock.recv(4096) == b""
        except ConnectionResetError:
            pass
        return time.monotonic() - start


@pytest.mark.parametrize("entry", [MODULE, CLI], ids=["module", "cli"])
def test_the_flag_s_login_timeout_is_in_force(tmp_path, entry):
    # the shipped config says 5 s; the heartbeat timeout (15 s) cannot be what closes it
    with serving(entry, "--duration", "60s", "--itch-port", "9", "--log-dir", str(tmp_path),
                 "--login-timeout", "0.6") as (ready, proc):
        waited = closed_after(ready["host"], ready["ouch_port"], 4.0)
        assert 0.6 <= waited < 2.0
    assert "no login within 0.6 s of connecting" in proc.stderr.read()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon", ""])
def test_a_bad_login_timeout_is_refused_by_the_module(tmp_path, value):
    proc = start(MODULE, "--log-dir", str(tmp_path), "--itch-port", "9", "--login-timeout", value)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()                                       # never left running
    assert proc.returncode == 2
    assert "argument --login-timeout: must be a number of seconds > 0" in err, err
    assert list(tmp_path.iterdir()) == []                 # refused before anything started


@pytest.mark.parametrize("value", ["0", "inf", "1e300", "soon"])
def test_a_bad_heartbeat_timeout_is_refused_by_the_module_s_parser(tmp_path, value):
    proc = start(MODULE, "--log-dir", str(tmp_path), "--itch-port", "9", "--heartbeat-timeout", value)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 2
    assert "argument --heartbeat-timeout: must be a number of seconds > 0 and <= 86400" in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-0.5", "nan", "soon"])
def test_a_bad_login_timeout_is_refused_by_the_cli(tmp_path, value):
    result = CliRunner().invoke(command, ["run", "--log-dir", str(tmp_path), "--itch-port", "9",
                                          "--login-timeout", value])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--login-timeout': must be a number of seconds > 0" in result.output
    assert list(tmp_path.iterdir()) == []
    help_text = CliRunner().invoke(command, ["run", "--help"]).output
    assert "--login-timeout SECONDS" in help_text
