"""Crash recovery, end to end: open the journal (tail repaired and reported), replay it through a
fresh engine, log in to the venue from the last journaled sequence + 1 and apply what was missed,
reconcile with the venue's full view, resolve, journal every step as RECON records, and tell the
engine it is reconciled — or leave it HALTED with the reasons.

First of all, before the journal is opened for writing, the code that wrote each of its sessions
must be the running code (recovery.codecheck): else CodeMismatch, unless the settings accept the
change; then a RECON "code-change" record says so ahead of the others. A tail the writer's open
repaired is journaled next (RECON "journal-tail", with what was discarded), before anything that
can fail, so no attempt leaves the repair unrecorded.

The venue is authoritative for what it received. An order, or a size-down of one, whose ORDER_SENT
the torn tail lost is adopted from the venue's answer about it (a RECON resolution, adopt or
adopt-modify): journaled just ahead of that answer when the input that decided it was lost too;
when that input survived, replay decides the order again (the same token; recovery never sends it)
and its adoption is journaled ahead of the BEGIN record, before any cancel recovery sends it.

A journal that ended cleanly ends with the session's own close-out kill: once the venue reconciles,
recovery releases exactly that latch (recovery.closeout says when it may), by a RECON
"close-out-release" record and an OPERATOR_CMD release-close-out by "recovery" ahead of the OUTCOME.

Owns the order of those steps and the write-ahead rule while recovery acts (a record before every
input the engine sees and before every byte sent). Comparison logic lives in reconcile.py, the
venue sessions in venue_link.py. Must not make trading decisions beyond reconciliation's.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from journal import Journal, lock_state
from journal.catalogue import RecordType, TsSource, pack, pack_json, venue_payload
from journal.errors import JournalCorrupt, JournalError, JournalLocked
from journal.reader import damage_behind_summary
from mm_core.config import EngineConfig, Symbols
from mm_core.engine import Engine
from mm_core.oms import TERMINAL
from mm_core.events import JournalNote, OperatorCommand, Reconciled, SendOrder, VenueMessage
from mm_core.protocol import ProtocolError, ouch, soupbintcp
from mm_core.types import OrderKind
from mm_core.risk import Limits, RiskError, RiskGateway
from mm_core.risk.checks import CheckId
from recovery.closeout import RECON_CLOSE_OUT, CloseOut, find_close_out
from recovery.codecheck import RECON_CODE_CHANGE, CodeCheck
from recovery.errors import JournalDamaged, JournalUnavailable, RecoverySetupError
from recovery.reconcile import (
    AdoptModify, AdoptPending, CancelAtVenue, Deliver, ReconResult, ResendCancel, Resolution, apply, local_view,
    reconcile, resolution_json, venue_view,
)
from recovery.replay import (RECON_BEGIN, RECON_FINDING, RECON_OUTCOME, RECON_RESOLUTION, UNSENT_ALL, ReplayResult,
                             replay_journal)
from recovery.snapshot import engine_setup
from recovery.statedocs import engine_doc, order_doc
from recovery.venue_link import SoupSession, full_view

__all__ = ["RecoverySettings", "Recovery", "recover", "build_engine", "RECON_JOURNAL_TAIL", "VENUE_SEQUENCE"]

_SEQUENCED = ord("S")
RECON_JOURNAL_TAIL = "journal-tail"   # the writer's open repaired the journal: what it discarded
VENUE_SEQUENCE = "venue-sequence"   # finding: the venue's login did not start where asked
_SEGMENT = 4 << 20     # recovery writes few records: a small segment opens fast (sizes may mix)


@dataclass(frozen=True)
class RecoverySettings:
    journal: str
    config: EngineConfig
    symbols: Symbols
    limits_text: str
    fresh_session: bool = True           # as the crashed runner was started
    venue: tuple[str, int] | None = None
    username: str = "MM01"
    password: str = "mmaudit"
    dry_run: bool = False                # reconcile and report; no journal writes, nothing sent
    timeout: float = 5.0                 # bound of every venue wait
    quiet: float = 0.25                  # the venue is done answering after this long silent
    max_rounds: int = 3                  # reconcile -> resolve -> verify rounds
    snapshots: str | None = None         # engine snapshots of this journal (recovery.snapshot)
    accept_code_change: bool = False     # recover a journal other (or unknown) code wrote anyway


@dataclass
class Recovery:
    """What recovery found and did. `reconciled` decides whether trading may resume."""

    engine: Engine
    replay: ReplayResult
    tail: dict
    rounds: list[ReconResult] = field(default_factory=list)
    reconciled: bool = False
    reasons: list[str] = field(default_factory=list)
    delivered: int = 0                   # venue messages journaled and applied
    orders_sent: int = 0                 # cancels sent to the venue
    would_send: list[str] = field(default_factory=list)   # dry run: tokens it would cancel
    applied: list[dict] = field(default_factory=list)      # each resolution: its order before, after
    recon_seqs: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    session: SoupSession | None = None   # the resumed venue session, when kept open
    dry_run: bool = False
    code: CodeCheck | None = None        # the running code and the journal's sessions of other code
    close_out: CloseOut | None = None    # the kill of everything replay left in force, if any

    @property
    def trading_state(self) -> str:
        return self.engine.risk.state.name

    @property
    def utc_offset_s(self) -> int:
        """TAI - UTC as the journal last recorded it (recovery journals no clock sample): a runner
        resuming this engine starts from it (RunnerSettings.utc_offset_s), as replay converts."""
        return self.replay.utc_offset_s

    @property
    def utc_leap(self) -> int:
        """The leap flag in force with utc_offset_s (RunnerSettings.utc_leap)."""
        return self.replay.utc_leap

    def summary(self) -> dict:
        return {
            "reconciled": self.reconciled, "reasons": self.reasons, "dry_run": self.dry_run,
            "tail": self.tail, "replay": self.replay.summary(),
            "rounds": [r.counts() for r in self.rounds],
            "unresolved": [d.detail for d in self.rounds[-1].unresolved] if self.rounds else [],
            "delivered": self.delivered, "orders_sent": self.orders_sent,
            "would_send": self.would_send, "recon_records": len(self.recon_seqs),
            "trading_state": self.trading_state, "faults": self.engine.risk.faults,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "code": self.code.to_json() if self.code is not None else None,
            "close_out": self.close_out.to_json() if self.close_out is not None else None,
        }


def build_engine(config: EngineConfig, symbols: Symbols, limits_text: str) -> Engine:
    """A fresh engine with the session's parameters (what replay needs)."""
    try:
        return Engine(config, symbols, RiskGateway(Limits.from_toml(limits_text)))
    except (RiskError, ValueError) as exc:
        raise RecoverySetupError(f"cannot build the engine: {exc}") from exc


