"""The standby replayer follows a journal while it is written and leaves snapshots that recovery
resumes from, reaching the live engine's exact state."""
from __future__ import annotations

import threading

from recovery.replay import replay_journal
from recovery.standby import follow
from tests.recovery.journaling import fresh_engine, session_events, write_session


def test_standby_follows_a_live_journal_and_its_snapshots_rebuild_the_live_state(tmp_path):
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    events = session_events(5, 250)
    live = write_session(path, events[:50])            # the journal exists before the standby starts
    outcome = {}
    standby = threading.Thread(target=lambda: outcome.update(
        result=follow(path, fresh_engine(), snaps, every=100, idle_s=1.0)))
    standby.start()
    try:
        for event in events[50:]:                       # the live session goes on meanwhile
            live.feed(event)
    finally:
        live.journal.close()
        standby.join(60)                                # it stops after 1 s without records
    assert not standby.is_alive()
    result = outcome["result"]
    assert result.deterministic and result.snapshots_written >= 3
    assert result.state_hash == live.engine.state_hash()
    resumed = replay_journal(path, fresh_engine(), snapshots=snaps)
    assert resumed.snapshot and resumed.state_hash == live.engine.state_hash()


def test_a_stop_request_ends_the_follow_loop(tmp_path):
    path = str(tmp_path / "j")
    write_session(path, session_events(5, 40)).journal.close()
    stop = threading.Event()
    stop.set()
    result = follow(path, fresh_engine(), str(tmp_path / "snaps"), stop=stop, idle_s=30.0)
    assert result.records == 0


def test_a_standby_that_has_caught_up_snapshots_before_its_interval(tmp_path):
    """Snapshots every million events would never come; one taken whenever the standby has caught
    up (after at least idle_every new events) does, and recovery resumes from it."""
    import time

    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    events = session_events(7, 200)
    live = write_session(path, events[:20])
    outcome = {}
    standby = threading.Thread(target=lambda: outcome.update(
        result=follow(path, fresh_engine(), snaps, every=10**6, idle_every=30, idle_s=1.0)))
    standby.start()
    try:
        for start in range(20, len(events), 60):     # bursts, with pauses the standby catches up in
            for event in events[start:start + 60]:
                live.feed(event)
            time.sleep(0.3)
    finally:
        live.journal.close()
        standby.join(60)
    result = outcome["result"]
    assert result.deterministic and result.snapshots_written >= 2
    resumed = replay_journal(path, fresh_engine(), snapshots=snaps)
    assert resumed.snapshot and resumed.state_hash == live.engine.state_hash()
