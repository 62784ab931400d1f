"""Idle-time warming of the kernel's TCP send path: one byte over a private loopback connection
while the busy-poll runner waits, so an order's send() finds that path in the CPU's caches.

Owns that connection (both ends in this process, on 127.0.0.1, made and closed here) and nothing
else: it never touches the order entry, the journal or the engine. Why it exists: on a shared VM
the kernel's send path (TCP, IP, the device, the socket buffers' allocator) leaves the caches
within milliseconds, and live orders come that far apart; a cold send() takes ~10-20 us to its
TX stamp against ~2 us warm (bench/kernel_floor.py, sends 10 ms and 200 us apart). The path the
byte takes is the order entry's up to the device: on loopback all of it, on a NIC all but the
driver.
"""
from __future__ import annotations

import socket

__all__ = ["TxWarmError", "TxPathWarmer"]

_DRAIN = 4096          # bytes the receiving end reads per step, far more than the steps send


class TxWarmError(Exception):
    """The warming connection could not be made or failed; warming it is over (closed)."""


class TxPathWarmer:
    """A connected loopback TCP pair: step() sends one byte (TCP_NODELAY, so it leaves at once,
    as an order does) and reads back whatever arrived, so nothing piles up."""

    def __init__(self) -> None:
        self.sent = 0                    # bytes sent by step()
        self._out: socket.socket | None = None
        self._in: socket.socket | None = None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.settimeout(1.0)     # loopback accepts at once: never waits long
            self._out = socket.create_connection(listener.getsockname(), timeout=1.0)
            self._in, peer = listener.accept()
            if peer != self._out.getsockname():
                # another local process connected first: never send to a stranger
                raise OSError(f"the listener's first connection came from {peer[0]}:{peer[1]}, not ours")
            self._out.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._out.setblocking(False)
            self._in.setblocking(False)
        except OSError as exc:
            self.close()
            raise TxWarmError(f"no loopback connection to warm the send path with: {exc}") from exc
        finally:
            listener.close()

    def step(self) -> None:
        """One byte out and the receiving end drained; TxWarmError (and closed) when either fails."""
        out, into = self._out, self._in
        if out is None or into is None:
            raise TxWarmError("the warming connection is closed")
        try:
            out.send(b"\0")
            self.sent += 1
            into.recv(_DRAIN)
        except BlockingIOError:          # nothing to read yet, or the buffer full: the next step
            return
        except OSError as exc:
            self.close()
            raise TxWarmError(f"the warming connection failed: {exc}") from exc

    def close(self) -> None:
        for sock in (self._out, self._in):
            if sock is not None:
                sock.close()
        self._out = self._in = None
