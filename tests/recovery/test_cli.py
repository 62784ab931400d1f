"""`mmaudit recover` through click: help text, a full recovery against the venue with its summary,
a dry run, an unreconciled outcome (exit 1) and typed errors as clean messages."""
from __future__ import annotations

import json
import pathlib

from click.testing import CliRunner

from cli.recover_cmd import command
from journal import Reader, RecordType
from mm_core.engine import Engine
from recovery.replay import replay_journal
from tests.mm_core.wire import LIMITS_TEXT, SYMBOLS, gateway
from tests.recovery.journaling import session_events, write_session
from tests.recovery.session import CONFIG


def session_files(tmp_path) -> list[str]:
    """The parameter files of the test sessions (tests.recovery.session)."""
    config = tmp_path / "engine.toml"
    config.write_text('[engine]\nquoted = ["ACME", "BOLT"]\n')
    limits = tmp_path / "limits.toml"
    limits.write_text(LIMITS_TEXT)
    return ["--config", str(config), "--limits", str(limits)]


def recon_count(path: str) -> int:
    with Reader(path) as reader:
        return sum(1 for _ in reader.records(rtypes=[RecordType.RECON]))


def test_help_has_a_summary_and_an_example():
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "Recover a crashed session" in result.output and "Example:" in result.output


def test_recover_against_the_venue_prints_progress_and_a_summary(crashed_session, tmp_path):
    venue, journal, (host, port) = crashed_session
    args = ["--journal", journal, "--venue", f"{host}:{port}", *session_files(tmp_path)]
    dry = CliRunner().invoke(command, args + ["--dry-run", "--json"])
    assert dry.exit_code in (0, 1), dry.output
    doc = json.loads(dry.stdout)
    assert doc["dry_run"] and doc["replay"]["divergences"] == 0 and doc["recon_records"] == 0
    assert recon_count(journal) == 0
    snaps = str(tmp_path / "snaps")      # a standby replayer's snapshots of this journal
    assert replay_journal(journal, Engine(CONFIG, SYMBOLS, gateway()), snapshots=snaps,
                          snapshot_every=10).snapshots_written >= 1
    # one that claims a later sequence but is another journal's: tried first, skipped, and said so
    (pathlib.Path(snaps) / "engine-other.snap").write_bytes(
        json.dumps({"format": 2, "seq": 10**12, "journal_id": "another"}).encode() + b"\n")
    real = CliRunner().invoke(command, args + ["--snapshots", snaps])
    assert real.exit_code == 0, real.output
    assert "[replay] snapshot skipped: engine-other.snap: another journal or format" in real.stderr
    assert "resumed from snapshot" in real.stderr
    assert real.stdout.startswith("RECONCILED") and "reconciliation round 1" in real.stdout
    assert "[replay]" in real.stderr and "[outcome] reconciled" in real.stderr
    assert recon_count(journal) >= 3
    assert venue.live_orders("MM01") == []


def test_without_a_venue_it_reports_why_and_exits_1(tmp_path):
    path = str(tmp_path / "j")
    write_session(path, session_events(3, 60)).journal.close()
    result = CliRunner().invoke(command, ["--journal", path, *session_files(tmp_path)])
    assert result.exit_code == 1
    assert "NOT RECONCILED" in result.output and "no venue given" in result.output
    assert "trading state HALTED" in result.output
    assert recon_count(path) == 2


def test_bad_input_is_a_clean_error(tmp_path):
    missing = CliRunner().invoke(command, ["--journal", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "Error:" in missing.output and "journal" in missing.output
    bad_venue = CliRunner().invoke(command, ["--journal", str(tmp_path), "--venue", "nowhere"])
    assert bad_venue.exit_code == 2 and "HOST:PORT" in bad_venue.output
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[engine]\nquote_size = 'lots'\n")
    bad = CliRunner().invoke(command, ["--journal", str(tmp_path), "--config", str(bad_config)])
    assert bad.exit_code == 1 and "quote_size" in bad.output


def test_bad_parameter_files_are_refused_before_the_journal_is_opened(tmp_path):
    path = str(tmp_path / "j")
    write_session(path, session_events(3, 60)).journal.close()
    with Reader(path) as reader:
        before = reader.last_seq
    files = dict(zip(session_files(tmp_path)[::2], session_files(tmp_path)[1::2]))
    bad_limits = tmp_path / "bad-limits.toml"
    bad_limits.write_text(LIMITS_TEXT.replace("version", "versio", 1))
    unknown = tmp_path / "unknown-symbol.toml"
    unknown.write_text('[engine]\nquoted = ["NOPE"]\n')
    for args, said in (
            (["--config", files["--config"], "--limits", str(bad_limits)], f"limits {bad_limits}: "),
            (["--config", str(unknown), "--limits", files["--limits"]], f"engine config {unknown}")):
        result = CliRunner().invoke(command, ["--journal", path, *args])
        assert result.exit_code == 1 and said in result.output, result.output
        assert "Traceback" not in result.output and "[journal]" not in result.output
    with Reader(path) as reader:
        assert reader.last_seq == before and recon_count(path) == 0
