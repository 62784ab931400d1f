"""The venue-disconnect drill: the venue's order-entry session is dropped mid-stream (a loopback
relay between the engine process and the venue closes both ends), the engine reconnects asking for
its last seen sequence + 1, and every venue message must reach its journal exactly once.

Owns the relay, the drop schedule (seeded) and the verdict, judged against the venue's own session
log: the journal's sequenced venue messages are 1..N without a gap or a repeat, byte-equal to the
venue's; each re-login asked for the right sequence; the engine's final state matches the venue's,
except orders whose bytes died with a dropped connection, which it must hold as unanswered.
Must not reconnect anything itself: the engine process does (recovery.drills._engine_proc).
"""
from __future__ import annotations

import json
import random
import selectors
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from journal import Reader
from journal.catalogue import RecordType, raw_bytes, unpack
from mm_core.protocol import soupbintcp
from recovery.reconcile import venue_view
from recovery.drills.common import (
    WAIT_S, DrillError, DrillReport, DrillVenue, EngineProcess, LiveSession, compare_with_venue,
    format_table, run_live_drill, run_rows,
)

__all__ = ["DisconnectSettings", "DisconnectRow", "DisconnectReport", "run_venue_disconnect_drill",
           "exactly_once", "sent_at_drops", "split_lost_in_drops"]

_SEQUENCED, _ACCEPTED = ord("S"), ord("A")
_LOGIN_ACCEPTED = ord("A")
_UNANSWERED = ("pending-new", "outcome-unknown")
_NEW_TOKEN = (ord("O"), ord("U"))     # enter and replace: the venue's log names their tokens


