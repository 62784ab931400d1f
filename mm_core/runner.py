"""The runner: the engine's I/O shell on the embedded venue (or any ITCH/OUCH venue on loopback).

Owns the sockets (MoldUDP64 receive with RX timestamps, SoupBinTCP order entry with TX timestamp
keys, the re-request socket), the clocks (timers, clock samples, the 1 Hz space retry), operator
commands from other threads (queued, run on the runner's thread), and write-ahead journaling:
every input is appended before the engine sees it, every order before its bytes are sent, TX
stamps (or their absence) after. On a full disk only risk-reducing records may use the journal's
reserve (cancels, the venue's answers, state changes and kills, operator commands, the journal
fault itself); market data and new orders are refused, and the engine is told (JournalHealth).
Must not make trading decisions: that is mm_core.engine's job. `engine_events()` turns journal
records back into the engine's inputs for replay and recovery.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import ipaddress
import json
import os
import queue
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

from audit.capture import TimestampedTcpSocket, TimestampedUdpSocket
from audit.fastcap import SpinReader
from audit.rxbuffer import DEFAULT_RCVBUF, RxBufferError, size_receive_buffer
from audit.fastsend import APPEND_SEND_ADDRESS
from audit.health import PROFILES
from audit.phc import LEAP59, LEAP61, leap_utc_ns, phc_leap, phc_offset
from audit.txtrack import PendingTxTracker, TxOutcome, TxStatus
from journal.catalogue import (
    PAYLOAD_DTYPES, RAW_ORDER_MAX, ClockState, RecordType, TsSource, layout_struct, pack, pack_json,
    unpack, unpack_json, venue_fields, venue_payload,
)
from journal.errors import DiskFull, JournalError
from mm_core.armedpulls import ArmedPulls
from mm_core.fastbook import ffi as _ffi, lib as _fastlib
from mm_core.mddrops import MdDrops
from mm_core.engine import Engine
from mm_core.events import (
    SESSION_ACTOR, SYSTEM_ACTORS, ClockSample, JournalHealth, JournalNote, MarketData, OperatorCommand, Reconciled,
    RequestRetransmit, SendOrder, Timer, VenueMessage, market_data_of, timer_of, venue_message_of,
)
from mm_core.protocol import ProtocolError, ouch, soupbintcp
from mm_core.types import OrderKind, Side, make_intent
from mm_core.warmer import Warmer

__all__ = ["RunnerError", "LoginRejected", "VenueSequenceError", "RunnerSettings", "RunnerReport",
           "PacketStages", "STAGES", "stage_latencies", "JournalStatus", "Runner", "engine_events", "order_sent_payload", "engine_time",
           "TAI_MINUS_UTC_S"]


class RunnerError(Exception):
    """The runner cannot start or keep its connections (login refused, venue unreachable)."""


class LoginRejected(RunnerError):
    """The venue refused the order-entry login: `reason` is SoupBinTCP's code (A not authorised,
    S session unavailable: the previous connection is not closed yet, worth retrying)."""

    def __init__(self, reason: str) -> None:
        why = {"A": "not authorised", "S": "session unavailable"}.get(reason, f"code {reason!r}")
        super().__init__(f"login rejected by the venue: {why}")
        self.reason = reason


class VenueSequenceError(RunnerError):
    """The venue's LoginAccepted starts elsewhere than the login asked (a gap, or messages the
    engine already had): nothing of that session is fed; the engine is latched unreconciled."""

    reason = "sequence"      # not SoupBinTCP's S: logging in again would only repeat it


class Clock(Protocol):
    """What the runner needs from audit.monitor.ClockMonitor (which also offers samples_since(),
    so that every sample is journaled; without it the runner journals the newest sample when it
    changed)."""

    def current(self): ...
    def compliant(self, profile: str, now_mono_ns: int | None = None) -> bool: ...


@dataclass(frozen=True)
class RunnerSettings:
    host: str = "127.0.0.1"
    itch_port: int = 31001           # where the venue publishes MoldUDP64
    md_bind: str = ""                # local address that receives it: "" = the venue's host when it is
                                     # loopback (this machine), else every local address; a multicast
                                     # group is joined (md_interface: the local address to join on)
    md_interface: str = "0.0.0.0"
    md_sources: tuple[str, ...] = ()  # addresses the venue's market data comes from: () = its host
    md_rcvbuf: int = DEFAULT_RCVBUF  # its socket's receive buffer, bytes (audit.rxbuffer says why)
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
    # TAI - UTC in force until the first clock sample with a valid one: None = TAI_MINUS_UTC_S for
    # a fresh session; a resumed one (fresh_session False) must name the journal's last
    # (recovery.Recovery.utc_offset_s, Runner.utc_offset_s), as replay converts, or is refused
    utc_offset_s: int | None = None
    # the leap flag in force with it (audit.phc.LEAP61 / LEAP59, 0 none): a resumed session names
    # the journal's last too (Recovery.utc_leap)
    utc_leap: int = 0
    busy_poll: bool = False          # spin (in C) on the sockets: lower wake-up latency, one core
    heartbeat_ns: int = 1_000_000_000  # SoupBinTCP client heartbeat after this much send silence
    rx_timeout_ns: int = 15_000_000_000  # order entry dead after this long with nothing received
                                         # (SoupBinTCP's 15 s; the venue heartbeats every second)
    send_timeout_ns: int = 250_000_000   # a send to the order entry blocked this long: the venue
                                         # is not reading, the link is lost (SO_SNDTIMEO)
    space_retry_ns: int = 1_000_000_000  # while the disk is full, ask the journal for space this often
    operator_queue: int = 64           # operator commands waiting for the runner's thread, at most
    stage_samples: int = 4096          # market-data packets that sent orders, stage times kept (newest)
    # busy-poll: step a shadow engine through the order path this often while nothing is read, so
    # a packet finds that code in the caches (mm_core.warmer); 0 = off. Not in epoll-wait mode.
    warm_interval_ns: int = 250_000
    # a clean end (duration, stop): the engine pulls every order (a journaled kill by "session"),
    # the venue's answers are read, journaled and fed until none of ours is open or this long
    # passed, then the order entry logs out. None: the run just stops (drills, tests that own
    # the end); mm_core.session sets it.
    close_out_ns: int | None = None


@dataclass
class RunnerReport:
    inputs: int = 0
    orders_sent: int = 0
    tx_stamped: int = 0
    tx_missing: int = 0
    tx_late: int = 0                 # stamps after the timeout: a second TX_TS (LATE) after MISSING
    tx_unmatched: int = 0            # stamps for no known send (never sent, or expired too long ago)
    tx_repeated: int = 0             # stamps again for a send already stamped (TCP retransmitted it)
    journal_failures: int = 0        # appends the journal refused
    inputs_refused: int = 0          # inputs (market data...) the journal refused: never fed
    reserve_appends: int = 0         # risk-reducing records written while the disk was full
    cancels_withheld: int = 0        # cancels not sent: even the reserve refused their record
    orders_unsent: int = 0           # journaled, not sent: no order entry (a re-login failed)
    protocol_errors: int = 0
    md_foreign: int = 0              # datagrams on the market-data port from other addresses: not read
    md_kernel_drops: int = 0         # market-data datagrams the kernel dropped (receive buffer full)
    md_rcvbuf: int = 0               # that socket's receive buffer as the kernel counts it (2x usable)
    warm_steps: int = 0              # idle-time shadow events (mm_core.warmer; busy-poll only)
    sends_failed: int = 0            # journaled orders the socket refused (TX_TS status SEND_FAILED)
    venue_lost: bool = False         # the order entry ended under us: closed, reset, framing error,
                                     # silent past rx_timeout, a send past send_timeout (not after
                                     # the venue's End of Session)
    stop_reason: str = ""
    # the close-out (RunnerSettings.close_out_ns): the trading state, faults and latch when trading
    # ended, before its kill; whether it ran (not when the order entry had ended under the run: nothing
    # was pulled, nothing asked of the venue); the cancels it sent; the orders still open after it
    # (tokens; without a close-out, those the OMS held); whether the order entry logged out; how
    # long it took
    closing_state: str = ""
    closing_faults: list[str] = field(default_factory=list)
    closing_latch: dict[str, str] = field(default_factory=dict)    # check label -> why it latched
    close_out_ran: bool = False
    closing_cancels: int = 0
    orders_open: list[str] = field(default_factory=list)
    logged_out: bool = False
    close_out_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PacketStages:
    """Where the time went for one market-data packet that sent orders (CLOCK_REALTIME ns): the
    RX stamp (kernel or hardware when `source` says so), the packet read by the runner, its record
    journaled, the engine's decision returned, and every order of it journaled and sent."""

    rx_ns: int
    source: int
    read_ns: int
    journaled_ns: int
    decided_ns: int
    sent_ns: int
    orders: int


