"""The CLI's edges with bad input, each a real invocation: relative paths mean the caller's working
directory in the child processes too, integer options are bounded (a usage error, never an
OverflowError), unwritable or impossible output paths are one line naming the path, and the
messages say what is wrong (a directory without journal.meta, a tailer's damaged position file,
a tailer name, a venue run longer than ITCH timestamps cover)."""
from __future__ import annotations

import pathlib
import types

import pytest
from click.testing import CliRunner

from cli.main import cli
from mm_core.venue.config import DEFAULT_PATH as VENUE_TOML
from recovery.drills.common import engine_args
from tests.journal.jhelpers import write_journal


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, exit_code: int, *needles: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


# -- 6: relative paths in child processes ------------------------------------------------------

def test_stress_with_a_relative_workdir_runs_in_the_callers_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sw").mkdir()
    result = run("journal", "stress", "--kills", 2, "--power-cuts", 0, "--workdir", "sw")
    assert result.exit_code == 0, result.output
    assert "0 failures" in result.output and "does not exist" not in result.output


def test_a_drill_engine_gets_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    venue = types.SimpleNamespace(ports=types.SimpleNamespace(ouch=1, rerequest=2), itch_port=3)
    args = engine_args("dj", venue, recover_first=False, segment_size=65536, seconds=1.0,
                       snapshots="snaps", stop_file="stop")
    assert args[args.index("--journal") + 1] == str(tmp_path / "dj")
    assert args[args.index("--snapshots") + 1] == str(tmp_path / "snaps")
    assert args[args.index("--stop-file") + 1] == str(tmp_path / "stop")


# -- 10: integer options are bounded -----------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("journal", "dump", "J", "--from-seq", "99999999999999999999999"),
    ("journal", "dump", "J", "--to-seq", "0"),
    ("journal", "tail", "J", "--from-seq", str(2**64), "--count", "1"),
    ("report", "orders", "--journal", "J", "--out", "O", "--last-seq", "9" * 30),
    ("report", "orders", "--journal", "J", "--out", "O", "--first-seq", "-5"),
    ("report", "controls", "--journal", "J", "--out", "O", "--session", str(2**64)),
])
def test_out_of_range_integers_are_usage_errors(tmp_path, args):
    write_journal(tmp_path / "j", 5)
    args = [str(tmp_path / "j") if a == "J" else str(tmp_path / "o") if a == "O" else a for a in args]
    result = run(*args)
    one_line_error(result, 2, "is not in the range")


# -- 11: output paths that cannot be made ------------------------------------------------------

def test_report_output_that_cannot_be_made(tmp_path):
    write_journal(tmp_path / "j", 5)
    (tmp_path / "afile").write_text("x")
    result = run("report", "controls", "--journal", tmp_path / "j", "--out", "/proc/mmaudit-x")
    one_line_error(result, 1, "cannot make the output directory /proc/mmaudit-x")
    result = run("report", "controls", "--journal", tmp_path / "j", "--out", tmp_path / "afile" / "sub")
    one_line_error(result, 1, f"cannot make the output directory {tmp_path / 'afile' / 'sub'}: Not a directory")


def test_demo_stress_and_drills_refuse_impossible_directories_at_once(tmp_path):
    one_line_error(run("demo", "--out", "/proc/mmaudit-xx"), 1, "cannot make the demo directory /proc/mmaudit-xx")
    one_line_error(run("journal", "stress", "--kills", 1, "--power-cuts", 0, "--workdir", "/proc/mmaudit-xx"), 1,
                   "cannot make a scratch directory in /proc/mmaudit-xx")
    for drill in (("risk",), ("crash", "--runs", 1), ("venue-disconnect",), ("feed-gap",)):
        result = run("drill", *drill, "--journal", "/proc/mmaudit-xx")
        one_line_error(result, 1, "cannot make the journal directory /proc/mmaudit-xx")


def test_operator_ids_are_ascii_digits(tmp_path):
    result = run("operator", "kill", "--scope", "algo", "--id", "¹²", "--journal", tmp_path,
                 "--actor", "alice", "--reason", "test")
    one_line_error(result, 2, "algo ids are numbers, not '¹²'")


# -- 12: messages that say what is wrong -------------------------------------------------------

def test_a_directory_without_a_journal_is_named_as_such(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("journal", "info", tmp_path / "empty")
    one_line_error(result, 1, "the directory holds no journal.meta")
    assert "does not exist" not in result.output


@pytest.mark.parametrize("damage", ["empty", "garbage", "directory"])
def test_a_damaged_tailer_position_names_its_file(tmp_path, damage):
    d = tmp_path / "j"
    write_journal(d, 5)
    first = run("journal", "tail", d, "--name", "t1", "--count", 1)
    assert first.exit_code == 0, first.output
    pos = d / "tailers" / "t1.pos"
    assert pos.is_file()
    if damage == "directory":
        pos.unlink()
        pos.mkdir()
    else:
        pos.write_bytes(b"" if damage == "empty" else b"\x00garbage\n")
    result = run("journal", "tail", d, "--name", "t1", "--count", 1)
    one_line_error(result, 1, f"tailer t1's position file {pos}", "the journal itself is not affected")
    assert "journal is corrupt" not in result.output


@pytest.mark.parametrize("name", ["a/b", "", "../../x", ".hidden"])
def test_a_bad_tailer_name_says_what_a_name_is(tmp_path, name):
    d = tmp_path / "j"
    write_journal(d, 5)
    result = run("journal", "tail", d, "--name", name, "--count", 1)
    one_line_error(result, 1, f"tailer name {name!r} is not 1 to 99 letters, digits")


def test_a_venue_run_longer_than_a_day_is_refused_before_it_starts(tmp_path):
    result = run("venue", "run", "--duration", "99999999999999999999999999h", "--log-dir", tmp_path / "v")
    one_line_error(result, 1, "is longer than the most a run may last, 86400 s (24 h)")
    assert not (tmp_path / "v").exists()


def test_a_venue_run_longer_than_a_day_is_a_config_error(tmp_path):
    # a config file's duration has --duration's bound of a day: refused before anything starts
    config = tmp_path / "venue.toml"
    text = pathlib.Path(VENUE_TOML).read_text()
    config.write_text(text.replace("duration = 60.0", "duration = 1e12", 1))
    result = run("venue", "run", "--config", config, "--log-dir", tmp_path / "v")
    assert result.exit_code != 0 and "venue.duration: must be > 0 and <= 86400" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "v").exists()