def _noop(stage: str, detail: str) -> None:
    pass


class _Shell:
    """Write-ahead while recovery acts: journal, then engine or wire. Dry run: neither."""

    def __init__(self, engine: Engine, journal: Journal | None, clock: Callable[[], int],
                 result: Recovery) -> None:
        self.engine = engine
        self.journal = journal
        self.clock = clock
        self.result = result
        self.session: SoupSession | None = None
        self.journaled: set[int] = set()
        self.awaiting: set[str] = set()     # tokens we sent cancels for, not yet closed
        # orders the engine decided whose ORDER_SENT is not journaled yet: what an error
        # leaves here was never sent (the OUTCOME of a failed attempt names them)
        self.unjournaled: list[str] = []
        self.replayed = _Unjournaled.of(result.replay.unsent)

    def record(self, rtype: RecordType, payload: bytes, now: int) -> int:
        if self.journal is None:
            return 0
        return self.journal.append(rtype, payload, ts_ns=now, ts_source=int(TsSource.USER))

    def recon(self, doc: dict, now: int | None = None) -> int:
        now = self.clock() if now is None else now
        seq = self.record(RecordType.RECON, pack_json(doc), now)
        if seq:
            self.result.recon_seqs.append(seq)
        return now

    def feed(self, event) -> None:
        self.act(self.engine.on_event(event), event.now_ns)

    def resolve(self, resolution: Resolution, doc: dict) -> None:
        """Journal one resolution (RECON, with the order before it), then perform it on the engine
        and act on its orders; the order after it goes to the OUTCOME (result.applied)."""
        token = resolution.token
        before = order_doc(self.engine, token)
        now = self.recon({"kind": RECON_RESOLUTION, "resolution": resolution_json(resolution),
                          "before": before, **doc})
        self.act(apply(self.engine, resolution, now), now)
        self.result.applied.append({"resolution_seq": self.result.recon_seqs[-1] if self.journal else 0,
                                    "token": token, "before": before,
                                    "after": order_doc(self.engine, token)})

    def deliver(self, sequence: int, frame: bytes) -> None:
        """A venue frame: journaled as VENUE_MSG, then fed. An order, or a size-down of one, the
        journal never recorded sending (its ORDER_SENT lost with a torn tail, the input that decided
        it too or not) is adopted first, so the venue's answers about it are ordinary events."""
        adopt = _adoption(self.engine, frame, self.replayed)
        if adopt is not None:
            self.resolve(adopt, _adoption_doc(self.engine, adopt, sequence, self.replayed))
        now = self.clock()
        is_seq = frame[2] == _SEQUENCED
        rtype, payload = venue_payload(sequence if is_seq else 0, frame[2],
                                       frame[3] if is_seq and len(frame) > 3 else 0, frame)
        self.record(rtype, payload, now)
        if is_seq:
            self.journaled.add(sequence)
            self.result.delivered += 1
        self.feed(VenueMessage(frame, now, TsSource.USER))
        if self.awaiting:
            orders = self.engine.oms.orders
            self.awaiting = {t for t in self.awaiting if t in orders and orders[t].state not in TERMINAL}

    def act(self, actions, now: int) -> None:
        self.unjournaled += [a.intent.token for a in actions if isinstance(a, SendOrder)]
        for action in actions:
            if isinstance(action, JournalNote):
                self.record(action.rtype, action.payload, now)
            elif isinstance(action, SendOrder):
                self.send(action)

    def send(self, action: SendOrder) -> None:
        if self.journal is None or self.session is None:
            self.unjournaled.remove(action.intent.token)
            self.result.would_send.append(action.intent.token)
            return
        intent, packet = action.intent, action.packet
        now = self.clock()
        payload = pack(
            RecordType.ORDER_SENT, token=intent.token.encode(), orig_token=intent.orig_token.encode(),
            msg_type=packet[3], side=int(intent.side), tif=intent.tif, symbol_id=intent.symbol_id,
            price=intent.price, qty=intent.qty, algo_id=intent.algo_id, desk_id=intent.desk_id,
            trader_id=intent.trader_id, client_id=intent.client_id, risk_verdict=1,
            trading_state=action.trading_state, limits_version=getattr(action.decision, "limits_version", 0),
            tskey=0, raw=packet)
        seq = self.record(RecordType.ORDER_SENT, payload, now)
        self.unjournaled.remove(intent.token)
        self.session.send(packet)
        self.awaiting.add(intent.token)
        # this socket takes no TX timestamps: recorded as missing, never invented
        self.record(RecordType.TX_TS, pack(RecordType.TX_TS, order_seq=seq, tskey=0, status=1,
                                           source=int(TsSource.NONE), tx_ts_ns=0), now)
        self.result.orders_sent += 1


