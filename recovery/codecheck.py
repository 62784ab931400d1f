"""Which code wrote a journal, and whether replaying it on the running code may be trusted: the
fingerprint every SESSION_START carries (mm_core.buildid) against the running code's.

Replay reproduces the engine's decisions bit for bit only on the code that decided them, so a
journal any of whose sessions was written by other code, or by code that did not name itself
(SESSION_START of layout 1, or records before any SESSION_START), is refused with CodeMismatch
unless the operator accepts the change; then the differences are kept for the audit trail (recovery
journals them as a RECON "code-change" record) and no snapshot is written from such a replay. The
acceptance holds for the code that gave it: later recoveries and the standby on that code take the
sessions the record lists as accepted (accepted_sessions), other code is still refused.
Snapshots list the sessions they cover, so recovery reads only the journal after the newest one.
Owns the comparison (its error is recovery.errors.CodeMismatch); must not write the journal.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from journal import Reader
from journal.catalogue import RecordType, code_fingerprint, pack, unpack
from journal.errors import JournalError
from mm_core import buildid
from mm_core.tagclaim import claim_tag
from recovery.errors import CodeMismatch, JournalUnavailable
from recovery.recondocs import recon_documents

__all__ = ["RECON_CODE_CHANGE", "SessionCode", "CodeCheck", "running_fingerprint", "journal_sessions",
           "session_start", "accepted_sessions"]

RECON_CODE_CHANGE = "code-change"   # RECON kind: recovery ran on code other than the journal's


@dataclass(frozen=True)
class SessionCode:
    """The code one session of a journal ran: its SESSION_START (or, for records no SESSION_START
    precedes, the first of them with session_id 0), and its fingerprint or buildid.UNKNOWN."""

    seq: int
    session_id: int
    fingerprint: str

    def to_json(self) -> dict:
        return {"seq": self.seq, "session_id": self.session_id, "fingerprint": self.fingerprint}


def running_fingerprint() -> str:
    """The running code's fingerprint, or UNKNOWN when its sources cannot be read or its compiled
    module was built from other sources (then no journal matches it)."""
    return _running()[0]


def _running() -> tuple[str, str]:
    """(the running code's fingerprint, "") or (UNKNOWN, why it cannot be named)."""
    try:
        return buildid.fingerprint(), ""
    except buildid.BuildIdError as exc:
        return buildid.UNKNOWN, str(exc)


def session_start(session_id: int = 1, *, engine=None, now_ns: int = 0, **fields) -> bytes:
    """A SESSION_START payload naming the running code, for a shell that starts a session without
    mm_core.session (the drills' engine process); `fields` as catalogue.pack takes them. Given the
    session's fresh `engine`, it names the token tag of a session starting at `now_ns`
    (mm_core.sessiontag, claimed by mm_core.tagclaim) and the engine's tokens carry that tag from here on."""
    running = running_fingerprint()
    if engine is not None:
        tag = claim_tag(engine.oms.prefix, now_ns)
        engine.oms.start_session(tag)
        fields["token_tag"] = tag.encode()
    return pack(RecordType.SESSION_START, session_id=session_id,
                code_fingerprint=b"" if running == buildid.UNKNOWN else bytes.fromhex(running), **fields)


def session_code(seq: int, payload: bytes) -> SessionCode:
    """The SessionCode of one SESSION_START record."""
    start = unpack(RecordType.SESSION_START, payload)
    return SessionCode(seq, int(start["session_id"]), code_fingerprint(start) or buildid.UNKNOWN)


def journal_sessions(reader: Reader,
                     covered: tuple[int, tuple[SessionCode, ...]] | None = None) -> list[SessionCode]:
    """Every session of the journal `reader` reads, in order, from one bulk read of its
    SESSION_START records; records before the first of them count as a session of unknown code.
    With `covered` — (seq, sessions) of a snapshot that matches the journal up to seq
    (recovery.snapshot.covered_sessions) — only the records after seq are read: reading a
    journal validates it, and the part a snapshot covers need not be (recovery's time)."""
    if covered is not None:
        seq, sessions = covered[0], list(covered[1])
        if reader.last_seq <= seq:
            return sessions
        starts = reader.read_fixed(RecordType.SESSION_START, seq + 1, None)
    else:
        sessions, starts = [], reader.read_fixed(RecordType.SESSION_START)
    sessions += [SessionCode(int(s["seq"]), int(s["session_id"]), code_fingerprint(s) or buildid.UNKNOWN)
                 for s in starts]
    first = reader.first_seq
    if len(reader) and (not sessions or sessions[0].seq > first):
        sessions.insert(0, SessionCode(first, 0, buildid.UNKNOWN))
    return sessions


def accepted_sessions(reader: Reader, running: str) -> set[tuple[int, str]]:
    """(seq, fingerprint) of every session an earlier recovery on the `running` code accepted: its
    RECON code-change record lists them. Such a session was replayed on this code once and the
    operator chose to go on; asking again at every later recovery would train them to pass the
    override by habit, and it would keep the standby from writing snapshots for good."""
    accepted: set[tuple[int, str]] = set()
    for _, doc in recon_documents(reader):
        if doc.get("kind") != RECON_CODE_CHANGE or doc.get("running") != running or not doc.get("accepted"):
            continue
        for s in doc.get("journal", ()):
            if isinstance(s, dict) and isinstance(s.get("seq"), int) and isinstance(s.get("fingerprint"), str):
                accepted.add((s["seq"], s["fingerprint"]))
    return accepted


@dataclass
class CodeCheck:
    """The running code and the operator's choice (`accept`: recover on other code anyway). Fed
    the journal's sessions; a session of other or unknown code raises CodeMismatch, or when
    accepted is kept in `differing`."""

    accept: bool = False
    running: str = field(default_factory=running_fingerprint)
    differing: list[SessionCode] = field(default_factory=list)
    accepted: set[tuple[int, str]] = field(default_factory=set)    # (seq, fingerprint): accepted_sessions

    def matches(self, code: SessionCode) -> bool:
        if self.running == buildid.UNKNOWN:
            return False
        return code.fingerprint == self.running or (code.seq, code.fingerprint) in self.accepted

    def remember_accepted(self, reader: Reader) -> None:
        """Take the sessions earlier recoveries on this code accepted (accepted_sessions)."""
        if self.running != buildid.UNKNOWN:
            self.accepted |= accepted_sessions(reader, self.running)

    def check(self, sessions: list[SessionCode], path: str = "the journal") -> None:
        other = [s for s in sessions if not self.matches(s)]
        if other and not self.accept:
            raise CodeMismatch(path, other, self.running, _running()[1] if self.running == buildid.UNKNOWN else "")
        self.differing += other

    def check_journal(self, path: str, snapshots: str | None = None, setup: str | None = None) -> None:
        """check() every session of the journal at `path` (read-only: before anything is written);
        the sessions a snapshot in `snapshots` (of an engine built as `setup` says) lists are taken
        from it, so only the journal after it is read."""
        from recovery.snapshot import covered_sessions     # (snapshot imports this module)
        try:
            with Reader(path) as reader:
                covered = covered_sessions(snapshots, reader, setup) if snapshots else None
                sessions = journal_sessions(reader, covered)
                if any(not self.matches(s) for s in sessions):
                    self.remember_accepted(reader)      # read only when something differs
        except JournalError as exc:
            raise JournalUnavailable(f"cannot open the journal at {path}: {exc}") from exc
        self.check(sessions, path)

    def to_json(self) -> dict:
        return {"running": self.running, "accepted": self.accept,
                "journal": [s.to_json() for s in self.differing]}
