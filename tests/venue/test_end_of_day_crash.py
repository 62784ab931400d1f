"""A venue killed during its end of day: every session log gets its close-outs and End of Day
before ITCH End of Messages is stored, and a restart finishes an end of day a crash cut short
(the close-outs and End of Day a log lacks, ITCH end of day) instead of refusing; only a session
whose end of day is complete in every log is refused."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mm_core.protocol import itch, ouch
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.config import User, load_config
from mm_core.venue.errors import SessionEndedError
from mm_core.venue.server import Venue
from mm_core.venue.session_log import read_session_log
from tests.venue.crash_points import CRASHED
from tests.venue.test_session_ended import drop_last, ended_session, snapshot

SESSION = "EODCRASH01"


def crash(point: str, logs: Path, session: str = SESSION) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.venue.crash_points", point, str(logs),
                           session], capture_output=True, text=True, timeout=60)
    assert proc.returncode == CRASHED, proc.stderr


def ouch_log(logs: Path, user: str, session: str = SESSION) -> list:
    return [ouch.decode_outbound(p) for p in read_session_log(logs / session / f"{user}.soup")]


def kinds(messages) -> list[str]:
    return [type(m).__name__ + (f":{m.event_code}" if hasattr(m, "event_code") else "")
            for m in messages]


def test_killed_after_end_of_messages_every_log_already_has_its_close_outs_and_end_of_day(
        tmp_path):
    logs = tmp_path / "logs"
    crash("end_of_day", logs)
    mm01 = ouch_log(logs, "MM01")
    assert kinds(mm01) == ["SystemEvent:S", "Accepted", "Canceled", "SystemEvent:E"]
    assert mm01[2].token == "S1" and mm01[2].reason == "T"
    assert kinds(ouch_log(logs, "MM02")) == ["SystemEvent:S", "SystemEvent:E"]
    with pytest.raises(SessionEndedError, match="every session log with End of Day"):
        Venue(load_config().with_venue(itch_port=9, log_dir=str(logs), session=SESSION),
              background_flow=False).start()


def _order_left_open(logs: Path) -> None:
    """A session that ended with MM01's order canceled at its end of day, then the log cut back
    to the order: as a venue that stored ITCH End of Messages before the logs' close-outs left it
    when killed in between."""
    with Venue(load_config().with_venue(itch_port=9, log_dir=str(logs), session=SESSION),
               background_flow=False) as venue:
        with SoupClient(venue.ports.host, venue.ports.ouch) as c:
            c.login("MM01", "mmaudit", 0)
            c.enter("K1", "B", 100, "ACME", 10_0000)
            c.sequenced(1)
    drop_last(logs / SESSION / "MM01.soup", 2)           # the Canceled and the End of Day
    assert kinds(ouch_log(logs, "MM01")) == ["SystemEvent:S", "Accepted"]


def test_a_restart_finishes_an_end_of_day_that_the_logs_lack_and_takes_no_order(tmp_path):
    logs = tmp_path / "logs"
    _order_left_open(logs)
    mm02_before = read_session_log(logs / SESSION / "MM02.soup")
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session=SESSION)
        with Venue(config, background_flow=False) as venue:
            assert venue.ports.itch_session != SESSION and venue.day_over
            with SoupClient(venue.ports.host, venue.ports.ouch) as c:
                c.login("MM01", "mmaudit", 1)                 # replays the whole log
                replay = [s.message for s in c.sequenced(4)]
                c.enter("K2", "B", 100, "ACME", 10_0000)      # after End of Day: not taken
                deadline = time.monotonic() + 10.0            # the venue's loop reads it when it can
                while not venue.protocol_errors and time.monotonic() < deadline:
                    time.sleep(0.01)
            rx.run(None, lambda r: any(isinstance(x, itch.SystemEvent) and x.event_code == "C"
                                       for x in r.decoded()), 5.0)
        assert venue.protocol_errors and "after End of Day" in venue.protocol_errors[-1]
        public = rx.decoded()
    assert kinds(replay) == ["SystemEvent:S", "Accepted", "Canceled", "SystemEvent:E"]
    assert replay[2].token == "K1" and replay[2].decrement_shares == 100
    assert replay[2].reason == "T"
    assert kinds(ouch_log(logs, "MM01")) == kinds(replay)              # nothing after 'E'
    assert read_session_log(logs / SESSION / "MM02.soup") == mm02_before   # it had ended
    assert [m.event_code for m in public if isinstance(m, itch.SystemEvent)] == list("MEC")
    before = snapshot(logs / SESSION)
    with pytest.raises(SessionEndedError):                # now complete: refused
        Venue(config, background_flow=False).start()
    assert snapshot(logs / SESSION) == before


def test_logs_that_all_ended_before_end_of_messages_was_stored_get_it_published(tmp_path):
    logs = tmp_path / "logs"
    ended_session(logs)
    session = "ENDED00001"
    store = logs / session / f"{session}.itch"
    drop_last(store, 3)                                   # ITCH M, E, C never stored
    soup_before = {p.name: p.read_bytes() for p in (logs / session).glob("*.soup")}
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session=session)
        with Venue(config, background_flow=False) as venue:
            rx.run(None, lambda r: any(isinstance(x, itch.SystemEvent) and x.event_code == "C"
                                       for x in r.decoded()), 5.0)
        public = rx.decoded()
    assert {p.name: p.read_bytes() for p in (logs / session).glob("*.soup")} == soup_before
    assert [m.event_code for m in public if isinstance(m, itch.SystemEvent)] == list("MEC")
    assert venue.stop_reason == "stopped"
    with pytest.raises(SessionEndedError):
        Venue(config, background_flow=False).start()


def test_a_user_added_before_the_restart_that_finishes_the_end_of_day_gets_it_too(tmp_path):
    logs = tmp_path / "logs"
    _order_left_open(logs)
    config = load_config().with_venue(itch_port=9, log_dir=str(logs), session=SESSION)
    config = dataclasses.replace(config, users=config.users + (User("MM03", "mmaudit3", "MMC3"),))
    with Venue(config, background_flow=False) as venue:
        assert venue.day_over
        with SoupClient(venue.ports.host, venue.ports.ouch) as c:
            c.login("MM03", "mmaudit3", 1)                    # replays the whole log
            replay = [s.message for s in c.sequenced(2)]
            assert c.drain(0.3) == []
    assert kinds(replay) == ["SystemEvent:S", "SystemEvent:E"]
    assert kinds(ouch_log(logs, "MM03")) == kinds(replay)
    assert kinds(ouch_log(logs, "MM01"))[-1] == "SystemEvent:E"
    before = snapshot(logs / SESSION)
    with pytest.raises(SessionEndedError, match="every session log with End of Day"):
        Venue(config, background_flow=False).start()         # every log ended: stays sealed
    assert snapshot(logs / SESSION) == before
