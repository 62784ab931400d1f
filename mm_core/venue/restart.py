"""What a venue started again under an existing session name carries over from its earlier run.

Owns the MoldUDP64 session name of each run (the names used so far, one a line, in the session
directory's `mold.sessions`), where each MoldUDP64 session's ITCH messages are stored
(`<name>.itch`, a SessionLog, so that re-requests for an earlier run's session are still
answered), and what was already handed out: tokens, order references, match numbers and the
positions executions built, from the SoupBinTCP session logs, and the order references and
match numbers earlier MoldUDP64 sessions published (the background flow's among them). After a
power loss both may lack the last numbers the wire carried: highwater.py's reservation covers
those (the server resumes past all three).

Why a new MoldUDP64 name: the public book (background flow included) lived only in memory, so
after a crash the venue cannot go on with the orders clients still show, nor knows whether the
last messages it stored reached the wire. Numbering again from 1 under the old name would look
like duplicates to every client (silently dropped, books frozen); a new name is a session change
every client sees, and the new session's start of day rebuilds the books. The SoupBinTCP session
itself goes on: its logs are durable. Only a session that did not end may go on: one whose end
of day is complete (OUCH End of Day in every session log, ITCH End of Messages stored) is
refused; one killed during its end of day is started again to finish it
(unfinished_end_of_day).
Must not know about sockets or clocks.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mm_core.protocol import itch, ouch
from mm_core.protocol.errors import ProtocolError
from mm_core.protocol.moldudp64 import SESSION_WIDTH
from mm_core.venue.errors import SessionEndedError, SessionLogError
from mm_core.venue.session_log import SessionLog, record_line

MOLD_SESSIONS = "mold.sessions"


def mold_store_path(session_dir: Path, name: str) -> Path:
    """Where the ITCH messages of MoldUDP64 session `name` are stored."""
    return session_dir / f"{name}.itch"


def mold_session(session_dir: Path, session: str, restarted: bool) -> str:
    """The MoldUDP64 session name of this run, recorded (fsynced) before anything is published:
    the session's own name on a first start (also after starts that failed before writing any
    message: `restarted` is has_written()), a name no earlier run used on a restart."""
    path = session_dir / MOLD_SESSIONS
    used = _used_names(path)
    store = mold_store_path(session_dir, session)
    if not restarted and set(used) == {session} and (not store.exists()
                                                    or store.stat().st_size == 0):
        return session             # only a start that failed before publishing took it
    if restarted and not used:
        used = [session]           # logs written before the names were recorded

    def free(name: str) -> bool:
        return name not in used and not mold_store_path(session_dir, name).exists()

    name = session if free(session) and not used else next(c for c in _renamed(session)
                                                           if free(c))
    record_line(path, name, "the MoldUDP64 session")
    return name


def unfinished_end_of_day(session_dir: Path, session: str,
                          previous: dict[str, list[bytes]]) -> list[str] | None:
    """The users whose session log still needs its close-outs and End of Day when session
    `session` began its end of day without finishing it (the venue was killed during it: the
    restart finishes it); None when the end of day did not begin. It began when a session log
    (`previous`: its OUCH messages by user) ends with End of Day ('E') or a MoldUDP64 store
    ends with End of Messages ('C'). Raises SessionEndedError when it is complete: every
    session log ends with 'E' and a store with 'C'. Called before anything is written."""
    unfinished = [u for u, payloads in previous.items()
                  if not _is_event(payloads[-1], ouch.decode_outbound, "E")]
    ended_store = next((name for name, last in _store_tails(session_dir, session)
                        if last is not None and _is_event(last, itch.decode, "C")), None)
    if ended_store is not None and not unfinished:
        raise SessionEndedError(f"session {session} ended cleanly (MoldUDP64 session "
                                f"{ended_store} ends with End of Messages, every session log "
                                f"with End of Day): it cannot start again; start a new session "
                                f"under a new name")
    began = ended_store is not None or len(unfinished) < len(previous)
    return unfinished if began else None


def has_written(session_dir: Path, session: str, previous: dict[str, list[bytes]]) -> bool:
    """Whether an earlier run of session `session` wrote any message (a session log or a
    MoldUDP64 store): a start that failed before its first message leaves nothing to go on."""
    return bool(previous) or any(last is not None
                                 for _, last in _store_tails(session_dir, session))


def _store_tails(session_dir: Path, session: str):
    """(name, last durable message or None) of each MoldUDP64 store on disk of the session."""
    for name in dict.fromkeys(_used_names(session_dir / MOLD_SESSIONS) + [session]):
        path = mold_store_path(session_dir, name)
        if not path.is_file():
            continue
        store = SessionLog(path, readonly=True)
        try:
            last = store.messages(store.durable_sequence, 1) if store.durable_sequence else []
        finally:
            store.close()
        yield name, (last[0] if last else None)


def _is_event(raw: bytes, decode, code: str) -> bool:
    """Whether `raw` is a System Event (ITCH or OUCH, by `decode`) with event code `code`."""
    if raw[:1] != b"S":
        return False
    try:
        return decode(raw).event_code == code
    except ProtocolError:
        return False


def earlier_mold_stores(session_dir: Path, current: str) -> dict[str, SessionLog]:
    """The stores (read-only) of the MoldUDP64 sessions earlier runs used and that are still
    on disk, by name."""
    stores: dict[str, SessionLog] = {}
    try:
        for name in dict.fromkeys(_used_names(session_dir / MOLD_SESSIONS)):
            path = mold_store_path(session_dir, name)
            if name != current and path.is_file():
                stores[name] = SessionLog(path, readonly=True)
    except SessionLogError:
        for store in stores.values():
            store.close()
        raise
    return stores


def published_high_water(stores: Iterable[SessionLog], chunk: int = 4096) -> tuple[int, int]:
    """(one past the highest order reference, one past the highest match number) that earlier
    MoldUDP64 sessions published: the background flow's orders and trades are in no session log,
    but ITCH showed them, and both numbers are day-unique. An engine hands both out in rising
    order and publishes in that order, so each store is read backwards only until its last
    Add Order and Order Executed."""
    ref = match = 0
    for store in stores:
        last_ref = last_match = None
        hi = store.durable_sequence
        while hi >= 1 and (last_ref is None or last_match is None):
            lo = max(hi - chunk + 1, 1)
            for raw in reversed(store.messages(lo, hi - lo + 1)):
                kind = raw[:1]
                if last_ref is None and kind in _ADDS:
                    last_ref = _decode_itch(store, raw).order_ref
                elif last_match is None and kind in _EXECUTIONS:
                    last_match = _decode_itch(store, raw).match_number
            hi = lo - 1
        ref, match = max(ref, last_ref or 0), max(match, last_match or 0)
    return ref + 1, match + 1


_ADDS = (b"A", b"F")            # ITCH Add Order (with or without MPID)
_EXECUTIONS = (b"E", b"C", b"P")   # ITCH Order Executed (with or without price), Trade


def _decode_itch(store: SessionLog, raw: bytes):
    try:
        return itch.decode(raw)
    except ProtocolError as exc:
        raise SessionLogError(f"{store.path}: a message is not ITCH: {exc}") from exc


def _used_names(path: Path) -> list[str]:
    try:
        return path.read_text("ascii").split()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionLogError(f"cannot read {path}: {exc}") from exc


def unused_name(log_dir: Path, session: str) -> str:
    """`session`, or the first of its renamings (R1, R2, ...) no session in `log_dir` has used."""
    return next(name for name in itertools.chain([session], _renamed(session))
                if not (log_dir / name).exists())


def _renamed(session: str):
    """Candidate names for a restart: the session name ending in R1, R2, ... (<= 10 characters)."""
    for n in itertools.count(1):
        suffix = f"R{n}"
        yield session[:SESSION_WIDTH - len(suffix)] + suffix


@dataclass(frozen=True, slots=True)
class HandedOut:
    """Identifiers the earlier run gave out, which the new run must not give out again."""

    tokens: frozenset[tuple[str, str]]     # (owner, token): day-unique, whatever became of them
    next_ref: int                          # one past the highest order reference
    next_match: int                        # one past the highest match number
    positions: dict[str, dict[str, int]]   # owner -> symbol -> net executed shares (buys +)


def handed_out(payloads_by_owner: dict[str, list[bytes]]) -> HandedOut:
    """Read the session logs' OUCH messages (owner -> payloads) for what was handed out, and
    the positions their executions built."""
    tokens: set[tuple[str, str]] = set()
    positions: dict[str, dict[str, int]] = {}
    ref = match = 0
    for owner, payloads in payloads_by_owner.items():
        orders: dict[str, tuple[str, int]] = {}    # token -> (symbol, +1 buy / -1 sell)
        held = positions.setdefault(owner, {})
        for seq, payload in enumerate(payloads, 1):
            try:
                msg = ouch.decode_outbound(payload)
            except ProtocolError as exc:
                raise SessionLogError(f"session log of {owner}: message {seq} is not OUCH: "
                                      f"{exc}") from exc
            if isinstance(msg, (ouch.Accepted, ouch.Replaced)):
                tokens.add((owner, msg.token))
                ref = max(ref, msg.order_ref)
                orders[msg.token] = (msg.stock, 1 if msg.side == "B" else -1)
            elif isinstance(msg, ouch.Rejected):
                tokens.add((owner, msg.token))
            elif isinstance(msg, ouch.Executed):
                match = max(match, msg.match_number)
                if msg.token not in orders:
                    raise SessionLogError(f"session log of {owner}: message {seq} executes "
                                          f"{msg.token!r}, which it never accepted")
                symbol, sign = orders[msg.token]
                held[symbol] = held.get(symbol, 0) + sign * msg.executed_shares
    return HandedOut(frozenset(tokens), ref + 1, match + 1, positions)