class DropRelay:
    """Loopback TCP relay to the venue's SoupBinTCP port, one client connection at a time;
    `drop()` closes both ends of the current one, as a venue dropping the session does."""

    def __init__(self, venue_addr: tuple[str, int]) -> None:
        self.venue_addr = venue_addr
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._drop = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-drop-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            try:
                upstream = socket.create_connection(self.venue_addr, timeout=WAIT_S)
            except OSError:
                client.close()
                continue
            self._pump(client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        with client, upstream, selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            while not (self._stop.is_set() or self._drop.is_set()):
                for key, _ in sel.select(0.01):
                    try:
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return
            self._drop.clear()
            for sock in (upstream, client):       # the venue's side first: it ends the session
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop(self) -> None:
        self._drop.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        self.listener.close()


def exactly_once(journal: str, venue_messages: list[bytes]) -> tuple[list[int], list[int], list[int]]:
    """(repeated, missing, different) venue sequences: the journal's sequenced VENUE_MSG records
    against the venue's session log (from where the session joined, its first LoginAccepted's
    sequence, up to the highest sequence the journal holds)."""
    seen: dict[int, bytes] = {}
    repeated = []
    joined = 0
    with Reader(journal) as reader:
        for rec in reader.records(rtypes=[RecordType.VENUE_MSG]):
            msg = unpack(RecordType.VENUE_MSG, rec.payload)
            if int(msg["packet_type"]) == _ACCEPTED and not joined:
                joined = soupbintcp.decode(raw_bytes(msg), soupbintcp.Direction.FROM_SERVER).sequence
            if int(msg["packet_type"]) != _SEQUENCED:
                continue
            seq = int(msg["soup_seq"])
            if seq in seen:
                repeated.append(seq)
            seen[seq] = raw_bytes(msg)[3:]
    top = max(seen, default=0)
    missing = [s for s in range(joined or 1, top + 1) if s not in seen]
    different = [s for s, raw in seen.items()
                 if s > len(venue_messages) or venue_messages[s - 1][:len(raw)] != raw]
    return repeated, missing, sorted(different)


def sent_at_drops(journal: str, venue_messages: list[bytes]) -> set[str]:
    """Tokens of orders journaled on a session that was then dropped, after the last order of that
    session the venue received (TCP keeps order: everything before that one arrived too); their
    bytes may have died with the connection."""
    known = venue_view(enumerate(venue_messages, start=1)).orders
    session: list[tuple[str, int]] = []        # (token, message type) sent on the current session
    at_drops: set[str] = set()
    logins = 0
    with Reader(journal) as reader:
        for rec in reader.records(rtypes=[RecordType.VENUE_MSG, RecordType.ORDER_SENT]):
            msg = unpack(rec.rtype, rec.payload)
            if rec.rtype == RecordType.ORDER_SENT:
                session.append((bytes(msg["token"]).rstrip(b"\0 ").decode(), int(msg["msg_type"])))
            elif int(msg["packet_type"]) == _LOGIN_ACCEPTED:
                logins += 1
                if logins > 1:
                    received = [i for i, (t, kind) in enumerate(session) if kind in _NEW_TOKEN and t in known]
                    at_drops |= {t for t, _ in session[received[-1] + 1 if received else 0:]}
                session.clear()
    return at_drops


def split_lost_in_drops(state: dict, venue_messages: list[bytes], at_drops: set[str]) -> tuple[dict, list[str]]:
    """(state without them, tokens): orders sent as a session dropped that the venue never received
    and the engine still holds as unanswered (pending or outcome unknown: it fails closed on them,
    it does not believe them live). Any other order the venue lacks stays a difference."""
    known = venue_view(enumerate(venue_messages, start=1)).orders
    lost = sorted(t for t, (status, _, filled, _) in state["orders"].items()
                  if t in at_drops and t not in known and not filled and status in _UNANSWERED)
    orders = {t: o for t, o in state["orders"].items() if t not in lost}
    return dict(state, orders=orders), lost


@dataclass(frozen=True)
class DisconnectSettings:
    drops: int = 3
    seed: int = 1
    journal_dir: str | None = None


@dataclass
class DisconnectRow:
    drop: int
    last_seen: int = -1               # the engine's last venue sequence when the session dropped
    requested: int = -1               # the sequence its re-login asked for
    missed: int = 0                   # venue messages sent while it was away (replayed to it)
    reconnect_s: float = -1.0         # drop -> first quote on the new session
    notes: str = ""

    @property
    def passed(self) -> bool:
        return self.requested == self.last_seen + 1 and self.reconnect_s >= 0


@dataclass
class DisconnectReport(DrillReport):
    rows: list[DisconnectRow] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    different: list[int] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    lost_in_drops: list[str] = field(default_factory=list)   # see split_lost_in_drops
    venue_messages: int = 0

    @property
    def passed(self) -> bool:
        return (bool(self.rows) and all(r.passed for r in self.rows) and not self.repeated
                and not self.missing and not self.different and not self.differences)

    def as_dict(self) -> dict:
        return {"drill": "venue-disconnect", "seed": self.seed, "journal": self.journal,
                "passed": self.passed, "seconds": round(self.seconds, 3),
                "venue_messages": self.venue_messages, "repeated": self.repeated,
                "missing": self.missing, "different": self.different, "differences": self.differences,
                "lost_in_drops": self.lost_in_drops,
                "rows": [asdict(r) | {"passed": r.passed} for r in self.rows]}

    def table(self) -> str:
        rows = [(r.drop, r.last_seen, r.requested, r.missed,
                 f"{r.reconnect_s:.3f}" if r.reconnect_s >= 0 else "-",
                 "PASS" if r.passed else "FAIL" + (f" ({r.notes})" if r.notes else "")) for r in self.rows]
        return format_table(("drop", "last seen", "requested", "missed", "reconnect s", "result"), rows)


def _one_drop(proc: EngineProcess, relay: DropRelay, venue: DrillVenue, rng: random.Random,
              row: DisconnectRow) -> DisconnectRow:
    # mid-stream: a while after trading (re)started, while orders and fills flow
    if proc.expect("", rng.uniform(0.3, 0.9))[0] == "EOF":
        raise DrillError(f"the engine process ended by itself: {proc.log_tail()}")
    relay.drop()
    dropped = time.monotonic_ns()
    kind, text = proc.expect("C")
    if kind != "C":
        row.notes = f"the engine did not notice the drop ({kind})"
        return row
    row.last_seen = json.loads(text)["venue_seq"]
    kind, text = proc.expect("L")
    if kind != "L":
        row.notes = f"no re-login ({kind})"
        return row
    row.requested = int(text)
    row.missed = max(0, len(venue.messages()) - row.last_seen)
    kind, text = proc.expect("Q")
    if kind != "Q":
        row.notes = f"no quote after the reconnection ({kind})"
        return row
    row.reconnect_s = (int(text.split()[0]) - dropped) / 1e9
    return row


def run_venue_disconnect_drill(settings: DisconnectSettings,
                               progress: Callable[[DisconnectRow], None] | None = None) -> DisconnectReport:
    """Drop the session `settings.drops` times mid-stream; see the module docstring. The result is
    journaled as a DRILL_RESULT record in the engine's journal."""
    def body(live: LiveSession, journal: str, report: DisconnectReport, rng: random.Random) -> None:
        venue = live.venue
        relay = live.closing(DropRelay(("127.0.0.1", venue.ports.ouch)))
        proc = live.start_engine(journal, 30.0 + 10.0 * settings.drops, ouch=relay.port,
                                 reconnects=settings.drops)
        run_rows(settings.drops, lambda n: _one_drop(proc, relay, venue, rng, DisconnectRow(n)),
                 report.rows, progress)
        state = live.stop_engine()
        log = venue.settled_messages()
        report.venue_messages = len(log)
        report.repeated, report.missing, report.different = exactly_once(journal, log)
        state, report.lost_in_drops = split_lost_in_drops(state, log, sent_at_drops(journal, log))
        report.differences = compare_with_venue(state, log)

    return run_live_drill("disconnect", "drops", settings.drops, settings, DisconnectReport, body)
