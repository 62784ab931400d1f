"""The standby replayer: follows a live journal from its own process through its own engine, checks
every order the trading engine journals (a live determinism check) and keeps engine snapshots
current, so that a recovery replays only the journal written since the last snapshot.

Owns the follow loop (journal.Tailer, bounded waits, stop on request or when the journal has been
idle too long). Replay semantics are recovery.replay's; the snapshot format is recovery.snapshot's.
A session the journal shows of other code than the standby's (recovery.codecheck) stops it with
CodeMismatch, or with accept_code_change is followed without snapshots from there on.
Must not write the journal or talk to the venue.
"""
from __future__ import annotations

import functools
import threading
import time

from journal import Reader, Tailer
from journal.errors import JournalCorrupt, JournalError
from recovery.codecheck import CodeCheck
from recovery.errors import JournalUnavailable
from recovery.replay import ReplayResult, replay
from recovery.snapshot import journal_witness

__all__ = ["follow"]


def follow(path: str, engine, snapshots: str, *, every: int = 5_000, idle_every: int = 500,
           profile: str | None = None, fresh_session: bool = True, stop: threading.Event | None = None,
           idle_s: float = 5.0, poll_s: float = 0.05, accept_code_change: bool = False) -> ReplayResult:
    """Replay the journal at `path` as it grows, until `stop` is set, no record arrived for
    idle_s seconds, or an invalid record (result.stopped says where); returns the replay's result.
    A snapshot is written every `every` events, and sooner — once `idle_every` events are new —
    whenever the standby has caught up with the writer: a snapshot then costs the standby no
    ground, and a crash finds one near its end. Sessions of other code: see the module docstring
    (result.code_changes names those accepted). The clock profile is the engine's limits' (as
    recovery replays with) unless given; fresh_session must be the runner's, as recovery's."""
    if profile is None:
        profile = engine.risk.limits.clock_profile
    try:
        reader = Reader(path)          # the witness of each snapshot (refreshed as it grows)
        tailer = Tailer(path)
    except JournalError as exc:
        raise JournalUnavailable(f"cannot follow the journal at {path}: {exc}") from exc
    caught_up = [False]

    def due(since: int) -> bool:
        idle, caught_up[0] = caught_up[0], False
        return since >= every or (idle and since >= idle_every)

    stopped: list[dict] = []

    def records():
        quiet_since = time.monotonic()
        while not (stop is not None and stop.is_set()):
            try:
                rec = tailer.next(0.0)
                if rec is None:
                    caught_up[0] = True        # the next input is a safe point worth a snapshot
                    rec = tailer.next(poll_s)
            except JournalCorrupt as exc:
                # an invalid record where a valid one must be: nothing after it can be followed,
                # and the result says where the standby stopped (its snapshots end before it)
                stopped.append({"reason": str(exc), "seq": tailer.position})
                return
            if rec is None:
                if time.monotonic() - quiet_since >= idle_s:
                    return
                continue
            quiet_since = time.monotonic()
            yield rec

    code = CodeCheck(accept_code_change)
    with reader, tailer:
        code.remember_accepted(reader)       # sessions an earlier recovery on this code accepted
        result = replay(records(), engine, profile=profile, fresh_session=fresh_session,
                        snapshot_every=due, snapshot_dir=snapshots, journal_id=reader.journal_id,
                        witness=functools.partial(journal_witness, reader), code=code)
    result.stopped = stopped[0] if stopped else None
    return result
