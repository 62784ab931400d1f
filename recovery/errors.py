"""The recovery package's exception tree: one base, a few kinds the CLI and drills tell apart.

Owns only the classes. Divergences and reconciliation differences are results, not exceptions:
they are reported and keep the engine HALTED. Exceptions here mean recovery could not proceed.
"""
from __future__ import annotations


class RecoveryError(Exception):
    """Base of every recovery error."""


class JournalUnavailable(RecoveryError):
    """The journal cannot be opened: missing, not a journal, or a live writer still holds it."""


class JournalDamaged(RecoveryError):
    """The journal stops at an invalid record the writer's open did not repair (behind a sealed
    segment whose durable summary it trusted): the state replay rebuilt ends there, so trading
    must not resume from it."""


class VenueUnavailable(RecoveryError):
    """The venue refused the login, closed the session, or did not answer in time."""


class BadVenueMessage(RecoveryError, ValueError):
    """A venue message handed to reconciliation does not decode as OUCH 4.2 outbound."""

    def __init__(self, sequence: int, reason: str) -> None:
        super().__init__(f"venue message {sequence}: {reason}")
        self.sequence = sequence


class BadRecoveryRecord(RecoveryError, ValueError):
    """A RECON record in the journal does not describe a known resolution."""


class SecondSession(RecoveryError):
    """A SESSION_START after records of an earlier session: a new session began with a fresh
    engine (a journal written before `mmaudit run` refused used journals), which one replay
    through one engine cannot reproduce. Recovery stops rather than rebuild a wrong state."""

    def __init__(self, seq: int, session_id: int) -> None:
        super().__init__(f"journal record {seq} starts session {session_id or '?'} after records of an "
                         f"earlier session: it was run on a fresh engine, which a replay through one "
                         f"engine cannot reproduce; recover from a journal that holds one session")
        self.seq = seq
        self.session_id = session_id


class RecoverySetupError(RecoveryError, ValueError):
    """Bad recovery settings: config, symbols, limits or credentials that cannot work."""


class CodeMismatch(RecoveryError):
    """The journal was written by other code than the running one (or by code that did not name
    itself): replay would not reproduce its decisions. Names both fingerprints; recovery proceeds
    only when the operator accepts the change (--accept-code-change)."""

    def __init__(self, path: str, sessions, running: str, why_unknown: str = "") -> None:
        names = ", ".join(f"session {s.session_id or '?'} (seq {s.seq}) code {s.fingerprint[:16]}"
                          for s in sessions[:5])
        if len(sessions) > 5:
            names += f" and {len(sessions) - 5} more"
        super().__init__(
            f"{path} was written by other code than this one: {names}; this code is {running[:16]}"
            f"{f' ({why_unknown})' if why_unknown else ''}. "
            f"Replay would not reproduce its decisions: recover on the code that wrote it, or pass "
            f"--accept-code-change to recover anyway (the change is journaled; snapshots of other "
            f"code are not used)")
        self.path = path
        self.sessions = list(sessions)
        self.journal_fingerprints = sorted({s.fingerprint for s in sessions})
        self.running = running
