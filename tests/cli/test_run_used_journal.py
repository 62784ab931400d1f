"""`mmaudit run` on a journal that already holds a session is refused (exit 2) before anything is
written, pointing to `mmaudit run --resume`; a replay meeting a second session refuses it
(SecondSession) rather than feed two sessions through one engine."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli
from journal import Journal, Reader
from journal.catalogue import RecordType, TsSource, pack
from recovery.errors import SecondSession
from recovery.replay import replay_journal
from tests.recovery.codes import files_digest
from tests.recovery.journaling import RunnerLike, fresh_engine, session_events, write_session


def test_a_second_run_into_one_journal_is_refused_before_writing(tmp_path):
    journal = str(tmp_path / "journal")
    first = CliRunner().invoke(cli, ["run", "--duration", "1s", "--journal", journal, "--no-ptp-lab",
                                     "--control", "none"])
    assert first.exit_code == 3, first.output       # no clock here on purpose: never quoted, a failed session
    before = files_digest(journal)
    with Reader(journal) as r:
        records = len(r)
    second = CliRunner().invoke(cli, ["run", "--duration", "1s", "--journal", journal, "--no-ptp-lab",
                                      "--control", "none"])
    assert second.exit_code == 2, second.output
    assert "already holds session 1" in second.output and "mmaudit run --resume" in second.output
    assert files_digest(journal) == before
    with Reader(journal) as r:
        assert len(r) == records


def test_replay_refuses_a_second_session_it_cannot_reproduce(tmp_path):
    path = str(tmp_path / "j")
    events = session_events(7, 120)
    write_session(path, events[:60]).journal.close()
    assert replay_journal(path, fresh_engine()).deterministic          # one session: replays
    with Journal(path) as j:        # a second session on a fresh engine, as a second run once wrote
        shell = RunnerLike(fresh_engine(), j)
        j.append(RecordType.SESSION_START, pack(RecordType.SESSION_START, session_id=2),
                 ts_ns=events[60].now_ns, ts_source=int(TsSource.USER))
        for event in events[60:]:
            shell.feed(event)
    with pytest.raises(SecondSession, match="starts session 2"):
        replay_journal(path, fresh_engine())
