"""Recovery runs only on the code that wrote the journal: a journal of this code recovers as
before; one whose SESSION_START names other code, or none (layout 1, or no SESSION_START), is
refused with CodeMismatch before anything is written, unless the change is accepted, which the
journal then records. The standby and snapshots follow the same rule."""
from __future__ import annotations

import json
import threading

import pytest

from journal import Journal, Reader, RecordType
from journal.catalogue import TsSource, pack
from mm_core import buildid
from recovery.codecheck import RECON_CODE_CHANGE, CodeCheck, journal_sessions
from recovery.errors import CodeMismatch, RecoveryError
from recovery.recover import recover
from recovery.replay import replay_journal
from recovery.standby import follow
from tests.recovery.codes import OTHER, files_digest, layout_1_session, other_code_session, recon_docs
from tests.recovery.journaling import fresh_engine, recovery_settings, session_events, write_session


@pytest.fixture(scope="module")
def events():
    return session_events(11, 120)


def test_a_journal_of_this_code_recovers_without_an_override(tmp_path, events):
    path = str(tmp_path / "j")
    write_session(path, events).journal.close()
    with Reader(path) as reader:
        assert [s.fingerprint for s in journal_sessions(reader)] == [buildid.fingerprint()]
    result = recover(recovery_settings(path))
    assert result.replay.deterministic and result.code.differing == []
    assert result.summary()["code"] == {"running": buildid.fingerprint(), "accepted": False, "journal": []}
    assert RECON_CODE_CHANGE not in [d["kind"] for d in recon_docs(path)]


def test_other_code_is_refused_naming_both_fingerprints_and_nothing_is_written(tmp_path, events, monkeypatch):
    path = str(tmp_path / "j")
    other_code_session(path, events, monkeypatch).journal.close()
    before = files_digest(path)
    with pytest.raises(CodeMismatch) as info:
        recover(recovery_settings(path))
    err = info.value
    assert isinstance(err, RecoveryError)
    assert err.journal_fingerprints == [OTHER.hex()] and err.running == buildid.fingerprint()
    assert OTHER.hex()[:16] in str(err) and buildid.fingerprint()[:16] in str(err)
    assert "--accept-code-change" in str(err)
    assert files_digest(path) == before          # not even the writer's open ran
    with pytest.raises(CodeMismatch):             # a dry run is refused as well
        recover(recovery_settings(path, dry_run=True))
    assert files_digest(path) == before


def test_accepted_other_code_recovers_and_the_journal_records_the_change(tmp_path, events, monkeypatch):
    path = str(tmp_path / "j")
    live = other_code_session(path, events, monkeypatch)
    live.journal.close()
    result = recover(recovery_settings(path, accept_code_change=True))
    assert [s.fingerprint for s in result.code.differing] == [OTHER.hex()]
    assert result.engine.state_hash() != "" and result.replay.deterministic
    docs = recon_docs(path)
    assert docs[0]["kind"] == RECON_CODE_CHANGE           # ahead of every other RECON record
    assert docs[0]["running"] == buildid.fingerprint() and docs[0]["accepted"] is True
    assert docs[0]["journal"] == [{"seq": 1, "session_id": 1, "fingerprint": OTHER.hex()}]
    # the record changes nothing a later replay decides: same state, no divergence
    again = replay_journal(path, fresh_engine())
    assert again.deterministic and again.state_hash == result.engine.state_hash()
    assert again.recon_records == len(docs)


def test_an_accepted_code_change_is_remembered_for_this_code_only(tmp_path, events, monkeypatch):
    """Once a recovery on this code accepted the old session (its RECON code-change record says
    so), a later recovery on this code (a second crash) needs no override and journals no second
    code-change record, and the standby writes snapshots again; other code is still refused."""
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    other_code_session(path, events, monkeypatch).journal.close()
    recover(recovery_settings(path, accept_code_change=True))
    accepted = len(recon_docs(path))
    again = recover(recovery_settings(path))                    # no override
    assert again.code.differing == []
    assert [d["kind"] for d in recon_docs(path)].count(RECON_CODE_CHANGE) == 1
    assert len(recon_docs(path)) >= accepted
    standby = follow(path, fresh_engine(), str(snaps), every=10, idle_s=0.5)
    assert standby.code_changes == [] and standby.snapshots_written >= 1
    monkeypatch.setattr(buildid, "fingerprint", lambda: "ab" * 32)       # a third code
    with pytest.raises(CodeMismatch):
        recover(recovery_settings(path))


def test_a_session_start_of_layout_1_reads_as_unknown_and_is_refused(tmp_path, events, monkeypatch):
    path = str(tmp_path / "j")
    layout_1_session(path, events, monkeypatch).journal.close()
    with Reader(path) as reader:
        sessions = journal_sessions(reader)
        assert len(reader.read_fixed(RecordType.SESSION_START)) == 1
    assert [(s.seq, s.session_id, s.fingerprint) for s in sessions] == [(1, 1, "unknown")]
    before = files_digest(path)
    with pytest.raises(CodeMismatch, match="code unknown"):
        recover(recovery_settings(path))
    assert files_digest(path) == before
    result = recover(recovery_settings(path, accept_code_change=True))
    assert [s.fingerprint for s in result.code.differing] == ["unknown"]


def test_records_before_any_session_start_are_of_unknown_code(tmp_path):
    path = str(tmp_path / "j")
    with Journal(path) as j:
        j.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=0, now_ns=10**9), ts_ns=10**9,
                 ts_source=int(TsSource.USER))
    with pytest.raises(CodeMismatch, match=r"session \? \(seq 1\) code unknown"):
        recover(recovery_settings(path))


