"""The kernel's drops on the runner's market-data socket: each counted once, and where it happened.

Owns the bookkeeping between the drop count the socket's datagrams carry (SO_RXQ_OVFL, kept in
TimestampedSocket.rx_drops by audit.capture and audit.fastcap) and the socket's own count
(SO_MEMINFO, for drops after the last datagram read), and what the journal is told of them: one
alert a second at most (a sustained overload would else add a record for each datagram read), the
next one, or the run's last, naming the drops held back meanwhile. Must not know about journals
or the engine: the runner journals what it is handed.
"""
from __future__ import annotations

import socket

from audit.capture import TimestampedUdpSocket
from audit.rxbuffer import kernel_drops
from mm_core.alertgate import AlertGate

_U32 = 0xFFFFFFFF              # the kernel's counts are u32 and wrap


class MdDrops:
    """One market-data socket's drops (count_drops() already on): new() after each read."""

    def __init__(self, sock: TimestampedUdpSocket, asked: int) -> None:
        self.sock = sock
        self.asked = asked     # the receive buffer the settings asked for, bytes
        self.kernel_bytes = sock.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.seen = 0          # the count as last taken
        self.held = 0          # drops counted since the last alert, not in one
        self._gate = AlertGate()

    def facts(self) -> dict:
        """The socket's receive buffer as journaled at the session's start (capped: the kernel
        kept less than asked, net.core.rmem_max without the right to force it)."""
        return {"rcvbuf_asked": self.asked, "rcvbuf_kernel": self.kernel_bytes,
                "capped": self.kernel_bytes < 2 * self.asked, "drops_counted": "SO_RXQ_OVFL"}

    def new(self) -> int:
        """Drops since the last look, as the last datagram read carries them (0: none)."""
        count = self.sock.rx_drops
        n = (count - self.seen) & _U32
        self.seen = count
        return n

    def tail(self) -> int:
        """Drops no datagram read carried (after the last one read): the socket's own count."""
        count = kernel_drops(self.sock.sock)
        n = (count - self.seen) & _U32
        self.seen = count
        return n

    def alert(self, n: int, total: int, now_ns: int, tail: bool = False) -> str | None:
        """n more drops counted (`total` this run, with them); the alert's text to journal, or None
        while the last alert is under a second old (n is held for the next). `tail`: the run's
        last look, which names any held."""
        if not tail and self._gate.admit("md-kernel-drops", now_ns) is None:
            self.held += n
            return None
        if not n and not self.held:
            return None
        where = "after the last datagram read" if tail else "before the next datagram read"
        held, self.held = self.held, 0
        earlier = f"; {held} more before earlier reads, held back (one alert a second)" if held else ""
        return (f"{n} market-data datagrams dropped by the kernel {where}{earlier} (receive buffer "
                f"full: {self.kernel_bytes} bytes as the kernel counts them); {total} this run")
