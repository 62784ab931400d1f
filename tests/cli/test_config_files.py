"""Bad config files given to `mmaudit run`, `recover`, `venue run` and `demo` are refused at load
time with one line naming the file and field, before anything is journaled or traded; failed
commands leave no directory behind that blocks the next attempt."""
from __future__ import annotations

import os
import pathlib
import resource
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from cli.demo_cmd import command as demo
from cli.recover_cmd import command as recover
from cli.run_cmd import command as run
from cli.venue_cmd import run_command as venue_run

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOT_UTF8 = b"\xff\xfe[engine]\n"

# (file name, TOML text, what the error must say): one per defect family
BAD_ENGINE = [
    ("algo.toml", "[engine]\nalgo_id = -1\n", "engine.algo_id: must be within 0..4294967295"),
    ("algobig.toml", "[engine]\nalgo_id = 99999999999999999999\n", "engine.algo_id"),
    ("trader.toml", "[engine]\ntrader_id = 4294967296\n", "engine.trader_id"),
    ("base.toml", '[fair_value]\nbase = "xyz"\n', "fair_value.base: must be one of"),
    ("nimb.toml", "[fair_value]\nn_imb = 0\n", "fair_value.n_imb"),
    ("calib.toml", "[fair_value]\ncalibrate_every = -1\n", "fair_value.calibrate_every"),
    ("volhalflife.toml", "[engine]\nvol_halflife_ns = 0\n", "engine.vol_halflife_ns"),
    ("volalpha.toml", "[engine]\nvol_alpha = 0.05\n", "engine.vol_alpha: replaced by vol_halflife_ns"),
    ("horizons.toml", "[engine]\nmarkout_horizons_ns = [-1]\n", "engine.markout_horizons_ns"),
    ("firm.toml", '[engine]\nfirm = "TOOLONGFIRM"\n', "engine.firm: must be 1-4 printable ASCII"),
    ("scalar.toml", "engine = 5\n", "engine: must be a table"),
    ("metrics.toml", "[engine]\nmetrics_interval_ns = 0\n", "engine.metrics_interval_ns"),
    ("depth.toml", "[engine]\nmin_depth_ticks = -5.0\n", "engine.min_depth_ticks"),
]


def _one_error_line(result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and expected in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("name, text, expected", BAD_ENGINE)
def test_run_refuses_a_bad_engine_config_before_journaling(tmp_path, name, text, expected):
    config = tmp_path / name
    config.write_text(text)
    journal = tmp_path / "j"
    result = CliRunner().invoke(run, ["--config", str(config), "--journal", str(journal), "--no-ptp-lab",
                                      "--duration", "2s"], catch_exceptions=False)
    _one_error_line(result, expected)
    assert str(config) in result.output
    assert not journal.exists()          # refused before the session opened a journal


@pytest.mark.parametrize("name, text, expected", BAD_ENGINE)
def test_recover_refuses_a_bad_engine_config(tmp_path, name, text, expected):
    config = tmp_path / name
    config.write_text(text)
    result = CliRunner().invoke(recover, ["--journal", str(tmp_path / "j"), "--config", str(config)],
                                catch_exceptions=False)
    _one_error_line(result, expected)
    assert f"engine config {config}: " in result.output


@pytest.mark.parametrize("option, what", [("--config", "engine config"), ("--symbols", "symbols"),
                                          ("--limits", "limits")])
def test_recover_names_a_file_that_is_not_utf8(tmp_path, option, what):
    path = tmp_path / "binary.toml"
    path.write_bytes(NOT_UTF8)
    result = CliRunner().invoke(recover, ["--journal", str(tmp_path / "j"), option, str(path)],
                                catch_exceptions=False)
    _one_error_line(result, f"the {what} file {path} is not UTF-8 text")


@pytest.mark.parametrize("text", ["symbols = 5\n", "symbols = [1, 2]\n", '[symbols]\nname = "A"\n'])
def test_recover_refuses_symbols_that_are_not_an_array_of_tables(tmp_path, text):
    path = tmp_path / "symbols.toml"
    path.write_text(text)
    result = CliRunner().invoke(recover, ["--journal", str(tmp_path / "j"), "--symbols", str(path)],
                                catch_exceptions=False)
    _one_error_line(result, "symbols: must be an array of tables, one [[symbols]] per entry")


def test_venue_run_names_a_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "venue.toml"
    path.write_bytes(NOT_UTF8)
    result = CliRunner().invoke(venue_run, ["--config", str(path), "--duration", "1s"], catch_exceptions=False)
    assert result.exit_code != 0 and f"{path}: not UTF-8 text" in result.output, result.output
    assert "Traceback" not in result.output


def test_demo_refuses_bad_reference_data_before_trading(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("firm.toml", "instruments.toml", "parties.toml", "mics.toml"):
        (ref / name).write_text((ROOT / "reports" / "refdata" / name).read_text())
    (ref / "firm.toml").write_bytes(NOT_UTF8)
    out = tmp_path / "out"
    started = time.monotonic()
    result = CliRunner().invoke(demo, ["--duration", "20s", "--refdata", str(ref), "--out", str(out)],
                                catch_exceptions=False)
    _one_error_line(result, f"{ref / 'firm.toml'}: not UTF-8 text")
    assert not out.exists()                       # nothing traded, nothing written
    assert time.monotonic() - started < 15        # well before the 20 s of trading


def _mmaudit(args: list[str], cwd: pathlib.Path, env: dict | None = None, preexec=None):
    return subprocess.run([sys.executable, "-c", "from cli.main import cli; cli()", *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, capture_output=True,
                          text=True, timeout=120, preexec_fn=preexec)


def test_run_with_a_bad_duration_leaves_no_temporary_journal_directory(tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    result = _mmaudit(["run", "--duration", "abc", "--no-ptp-lab"], tmp_path, env={"TMPDIR": str(temp)})
    assert result.returncode == 2 and "not a positive duration" in result.stderr, result.stderr
    assert list(temp.iterdir()) == []


def _small_files() -> None:
    """Files of at most 1 MiB: the journal's segment preallocation fails as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.parametrize("exists", [False, True])
def test_journal_demo_that_fails_for_space_can_be_run_again(tmp_path, exists):
    target = tmp_path / "jd"
    if exists:
        target.mkdir()
    failed = _mmaudit(["journal", "demo", "--dir", str(target), "--records", "1000"], tmp_path,
                      preexec=_small_files)
    # the failed creation removed what it made (the journal's writer): the directory is as it was
    assert failed.returncode == 1 and "File too large" in failed.stderr, failed.stderr
    assert (list(target.iterdir()) == []) if exists else not target.exists()
    again = _mmaudit(["journal", "demo", "--dir", str(target), "--records", "1000"], tmp_path)
    assert again.returncode == 0 and "verify: OK (1000 records" in again.stdout, again.stderr
