"""The venue's exception tree: one base class, one subclass per kind of failure.

Owns only the types; callers at the boundary (the CLI, the process entry point) turn them into
user-facing messages. Protocol-level rejects of client input are events, not exceptions.
"""
from __future__ import annotations


class VenueError(Exception):
    """Base class of every error raised by mm_core.venue."""


class ConfigError(VenueError):
    """A venue/symbols config that cannot be used; `field` names the offending entry."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class SessionLogError(VenueError):
    """A SoupBinTCP session log that cannot be opened, written or read."""


class VenueStateError(VenueError):
    """An operation that the venue's current state does not allow (e.g. start twice)."""


class SessionEndedError(VenueStateError):
    """A start under a session that already ended cleanly (End of Session sent): a new trading
    session needs a new session name (and its own date)."""


class SessionSealedError(VenueStateError):
    """A write to a session log after its last message (End of Day): refused, nothing may
    follow it (a restart would take the ended session for an unfinished one)."""
