"""Journal replay through a fresh engine: rebuilds the OMS, inventory, risk state and the last
venue sequence numbers seen, and proves the engine decides today what it decided live.

Owns the walk over records in sequence order: inputs become engine events exactly as the runner fed
them (mm_core.runnerrecords.engine_events owns that mapping), RECON records re-apply what recovery did, and
every order the engine produces must match the next ORDER_SENT record (else: a determinism failure).
Given a recovery.codecheck.CodeCheck, each SESSION_START is checked against the running code as the
walk meets it (a session of other code stops the replay, or when accepted ends its snapshots). A
SESSION_START after records of an earlier session (a second session, begun on a fresh engine) is
refused with SecondSession: one engine cannot replay both.
Must not talk to a venue or write the journal.
"""
from __future__ import annotations

import collections
import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from audit.phc import phc_leap, phc_offset
from journal import Reader
from journal.catalogue import (RecordType, TsSource, order_sent_raw, token_tag, unpack, unpack_json,
                               venue_fields)
from journal.errors import JournalError
from mm_core.engine import PacketRun
from mm_core.buildid import UNKNOWN
from mm_core.events import MarketData, Reconciled, SendOrder
from mm_core.oms import OmsError
from mm_core.runnerrecords import TAI_MINUS_UTC_S, engine_events
from recovery.blocks import Blocks, ListedRecords, listed_run
from recovery.codecheck import CodeCheck, SessionCode, session_code
from recovery.errors import BadRecoveryRecord, JournalUnavailable, SecondSession
from recovery.reconcile import apply, reported_corrections, resolution_from_json
from recovery.snapshot import Snapshot, engine_setup, journal_witness, latest_snapshot, replay_setup, write_snapshot

__all__ = ["Divergence", "ReplayResult", "replay", "replay_journal", "RECON_BEGIN", "RECON_RESOLUTION", "UNSENT_ALL",
           "RECON_OUTCOME", "RECON_FINDING"]

# RECON record kinds ({"kind": ...} in the JSON document).
RECON_BEGIN = "begin"            # recovery started: the engine is told it is not reconciled
RECON_RESOLUTION = "resolution"  # one resolution applied to the engine (re-applied by replay)
RECON_OUTCOME = "outcome"        # reconciled or not: the engine is told so
RECON_FINDING = "finding"        # what reconciliation found (for the record; no engine effect)
# `unsent_orders` of a record journaled before anything was decided (a repaired tail whose replay
# failed): every order replay has pending there was never sent
UNSENT_ALL = "all"

_INPUTS = frozenset(map(int, (RecordType.MD_PACKET, RecordType.VENUE_MSG, RecordType.VENUE_MSG_LONG,
                               RecordType.TIMER, RecordType.CLOCK_SAMPLE, RecordType.OPERATOR_CMD, RecordType.RECON)))
_SESSION_START = int(RecordType.SESSION_START)   # compared per record: a plain int
_ORDER_SENT, _RECON, _CLOCK_SAMPLE = int(RecordType.ORDER_SENT), int(RecordType.RECON), int(RecordType.CLOCK_SAMPLE)
_VENUE_MSG, _VENUE_MSG_LONG = int(RecordType.VENUE_MSG), int(RecordType.VENUE_MSG_LONG)
_MD_PACKET = int(RecordType.MD_PACKET)
_PHC = int(TsSource.HW_PHC)      # TAI-stamped packets are not batched (runnerrecords.engine_time)
_MAX_DIVERGENCES = 100
_RUN_MAX = 4096                  # MD_PACKET records gathered into one batch at most


@dataclass(frozen=True, slots=True)
class Divergence:
    """An order the replay and the journal disagree on (journal sequence where it showed)."""

    seq: int
    detail: str


