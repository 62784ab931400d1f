"""The runner's operator commands: queued from other threads (the control socket, drills), run
on the runner's thread between events, journaled as OPERATOR_CMD before the engine hears them,
and answered with a receipt; a reconcile command runs the session's reconciler. Part of Runner
(mm_core.runner); makes no trading decision.
"""
from __future__ import annotations

import json
import queue
import threading

from journal.catalogue import RecordType, TsSource, unpack
from mm_core.events import JournalNote, OperatorCommand, SYSTEM_ACTORS
from mm_core.runner_shared import _realtime
from mm_core.runnertypes import OperatorReceipt, RunnerError

_OPERATOR_REFUSED = "operator-refused"    # the alert of a command the engine or runner refused
_NOT_CARRIED_OUT = "the session ended before the runner reached it: not carried out"


class RunnerOperator:
    """Runner's operator commands (a mixin of Runner: its state is Runner's)."""

    # ------------------------------------------------------------------ operators
    def operator(self, command: OperatorCommand) -> OperatorReceipt:
        """An operator command (kill, enable, safe mode), from any thread: queued for the runner's
        thread, which journals it as OPERATOR_CMD (a kill may use the reserve) and then gives it
        to the engine; "reconcile" goes to the reconciler instead (its RECON records say who).
        Returns an OperatorReceipt set once that happened (at once on the runner's own thread).
        RunnerError when the queue is full (the runner is not draining it), or when the command
        names a system actor: the close-out's kill by "session" is the runner's own (recovery
        releases it as such), no caller's."""
        if command.actor in SYSTEM_ACTORS:
            raise RunnerError(f"actor {command.actor!r} is the system's own; {command.command!r} refused")
        done = OperatorReceipt()
        if self._thread == threading.get_ident():
            self._carry_out(command, done)
            return done
        with self._ops_lock:
            if self._ops_closed:
                raise RunnerError(f"the session has ended; {command.command!r} by {command.actor} "
                                  "not carried out")
            try:
                self._ops.put_nowait((command, done))
            except queue.Full:
                raise RunnerError(f"{self._ops.maxsize} operator commands already wait for the runner; "
                                  f"{command.command!r} by {command.actor} refused") from None
        wake = self._wake
        if wake is not None:
            try:
                wake[1].send(b"!")
            except OSError:          # full (it is awake anyway) or closed (the run ended)
                pass
        return done

    def _drain_wake(self) -> None:
        try:
            while self._wake[0].recv(4096):
                pass
        except OSError:
            pass

    def _drain_operator(self) -> None:
        while True:
            try:
                command, done = self._ops.get_nowait()
            except queue.Empty:
                return
            self._carry_out(command, done)

    def _end_operators(self) -> None:
        """The run is over: take no more commands; those still queued are answered as not
        carried out (never left waiting, never answered as done)."""
        with self._ops_lock:
            self._ops_closed = True
        while True:
            try:
                command, done = self._ops.get_nowait()
            except queue.Empty:
                return
            done.refusal = f"{command.command} by {command.actor}: {_NOT_CARRIED_OUT}"
            done.set()

    def _carry_out(self, command: OperatorCommand, receipt: OperatorReceipt) -> None:
        """One command on the runner's thread; its receipt is set whatever happens, and an
        exception (after being written on the receipt) goes on to stop the run as ever."""
        try:
            self._operator_now(command, receipt)
        except BaseException as exc:
            receipt.error = receipt.error or f"{command.command} failed on the runner: {type(exc).__name__}: {exc}"
            raise
        finally:
            receipt.set()

    def _operator_now(self, command: OperatorCommand, receipt: OperatorReceipt) -> None:
        if command.command == "reconcile":
            self._reconcile_now(command, receipt)
            return
        doc = {"command": command.command, "actor": command.actor, "reason": command.reason,
               "scope": command.scope, "scope_id": command.scope_id}
        if command.origin:
            doc["origin"] = command.origin
        decided: list = []
        failed = self.report.sends_failed
        try:
            receipt.journaled = self._input(RecordType.OPERATOR_CMD, json.dumps(doc, sort_keys=True).encode(),
                                            command.now_ns, TsSource.USER, command, reserve=True, tap=decided)
        except OSError as exc:       # the order entry failed under the command's own orders
            receipt.journaled = True
            receipt.error = (f"{command.command} journaled and applied by the engine, but its orders could not "
                             f"be sent to the venue ({type(exc).__name__}: {exc}): cancels did not leave, "
                             "orders may still rest at the venue; the run stops")
            raise
        if self.report.sends_failed != failed:   # the order entry failed under them: the run stops
            receipt.error = (f"{command.command} journaled and applied by the engine, but its orders could not "
                             f"be sent to the venue ({self._oe_end}): cancels did not leave, "
                             "orders may still rest at the venue; the run stops")
        receipt.refusal = next((a.summary.removeprefix(_OPERATOR_REFUSED + ": ") for a in decided
                                if isinstance(a, JournalNote) and a.summary.startswith(_OPERATOR_REFUSED)), "")
        receipt.kills_in_force = self.engine.risk.scoped_kills_text()
        kills = [a for a in decided if isinstance(a, JournalNote) and a.rtype == RecordType.KILL]
        if kills:       # as its KILL record counts them: the cancels the kill sent
            receipt.orders_cancelled = int(unpack(RecordType.KILL, kills[0].payload)["orders_cancelled"])

    # ------------------------------------------------------------------ mid-session reconciliation
    def _reconcile_now(self, command: OperatorCommand, receipt: OperatorReceipt) -> None:
        """The operator's "reconcile": the venue reconciliation recovery does, done by the
        reconciler the caller handed in, on the runner's thread (trading waits meanwhile)."""
        if self.reconciler is None:
            receipt.refusal = f"reconcile by {command.actor}: this runner has no reconciler"
            self._note_alert(_OPERATOR_REFUSED, receipt.refusal, _realtime())
            return
        receipt.reconciliation = self.reconciler(self, command)
