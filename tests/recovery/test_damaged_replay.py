"""Read-only replays of a damaged journal (recover --dry-run, replay_journal, the standby) stop at
the first invalid record and say where: the state they rebuilt ends there, and nothing after it
is taken for the journal's end."""
from __future__ import annotations

import time

import pytest

from click.testing import CliRunner

from cli.recover_cmd import command
from recovery.errors import JournalDamaged
from recovery.recover import recover
from recovery.replay import replay_journal
from recovery.standby import follow
from tests.journal.jhelpers import SMALL_SEGMENT, flip_byte, record_offsets, segment_files
from tests.journal.test_recovery import data_records
from tests.recovery.journaling import fresh_engine, session_events, write_session
from tests.recovery.session import settings_for
from tests.recovery.test_cli import session_files


def _damaged_journal(path: str, durability: str = "pagecache") -> int:
    """A closed session journal of several segments with one payload byte flipped in the middle
    of segment 1; the segment index."""
    write_session(path, session_events(5, 900), segment_size=SMALL_SEGMENT, durability=durability).journal.close()
    segments = segment_files(path)
    assert len(segments) >= 3
    offsets = record_offsets(segments[1])
    flip_byte(segments[1], offsets[len(offsets) // 2][0] + 40)
    return 1


def test_a_clean_journal_replays_to_its_end(tmp_path):
    path = str(tmp_path / "j")
    write_session(path, session_events(5, 60)).journal.close()
    result = replay_journal(path, fresh_engine())
    assert result.stopped is None and result.summary()["stopped"] is None


def test_replay_of_a_damaged_journal_says_where_it_stopped(tmp_path):
    path = str(tmp_path / "j")
    segment = _damaged_journal(path)
    result = replay_journal(path, fresh_engine())
    stop = result.stopped
    assert stop is not None and stop["segment"] == segment and "crc" in stop["reason"].lower()
    assert result.last_seq == stop["seq"] - 1 and result.summary()["stopped"] == stop


def test_the_standby_stops_at_the_damage_and_reports_it(tmp_path):
    path = str(tmp_path / "j")
    _damaged_journal(path)
    whole = replay_journal(path, fresh_engine())
    started = time.monotonic()
    result = follow(path, fresh_engine(), str(tmp_path / "snaps"), every=100, idle_s=30.0)
    assert time.monotonic() - started < 20.0          # ended by the damage, not by 30 s of quiet
    assert result.stopped is not None and result.stopped["seq"] == whole.stopped["seq"]
    assert result.records == whole.records and result.state_hash == whole.state_hash


def test_a_dry_run_prints_where_the_replay_stopped(tmp_path):
    path = str(tmp_path / "j")
    _damaged_journal(path)
    before = [p.read_bytes() for p in segment_files(path)]
    out = CliRunner().invoke(command, ["--journal", path, "--dry-run", *session_files(tmp_path)])
    assert out.exit_code == 1                            # no venue: nothing reconciled
    assert "replay stopped before seq" in out.stdout and "ends early on an invalid record" in out.stderr
    assert [p.read_bytes() for p in segment_files(path)] == before     # a dry run repairs nothing


def test_recovery_refuses_damage_the_writer_open_trusted_past(tmp_path):
    """In group mode sealed segments leave durable summaries, which the writer's open believes
    without reading the segment: damage inside one is found only by replay. Recovery then refuses
    (typed, naming the place and the way on) instead of trading on from the truncated state."""
    path = str(tmp_path / "j")
    _damaged_journal(path, durability="group")
    written = sum(len(data_records(seg)) for seg in segment_files(path))
    with pytest.raises(JournalDamaged, match=r"replay stopped before seq \d+ \(bad crc at segment 1") as err:
        recover(settings_for(path))
    assert "seg-0000000000000001.sum" in str(err.value)
    assert sum(len(data_records(seg)) for seg in segment_files(path)) == written    # no RECON appended
    # the writer's close finished its check of the trusted segments: DAMAGED marks the same record,
    # and the close's report rides on replay's error instead of replacing it
    damaged = (tmp_path / "j" / "DAMAGED").read_text()
    assert damaged.startswith("damaged 4 segment 1 ") and any("segment 1" in n for n in err.value.__notes__)
    # as the message says: without the summary the writer reads the segment, keeps the damage
    (tmp_path / "j" / "seg-0000000000000001.sum").rename(tmp_path / "moved.sum")
    (tmp_path / "j" / "DAMAGED").unlink()
    result = recover(settings_for(path))
    assert result.tail["kept_in"] and result.replay.stopped is None
