"""Busy-poll reads of a timestamped datagram socket in C (audit/_fastcap.c), the GIL released while
it spins: a datagram comes out as TimestampedSocket.recvfrom gives it, stamped and labelled as
audit.capture labels stamps (honest sources: NIC hardware, kernel software, user space).

Owns the C reader's buffers and the translation of fcap_wait's return codes; a failed read raises
the OSError the socket would have raised. Must not know about journals, runners or what the
watched descriptors are for.
"""
from __future__ import annotations

import os
import socket
import sys
from typing import Iterable

from audit._fastcap_cffi import ffi, lib
from audit.capture import TimestampedUdpSocket, stamp_from_ancillary
from audit.errors import TimestampingError
from journal.catalogue import TsSource

__all__ = ["POLL_EVERY", "SpinReader"]

# reads between two polls of the watched descriptors: each is a syscall of ~1 us here, so a venue
# answer or an operator waits a few us at most, and a datagram's read is rarely behind a poll
POLL_EVERY = 4
_SOURCES = {lib.FCAP_SRC_HW_PHC: TsSource.HW_PHC, lib.FCAP_SRC_SW_KERNEL: TsSource.SW_KERNEL,
            lib.FCAP_SRC_USER: TsSource.USER}
_HOSTS_KEPT = 64           # sender addresses whose text is cached (a flood of others is formatted)


class SpinReader:
    """Spins on one AF_INET TimestampedUdpSocket; `wait(deadline)` returns its next datagram, or
    None with `ready` saying which watched descriptors (the socket's own for its error queue) are
    ready, as an epoll's poll() lists them: [(fd, events)], empty when the deadline passed."""

    def __init__(self, sock: TimestampedUdpSocket, bufsize: int = 65536, poll_every: int = POLL_EVERY) -> None:
        raw = sock.sock
        if raw.family != socket.AF_INET or raw.type != socket.SOCK_DGRAM:
            raise TimestampingError("SpinReader needs an AF_INET datagram socket")
        if isinstance(bufsize, bool) or not isinstance(bufsize, int) or bufsize < 1:
            raise ValueError(f"bufsize must be a positive int, not {bufsize!r}")
        if isinstance(poll_every, bool) or not isinstance(poll_every, int) or poll_every < 1:
            raise ValueError(f"poll_every must be a positive int, not {poll_every!r}")
        self.sock = sock
        self._buf = ffi.new("uint8_t[]", bufsize)
        self._data = ffi.buffer(self._buf)
        r = self._r = ffi.new("struct fcap_reader *")
        r.fd, r.hardware, r.poll_every = raw.fileno(), int(sock.hardware), poll_every
        r.buf, r.bufsize = self._buf, bufsize
        self._fds: tuple[int, ...] = (r.fd,)
        self._hosts: dict[int, str] = {}
        self.ready: list[tuple[int, int]] = []

    def watch(self, fds: Iterable[int]) -> None:
        """Watch these descriptors (negative ones are skipped) instead of those before."""
        fds = tuple(fds)
        if len(fds) > lib.FCAP_MAX_WATCH:
            raise ValueError(f"at most {lib.FCAP_MAX_WATCH} descriptors can be watched, not {len(fds)}")
        r = self._r
        for i, fd in enumerate(fds):
            r.watch[i] = fd
        r.nwatch = len(fds)
        self._fds = (r.fd, *fds)

    @property
    def read_ns(self) -> int:
        """CLOCK_REALTIME ns right after the last datagram's recvmsg returned (0 before any)."""
        return self._r.user_ns

    @property
    def counts(self) -> tuple[int, int]:
        """(recvmsg calls, poll calls) made so far."""
        return self._r.reads, self._r.polls

    def wait(self, deadline_ns: int):
        """Spin until a datagram is read, a watched descriptor is ready or time.monotonic_ns()
        reaches deadline_ns (at least one read and one poll, even with a past deadline).
        Returns (bytes, (host, port), ts_ns, TsSource), or None: `ready` then lists what is ready
        (empty: the deadline passed, or a signal interrupted the wait). OSError when recvmsg or
        poll failed, TimestampingError when a stamp could not be decoded (the datagram is lost,
        as TimestampedSocket.recvfrom loses it)."""
        r = self._r
        rc = lib.fcap_wait(r, deadline_ns)
        if rc == lib.FCAP_PACKET:
            data = self._data[0:r.length]
            source = r.source
            if source:
                stamp, source = r.stamp_ns, _SOURCES[source]
            else:
                stamp, source = self._undecided()
            host = self._hosts.get(r.addr) or self._host(r.addr)
            self.sock.rx_drops = r.drops     # as TimestampedSocket.recvfrom keeps it
            return data, (host, r.port), stamp, source
        if rc == lib.FCAP_READY:
            self.ready = [(fd, ev) for fd, ev in zip(self._fds, r.revents) if ev]
            return None
        self.ready = []
        if rc in (lib.FCAP_DEADLINE, lib.FCAP_INTERRUPTED):
            return None
        if rc == lib.FCAP_ERROR:
            raise OSError(r.err, os.strerror(r.err))
        raise ValueError(f"fcap_wait refused its arguments ({rc})")

    def _undecided(self) -> tuple[int, TsSource]:
        """A stamp payload not in the 64-bit layout came first: decoded as audit.capture does."""
        r, ctl = self._r, ffi.buffer(self._r.ctl)
        ancdata = [(c.level, c.type, ctl[c.offset:c.offset + c.length]) for c in r.cmsgs[0:r.ncmsg]]
        stamp = stamp_from_ancillary(ancdata, self.sock.hardware)
        return (r.user_ns, TsSource.USER) if stamp is None else stamp

    def _host(self, addr: int) -> str:
        host = socket.inet_ntoa(addr.to_bytes(4, sys.byteorder))   # addr is in network order
        if len(self._hosts) < _HOSTS_KEPT:
            self._hosts[addr] = host
        return host
