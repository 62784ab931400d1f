"""Receive buffers of datagram sockets: sized on purpose, and the kernel's drops counted.

A UDP datagram that finds its socket's receive buffer full is dropped by the kernel, counted only
in the socket's sk_drops. This module sizes the buffer (SO_RCVBUFFORCE when allowed, else
SO_RCVBUF within net.core.rmem_max), turns on SO_RXQ_OVFL (each datagram then carries the
socket's drop count as it was queued) and reads the count at any time (SO_MEMINFO), so a
sequence gap's cause can be recorded. Must not know about journals, feeds or sequence numbers.
"""
from __future__ import annotations

import errno as errno_mod
import socket
import struct
from dataclasses import dataclass

from audit.errors import AuditError

SO_RCVBUFFORCE = 33        # asm-generic/socket.h: SO_RCVBUF beyond rmem_max (CAP_NET_ADMIN)
SO_RXQ_OVFL = 40           # each datagram's control data: the drop count when it was queued
SO_MEMINFO = 55            # u32[SK_MEMINFO_VARS] of the socket's memory; [SK_MEMINFO_DROPS]
SK_MEMINFO_DROPS = 8
SK_MEMINFO_VARS = 9

# The market-data socket's default: 4 MiB, twenty times the kernel's default (208 KiB). Measured
# on loopback, a full MoldUDP64 packet (1.4 kB) takes 2.3 kB of the kernel's (doubled) figure, a
# 100-byte one 0.8 kB: the default holds 184 full packets, 4 MiB some 3,600 - a re-request
# answer (MAX_REPLY_MESSAGES, ~60 packets) many times over, or 180 ms at 20,000 packets/s while
# the reader is descheduled (a loaded core's scheduler slices are a few ms). Bigger only hides
# a reader that cannot keep up; RunnerSettings.md_rcvbuf (--md-rcvbuf) sets another.
DEFAULT_RCVBUF = 4 * 1024 * 1024
MIN_RCVBUF = 4096          # below this the kernel rounds up anyway (SOCK_MIN_RCVBUF)
MAX_RCVBUF = 1 << 30       # the kernel keeps twice the value in an int

_U32 = struct.Struct("=I")
_SOL_SOCKET = socket.SOL_SOCKET


class RxBufferError(AuditError):
    """A receive buffer could not be sized or its drop counting turned on or read."""


@dataclass(frozen=True, slots=True)
class RcvbufSize:
    """What was asked and what the kernel keeps: `kernel_bytes` is getsockopt(SO_RCVBUF), twice
    the usable size (the kernel doubles a request for its bookkeeping). `forced`: set with
    SO_RCVBUFFORCE; else SO_RCVBUF, capped at net.core.rmem_max (`capped` then says it was)."""

    asked: int
    kernel_bytes: int
    forced: bool

    @property
    def capped(self) -> bool:
        return self.kernel_bytes < 2 * self.asked


def size_receive_buffer(sock: socket.socket, nbytes: int) -> RcvbufSize:
    """Give `sock` a receive buffer of `nbytes`: forced past rmem_max when the process may
    (root / CAP_NET_ADMIN), else as much as rmem_max allows; returns what the kernel kept."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not MIN_RCVBUF <= nbytes <= MAX_RCVBUF:
        raise ValueError(f"receive buffer must be an int of {MIN_RCVBUF}..{MAX_RCVBUF} bytes, not {nbytes!r}")
    forced = True
    try:
        sock.setsockopt(_SOL_SOCKET, SO_RCVBUFFORCE, nbytes)
    except OSError as exc:
        if exc.errno != errno_mod.EPERM:
            raise RxBufferError(f"SO_RCVBUFFORCE {nbytes} refused: {exc}") from exc
        forced = False
        try:
            sock.setsockopt(_SOL_SOCKET, socket.SO_RCVBUF, nbytes)
        except OSError as exc2:
            raise RxBufferError(f"SO_RCVBUF {nbytes} refused: {exc2}") from exc2
    return RcvbufSize(nbytes, sock.getsockopt(_SOL_SOCKET, socket.SO_RCVBUF), forced)


def count_drops(sock: socket.socket) -> None:
    """Turn on SO_RXQ_OVFL: from the first drop on, every datagram read carries the count."""
    try:
        sock.setsockopt(_SOL_SOCKET, SO_RXQ_OVFL, 1)
    except OSError as exc:
        raise RxBufferError(f"SO_RXQ_OVFL refused: {exc}") from exc


def drops_in(ancdata) -> int | None:
    """The socket's drop count in recvmsg control data (None: not there, no drop yet)."""
    for level, ctype, data in ancdata:
        if ctype == SO_RXQ_OVFL and level == _SOL_SOCKET and len(data) >= 4:
            return _U32.unpack_from(data)[0]
    return None


def kernel_drops(sock: socket.socket) -> int:
    """The socket's drop count now (SO_MEMINFO), drops after the last datagram read included."""
    try:
        raw = sock.getsockopt(_SOL_SOCKET, SO_MEMINFO, 4 * SK_MEMINFO_VARS)
    except OSError as exc:
        raise RxBufferError(f"SO_MEMINFO refused: {exc}") from exc
    if len(raw) < 4 * (SK_MEMINFO_DROPS + 1):
        raise RxBufferError(f"SO_MEMINFO gave {len(raw)} bytes: this kernel does not count drops there")
    return _U32.unpack_from(raw, 4 * SK_MEMINFO_DROPS)[0]
