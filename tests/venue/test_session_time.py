"""ITCH/OUCH timestamps count nanoseconds since midnight US/Eastern of the session's date (EST
or EDT as that date has it), both ways, across the 2026 clock changes (8 March, 1 November);
the date is recorded with the session and kept by a restart after a crash."""
from __future__ import annotations

import datetime as dt
import socket
import time

import pytest
from hypothesis import given, strategies as st

from mm_core.protocol import itch, ouch
from mm_core.venue import sessiontime
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.errors import VenueStateError
from mm_core.venue.server import Venue
from tests.venue.test_session_ended import snapshot, unend

NS = 1_000_000_000
HOUR = 3600 * NS
OPEN = (9 * 3600 + 30 * 60) * NS          # 09:30 New York, as a stamp
SESSION = "DST0000001"


def utc(*args) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()) * NS


@pytest.mark.parametrize("day, open_utc", [
    (dt.date(2026, 3, 6), utc(2026, 3, 6, 14, 30)),      # Friday before spring forward: EST
    (dt.date(2026, 3, 9), utc(2026, 3, 9, 13, 30)),      # Monday after: EDT
    (dt.date(2026, 10, 30), utc(2026, 10, 30, 13, 30)),  # Friday before fall back: EDT
    (dt.date(2026, 11, 2), utc(2026, 11, 2, 14, 30)),    # Monday after: EST
])
def test_the_open_is_0930_new_york_on_both_sides_of_a_clock_change(day, open_utc):
    assert sessiontime.stamp(open_utc, day) == OPEN
    assert sessiontime.to_utc_ns(OPEN, day) == open_utc
    assert sessiontime.eastern_date(open_utc) == day


def test_on_the_change_days_a_stamp_is_time_elapsed_since_midnight():
    # 8 March: 00:00 EST = 05:00Z; 12:00Z is 08:00 EDT, 7 hours after midnight
    assert sessiontime.midnight_utc_ns(dt.date(2026, 3, 8)) == utc(2026, 3, 8, 5)
    assert sessiontime.stamp(utc(2026, 3, 8, 12), dt.date(2026, 3, 8)) == 7 * HOUR
    # 1 November: 00:00 EDT = 04:00Z; 12:00Z is 07:00 EST, 8 hours after midnight
    assert sessiontime.midnight_utc_ns(dt.date(2026, 11, 1)) == utc(2026, 11, 1, 4)
    assert sessiontime.stamp(utc(2026, 11, 1, 12), dt.date(2026, 11, 1)) == 8 * HOUR


def test_the_new_york_date_is_not_the_utc_date_in_the_evening():
    assert sessiontime.eastern_date(utc(2026, 3, 10, 3, 30)) == dt.date(2026, 3, 9)    # 23:30 EDT
    assert sessiontime.eastern_date(utc(2026, 3, 10, 4, 30)) == dt.date(2026, 3, 10)


@given(st.dates(dt.date(2000, 1, 1), dt.date(2037, 12, 31)), st.integers(0, 86_399 * NS))
def test_stamps_convert_back_exactly(day, elapsed):
    instant = sessiontime.midnight_utc_ns(day) + elapsed
    assert sessiontime.to_utc_ns(sessiontime.stamp(instant, day), day) == instant
    assert sessiontime.eastern_date(sessiontime.midnight_utc_ns(day)) == day


def shifted(start_utc_ns: int):
    """A wall clock that starts at `start_utc_ns` now and runs at real speed."""
    base = time.time_ns()
    return lambda: start_utc_ns + time.time_ns() - base


def open_and_trade(logs, clock, token: str = "T1") -> tuple[Venue, list, list]:
    """Run a venue on `clock`: one order, then end of day. (venue, the OUCH messages from the
    login on, the ITCH messages)."""
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session=SESSION)
        with Venue(config, background_flow=False, clock=clock) as venue:
            with SoupClient(venue.ports.host, venue.ports.ouch) as c:
                c.login("MM01", "mmaudit", 0)
                c.enter(token, "B", 100, "ACME", 10_0000)
                private = [s.message for s in c.sequenced(1)]
            rx.run(None, lambda r: any(isinstance(x, itch.AddOrder) for x in r.decoded()), 5.0)
        return venue, private, rx.decoded()


@pytest.mark.parametrize("day, open_utc", [(dt.date(2026, 3, 6), utc(2026, 3, 6, 14, 30)),
                                           (dt.date(2026, 3, 9), utc(2026, 3, 9, 13, 30))])
def test_the_venue_stamps_itch_and_ouch_from_new_york_midnight(tmp_path, day, open_utc):
    venue, private, public = open_and_trade(tmp_path / "logs", shifted(open_utc))
    assert venue.ports.session_date == day.isoformat()
    stamps = [m.timestamp for m in private] + [m.timestamp for m in public]
    assert all(OPEN <= s < OPEN + 30 * NS for s in stamps), stamps
    assert isinstance(private[0], ouch.Accepted)
    assert 0 <= sessiontime.to_utc_ns(private[0].timestamp, day) - open_utc < 30 * NS


def test_a_restart_after_midnight_keeps_counting_from_the_session_date(tmp_path):
    logs = tmp_path / "logs"
    first, _, _ = open_and_trade(logs, shifted(utc(2026, 3, 10, 3, 55)))   # 23:55 EDT, 9 March
    assert first.ports.session_date == "2026-03-09"
    unend(logs / SESSION)                          # killed, not ended: it may start again
    later = utc(2026, 3, 10, 4, 10)                # 00:10 EDT, 10 March
    venue, private, _ = open_and_trade(logs, shifted(later), "T2")
    assert venue.ports.session_date == "2026-03-09"
    assert all(24 * HOUR + 10 * 60 * NS <= m.timestamp < 24 * HOUR + 11 * 60 * NS
               for m in private)


def test_a_session_taken_up_days_after_its_date_is_refused(tmp_path):
    logs = tmp_path / "logs"
    open_and_trade(logs, shifted(utc(2026, 3, 9, 14)))
    unend(logs / SESSION)
    config = load_config().with_venue(itch_port=9, log_dir=str(logs), session=SESSION)
    before = snapshot(logs / SESSION)
    venue = Venue(config, background_flow=False, clock=shifted(utc(2026, 3, 13, 14)))
    with pytest.raises(VenueStateError, match="dated 2026-03-09"):
        venue.start()
    assert all(sl._fd < 0 for sl in venue.logs.values())
    assert snapshot(logs / SESSION) == before             # no MoldUDP64 name was taken


def test_a_start_that_failed_before_its_first_message_dates_nothing(tmp_path):
    """Monday's start fails on a busy port; Tuesday's first real start is dated Tuesday and
    publishes under the session's own MoldUDP64 name."""
    logs = tmp_path / "logs"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        config = load_config().with_venue(itch_port=9, log_dir=str(logs), session=SESSION,
                                          ouch_port=busy.getsockname()[1])
        with pytest.raises(VenueStateError, match="cannot bind"):
            Venue(config, background_flow=False, clock=shifted(utc(2026, 3, 9, 22))).start()
    tuesday = utc(2026, 3, 10, 14)                         # 10:00 EDT
    venue, private, _ = open_and_trade(logs, shifted(tuesday))
    assert venue.ports.session_date == "2026-03-10" and venue.rule201.day == dt.date(2026, 3, 10)
    assert venue.ports.itch_session == SESSION            # a first start's MoldUDP64 name
    assert all(10 * HOUR <= m.timestamp < 10 * HOUR + 30 * NS for m in private)
    assert (logs / SESSION / sessiontime.DATE_FILE).read_text() == "2026-03-10\n"