@dataclass
class _Unjournaled:
    """Tokens of the orders replay decided again whose ORDER_SENT the torn tail lost (their input
    survived): what the venue says it received of them is adopted as of an order never recorded
    (the venue is authoritative for what it received; nothing is sent again)."""

    entries: set[str]           # enters and replacements: their token
    modifies: set[str]          # size-downs: the order's token
    adopted: set[str] = field(default_factory=set)     # tokens of these adopted so far

    def take(self, pending: set[str], token: str) -> None:
        if token in pending:
            pending.discard(token)
            self.adopted.add(token)

    @classmethod
    def of(cls, unsent: list[SendOrder]) -> _Unjournaled:
        intents = [a.intent for a in unsent]
        return cls({i.token for i in intents if i.kind in (OrderKind.ENTER, OrderKind.REPLACE)},
                   {i.token for i in intents if i.kind is OrderKind.MODIFY and i.qty > 0})


def _adoption_doc(engine: Engine, adopt: AdoptPending | AdoptModify, sequence: int,
                  unjournaled: _Unjournaled) -> dict:
    """Why recovery adopts; for a replacement, also the order it replaces as it was before."""
    if adopt.token in unjournaled.adopted:
        why = "answers an order replay decided again, whose ORDER_SENT the journal lost"
    elif isinstance(adopt, AdoptModify):
        why = "modified an order with no modify of it journaled"
    else:
        why = "concerns an order the journal does not have"
    doc = {"why": f"venue sequence {sequence} {why}"}
    if isinstance(adopt, AdoptPending) and adopt.orig_token:
        doc["replaces"] = {"token": adopt.orig_token, "before": order_doc(engine, adopt.orig_token)}
    return doc


