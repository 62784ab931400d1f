"""The runner: the engine's I/O shell on the embedded venue (or any ITCH/OUCH venue on loopback).

Owns the sockets (MoldUDP64 receive with RX timestamps, SoupBinTCP order entry with TX timestamp
keys, the re-request socket), the clocks (timers, clock samples), and write-ahead journaling:
every input is appended before the engine sees it, every order before its bytes are sent, TX
stamps (or their absence) after. Must not make trading decisions: that is mm_core.engine's job.
`engine_events()` turns journal records back into the engine's inputs for replay and recovery.
"""
from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

from audit.capture import TimestampedTcpSocket, TimestampedUdpSocket
from audit.health import PROFILES
from audit.txtrack import PendingTxTracker
from journal.catalogue import RecordType, TsSource, pack, raw_bytes, unpack, unpack_json
from journal.errors import JournalError
from mm_core.engine import Engine
from mm_core.events import (
    ClockSample, JournalHealth, JournalNote, MarketData, OperatorCommand, Reconciled,
    RequestRetransmit, SendOrder, Timer, VenueMessage,
)
from mm_core.protocol import ProtocolError, soupbintcp

__all__ = ["RunnerError", "RunnerSettings", "RunnerReport", "Runner", "engine_events"]


class RunnerError(Exception):
    """The runner cannot start or keep its connections (login refused, venue unreachable)."""


class Clock(Protocol):
    """What the runner needs from audit.monitor.ClockMonitor."""

    def current(self): ...
    def compliant(self, profile: str, now_mono_ns: int | None = None) -> bool: ...


@dataclass(frozen=True)
class RunnerSettings:
    host: str = "127.0.0.1"
    itch_port: int = 31001           # where the venue publishes MoldUDP64
    ouch_port: int = 0               # the venue's SoupBinTCP port
    rerequest_port: int = 0          # the venue's MoldUDP64 re-request port
    username: str = "MM01"
    password: str = "mmaudit"
    session: str = ""                # "" = the venue's current session
    clock_profile: str = "eu-hft"    # the risk limits' clock profile
    timer_ns: int = 100_000_000      # Timer events
    clock_period_ns: int = 1_000_000_000
    tx_timeout_ns: int = 50_000_000  # a TX stamp not seen by then is journaled as missing
    hardware_timestamps: bool = False
    fresh_session: bool = True       # nothing to reconcile: tell the gateway so at start
    busy_poll: bool = False          # spin on a zero-timeout select: lower wake-up latency, one core
    heartbeat_ns: int = 1_000_000_000  # SoupBinTCP client heartbeat after this much send silence


@dataclass
class RunnerReport:
    inputs: int = 0
    orders_sent: int = 0
    tx_stamped: int = 0
    tx_missing: int = 0
    journal_failures: int = 0
    protocol_errors: int = 0
    stop_reason: str = ""


_CLIENT_HEARTBEAT = soupbintcp.encode(soupbintcp.ClientHeartbeat())


def _realtime() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


