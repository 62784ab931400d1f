"""The runner's settings, report and small types: RunnerSettings (what `mmaudit run` and the
drills configure), RunnerReport and PacketStages (what a run measured), OperatorReceipt and
JournalStatus (answers to other threads), the Clock protocol it reads, and its errors. Plain
data: no sockets, journal or engine here.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterable, Protocol

from audit.rxbuffer import DEFAULT_RCVBUF
from journal.catalogue import TsSource

__all__ = ["RunnerError", "LoginRejected", "VenueSequenceError", "Clock", "RunnerSettings",
           "RunnerReport", "PacketStages", "STAGES", "stage_latencies", "OperatorReceipt",
           "JournalStatus"]


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
    trading_cpu: int | None = None   # the CPU run() pins its thread to (mm_core.cpuplan); None: any
    heartbeat_ns: int = 1_000_000_000  # SoupBinTCP client heartbeat after this much send silence
    rx_timeout_ns: int = 15_000_000_000  # order entry dead after this long with nothing received
                                         # (SoupBinTCP's 15 s; the venue heartbeats every second)
    send_timeout_ns: int = 250_000_000   # a send to the order entry blocked this long: the venue
                                         # is not reading, the link is lost (SO_SNDTIMEO)
    space_retry_ns: int = 1_000_000_000  # while the disk is full, ask the journal for space this often
    operator_queue: int = 64           # operator commands waiting for the runner's thread, at most
    stage_samples: int = 4096          # market-data packets that sent orders, stage times kept (newest)
    # busy-poll: step a shadow engine through the order path this often while nothing is read, so
    # a packet finds that code in the caches (mm_core.warmer), and send a byte through the kernel's
    # send path on a private loopback connection (mm_core.txwarm); 0 = off. Not in epoll-wait mode.
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
    md_rerequests: int = 0           # MoldUDP64 re-requests sent for market-data gaps
    warm_steps: int = 0              # idle-time shadow events (mm_core.warmer; busy-poll only)
    tx_warm_sends: int = 0           # idle-time bytes through the kernel's send path (mm_core.txwarm)
    trading_cpus: tuple[int, ...] = ()   # the CPUs the loop's thread was let run on, read back once
                                         # pinned (RunnerSettings.trading_cpu); () not pinned
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
    journaled, the engine's decision returned (its first orders, which the early sink journaled
    and sent inside on_event, included), and every other order of it journaled and sent."""

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
