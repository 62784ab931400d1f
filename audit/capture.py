"""Timestamped sockets for the engine's runner: every receive comes with its RX stamp and source.

Owns SO_TIMESTAMPING setup on UDP and TCP sockets, reading RX stamps from recvmsg control data,
draining TX stamps from the error queue (matched through OPT_ID keys) and the source preference
NIC hardware (raw PHC) > kernel software > user-space clock_gettime.
Must not know about journals, orders or clock health; see audit.txtrack for missing TX stamps.
"""
from __future__ import annotations

import errno as errno_mod
import socket
import struct
import time

from audit.errors import TimestampingError
from audit.rxbuffer import count_drops, drops_in
from audit.sotimestamping import (
    RECVERR_TYPES, SCM_TIMESTAMPING_TYPES, SO_TIMESTAMPING_NEW, SO_TIMESTAMPING_OLD, TsFlag,
    parse_extended_err, parse_scm_timestamping,
)
from journal.catalogue import TsSource

ANCILLARY_BUFSIZE = 512   # room for SCM_TIMESTAMPING (64 B) + IP_RECVERR (48 B) with headers
MAX_TX_DRAIN = 4096       # error-queue messages read per poll_tx_timestamps call (bounded loop)

SOFTWARE_FLAGS = TsFlag.TX_SOFTWARE | TsFlag.RX_SOFTWARE | TsFlag.SOFTWARE
HARDWARE_FLAGS = TsFlag.TX_HARDWARE | TsFlag.RX_HARDWARE | TsFlag.RAW_HARDWARE
# OPT_TSONLY: the error queue returns the stamp without a copy of the packet (no payload leak,
# less memory); OPT_ID: a per-socket key so each TX stamp names the send that caused it.
OPTION_FLAGS = TsFlag.OPT_ID | TsFlag.OPT_TSONLY


def timestamping_flags(hardware: bool) -> TsFlag:
    """The SO_TIMESTAMPING flags we request: software always, NIC hardware when asked for."""
    flags = SOFTWARE_FLAGS | OPTION_FLAGS
    return flags | HARDWARE_FLAGS if hardware else flags


def enable_timestamping(sock: socket.socket, flags: int) -> int:
    """Set SO_TIMESTAMPING(_NEW) on `sock`; returns the option number that was accepted."""
    last: OSError | None = None
    for option in (SO_TIMESTAMPING_NEW, SO_TIMESTAMPING_OLD):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, int(flags))
            return option
        except OSError as exc:   # ENOPROTOOPT on kernels before 5.1 for the _NEW option
            last = exc
            if exc.errno not in (errno_mod.ENOPROTOOPT, errno_mod.EINVAL):
                break
    raise TimestampingError(f"SO_TIMESTAMPING refused: {last}") from last


_SCM_TS64 = struct.Struct("=qqqqqq")


def stamp_from_ancillary(ancdata, hardware: bool) -> tuple[int, TsSource] | None:
    """The best RX/TX stamp in recvmsg control data: raw hardware first, then kernel software."""
    for level, ctype, data in ancdata:
        if level == socket.SOL_SOCKET and ctype in SCM_TIMESTAMPING_TYPES:
            if len(data) == 48:   # hot path: 64-bit layout, decoded inline
                sw_s, sw_ns, _, _, hw_s, hw_ns = _SCM_TS64.unpack(data)
            else:
                stamps = parse_scm_timestamping(data)
                sw_s, sw_ns = divmod(stamps.software_ns, 1_000_000_000)
                hw_s, hw_ns = divmod(stamps.hardware_ns, 1_000_000_000)
            if hardware and (hw_s or hw_ns):
                return hw_s * 1_000_000_000 + hw_ns, TsSource.HW_PHC
            if sw_s or sw_ns:
                return sw_s * 1_000_000_000 + sw_ns, TsSource.SW_KERNEL
    return None


