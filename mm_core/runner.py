"""The runner: the engine's I/O shell on the embedded venue (or any ITCH/OUCH venue on loopback).

Owns the sockets (MoldUDP64 receive with RX timestamps, SoupBinTCP order entry with TX timestamp
keys, the re-request socket), the clocks (timers, clock samples, the 1 Hz space retry), operator
commands from other threads (queued, run on the runner's thread), and write-ahead journaling:
every input is appended before the engine sees it, every order before its bytes are sent, TX
stamps (or their absence) after. On a full disk only risk-reducing records may use the journal's
reserve (cancels, the venue's answers, state changes and kills, operator commands, the journal
fault itself); market data and new orders are refused, and the engine is told (JournalHealth).
Must not make trading decisions: that is mm_core.engine's job. Its work is split by concern into
mixins (runner_links, runner_inputs, runner_operator, runner_journal, runner_orders; shared names
in runner_shared); this module holds its state and the loop. Settings and report types are in
mm_core.runnertypes, the market-data socket in mm_core.mdsocket, and the mapping of journal
records back to engine inputs (for replay and recovery) in mm_core.runnerrecords.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import select
import socket
import threading
import time
from typing import Callable

from audit.capture import TimestampedTcpSocket, TimestampedUdpSocket
from audit.fastcap import SpinReader
from audit.fastsend import APPEND_SEND_ADDRESS
from audit.health import PROFILES
from audit.phc import LEAP59, LEAP61
from audit.txtrack import PendingTxTracker
from journal.catalogue import ClockState, RecordType, TsSource, pack_json, venue_payload
from journal.errors import JournalError
from mm_core.armedpulls import ArmedPulls
from mm_core.cpuplan import pinned
from mm_core.engine import Engine
from mm_core.events import JournalHealth, OperatorCommand, Reconciled, SESSION_ACTOR, VenueMessage
from mm_core.fastbook import ffi as _ffi
from mm_core.mddrops import MdDrops
from mm_core.protocol import soupbintcp
from mm_core.runner_inputs import RunnerInputs
from mm_core.runner_journal import RunnerJournal
from mm_core.runner_links import RunnerLinks
from mm_core.runner_operator import RunnerOperator
from mm_core.runner_orders import RunnerOrders
from mm_core.runner_shared import _MAX_FRAME, _MD_TURN, _ORDER_SENT, _USER, _realtime
from mm_core.runnerrecords import TAI_MINUS_UTC_S, _RUN_START
from mm_core.runnertypes import (
    Clock, OperatorReceipt, PacketStages, RunnerError, RunnerReport, RunnerSettings,
)
from mm_core.txwarm import TxPathWarmer, TxWarmError
from mm_core.warmer import Warmer

__all__ = ["Runner", "SESSION_END"]
SESSION_END = "session end"             # the close-out's kill (OPERATOR_CMD) by SESSION_ACTOR
_LOGOUT_S = 1.0                          # the close-out's logout waits this long for the venue's close
_SPIN_SLICE_NS = 1_000_000  # busy-poll's wait in C gives the loop back this often at least


def _start_offset(settings: RunnerSettings) -> int:
    """The UTC offset the runner converts PHC stamps with before its first clock sample: what a
    replay of the journal has in force there (engine_events), so live and replay agree."""
    offset = settings.utc_offset_s
    if offset is None:
        if not settings.fresh_session:
            raise RunnerError("a resumed session needs the UTC offset its journal last recorded "
                              "(RunnerSettings.utc_offset_s: Recovery.utc_offset_s)")
        return TAI_MINUS_UTC_S
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 1000:
        raise RunnerError(f"implausible TAI-UTC offset {offset!r} s")
    return offset


def _start_leap(settings: RunnerSettings) -> int:
    """The leap flag in force with _start_offset's offset (a resumed session's journal's last)."""
    leap = settings.utc_leap
    if type(leap) is not int or leap not in (0, LEAP61, LEAP59):
        raise RunnerError(f"utc_leap must be 0, {LEAP61} (leap61) or {LEAP59} (leap59), not {leap!r}")
    return leap