STAGES = ("rx->read", "read->journaled", "journaled->decided", "decided->sent")


def stage_latencies(stages: Iterable[PacketStages]) -> dict[str, list[int]]:
    """ns per stage over the packets: waiting to be read after the RX stamp (only where the
    stamp is the kernel's software one, on the same clock: a user-space stand-in says nothing
    about the wait, a NIC's PHC is another clock), journaling the packet, the engine's decision,
    journaling and sending the orders."""
    out: dict[str, list[int]] = {name: [] for name in STAGES}
    for st in stages:
        if st.source == TsSource.SW_KERNEL:
            out["rx->read"].append(st.read_ns - st.rx_ns)
        out["read->journaled"].append(st.journaled_ns - st.read_ns)
        out["journaled->decided"].append(st.decided_ns - st.journaled_ns)
        out["decided->sent"].append(st.sent_ns - st.decided_ns)
    return out


class OperatorReceipt(threading.Event):
    """Set once the runner's thread carried out an operator command. `journaled`: its
    OPERATOR_CMD record was written (False: the journal refused it, so the engine never saw it);
    `refusal`: the engine's or runner's reason for refusing it ("" when it was carried out);
    `reconciliation`: what a "reconcile" found and did (the reconciler's result); `error`: why
    it failed on the runner's thread ("" when it did not: an exception there, e.g. a kill whose
    cancels could not be sent, is reported here and never as done)."""

    def __init__(self) -> None:
        super().__init__()
        self.journaled: bool | None = None
        self.refusal = ""
        self.reconciliation = None
        self.error = ""
        self.kills_in_force = ""         # the scoped kills in force once it was carried out
        self.orders_cancelled: int | None = None    # a kill's cancels, as its KILL record says


@dataclass(frozen=True)
class JournalStatus:
    """The journal as the runner last saw it, for an operator (Runner.journal_health())."""

    ok: bool                 # the engine was last told the journal takes every record
    space_low: bool          # ordinary space gone: only risk-reducing records are written
    cause: str               # the last refusal, "" when healthy
    unhealthy_since_ns: int  # when the engine was told it is not, 0 when healthy
    failures: int            # appends refused since the runner started
    inputs_refused: int
    reserve_appends: int
    cancels_withheld: int
    retries: int             # retry_space() calls made while the disk was full


_CLIENT_HEARTBEAT = soupbintcp.encode(soupbintcp.ClientHeartbeat())
_CANCEL = ord("X")                   # OUCH Cancel Order: the order record may use the reserve
_HEARTBEAT = ord("H")                # SoupBinTCP server heartbeat: not an answer, never reserved
_EXECUTED = ord("E")                 # OUCH Executed: maybe our own fill, for the guard's lane
_LANE_NOT, _LANE_REFUSED = _fastlib.FLANE_NOT, _fastlib.FLANE_REFUSED
# an OUCH Executed frame of no quote (a NUL token) for 0 shares, which the lane never takes: upkeep
# runs the frame read's path to flane_fire_input on it (nothing is journaled, sent or changed)
_PROBE_FILL = b"\x00\x29SE" + bytes(8 + 14 + 4) + (1).to_bytes(4, "big") + b"A" + bytes(8)
_RESERVED_NOTES = frozenset({RecordType.RISK_DECISION, RecordType.STATE_CHANGE, RecordType.KILL})
_HEALTH = "journal-health"           # METRICS {"input": ...}: a JournalHealth fed to the engine
_EAGAIN = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})   # a send that hit SO_SNDTIMEO
_USER = int(TsSource.USER)
_ORDER_SENT = int(RecordType.ORDER_SENT)
# what Runner.upkeep plans (and never sends) to keep the urgent path warm: a cancel, as pulls are
_WARM_PULL = [SendOrder(make_intent(OrderKind.CANCEL, "WARM", 0, Side.BUY, 0, 0, (0, 0, 0, 0)),
                        soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.CancelOrder("WARM", 0)))),
                        None, 0)]
_OPERATOR_REFUSED = "operator-refused"    # the alert of a command the engine or runner refused
_OE_LOST_ALERT = "order-entry-lost"      # the alert of orders held back with no order entry
_NOT_CARRIED_OUT = "the session ended before the runner reached it: not carried out"
_OE_CLOSED = "venue closed the order-entry session"
_OE_EOS = "venue end of session"         # the venue's SoupBinTCP End of Session: a clean end
SESSION_END = "session end"             # the close-out's kill (OPERATOR_CMD) by SESSION_ACTOR
_LOGOUT_S = 1.0                          # the close-out's logout waits this long for the venue's close
_MAX_FRAME = soupbintcp.MAX_LENGTH_FIELD  # any legal SoupBinTCP frame (a long Debug packet too)
# METRICS {"input": ...} records the engine hears as they are journaled (engine_events):
_RUN_START = "run-start"             # a run began: JournalHealth(ok) and, fresh, Reconciled(True)
_LINK_LOST = "order-entry-dead"      # closed, reset, mis-framed, silent or a send failed: Reconciled(False)
# a frame that is not the last of its read, or that a read's partial frame follows: the read's one
# stamp (its last segment's) is only an upper bound on when this frame arrived
_RECEIVED_BY = {TsSource.SW_KERNEL: TsSource.SW_KERNEL_BY, TsSource.HW_PHC: TsSource.HW_PHC_BY}


TAI_MINUS_UTC_S = 37      # TAI - UTC in force since 2017-01-01 (IERS), until a clock sample says it
_PHC_SOURCES = frozenset({TsSource.HW_PHC, TsSource.HW_PHC_BY})
_HW_PHC = TsSource.HW_PHC
_MD_TURN = 256            # market-data packets read in one turn of the loop, at most
_SPIN_SLICE_NS = 1_000_000  # busy-poll's wait in C gives the loop back this often at least


def engine_time(ts_ns: int, source: int, utc_offset_s: int, utc_leap: int = 0) -> int:
    """The engine's (UTC) time of an input its record stamps ts_ns by `source`: a NIC's PHC stamp
    is TAI, so the UTC offset in force — that of the last journaled clock sample that set one
    (audit.phc.phc_offset: 0 when the GM is on the ARB timescale, whose PHC is taken as is), else
    TAI_MINUS_UTC_S — is taken off, and that sample's leap flag (audit.phc.phc_leap) applied as
    the reports apply it (audit.phc.leap_utc_ns); every other stamp is CLOCK_REALTIME (UTC)
    already. The record keeps the raw stamp; the runner and engine_events convert alike, so
    replay is exact."""
    if source not in _PHC_SOURCES:
        return ts_ns
    utc_ns = ts_ns - utc_offset_s * 1_000_000_000
    return leap_utc_ns(utc_ns, utc_leap) if utc_leap else utc_ns


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


def _oserror(exc: OSError) -> str:
    """ConnectionResetError ECONNRESET (Connection reset by peer), EADDRNOTAVAIL (...)"""
    kind = "" if type(exc) is OSError else f"{type(exc).__name__} "
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{kind}{name} ({exc.strerror})" if name else f"{type(exc).__name__}: {exc}"


def _realtime() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def resolve_ipv4(name: str, what: str) -> str:
    """The IPv4 address of `name` (a dotted address is itself). Callers look a name up once and
    keep the address: a name service failure mid-session must not cost a re-request or a
    reconnect. RunnerError, one line naming `what`, when it cannot be resolved."""
    try:
        return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except (OSError, UnicodeError) as exc:
        raise RunnerError(f"cannot resolve {what}: {exc}") from None


def md_bind_address(settings: RunnerSettings, venue_ip: str = "") -> str:
    """Where the market-data socket binds: md_bind, else the venue's host when it is loopback (the
    embedded venue publishes there), else every local address (a remote venue's unicast feed).
    `venue_ip`: the host's address as the runner resolved it (a name is not looked up again)."""
    if settings.md_bind:
        return settings.md_bind
    host = venue_ip or settings.host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:                   # a host name, not resolved here
        loopback = host == "localhost"
    return host if loopback else "0.0.0.0"