class Runner:
    """One engine session against one venue; `run(duration_s)` returns a RunnerReport."""

    def __init__(self, engine: Engine, journal, settings: RunnerSettings, clock: Clock) -> None:
        if settings.clock_profile not in PROFILES:
            raise RunnerError(f"unknown clock profile {settings.clock_profile!r}")
        self.engine = engine
        self.journal = journal
        self.settings = settings
        self.clock = clock
        self.report = RunnerReport()
        self.tx = PendingTxTracker(settings.tx_timeout_ns)
        self.framer = soupbintcp.Framer()
        self.soup_seq = 0
        self.tcp_bytes = 0               # bytes written to the order-entry socket (TX keys)
        self.journal_ok = True
        self._md: TimestampedUdpSocket | None = None
        self._oe: TimestampedTcpSocket | None = None
        self._last_send_mono = 0

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        s = self.settings
        md = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        md.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        md.bind((s.host, s.itch_port))
        md.setblocking(False)
        self._md = TimestampedUdpSocket(md, s.hardware_timestamps)
        try:
            self._oe = TimestampedTcpSocket.connect((s.host, s.ouch_port), hardware=s.hardware_timestamps)
        except OSError as exc:
            raise RunnerError(f"cannot reach the venue's order entry at {s.host}:{s.ouch_port}: {exc}") from exc
        # Ask for the first venue message the engine has not seen: 1 for a fresh engine, last + 1
        # after a replay, so a restarted or reconnected engine gets every message exactly once.
        first = self.engine.venue_seq + 1
        login = soupbintcp.encode(soupbintcp.LoginRequest(s.username, s.password, s.session, first))
        self._send_tcp(login)

    def close(self) -> None:
        for sock in (self._md, self._oe):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    def _send_tcp(self, data: bytes) -> int:
        key = self._oe.send(data)
        self.tcp_bytes += len(data)
        self._last_send_mono = time.monotonic_ns()
        return key

    def _heartbeat_if_idle(self, mono_ns: int) -> None:
        """A venue drops a silent client (SoupBinTCP: after 15 s by default), so keep the link alive.
        Heartbeats are session keep-alives, not order events: their TX stamps match no ORDER_SENT."""
        if mono_ns - self._last_send_mono >= self.settings.heartbeat_ns:
            self._send_tcp(_CLIENT_HEARTBEAT)

    # ------------------------------------------------------------------ the loop
    def run(self, duration_s: float, stop: threading.Event | None = None) -> RunnerReport:
        """Trade until duration_s passed, `stop` is set or the venue ends the session."""
        s = self.settings
        self.connect()
        now = _realtime()
        self._feed_internal(JournalHealth(now, True))
        if s.fresh_session:
            self._feed_internal(Reconciled(now, True))
        sel = selectors.DefaultSelector()
        sel.register(self._md.sock, selectors.EVENT_READ, "md")
        sel.register(self._oe.sock, selectors.EVENT_READ, "oe")
        mono = time.monotonic_ns
        deadline = mono() + int(duration_s * 1e9)
        next_timer = next_clock = mono()
        try:
            while mono() < deadline and not (stop is not None and stop.is_set()):
                wait = 0 if s.busy_poll else max(0, min(next_timer, next_clock, deadline) - mono()) / 1e9
                for key, _ in sel.select(wait):
                    if key.data == "md":
                        self._on_md()
                    elif not self._on_oe():
                        self.report.stop_reason = "venue closed the order-entry session"
                        return self.report
                t = mono()
                if t >= next_clock:
                    self._on_clock(t)
                    next_clock = t + s.clock_period_ns
                if t >= next_timer:
                    self._on_timer(t)
                    next_timer = t + s.timer_ns
                self._heartbeat_if_idle(t)
            self.report.stop_reason = "stopped" if stop is not None and stop.is_set() else "duration"
            return self.report
        finally:
            sel.close()
            self._drain_tx(mono() + s.tx_timeout_ns)
            self.close()

    # ------------------------------------------------------------------ inputs
    def _on_md(self) -> None:
        for _ in range(256):    # bounded: the timers and the order socket get their turn
            try:
                data, rx_ns, source = self._md.recv(65536)
            except (BlockingIOError, InterruptedError):
                # readable for the error queue only: TX stamps of our re-requests (not evidence
                # of any order) would keep the socket readable for ever, so drain them
                self._md.poll_tx_timestamps()
                return
            self._input(RecordType.MD_PACKET, data, rx_ns, source, MarketData(data, rx_ns, source))

    def _on_oe(self) -> bool:
        """Readable order entry: TX stamps on the error queue (they make the socket readable too)
        and/or venue bytes. False when the venue closed the connection."""
        self._drain_tx(time.monotonic_ns())
        try:
            data, rx_ns, source = self._oe.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return True
        if not data:
            return False
        try:
            frames = self.framer.feed(data)
        except ProtocolError as exc:
            self.report.protocol_errors += 1
            self._note_alert("venue-framing-error", str(exc), rx_ns)
            return False
        for frame in frames:
            ptype = frame[2]
            msg_type = 0
            if ptype == ord("S"):
                self.soup_seq += 1
                msg_type = frame[3] if len(frame) > 3 else 0
            elif ptype == ord("A"):
                try:
                    accepted = soupbintcp.decode(frame, soupbintcp.Direction.FROM_SERVER)
                    self.soup_seq = accepted.sequence - 1
                except ProtocolError:
                    pass
            elif ptype == ord("J"):
                raise RunnerError(f"login rejected by the venue: {frame[3:]!r}")
            payload = pack(RecordType.VENUE_MSG, soup_seq=self.soup_seq if ptype == ord("S") else 0,
                           packet_type=ptype, msg_type=msg_type, raw=frame[:128])
            self._input(RecordType.VENUE_MSG, payload, rx_ns, source, VenueMessage(frame, rx_ns, source))
        return True

    def _on_timer(self, mono_ns: int) -> None:
        now = _realtime()
        payload = pack(RecordType.TIMER, timer_id=1, now_ns=now)
        self._input(RecordType.TIMER, payload, now, TsSource.USER, Timer(now, 1))
        self._drain_tx(mono_ns)

    def _on_clock(self, mono_ns: int) -> None:
        """Journal the newest clock sample and tell the engine whether it is compliant now. The
        record's compliant bit for our profile is what the engine was told (a stale sample or a
        failed monitor clears it), so a replay sees exactly the same input."""
        sample = self.clock.current()
        compliant = bool(self.clock.compliant(self.settings.clock_profile, mono_ns))
        record = unpack(RecordType.CLOCK_SAMPLE, sample.payload()).copy()
        bit = 1 << PROFILES[self.settings.clock_profile].bit
        record["compliant_mask"] = (int(record["compliant_mask"]) | bit) if compliant else \
            (int(record["compliant_mask"]) & ~bit)
        now = _realtime()
        self._input(RecordType.CLOCK_SAMPLE, record.tobytes(), now, TsSource.USER,
                    ClockSample(now, compliant), clock_state=int(sample.state))

    def operator(self, command: OperatorCommand) -> None:
        """An operator command (kill, enable, safe mode), journaled as OPERATOR_CMD first."""
        doc = {"command": command.command, "actor": command.actor, "reason": command.reason,
               "scope": command.scope, "scope_id": command.scope_id}
        self._input(RecordType.OPERATOR_CMD, json.dumps(doc, sort_keys=True).encode(),
                    command.now_ns, TsSource.USER, command)

    def _input(self, rtype: RecordType, payload: bytes, ts_ns: int, source, event,
               clock_state: int = 0) -> None:
        """Write-ahead: the record first; an input the journal refused never reaches the engine."""
        try:
            self.journal.append(rtype, payload, ts_ns=ts_ns, ts_source=int(source), clock_state=clock_state)
        except JournalError:
            self._journal_failed(ts_ns)
            return
        self.report.inputs += 1
        self._act(self.engine.on_event(event), ts_ns)

    def _feed_internal(self, event) -> None:
        self._act(self.engine.on_event(event), event.now_ns)

    def _journal_failed(self, ts_ns: int) -> None:
        self.report.journal_failures += 1
        if self.journal_ok:
            self.journal_ok = False
            # the gateway latches and denies every order; cancels it asks for are still sent
            self._act(self.engine.on_event(JournalHealth(ts_ns, False)), ts_ns)

    # ------------------------------------------------------------------ outputs
    def _act(self, actions: Iterable, now: int) -> None:
        for action in actions:
            if isinstance(action, SendOrder):
                self._send_order(action)
            elif isinstance(action, RequestRetransmit):
                # from the market-data socket: the re-request server answers the sender's address
                self._md.sock.sendto(action.packet, (self.settings.host, self.settings.rerequest_port))
            elif isinstance(action, JournalNote):
                try:
                    self.journal.append(action.rtype, action.payload, ts_ns=now, ts_source=int(TsSource.USER))
                except JournalError:
                    self._journal_failed(now)

    def _send_order(self, action: SendOrder) -> None:
        intent, packet = action.intent, action.packet
        decision = action.decision
        tskey = (self.tcp_bytes + len(packet) - 1) & 0xFFFFFFFF
        payload = pack(
            RecordType.ORDER_SENT, token=intent.token.encode(), orig_token=intent.orig_token.encode(),
            msg_type=packet[3], side=int(intent.side), tif=intent.tif, symbol_id=intent.symbol_id,
            price=intent.price, qty=intent.qty, algo_id=intent.algo_id, desk_id=intent.desk_id,
            trader_id=intent.trader_id, client_id=intent.client_id, risk_verdict=1,
            trading_state=action.trading_state,
            limits_version=getattr(decision, "limits_version", 0), tskey=tskey, raw=packet)
        now = _realtime()
        try:
            seq = self.journal.append(RecordType.ORDER_SENT, payload, ts_ns=now, ts_source=int(TsSource.USER))
        except JournalError:
            # Rule 1: an order that is not in the journal does not go out.
            self._journal_failed(now)
            return
        key = self._send_tcp(packet)
        if key != tskey:
            self._note_alert("tskey-mismatch", f"journaled {tskey}, socket says {key}", now)
        for outcome in self.tx.sent(key, time.monotonic_ns(), seq):
            self._journal_tx(outcome)
        self.report.orders_sent += 1

    def _drain_tx(self, mono_ns: int) -> None:
        for outcome in self.tx.collect(self._oe.poll_tx_timestamps(), mono_ns):
            self._journal_tx(outcome)

    def _journal_tx(self, outcome) -> None:
        if outcome.status == 0:
            self.report.tx_stamped += 1
        else:
            self.report.tx_missing += 1
        payload = pack(RecordType.TX_TS, order_seq=outcome.context, tskey=outcome.tskey,
                       status=int(outcome.status), source=int(outcome.source), tx_ts_ns=outcome.ts_ns)
        try:
            self.journal.append(RecordType.TX_TS, payload, ts_ns=outcome.ts_ns,
                                ts_source=int(outcome.source))
        except JournalError:
            self._journal_failed(_realtime())

    def _note_alert(self, kind: str, detail: str, now: int) -> None:
        doc = json.dumps({"alert": kind, "detail": detail, "now_ns": now}, sort_keys=True).encode()
        try:
            self.journal.append(RecordType.METRICS, doc, ts_ns=now, ts_source=int(TsSource.USER))
        except JournalError:
            self._journal_failed(now)


