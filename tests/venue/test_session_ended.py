"""A session that ended cleanly (its end of day published) cannot be started again: the start
is refused with SessionEndedError before anything is written; a crashed one still restarts (one
killed during its end of day: test_end_of_day_crash.py)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from mm_core.protocol import itch, ouch
from mm_core.venue.client import SoupClient
from mm_core.venue.config import User, load_config
from mm_core.venue.errors import SessionEndedError, VenueStateError
from mm_core.venue.server import Venue
from mm_core.venue.session_log import SessionLog, read_session_log

SESSION = "ENDED00001"


def config(logs: Path):
    return load_config().with_venue(itch_port=9, log_dir=str(logs), session=SESSION)


def ended_session(logs: Path) -> None:
    with Venue(config(logs), background_flow=False) as venue:
        with SoupClient(venue.ports.host, venue.ports.ouch) as c:
            c.login("MM01", "mmaudit")
            c.enter("T1", "B", 100, "ACME", 10_0000)
            c.sequenced(2)


def drop_last(path: Path, count: int) -> None:
    """Rewrite a session log or ITCH store without its last `count` messages."""
    kept = read_session_log(path)[:-count]
    path.unlink()
    rewritten = SessionLog(path)
    for payload in kept:
        rewritten.append(payload)
    rewritten.flush()
    rewritten.close()


def unend(session_dir: Path) -> None:
    """Take a cleanly ended session's end of day out of its logs and ITCH stores, as if the
    venue had been killed just before it."""
    for pattern, decode, code, count in (("*.soup", ouch.decode_outbound, "E", 1),   # OUCH E
                                         ("*.itch", itch.decode, "C", 3)):           # ITCH M, E, C
        for path in session_dir.glob(pattern):
            last = read_session_log(path)[-1:]
            if last and getattr(decode(last[0]), "event_code", "") == code:
                drop_last(path, count)


def snapshot(session_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(session_dir.iterdir())}


def test_a_cleanly_ended_session_refuses_to_start_again_and_writes_nothing(tmp_path):
    logs = tmp_path / "logs"
    ended_session(logs)
    before = snapshot(logs / SESSION)
    venue = Venue(config(logs), background_flow=False)
    with pytest.raises(SessionEndedError, match=f"{SESSION} ended cleanly.*new name") as info:
        venue.start()
    assert isinstance(info.value, VenueStateError)
    assert snapshot(logs / SESSION) == before            # no new MoldUDP64 name, no message
    assert all(sl._fd < 0 for sl in venue.logs.values())  # nothing left open
    assert not venue.running
    with Venue(config(logs).with_venue(session="ENDED00002"), background_flow=False) as fresh:
        assert fresh.ports.itch_session == "ENDED00002"   # a new name starts a new session


def test_a_refused_start_makes_no_log_for_a_user_added_to_the_config(tmp_path):
    logs = tmp_path / "logs"
    ended_session(logs)
    before = snapshot(logs / SESSION)
    base = config(logs)
    added = dataclasses.replace(base, users=base.users + (User("NEW01", "secret", "NEWF"),))
    venue = Venue(added, background_flow=False)
    with pytest.raises(SessionEndedError):
        venue.start()
    assert snapshot(logs / SESSION) == before            # no NEW01.soup beside the ended logs
    assert all(sl._fd < 0 for sl in venue.logs.values())


def test_a_session_whose_end_of_day_was_never_published_still_restarts(tmp_path):
    logs = tmp_path / "logs"
    ended_session(logs)
    session_dir = logs / SESSION
    unend(session_dir)
    with Venue(config(logs), background_flow=False) as venue:
        assert venue.ports.itch_session != SESSION        # restarted under a new MoldUDP64 name


def test_the_venue_process_exits_2_naming_the_ended_session(tmp_path):
    logs = tmp_path / "logs"
    ended_session(logs)
    proc = subprocess.run([sys.executable, "-m", "mm_core.venue", "--itch-port", "9",
                           "--log-dir", str(logs), "--session", SESSION],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"session {SESSION} ended cleanly" in proc.stderr


def test_a_generated_session_name_never_names_an_earlier_session(tmp_path):
    logs = tmp_path / "logs"
    unnamed = config(logs).with_venue(session="")
    names = []
    for _ in range(2):                               # within one second: the same clock name
        with Venue(unnamed, background_flow=False) as venue:
            names.append(venue.session)
    assert len(set(names)) == 2 and all(len(n) <= 10 and n.isalnum() for n in names)
