"""What a session's own journal records say of it, for its summary: the records per type, whether
the clock was ever compliant for the session's profile (what the engine was told: a session never
told so never quoted), and the operator's kill of everything in force at its end (who, when, why):
an operator command the engine refused (its "operator-refused" alert follows the command) changes
nothing.

Reads one session's records once, after it stopped; must not judge the session (mm_core.session's
SessionSummary says what is a problem) nor know the clock's health rules (audit.health).
"""
from __future__ import annotations

from dataclasses import dataclass

from audit.health import PROFILES
from journal import Reader
from journal.catalogue import RecordType, unpack, unpack_json
from mm_core.runner import SESSION_ACTOR     # the close-out's own kill: not an operator's


@dataclass(frozen=True)
class OperatorHalt:
    """An operator's kill of everything, not lifted by an enable after it."""

    actor: str
    reason: str
    ts_ns: int                       # the OPERATOR_CMD record's time (CLOCK_REALTIME)


@dataclass(frozen=True)
class SessionFacts:
    journal: dict                    # path, sequence range, records per type, segments, bytes, id
    clock_compliant_seen: bool       # a CLOCK_SAMPLE said compliant for the profile
    operator_halt: OperatorHalt | None


def read_session(path: str, first_seq: int, profile: str, commands_from: int | None = None) -> SessionFacts:
    """The facts of the session whose records start at `first_seq` in the journal at `path`;
    `commands_from`: where its operator commands start, when earlier (a resumed session: its
    SESSION_START, so a kill made before the crash and still in force is named)."""
    bit = 1 << PROFILES[profile].bit
    counts: dict[str, int] = {}
    compliant = False
    halts = _Halts()
    with Reader(path) as reader:
        if commands_from is not None and commands_from < first_seq:
            for rec in reader.records(commands_from, first_seq - 1, rtypes=_COMMANDS):
                halts.see(rec)
        last = first_seq - 1
        for rec in reader.records(first_seq=first_seq):
            rtype = rec.rtype
            name = RecordType(rtype).name
            counts[name] = counts.get(name, 0) + 1
            last = rec.seq
            if rtype == RecordType.CLOCK_SAMPLE and not compliant:
                compliant = bool(int(unpack(RecordType.CLOCK_SAMPLE, rec.payload)["compliant_mask"]) & bit)
            elif rtype in _COMMANDS:
                halts.see(rec)
        segments = reader.segments()
        journal = {"path": path, "first_seq": first_seq, "last_seq": last, "records": last - first_seq + 1,
                   "by_type": dict(sorted(counts.items())), "segments": len(segments),
                   "segment_bytes": sum(s["size"] for s in segments), "journal_id": str(reader.journal_id)}
    return SessionFacts(journal, compliant, halts.halt)


_COMMANDS = (RecordType.OPERATOR_CMD, RecordType.METRICS)     # commands, and the engine's refusals


class _Halts:
    """The operator's kill in force as the OPERATOR_CMD records and the engine's refusals go by."""

    def __init__(self) -> None:
        self.halt: OperatorHalt | None = None
        self.undo = None     # (the halt before, the refusal's prefix) while the last command may be refused

    def see(self, rec) -> None:
        if rec.rtype == RecordType.OPERATOR_CMD:
            doc = unpack_json(rec.payload)
            self.undo = (self.halt, f"{doc.get('command')} by {doc.get('actor')}:")
            self.halt = _halt_after(self.halt, doc, rec.ts_ns)
        elif self.undo is not None and _refused(rec.payload, self.undo[1]):
            self.halt, self.undo = self.undo[0], None


def _refused(payload: bytes, prefix: str) -> bool:
    """Whether this METRICS record is the engine's refusal of the command `prefix` names."""
    if b'"operator-refused"' not in payload:     # most METRICS records: no JSON parse
        return False
    doc = unpack_json(payload)
    return doc.get("alert") == "operator-refused" and str(doc.get("detail", "")).startswith(prefix)


def _halt_after(halt: OperatorHalt | None, doc: dict, ts_ns: int) -> OperatorHalt | None:
    """The operator's kill in force after this OPERATOR_CMD: a kill of everything by an operator
    starts one, an enable of everything ends it; anything else leaves it."""
    if doc.get("scope", "all") != "all":
        return halt
    if doc.get("command") == "kill" and doc.get("actor") != SESSION_ACTOR:
        return OperatorHalt(str(doc.get("actor", "")), str(doc.get("reason", "")), int(ts_ns))
    if doc.get("command") == "enable":
        return None
    return halt
