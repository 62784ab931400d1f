"""SessionSettings refuses a duration a session cannot run for: not positive, NaN, infinity, or
longer than MAX_SESSION_S (the venue the session starts must cover it within its own day, with
the clock warm-up and margin), as a SessionConfigError before anything is built; so does a
clock warm-up outside 0..MAX_WARMUP_S."""
from __future__ import annotations

import math

import pytest

from mm_core.sessionconfig import ClockSpec, MAX_SESSION_S, MAX_WARMUP_S, SessionConfigError, SessionSettings
from mm_core.venue.process import MAX_DURATION_S


@pytest.mark.parametrize("duration", [0.0, -1.0, math.nan, math.inf, MAX_SESSION_S + 0.001, 1e300])
def test_a_duration_it_cannot_run_for_is_refused(tmp_path, duration):
    with pytest.raises(SessionConfigError, match=r"duration must be positive and at most 82800 s \(23 h\)"):
        SessionSettings(str(tmp_path / "j"), duration)
    assert not (tmp_path / "j").exists()


def test_the_longest_session_leaves_the_venue_room_for_warm_up_and_margin(tmp_path):
    assert SessionSettings(str(tmp_path / "j"), MAX_SESSION_S).duration_s == MAX_SESSION_S
    assert MAX_SESSION_S + MAX_WARMUP_S + 30.0 < MAX_DURATION_S      # venue margin 30 s


@pytest.mark.parametrize("warmup", [-1.0, math.nan, math.inf, MAX_WARMUP_S + 1, "15"])
def test_a_clock_warm_up_outside_its_bound_is_refused(warmup):
    with pytest.raises(SessionConfigError, match="clock warm-up"):
        ClockSpec(warmup_s=warmup)


def test_a_clock_warm_up_within_its_bound_is_kept():
    assert ClockSpec(warmup_s=0).warmup == 0
    assert ClockSpec(warmup_s=MAX_WARMUP_S).warmup == MAX_WARMUP_S
