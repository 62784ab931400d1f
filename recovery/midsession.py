"""Mid-session reconciliation: the operator's "reconcile" on a live runner, so a session halted on a
venue event it could not apply (or any doubt about what rests at the venue) need not wait for a
restart and recovery. The same comparison and resolutions recovery makes (recovery.reconcile),
journaled as the same RECON records (begin, finding, resolution, outcome), so a replay re-applies
them in place. Owns the order of the steps; the runner owns the sockets and the write-ahead rule
(mm_core.runner: it may not import recovery, so it is handed a LiveReconciler). A trade correction
is put in front of a person once: the RECON findings already in the journal (an earlier recovery's
or reconcile's, read as replay reads them) name the ones reported, which are not reported again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from journal import Reader
from journal.errors import JournalError
from mm_core.events import OperatorCommand, Reconciled
from mm_core.protocol import soupbintcp
from recovery.reconcile import (
    Deliver, apply, local_view, reconcile, reported_corrections, resolution_json, venue_view,
)
from recovery.recondocs import recon_documents
from recovery.replay import RECON_BEGIN, RECON_FINDING, RECON_OUTCOME, RECON_RESOLUTION
from recovery.statedocs import engine_doc, order_doc
from recovery.venue_link import full_view

__all__ = ["LiveReconciliation", "LiveReconciler"]


@dataclass
class LiveReconciliation:
    """What one mid-session reconciliation found and did."""

    actor: str
    reconciled: bool = False
    reasons: list[str] = field(default_factory=list)
    rounds: list[dict] = field(default_factory=list)     # discrepancy counts per round
    delivered: int = 0                                   # venue messages the journal lacked
    resolutions: int = 0                                 # resolutions applied (cancels sent)
    corrections: list[int] = field(default_factory=list)  # trade corrections the reasons name
    applied: list[dict] = field(default_factory=list)     # each resolution: its order before, after
    trading_state: str = ""


@dataclass
class LiveReconciler:
    """Called by the runner on its own thread: `reconciler(runner, command)`. Trading waits while
    it runs (a few venue round trips, bounded by `timeout` per wait)."""

    timeout: float = 5.0                 # bound of every venue wait
    quiet: float = 0.25                  # the venue is done answering after this long silent
    max_rounds: int = 3
    clock: Callable[[], int] = time.time_ns      # CLOCK_REALTIME: the records say USER
    results: list[LiveReconciliation] = field(default_factory=list)
    # venue sequence of a trade correction -> journal sequence of the RECON finding that reported
    # it, read from the journal up to `_read_to` (the rest is read at the next reconcile)
    reported: dict[int, int] = field(default_factory=dict)
    _read_to: int = 0

    def __call__(self, runner, command: OperatorCommand) -> LiveReconciliation:
        result = LiveReconciliation(command.actor)
        self.results.append(result)
        engine = runner.engine
        halts_before = engine.counts["halts"]
        before = engine_doc(engine)
        # the begin record comes first: nothing new goes out while the views are compared (the
        # latch pulls what rests, on the session still open)
        begin = {"kind": RECON_BEGIN, "reconciled": False, "mid_session": True, "actor": command.actor,
                 "reason": command.reason, "venue_sequence": runner.soup_seq}
        if command.origin:
            begin["origin"] = command.origin
        now = self._recon(runner, begin)
        if now is None:
            result.reasons.append("the journal refused the reconciliation's begin record")
            return self._done(runner, result)
        # from here on an outcome record closes the begin whatever fails (fail closed: a failure
        # is an outcome that is not reconciled, so the latch stays)
        try:
            try:
                runner.feed(Reconciled(now, False))
                self._compare_and_resolve(runner, result)
            finally:
                runner.tap_order_entry(None)
        except Exception as exc:     # noqa: BLE001 (any failure is this reconciliation's outcome)
            result.reasons.append(f"reconciliation failed: {type(exc).__name__}: {exc}")
        self._login_again(runner, result)
        halts = engine.counts["halts"] - halts_before
        if halts:
            result.reasons.append(f"the engine halted itself {halts} time(s) while reconciling")
        result.reconciled = not result.reasons
        outcome = {"kind": RECON_OUTCOME, "reconciled": result.reconciled, "reasons": result.reasons,
                   "mid_session": True, "actor": command.actor, "delivered": result.delivered,
                   "resolutions": result.resolutions, "applied": result.applied,
                   "corrections_reported": result.corrections, "before": before,
                   "after": engine_doc(engine)}
        if command.origin:
            outcome["origin"] = command.origin
        now = self._recon(runner, outcome)
        if now is not None:
            runner.feed(Reconciled(now, result.reconciled))
        return self._done(runner, result)

    def _login_again(self, runner, result: LiveReconciliation) -> None:
        """The order entry logged in again (accepted by the venue) after whatever happened,
        retrying for `timeout` as full_view does while the venue still has the old connection
        ("session unavailable") or cannot be reached; a refusal for any other reason is final.
        When it cannot be, the reasons and an alert say so: the run goes on without order entry,
        latched unreconciled (fail closed), until a later reconcile logs in again."""
        if runner.order_entry_logged_in:
            return
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if runner.order_entry_connected:
                    self._await_login(runner, deadline)
                    return
                runner.login_order_entry()
                continue
            except Exception as exc:     # noqa: BLE001 (refused, unreachable, reset: retried or reported)
                runner.drop_order_entry()
                final = getattr(exc, "reason", "S") != "S"
                if final or time.monotonic() >= deadline:
                    why = f"cannot log in to the order entry again: {type(exc).__name__}: {exc}"
                    result.reasons.append(why)
                    runner.alert("order-entry-lost", f"reconcile by {result.actor}: {why}; trading stays "
                                 "latched, with no order entry, until a reconcile logs in again")
                    return
            time.sleep(0.05)

    def _await_login(self, runner, deadline: float) -> None:
        """Take the venue's answers until it accepted the login; TimeoutError when it did not
        answer by `deadline` (a refusal raises the runner's LoginRejected)."""
        while not runner.order_entry_logged_in:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the venue did not answer the login in time")
            if not runner.pump_order_entry(min(self.quiet, left)):
                if not runner.order_entry_logged_in:
                    time.sleep(0.01)     # nothing yet, or the venue closed: the deadline decides

    def _compare_and_resolve(self, runner, result: LiveReconciliation) -> None:
        s = runner.settings
        reported = self._reported_so_far(runner)     # before this reconcile reports any itself
        tap: list[tuple[int, bytes]] = []
        runner.tap_order_entry(tap)
        runner.logout_order_entry(self.timeout)          # the venue allows one login per user
        messages = dict(full_view(s.host, s.ouch_port, s.username, s.password, self.timeout))
        runner.login_order_entry()                       # from the sequence after the last received
        head = max(messages, default=0)
        deadline = time.monotonic() + self.timeout
        while runner.soup_seq < head and time.monotonic() < deadline:
            runner.pump_order_entry(self.quiet)
        self._settle(runner)
        # max_rounds of compare -> resolve, then one more comparison that resolves nothing: what
        # the last round's resolutions left different is what the reasons (and its finding) name
        for round_no in range(1, self.max_rounds + 2):
            for seq, payload in tap:
                messages.setdefault(seq, payload)
            found = reconcile(local_view(runner.engine, runner.journaled_venue_seqs(), runner.soup_seq,
                                         reported), venue_view(sorted(messages.items())))
            result.rounds.append(found.counts())
            gave_up = round_no > self.max_rounds and not found.clean and bool(found.resolutions)
            finding = {"kind": RECON_FINDING, "round": round_no, "mid_session": True, **found.to_json()}
            if gave_up:
                finding["gave_up"] = f"not clean after {self.max_rounds} rounds: left as found"
            if self._recon(runner, finding) is None:
                result.reasons.append("the journal refused a finding record")
                return
            if found.clean or not found.resolutions or round_no > self.max_rounds:
                if gave_up:
                    result.reasons.append(f"not clean after {self.max_rounds} rounds")
                result.reasons += [f"{d.kind}: {d.detail}" + (f" ({d.token})" if d.token else "")
                                   for d in found.discrepancies]
                result.corrections = found.corrections
                return
            for d in found.discrepancies:
                if isinstance(d.resolution, Deliver):
                    frame = soupbintcp.encode(soupbintcp.SequencedData(d.resolution.payload))
                    if runner.deliver_venue(d.resolution.sequence, frame, self.clock()):
                        result.delivered += 1
                elif d.resolution is not None:
                    before = order_doc(runner.engine, d.token)
                    now = self._recon(runner, {"kind": RECON_RESOLUTION, "mid_session": True,
                                               "resolution": resolution_json(d.resolution),
                                               "found": d.kind, "detail": d.detail, "venue": d.venue,
                                               "before": before})
                    if now is None:
                        result.reasons.append("the journal refused a resolution record")
                        return
                    runner.act(apply(runner.engine, d.resolution, now), now)
                    result.resolutions += 1
                    result.applied.append({"token": d.token, "before": before,
                                           "after": order_doc(runner.engine, d.token)})
            self._settle(runner)

    def _reported_so_far(self, runner) -> dict[int, int]:
        """The trade corrections the journal's RECON outcomes have reported (replay's reading of
        them), read on from where the last reconcile stopped. A journal that cannot be read adds
        nothing (those corrections are reported again: they keep trading halted) and alerts."""
        path = getattr(runner.journal, "path", None)
        try:
            with Reader(path) as reader:
                if reader.last_seq > self._read_to:
                    for seq, doc in recon_documents(reader, self._read_to + 1, reader.last_seq):
                        if doc.get("kind") == RECON_OUTCOME:
                            for venue_seq in reported_corrections(doc):
                                self.reported.setdefault(venue_seq, seq)
                    self._read_to = reader.last_seq
        except (JournalError, TypeError, ValueError) as exc:
            runner.alert("recon-journal-unread", f"the journal's earlier findings could not be read "
                         f"({type(exc).__name__}: {exc}): trade corrections they reported are "
                         "reported again")
        return dict(self.reported)

    def _settle(self, runner) -> None:
        """Take the venue's answers until it has been quiet for `quiet`, within `timeout`."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and runner.pump_order_entry(self.quiet):
            pass

    def _recon(self, runner, doc: dict) -> int | None:
        """Journal one RECON record, stamped with the runner's USER clock (CLOCK_REALTIME), never
        with the engine's time (a NIC's PHC time, TAI, when stamps are hardware); its time (what
        the engine is fed with, which never runs backwards inside it), None if refused."""
        now = self.clock()
        return now if runner.journal_recon(doc, now) else None

    @staticmethod
    def _done(runner, result: LiveReconciliation) -> LiveReconciliation:
        result.trading_state = runner.engine.risk.state.name
        return result
