"""The runner's write-ahead journaling: each input appended before the engine is fed, a refused
append (disk full, journal fault) turned into JournalHealth for the engine and an alert, the
reserve used only by records that reduce risk, and the 1 Hz retry that notices freed space.
Part of Runner (mm_core.runner); makes no trading decision.
"""
from __future__ import annotations

import json
import time

from journal.catalogue import RecordType, TsSource
from journal.errors import DiskFull, JournalError
from mm_core.events import JournalHealth
from mm_core.runner_shared import _USER, _realtime
from mm_core.runnerrecords import _HEALTH
from mm_core.runnertypes import JournalStatus, PacketStages


class RunnerJournal:
    """Runner's write-ahead journaling of inputs and its faults (a mixin of Runner)."""

    def journal_health(self) -> JournalStatus:
        """The journal's health as the runner sees it; safe to call from any thread."""
        r = self.report
        return JournalStatus(self.journal_ok, self._space_lost, self._cause, self._unhealthy_since,
                             r.journal_failures, r.inputs_refused, r.reserve_appends,
                             r.cancels_withheld, self._retries)

    # ------------------------------------------------------------------ the journal
    def _append(self, rtype: RecordType, payload: bytes, ts_ns: int, ts_source: int,
                clock_state: int | None = None, reserve: bool = False) -> int:
        """One record; `reserve` for a risk-reducing one, which may use the journal's reserve
        when ordinary space is gone (journal.Journal.append(reserve=True)). Every record carries
        the clock state of the last journaled clock sample unless told otherwise."""
        if clock_state is None:
            clock_state = self._clock_state
        if not reserve:
            return self.journal.append(rtype, payload, ts_ns=ts_ns, ts_source=ts_source,
                                       clock_state=clock_state)
        seq = self.journal.append(rtype, payload, ts_ns=ts_ns, ts_source=ts_source,
                                  clock_state=clock_state, reserve=True)
        if self._space_lost:
            self.report.reserve_appends += 1
        return seq

    def _input(self, rtype: RecordType, payload: bytes, ts_ns: int, source, event,
               clock_state: int | None = None, reserve: bool = False, read_ns: int = 0,
               tap: list | None = None) -> bool:
        """Write-ahead: the record first; an input the journal refused never reaches the engine
        (a refused market-data packet is a sequence gap to it: stale, fail closed). `read_ns`
        (market data): when the packet was read; the stages of a packet that sends orders are kept.
        `tap` (not with read_ns): gets the engine's actions too. False when the journal refused
        the record."""
        user = int(source) == _USER      # else a kernel or NIC stamp: not for our USER records
        try:
            self._append(rtype, payload, ts_ns, int(source), clock_state, reserve)
        except JournalError as exc:
            self._input_refused(exc, ts_ns, user)
            return False
        report = self.report
        report.inputs += 1
        if not read_ns:
            self._input_fed(event, ts_ns, user, tap)
            return True
        sent = report.orders_sent      # before: a decision's first order leaves inside on_event
        journaled_ns = _realtime()
        actions = self.engine.on_event(event)
        decided_ns = _realtime()
        self._act(actions, ts_ns if user else decided_ns)
        if report.orders_sent != sent:
            self._stages.append(PacketStages(ts_ns, int(source), read_ns, journaled_ns, decided_ns,
                                             _realtime(), report.orders_sent - sent))
        return True

    def _input_refused(self, exc: JournalError, ts_ns: int, user: bool) -> None:
        """An input the journal refused: counted, and the engine never hears it."""
        self.report.inputs_refused += 1
        self._journal_failed(exc, ts_ns if user else _realtime())

    def _input_fed(self, event, ts_ns: int, user: bool, tap: list | None = None) -> None:
        """A journaled input (not market data) to the engine, its actions carried out."""
        actions = self.engine.on_event(event)
        if tap is not None:
            tap.extend(actions)
        # the engine's notes are stamped with our clock, labelled USER: the input's own stamp
        # may be a NIC's raw PHC (TAI) time or the kernel's, which USER must never claim
        self._act(actions, ts_ns if user else _realtime())

    def _feed_internal(self, event) -> None:
        self._act(self.engine.on_event(event), event.now_ns)

    def _journal_failed(self, exc: JournalError, ts_ns: int, unsent: str = "") -> None:
        """A refused append. The engine hears of it once the current event's actions are done
        (with every order of theirs the journal refused), so it decides on the whole picture."""
        self.report.journal_failures += 1
        self._cause = f"{type(exc).__name__}: {exc}"[:200]
        if isinstance(exc, DiskFull):
            self._space_lost = True
        else:
            self._fatal = True           # e.g. a failed msync: latched in the journal for good
        if unsent:
            self._unsent.append(unsent)
        if self.journal_ok:
            self._unreported = True
        if not self._acting:
            self._report_unhealthy(ts_ns)

    def _report_unhealthy(self, now: int) -> None:
        """JournalHealth(False) to the engine (journaled first, in the reserve, so a replay sees
        it too): the gateway latches and the engine pulls everything, cancels in the reserve."""
        if not (self._unreported or self._unsent):
            return
        unsent, self._unsent = tuple(self._unsent), []
        self._unreported = False
        if self.journal_ok:
            self.journal_ok = False
            self._unhealthy_since = now
            self._next_retry = time.monotonic_ns() + self.settings.space_retry_ns
        doc = {"input": _HEALTH, "ok": False, "unsent": list(unsent), "cause": self._cause, "now_ns": now}
        try:
            self._append(RecordType.METRICS, json.dumps(doc, sort_keys=True).encode(), now,
                         int(TsSource.USER), reserve=True)
        except JournalError:
            self.report.journal_failures += 1    # not even the reserve: fail closed all the same
        self._act(self.engine.on_event(JournalHealth(now, False, unsent)), now)

    def _retry_space(self, mono_ns: int) -> None:
        """The 1 Hz retry while the disk is full. Space back: an ordinary record says so, then the
        engine hears JournalHealth(True); the gateway's latch stays until an operator re-enables."""
        self._next_retry = mono_ns + self.settings.space_retry_ns
        retry = getattr(self.journal, "retry_space", None)
        if retry is None:
            return                       # a journal that cannot tell: only a restart recovers
        self._retries += 1
        try:
            if not retry():
                return
        except JournalError as exc:      # latched failed (msync/fsync): no retry brings it back
            self._fatal = True
            self._cause = f"{type(exc).__name__}: {exc}"[:200]
            return
        now = _realtime()
        doc = {"input": _HEALTH, "ok": True, "unsent": [], "cause": "", "now_ns": now}
        try:
            self._append(RecordType.METRICS, json.dumps(doc, sort_keys=True).encode(), now, int(TsSource.USER))
        except JournalError as exc:
            self._journal_failed(exc, now)
            return
        self.journal_ok = True
        self._space_lost = False
        self._cause = ""
        self._unhealthy_since = 0
        self._act(self.engine.on_event(JournalHealth(now, True)), now)

    def _note_alert(self, kind: str, detail: str, now: int, raw: bytes = b"", reserve: bool = False) -> None:
        """A METRICS alert; `raw`: wire bytes that no other record holds (kept, as hex)."""
        doc = {"alert": kind, "detail": detail, "now_ns": now}
        if raw:
            doc["raw_hex"] = raw.hex()
        doc = json.dumps(doc, sort_keys=True).encode()
        try:
            self._append(RecordType.METRICS, doc, now, int(TsSource.USER), reserve=reserve)
        except JournalError as exc:
            self._journal_failed(exc, now)
