"""Receive buffers on real loopback sockets: sized as asked (forced past rmem_max, or capped when
the process may not force), and the datagrams the kernel drops when one is full counted - by the
count the next datagram carries (SO_RXQ_OVFL), in the Python and the busy-poll C reader alike,
and by the socket's own count (SO_MEMINFO)."""
from __future__ import annotations

import errno
import os
import socket
import time

import pytest

from audit.capture import TimestampedUdpSocket
from audit.fastcap import SpinReader
from audit.rxbuffer import (
    MIN_RCVBUF, SO_RCVBUFFORCE, RcvbufSize, count_drops, drops_in, kernel_drops, size_receive_buffer,
)

SENT = 64                      # full-size datagrams sent while nobody reads
PAYLOAD = bytes(1400)


def receiver(nbytes: int = MIN_RCVBUF) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    size_receive_buffer(sock, nbytes)
    sock.bind(("127.0.0.1", 0))
    return sock


def flood(address, n: int = SENT, payload: bytes = PAYLOAD) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        for _ in range(n):
            out.sendto(payload, address)


def read_all(read) -> int:
    n = 0
    while True:
        try:
            if read() is None:
                return n
        except BlockingIOError:
            return n
        n += 1


def test_the_buffer_is_the_size_asked_the_kernel_counting_it_twice():
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    asked = max(8 * 1024 * 1024, 2 * rmem_max)                   # above rmem_max: root forces it
    root = os.geteuid() == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        size = size_receive_buffer(sock, asked)
        assert size.forced is root and size.capped is not root
        assert size.kernel_bytes == 2 * (asked if root else rmem_max)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == size.kernel_bytes


class _Unprivileged:
    """A socket as a process without CAP_NET_ADMIN sees it: SO_RCVBUFFORCE is refused (EPERM)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def setsockopt(self, level, option, value):
        if option == SO_RCVBUFFORCE:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return self.sock.setsockopt(level, option, value)

    def getsockopt(self, *args):
        return self.sock.getsockopt(*args)


def test_without_the_right_to_force_it_the_buffer_is_capped_at_rmem_max_and_says_so():
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        size = size_receive_buffer(_Unprivileged(sock), 4 * rmem_max)
    assert not size.forced and size.capped and size.kernel_bytes == 2 * rmem_max


@pytest.mark.parametrize("bad", [0, MIN_RCVBUF - 1, 2**31, "4M", True, 4.0e6])
def test_a_size_out_of_range_or_not_an_int_is_refused(bad):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(ValueError, match="receive buffer"):
        size_receive_buffer(sock, bad)


def test_drops_of_a_full_buffer_are_counted_by_the_socket_and_carried_by_the_next_datagram():
    with receiver() as sock:
        count_drops(sock)
        flood(sock.getsockname())
        dropped = kernel_drops(sock)
        sock.setblocking(False)
        held = []
        while True:
            try:
                held.append(drops_in(sock.recvmsg(2048, 512)[1]))
            except BlockingIOError:
                break
        # the few the buffer held were queued before any drop: they carry no count
        assert 0 < len(held) < SENT and dropped == SENT - len(held) and held == [None] * len(held)
        flood(sock.getsockname(), 1, b"next")
        time.sleep(0.01)
        data, ancdata, _, _ = sock.recvmsg(2048, 512)
        assert data == b"next" and drops_in(ancdata) == dropped


def test_a_buffer_the_size_of_the_burst_drops_nothing():
    with receiver(4 * 1024 * 1024) as sock:
        count_drops(sock)
        flood(sock.getsockname())
        assert kernel_drops(sock) == 0


@pytest.mark.parametrize("spin", [False, True], ids=["recvfrom", "busy-poll"])
def test_both_readers_keep_the_count_the_datagrams_carry(spin):
    with TimestampedUdpSocket(receiver()) as ts:
        ts.count_drops()
        ts.sock.setblocking(False)
        address = ts.sock.getsockname()
        flood(address)
        dropped = kernel_drops(ts.sock)
        if spin:
            reader = SpinReader(ts)
            read = lambda: reader.wait(time.monotonic_ns() + 2_000_000)   # noqa: E731
        else:
            read = ts.recvfrom
        held = read_all(read)
        assert held + dropped == SENT and ts.rx_drops == 0
        flood(address, 1, b"next")
        deadline = time.monotonic() + 5
        packet = None
        while packet is None and time.monotonic() < deadline:
            try:
                packet = read()
            except BlockingIOError:
                pass
        assert packet[0] == b"next" and ts.rx_drops == dropped


def test_a_socket_not_counting_keeps_no_count():
    with TimestampedUdpSocket(receiver()) as ts:
        ts.sock.setblocking(False)
        flood(ts.sock.getsockname())
        read_all(ts.recvfrom)
        flood(ts.sock.getsockname(), 1, b"next")
        time.sleep(0.01)
        assert ts.recvfrom()[0] == b"next" and ts.rx_drops == 0