@dataclass
class ReplayResult:
    engine: object
    records: int = 0
    events: int = 0
    orders_checked: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    divergence_count: int = 0
    unsent: list[SendOrder] = field(default_factory=list)   # decided, never journaled: never sent
    journaled_venue_seqs: set[int] = field(default_factory=set)
    last_venue_seq: int = 0          # highest SoupBinTCP sequence journaled
    utc_offset_s: int = TAI_MINUS_UTC_S   # in force after the last record (its last clock sample's)
    utc_leap: int = 0                     # the leap flag in force with it (audit.phc.phc_leap)
    first_seq: int = 0
    last_seq: int = 0
    recon_records: int = 0
    # venue sequence of a trade correction -> the RECON finding record that reported it
    corrections_reported: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    final: dict = field(default_factory=dict)      # the engine as the replay left it
    snapshot: str = ""                             # the snapshot it resumed from, if any
    snapshots_skipped: list[str] = field(default_factory=list)
    snapshots_written: int = 0
    # where the journal ended early on an invalid record, or None: the replay stopped there, and
    # nothing after it is in this state. From a reader (replay_journal) reason, segment, offset and
    # seq; from the standby's tailer reason (naming the place) and seq
    stopped: dict | None = None
    # sessions of other (or unknown) code the walk met and the CodeCheck accepted
    code_changes: list[SessionCode] = field(default_factory=list)
    # every session of the journal up to where the replay got, with its code (those before a
    # resumed snapshot from it; None when that snapshot did not list them)
    sessions: list[SessionCode] | None = field(default_factory=list)

    @property
    def state_hash(self) -> str:
        return self.final.get("state_hash", "")

    @property
    def deterministic(self) -> bool:
        return self.divergence_count == 0

    def summary(self) -> dict:
        """The replay and the engine as the replay left it (later changes do not show here)."""
        return {**(self.final or self._snapshot()), "stopped": self.stopped}

    def _snapshot(self) -> dict:
        engine = self.engine
        open_orders, unknown = engine.oms.counts()
        return {
            "records": self.records, "events": self.events, "orders_checked": self.orders_checked,
            "divergences": self.divergence_count,
            "first_divergences": [f"seq {d.seq}: {d.detail}" for d in self.divergences[:5]],
            "unsent_orders": [a.intent.token for a in self.unsent],
            "journal_seqs": [self.first_seq, self.last_seq],
            "last_venue_seq": self.last_venue_seq, "engine_venue_seq": engine.venue_seq,
            "md_next_expected": engine.tracker.next_expected, "open_orders": open_orders,
            "unknown_outcome": unknown, "trading_state": engine.risk.state.name,
            "positions": {s.name: engine.inventory.position[s.id] for s in engine.symbols.symbols
                          if engine.inventory.position[s.id]},
            "state_hash": engine.state_hash(), "seconds": round(self.seconds, 6),
            "snapshot": self.snapshot, "snapshots_skipped": self.snapshots_skipped,
            "code_changes": [c.to_json() for c in self.code_changes],
        }


