"""The host-wide claim of session tags: two sessions on one host and one token prefix that start
in the same 2 ms tick (mm_core.sessiontag) would otherwise get the same tokens.

Owns a small JSON file (the last tick given to each prefix, with its trading day) under an
exclusive flock: a session takes its start's tick, or one past the last given on that day when
that is not before it. Tags still only move forward in time, so a restart's tokens stay disjoint
from its session's. The file is a convenience, not a record: the tag is journaled in SESSION_START
and replay reads it from there. When the file cannot be used the start's own tick is taken, with a
warning (sessions on one prefix on different hosts need different prefixes either way).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile

from mm_core.sessiontag import session_tick, tag_of
from mm_core.venue.sessiontime import eastern_date

__all__ = ["CLAIMS_FILE", "claim_tag"]

CLAIMS_FILE = os.path.join(tempfile.gettempdir(), "mmaudit-token-tags.json")
_log = logging.getLogger(__name__)


def claim_tag(prefix: str, utc_ns: int, path: str = CLAIMS_FILE) -> str:
    """The tag of a session on `prefix` starting at `utc_ns`, claimed on this host."""
    tick, day = session_tick(utc_ns), eastern_date(utc_ns).isoformat()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        _log.warning("token tags not claimed in %s (%s): the start's own tick is taken", path, exc)
        return tag_of(tick)
    with os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)          # released when the file closes
        try:
            claims = json.loads(fh.read() or "{}")
            if not isinstance(claims, dict):
                raise ValueError("not an object")
        except ValueError:                      # torn or foreign: start again from the clock
            claims = {}
        last = claims.get(prefix)
        if isinstance(last, list) and len(last) == 2 and last[0] == day and isinstance(last[1], int):
            tick = max(tick, last[1] + 1)
        claims[prefix] = [day, tick]
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(claims, sort_keys=True))
    return tag_of(tick)
