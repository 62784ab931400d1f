"""SessionSettings refuses a duration a session cannot run for: not positive, NaN, infinity, or
longer than MAX_SESSION_S (the venue the session starts must cover it within its own day, with
the clock warm-up and margin), as a SessionConfigError before anything is built."""
from __future__ import annotations

import math

import pytest

from mm_core.session import MAX_SESSION_S, SessionConfigError, SessionSettings
from mm_core.venue.process import MAX_DURATION_S


@pytest.mark.parametrize("duration", [0.0, -1.0, math.nan, math.inf, MAX_SESSION_S + 0.001, 1e300])
def test_a_duration_it_cannot_run_for_is_refused(tmp_path, duration):
    with pytest.raises(SessionConfigError, match=r"duration must be positive and at most 82800 s \(23 h\)"):
        SessionSettings(str(tmp_path / "j"), duration)
    assert not (tmp_path / "j").exists()


def test_the_longest_session_leaves_the_venue_room_for_warm_up_and_margin(tmp_path):
    assert SessionSettings(str(tmp_path / "j"), MAX_SESSION_S).duration_s == MAX_SESSION_S
    assert MAX_SESSION_S + 15.0 + 30.0 < MAX_DURATION_S      # lab warm-up 15 s, venue margin 30 s
