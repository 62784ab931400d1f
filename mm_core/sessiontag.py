"""The session's order-token tag: when in its trading day the session started, in base 36.

Owns the choice of the tag a new session journals in SESSION_START (mm_core.oms puts it between the
prefix and the counter of every token). It is the time elapsed since 00:00 America/New_York (the
venue's day, as its OUCH timestamps count it) at the session's start, in 2 ms ticks, five base-36
characters: a day of up to 25 hours (the autumn clock change) is 45,000,000 ticks, under 36**5.
Sessions on one prefix that start at least a tick apart on one day get disjoint tokens; a
restart always does (it starts after the session before it stopped); sessions on one host that
start in the same tick are told apart by mm_core.tagclaim. Replay, recovery and the
standby never compute a tag: they read the journaled one. Must not know journals or sockets.
"""
from __future__ import annotations

from mm_core.oms import base36
from mm_core.venue.sessiontime import eastern_date, midnight_utc_ns

__all__ = ["TAG_TICK_NS", "TAG_WIDTH", "session_tag", "session_tick", "tag_of"]

TAG_TICK_NS = 2_000_000          # 2 ms
TAG_WIDTH = 5                    # 36**5 = 60,466,176 ticks = 33.6 hours


def session_tag(utc_ns: int) -> str:
    """The tag of a session starting at `utc_ns` (UTC nanoseconds, CLOCK_REALTIME)."""
    return tag_of(session_tick(utc_ns))


def session_tick(utc_ns: int) -> int:
    """The 2 ms ticks since 00:00 America/New_York of the day of `utc_ns`."""
    return (utc_ns - midnight_utc_ns(eastern_date(utc_ns))) // TAG_TICK_NS


def tag_of(tick: int) -> str:
    return base36(tick, TAG_WIDTH)