def market_data_socket(settings: RunnerSettings, venue_ip: str = "") -> socket.socket:
    """The non-blocking UDP socket that receives the venue's MoldUDP64 (md_bind_address; a
    multicast group is joined on md_interface), its receive buffer md_rcvbuf. RunnerError, one
    line, when it cannot be made."""
    address = md_bind_address(settings, venue_ip)
    md = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if settings.itch_port:
            # a named port may be shared on purpose (a multicast group, a restart); port 0 asks the
            # kernel for one of this socket's own, which it may hand out while another socket
            # with SO_REUSEADDR holds it: that socket would then take this session's datagrams
            md.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # sized before the bind: no datagram is queued under the kernel's default
        size_receive_buffer(md, settings.md_rcvbuf)
        md.bind((address, settings.itch_port))
        try:
            multicast = ipaddress.ip_address(address).is_multicast
        except ValueError:
            multicast = False
        if multicast:
            md.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                          socket.inet_aton(address) + socket.inet_aton(settings.md_interface))
        md.setblocking(False)
    except (OSError, RxBufferError, ValueError) as exc:
        md.close()
        if not isinstance(exc, OSError):
            raise RunnerError(f"market-data receive buffer: {exc}") from None
        raise RunnerError(f"cannot receive market data on {address}:{settings.itch_port}: "
                          f"{_oserror(exc)} (--md-bind sets the local address)") from None
    return md


def open_market_data(settings: RunnerSettings, venue_ip: str = "") -> TimestampedUdpSocket:
    """market_data_socket with the kernel's stamping on: what the runner reads market data from.
    A caller that starts the venue itself opens it first (Runner's md_socket), so that stamps are
    on for the datagrams the venue sends before the runner connects."""
    return TimestampedUdpSocket(market_data_socket(settings, venue_ip), settings.hardware_timestamps)


def md_sources(settings: RunnerSettings, venue_ip: str = "") -> frozenset[str]:
    """The addresses the venue's market data (and its re-request replies) may come from:
    settings.md_sources, or the venue's host (`venue_ip`: its address as the runner resolved it;
    else looked up here); names resolved once, here. RunnerError when one does not resolve."""
    if not settings.md_sources and venue_ip:
        return frozenset((venue_ip,))
    names = settings.md_sources or (settings.host,)
    return frozenset(resolve_ipv4(name, f"the market data's source {name}") for name in names)


_MD_FOREIGN_NAMED = 16      # other senders named in an alert, at most (the rest only counted)