class TimestampedSocket:
    """A socket with SO_TIMESTAMPING on; subclasses define how send() numbers its TX keys."""

    def __init__(self, sock: socket.socket, hardware: bool = False, extra_flags: int = 0) -> None:
        timeout = sock.gettimeout()
        if timeout is not None and timeout > 0:
            # Python waits for POLLIN before recvmsg in timeout mode, which would block the
            # error-queue drain: only blocking or non-blocking sockets are accepted.
            raise TimestampingError("socket is in timeout mode; use blocking or non-blocking")
        self.sock = sock
        self.hardware = hardware
        self.flags = timestamping_flags(hardware) | extra_flags
        self.option = enable_timestamping(sock, self.flags)
        self.rx_drops = 0            # the kernel's drop count, as the last read datagram carried it
        self._drops = False          # count_drops() was called: reads look for the count

    def count_drops(self) -> None:
        """Have every read take the kernel's drop count (SO_RXQ_OVFL) into rx_drops."""
        count_drops(self.sock)
        self._drops = True

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def recv(self, bufsize: int = 65536, flags: int = 0) -> tuple[bytes, int, TsSource]:
        """One datagram or stream read with its RX timestamp and where it was taken."""
        data, ancdata, _msg_flags, _addr = self.sock.recvmsg(bufsize, ANCILLARY_BUFSIZE, flags)
        stamp = stamp_from_ancillary(ancdata, self.hardware) if ancdata else None
        if stamp is None:
            # Last resort, honestly labelled: user-space time after the syscall returned.
            return data, time.clock_gettime_ns(time.CLOCK_REALTIME), TsSource.USER
        return data, stamp[0], stamp[1]

    def recvfrom(self, bufsize: int = 65536, flags: int = 0):
        """Like recv() but also returns the sender address: (bytes, addr, ts_ns, TsSource)."""
        data, ancdata, _msg_flags, addr = self.sock.recvmsg(bufsize, ANCILLARY_BUFSIZE, flags)
        stamp = stamp_from_ancillary(ancdata, self.hardware)
        # a lone control message that was the stamp holds no drop count: no second look then
        if self._drops and (stamp is None or len(ancdata) > 1):
            self.rx_drops = drops_in(ancdata) or self.rx_drops
        if stamp is None:
            # Last resort, honestly labelled: user-space time after the syscall returned.
            return data, addr, time.clock_gettime_ns(time.CLOCK_REALTIME), TsSource.USER
        return data, addr, stamp[0], stamp[1]

    def poll_tx_timestamps(self) -> list[tuple[int, int, TsSource]]:
        """Drain TX stamps waiting on the error queue: [(tskey, ts_ns, TsSource)], never blocks."""
        out: list[tuple[int, int, TsSource]] = []
        for _ in range(MAX_TX_DRAIN):
            try:
                _data, ancdata, _flags, _addr = self.sock.recvmsg(
                    0, ANCILLARY_BUFSIZE, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            key = None
            for level, ctype, data in ancdata:
                if (level, ctype) in RECVERR_TYPES:
                    err = parse_extended_err(data)
                    if err.is_timestamp:
                        key = err.data
            stamp = stamp_from_ancillary(ancdata, self.hardware)
            if key is not None and stamp is not None:
                out.append((key, stamp[0], stamp[1]))
        return out


class TimestampedUdpSocket(TimestampedSocket):
    """UDP socket (market data in, or any datagram out); TX keys count datagrams from 0."""

    def __init__(self, sock: socket.socket | None = None, hardware: bool = False) -> None:
        sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if sock.type != socket.SOCK_DGRAM:
            raise TimestampingError("TimestampedUdpSocket needs a SOCK_DGRAM socket")
        super().__init__(sock, hardware)
        self._next_key = 0

    @classmethod
    def bound(cls, host: str = "127.0.0.1", port: int = 0, hardware: bool = False) -> "TimestampedUdpSocket":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port))
        return cls(sock, hardware)

    def _take_key(self) -> int:
        key = self._next_key
        self._next_key = (key + 1) & 0xFFFFFFFF   # the kernel's u32 counter wraps too
        return key

    def send(self, data: bytes) -> int:
        """Send one datagram on a connected socket; returns its OPT_ID key."""
        self.sock.send(data)
        return self._take_key()

    def sendto(self, data: bytes, address) -> int:
        self.sock.sendto(data, address)
        return self._take_key()


class TimestampedTcpSocket(TimestampedSocket):
    """Connected TCP socket (order entry); a send's TX key is the byte counter of its last byte."""

    def __init__(self, sock: socket.socket, hardware: bool = False) -> None:
        if sock.type != socket.SOCK_STREAM:
            raise TimestampingError("TimestampedTcpSocket needs a connected SOCK_STREAM socket")
        try:   # OPT_ID_TCP (6.2+) keys from write_seq, so keys stay right with unacked bytes
            super().__init__(sock, hardware, TsFlag.OPT_ID_TCP)
        except TimestampingError:
            super().__init__(sock, hardware)
        self._bytes_sent = 0

    @classmethod
    def connect(cls, address, timeout: float = 5.0, hardware: bool = False,
                send_timeout_ns: int = 0) -> "TimestampedTcpSocket":
        """Connect (within `timeout` s); the socket is then blocking, with TCP_NODELAY. With
        send_timeout_ns, a send() that waits that long for room (the peer is not reading) fails
        with EAGAIN instead of blocking for ever: SO_SNDTIMEO, so it bounds every send on the
        descriptor, those of other code (journal.append_then_send) included."""
        if isinstance(send_timeout_ns, bool) or not isinstance(send_timeout_ns, int) or send_timeout_ns < 0:
            raise ValueError(f"send_timeout_ns must be a non-negative int, not {send_timeout_ns!r}")
        sock = socket.create_connection(address, timeout=timeout)
        try:
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if send_timeout_ns:
                # 0 would mean "no timeout" to the kernel: a positive budget stays positive
                sec, nsec = divmod(send_timeout_ns, 1_000_000_000)
                usec = max(nsec // 1000, 0 if sec else 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", sec, usec))
            return cls(sock, hardware)
        except BaseException:
            sock.close()
            raise

    def send(self, data: bytes) -> int:
        """Send all of `data`; returns the OPT_ID key its TX stamp will carry. OSError when it
        could not (EAGAIN: the send timeout passed, part of `data` may have gone)."""
        if not data:
            raise TimestampingError("an empty send has no byte to timestamp")
        self.sock.sendall(data)
        return self.sent_elsewhere(len(data))

    def sent_elsewhere(self, n: int) -> int:
        """Count n bytes that another path wrote to this socket's descriptor whole (e.g. the
        journal's append-then-send); returns the OPT_ID key their TX stamp will carry."""
        self._bytes_sent += n
        return (self._bytes_sent - 1) & 0xFFFFFFFF