def _adoption(engine: Engine, frame: bytes, unjournaled: _Unjournaled) -> AdoptPending | AdoptModify | None:
    """The adoption a venue frame calls for: an entry or replacement of ours the OMS does not know,
    or one replay decided again without its ORDER_SENT (`unjournaled`); a size-down the OMS never
    recorded sending, or one so decided again. None for anything else (the answer to a journaled
    order; one the engine cannot take halts it: fail closed)."""
    if frame[2] != _SEQUENCED:
        return None
    try:
        msg = ouch.decode_outbound(frame[3:])
    except ProtocolError:
        return None     # the engine journals the protocol error itself
    if isinstance(msg, ouch.OrderModified):
        return _modify_adoption(engine, msg, unjournaled)
    if not isinstance(msg, (ouch.Accepted, ouch.Replaced, ouch.Rejected)):
        return None
    if msg.token in engine.oms.orders and msg.token not in unjournaled.entries:
        return None
    unjournaled.take(unjournaled.entries, msg.token)
    if isinstance(msg, ouch.Rejected):
        return AdoptPending(msg.token, 0, "B", 0, 0)
    try:
        symbol_id = engine.symbols.by_name(msg.stock).id
    except ValueError:
        return None     # not a symbol we trade: the engine halts on it, fail closed
    previous = msg.previous_token if isinstance(msg, ouch.Replaced) else ""
    return AdoptPending(msg.token, symbol_id, msg.side, msg.price, msg.shares, previous)


def _modify_adoption(engine: Engine, msg: ouch.OrderModified, unjournaled: _Unjournaled) -> AdoptModify | None:
    order = engine.oms.orders.get(msg.token)
    if order is None or not order.acked or not 0 < msg.shares <= order.leaves:
        return None     # not an order of ours the venue holds as it could have modified
    if order.modify_sent and msg.token not in unjournaled.modifies:
        return None     # the answer to a journaled modify
    unjournaled.take(unjournaled.modifies, msg.token)
    return AdoptModify(msg.token, order.symbol_id, msg.side, order.price, order.leaves, msg.shares)


def _open_journal(path: str, dry_run: bool) -> tuple[Journal | None, dict]:
    """The writer (its open repairs a torn tail), or for a dry run what a repair would discard. A
    live writer is refused either way: a dry run takes no lock, but would read a journal still
    growing and, given a venue, log in as the running engine's user (it could take its session)."""
    try:
        if dry_run:     # where the replay stops early (ReplayResult.stopped) is filled in after it
            lock = lock_state(path)
            if lock["writer_live"]:
                raise JournalLocked(f"pid {lock['pid']} holds its lock")
            return None, {"repaired": False, "would_discard_from": None}
        journal = Journal(path, create=False, segment_size=_SEGMENT)
    except JournalLocked as exc:
        raise JournalUnavailable(f"{path}: a live writer holds the journal (is the engine still "
                                 f"running?): {exc}") from exc
    except JournalError as exc:
        raise JournalUnavailable(f"cannot open the journal at {path}: {exc}") from exc
    rep = journal.recovery
    return journal, {"repaired": True, "clean": rep.clean, "reason": rep.reason, "segment": rep.segment,
                     "offset": rep.offset, "first_lost_seq": rep.seq if not rep.clean else None,
                     "bytes_discarded": rep.bytes_discarded, "segments_removed": rep.segments_removed,
                     "records_discarded": rep.records_discarded, "segments_kept": rep.segments_kept,
                     "kept_in": os.path.join(path, "discarded", f"r{rep.discarded_run}") if rep.discarded_run
                     else None, "previous_pid": rep.previous_pid, "previous_closed_cleanly": rep.previous_clean}


def _repaired(tail: dict) -> bool:
    """The writer's open discarded something (a dry run repairs nothing)."""
    return bool(tail.get("repaired") and (not tail.get("clean") or tail.get("bytes_discarded")
                                          or tail.get("segments_removed")))


def _refuse_damaged(path: str, stop: dict) -> None:
    """The writer's open repaired the journal, yet replay stopped early: an invalid record behind
    a sealed segment whose durable summary the open trusted without reading it (bit rot,
    tampering). Resuming from that state would trade without every record after it, and append
    RECON records no reader reaches: refuse, before anything is written or sent."""
    raise JournalDamaged(damage_behind_summary(path, stop, "replay", "recover again"))