class Runner(RunnerLinks, RunnerInputs, RunnerOperator, RunnerJournal, RunnerOrders):
    """One engine session against one venue; `run(duration_s)` returns a RunnerReport."""

    def __init__(self, engine: Engine, journal, settings: RunnerSettings, clock: Clock, *,
                 reconciler: "Callable[[Runner, OperatorCommand], object] | None" = None,
                 md_socket: TimestampedUdpSocket | None = None) -> None:
        self._md_early = md_socket
        if settings.clock_profile not in PROFILES:
            raise RunnerError(f"unknown clock profile {settings.clock_profile!r}")
        for name, least in (("rx_timeout_ns", 1), ("send_timeout_ns", 0), ("warm_interval_ns", 0),
                            ("close_out_ns", 1)):
            value = getattr(settings, name)
            if value is None and name == "close_out_ns":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise RunnerError(f"{name} must be an int of at least {least}, not {value!r}")
        self.engine = engine
        self.journal = journal
        self.settings = settings
        self.clock = clock
        self.report = RunnerReport()
        self.tx = PendingTxTracker(settings.tx_timeout_ns)
        self.framer = soupbintcp.Framer(_MAX_FRAME)
        self.soup_seq = 0
        self.tcp_bytes = 0               # bytes written to the order-entry socket (TX keys)
        self.journal_ok = True           # what the engine was last told
        self._md: TimestampedUdpSocket | None = None
        self.md_drops: MdDrops | None = None     # the kernel's drops on it (made with it)
        self._md_from: frozenset[str] = frozenset()     # md_sources(), at connect
        self._md_foreign: set[str] = set()              # other senders already alerted
        self._oe: TimestampedTcpSocket | None = None
        self._last_send_mono = 0
        # the journal's health: refusals seen but not yet told to the engine, orders it refused
        self._acting = 0                 # > 0 while an event's actions are being carried out
        self._unreported = False
        self._unsent: list[str] = []
        # what the early sink got while no order could leave (_act_urgent): carried out first
        # with the event's other actions, so a lost order entry is said once per decision
        self._urgent_held: list = []
        self._space_lost = False         # refused for space: retry_space() may bring it back
        self._fatal = False              # refused for another reason: nothing brings it back
        self._cause = ""
        self._unhealthy_since = 0
        self._next_retry = 0
        self._retries = 0
        self._reserve_seqs: set[int] = set()    # ORDER_SENT seqs whose TX_TS may use the reserve
        # the journal's one-call append-then-send for the guard's pulls (None: a journal without it)
        self._append_send = getattr(journal, "append_then_send", None)
        # operator commands from other threads, run on the runner's thread
        self._ops: queue.Queue = queue.Queue(maxsize=settings.operator_queue)
        self._ops_lock = threading.Lock()
        self._ops_closed = False         # the run ended: nothing more is taken
        self._thread: int | None = None
        self._tx_warm: TxPathWarmer | None = None   # the send path's idle-time warmer (in run())
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._stages: collections.deque[PacketStages] = collections.deque(maxlen=settings.stage_samples)
        # the clock: samples journaled so far (a count, or the newest's times for a clock without
        # a history), the state every record carries (the last journaled sample's), what the
        # engine was last told about compliance (None: nothing yet)
        since = getattr(clock, "samples_since", None)   # the newest sample at start is journaled first
        self._clock_seen: object = max(0, since(0)[0] - 1) if since is not None else None
        self._clock_state = int(ClockState.UNKNOWN)
        self._clock_told: bool | None = None
        self._clock_looked = 0               # when _on_clock last looked (monotonic ns)
        self._clock_bit = 1 << PROFILES[settings.clock_profile].bit
        engine.urgent = self._act_urgent     # the guard's pulls go out before the event's other work
        self._armed = ArmedPulls()           # ... from what upkeep planned, while it holds
        engine.urgent_armed = self._fire_armed
        # ... and on our own fill, in the engine's C lane (flane_fire) through the plan's sink
        sink = self._armed.sink
        c_append = getattr(journal, "c_reserve_append", None)
        if self._append_send is not None and c_append is not None and not journal.closed:
            fn, writer = c_append()
            sink.send = _ffi.cast("flane_send_fn", APPEND_SEND_ADDRESS)
            sink.append, sink.writer = _ffi.cast("flane_append_fn", fn), _ffi.cast("void *", writer)
            sink.rtype, sink.ts_source = _ORDER_SENT, _USER
            engine.urgent_lane, engine.urgent_lane_booked = self._lane_ready, self._lane_booked
        # the operator's mid-session "reconcile" (recovery.midsession.LiveReconciler: the runner
        # may not import recovery, so the caller hands it in); None: the command is refused
        self.reconciler = reconciler
        self._venue_refused: set[int] = set()   # venue sequences whose VENUE_MSG the journal refused
        self._tap: list[tuple[int, bytes]] | None = None   # sequenced OUCH payloads, while tapped
        self._oe_generation = 0                  # order-entry connections made (the loop re-polls)
        self._oe_end = ""                        # why the order entry ended under us ("" while up)
        self._utc_offset_s = _start_offset(settings)   # of the last journaled clock sample (engine_time)
        self._utc_leap = _start_leap(settings)         # its leap flag (engine_time)
        self._oe_accepted = False                # the venue accepted this connection's login
        self._oe_asked = 0                       # the sequence that login asked for (0: new only)
        self._oe_eos = False                     # the venue ended the session (SoupBinTCP Z)
        self._last_rx_mono = time.monotonic_ns()  # the order entry's last read (rx_timeout)
        self._link_fault = ""                    # a link broken under a send: the engine hears it at the end
        self._logging_out = False                # a logout we asked for: the venue's close is no loss
        # where re-requests go: the venue's host as resolved once by connect()
        self._rerequest_to: tuple = (settings.host, settings.rerequest_port)
        self._venue_ip = ""                      # the venue's host, resolved once (_venue_address)
        # the scrape endpoint's refresh (mmaudit run --metrics-listen: mm_core.sessionmetrics),
        # called after each clock step, never per packet; None: nothing is published. It reads
        # clock_shown: the last journaled clock sample, (the monitor's sample, its record)
        self.publish_metrics: Callable[[], None] | None = None
        self.clock_shown: tuple | None = None

    @property
    def utc_offset_s(self) -> int:
        """The UTC offset in force (the last journaled valid one): a runner that goes on with this
        engine and journal (a reconnect) starts from it."""
        return self._utc_offset_s

    @property
    def clock_state(self) -> int:
        """The clock state every record carries now: the last journaled clock sample's."""
        return self._clock_state

    @property
    def utc_leap(self) -> int:
        """The leap flag in force with utc_offset_s (audit.phc.phc_leap), for a runner that goes
        on with this engine and journal."""
        return self._utc_leap

    # ------------------------------------------------------------------ the loop
    def run(self, duration_s: float, stop: threading.Event | None = None) -> RunnerReport:
        """Trade until duration_s passed, `stop` is set or the venue ends the session (connected
        first, unless connect() was called already). However it ends, operator commands still
        queued are answered as not carried out."""
        try:
            # busy-poll spins on this thread: alone on its CPU (trading_cpu), its caches stay its own
            with pinned(self.settings.trading_cpu):
                if self.settings.trading_cpu is not None:
                    self.report.trading_cpus = tuple(sorted(os.sched_getaffinity(0)))
                return self._run(duration_s, stop)
        finally:
            self._end_operators()

    def _run(self, duration_s: float, stop: threading.Event | None) -> RunnerReport:
        s = self.settings
        if self._md is None:
            self.connect()
        self._wake = socket.socketpair()
        self._wake[0].setblocking(False)
        self._wake[1].setblocking(False)
        self._thread = threading.get_ident()
        # the shadow is built (~7 ms) before the run's first record, not in its first idle turn
        warm = Warmer(self.engine, self._warm_failed) if s.busy_poll and s.warm_interval_ns > 0 else None
        self._start_facts(_realtime())
        self._drain_operator()              # commands queued before the wake socket existed
        md_fd, wake_fd = self._md.sock.fileno(), self._wake[0].fileno()
        poller = select.epoll()
        for fd in (md_fd, wake_fd):
            poller.register(fd, select.EPOLLIN)
        # the order-entry socket polled and its descriptor (-1: none, see _withhold)
        polled, oe_fd = self._oe, self._poll_order_entry(poller, -1)
        poll = poller.poll
        # busy-poll waits in C instead (audit.fastcap): it reads market data straight off its
        # socket, without the GIL, and watches the others (the epoll keeps their bookkeeping)
        spin = SpinReader(self._md) if s.busy_poll else None
        if spin is not None:
            spin.watch((wake_fd, oe_fd))
        mono = time.monotonic_ns
        deadline = mono() + int(duration_s * 1e9)
        # the clock first: a packet already waiting is decided with the clock's state known, not
        # denied (an order token used up) for want of a sample the loop's first turn would take
        next_timer = next_warm = t = mono()
        self._on_clock(t)
        next_clock = t + s.clock_period_ns
        upkeep = self.upkeep
        # while idle the kernel's send path is warmed too, on a loopback connection of its own
        self._tx_warm = self._tx_warmer() if warm is not None else None
        try:
            while mono() < deadline and not (stop is not None and stop.is_set()) and not self._oe_end:
                due = min(next_timer, next_clock, deadline)
                if spin is None:
                    spun, ready = 0, poll(max(0, due - mono()) / 1e9)
                else:
                    warm_due = next_warm if warm is not None else due
                    spun, ready = self._spin_turn(spin, self._spin_due(due, warm_due, t))
                if ready:
                    # market data first: a packet never waits behind TX stamps or venue answers
                    # read in the same wake-up; operators only when one woke the loop
                    fds = [fd for fd, _ in ready]
                    if md_fd in fds and spun < _MD_TURN:
                        self._on_md()
                    if oe_fd in fds and not self._on_oe():
                        return self._ended(stop)
                    if wake_fd in fds:
                        self._drain_wake()
                        self._drain_operator()
                        if self._oe is not polled:
                            # a mid-session reconciliation logged the order entry out and in again
                            # (or could not: the run goes on latched without one, see _withhold)
                            polled, oe_fd = self._oe, self._poll_order_entry(poller, oe_fd)
                            if spin is not None:
                                spin.watch((wake_fd, oe_fd))
                t = mono()
                if not self.journal_ok and self._space_lost and not self._fatal and t >= self._next_retry:
                    self._retry_space(t)
                acted = bool(ready) or spun
                if t >= next_clock:
                    self._on_clock(t)
                    next_clock = t + s.clock_period_ns
                    acted = True
                if t >= next_timer:
                    self._on_timer(t)
                    next_timer = t + s.timer_ns
                    acted = True
                if acted:
                    # what the engine's next packet would rebuild first (after our orders, the
                    # venue's answers or a timer's requotes moved the OMS), and the guard's urgent
                    # path kept warm, done before the loop waits again
                    upkeep()
                elif warm is not None and t >= next_warm:
                    warm.step()         # one shadow event, ~30 us (rebuilding a stuck one ~7 ms, rare)
                    next_warm = t + s.warm_interval_ns
                    self.report.warm_steps += 1
                    self.warm_order_path()
                    if self._tx_warm is not None:
                        self._warm_tx_path()
                self._heartbeat_if_idle(t)
            return self._ended(stop)
        finally:
            self._thread = None
            poller.close()
            if self._tx_warm is not None:
                self._tx_warm.close()
                self._tx_warm = None
            self._drain_tx(mono() + s.tx_timeout_ns)
            self._md_tail_drops()
            self.close()

    def _spin_due(self, due: int, warm_due: int, t: int) -> int:
        """When busy-poll's wait must give the loop back: the next timer, clock sample or end of
        run (`due`), shadow step, heartbeat or journal space retry, and at most _SPIN_SLICE_NS
        after the last turn (`t`), so a stop set by another thread is seen within it."""
        due = min(due, warm_due, t + _SPIN_SLICE_NS)
        if self._oe is not None:
            due = min(due, self._last_send_mono + self.settings.heartbeat_ns)
        if not self.journal_ok and self._space_lost and not self._fatal:
            due = min(due, self._next_retry)
        return due

    def _spin_turn(self, spin: SpinReader, due: int) -> tuple[int, list]:
        """Busy-poll's wait, in C, until `due`: the packets it reads taken in as _on_md takes
        them (at most _MD_TURN, the rest at once after the first, then a poll: market data
        first), and what it found ready, as the epoll's poll() lists it."""
        for i in range(_MD_TURN):
            packet = spin.wait(due if not i else 0)
            if packet is None:
                return i, spin.ready
            self._md_packet(*packet)
        return _MD_TURN, []

    def _warm_failed(self, cause: str) -> None:
        """The shadow engine failed: warming is off for the rest of the run, said in one alert."""
        self._note_alert("warmer-failed", f"idle-time warming off for this run: {cause}", _realtime())

    def _tx_warmer(self) -> TxPathWarmer | None:
        """The send path's warmer, or None (said in one alert) when its connection cannot be made."""
        try:
            return TxPathWarmer()
        except TxWarmError as exc:
            self._tx_warm_failed(exc)
            return None

    def _warm_tx_path(self) -> None:
        """One byte through the kernel's send path; a failure ends it for the run, in one alert."""
        warmer = self._tx_warm
        try:
            warmer.step()
        except TxWarmError as exc:
            self._tx_warm = None
            self._tx_warm_failed(exc)
        self.report.tx_warm_sends = warmer.sent

    def _tx_warm_failed(self, exc: TxWarmError) -> None:
        self._note_alert("tx-warm-failed", f"send-path warming off for this run: {exc}", _realtime())

    def _start_facts(self, now: int) -> None:
        """What every run starts from: the journal takes records and, for a fresh session, nothing
        needs reconciling. Journaled as one record before the engine hears them, at that record's
        time, so a replay feeds them at the same time and place (engine_events): packets already
        waiting carry earlier stamps, so no other record's time would do."""
        fresh = self.settings.fresh_session
        doc = {"input": _RUN_START, "journal_ok": True, "reconciled": fresh, "now_ns": now}
        refused = None
        try:
            self._append(RecordType.METRICS, json.dumps(doc, sort_keys=True).encode(), now, _USER, reserve=True)
        except JournalError as exc:      # told to the engine right after the facts (fail closed)
            refused = exc
        self._feed_internal(JournalHealth(now, True))
        if fresh:
            self._feed_internal(Reconciled(now, True))
        if refused is not None:
            self._journal_failed(refused, now)

    def _ended(self, stop: threading.Event | None) -> RunnerReport:
        """The loop is over: a link that broke under a send is told to the engine now (outside any
        event of its own; a link lost on a read was told as it was found, _link_lost), the
        close-out runs when the settings ask for one, and the report says why it ended; the
        venue's End of Session is a clean end, not a lost venue."""
        clean = "stopped" if stop is not None and stop.is_set() else "duration"
        if self._link_fault:
            reason, self._link_fault = self._link_fault, ""
            self._link_dead(reason)
        if self.settings.close_out_ns is not None:
            self._close_out(self.settings.close_out_ns)
        if self._link_fault:             # the link broke under the close-out's cancels
            reason, self._link_fault = self._link_fault, ""
            self._link_dead(reason)
        report = self.report
        report.venue_lost = bool(self._oe_end) and not self._oe_eos
        report.stop_reason = self._oe_end or clean
        return report

    def _close_out(self, bound_ns: int) -> None:
        """The end of trading: the trading state noted, then, with the order entry up, the engine
        pulls every order of ours (a kill by "session", journaled as an operator's is, so a replay
        makes the same pulls), the venue's answers are read until no order is open in the OMS or
        bound_ns passed (market data is read meanwhile, as in the run), and the order entry logs
        out. The clock is looked at as in the run (each clock period, and once at the end), so
        the records of the close-out and the session's last carry its state at the time. The
        orders still open are named."""
        report, risk, oms = self.report, self.engine.risk, self.engine.oms
        report.closing_state, report.closing_faults = risk.state.name, list(risk.faults)
        report.closing_latch = risk.latch_details
        start = time.monotonic_ns()
        if self._oe is not None and not self._oe_end:
            report.close_out_ran = True
            sent = report.orders_sent
            self._carry_out(OperatorCommand(_realtime(), "kill", SESSION_ACTOR, SESSION_END), OperatorReceipt())
            report.closing_cancels = report.orders_sent - sent
            deadline = start + bound_ns
            period = self.settings.clock_period_ns
            while oms.live and self._oe is not None and not self._oe_end:
                t = time.monotonic_ns()
                if t >= deadline:
                    break
                if t >= self._clock_looked + period:
                    self._on_clock(t)
                due = min(deadline, self._last_send_mono + self.settings.heartbeat_ns, self._clock_looked + period)
                # market data goes on being journaled (and fed: trading is halted by the kill),
                # not left in the socket to be lost unrecorded when it closes
                watched = [self._oe.sock] if self._md is None else [self._md.sock, self._oe.sock]
                ready = select.select(watched, [], [], max(due - t, 0) / 1e9)[0]
                if self._md is not None and self._md.sock in ready:
                    self._on_md()
                if self._oe.sock in ready and not self._on_oe():
                    break
                self._heartbeat_if_idle(time.monotonic_ns())
            if self._oe is not None and not self._oe_end and not self._link_fault:
                self.logout_order_entry(_LOGOUT_S)
                report.logged_out = True
        self._on_clock(time.monotonic_ns())
        report.orders_open = list(oms.live)
        report.close_out_s = round((time.monotonic_ns() - start) / 1e9, 3)

    def journaled_venue_seqs(self) -> set[int]:
        """The venue sequences the journal holds: every one up to the last received, but those
        whose record it refused (the ones before this runner's login came from its journal's
        earlier session or recovery, which journaled each before the engine saw it)."""
        return set(range(1, self.soup_seq + 1)) - self._venue_refused

    def alert(self, kind: str, detail: str) -> None:
        """A METRICS alert record, stamped with this runner's clock (USER)."""
        self._note_alert(kind, detail, _realtime())

    def journal_recon(self, doc: dict, now: int) -> int:
        """A RECON record (JSON), in the reserve like the venue's answers: its sequence, or 0 when
        the journal refused it (the engine hears of that as of any refused record)."""
        try:
            return self._append(RecordType.RECON, pack_json(doc), now, _USER, reserve=True)
        except JournalError as exc:
            self._journal_failed(exc, now)
            return 0

    def feed(self, event) -> None:
        """An event with no record of its own (its RECON record is journaled): engine, then act."""
        self._feed_internal(event)

    def act(self, actions, now: int) -> None:
        """Carry out actions decided outside on_event (a resolution applied to the engine)."""
        self._act(actions, now)

    def deliver_venue(self, sequence: int, frame: bytes, now: int) -> bool:
        """A sequenced venue frame the journal lacks (read from the venue's full view): journaled
        as VENUE_MSG with its own sequence, then fed; False when the journal refused it."""
        rtype, payload = venue_payload(sequence, frame[2], frame[3] if len(frame) > 3 else 0, frame)
        if not self._input(rtype, payload, now, TsSource.USER,
                           VenueMessage(frame, now, TsSource.USER), reserve=True):
            return False
        self._venue_refused.discard(sequence)
        return True

    def packet_stages(self) -> list[PacketStages]:
        """The newest market-data packets that sent orders, with their stage times (oldest first);
        what the early sink sent inside on_event (a decision's first order, the guard's pulls)
        counts in the decision stage."""
        return list(self._stages)