class _Walk:
    """The replay's bookkeeping between records (see replay())."""

    def __init__(self, engine, result: ReplayResult, snapshot_every: int = 0, snapshot_dir=None,
                 journal_id: str = "", witness: Callable[[int], str] | None = None,
                 code: CodeCheck | None = None, settings: dict | None = None) -> None:
        self.engine = engine
        self.result = result
        self.expected: collections.deque[SendOrder] = collections.deque()
        self.every = snapshot_every
        self.snapshot_dir = snapshot_dir
        self.journal_id = journal_id
        self.witness = witness
        self.settings = settings            # replay_setup: what each snapshot is made under
        self.since_snapshot = 0
        self.code = code
        self.unnamed = True                 # no SESSION_START seen yet: records here are of unknown code
        self.resumed = False                # from a snapshot: its records came before these

    def diverge(self, seq: int, detail: str) -> None:
        r = self.result
        r.divergence_count += 1
        if len(r.divergences) < _MAX_DIVERGENCES:
            r.divergences.append(Divergence(seq, detail))

    def feed(self, event) -> None:
        self.result.events += 1
        self.since_snapshot += 1
        self.take(self.engine.on_event(event))

    def feed_run(self, event, source) -> None:
        """`event` (its record already pulled) and the MD_PACKET records right after it, through
        Engine.on_packet_run: the same checks, in the same order, as feeding them one by one
        (a packet that ends quiet has no actions, so the records after it see nothing expected)."""
        run, recs = source.packet_run(event, _RUN_MAX)
        engine, result = self.engine, self.result
        i, n = 0, len(run.events)
        while i < n:
            taken, actions = engine.on_packet_run(run, i)
            if taken > 1:
                self.before_quiet(recs, i + 1, i + taken)
            result.events += taken
            self.since_snapshot += taken
            self.take(actions)
            i += taken
            if i < n:
                self.before(recs.record(i))

    def before_quiet(self, recs, start: int, stop: int) -> None:
        """before() of the run's MD_PACKET records start..stop-1, each following a packet which
        ended quiet (nothing is expected, and the batch path writes no snapshots): only the
        counts and sequence move."""
        if self.every:
            for i in range(start, stop):
                self.before(recs.record(i))
            return
        r = self.result
        r.records += stop - start
        if not r.first_seq:
            r.first_seq = recs.seq(start)
        r.last_seq = recs.seq(stop - 1)

    def take(self, actions) -> None:
        for action in actions:
            if type(action) is SendOrder:
                self.expected.append(action)

    def before(self, rec) -> None:
        """Runs as each record is pulled: every earlier record's events have been fed."""
        r = self.result
        r.records += 1
        if not r.first_seq:
            r.first_seq = rec.seq
        r.last_seq = rec.seq
        rtype = rec.rtype
        if rtype == _SESSION_START or self.unnamed:
            self.session(rec)
        if rtype == _ORDER_SENT:
            self.check_order(rec)
            return
        if rtype not in _INPUTS:
            return
        doc = self.recon_doc(rec) if rtype == _RECON else None
        if doc is not None and self.expected:
            # a recovery's BEGIN closed the crashed session (what it decided last was never sent);
            # its OUTCOME names what it decided with no venue session to send it on
            unsent = doc.get("unsent_orders") or ()
            if unsent == UNSENT_ALL:
                self.expected.clear()
            else:
                unsent = set(unsent)
                self.expected = collections.deque(a for a in self.expected if a.intent.token not in unsent)
        if self.expected:
            # the runner journals an event's orders before it takes the next input
            for action in self.expected:
                self.diverge(rec.seq, f"replay decided {action.intent.kind.name} "
                                      f"{action.intent.token} that the journal never recorded")
            self.expected.clear()
        # never after a divergence: a replay resumed from it would start with none to report
        if self.every and not r.divergence_count and (
                self.since_snapshot >= self.every if isinstance(self.every, int)
                else self.every(self.since_snapshot)):
            # a safe point: every order decided so far is accounted for
            write_snapshot(self.snapshot_dir, self.engine, rec.seq - 1, self.journal_id,
                           r.journaled_venue_seqs, r.last_venue_seq, witness=self.witness(rec.seq - 1),
                           corrections_reported=r.corrections_reported, sessions=r.sessions,
                           utc_offset_s=r.utc_offset_s, utc_leap=r.utc_leap, replay=self.settings)
            r.snapshots_written += 1
            self.since_snapshot = 0
        if rtype == _VENUE_MSG or rtype == _VENUE_MSG_LONG:
            soup_seq = venue_fields(rtype, rec.payload)[0]
            if soup_seq:
                r.journaled_venue_seqs.add(soup_seq)
                if soup_seq > r.last_venue_seq:
                    r.last_venue_seq = soup_seq
        elif doc is not None:
            r.recon_records += 1
            self.recon(rec, doc)
        elif rtype == _CLOCK_SAMPLE:        # as engine_events reads it
            sample = unpack(RecordType.CLOCK_SAMPLE, rec.payload)
            sets, offset = phc_offset(sample)
            if sets:
                r.utc_offset_s = int(offset)
                r.utc_leap = int(phc_leap(sample))

    def session(self, rec) -> None:
        """The session `rec` starts (or, first of all, records no SESSION_START names: of unknown
        code), kept for the snapshots, and checked when there is a CodeCheck. The engine's tokens
        carry the tag the SESSION_START names, as the session's did."""
        self.unnamed = False
        if rec.rtype == _SESSION_START:
            session = session_code(rec.seq, rec.payload)
            if self.result.records > 1 or self.resumed:
                raise SecondSession(rec.seq, session.session_id)
            try:
                self.engine.oms.start_session(token_tag(unpack(RecordType.SESSION_START, rec.payload)))
            except OmsError as exc:
                raise BadRecoveryRecord(f"SESSION_START record {rec.seq}: {exc}") from None
        else:
            session = SessionCode(rec.seq, 0, UNKNOWN)
        if self.result.sessions is not None:
            self.result.sessions.append(session)
        self.check_code([session])

    def check_code(self, sessions) -> None:
        """CodeCheck raises on a session of other code, or accepts it and snapshots stop here."""
        if self.code is None:
            return
        before = len(self.code.differing)
        self.code.check(list(sessions))
        if len(self.code.differing) > before:
            self.result.code_changes += self.code.differing[before:]
            self.every = 0

    def check_order(self, rec) -> None:
        self.result.orders_checked += 1
        journaled = order_sent_raw(rec.payload)
        if not self.expected:
            self.diverge(rec.seq, f"ORDER_SENT {self.token(rec)} was not decided by the replay")
            return
        action = self.expected.popleft()
        if action.packet != journaled:
            self.diverge(rec.seq, f"replay sent {action.packet.hex()} ({action.intent.token}), "
                                  f"the journal has {journaled.hex()} ({self.token(rec)})")

    @staticmethod
    def token(rec) -> str:
        """The token an ORDER_SENT record names (for a divergence's text only)."""
        return unpack(RecordType.ORDER_SENT, rec.payload)["token"].decode(errors="replace")

    @staticmethod
    def recon_doc(rec) -> dict:
        try:
            doc = unpack_json(rec.payload)
        except ValueError as exc:
            raise BadRecoveryRecord(f"RECON record {rec.seq} is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BadRecoveryRecord(f"RECON record {rec.seq} is not a JSON object")
        return doc

    def recon(self, rec, doc: dict) -> None:
        kind = doc.get("kind")
        if kind == RECON_BEGIN:
            self.feed(Reconciled(rec.ts_ns, False))
        elif kind == RECON_OUTCOME:
            self.feed(Reconciled(rec.ts_ns, bool(doc.get("reconciled"))))
            # only a finished attempt's outcome, whose result named them, reported corrections
            for venue_seq in reported_corrections(doc):
                self.result.corrections_reported.setdefault(venue_seq, rec.seq)
        elif kind == RECON_RESOLUTION:
            self.take(apply(self.engine, resolution_from_json(doc.get("resolution") or {}), rec.ts_ns))


class _Lookahead:
    """An iterator of records that can tell the type of the next one without taking it."""

    def __init__(self, records: Iterable) -> None:
        self._it = iter(records)
        self._next = None

    def __iter__(self):
        return self

    def __next__(self):
        rec = self._next
        if rec is not None:
            self._next = None
            return rec
        return next(self._it)

    def packet_run(self, event: MarketData, limit: int) -> tuple[PacketRun, ListedRecords]:
        """(PacketRun, its records) of `event` — the MarketData of the MD_PACKET record taken
        last — and the MD_PACKET records right after it, `limit` in all at most."""
        recs: list = [None]
        rec = self._next if self._next is not None else next(self._it, None)
        while (rec is not None and rec.rtype == _MD_PACKET and rec.ts_source != _PHC
               and len(recs) < limit):
            recs.append(rec)
            rec = next(self._it, None)
        self._next = rec
        return listed_run(event, recs)

    def next_is(self, rtype) -> bool:
        if self._next is None:
            self._next = next(self._it, None)
        return self._next is not None and self._next.rtype == rtype


def replay(records: Iterable, engine, *, profile: str = "eu-hft", fresh_session: bool = True,
           resume: Snapshot | None = None, snapshot_every: int | Callable[[int], bool] = 0,
           snapshot_dir=None, journal_id: str = "", witness: Callable[[int], str] | None = None,
           batch: bool = True, code: CodeCheck | None = None) -> ReplayResult:
    """Feed a journal's records (journal.Record, in sequence order, or recovery.blocks.Blocks of
    a reader) through `engine`, which must be
    fresh, built with the session's config, symbols and limits — or, with `resume`, the records
    after the snapshot's sequence through the snapshot's engine. With snapshot_every (a count of
    events, or a policy called with the events since the last snapshot), a snapshot is
    written to snapshot_dir every that many events (at a point where no order is outstanding),
    tied to the journal's content by `witness` (a sequence -> snapshot.journal_witness of the
    journal the records come from; required with snapshot_every).
    batch=False feeds every packet by itself (the batch path's reference). With `code`, every
    SESSION_START met (and records before any, when not resuming) is checked against the running
    code: CodeMismatch, or when the check accepts other code, result.code_changes and no more
    snapshots."""
    if snapshot_every and witness is None:
        raise ValueError("snapshots need the journal's witness (snapshot.journal_witness) to be written")
    if resume is not None:
        engine = resume.engine
    result = ReplayResult(engine)
    walk = _Walk(engine, result, snapshot_every, snapshot_dir, journal_id, witness, code,
                 replay_setup(profile, fresh_session))
    if resume is not None:
        walk.unnamed = False            # the journal's sessions up to it are the snapshot's to name
        walk.resumed = True
        result.sessions = None if resume.sessions is None else list(resume.sessions)
        walk.check_code(resume.sessions or ())
        result.snapshot = resume.path
        result.journaled_venue_seqs = resume.venue_seqs()
        result.last_venue_seq = resume.last_venue_seq
        result.corrections_reported = dict(resume.corrections_reported)
        result.utc_offset_s = resume.utc_offset_s
        result.utc_leap = resume.utc_leap
    # a journal read a block at a time (replay_journal), or any iterable of records
    source = records if isinstance(records, Blocks) else _Lookahead(records)

    def tapped():
        # engine_events pulls a record only after the events of the previous one were fed, so
        # checks and RECON effects here happen exactly between the right two events.
        for rec in source:
            walk.before(rec)
            yield rec

    # runs of MD_PACKET records go through the engine in one C call each while their packets
    # end quiet (Engine.on_packet_run); not when writing snapshots (they count single events)
    batch = batch and not snapshot_every
    started = time.perf_counter()
    # resumed: the snapshot holds the start facts of a journal that has no run-start record
    for event in engine_events(tapped(), profile, fresh_session, result.utc_offset_s, resume is not None,
                               result.utc_leap):
        if batch and type(event) is MarketData and event.ts_source != _PHC and source.next_is(_MD_PACKET):
            walk.feed_run(event, source)
        else:
            walk.feed(event)
    result.unsent = list(walk.expected)
    result.seconds = time.perf_counter() - started
    result.final = result._snapshot()
    return result


def replay_journal(path, engine, *, profile: str = "eu-hft", fresh_session: bool = True,
                   last_seq: int | None = None, snapshots=None, snapshot_every: int = 0,
                   batch: bool = True, code: CodeCheck | None = None) -> ReplayResult:
    """replay() over the journal at `path` (read-only: a torn tail is where the reader stops).
    With a `snapshots` directory it resumes from the newest valid snapshot of this journal (written
    by this code), and with snapshot_every it writes new ones there as it goes; `code` as replay's."""
    try:
        reader = Reader(path)
    except JournalError as exc:
        raise JournalUnavailable(f"cannot read the journal at {path}: {exc}") from exc
    with reader:
        snap, skipped = (None, [])
        if snapshots is not None:
            snap, skipped = latest_snapshot(snapshots, reader, last_seq, engine_setup(engine),
                                            replay_setup(profile, fresh_session))
        first = snap.seq + 1 if snap is not None else None
        result = replay(Blocks(reader, first, last_seq), engine, profile=profile,
                        fresh_session=fresh_session, resume=snap, snapshot_every=snapshot_every,
                        snapshot_dir=snapshots, journal_id=reader.journal_id,
                        witness=functools.partial(journal_witness, reader), batch=batch, code=code)
        result.snapshots_skipped = skipped
        if last_seq is None or reader.last_seq < last_seq:
            result.stopped = reader.stopped
        return result
