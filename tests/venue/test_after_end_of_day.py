"""Nothing follows End of Day in a session log: every client message after it, well-formed or
not, gets a Debug reply and writes nothing (a malformed Enter once wrote an OUCH Rejected after
'E', and every later start then took the ended session for an unfinished one), and a write the
venue would still attempt is refused with a typed error, counted and logged."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.errors import SessionEndedError, SessionSealedError
from mm_core.venue.server import Venue
from mm_core.venue.session_log import SessionLog, read_session_log
from tests.venue.test_end_of_day_crash import kinds, ouch_log
from tests.venue.test_session_ended import drop_last

SESSION = "AFTEREOD01"


def _interrupted_end_of_day(logs: Path, config) -> None:
    """A session whose end of day a crash cut short: MM02's log lacks its End of Day."""
    with Venue(config, background_flow=False) as venue:
        with SoupClient(venue.ports.host, venue.ports.ouch) as c:
            c.login("MM01", "mmaudit", 0)
            c.enter("A1", "B", 100, "ACME", 10_0000)
            c.sequenced(1)
    drop_last(logs / SESSION / "MM02.soup", 1)


def _malformed_enter(token: str) -> bytes:
    enter = bytearray(ouch.encode(ouch.EnterOrder(token, "B", 100, "ACME", 10_0000, 99999, "",
                                                  "Y", "P", "N", 0, "N", "R")))
    enter[15] = ord("X")                  # side: not B/S/T/E, the token still readable
    return bytes(enter)


def test_malformed_and_good_enters_after_end_of_day_get_debug_and_the_session_stays_ended(
        tmp_path):
    logs = tmp_path / "logs"
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session=SESSION)
        _interrupted_end_of_day(logs, config)
        with Venue(config, background_flow=False) as venue:     # finishes the end of day
            assert venue.day_over
            with SoupClient(venue.ports.host, venue.ports.ouch) as c:
                c.login("MM01", "mmaudit", 0)
                c.send(soupbintcp.UnsequencedData(_malformed_enter("A9")))
                c.enter("A10", "B", 100, "ACME", 10_0000)
                replies = [c.packet(5.0) for _ in range(2)]
                assert c.drain(0.3) == []                      # nothing sequenced
            assert all(isinstance(r, soupbintcp.Debug) and "day is over" in r.text
                       for r in replies)
            assert kinds(ouch.decode_outbound(p) for p in venue.session_messages("MM01"))[-1] \
                == "SystemEvent:E"
        assert sum("after End of Day" in e for e in venue.protocol_errors) == 2
    assert kinds(ouch_log(logs, "MM01", SESSION)) == ["SystemEvent:S", "Accepted", "Canceled",
                                                      "SystemEvent:E"]
    with pytest.raises(SessionEndedError):               # ended: never "finished" again
        Venue(config, background_flow=False).start()


def test_a_write_after_end_of_day_is_refused_counted_and_logged(make_venue, caplog):
    venue = make_venue()
    venue.stop()                                      # a clean end of day
    path = Path(venue.ports.log_dir) / venue.session / "MM01.soup"
    ended = read_session_log(path)
    with venue._lock, caplog.at_level(logging.ERROR, "mm_core.venue"):
        with pytest.raises(SessionSealedError, match="after End of Day"):
            venue._dispatch(venue.engine.reject("MM01", "LATE", "O"))
    assert venue.writes_after_end_of_day == 1
    assert any("after End of Day" in r.getMessage() for r in caplog.records)
    assert read_session_log(path) == ended


def test_a_sealed_session_log_refuses_appends_and_keeps_its_messages(tmp_path):
    log = SessionLog(tmp_path / "u.soup")
    log.append(b"S-first")
    log.seal()
    with pytest.raises(SessionSealedError, match="sealed"):
        log.append(b"S-late")
    log.close()
    assert read_session_log(tmp_path / "u.soup") == [b"S-first"]
