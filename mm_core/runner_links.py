"""The runner's venue connections: market data and order entry opened (SoupBinTCP login at the
sequence the engine expects), sends with their TX stamp keys, heartbeats while idle, and a link
that broke, went silent or was dropped by the venue marked dead (the engine told to reconcile).
Part of Runner (mm_core.runner); makes no trading decision.
"""
from __future__ import annotations

import contextlib
import errno
import json
import select
import time

from audit.capture import TimestampedTcpSocket
from journal.catalogue import RecordType, TsSource
from mm_core.events import Reconciled
from mm_core.mddrops import MdDrops
from mm_core.mdsocket import md_sources, open_market_data, resolve_ipv4
from mm_core.protocol import soupbintcp
from mm_core.runner_shared import _MAX_FRAME, _oserror, _realtime
from mm_core.runnerrecords import _LINK_LOST
from mm_core.runnertypes import RunnerError

_CLIENT_HEARTBEAT = soupbintcp.encode(soupbintcp.ClientHeartbeat())
_EAGAIN = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})   # a send that hit SO_SNDTIMEO


class RunnerLinks:
    """Runner's venue connections (a mixin of Runner: its state is Runner's)."""

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