def test_a_later_session_of_other_code_is_refused_too(tmp_path, events, monkeypatch):
    """A journal this code started and other code went on writing (an upgrade between sessions)."""
    path = str(tmp_path / "j")
    write_session(path, events[:60]).journal.close()
    with Journal(path) as j:
        j.append(RecordType.SESSION_START, pack(RecordType.SESSION_START, session_id=2,
                                                code_fingerprint=OTHER), ts_ns=10**9)
    with pytest.raises(CodeMismatch) as info:
        recover(recovery_settings(path))
    assert [(s.session_id, s.fingerprint) for s in info.value.sessions] == [(2, OTHER.hex())]


def test_the_standby_stops_at_other_code_or_follows_it_without_snapshots(tmp_path, events, monkeypatch):
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    other_code_session(path, events, monkeypatch).journal.close()
    stop = threading.Event()
    with pytest.raises(CodeMismatch):
        follow(path, fresh_engine(), str(snaps), every=10, idle_s=0.5, stop=stop)
    assert not snaps.exists() or not list(snaps.iterdir())
    result = follow(path, fresh_engine(), str(snaps), every=10, idle_s=0.5, accept_code_change=True)
    assert [s.fingerprint for s in result.code_changes] == [OTHER.hex()]
    assert result.events > 10 and result.snapshots_written == 0
    assert result.summary()["code_changes"] == [{"seq": 1, "session_id": 1, "fingerprint": OTHER.hex()}]


def test_a_snapshot_of_other_code_is_not_used(tmp_path, events, monkeypatch):
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    write_session(path, events).journal.close()
    written = replay_journal(path, fresh_engine(), snapshots=snaps, snapshot_every=20,
                             code=CodeCheck())
    assert written.snapshots_written >= 1 and written.code_changes == []
    assert replay_journal(path, fresh_engine(), snapshots=snaps).snapshot     # this code: used
    monkeypatch.setattr(buildid, "fingerprint", lambda: OTHER.hex())         # the code changed
    resumed = replay_journal(path, fresh_engine(), snapshots=snaps)
    assert not resumed.snapshot
    assert resumed.snapshots_skipped and all("written by other code" in r for r in resumed.snapshots_skipped)


def test_a_replay_check_refuses_other_code_it_meets(tmp_path, events, monkeypatch):
    path = str(tmp_path / "j")
    other_code_session(path, events, monkeypatch).journal.close()
    with pytest.raises(CodeMismatch):
        replay_journal(path, fresh_engine(), code=CodeCheck())
    assert replay_journal(path, fresh_engine()).deterministic     # no check asked: replays
    json.dumps(CodeCheck().to_json())


def _rewrite_headers(snaps, change) -> None:
    import pathlib
    from tests.recovery.journaling import rewrite_snapshot_header
    for f in pathlib.Path(snaps).glob("*.snap"):
        rewrite_snapshot_header(f, change)


def test_snapshots_list_the_sessions_they_cover_and_the_check_reads_only_after_them(tmp_path, events):
    from recovery.codecheck import SessionCode
    from recovery.snapshot import covered_sessions, engine_setup
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    write_session(path, events).journal.close()
    this = SessionCode(1, 1, buildid.fingerprint())
    written = replay_journal(path, fresh_engine(), snapshots=snaps, snapshot_every=20, code=CodeCheck())
    assert written.snapshots_written >= 1 and written.sessions == [this]
    with Reader(path) as reader:
        seq, listed = covered_sessions(snaps, reader, engine_setup(fresh_engine()))
        assert listed == (this,) and 1 < seq < reader.last_seq
        assert journal_sessions(reader, (seq, listed)) == [this]
        # what precedes the snapshot is taken from its list, not read again
        assert journal_sessions(reader, (seq, (SessionCode(1, 1, OTHER.hex()),))) == [
            SessionCode(1, 1, OTHER.hex())]
    result = recover(recovery_settings(path, snapshots=snaps))
    assert result.replay.snapshot and result.code.differing == [] and "code" in result.timings
    assert result.replay.sessions == [this]         # carried on from the snapshot it resumed


def test_recovery_believes_the_snapshot_list_and_reads_the_journal_after_it(tmp_path, events):
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    write_session(path, events[:80]).journal.close()
    replay_journal(path, fresh_engine(), snapshots=snaps, snapshot_every=20, code=CodeCheck())
    with Journal(path) as j:                 # other code went on writing after the snapshots
        j.append(RecordType.SESSION_START, pack(RecordType.SESSION_START, session_id=2,
                                                code_fingerprint=OTHER), ts_ns=10**9)
    with pytest.raises(CodeMismatch) as info:
        recover(recovery_settings(path, snapshots=snaps))
    assert [(s.session_id, s.fingerprint) for s in info.value.sessions] == [(2, OTHER.hex())]


def test_a_snapshot_listing_other_code_is_refused_and_one_listing_nothing_means_a_full_read(tmp_path, events):
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    write_session(path, events).journal.close()
    replay_journal(path, fresh_engine(), snapshots=snaps, snapshot_every=20, code=CodeCheck())
    _rewrite_headers(snaps, lambda h: h.update(sessions=[[1, 1, OTHER.hex()]]))
    with pytest.raises(CodeMismatch):
        recover(recovery_settings(path, snapshots=snaps))
    with pytest.raises(CodeMismatch):         # nor does a replay resuming from it go on quietly
        replay_journal(path, fresh_engine(), snapshots=snaps, code=CodeCheck())
    _rewrite_headers(snaps, lambda h: h.pop("sessions"))      # a snapshot from before the lists
    result = recover(recovery_settings(path, snapshots=snaps))
    assert result.replay.snapshot and result.code.differing == [] and result.replay.sessions is None
