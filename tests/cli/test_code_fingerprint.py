"""The code fingerprint through the real CLI: `mmaudit run` names its code in SESSION_START,
`mmaudit journal info` and `dump` show it (unknown for a journal of layout 1), and `mmaudit
recover` refuses a journal of other code with both fingerprints, writing nothing, unless given
--accept-code-change, when it recovers and the journal records the change."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cli.main import cli
from mm_core import buildid
from recovery.codecheck import RECON_CODE_CHANGE
from tests.recovery.codes import OTHER, files_digest, layout_1_session, recon_docs
from tests.recovery.conftest import crashed_session  # noqa: F401  (a fixture)
from tests.recovery.journaling import session_events
from tests.recovery.test_cli import session_files

THIS = buildid.fingerprint()


def mmaudit(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def run_journal(tmp_path_factory):
    """A journal `mmaudit run` wrote (no clock lab: it listens, never trades; quick)."""
    journal = str(tmp_path_factory.mktemp("run") / "journal")
    result = mmaudit("run", "--duration", "2s", "--journal", journal, "--no-ptp-lab")
    assert result.exit_code == 3, result.output       # never compliant, never quoted: a failed session
    return journal


def test_a_session_names_its_code_and_journal_info_shows_it(run_journal):
    text = mmaudit("journal", "info", run_journal)
    assert text.exit_code == 0, text.output
    assert f"code      this code's fingerprint is {THIS}" in text.output
    tag = re.search(rf"session   1 at seq 1: code \S+ fingerprint {THIS} \(this code\), token tag ([0-9A-Z]{{5}})",
                    text.output)
    assert tag, text.output
    doc = json.loads(mmaudit("journal", "info", "--json", run_journal).output)
    assert doc["running_code"] == THIS
    assert [(s["seq"], s["session_id"], s["code_fingerprint"], s["token_tag"])
            for s in doc["sessions"]] == [(1, 1, THIS, tag.group(1))]
    dump = mmaudit("journal", "dump", run_journal, "--type", "session-start")
    assert dump.exit_code == 0 and f"code_fingerprint={THIS}" in dump.output


def test_recover_on_the_same_code_replays_without_an_override(run_journal, tmp_path):
    result = mmaudit("recover", "--journal", run_journal, "--dry-run", "--json")
    assert result.exit_code == 1, result.output            # no venue: not reconciled, but recovered
    doc = json.loads(result.stdout)
    assert doc["replay"]["divergences"] == 0 and doc["code"]["journal"] == []


def test_recover_on_other_code_is_refused_then_accepted_and_journaled(run_journal, tmp_path, monkeypatch):
    import shutil
    journal = str(tmp_path / "copy")
    shutil.copytree(run_journal, journal)
    monkeypatch.setattr(buildid, "fingerprint", lambda: OTHER.hex())        # the code changed since
    before = files_digest(journal)
    refused = mmaudit("recover", "--journal", journal)
    assert refused.exit_code == 1
    assert "written by other code" in refused.output
    assert THIS[:16] in refused.output and OTHER.hex()[:16] in refused.output
    assert files_digest(journal) == before
    assert "(other code)" in mmaudit("journal", "info", journal).output
    accepted = mmaudit("recover", "--journal", journal, "--accept-code-change")
    assert accepted.exit_code == 1, accepted.output        # no venue given: HALTED, as always
    assert f"CODE CHANGE (accepted): this code {OTHER.hex()[:16]}" in accepted.stdout
    assert f"session 1 (seq 1) {THIS[:16]}" in accepted.stdout
    assert "[code] recovering on other code than the journal's (accepted)" in accepted.stderr
    change = [d for d in recon_docs(journal) if d["kind"] == RECON_CODE_CHANGE]
    assert change == [{"kind": RECON_CODE_CHANGE, "running": OTHER.hex(), "accepted": True,
                       "journal": [{"seq": 1, "session_id": 1, "fingerprint": THIS}], "unsent_orders": []}]


def test_accepted_other_code_reconciles_with_the_venue(crashed_session, tmp_path, monkeypatch):  # noqa: F811
    venue, journal, (host, port) = crashed_session
    args = ["recover", "--journal", journal, "--venue", f"{host}:{port}", *session_files(tmp_path)]
    monkeypatch.setattr(buildid, "fingerprint", lambda: OTHER.hex())
    before = files_digest(journal)
    assert mmaudit(*args).exit_code == 1 and files_digest(journal) == before
    result = mmaudit(*args, "--accept-code-change", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["reconciled"] and doc["code"]["journal"][0]["fingerprint"] == THIS
    assert [d["kind"] for d in recon_docs(journal)][0] == RECON_CODE_CHANGE
    assert venue.live_orders("MM01") == []


def test_a_journal_of_layout_1_shows_unknown_code(tmp_path, monkeypatch):
    journal = str(tmp_path / "old")
    layout_1_session(journal, session_events(3, 30), monkeypatch).journal.close()
    info = mmaudit("journal", "info", journal)
    assert "session   1 at seq 1: code 0.1.0 fingerprint unknown (other code)" in info.output
    dump = mmaudit("journal", "dump", journal, "--type", "session-start")
    assert dump.exit_code == 0
    assert "len=90" in dump.output and "profile=eu-hft code_fingerprint=unknown" in dump.output
    refused = mmaudit("recover", "--journal", journal)
    assert refused.exit_code == 1 and "code unknown" in refused.output


def test_a_journal_without_session_start_says_so(tmp_path):
    from journal import Journal, RecordType
    from journal.catalogue import pack
    journal = str(tmp_path / "bare")
    with Journal(journal) as j:
        j.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=0, now_ns=1))
    assert "session   none (no SESSION_START" in mmaudit("journal", "info", journal).output


def test_the_crash_drill_has_no_code_change_override():
    """A drill starts a new session of this code on a new or empty journal (it refuses one that
    holds records), so no journal it recovers was written by other code: no override to offer."""
    assert "--accept-code-change" not in mmaudit("drill", "crash", "--help").output
    assert mmaudit("drill", "crash", "--accept-code-change").exit_code == 2
    import subprocess
    import sys
    helped = subprocess.run([sys.executable, "-m", "recovery.drills._engine_proc", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--accept-code-change" not in helped.stdout