def engine_events(records: Iterable, profile: str = "eu-hft", fresh_session: bool = True) -> Iterator:
    """The engine inputs a journal holds, in journal order, for replay through a fresh engine.

    records: journal.Reader records (seq, rtype, ts_ns, ts_source, clock_state, payload). The
    facts the runner fed without a record of their own come first: the journal was healthy (it
    took these records) and, for a fresh session, nothing needed reconciling.
    """
    bit = 1 << PROFILES[profile].bit
    started = False
    for rec in records:
        rtype = rec.rtype
        if not started:
            started = True
            yield JournalHealth(rec.ts_ns, True)
            if fresh_session:
                yield Reconciled(rec.ts_ns, True)
        if rtype == RecordType.MD_PACKET:
            yield MarketData(rec.payload, rec.ts_ns, TsSource(rec.ts_source))
        elif rtype == RecordType.VENUE_MSG:
            raw = raw_bytes(unpack(RecordType.VENUE_MSG, rec.payload))
            yield VenueMessage(raw, rec.ts_ns, TsSource(rec.ts_source))
        elif rtype == RecordType.TIMER:
            timer = unpack(RecordType.TIMER, rec.payload)
            yield Timer(int(timer["now_ns"]), int(timer["timer_id"]))
        elif rtype == RecordType.CLOCK_SAMPLE:
            sample = unpack(RecordType.CLOCK_SAMPLE, rec.payload)
            yield ClockSample(rec.ts_ns, bool(int(sample["compliant_mask"]) & bit))
        elif rtype == RecordType.OPERATOR_CMD:
            doc = unpack_json(rec.payload)
            yield OperatorCommand(rec.ts_ns, doc["command"], doc["actor"], doc["reason"],
                                  doc.get("scope", "all"), doc.get("scope_id", 0))
