"""The session's own close-out at the end of a journal: recognised, so recovery can release its kill.

A clean end of a run (mm_core.runner's close-out) pulls every order through a kill of everything by
"session" and then journals SESSION_STOP: that kill ended the session, it was no risk decision.
Owns the rule for when it may be released: the journal's last kill of everything is that one (no
operator's, nothing from the control socket), it found trading unlatched (its own STATE_CHANGE into
HALTED), its session's SESSION_STOP (the session id of the SESSION_START before the kill) follows
with a clean stop reason, nothing but recovery's records
after that, and the replayed engine holds no open order, no other latch and no fault. Must not
release anything else: an operator's kill, a fault's latch or a close-out that left orders open
stay the operator's. recovery.recover journals the release (after a clean reconciliation only).
"""
from __future__ import annotations

from dataclasses import dataclass

from journal import Reader
from journal.catalogue import RecordType, unpack, unpack_json
from mm_core.engine import Engine
from mm_core.events import RECOVERY_ACTOR, RELEASE_CLOSE_OUT, SESSION_ACTOR
from mm_core.risk import TradingState
from mm_core.risk.checks import CheckId
from mm_core.runner import SESSION_END

__all__ = ["CloseOut", "RECON_CLOSE_OUT", "find_close_out"]

RECON_CLOSE_OUT = "close-out-release"   # RECON: the evidence for the release that follows it
CLEAN_STOPS = frozenset({"duration", "stopped"})    # Runner's stop reasons of a clean end
_KILLED, _UNRECONCILED = CheckId.KILLED.label, CheckId.UNRECONCILED.label
_OP, _STATE, _STOP = int(RecordType.OPERATOR_CMD), int(RecordType.STATE_CHANGE), int(RecordType.SESSION_STOP)
# a run's own inputs: after the stop they mean a run went on from this journal
_RUN_INPUTS = frozenset(map(int, (RecordType.SESSION_START, RecordType.MD_PACKET, RecordType.CLOCK_SAMPLE,
                                  RecordType.TIMER)))
_TYPES = (_OP, _STATE, _STOP, *_RUN_INPUTS)
_UNLATCHED = frozenset({int(TradingState.ACTIVE), int(TradingState.SAFE_MODE)})
_SCAN = 4096                            # records read back from the end first (widened if short)


@dataclass
class CloseOut:
    """The kill of everything that holds the replayed engine: whether it is the session's own
    close-out recovery may release (`releasable`), else why not; `released` once it was."""

    kill_seq: int
    actor: str
    reason: str
    stop_seq: int = 0
    session_id: int = 0
    stop_reason: str = ""
    why_not: str = ""
    released: bool = False

    @property
    def releasable(self) -> bool:
        return not self.why_not

    def describe(self) -> str:
        """One line for a person: what the kill was and what became of it."""
        what = f"the kill of everything at seq {self.kill_seq} by {self.actor!r} ({self.reason})"
        if self.released:
            return (f"{what}, the session's close-out before its SESSION_STOP (seq {self.stop_seq}, "
                    f"{self.stop_reason}), released by {RECOVERY_ACTOR}")
        return f"{what} is not released: {self.why_not}"

    def to_json(self) -> dict:
        return {"kill_seq": self.kill_seq, "actor": self.actor, "reason": self.reason,
                "stop_seq": self.stop_seq, "session_id": self.session_id, "stop_reason": self.stop_reason,
                "releasable": self.releasable, "released": self.released, "why_not": self.why_not}

    def command(self) -> dict:
        """The OPERATOR_CMD document of its release (as the runner journals a command)."""
        return {"command": RELEASE_CLOSE_OUT, "actor": RECOVERY_ACTOR, "scope": "all", "scope_id": 0,
                "reason": f"session close-out kill seq {self.kill_seq}"}