class Runner:
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

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        s = self.settings
        venue = self._venue_address()
        self._rerequest_to = (venue, s.rerequest_port)
        self._md_from = md_sources(s, venue)
        self._open_md(venue)
        self._connect_oe()

    def _open_md(self, venue_ip: str) -> None:
        """The market-data socket (market_data_socket), the kernel's drops on it counted."""
        s = self.settings
        # one opened before the venue started (open_market_data, bound to settings.itch_port) holds
        # what the venue sent since: its start of day is read, not re-requested
        self._md, self._md_early = self._md_early or open_market_data(s, venue_ip), None
        self._md.count_drops()
        self.md_drops = MdDrops(self._md, s.md_rcvbuf)
        self.report.md_rcvbuf = self.md_drops.kernel_bytes

    def _venue_address(self) -> str:
        """The venue host's IPv4 address, looked up once for the runner's life: its order entry
        (and every reconnect), its re-requests and its market data's source all use it."""
        if not self._venue_ip:
            self._venue_ip = resolve_ipv4(self.settings.host, f"the venue's host {self.settings.host!r}")
        return self._venue_ip

    def _connect_oe(self) -> None:
        s = self.settings
        self.framer = soupbintcp.Framer(_MAX_FRAME)
        self.tcp_bytes = 0
        self._oe_accepted = self._oe_eos = False
        try:
            self._oe = TimestampedTcpSocket.connect((self._venue_address(), s.ouch_port),
                                                    hardware=s.hardware_timestamps,
                                                    send_timeout_ns=s.send_timeout_ns)
        except OSError as exc:
            raise RunnerError(f"cannot reach the venue's order entry at {s.host}:{s.ouch_port}: {exc}") from exc
        # Ask for the first venue message the engine has not seen: last + 1 after a replay or a
        # reconnect, so a restarted or reconnected engine gets every message exactly once. A fresh
        # session asks for new messages only (0): the account's earlier messages of the day are an
        # earlier session's; the LoginAccepted (journaled) names the sequence it joined at.
        if self._oe_generation:
            first = self.soup_seq + 1
        elif s.fresh_session and not self.engine.venue_seq:
            first = 0
        else:
            first = self.engine.venue_seq + 1
        self._oe_asked = first
        login = soupbintcp.encode(soupbintcp.LoginRequest(s.username, s.password, s.session, first))
        self._oe_end = ""
        self._last_rx_mono = time.monotonic_ns()     # the venue has rx_timeout to answer
        if self._send_control(login) < 0:
            raise RunnerError(f"cannot log in to the venue's order entry at {s.host}:{s.ouch_port}: "
                              f"{self._oe_end}")
        self._oe_generation += 1

    def close(self) -> None:
        for sock in (self._md, self._oe, *(self._wake or ())):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    def _send_tcp(self, data: bytes) -> int:
        """`data` on the order entry: its TX key, or -1 when the socket refused it (reset, broken
        pipe) or the order entry already ended; the run then stops with that reason."""
        if self._oe_end:
            return -1
        try:
            key = self._oe.send(data)
        except OSError as exc:
            return self._send_failed(exc)
        return self._wrote(len(data), key)

    def _send_control(self, data: bytes) -> int:
        """A send that carries no order (login, heartbeat, logout), as _send_tcp: its TX stamp
        is expected and not evidence of any order, so it is not counted in tx_unmatched."""
        key = self._send_tcp(data)
        if key >= 0:
            for outcome in self.tx.control_sent(key, time.monotonic_ns()):
                self._journal_tx(outcome)
        return key

    def _send_failed(self, exc: OSError) -> int:
        """The order entry refused a send: the run stops with that reason. -1. A send that found
        no room for send_timeout (the venue is not reading; part of it may have gone, so the stream
        is cut) loses the link too, and the engine is told once the event at hand is done (_ended):
        what the venue holds is unknown until a reconciliation."""
        if exc.errno in _EAGAIN:
            reason = (f"order entry send timed out: the venue took no bytes for "
                      f"{self.settings.send_timeout_ns / 1e9:g} s (link lost)")
            if not self._oe_end:
                self._note_alert("order-entry-send-timeout", reason, _realtime())
            self._oe_broke(reason)
        else:
            self._oe_broke(f"order entry send failed: {_oserror(exc)}")
        return -1

    def _wrote(self, n: int, key: int) -> int:
        """n bytes went to the order entry whole, their TX key `key`: returned."""
        self.tcp_bytes += n
        self._last_send_mono = time.monotonic_ns()
        return key

    def _oe_lost(self, reason: str) -> bool:
        """The order entry ended under us (the first reason is kept): the run stops. False."""
        if not self._oe_end:
            self._oe_end = reason
        return False

    def _oe_broke(self, reason: str) -> bool:
        """The link broke under a send or a stamp read (inside an event's actions, where the engine
        cannot be fed): the first such loss is told to the engine once that is done (_ended). False."""
        if not self._oe_end and not self._logging_out:
            self._link_fault = reason
        return self._oe_lost(reason)

    def _link_lost(self, reason: str) -> bool:
        """The venue closed, reset, mis-framed or went silent on the order entry (found outside
        any event): the engine is told now, once per link loss (it latches and pulls what rests,
        its cancels tried while the link still takes them), then the run stops with `reason`.
        Not after the venue's End of Session or during a logout we asked for: those end cleanly."""
        if self._oe_end or self._logging_out:
            return self._oe_lost(reason)
        self._link_dead(reason)
        # the stop reason is the loss, even if the cancels' send failed too (their own record)
        self._oe_end, self._link_fault = reason, ""
        return False

    def _venue_silent(self, mono_ns: int) -> None:
        """Nothing read from the order entry for rx_timeout (SoupBinTCP: the link is dead after
        15 s; a live venue heartbeats every second): a hung or half-open venue. Alert, the engine
        told (it latches and pulls what rests, its cancels tried on the link), the link ended."""
        silent_s = (mono_ns - self._last_rx_mono) / 1e9
        reason = (f"order entry silent for {silent_s:.1f} s (rx_timeout "
                  f"{self.settings.rx_timeout_ns / 1e9:g} s): link dead")
        self._note_alert("order-entry-silent", reason, _realtime())
        self._link_lost(reason)

    def _link_dead(self, reason: str) -> None:
        """The engine hears that the order entry died under it: an input record (a replay feeds
        it as well), then Reconciled(False): the gateway latches until a reconciliation."""
        now = _realtime()
        doc = json.dumps({"input": _LINK_LOST, "cause": reason, "now_ns": now}, sort_keys=True).encode()
        self._input(RecordType.METRICS, doc, now, TsSource.USER, Reconciled(now, False), reserve=True)

    def _heartbeat_if_idle(self, mono_ns: int) -> None:
        """A venue drops a silent client (SoupBinTCP: after 15 s by default), so keep the link alive.
        Heartbeats are session keep-alives, not order events: their TX stamps match no ORDER_SENT
        (and are not counted as stamps for no known send)."""
        if mono_ns - self._last_send_mono >= self.settings.heartbeat_ns and self._oe is not None:
            self._send_control(_CLIENT_HEARTBEAT)

    # ------------------------------------------------------------------ the loop
    def run(self, duration_s: float, stop: threading.Event | None = None) -> RunnerReport:
        """Trade until duration_s passed, `stop` is set or the venue ends the session (connected
        first, unless connect() was called already). However it ends, operator commands still
        queued are answered as not carried out."""
        try:
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
                self._heartbeat_if_idle(t)
            return self._ended(stop)
        finally:
            self._thread = None
            poller.close()
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

    def _poll_order_entry(self, poller, old_fd: int) -> int:
        """Poll the current order-entry socket instead of the one before (closed: the poller
        forgot it); its descriptor, -1 with none."""
        if old_fd >= 0:
            with contextlib.suppress(OSError, ValueError):
                poller.unregister(old_fd)
        if self._oe is None:
            return -1
        fd = self._oe.sock.fileno()
        try:
            poller.register(fd, select.EPOLLIN)
        except FileExistsError:
            poller.modify(fd, select.EPOLLIN)
        return fd

    # ------------------------------------------------------------------ inputs
    def _on_md(self, errors: bool = True) -> int:
        """Read (and journal, and feed) the packets waiting, at most _MD_TURN (the timers and the
        order socket get their turn); how many. `errors`: with none waiting, the socket was
        readable for its error queue, which is drained."""
        for i in range(_MD_TURN):
            try:
                data, sender, rx_ns, source = self._md.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                if not i and errors:
                    # readable for the error queue only: TX stamps of our re-requests (not
                    # evidence of any order) would keep the socket readable for ever, so drain
                    # them (after packets were read the next wake-up finds them, if any)
                    self._md.poll_tx_timestamps()
                return i
            self._md_packet(data, sender, rx_ns, source)
        return _MD_TURN

    def _md_packet(self, data: bytes, sender: tuple, rx_ns: int, source) -> None:
        """One datagram read off the market-data socket: journaled and fed, or refused when it
        does not come from the venue's market data. Drops the kernel counted before it are
        journaled ahead of it: the gap it may open has its cause in the journal."""
        md = self._md
        if md is not None and md.rx_drops and md.rx_drops != self.md_drops.seen:
            self._md_dropped(self.md_drops.new())
        if sender[0] not in self._md_from:
            self._md_refused(data, sender[0])
            return
        if source != _HW_PHC:
            now = rx_ns
        elif self._utc_leap:
            now = engine_time(rx_ns, source, self._utc_offset_s, self._utc_leap)
        else:
            now = rx_ns - self._utc_offset_s * 1_000_000_000                 # engine_time inlined
        self._input(RecordType.MD_PACKET, data, rx_ns, source, market_data_of(data, now, source),
                    read_ns=_realtime())

    def _md_dropped(self, n: int, tail: bool = False) -> None:
        """n datagrams the kernel dropped on the market-data socket: counted, and journaled in an
        alert (MdDrops.alert: at most one a second, the run's end naming any held back)."""
        self.report.md_kernel_drops += n
        now = _realtime()
        text = self.md_drops.alert(n, self.report.md_kernel_drops, now, tail)
        if text is not None:
            self._note_alert("md-kernel-drops", text, now)

    def _md_tail_drops(self) -> None:
        """At the end of a run: the drops no datagram read carried (the socket's own count)."""
        if self.md_drops is None:
            return
        try:
            self._md_dropped(self.md_drops.tail(), tail=True)
        except RxBufferError as exc:
            self._note_alert("md-kernel-drops", f"drops after the last datagram read not known: {exc}", _realtime())

    def _md_refused(self, data: bytes, sender: str) -> None:
        """A datagram from an address the venue's market data does not come from (anyone can
        send to the port): never fed to the engine, counted, the first from each sender
        journaled in an alert with its bytes (a flood of them cannot fill the journal)."""
        self.report.md_foreign += 1
        if sender not in self._md_foreign and len(self._md_foreign) < _MD_FOREIGN_NAMED:
            self._md_foreign.add(sender)
            self._note_alert("md-foreign-source", f"market data from {sender} refused (expected "
                             f"{', '.join(sorted(self._md_from))}); later ones only counted",
                             _realtime(), data[:256])

    def _on_oe(self) -> bool:
        """Readable order entry: TX stamps on the error queue (they make the socket readable too)
        and/or venue bytes. False when the order entry ended: the venue closed or reset it (the
        bytes of a frame cut short are journaled in an alert), or its stream cannot be framed."""
        mono_ns = time.monotonic_ns()
        self._drain_tx(mono_ns)
        try:
            data, rx_ns, source = self._oe.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            return self._link_lost(f"order entry read failed: {_oserror(exc)}")
        self._last_rx_mono = mono_ns
        if not data:
            partial = self.framer.partial
            if partial:
                self._note_alert("venue-partial-frame", f"the venue's stream ended {len(partial)} bytes "
                                 "into a frame", _realtime(), partial)
            return self._link_lost(_OE_CLOSED)
        return self._on_oe_bytes(data, rx_ns, source)

    def _on_oe_bytes(self, data: bytes, rx_ns: int, source) -> bool:
        error = None
        try:
            frames = self.framer.feed(data)
        except ProtocolError as exc:     # the whole frames before the bad length go in first
            frames, error = self.framer.salvaged, exc
        rejected = None
        bound = _RECEIVED_BY.get(source, source)    # USER: taken after the read, true for every frame
        last = len(frames) - 1 if error is None and not self.framer.buffered else -1
        for i, frame in enumerate(frames):
            src = source if i == last else bound
            ptype = frame[2]
            msg_type = 0
            if ptype == ord("S"):
                self.soup_seq += 1
                msg_type = frame[3] if len(frame) > 3 else 0
            elif ptype == ord("A"):
                try:
                    accepted = soupbintcp.decode(frame, soupbintcp.Direction.FROM_SERVER)
                except ProtocolError:
                    accepted = None
                if accepted is not None and self._oe_asked and accepted.sequence != self._oe_asked:
                    raise self._venue_sequence(accepted.sequence, b"".join(frames[i:]))
                if accepted is not None:
                    self.soup_seq = accepted.sequence - 1
                    self._oe_accepted = True
            elif ptype == ord("J"):
                rejected = frame             # raised once the frames up to it are journaled
            elif ptype == ord("Z"):
                # the venue ended the session: nothing more is sent (orders decided from here on
                # are withheld), the run ends cleanly; the frames after it are still taken
                self._oe_eos = True
                self._oe_lost(_OE_EOS)
            now = engine_time(rx_ns, src, self._utc_offset_s, self._utc_leap)
            fed = self._fill_first(frame, now, rx_ns, src) if msg_type == _EXECUTED else None
            if fed is None:
                rtype, payload = venue_payload(self.soup_seq if ptype == ord("S") else 0, ptype, msg_type, frame)
                # the venue's answers may use the reserve: the engine must know what it owns
                fed = self._input(rtype, payload, rx_ns, src, venue_message_of(frame, now, src),
                                  reserve=ptype != _HEARTBEAT)
            if not fed and msg_type:
                self._venue_refused.add(self.soup_seq)
            if msg_type and self._tap is not None:
                self._tap.append((self.soup_seq, frame[3:]))
            if rejected is not None:
                raise LoginRejected(rejected[3:4].decode("ascii", "replace"))
        if error is not None:
            self.report.protocol_errors += 1
            self._note_alert("venue-framing-error", str(error), _realtime(), self.framer.unframed)
            return self._link_lost(f"venue framing error: {error}")
        return True

    def _venue_sequence(self, start: int, unfed: bytes) -> VenueSequenceError:
        """The login asked for _oe_asked, the venue starts at `start`: its frames from the
        LoginAccepted on are kept in an alert, never fed; the engine latches (its pulls still go
        out), then the connection is closed unread and the link ends."""
        why = (f"the venue's login starts at sequence {start}, the runner asked for {self._oe_asked}: "
               "nothing of that session was fed")
        self._note_alert("venue-sequence", why, _realtime(), unfed)
        self._link_dead(why)
        self.drop_order_entry()
        self._oe_lost(why)
        return VenueSequenceError(why)

    def _on_timer(self, mono_ns: int) -> None:
        now = _realtime()
        payload = pack(RecordType.TIMER, timer_id=1, now_ns=now)
        self._input(RecordType.TIMER, payload, now, TsSource.USER, Timer(now, 1))
        self._drain_tx(mono_ns)
        if mono_ns - self._last_rx_mono >= self.settings.rx_timeout_ns and self._oe is not None \
                and not self._oe_end:
            self._venue_silent(mono_ns)

    def _on_clock(self, mono_ns: int) -> None:
        """Journal each clock sample the monitor took since the last look, exactly once and at its
        own measurement time, and tell the engine whether it is compliant. The record's compliant
        mask is what the engine was told: a monitor that went stale or failed (it says not
        compliant while its sample says compliant) clears every profile bit. A monitor that
        stalled without a new sample gets one UNKNOWN record, at now, with no bits. A replay sees
        exactly the same inputs."""
        self._clock_looked = mono_ns
        clock, profile = self.clock, self.settings.clock_profile
        newest = clock.current()
        ok = bool(clock.compliant(profile, mono_ns))
        trusted = ok or not newest.compliant(profile)
        since = getattr(clock, "samples_since", None)
        if since is not None:
            self._clock_seen, new, missed = since(self._clock_seen)
            if missed:
                self._note_alert("clock-samples-missed", f"{missed} clock samples left the monitor's "
                                 "history before the runner could journal them", _realtime())
        else:       # a clock without a history (a drill or test clock): its newest sample, if new
            key = (newest.mono_ns, newest.realtime_ns)
            new = (newest,) if key != self._clock_seen else ()
            self._clock_seen = key
        for sample in new:
            record, state = self._clock_payload(sample)
            if not trusted:
                record["compliant_mask"] = 0
            self._clock_record(record, sample.realtime_ns, state)
        if not new and not ok and self._clock_told is not False:
            record, _ = self._clock_payload(newest)
            record["state"], record["error_bound_ns"], record["compliant_mask"] = int(ClockState.UNKNOWN), -1, 0
            self._clock_record(record, _realtime(), ClockState.UNKNOWN)

    def _clock_payload(self, sample):
        """A sample's CLOCK_SAMPLE record and state. One that does not fit the layout (a value no
        PTP field can hold reached the sample) is not evidence: it goes in as UNKNOWN with no
        bound and no bits, and a METRICS alert says why; the session carries on fail-closed."""
        try:
            return unpack(RecordType.CLOCK_SAMPLE, sample.payload()).copy(), sample.state
        except ValueError as exc:
            self._note_alert("clock-sample-unfit", f"a {sample.state.name} clock sample does not fit "
                             f"CLOCK_SAMPLE: {exc}", _realtime())
            payload = pack(RecordType.CLOCK_SAMPLE, state=int(ClockState.UNKNOWN), error_bound_ns=-1,
                           last_sync_age_ns=-1, gm_clock_accuracy=0xFE)
            return unpack(RecordType.CLOCK_SAMPLE, payload).copy(), ClockState.UNKNOWN

    def _clock_record(self, record, ts_ns: int, state: ClockState) -> None:
        """One CLOCK_SAMPLE: journaled, then given to the engine; later records carry its state,
        the engine's answer to it included (a clock fault pulls the quotes: those cancels)."""
        compliant = bool(int(record["compliant_mask"]) & self._clock_bit)
        before, self._clock_state = self._clock_state, int(state)
        if self._input(RecordType.CLOCK_SAMPLE, record.tobytes(), ts_ns, TsSource.USER,
                       ClockSample(ts_ns, compliant), clock_state=int(state)):
            self._clock_told = compliant
            sets, offset = phc_offset(record)
            if sets:
                self._utc_offset_s = int(offset)
                self._utc_leap = int(phc_leap(record))
        else:
            self._clock_state = before     # the journal refused the sample: its state is not in force

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

    def journaled_venue_seqs(self) -> set[int]:
        """The venue sequences the journal holds: every one up to the last received, but those
        whose record it refused (the ones before this runner's login came from its journal's
        earlier session or recovery, which journaled each before the engine saw it)."""
        return set(range(1, self.soup_seq + 1)) - self._venue_refused

    @property
    def order_entry_connected(self) -> bool:
        return self._oe is not None

    @property
    def order_entry_logged_in(self) -> bool:
        """Connected, and the venue accepted the login (LoginAccepted read)."""
        return self._oe is not None and self._oe_accepted

    def drop_order_entry(self) -> None:
        """Close the order entry without a logout (a login the venue refused, a broken socket);
        the TX stamps still due are collected or journaled missing first."""
        oe = self._oe
        if oe is None:
            return
        with contextlib.suppress(OSError):
            self._drain_tx(time.monotonic_ns() + self.settings.tx_timeout_ns)
        self._oe, self._oe_accepted, self._oe_end = None, False, ""   # the run goes on (see _withhold)
        self._oe_eos, self._link_fault = False, ""
        with contextlib.suppress(OSError):
            oe.close()

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

    def tap_order_entry(self, tap: list | None) -> None:
        """Collect (sequence, OUCH payload) of every sequenced venue message read from now on into
        `tap` (None: stop)."""
        self._tap = tap

    def pump_order_entry(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the venue's order entry and take what it sent (journaled and
        fed as ever). False when nothing came, or the venue closed the session."""
        oe = self._oe
        if oe is None or not select.select([oe.sock], [], [], max(timeout, 0.0))[0]:
            return False
        return self._on_oe()

    def logout_order_entry(self, timeout: float) -> None:
        """Log out of the venue's order entry: what it still sends until it closes is taken as
        ever, the TX stamps still due are collected (or journaled missing), the socket closed."""
        oe = self._oe
        if oe is None:
            return
        self._logging_out = True
        try:
            self._send_control(soupbintcp.encode(soupbintcp.LogoutRequest()))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not select.select([oe.sock], [], [], max(deadline - time.monotonic(), 0.0))[0]:
                    break
                if not self._on_oe():
                    break
            self._drain_tx(time.monotonic_ns() + self.settings.tx_timeout_ns)
        finally:
            self._logging_out = False
        self._oe, self._oe_end = None, ""     # a close we asked for: the run goes on (see _withhold)
        self._oe_eos, self._link_fault = False, ""
        try:
            oe.close()
        except OSError:
            pass

    def login_order_entry(self) -> None:
        """Log in to the order entry again, asking for the sequence after the last one received
        (the run loop polls the new connection); RunnerError when the venue cannot be reached."""
        self._connect_oe()

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
        journaled_ns = _realtime()
        actions = self.engine.on_event(event)
        decided_ns = _realtime()
        sent = report.orders_sent
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

    def _fill_first(self, frame: bytes, now: int, ts_ns: int, source) -> bool | None:
        """An OUCH Executed frame, maybe our own fill, as _input would take it, with the guard
        first: one C call (Engine.lane_first) journals it, hears the fill, decides and journals
        and sends the guard's pulls from upkeep's plan; then the engine hears the frame and books
        what that call did. None, having done nothing, where that call does not take the frame
        (not a fill of an armed quote; the plan, journal or order entry not fit: _lane_ready);
        else as _input: False when the journal refused the frame."""
        if self._space_lost:             # the reserve's appends are counted in Python (_append)
            return None
        sink = self._lane_ready()
        if sink == _ffi.NULL:
            return None
        rc = self.engine.lane_first(frame, now, sink, self.soup_seq, ts_ns, int(source))
        if rc == _LANE_NOT:
            return None
        user = int(source) == _USER
        if rc == _LANE_REFUSED:
            self._input_refused(self.journal.refusal(sink.input_seq, RecordType.VENUE_MSG), ts_ns, user)
            return False
        self.report.inputs += 1
        self._input_fed(venue_message_of(frame, now, source), ts_ns, user)
        return True

    def packet_stages(self) -> list[PacketStages]:
        """The newest market-data packets that sent orders, with their stage times (oldest first);
        a guard pull the early sink sent inside on_event counts in the decision stage."""
        return list(self._stages)

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

    # ------------------------------------------------------------------ outputs
    def _act(self, actions: Iterable, now: int) -> None:
        """Carry out one decision. Its orders are journaled one by one (write-ahead) and then
        leave together in one send: a later order no longer waits for the kernel to deliver the
        earlier ones (on loopback the send syscall carries the receiver's side too), and all of
        them carry the one TX stamp of that send. While the journal refuses records, each order
        goes alone, so a refused one never shifts the stamp key another was journaled with; one
        refused inside a planned send is replaced by a SoupBinTCP Debug packet of its length
        (venues ignore those; its bytes are journaled in an alert), so the others keep their key."""
        self._acting += 1
        try:
            # the common decision, orders only (a requote's replaces, a pull's cancels): journaled
            # and sent in one C call, as the Python path below would
            if not self._orders_fast(actions):
                self._act_python(actions, now)
        finally:
            self._acting -= 1
        if not self._acting and (self._unreported or self._unsent):
            self._report_unhealthy(now)

    def _act_python(self, actions: Iterable, now: int) -> None:
        """_act's work in Python, action by action."""
        key = -1
        if self.journal_ok and not self._unreported:
            planned = sum(len(a.packet) for a in actions if isinstance(a, SendOrder))
            key = (self.tcp_bytes + planned - 1) & 0xFFFFFFFF
        self._act_from(actions, now, key, [], False)

    def _act_from(self, actions: Iterable, now: int, key: int, batch: list, padded: bool) -> None:
        """_act's work from `actions` on, with `batch` the orders of the planned send (stamp key
        `key`, -1: none) journaled so far and `padded` whether a filler is among them."""
        for action in actions:
            if isinstance(action, SendOrder):
                entry = self._journal_order(action, key)
                if entry is not None:
                    batch.append(entry)
                    if key < 0:
                        self._send_orders(batch)
                        batch = []
                elif key >= 0:
                    batch.append(self._filler(action, key, now))
                    padded = True
            elif isinstance(action, RequestRetransmit):
                self._rerequest(action, now)
            elif isinstance(action, JournalNote):
                try:
                    self._append(action.rtype, action.payload, now, int(TsSource.USER),
                                 reserve=action.rtype in _RESERVED_NOTES)
                except JournalError as exc:
                    self._journal_failed(exc, now)
        if batch and (not padded or any(seq for _, seq, _ in batch)):
            self._send_orders(batch, padded)

    def _rerequest(self, action: RequestRetransmit, now: int) -> None:
        """A MoldUDP64 re-request, from the market-data socket (the re-request server answers the
        sender's address). A send the kernel refuses (ENOBUFS, unreachable) is journaled as an
        alert and the decision's other actions go on: the engine asks again on its timer."""
        try:
            self._md.sock.sendto(action.packet, self._rerequest_to)
        except OSError as exc:
            self._note_alert("rerequest-failed", f"re-request of {action.count} packet(s) from {action.sequence} "
                             f"to {self._rerequest_to[0]}:{self._rerequest_to[1]} not sent: {_oserror(exc)}", now)

    def _act_urgent(self, actions: list) -> None:
        """The guard's pulls, journaled and sent while the engine is still inside on_event. A
        refusal by the journal is told to the engine after the event (never re-entering it)."""
        self._acting += 1
        try:
            if not self._orders_fast(actions):
                self._act_python(actions, _realtime())
        finally:
            self._acting -= 1

    def _orders_fast(self, actions: list) -> bool:
        """The orders' ORDER_SENT records and their one send in one C call (the journal's
        append_then_send: every record in before the bytes go, none sent if one is refused), with
        the records, stamp key and TX bookkeeping _act would give them. False, having done
        nothing, where only _act's Python path applies: the journal or order entry unhealthy, a
        journal without the call, an action that is not an order, cancels mixed with other orders
        (only a cancel's record may use the journal's reserve, and the call takes one flag)."""
        send, oe = self._append_send, self._oe
        if send is None or oe is None or self._oe_end or not self.journal_ok or self._unreported:
            return False
        plan = self._orders_plan(actions, oe)
        if plan is None:
            return False
        key, payloads, data, fd, cancels = plan
        try:
            seqs, status, err = send(_ORDER_SENT, payloads, _USER, self._clock_state, cancels, fd, data)
        except (TypeError, OverflowError, ValueError):     # arguments it does not take: nothing was done
            return False
        self._orders_sent(actions, key, data, cancels, seqs, status, err)
        return True

    def _fire_armed(self, orders: list) -> Callable[[list[SendOrder]], None] | None:
        """The engine's armed sink: the guard's pulls of these orders journaled and sent from
        the plan upkeep made (ArmedPulls), in one C call, before the engine builds them. Returns
        the call that books the built pulls (as _orders_fast would after its send), or None,
        having done nothing, where the plan or the journal and order entry do not allow it."""
        out = self._armed_out(orders)
        if out is None:
            return None
        key, payloads, data = out
        try:
            seqs, status, err = self._append_send(_ORDER_SENT, payloads, _USER, self._clock_state, True,
                                                  self._oe.sock.fileno(), data)
        except (TypeError, OverflowError, ValueError):
            return None

        return lambda pulls: self._armed_booked(pulls, key, payloads, data, seqs, status, err)

    def _armed_booked(self, pulls: list[SendOrder], key: int, payloads: list[bytes], data: bytes,
                      seqs, status: int, err: int) -> None:
        """The pulls the engine built, booked as sent from the plan (journaled as `payloads`)."""
        self._acting += 1
        try:
            self._orders_sent(pulls, key, data, True, seqs, status, err)
            for action, payload in zip(pulls, payloads):
                if order_sent_payload(action, key) != payload:    # never: the plan is the engine's
                    # the journal no longer says what was sent: fail closed, as on a journal
                    # failure (the engine hears it after this event: latched, every quote pulled)
                    now = _realtime()
                    self._note_alert("armed-pull-mismatch", f"{action.intent.token}: its ORDER_SENT "
                                     "was journaled from a plan that differs from the pull built", now)
                    self._journal_failed(JournalError(f"armed pull {action.intent.token}: the journaled "
                                                      "ORDER_SENT differs from the order built"), now)
                    break
        finally:
            self._acting -= 1

    def _lane_ready(self):
        """The engine's C lane asks for the sink: the plan's, with the send's stamp key base, the
        socket and the clock state of now, when the armed path may send (as _armed_out); else NULL."""
        if self._append_send is None or self._oe is None or self._oe_end or not self.journal_ok or self._unreported:
            return _ffi.NULL
        armed, engine = self._armed, self.engine
        risk = engine.risk
        if armed.version != engine.armed_version or armed.verdict != (int(risk.state), risk.limits_version):
            return _ffi.NULL
        sink = armed.sink
        sink.fd, sink.tcp_bytes, sink.clock_state = self._oe.sock.fileno(), self.tcp_bytes & 0xFFFFFFFF, self._clock_state
        return sink

    def _lane_booked(self, pulls: list[SendOrder]) -> None:
        """The pulls the engine built after its C lane sent them through the sink, booked."""
        sink = self._armed.sink
        key = sink.key
        self._armed_booked(pulls, key, self._armed.patched([a.intent for a in pulls], key),
                           b"".join([a.packet for a in pulls]), tuple(sink.seqs[0:sink.n_appended]),
                           int(sink.status), int(sink.err))

    def _armed_out(self, orders: list) -> tuple[int, list[bytes], bytes] | None:
        """(stamp key, ORDER_SENT payloads, bytes) of these orders' pulls from the plan, or None
        where the plan or the journal and order entry do not allow the armed path. Reads only."""
        if self._append_send is None or self._oe is None or self._oe_end or not self.journal_ok or self._unreported:
            return None
        engine = self.engine
        risk = engine.risk
        return self._armed.out(orders, self.tcp_bytes, engine.armed_version, (int(risk.state), risk.limits_version))

    def _orders_sent(self, actions: list, key: int, data: bytes, cancels: bool, seqs: list[int],
                     status: int, err: int) -> None:
        """After the journal's append_then_send of these orders: reserve bookkeeping, the
        refused one replaced by a filler and the rest carried on, or the send's TX bookkeeping."""
        oe = self._oe
        if cancels:
            if self._space_lost:
                self.report.reserve_appends += len(seqs)
            self._reserve_seqs.update(seqs)
        batch = [(action, seq, key) for action, seq in zip(actions, seqs)]
        if status:                   # the journal refused the next one: nothing was sent, _act goes on
            now = _realtime()
            action = actions[len(seqs)]
            self._order_refused(action, self.journal.refusal(status, RecordType.ORDER_SENT), now, cancels)
            batch.append(self._filler(action, key, now))
            self._act_from(actions[len(seqs) + 1:], now, key, batch, True)
            return
        self._orders_out(batch, self._send_failed(OSError(err, os.strerror(err))) if err else
                         self._wrote(len(data), oe.sent_elsewhere(len(data))))

    def _orders_plan(self, actions: list, oe) -> tuple[int, list[bytes], bytes, int, bool] | None:
        """(stamp key, ORDER_SENT payloads, bytes, order-entry descriptor, all cancels) of orders
        that leave in one send, as _act would journal them; None unless every action is an order
        and either all or none of them are cancels."""
        if type(actions) is not list:
            return None
        planned = cancels = 0
        for action in actions:
            if type(action) is not SendOrder:
                return None
            packet = action.packet
            planned += len(packet)
            if packet[3] == _CANCEL:
                cancels += 1
        if not planned or (cancels and cancels != len(actions)):
            return None
        key = (self.tcp_bytes + planned - 1) & 0xFFFFFFFF
        data = actions[0].packet if len(actions) == 1 else b"".join([a.packet for a in actions])
        return key, [order_sent_payload(action, key) for action in actions], data, oe.sock.fileno(), bool(cancels)

    def upkeep(self) -> None:
        """Idle-time upkeep, after a wake-up's work and before the loop waits again: the engine's
        (Engine.prepare), then the urgent path's Python planning run on a stand-in pull, so that
        a guard's pulls (rare: a toxic print comes once in thousands of packets) find that code
        and its data in the caches. It journals nothing, sends nothing, changes no state."""
        engine = self.engine
        engine.prepare()
        if self._append_send is not None and self._oe is not None:
            armed = self._armed
            armed.plan(engine, order_sent_payload)
            if armed.sample:
                self._armed_out(armed.sample)     # the armed path's Python, warm when a trip comes
                # and the frame read's to the C lane (it fills the sink, the lane refuses the probe)
                self._fill_first(_PROBE_FILL, 0, 0, _USER)
            self._orders_plan(_WARM_PULL, self._oe)

    def _send_order(self, action: SendOrder) -> None:
        """One order on its own: journaled, then sent."""
        entry = self._journal_order(action, -1)
        if entry is not None:
            self._send_orders([entry])

    def _journal_order(self, action: SendOrder, tskey: int) -> tuple[SendOrder, int, int] | None:
        """The ORDER_SENT record, with the TX stamp key the order's send will carry (`tskey`; -1:
        its own last byte, when it is sent alone). None when the journal refused it: Rule 1, an
        order that is not in the journal does not go out."""
        packet = action.packet
        if tskey < 0:
            tskey = (self.tcp_bytes + len(packet) - 1) & 0xFFFFFFFF
        payload = order_sent_payload(action, tskey)
        now = _realtime()
        cancel = packet[3] == _CANCEL
        try:
            seq = self._append(RecordType.ORDER_SENT, payload, now, int(TsSource.USER), reserve=cancel)
        except JournalError as exc:
            self._order_refused(action, exc, now, cancel)
            return None
        if cancel:
            self._reserve_seqs.add(seq)
        return action, seq, tskey

    def _order_refused(self, action: SendOrder, exc: JournalError, now: int, cancel: bool) -> None:
        """An order whose ORDER_SENT the journal refused: it is not sent (Rule 1)."""
        if cancel:
            self.report.cancels_withheld += 1
        self._journal_failed(exc, now, "" if cancel else action.intent.token)

    def _filler(self, action: SendOrder, tskey: int, now: int) -> tuple[SendOrder, int, int]:
        """The stand-in of an order the journal refused inside a planned send: a SoupBinTCP Debug
        packet as long as the order (seq 0: no order), journaled in an alert (in the reserve)."""
        n = len(action.packet)
        text = f"withheld {action.intent.token}".encode()[: n - 3].ljust(n - 3, b".")
        filler = (n - 2).to_bytes(2, "big") + b"+" + text
        self._note_alert("order-withheld", f"{action.intent.token} was not journaled: a Debug packet of its "
                         f"{n} bytes went in its place, so the orders sent with it keep stamp key {tskey}",
                         now, filler, reserve=True)
        return SendOrder(action.intent, filler, action.decision, action.trading_state), 0, tskey

    def _send_orders(self, batch: list[tuple[SendOrder, int, int]], padded: bool = False) -> None:
        """Journaled orders out in one send; each gets a TX_TS record from that send's stamp
        (`padded`: the batch holds fillers, seq 0, sent but no order)."""
        if self._oe is None or self._oe_eos:
            self._withhold([entry for entry in batch if entry[1]] if padded else batch)
            return
        data = batch[0][0].packet if len(batch) == 1 else b"".join(a.packet for a, _, _ in batch)
        key = self._send_tcp(data)
        if padded:
            batch = [entry for entry in batch if entry[1]]
        self._orders_out(batch, key)

    def _orders_out(self, batch: list[tuple[SendOrder, int, int]], key: int) -> None:
        """After the send of journaled orders (no fillers): its TX key, -1 when it failed."""
        if key < 0:                  # journaled, refused by the socket: no stamp will ever come
            self.report.sends_failed += len(batch)
            for _, seq, tskey in batch:
                self._journal_tx(TxOutcome(tskey, (seq,), TxStatus.SEND_FAILED, 0, TsSource.NONE))
            return
        for action, seq, tskey in batch:
            if key != tskey:
                self._note_alert("tskey-mismatch", f"journaled {tskey}, socket says {key} "
                                 f"({action.intent.token})", _realtime())
        for outcome in self.tx.sent(key, time.monotonic_ns(), tuple(seq for _, seq, _ in batch)):
            self._journal_tx(outcome)
        self.report.orders_sent += len(batch)
        for action, _, _ in batch:
            self._order_sent(action)

    def _withhold(self, batch: list[tuple[SendOrder, int, int]]) -> None:
        """Journaled orders with no order entry to send them on (a reconciliation could not log
        in again; only cancels get this far while the gateway is latched unreconciled): not sent,
        their TX stamps journaled MISSING, an alert names them. The next reconciliation compares
        what the venue holds and resolves it, as after a crash between journal and send."""
        self.report.orders_unsent += len(batch)
        for action, seq, tskey in batch:
            self._journal_tx(TxOutcome(tskey, (seq,), TxStatus.MISSING, 0, TsSource.NONE))
        self._note_alert(_OE_LOST_ALERT, f"{len(batch)} journaled order(s) not sent, no order entry: "
                         + ",".join(a.intent.token for a, _, _ in batch)[:160], _realtime())

    def _order_sent(self, action: SendOrder) -> None:
        """Called for every order once its bytes went to the kernel (for subclasses)."""

    def _drain_tx(self, mono_ns: int) -> None:
        stamps = ()
        if self._oe is not None:
            try:
                stamps = self._oe.poll_tx_timestamps()
            except OSError as exc:       # the stamps still due come out missing at their timeout
                self._oe_broke(f"order entry failed: {_oserror(exc)}")
        for outcome in self.tx.collect(stamps, mono_ns):
            self._journal_tx(outcome)
        self.report.tx_unmatched, self.report.tx_repeated = self.tx.unmatched, self.tx.repeated

    def _journal_tx(self, outcome) -> None:
        """One TX_TS record per order of the send (outcome.context: their ORDER_SENT seqs)."""
        for seq in outcome.context:
            payload = _TX_TS_PACK(seq, outcome.tskey, outcome.status, outcome.source, outcome.ts_ns)
            reserve = seq in self._reserve_seqs
            if reserve:
                self._reserve_seqs.discard(seq)
            try:
                self._append(RecordType.TX_TS, payload, outcome.ts_ns, int(outcome.source), reserve=reserve)
            except JournalError as exc:
                self._journal_failed(exc, _realtime())
                continue
            if outcome.status == TxStatus.STAMPED:   # counted once journaled: the summary matches it
                self.report.tx_stamped += 1
            elif outcome.status == TxStatus.LATE:
                self.report.tx_late += 1
            else:
                self.report.tx_missing += 1

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


_ORDER_SENT_FIELDS = ("token", "orig_token", "msg_type", "side", "tif", "symbol_id", "price", "qty",
                      "algo_id", "desk_id", "trader_id", "client_id", "risk_verdict", "trading_state",
                      "limits_version", "tskey", "raw_len", "raw")


def _positional(rtype: RecordType, names: tuple[str, ...]):
    """The one-call packer of a layout whose fields the caller passes in this order."""
    if PAYLOAD_DTYPES[rtype].names != names:
        raise ImportError(f"the {rtype.name} layout changed: update mm_core.runner's packing of it")
    return layout_struct(rtype).pack


_ORDER_SENT_PACK = _positional(RecordType.ORDER_SENT, _ORDER_SENT_FIELDS)
_TX_TS_PACK = _positional(RecordType.TX_TS, ("order_seq", "tskey", "status", "source", "tx_ts_ns"))


def order_sent_payload(action: SendOrder, tskey: int) -> bytes:
    """The ORDER_SENT payload of an order, byte for byte what pack(RecordType.ORDER_SENT, ...)
    gives, in one positional struct call (the send path packs one per order); pack() itself for
    what it alone handles (a raw packet longer than its field: its error; a value struct refuses)."""
    intent, packet = action.intent, action.packet
    fields = (intent.token.encode(), intent.orig_token.encode(), packet[3], int(intent.side), intent.tif,
              intent.symbol_id, intent.price, intent.qty, intent.algo_id, intent.desk_id,
              intent.trader_id, intent.client_id, 1, action.trading_state,
              getattr(action.decision, "limits_version", 0), tskey, len(packet), packet)
    if len(packet) <= RAW_ORDER_MAX:
        try:
            return _ORDER_SENT_PACK(*fields)
        except struct.error:
            pass
    return pack(RecordType.ORDER_SENT, **dict(zip(_ORDER_SENT_FIELDS[:-2], fields[:-2])), raw=packet)


_TS_SOURCES = {int(s): s for s in TsSource}     # TsSource(x) without the enum call per record
_positional(RecordType.TIMER, ("timer_id", "now_ns"))    # engine_events reads TIMER in this order
_TIMER = layout_struct(RecordType.TIMER)
_TIMER_SIZE = PAYLOAD_DTYPES[RecordType.TIMER].itemsize


def _ts_source(value: int) -> TsSource:
    source = _TS_SOURCES.get(value)
    return source if source is not None else TsSource(value)


def market_data_event(rec, utc_offset_s: int = TAI_MINUS_UTC_S, utc_leap: int = 0) -> MarketData:
    """The engine input of an MD_PACKET record (engine_events' mapping; replay's batch path, which
    batches no PHC-stamped packet); `utc_offset_s` and `utc_leap` as engine_time takes them."""
    source = _ts_source(rec.ts_source)
    return market_data_of(rec.payload, engine_time(rec.ts_ns, source, utc_offset_s, utc_leap), source)


# record types as plain ints: engine_events compares every record's type (an enum member's
# attribute lookup costs more than the compare)
_MD_T, _VENUE_T, _VENUE_LONG_T, _TIMER_T, _CLOCK_T, _OPERATOR_T, _METRICS_T = map(int, (
    RecordType.MD_PACKET, RecordType.VENUE_MSG, RecordType.VENUE_MSG_LONG, RecordType.TIMER,
    RecordType.CLOCK_SAMPLE, RecordType.OPERATOR_CMD, RecordType.METRICS))
_INPUT_TEXT = b'"input": '                  # in every METRICS input record (json.dumps' spacing)
_FED_TYPES = frozenset((_MD_T, _VENUE_T, _VENUE_LONG_T, _TIMER_T, _CLOCK_T, _OPERATOR_T))
_RECON_T = int(RecordType.RECON)


def _metrics_input(payload: bytes) -> str:
    """The "input" of a METRICS record the engine hears ("" for notes and alerts)."""
    if _INPUT_TEXT not in payload:
        return ""
    doc = unpack_json(payload)
    return doc.get("input", "") if isinstance(doc, dict) else ""


def engine_events(records: Iterable, profile: str = "eu-hft", fresh_session: bool = True,
                  utc_offset_s: int = TAI_MINUS_UTC_S, resumed: bool = False, utc_leap: int = 0) -> Iterator:
    """The engine inputs a journal holds, in journal order, for replay through a fresh engine.

    records: journal.Reader records (seq, rtype, ts_ns, ts_source, clock_state, payload). Facts
    the runner feeds are METRICS records {"input": ...} it wrote: "run-start" (the journal is
    healthy and, for a fresh session, nothing needs reconciling), "journal-health" (a change of
    it), "order-entry-dead" (the link died: not reconciled). A journal whose first input comes
    before any "run-start" (written before runners journaled their start) gets the start facts
    at its first record's time, `fresh_session` saying whether Reconciled(True) is one of them;
    none when a RECON record comes first (a recovery took over a session that never ran: its
    engine, built from the records before, had none). `resumed`: the records go on from a
    snapshot, which holds the facts before them.
    `utc_offset_s`, `utc_leap`: the UTC offset and leap flag in force before the first record (a
    resumed replay's snapshot's).
    """
    bit = 1 << PROFILES[profile].bit
    offset = utc_offset_s              # the UTC offset in force (engine_time), as the runner had it
    leap = utc_leap                    # and its leap flag
    owed = not resumed                 # the start facts, until the first input or run-start record
    first_ts = None
    for rec in records:
        rtype = rec.rtype
        if owed:
            if first_ts is None:
                first_ts = rec.ts_ns
            kind = _metrics_input(rec.payload) if rtype == _METRICS_T else ""
            if kind or rtype in _FED_TYPES or rtype == _RECON_T:
                owed = False
                if kind != _RUN_START and rtype != _RECON_T:
                    yield JournalHealth(first_ts, True)
                    if fresh_session:
                        yield Reconciled(first_ts, True)
        if rtype == _MD_T:
            yield market_data_event(rec, offset, leap)
        elif rtype == _VENUE_T or rtype == _VENUE_LONG_T:
            source = _ts_source(rec.ts_source)
            yield venue_message_of(venue_fields(rtype, rec.payload)[3],
                                   engine_time(rec.ts_ns, source, offset, leap), source)
        elif rtype == _TIMER_T:
            payload = rec.payload
            if len(payload) == _TIMER_SIZE:     # one struct call, not a numpy record per timer
                timer_id, now_ns = _TIMER.unpack(payload)
                yield timer_of(now_ns, timer_id)
            else:
                timer = unpack(RecordType.TIMER, payload)      # its error
                yield Timer(int(timer["now_ns"]), int(timer["timer_id"]))
        elif rtype == _CLOCK_T:
            sample = unpack(RecordType.CLOCK_SAMPLE, rec.payload)
            sets, value = phc_offset(sample)
            if sets:
                offset = int(value)
                leap = int(phc_leap(sample))
            yield ClockSample(rec.ts_ns, bool(int(sample["compliant_mask"]) & bit))
        elif rtype == _OPERATOR_T:
            doc = unpack_json(rec.payload)
            yield OperatorCommand(rec.ts_ns, doc["command"], doc["actor"], doc["reason"],
                                  doc.get("scope", "all"), doc.get("scope_id", 0))
        elif rtype == _METRICS_T and _INPUT_TEXT in rec.payload:
            doc = unpack_json(rec.payload)
            kind = doc.get("input") if isinstance(doc, dict) else None
            if kind == _HEALTH:
                yield JournalHealth(rec.ts_ns, bool(doc["ok"]), tuple(doc.get("unsent") or ()))
            elif kind == _RUN_START:
                yield JournalHealth(rec.ts_ns, bool(doc["journal_ok"]))
                if doc["reconciled"]:
                    yield Reconciled(rec.ts_ns, True)
            elif kind == _LINK_LOST:
                yield Reconciled(rec.ts_ns, False)
