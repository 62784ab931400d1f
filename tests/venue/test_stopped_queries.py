"""A stopped venue still answers session_messages() from its session log files, read-only (its
own descriptors are closed): drills and tests ask after a venue stopped by itself; a user with no
session log is a typed error."""
from __future__ import annotations

from pathlib import Path

import pytest

from mm_core.protocol import ouch
from mm_core.venue.errors import VenueStateError
from mm_core.venue.session_log import read_session_log
from tests.venue.test_server import connect, messages


def test_session_messages_after_the_venue_stopped_by_itself(make_venue):
    venue = make_venue(duration=1.0)
    with connect(venue) as c:
        messages(c, 1)
        c.enter("A1", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(c, 1)[0], ouch.Accepted)
    assert venue.wait(15.0) and venue.stop_reason == "duration"
    logged = venue.session_messages("MM01")
    assert logged == read_session_log(Path(venue.ports.log_dir) / venue.session / "MM01.soup")
    assert [type(ouch.decode_outbound(p)).__name__ for p in logged] == \
        ["SystemEvent", "Accepted", "Canceled", "SystemEvent"]
    assert venue.session_messages("MM01", 3) == logged[2:]
    assert venue.session_messages("MM01", 9) == []
    assert len(venue.session_messages("MM02")) == 2


def test_session_messages_of_an_unknown_user_is_a_typed_error(make_venue):
    venue = make_venue()
    with pytest.raises(VenueStateError, match="NOBODY"):
        venue.session_messages("NOBODY")
    venue.stop()
    with pytest.raises(VenueStateError, match="NOBODY"):
        venue.session_messages("NOBODY")