def find_close_out(path: str, engine: Engine) -> CloseOut | None:
    """The kill that holds `engine` (replayed from the journal at `path`, before recovery acted),
    judged by the rule above; None when no kill of everything holds it (nothing to release)."""
    risk = engine.risk
    if risk.state is not TradingState.HALTED or _KILLED not in risk.latch_reasons:
        return None
    with Reader(path) as reader:
        tail = _from_last_kill(reader)
        # the session the kill fell in: the last SESSION_START before it (one C scan of the
        # record headers, not a walk back through the records)
        starts = reader.read_fixed(RecordType.SESSION_START, last_seq=tail[0].seq) if tail else ()
    if not tail:
        return CloseOut(0, "", "", why_not="the journal holds no kill of everything")
    kill = unpack_json(tail[0].payload)
    found = CloseOut(tail[0].seq, str(kill.get("actor", "")), str(kill.get("reason", "")))
    if (found.actor, found.reason) != (SESSION_ACTOR, SESSION_END) or kill.get("origin"):
        found.why_not = (f"it is not the session's close-out (origin {kill.get('origin') or 'the engine'}): "
                         "an operator's kill is the operator's to lift")
        return found
    found.why_not = _walk(found, tail[1:]) or _same_session(found, starts) or _engine_holds(engine)
    return found


def _same_session(found: CloseOut, starts) -> str:
    """Why the SESSION_STOP found is not the stop of the session the kill fell in (the last of
    `starts`, the SESSION_STARTs before the kill), or ""."""
    if not len(starts):
        return "no SESSION_START comes before the kill: the session it ended is unknown"
    started, seq = int(starts["session_id"][-1]), int(starts["seq"][-1])
    if started != found.session_id:
        return (f"the SESSION_STOP at seq {found.stop_seq} is of session {found.session_id}, not of "
                f"session {started} (started at seq {seq}) that the kill ended")
    return ""


def _from_last_kill(reader: Reader) -> list:
    """The records of _TYPES from the journal's last OPERATOR_CMD kill of everything on (read from
    the end, wider each time it is not there); [] when the journal has none."""
    last, first_of_all = reader.last_seq, reader.first_seq
    span = _SCAN
    while True:
        first = max(first_of_all, last - span + 1)
        records = list(reader.records(first, last, rtypes=_TYPES))
        for i in range(len(records) - 1, -1, -1):
            if records[i].rtype == _OP and _is_kill_all(unpack_json(records[i].payload)):
                return records[i:]
        if first <= first_of_all:
            return []
        span *= 8


def _is_kill_all(doc: dict) -> bool:
    return doc.get("command") == "kill" and doc.get("scope", "all") == "all"


def _walk(found: CloseOut, after: list) -> str:
    """Fills the stop in `found`; why the records after the kill rule a release out, or ""."""
    latched_by_it = False
    stop = None
    for rec in after:
        if stop is None:
            if rec.rtype == _STATE:
                change = unpack(RecordType.STATE_CHANGE, rec.payload)
                latched_by_it |= (int(change["reason_code"]) == CheckId.KILLED
                                  and int(change["to_state"]) == TradingState.HALTED
                                  and int(change["from_state"]) in _UNLATCHED
                                  and change["actor"].decode(errors="replace") == SESSION_ACTOR)
            elif rec.rtype == _OP:
                return f"an operator command follows it (seq {rec.seq}) before the session's stop"
            elif rec.rtype == _STOP:
                stop = unpack(RecordType.SESSION_STOP, rec.payload)
                found.stop_seq, found.session_id = rec.seq, int(stop["session_id"])
                found.stop_reason = stop["reason"].decode(errors="replace")
            elif rec.rtype == int(RecordType.SESSION_START):
                return f"a new session starts (seq {rec.seq}) before that one's stop"
        elif rec.rtype == _OP and unpack_json(rec.payload).get("command") != RELEASE_CLOSE_OUT:
            return f"an operator command follows the session's stop (seq {rec.seq})"
        elif rec.rtype in _RUN_INPUTS:
            return f"a run went on after the session's stop (seq {rec.seq}): its latch is the operator's"
    if not latched_by_it:
        return "trading was latched already when the session's kill came: that latch is the operator's"
    if stop is None:
        return "no SESSION_STOP follows it: the session did not end cleanly"
    if found.stop_reason not in CLEAN_STOPS:
        return f"the session stopped on {found.stop_reason!r}, not a clean end"
    return ""


def _engine_holds(engine: Engine) -> str:
    """Why the replayed engine rules a release out (orders open, another latch, a fault), or ""."""
    live = sorted(engine.oms.live)
    if live:
        return f"{len(live)} order(s) of ours were still open after the close-out: {', '.join(live[:5])}"
    risk = engine.risk
    others = [r for r in risk.latch_reasons if r not in (_KILLED, _UNRECONCILED)]
    if others:
        return f"trading is latched by {', '.join(others)} too"
    faults = [f for f in risk.faults if f != _UNRECONCILED]
    if faults:
        return f"the session ended with faults in force: {', '.join(faults)}"
    return ""
