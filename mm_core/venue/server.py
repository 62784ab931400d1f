"""The venue's I/O shell: OUCH over SoupBinTCP (TCP), ITCH over MoldUDP64 (UDP), on 127.0.0.1
(market data to a multicast group instead when the config names one, from its itch_interface).

Owns the sockets, the single-threaded selectors loop (run in one background thread), SoupBinTCP
session state (login, due within login_timeout of connecting, with per-address bounds on
connections not logged in yet, see login_throttle.py; heartbeats, dead-link detection, replay
from the durable session logs; per-connection limits on unread output and protocol errors),
the clocks (monotonic for timers; realtime, or the `clock` given, for the ITCH/OUCH stamps:
ns since midnight US/Eastern of the session date, see sessiontime.py) and the run limits.
Matching, flow and encodings live in matching.py, flow.py and wire.py; this module must not
make trading decisions.

Market data also carries Reg SHO Rule 201 ('Y' per symbol at start of day, '1' when a trade
falls 10% below the prior close; regsho.py keeps the state across sessions in the log directory).

Use: `with Venue(config) as venue: ports = venue.ports` (start() binds and returns the ports;
stop() ends the session: every live order expires, ITCH/OUCH end-of-day, MoldUDP64 end of
session, SoupBinTCP 'Z'). The venue stops by itself after config.venue.duration seconds or
max_messages ITCH messages, or at once, without an end of day, when a log or ITCH store cannot
be written or fsynced; wait() blocks until then. The end of day writes and fsyncs the session
logs' close-outs and End of Day before ITCH End of Messages: a restart of a session killed during
its end of day finishes it (the logs that lack them get them, a user added to the config since
gets Start and End of Day, ITCH end of day goes out) and then takes no order, only logins that
replay the logs.
"""
from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mm_core.protocol import ouch, soupbintcp
from mm_core.protocol.errors import BadField, ProtocolError
from mm_core.venue import matching as m
from mm_core.venue import highwater, regsho, restart, sessiontime, wire
from mm_core.venue.config import User, VenueConfig
from mm_core.venue.errors import SessionLogError, SessionSealedError, VenueStateError
from mm_core.venue.flow import BackgroundFlow, apply
from mm_core.venue.login_throttle import LoginThrottle
from mm_core.venue.publisher import MoldPublisher
from mm_core.venue.session_log import SessionLog, read_session_log

log = logging.getLogger("mm_core.venue")

MAX_CONNECTIONS = 64
OUT_HIGH_WATER = 1 << 18        # bytes queued to one client; the rest waits in its session log
                                # (and a Debug reply is dropped)
OUT_LIMIT = 2 * OUT_HIGH_WATER  # bytes queued to one client past which it is closed (a backstop:
                                # neither sequenced data nor Debug replies queue past high water)
MAX_PROTOCOL_ERRORS = 1000      # on one connection; past it the connection is closed
FLOW_ACTIONS_PER_TURN = 2000    # keeps the sockets served while flow catches up
MAX_SELECT_WAIT = 0.05
END_DRAIN_STALL = 1.0           # s a client may take nothing at end of session before it is cut
END_DRAIN_LIMIT = 5.0           # s for the whole end-of-session drain (stop() waits 10 s)
MOLD_END_GRACE = 0.2            # s re-requests are still answered after End of Session (more
                                # while they keep coming, within END_DRAIN_LIMIT)
NOT_DISPLAYED = "N"             # OUCH display: the order never shows on ITCH
CANNOT_PERSIST = frozenset({"fsync failed", "write failed"})   # stop reasons: no end of day
FAILED_STOPS = CANNOT_PERSIST | {"error"}

# Reject reasons for fields the codecs refuse, when the token can still be read.
_FIELD_REJECTS = {"price": m.REJECT_INVALID_PRICE, "stock": m.REJECT_INVALID_STOCK,
                  "shares": m.REJECT_SHARES, "firm": m.REJECT_FIRM}


def _readable_token(raw: bytes) -> str:
    """An OUCH token field as the codec reads it (the same token a well-formed order would
    name: leading spaces are part of it), or "" when it is blank or not printable ASCII."""
    try:
        token = ouch.token_text(raw)
    except UnicodeDecodeError:
        return ""
    return token if token.isprintable() else ""


@dataclass(frozen=True, slots=True)
class VenuePorts:
    """Where to reach a running venue (its ports on 127.0.0.1; its market data maybe on a group)."""

    host: str
    ouch: int           # SoupBinTCP/OUCH TCP port
    itch: int           # MoldUDP64 destination port the venue publishes to
    rerequest: int      # MoldUDP64 re-request UDP port
    session: str        # SoupBinTCP session
    log_dir: str
    itch_session: str   # MoldUDP64 session: the SoupBinTCP one, or a new name after a restart
    session_date: str   # YYYY-MM-DD (New York): ITCH/OUCH stamps count from its midnight
    itch_group: str = ""       # the multicast group it publishes to on `itch`; "" = unicast to host
    itch_source: str = ""      # the source address of its MoldUDP64 packets (re-request answers too)

    def as_dict(self) -> dict:
        return {"host": self.host, "ouch_port": self.ouch, "itch_port": self.itch,
                "rerequest_port": self.rerequest, "session": self.session,
                "log_dir": self.log_dir, "itch_session": self.itch_session,
                "session_date": self.session_date, "itch_group": self.itch_group,
                "itch_source": self.itch_source}