def recover(settings: RecoverySettings, progress: Callable[[str, str], None] = _noop,
            clock: Callable[[], int] = time.time_ns, keep_session: bool = False) -> Recovery:
    """Run recovery; see the module docstring. `keep_session` leaves the resumed venue session
    open in Recovery.session for a caller (a drill, a restarted runner) to continue on."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    engine = build_engine(settings.config, settings.symbols, settings.limits_text)
    code = CodeCheck(settings.accept_code_change)
    # read-only, before anything is written; a snapshot's list of the sessions it covers spares
    # reading (and validating) the journal before it
    code.check_journal(settings.journal, settings.snapshots, engine_setup(engine))
    timings["code"] = time.perf_counter() - t0
    if code.differing:
        progress("code", f"recovering on other code than the journal's (accepted): this code is "
                         f"{code.running[:16]}, the journal's sessions " + ", ".join(
                             f"{s.session_id or '?'} {s.fingerprint[:16]}" for s in code.differing))
    t = time.perf_counter()
    journal, tail = _open_journal(settings.journal, settings.dry_run)
    timings["open"] = time.perf_counter() - t
    if tail.get("kept_in"):
        progress("journal", f"damaged journal: what followed the first invalid record is kept in "
                            f"{tail['kept_in']}: {tail}")
    elif tail.get("bytes_discarded") or tail.get("segments_removed"):
        progress("journal", f"torn tail: {tail}")
    try:
        profile = engine.risk.limits.clock_profile
        progress("replay", f"replaying {settings.journal} through a fresh engine")
        t = time.perf_counter()
        try:
            replayed = replay_journal(settings.journal, engine, profile=profile,
                                      fresh_session=settings.fresh_session, snapshots=settings.snapshots)
        except Exception as exc:
            if journal is not None and _repaired(tail):
                _journal_tail_of_failed_replay(journal, clock, tail, exc)
            raise
        engine = replayed.engine         # the snapshot's, when replay resumed from one
        if replayed.stopped and not settings.dry_run:
            _refuse_damaged(settings.journal, replayed.stopped)
        if replayed.stopped:
            tail["would_discard_from"] = replayed.stopped
            progress("journal", f"the journal ends early on an invalid record: {replayed.stopped}")
        timings["replay"] = time.perf_counter() - t
        for reason in replayed.snapshots_skipped:
            progress("replay", f"snapshot skipped: {reason}")
        if replayed.snapshot:
            progress("replay", f"resumed from snapshot {replayed.snapshot}")
        progress("replay", f"{replayed.events} events, {replayed.orders_checked} orders checked, "
                           f"{replayed.divergence_count} divergences, last venue sequence "
                           f"{replayed.last_venue_seq}")
        result = Recovery(engine, replayed, tail, timings=timings, dry_run=settings.dry_run, code=code,
                          close_out=find_close_out(settings.journal, engine))
        if result.close_out is not None:
            progress("replay", f"held by {result.close_out.describe()}" if not result.close_out.releasable
                     else f"held by the session's close-out kill (seq {result.close_out.kill_seq}): released "
                          "once the venue reconciles")
        halts_before = engine.counts["halts"]
        shell = _Shell(engine, journal, clock, result)
        shell.journaled = set(replayed.journaled_venue_seqs)
        if code.differing:
            # ahead of everything recovery journals; like BEGIN it closes the crashed session
            # (what it decided last was never sent), so a later replay expects nothing across it
            shell.recon({"kind": RECON_CODE_CHANGE, **code.to_json(),
                         "unsent_orders": [a.intent.token for a in replayed.unsent]})
        if _repaired(tail):
            # at once, whatever follows: an attempt that fails before its BEGIN (the venue out of
            # reach) would leave the repair unrecorded, and the next open finds the tail clean
            shell.recon({"kind": RECON_JOURNAL_TAIL, "journal_tail": tail,
                         "unsent_orders": [a.intent.token for a in replayed.unsent]})
        if not replayed.deterministic:
            result.reasons.append(f"replay diverged from the journal ({replayed.divergence_count} "
                                  f"orders): {replayed.divergences[0].detail}")
        try:
            try:
                _reconcile_with_venue(settings, shell, result, progress)
            finally:
                if shell.session is not None and not (keep_session and not settings.dry_run):
                    shell.session.logout()
                    shell.session = None
                result.session = shell.session
        except BaseException as exc:
            _journal_failure(shell, result, exc)
            raise
        halts = engine.counts["halts"] - halts_before
        if halts:
            result.reasons.append(f"the engine halted itself {halts} time(s) (see its halt alerts)")
        result.reconciled = not result.reasons
        _release_close_out(shell, result, progress)
        # orders the engine decided with no session to send them on (the latch's pulls when no
        # venue was given) were never journaled: named here, so a later replay does not expect them
        now = shell.recon({"kind": RECON_OUTCOME, "reconciled": result.reconciled,
                           "reasons": result.reasons, "before": replayed.summary(),
                           "after": engine_doc(engine), "applied": result.applied,
                           "delivered": result.delivered,
                           "orders_sent": result.orders_sent,
                           "unsent_orders": [] if settings.dry_run else list(result.would_send),
                           # the last round's, which the reasons name: reported to a person now
                           "corrections_reported": result.rounds[-1].corrections if result.rounds else [],
                           "close_out": result.close_out.to_json() if result.close_out is not None else None})
        shell.feed(Reconciled(now, result.reconciled))
        timings["total"] = time.perf_counter() - t0
        progress("outcome", "reconciled" if result.reconciled else "NOT reconciled: " +
                 "; ".join(result.reasons))
        return result
    except BaseException as exc:
        if journal is not None:
            try:
                journal.close()
            except JournalCorrupt as damaged:
                # the close's check found damage behind a summary (DAMAGED marks it): the error in
                # flight, usually replay's JournalDamaged naming the same record, stays the one raised
                exc.add_note(str(damaged))
        raise
    finally:
        if journal is not None:
            journal.close()


def _release_close_out(shell: _Shell, result: Recovery, progress: Callable[[str, str], None]) -> None:
    """The session's own close-out kill, once the venue reconciled: released by a RECON record with
    the evidence, then an OPERATOR_CMD release-close-out by "recovery" (what the engine, and any
    later replay, is fed), ahead of the OUTCOME whose reconciliation then lifts the restart's
    latch. A dry run feeds the engine alone (its state shows what recovery would leave)."""
    close = result.close_out
    if close is None or not close.releasable:
        return
    if not result.reconciled:
        close.why_not = "recovery did not reconcile with the venue"
        return
    evidence = close.to_json()
    del evidence["released"]            # the OUTCOME says whether the engine took it
    shell.recon({"kind": RECON_CLOSE_OUT, **evidence})
    doc = close.command()
    now = shell.clock()
    shell.record(RecordType.OPERATOR_CMD, pack_json(doc), now)
    shell.feed(OperatorCommand(now, doc["command"], doc["actor"], doc["reason"], doc["scope"],
                               doc["scope_id"]))
    close.released = CheckId.KILLED.label not in shell.engine.risk.latch_reasons
    if not close.released:              # the gateway refused it: its alert says why
        close.why_not = "the risk gateway refused the release (see its operator-refused alert)"
    progress("close-out", close.describe())


def _journal_tail_of_failed_replay(journal: Journal, clock: Callable[[], int], tail: dict,
                                   exc: Exception) -> None:
    """Replay raised after the writer's open repaired the tail: the repair is journaled all the same
    (the next open finds the tail clean, so it is now or never), with the error. Nothing was decided
    or sent yet, so every order a later replay has pending at this record was never sent
    (`unsent_orders` "all"). A journal that cannot take it adds a note to the error raised."""
    doc = {"kind": RECON_JOURNAL_TAIL, "journal_tail": tail, "unsent_orders": UNSENT_ALL,
           "replay_error": {"type": type(exc).__name__, "message": str(exc)}}
    try:
        journal.append(RecordType.RECON, pack_json(doc), ts_ns=clock(), ts_source=int(TsSource.USER))
    except Exception as journal_exc:       # noqa: BLE001 (the replay's error is what is raised)
        exc.add_note(f"the repaired tail could not be journaled: {type(journal_exc).__name__}: {journal_exc}")


def _journal_failure(shell: _Shell, result: Recovery, exc: BaseException) -> None:
    """An error ended the attempt after its first record (BEGIN, or a code-change or journal-tail
    record ahead of it): the journal says so with an OUTCOME
    (not reconciled, the error named), so every attempt it shows has an end. The caller still
    gets the original error; a journal that cannot take this record adds a note to it. The
    engine is not fed: the caller never gets it, and BEGIN already left it unreconciled."""
    if shell.session is not None:          # kept for the caller, who will not get it now
        shell.session.close()
        shell.session = result.session = None
    if shell.journal is None or not result.recon_seqs:
        return                              # a dry run, or nothing journaled for this attempt
    reason = f"recovery failed: {type(exc).__name__}: {exc}"
    try:
        shell.recon({"kind": RECON_OUTCOME, "reconciled": False, "reasons": [*result.reasons, reason],
                     "error": {"type": type(exc).__name__, "message": str(exc)},
                     "before": result.replay.summary(), "after": engine_doc(shell.engine),
                     "applied": result.applied,
                     "delivered": result.delivered, "orders_sent": result.orders_sent,
                     "unsent_orders": [*result.would_send, *shell.unjournaled]})
    except Exception as journal_exc:       # noqa: BLE001 (the original error is what is raised)
        exc.add_note(f"its OUTCOME record could not be journaled: {type(journal_exc).__name__}: "
                     f"{journal_exc}")


def _reconcile_with_venue(settings: RecoverySettings, shell: _Shell, result: Recovery,
                          progress: Callable[[str, str], None]) -> None:
    timings = result.timings
    if settings.venue is None:
        result.reasons.append("no venue given: nothing to reconcile against")
        if not settings.dry_run:
            now = shell.recon({"kind": RECON_BEGIN, "reconciled": False, "venue": None,
                               "journal_tail": result.tail, "unsent_orders": [a.intent.token for a in result.replay.unsent]})
            shell.feed(Reconciled(now, False))      # the record's time: what replay feeds
        return
    host, port = settings.venue
    replayed = result.replay
    t = time.perf_counter()
    progress("venue", f"full view of the session from sequence 1 at {host}:{port}")
    messages = dict(full_view(host, port, settings.username, settings.password, settings.timeout))
    timings["full_view"] = time.perf_counter() - t
    progress("venue", f"{len(messages)} venue messages")
    if settings.dry_run:
        shell.feed(Reconciled(shell.clock(), False))     # shows the quotes it would pull
        view = venue_view(sorted(messages.items()))
        found = reconcile(local_view(shell.engine, shell.journaled, replayed.last_venue_seq,
                                     replayed.corrections_reported), view)
        result.rounds.append(found)
        result.would_send += [r.token for r in found.resolutions if isinstance(r, (CancelAtVenue, ResendCancel))]
        result.reasons += [d.detail for d in found.discrepancies]
        return
    t = time.perf_counter()
    # a session that joined the venue's mid-session and got no message yet: from its join point
    # (the account's messages before it are an earlier session's, not to be fed to this engine)
    first = max(replayed.last_venue_seq + 1, shell.engine.venue_joined)
    session = shell.session = SoupSession(host, port, settings.timeout)
    accepted = session.login(settings.username, settings.password, first)
    progress("venue", f"logged in, requested sequence {first}, venue starts at {accepted.sequence}")
    if accepted.sequence == first:
        _adopt_decided_again(shell, messages, replayed)
    # The begin record comes first: it closes the crashed session's record (orders decided
    # after its last ORDER_SENT have no record of their sending: a later replay expects none; the
    # venue's answers show which it received, and those are adopted as they arrive) before any
    # input of this one. Those adopted ahead of it are not among its unsent orders: the venue has
    # them (the first adoption record listed every one, which is what a later replay needed).
    now = shell.recon({"kind": RECON_BEGIN, "reconciled": False, "requested_sequence": first,
                       "venue_sequence": accepted.sequence, "venue_messages": len(messages),
                       "journal_tail": result.tail,
                       "unsent_orders": [a.intent.token for a in replayed.unsent
                                         if a.intent.token not in shell.replayed.adopted]})
    shell.feed(Reconciled(now, False))
    if accepted.sequence != first:
        _venue_sequence_differs(shell, result, first, accepted.sequence)
        return
    shell.deliver(0, session.login_frame)
    head = max(messages, default=0)
    if head >= accepted.sequence:
        _take(shell, messages, session.sequenced(head, settings.quiet, settings.timeout))
    _settle(shell, messages, session, settings)
    timings["resume"] = time.perf_counter() - t
    progress("venue", f"applied {result.delivered} venue messages the journal lacked")
    t = time.perf_counter()
    for round_no in range(1, settings.max_rounds + 1):
        found = reconcile(local_view(shell.engine, shell.journaled, replayed.last_venue_seq,
                                     replayed.corrections_reported),
                          venue_view(sorted(messages.items())))
        result.rounds.append(found)
        shell.recon({"kind": RECON_FINDING, "round": round_no, **found.to_json()})
        progress("reconcile", f"round {round_no}: " + (
            "clean" if found.clean else ", ".join(f"{k} {n}" for k, n in found.counts().items())))
        if found.clean or not found.resolutions:
            break
        for d in found.discrepancies:
            if isinstance(d.resolution, Deliver):
                shell.deliver(d.resolution.sequence, soupbintcp.encode(
                    soupbintcp.SequencedData(d.resolution.payload)))
            elif d.resolution is not None:
                shell.resolve(d.resolution, {"found": d.kind, "detail": d.detail, "venue": d.venue})
        _settle(shell, messages, session, settings)
    timings["reconcile"] = time.perf_counter() - t
    final = result.rounds[-1]
    result.reasons += [f"{d.kind}: {d.detail}" + (f" ({d.token})" if d.token else "")
                       for d in final.discrepancies]


def _adopt_decided_again(shell: _Shell, messages: dict[int, bytes], replayed: ReplayResult) -> None:
    """Orders replay decided again whose ORDER_SENT the torn tail lost, that the venue's full view
    shows it received (its answers follow the last journaled venue message): adopted ahead of the
    BEGIN record, so a cancel recovery sends them when it begins has its order's origin before it
    in the journal. Each record names the orders replay decided with no ORDER_SENT, as BEGIN does,
    so a later replay expects none of them from there on; the adoption changes nothing the engine
    decided (the order is pending already)."""
    if not (shell.replayed.entries or shell.replayed.modifies):
        return
    unsent = [a.intent.token for a in replayed.unsent]
    for seq in sorted(s for s in messages if s > replayed.last_venue_seq):
        try:
            token = getattr(ouch.decode_outbound(messages[seq]), "token", "")
        except ProtocolError:
            continue        # delivered later: the engine journals the protocol error itself
        if token not in shell.replayed.entries and token not in shell.replayed.modifies:
            continue
        frame = soupbintcp.encode(soupbintcp.SequencedData(messages[seq]))
        adopt = _adoption(shell.engine, frame, shell.replayed)
        if adopt is not None:
            shell.resolve(adopt, {**_adoption_doc(shell.engine, adopt, seq, shell.replayed),
                                  "unsent_orders": unsent})


def _venue_sequence_differs(shell: _Shell, result: Recovery, first: int, start: int) -> None:
    """The venue's login starts elsewhere than asked: counted from its number, what it sends would
    skip messages (a gap) or apply some twice (a fill counted twice). Nothing of it is journaled or
    fed; a finding names the discrepancy and the engine stays unreconciled (HALTED)."""
    how = (f"messages {first}..{start - 1} would be missed" if start > first
           else f"messages {start}..{first - 1} would be applied a second time")
    detail = (f"the venue's login starts at sequence {start}, recovery asked for {first} (the last "
              f"journaled + 1): {how}; nothing of that session was applied")
    shell.recon({"kind": RECON_FINDING, "round": 0, "clean": False, "counts": {VENUE_SEQUENCE: 1},
                 "discrepancies": [{"kind": VENUE_SEQUENCE, "token": "", "detail": detail,
                                    "local": {"requested_sequence": first},
                                    "venue": {"venue_sequence": start}, "resolution": None}]})
    result.reasons.append(f"{VENUE_SEQUENCE}: {detail}")


def _take(shell: _Shell, messages: dict[int, bytes], frames: list[tuple[int, bytes]]) -> None:
    """Journal and apply venue frames read on the resumed session; they join the venue's view."""
    for seq, frame in frames:
        messages.setdefault(seq, frame[3:])
        shell.deliver(seq, frame)


def _settle(shell: _Shell, messages: dict[int, bytes], session: SoupSession,
            settings: RecoverySettings) -> None:
    """Take the venue's answers until every order we cancelled is closed, or the venue has been
    quiet for settings.quiet (an order it had already closed gets no answer), within timeout."""
    deadline = time.monotonic() + settings.timeout
    while shell.awaiting and time.monotonic() < deadline:
        got = session.next_sequenced(settings.quiet)
        if got is None:
            return
        _take(shell, messages, [got])