class _Conn:
    """One SoupBinTCP connection; logged in once `user` is set."""

    __slots__ = ("sock", "peer", "framer", "out", "user", "cursor", "last_rx", "last_tx",
                 "closing", "writing", "errors", "debug_dropped", "accepted")

    def __init__(self, sock: socket.socket, peer: tuple, now: float) -> None:
        self.sock = sock
        self.peer = peer
        self.framer = soupbintcp.Framer()
        self.out = bytearray()
        self.user: User | None = None
        self.cursor = 0           # next session-log sequence to send
        self.last_rx = now
        self.last_tx = now
        self.closing = False      # close once `out` is drained
        self.writing = False      # registered for EVENT_WRITE
        self.errors = 0           # protocol errors so far (MAX_PROTOCOL_ERRORS)
        self.debug_dropped = 0    # Debug replies dropped at OUT_HIGH_WATER (not errors: the
                                  # bad input they answered is counted once, as an error)
        self.accepted = now       # a login is due within login_timeout of it


class Venue:
    """The embedded exchange. Thread-safe queries; all I/O happens on the venue's own thread."""

    def __init__(self, config: VenueConfig, *, background_flow: bool = True,
                 clock: Callable[[], int] = time.time_ns) -> None:
        """`clock`: UTC nanoseconds now, for the ITCH/OUCH stamps (tests pass another day's)."""
        self.config = config
        self._clock = clock
        settings = config.venue
        self.session = settings.session or time.strftime("V%H%M%S", time.gmtime())
        self._background = background_flow
        self.engine = m.MatchingEngine(config.listings(), settings.max_shares)
        self.flow = BackgroundFlow(config, settings.seed) if background_flow else None
        self._listing = {x.name: x for x in config.listings()}
        self._locate = {x.name: x.locate for x in config.listings()}
        self._users = {u.username: u for u in config.users}
        self.throttle = LoginThrottle(settings.max_pending_logins, settings.login_failures,
                                      settings.login_failure_window, settings.login_cooloff)
        self._echo: dict[tuple[str, str], wire.Echo] = {}
        self.logs: dict[str, SessionLog] = {}
        self.itch_session = ""
        self.mold_stores: dict[str, SessionLog] = {}   # MoldUDP64 session -> its ITCH messages
        self.log_tail_cut: dict[str, int] = {}      # user -> bytes cut from a torn log tail
        self.protocol_errors: collections.deque[str] = collections.deque(maxlen=1000)
        self.debug_replies_dropped = 0   # over every connection (_debug)
        self.ignored: collections.deque[m.Ignored] = collections.deque(maxlen=1000)
        self.itch_messages = 0
        # market-data datagrams the kernel refused to send (ENOBUFS under a burst, ...): lost as on
        # a wire, so counted, the first and the total logged
        self.udp_send_failures = 0
        self.ports: VenuePorts | None = None
        self.stop_reason = ""
        self._lock = threading.RLock()
        self._conns: dict[int, _Conn] = {}
        self._online: dict[str, _Conn] = {}
        self._thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._sel: selectors.DefaultSelector | None = None
        self._unfinished: list[str] | None = None   # users whose end of day a restart finishes
        self.day_over = False       # End of Day written: no order is taken any more
        self._ending = False        # the loop is over: connections closed now are not failures
        self.writes_after_end_of_day = 0   # refused by _dispatch: each one is a venue bug
        self._syncer_stop = threading.Event()
        self.sync_error = ""
        self.write_error = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> VenuePorts:
        """Bind the sockets, open the session logs, publish start of day; returns the ports."""
        if self._thread is not None:
            raise VenueStateError("venue already started")
        settings = self.config.venue
        log_dir = Path(settings.log_dir) if settings.log_dir else Path(
            tempfile.mkdtemp(prefix="mmaudit-venue-"))
        if not settings.session:        # a generated name names no earlier session
            self.session = restart.unused_name(log_dir, self.session)
        session_dir = log_dir / self.session
        try:
            session_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionLogError(f"cannot create session log directory {session_dir}: "
                                  f"{exc.strerror or exc}") from exc
        try:
            self._open_and_start_day(session_dir, log_dir)
        except BaseException:          # nothing stays open or bound after a failed start
            self._close_sockets()
            raise
        self._syncer = threading.Thread(target=self._sync_logs, name="venue-fsync", daemon=True)
        self._syncer.start()
        self._thread = threading.Thread(target=self._run, name=f"venue-{self.session}", daemon=True)
        self._thread.start()
        return self.ports

    def _open_and_start_day(self, session_dir: Path, log_dir: Path) -> None:
        """Open the logs and stores, carry over an earlier run, bind, publish start of day."""
        settings = self.config.venue
        paths = {user.username: session_dir / f"{user.username}.soup" for user in self.config.users}
        # a user added to the config gets its log only once the start is allowed: a start refused
        # because the session ended must leave the ended session's directory as it was
        for username, path in paths.items():
            if path.exists():
                self.logs[username] = SessionLog(path)
        self._report_cut_tails()
        previous = {u: sl.messages() for u, sl in self.logs.items() if sl.next_sequence > 1}
        # before anything is written: refused when the session ended, finished when a crash
        # interrupted its end of day
        self._unfinished = restart.unfinished_end_of_day(session_dir, self.session, previous)
        self.logs = {username: self.logs[username] if username in self.logs else SessionLog(path)
                     for username, path in paths.items()}
        written = restart.has_written(session_dir, self.session, previous)
        calendar = self.config.calendar
        self.session_date = sessiontime.session_date(session_dir, self._clock(), settings.duration, written)
        closed = calendar.closed_note(self.session_date, self.session)
        if closed:
            log.warning("%s", closed)
        if not calendar.knows(self.session_date):
            log.warning("the venue's [calendar] lists no holidays in %d: Rule 201 carries over "
                        "weekends only", self.session_date.year)
        self._midnight_ns = sessiontime.midnight_utc_ns(self.session_date)
        self.rule201 = regsho.Rule201(log_dir, self.session_date,
                                      {s.name: s.reference_price for s in self.config.symbols},
                                      calendar)
        self._carry_over(session_dir, previous, written)
        host = settings.host
        try:
            self._open_sockets(host)
        except OSError as exc:
            raise VenueStateError(f"cannot bind the venue's ports on {host}: {exc}") from exc
        try:
            self._udp_out = self._downstream_socket()
        except OSError as exc:
            raise VenueStateError(f"cannot publish market data to {settings.itch_group or host}:"
                                  f"{settings.itch_port}: {exc}") from exc
        earlier = {n: store for n, store in self.mold_stores.items() if n != self.itch_session}
        self.publisher = MoldPublisher(self.itch_session, (settings.itch_group or host, settings.itch_port),
                                       self._udp_send, settings.history,
                                       store=self.mold_stores[self.itch_session], earlier=earlier)
        self.ports = VenuePorts(host, self._listener.getsockname()[1], settings.itch_port,
                                self._rerequest.getsockname()[1], self.session, str(log_dir),
                                self.itch_session, self.session_date.isoformat(), settings.itch_group,
                                self._udp_out.getsockname()[0])
        self._start_of_day(previous)

    def _carry_over(self, session_dir: Path, previous: dict[str, list[bytes]],
                    written: bool) -> None:
        """Pick this run's MoldUDP64 session and open the ITCH stores; on a restart (`written`:
        an earlier run wrote messages; `previous`: the logs' earlier messages by user), resume
        the engine past what the session logs and the earlier MoldUDP64 sessions show was
        handed out, and past the order references and match numbers earlier runs reserved
        (highwater.py: what a power loss may have taken from the logs after the wire had it)."""
        self.itch_session = restart.mold_session(session_dir, self.session, written)
        self._open_mold_stores(session_dir)
        self.numbers = highwater.NumberReservation(session_dir)
        if written:
            carried = restart.handed_out(previous)
            published_ref, published_match = restart.published_high_water(
                store for name, store in self.mold_stores.items() if name != self.itch_session)
            # past what was reserved too: a power loss may have taken from the logs and the
            # stores the last numbers the wire carried
            next_ref = max(carried.next_ref, published_ref, self.numbers.ref_ceiling)
            next_match = max(carried.next_match, published_match, self.numbers.match_ceiling)
            self.engine.resume(carried.tokens, next_ref, next_match, carried.positions)
            log.warning("session %s started again: SoupBinTCP goes on (order references from %d, "
                        "match numbers from %d, %d tokens used), market data is the new MoldUDP64 "
                        "session %s", self.session, next_ref, next_match, len(carried.tokens),
                        self.itch_session)

    def _open_mold_stores(self, session_dir: Path) -> None:
        """This run's ITCH store, and those of earlier runs still on disk (re-requests for their
        MoldUDP64 sessions are answered from them)."""
        self.mold_stores = restart.earlier_mold_stores(session_dir, self.itch_session)
        current = SessionLog(restart.mold_store_path(session_dir, self.itch_session))
        self.mold_stores[self.itch_session] = current
        if current.next_sequence != 1:
            raise SessionLogError(f"{current.path}: a new MoldUDP64 session's store is not empty")

    def _report_cut_tails(self) -> None:
        """A torn tail (power loss before fsync) was cut from a session log: its sequence
        numbers will now carry new messages, so a client that saw the lost ones must hear of it."""
        for username, session_log in self.logs.items():
            if session_log.discarded_bytes:
                self.log_tail_cut[username] = session_log.discarded_bytes
                last = session_log.durable_sequence
                log.warning("session log %s: a torn tail of %d bytes was cut after message %d; "
                            "sequence numbers from %d on carry new messages", session_log.path,
                            session_log.discarded_bytes, last, last + 1)

    def _open_sockets(self, host: str) -> None:
        settings = self.config.venue
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets.append(self._listener)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, settings.ouch_port))
        self._listener.listen(16)
        self._listener.setblocking(False)
        self._rerequest = self._udp_socket(host, settings.rerequest_port, settings.itch_port)
        self._rerequest.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._sockets += [self._wake_r, self._wake_w]
        self._wake_r.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._rerequest, selectors.EVENT_READ, "rerequest")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")

    def _udp_socket(self, host: str, port: int, publish_port: int) -> socket.socket:
        """A UDP socket bound to host:port. With port 0, never on the port the venue publishes to:
        the kernel may hand out that number once it is free, and a subscriber on this host could
        then not bind it (bounded: each refused socket stays open until the next try is bound)."""
        refused: list[socket.socket] = []
        try:
            for _ in range(16):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    raise
                if port or sock.getsockname()[1] != publish_port:
                    self._sockets.append(sock)
                    return sock
                refused.append(sock)
            raise OSError(f"the kernel kept handing out port {publish_port}, where the venue publishes")
        finally:
            for sock in refused:
                sock.close()

    def _downstream_socket(self) -> socket.socket:
        """The socket every MoldUDP64 packet leaves from: the live stream (to the group, or to
        host:itch_port) and the unicast answers to re-requests. With a group it is bound to
        itch_interface, so its packets carry that source address, and sends there with the TTL;
        loop on, so a subscriber on this host receives them too."""
        settings = self.config.venue
        if not settings.itch_group:
            return self._udp_socket(settings.host, 0, settings.itch_port)
        sock = self._udp_socket(settings.itch_interface, 0, settings.itch_port)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(settings.itch_interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, settings.itch_ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        return sock

    def _close_sockets(self) -> None:
        """Close the sockets, the selector and every log (idempotent; a log that cannot be
        closed cleanly is logged, the others are still closed)."""
        for sock in getattr(self, "_sockets", []):
            sock.close()
        if self._sel is not None:
            self._sel.close()
        for session_log in [*self.logs.values(), *self.mold_stores.values()]:
            try:
                session_log.close()
            except SessionLogError as exc:
                log.error("%s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        """End the session and close everything (idempotent)."""
        if self._thread is None:
            return
        self._stop_requested.set()
        self._wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise VenueStateError("venue thread did not stop in time")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the venue has stopped (by itself or by stop()); False on timeout."""
        return self._stopped.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopped.is_set()

    def __enter__(self) -> "Venue":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ drill queries
    def live_orders(self, username: str | None = None, firm: str | None = None
                    ) -> list[m.OrderView]:
        """Live orders of one SoupBinTCP user and/or firm (None: everyone, flow included)."""
        with self._lock:
            orders = self.engine.live_orders(username)
        return [o for o in orders if firm is None or o.firm == firm]

    def position(self, username: str) -> dict[str, int]:
        """Net executed shares per symbol of one user."""
        with self._lock:
            return self.engine.position(username)

    def session_messages(self, username: str, first: int = 1) -> list[bytes]:
        """The OUCH payloads of a user's session log from `first` on (once the venue has
        stopped, from the log file: its descriptor is closed)."""
        with self._lock:
            session_log = self.logs.get(username)
            if session_log is None:
                raise VenueStateError(f"no session log for user {username!r} (users: "
                                      f"{', '.join(self.logs) or 'none, the venue never started'})")
            if not session_log.closed:
                return session_log.messages(first)
        return read_session_log(session_log.path, first)

    def withhold_itch(self, sequences) -> None:
        """Test hook: do not send the live MoldUDP64 packets carrying these sequence numbers."""
        with self._lock:
            self.publisher.withhold(sequences)

    def latent_price(self, symbol: str) -> float:
        """The background flow's current latent price (float price4) of a symbol or option."""
        with self._lock:
            if self.flow is None:
                raise VenueStateError("no background flow")
            return self.flow.paths.price(symbol, time.monotonic() - self._t0)

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        settings = self.config.venue
        deadline = self._t0 + settings.duration
        last_check = self._t0
        try:
            while not self._stop_requested.is_set():
                now = time.monotonic()
                wait = min(MAX_SELECT_WAIT, max(deadline - now, 0.0))
                if self.flow is not None:
                    wait = min(wait, max(self.flow.next_due() - (now - self._t0), 0.0))
                ready = self._sel.select(wait)
                with self._lock:
                    now = time.monotonic()
                    for key, mask in ready:
                        self._on_ready(key, mask, now)
                    self._run_flow(now)
                    if now - last_check >= 0.1:
                        self._timers(now)
                        last_check = now
                    self._publish_and_pump(now)
                    if now >= deadline:
                        self.stop_reason = "duration"
                        break
                    if settings.max_messages and self.itch_messages >= settings.max_messages:
                        self.stop_reason = "max_messages"
                        break
                    if self.sync_error:
                        self.stop_reason = "fsync failed"
                        break
            else:
                self.stop_reason = self.stop_reason or "stopped"
        except SessionLogError as exc:
            self._write_failed(exc)
        except Exception:
            log.exception("venue loop failed")
            self.stop_reason = "error"
            raise
        finally:
            self._ending = True
            if self.udp_send_failures:
                log.warning("%d market-data datagrams could not be sent this session",
                            self.udp_send_failures)
            self._syncer_stop.set()
            self._syncer.join()
            with self._lock:
                try:
                    if self.stop_reason in CANNOT_PERSIST:
                        self._abandon()
                    else:
                        self._end_of_day()
                except SessionLogError as exc:
                    self._write_failed(exc)
                    self._abandon()
                finally:
                    self._close_sockets()       # whatever failed above
                    for address, count in self.throttle.unreported().items():
                        self._log_refused(address, count)
                    self._log_untracked(self.throttle.untracked_report(time.monotonic(), final=True))
                    self._stopped.set()

    def _log_untracked(self, count: int) -> None:
        if count:
            log.warning("%d failed logins or refusals from addresses the login throttle could not track "
                        "(%d addresses tracked at most: a flood from many addresses); their connections "
                        "are still bounded per address while they wait for a login", count,
                        self.throttle.max_addresses)

    def _write_failed(self, exc: SessionLogError) -> None:
        log.error("%s: the venue stops", exc)
        self.write_error = str(exc)
        self.stop_reason = "write failed"

    def _abandon(self) -> None:
        """Stop as a crash would, when the logs cannot be trusted to take more: nothing more is
        sent (nothing may reach the wire before the log), clients see their connection close
        without 'Z' and replay from the logs when the venue is back."""
        for conn in list(self._conns.values()):
            self._close(conn)
        self._close_sockets()
        log.error("venue session %s abandoned (%s): no end of day", self.session, self.stop_reason)

    def _sync_logs(self) -> None:
        """The fsync budget, on its own thread so that a slow disk never stalls the loop."""
        interval = max(self.config.venue.fsync_interval, 0.001)   # 0: as often as possible
        while not self._syncer_stop.wait(interval):
            try:
                for session_log in [*self.logs.values(), *self.mold_stores.values()]:
                    session_log.sync()
            except SessionLogError as exc:   # latched: a venue that cannot persist stops
                log.error("%s", exc)
                self.sync_error = str(exc)
                self._wake()
                return

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _on_ready(self, key: selectors.SelectorKey, mask: int, now: float) -> None:
        tag = key.data
        if tag == "accept":
            self._accept(now)
        elif tag == "rerequest":
            self._serve_rerequests()
        elif tag == "wake":
            try:
                self._wake_r.recv(4096)
            except BlockingIOError:
                pass
        else:
            conn: _Conn = tag
            if mask & selectors.EVENT_READ:
                self._read(conn, now)
            if mask & selectors.EVENT_WRITE and conn.sock.fileno() >= 0:
                self._write(conn, now)

    def _serve_rerequests(self) -> int:
        """Answer the MoldUDP64 request packets waiting (at most 64); returns how many came."""
        came = 0
        for _ in range(64):
            try:
                data, sender = self._rerequest.recvfrom(2048)
            except BlockingIOError:
                break
            came += 1
            self.publisher.answer(data, sender)
        return came

    def _run_flow(self, now: float) -> None:
        if self.flow is None or not self.engine.open:
            return
        t = now - self._t0
        for _ in range(FLOW_ACTIONS_PER_TURN):
            if self.flow.next_due() > t:
                break
            for command in self.flow.fire(self.engine.bbo):
                events = apply(self.engine, command)
                self.flow.on_events(events)
                self._dispatch(events)

    def _timers(self, now: float) -> None:
        settings = self.config.venue
        for conn in list(self._conns.values()):
            # whatever it sends: trickling a login byte by byte must not hold a connection
            if conn.user is None and now - conn.accepted > settings.login_timeout:
                self._protocol_error(conn, f"no login within {settings.login_timeout:g} s of "
                                           f"connecting")
                self._close(conn)
            elif now - conn.last_rx > settings.heartbeat_timeout:
                self._protocol_error(conn, f"no data for {settings.heartbeat_timeout:g} s: link dead")
                self._close(conn)
            elif (conn.user is not None and not conn.out
                  and now - conn.last_tx >= settings.heartbeat_interval):
                conn.out += soupbintcp.encode(soupbintcp.ServerHeartbeat())
        for address, count in self.throttle.prune(now).items():
            self._log_refused(address, count)
        self._log_untracked(self.throttle.untracked_report(now))
        if now - self._last_itch_tx >= settings.heartbeat_interval:
            self.publisher.heartbeat()
            self._last_itch_tx = now

    # ------------------------------------------------------------------ start / end of day
    def _start_of_day(self, previous: dict[str, list[bytes]]) -> None:
        """`previous`: the OUCH messages of the session logs an earlier run of this session
        left (empty on a first start)."""
        self._t0 = time.monotonic()
        self._last_itch_tx = self._t0
        ts = self._stamp()
        if self._unfinished is not None:
            self._finish_end_of_day(previous, ts)
            return
        for username, session_log in self.logs.items():
            if username not in previous:
                session_log.append(wire.ouch_system_event(ts, "S"))
            else:
                # Same session after a venue crash: its book is gone, so say so, order by order.
                left_open = wire.open_orders(previous[username])
                for token, shares in left_open.items():
                    session_log.append(wire.close_out(token, shares, ts))
                if left_open:
                    log.warning("%s: %d orders from before the restart canceled",
                                username, len(left_open))
            session_log.flush()
        self._itch(wire.itch_system_event(ts, "O"))
        price_test = dict(self.rule201.start_of_day())
        for symbol, action in price_test.items():
            if action != regsho.NO_PRICE_TEST:
                self.engine.start_price_test(symbol)
        for listing in self.engine.listings():
            for message in wire.itch_listing(ts, listing):
                self._itch(message)
            if listing.name in price_test:     # Reg SHO state after the trading action
                self._itch(wire.itch_reg_sho(ts, listing, price_test[listing.name]))
        for code in "SQ":
            self._itch(wire.itch_system_event(ts, code))
        self.publisher.flush()

    def _finish_end_of_day(self, previous: dict[str, list[bytes]], ts: int) -> None:
        """A restart of a session killed during its end of day: the session logs without End of
        Day get the close-outs of the orders they leave open (reason 'T', as at the end of day)
        and End of Day, then ITCH end of day goes out in this run's MoldUDP64 session; a user
        with an empty log (added to the config since the earlier run) gets its Start of Day and
        End of Day at once, as its day must end like the others'. The venue then only lets
        clients log in to replay their logs: it takes no order."""
        self.engine.close()
        closeouts: dict[str, list[bytes]] = {}
        for username, session_log in self.logs.items():
            if username not in previous:      # else sealed empty: no later run would end it
                session_log.append(wire.ouch_system_event(ts, "S"))
                closeouts[username] = []
        for username in self._unfinished:
            left_open = wire.open_orders(previous[username])
            closeouts[username] = [wire.close_out(token, shares, ts, m.CANCEL_TIMEOUT)
                                   for token, shares in left_open.items()]
            log.warning("%s: end of day interrupted by a crash, finished now (%d orders closed "
                        "out)", username, len(left_open))
        self._close_day(ts, closeouts)

    def _end_of_day(self) -> None:
        if not self.day_over:
            if self.engine.open:
                self._dispatch(self.engine.close())
            self._close_day(self._stamp(), dict.fromkeys(self.logs, []))
        self.publisher.end_of_session()
        self._drain_all()
        self._close_sockets()
        log.info("venue session %s ended (%s)", self.session, self.stop_reason)

    def _close_day(self, ts: int, closeouts: dict[str, list[bytes]]) -> None:
        """Write End of Day to the session logs in `closeouts` (user -> the OUCH messages to
        write before it), then ITCH end of day. The logs are written and fsynced first: a crash
        before ITCH End of Messages is stored leaves an end of day a restart can finish."""
        for username, messages in closeouts.items():
            session_log = self.logs[username]
            for message in messages:
                session_log.append(message)
            session_log.append(wire.ouch_system_event(ts, "E"))
        for session_log in self.logs.values():
            session_log.flush()
            session_log.sync()
            session_log.seal()
        self.day_over = True
        for code in "MEC":
            self._itch(wire.itch_system_event(ts, code))
        self.publisher.flush()

    # ------------------------------------------------------------------ events out
    def _stamp(self) -> int:
        """ITCH/OUCH timestamp now: ns since midnight US/Eastern of the session date."""
        return self._clock() - self._midnight_ns

    def _itch(self, message: bytes) -> None:
        self.publisher.publish(message)
        self.itch_messages += 1

    def _dispatch(self, events: list[m.Event], fresh: wire.Echo | None = None) -> None:
        """Turn engine events into session-log OUCH messages and ITCH messages. `fresh` is the
        echo of the client command that caused them (kept for the order's later messages)."""
        if not events:
            return
        if self.day_over:
            self.writes_after_end_of_day += 1
            log.error("refused to write %d events after End of Day (%d so far): %s",
                      len(events), self.writes_after_end_of_day, events[:3])
            raise SessionSealedError(f"{len(events)} events after End of Day: the session "
                                     f"logs are sealed")
        self.numbers.cover(*self.engine.next_numbers())   # reserved before written or sent
        ts = self._stamp()
        logs, locate = self.logs, self._locate
        price_test: list[str] = []        # symbols whose Rule 201 test this trade starts
        for ev in events:
            kind = type(ev)
            if kind is m.Ignored:
                self.ignored.append(ev)
                log.info("ignored %s/%s: %s", ev.owner, ev.token, ev.why)
                continue
            if kind in wire.PUBLIC_EVENTS:
                public = wire.itch_message(ev, ts, locate[ev.symbol])
                if public is not None:
                    self._itch(public)
                if (kind is m.Executed and ev.liquidity == m.LIQUIDITY_ADDED
                        and self.rule201.on_trade(ev.symbol, ev.price)):   # one per trade
                    price_test.append(ev.symbol)
                    self.engine.start_price_test(ev.symbol)
            if kind in wire.BOOK_ONLY_EVENTS:
                continue
            session_log = logs.get(ev.owner)
            if session_log is None:       # background flow
                continue
            key = (ev.owner, ev.token)
            live = True
            if kind is m.Accepted or kind is m.Replaced:
                if fresh is not None:
                    self._echo[key] = fresh
                # Order state 'D': the order died at once (an IOC that found nothing to trade).
                live = ev.tif != m.IOC or any(type(x) is m.Executed and x.ref == ev.ref
                                              for x in events)
            private = wire.ouch_message(ev, ts, self._echo.get(key, wire.DEFAULT_ECHO), live)
            session_log.append(private)
        if price_test:
            self._price_test_on(price_test, ts)

    def _price_test_on(self, symbols: list[str], ts: int) -> None:
        """Rule 201 starts for `symbols`: the trades that started it (ITCH prints and OUCH
        executions) are written and fsynced, then the triggers recorded, then ITCH 'Y' '1' goes
        out. Once per symbol a day: off the hot path."""
        for store in (self.mold_stores[self.itch_session], *self.logs.values()):
            store.flush()
            store.sync()
        self.rule201.record()
        for symbol in symbols:
            self._itch(wire.itch_reg_sho(ts, self._listing[symbol], regsho.INTRADAY_DROP))

    def _publish_and_pump(self, now: float) -> None:
        if self.publisher.flush():
            self._last_itch_tx = now
        for session_log in self.logs.values():
            session_log.flush()           # durable (page cache) before any byte is sent
        for conn in list(self._conns.values()):
            if conn.user is not None:
                self._fill(conn)
            if conn.out:
                self._write(conn, now)
            elif conn.closing:
                self._close(conn)

    def _fill(self, conn: _Conn) -> None:
        """Move sequenced messages the client has not been sent yet from its log to `out`."""
        session_log = self.logs[conn.user.username]
        while conn.cursor <= session_log.durable_sequence and len(conn.out) < OUT_HIGH_WATER:
            frames, conn.cursor = session_log.read_frames(conn.cursor)
            conn.out += frames

    # ------------------------------------------------------------------ connections
    def _accept(self, now: float) -> None:
        for _ in range(16):
            try:
                sock, peer = self._listener.accept()
            except BlockingIOError:
                return
            if len(self._conns) >= MAX_CONNECTIONS:
                log.warning("refusing %s: %d connections open", peer, MAX_CONNECTIONS)
                sock.close()
                continue
            pending = sum(c.user is None and c.peer[0] == peer[0] for c in self._conns.values())
            refusal = self.throttle.admit(peer[0], pending, now)
            if refusal is not None:        # counted; logged at most once a second an address
                if refusal.report:
                    self._log_refused(peer[0], refusal.report, refusal.why)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, peer, now)
            self._conns[sock.fileno()] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _log_refused(self, address: str, count: int, why: str = "") -> None:
        log.warning("refused %d connection%s from %s%s (%d refused in all)", count,
                    "s" if count > 1 else "", address, f": {why}" if why else "",
                    self.throttle.refused)

    def _read(self, conn: _Conn, now: float) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.info("connection %s: %s", conn.peer, exc)
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.last_rx = now
        try:
            frames, garbage = conn.framer.feed(data), None
        except ProtocolError as exc:   # the whole frames before the garbage still count
            frames, garbage = conn.framer.salvaged, exc
        for frame in frames:
            if conn.closing or conn.sock.fileno() < 0:
                break
            try:
                self._on_frame(conn, frame, now)
            except SessionLogError:    # the venue's, not the client's: it stops
                raise
            except Exception as exc:   # one client's bad luck must not stop the venue
                log.exception("internal error on a frame from %s", conn.peer)
                self._protocol_error(conn, f"internal error: {type(exc).__name__}: {exc}")
                conn.closing = True
            if self._over_limit(conn):
                return
        if garbage is not None:
            self._protocol_error(conn, f"framing: {garbage}")
            self._close(conn)

    def _on_frame(self, conn: _Conn, frame: bytes, now: float) -> None:
        try:
            packet = soupbintcp.decode(frame, soupbintcp.Direction.FROM_CLIENT)
        except ProtocolError as exc:
            self._protocol_error(conn, f"bad SoupBinTCP packet: {exc}")
            conn.closing = True
            return
        if isinstance(packet, soupbintcp.LoginRequest):
            self._login(conn, packet)
        elif conn.user is None:
            self._protocol_error(conn, f"{type(packet).__name__} before login")
            conn.closing = True
        elif isinstance(packet, soupbintcp.UnsequencedData):
            self._on_ouch(conn, packet.payload)
        elif isinstance(packet, soupbintcp.LogoutRequest):
            conn.closing = True
        # ClientHeartbeat and Debug only refresh last_rx.

    def _login(self, conn: _Conn, req: soupbintcp.LoginRequest) -> None:
        if conn.user is not None:
            self._protocol_error(conn, "second login on one connection")
            conn.closing = True
            return
        user = self._users.get(req.username)
        reason = ""
        if user is None or user.password != req.password:
            reason = "A"
        elif req.requested_session not in ("", self.session) or req.username in self._online:
            reason = "S"
        if reason:
            log.warning("login rejected (%s) for %r from %s", reason, req.username, conn.peer)
            conn.out += soupbintcp.encode(soupbintcp.LoginRejected(reason))
            conn.closing = True
            return
        session_log = self.logs[user.username]
        next_new = session_log.next_sequence
        first = next_new if req.requested_sequence == 0 else min(req.requested_sequence, next_new)
        conn.user = user
        conn.cursor = first
        self._online[user.username] = conn
        conn.out += soupbintcp.encode(soupbintcp.LoginAccepted(self.session, first))
        log.info("%s logged in from %s, replay from %d", user.username, conn.peer, first)

    def _on_ouch(self, conn: _Conn, payload: bytes) -> None:
        if self.day_over:    # nothing may follow End of Day in the session log: checked before
            # decoding, as a malformed order would otherwise get an OUCH Rejected written
            self._protocol_error(conn, f"OUCH {payload[:1]!r} after End of Day")
            self._debug(conn, "rejected: the session's day is over")
            return
        user = conn.user
        try:
            msg = ouch.decode_inbound(payload)
        except BadField as exc:
            self._reject_malformed(conn, payload, exc)
            return
        except ProtocolError as exc:
            self._protocol_error(conn, f"bad OUCH message: {exc}")
            self._debug(conn, f"rejected: {exc}")
            return
        owner = user.username
        if isinstance(msg, ouch.EnterOrder):
            if msg.firm and msg.firm != user.firm:
                self._dispatch(self.engine.reject(owner, msg.token, m.REJECT_FIRM))
                return
            fresh = wire.Echo(msg.display, msg.capacity, msg.intermarket_sweep,
                              msg.minimum_quantity, msg.cross_type)
            events = self.engine.enter(owner, msg.token, msg.stock, msg.side, msg.shares,
                                       msg.price, msg.time_in_force, user.firm,
                                       msg.display != NOT_DISPLAYED)
        elif isinstance(msg, ouch.ReplaceOrder):
            previous = self._echo.get((owner, msg.existing_token), wire.DEFAULT_ECHO)
            fresh = wire.Echo(msg.display, previous.capacity, msg.intermarket_sweep,
                              msg.minimum_quantity, previous.cross_type)
            events = self.engine.replace(owner, msg.existing_token, msg.replacement_token,
                                         msg.shares, msg.price, msg.time_in_force,
                                         msg.display != NOT_DISPLAYED)
        elif isinstance(msg, ouch.CancelOrder):
            fresh = None
            events = self.engine.cancel(owner, msg.token, msg.shares)
        else:    # ModifyOrder: the codec decodes no other inbound type
            fresh = None
            events = self.engine.modify(owner, msg.token, msg.side, msg.shares)
        self._dispatch(events, fresh)

    def _reject_malformed(self, conn: _Conn, payload: bytes, exc: BadField) -> None:
        """An Enter the codec refused gets an OUCH Rejected naming its token when that token is
        readable; a Replace with both tokens readable is an invalid replace (its live original is
        canceled, the replacement token stays unused: MatchingEngine.refuse_replace); anything
        else (OUCH 4.2 has no Rejected for Cancel or Modify, whose token names a live order) gets
        a SoupBinTCP Debug reply and changes nothing."""
        kind = payload[:1]
        self._protocol_error(conn, f"malformed OUCH {kind!r}: {exc}")
        token = _readable_token(payload[1:15] if kind == b"O" else
                                payload[15:29] if kind == b"U" else b"")
        existing = _readable_token(payload[1:15]) if kind == b"U" else ""
        if token and existing:
            # OUCH: a replace whose details are invalid cancels the live original and leaves
            # the replacement token unused (no Rejected names it)
            self._dispatch(self.engine.refuse_replace(conn.user.username, existing, token))
        if not token or kind == b"U":
            self._debug(conn, f"rejected: {exc}")
            return
        reason = _FIELD_REJECTS.get(exc.field or "", m.REJECT_OTHER)
        self._dispatch(self.engine.reject(conn.user.username, token, reason))

    @staticmethod
    def _who(conn: _Conn) -> str:
        return f"{conn.peer[0]}:{conn.peer[1]} ({conn.user.username if conn.user else '-'})"

    def _protocol_error(self, conn: _Conn, what: str) -> None:
        conn.errors += 1
        text = f"{self._who(conn)}: {what}"
        self.protocol_errors.append(text)
        log.warning("protocol error %s", text)

    def _debug(self, conn: _Conn, text: str) -> None:
        """Queue a SoupBinTCP Debug packet (ASCII only, bounded) for a reply outside the
        sequence; dropped once OUT_HIGH_WATER bytes wait for the client (one that sends bad
        messages and reads nothing must not grow the venue). A dropped reply is counted on its
        own, not as a second protocol error: the input it answered already counted once. The
        first drop on a connection is logged, and the count when the connection closes."""
        if len(conn.out) >= OUT_HIGH_WATER:
            conn.debug_dropped += 1
            self.debug_replies_dropped += 1
            if conn.debug_dropped == 1:
                log.warning("%s: Debug replies dropped from now on while %d bytes wait unread "
                            "(counted; the total is logged at close)", self._who(conn),
                            len(conn.out))
            return
        text = text.encode("ascii", "backslashreplace").decode("ascii")[:200]
        conn.out += soupbintcp.encode(soupbintcp.Debug(text))

    def _over_limit(self, conn: _Conn) -> bool:
        """Close a connection past MAX_PROTOCOL_ERRORS or with more than OUT_LIMIT bytes unread
        (at once: a client that reads nothing would never drain a graceful close)."""
        if conn.errors > MAX_PROTOCOL_ERRORS:
            why = f"{conn.errors} protocol errors"
        elif len(conn.out) > OUT_LIMIT:
            why = f"{len(conn.out)} bytes unread"
        else:
            return False
        self._protocol_error(conn, f"connection closed: {why}, past the venue's limit")
        self._close(conn)
        return True

    def _write(self, conn: _Conn, now: float) -> None:
        if conn.sock.fileno() < 0:
            return
        try:
            sent = conn.sock.send(conn.out) if conn.out else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                log.info("connection %s: %s", conn.peer, exc)
            self._close(conn)
            return
        if sent:
            del conn.out[:sent]
            conn.last_tx = now
        if conn.user is not None and not conn.out:
            self._fill(conn)
        want_write = bool(conn.out)
        if want_write != conn.writing:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            self._sel.modify(conn.sock, events, conn)
            conn.writing = want_write
        if conn.closing and not conn.out:
            self._close(conn)

    def _drain_all(self) -> None:
        """End of session: send every client all its log still holds, then 'Z', to all clients at
        once within END_DRAIN_LIMIT s. A client that takes nothing for END_DRAIN_STALL s, or is
        not done by then, is closed without 'Z': it has not seen the end, and replays from its
        log when it reconnects. Meanwhile, and for MOLD_END_GRACE s after the MoldUDP64 End of
        Session (longer while requests keep coming), re-requests are answered: a receiver that
        lost the last packets learns of its gap only from the End of Session packet."""
        now = time.monotonic()
        deadline = now + END_DRAIN_LIMIT
        linger = now + MOLD_END_GRACE
        progress = {conn: now for conn in self._conns.values()}
        ended: set[_Conn] = set()
        with selectors.DefaultSelector() as sel:
            for conn in progress:
                sel.register(conn.sock, selectors.EVENT_WRITE, conn)
            sel.register(self._rerequest, selectors.EVENT_READ, None)
            while progress or now < min(linger, deadline):
                for conn in list(progress):
                    if conn.user is not None:
                        self._fill(conn)
                        if not conn.out and conn not in ended:    # the whole log went out
                            conn.out += soupbintcp.encode(soupbintcp.EndOfSession())
                            ended.add(conn)
                    if conn.out and now - progress[conn] < END_DRAIN_STALL and now < deadline:
                        continue
                    if conn.out:
                        log.warning("%s: closed at end of session without 'Z', %s",
                                    conn.peer, self._untaken(conn))
                    del progress[conn]
                    sel.unregister(conn.sock)
                    self._close(conn)
                until = deadline if progress else min(linger, deadline)
                for key, _ in sel.select(min(MAX_SELECT_WAIT, max(until - now, 0.0))):
                    conn = key.data
                    if conn is None:              # the re-request port
                        if self._serve_rerequests():
                            linger = time.monotonic() + MOLD_END_GRACE
                        continue
                    try:
                        sent = conn.sock.send(conn.out)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:               # gone: closed on the next pass
                        progress[conn] = -END_DRAIN_STALL
                        continue
                    del conn.out[:sent]
                    progress[conn] = time.monotonic()
                now = time.monotonic()

    def _untaken(self, conn: _Conn) -> str:
        """What a client closed at end of session had not taken, for the log line."""
        if conn.user is None:
            return f"{len(conn.out)} bytes unsent"
        last = self.logs[conn.user.username].durable_sequence
        return (f"{conn.user.username}: {len(conn.out)} bytes unsent, log messages "
                f"{conn.cursor}..{last} not queued yet")

    def _close(self, conn: _Conn) -> None:
        if conn.sock.fileno() < 0:
            return
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self._conns.pop(conn.sock.fileno(), None)
        if conn.user is not None and self._online.get(conn.user.username) is conn:
            del self._online[conn.user.username]
        if conn.debug_dropped:
            log.warning("%s: closed; %d Debug replies were dropped unsent", self._who(conn),
                        conn.debug_dropped)
        conn.sock.close()
        # the venue's own stop is no failed login of the client's
        if (conn.user is None and not self._ending
                and self.throttle.failed(conn.peer[0], time.monotonic())):
            t = self.throttle
            log.warning("%s: %d connections ended without a login within %g s: new connections "
                        "from it are refused for %g s", conn.peer[0], t.failures, t.window,
                        t.cooloff)

    def _udp_send(self, packet: bytes, addr: tuple[str, int]) -> None:
        try:
            self._udp_out.sendto(packet, addr)
        except OSError as exc:   # e.g. ENOBUFS under a burst: that packet is lost, as on a wire
            self.udp_send_failures += 1
            if self.udp_send_failures == 1:
                log.warning("market-data send to %s failed: %s (that datagram is lost; the client "
                            "re-requests it; later failures are counted)", addr, exc)
            else:
                log.debug("market-data send to %s failed: %s", addr, exc)
