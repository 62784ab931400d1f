"""The C busy-poll reader (audit.fastcap): a datagram comes out as TimestampedSocket.recvfrom gives
it, stamped and labelled the same way; it returns for a ready watched descriptor or the socket's
error queue, never for a closed one, at its deadline otherwise; it keeps polling under a flood,
spins without the GIL, and fails as the socket would."""
from __future__ import annotations

import errno
import select
import socket
import threading
import time

import pytest

from audit.capture import TimestampedUdpSocket
from audit.errors import TimestampingError
from audit._fastcap_cffi import ffi
from audit.fastcap import SpinReader
from audit.sotimestamping import SO_TIMESTAMPING_NEW, SO_TIMESTAMPING_OLD, pack_scm_timestamping
from journal.catalogue import TsSource

S = 1_000_000_000


def realtime() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def stamping_on(sock: TimestampedUdpSocket, sender: socket.socket) -> None:
    """Wait (bounded) until the kernel stamps this socket's datagrams: it turns RX stamping on for
    the system through a deferred static key when the first socket asks, so a datagram sent at
    once may carry no stamp (and is labelled user time, honestly); probes are read and dropped."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sender.sendto(b"probe", sock.sock.getsockname())
        if sock.recvfrom(65536)[3] is TsSource.SW_KERNEL:
            return
        time.sleep(0.01)
    raise AssertionError("the kernel never stamped a datagram in 5 s")


@pytest.fixture
def md():
    sock = TimestampedUdpSocket.bound()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    stamping_on(sock, sender)
    yield sock, sender
    sock.close()
    sender.close()


def soon(seconds: float = 2.0) -> int:
    return time.monotonic_ns() + int(seconds * S)


def test_a_datagram_comes_out_as_recvfrom_gives_it(md):
    sock, sender = md
    reader = SpinReader(sock)
    before = realtime()
    sender.sendto(b"first", sock.sock.getsockname())
    sender.sendto(b"second", sock.sock.getsockname())
    spun = reader.wait(soon())
    after = realtime()
    data, addr, ts_ns, source = spun
    assert (data, addr, source) == (b"first", sender.getsockname(), TsSource.SW_KERNEL)
    assert before <= ts_ns <= after and type(data) is bytes
    got = sock.recvfrom(65536)                 # the same socket, read the existing way
    assert got[0] == b"second" and got[1] == addr and got[3] is source


def test_a_hardware_socket_without_a_nic_stamp_falls_back_to_the_kernels(md):
    _, sender = md
    with TimestampedUdpSocket.bound(hardware=True) as sock:
        stamping_on(sock, sender)
        sender.sendto(b"x", sock.sock.getsockname())
        _, _, ts_ns, source = SpinReader(sock).wait(soon())
    assert source is TsSource.SW_KERNEL and abs(ts_ns - realtime()) < S


def test_no_stamp_is_labelled_user_time_after_the_read(md):
    sock, sender = md
    sock.sock.setsockopt(socket.SOL_SOCKET, sock.option, 0)     # no SCM_TIMESTAMPING any more
    sender.sendto(b"x", sock.sock.getsockname())
    time.sleep(0.01)
    before = realtime()
    _, _, ts_ns, source = SpinReader(sock).wait(soon())
    assert source is TsSource.USER and before <= ts_ns <= realtime()


def test_a_long_datagram_is_cut_to_the_buffer_as_recvmsg_cuts_it(md):
    sock, sender = md
    sender.sendto(bytes(range(100)), sock.sock.getsockname())
    assert SpinReader(sock, bufsize=10).wait(soon())[0] == bytes(range(10))


def test_the_deadline_returns_nothing_ready_after_one_read_and_one_poll_at_least(md):
    reader = SpinReader(md[0])
    assert reader.wait(0) is None and reader.ready == [] and reader.counts == (1, 1)
    start = time.monotonic_ns()
    assert reader.wait(start + 20_000_000) is None and reader.ready == []
    assert time.monotonic_ns() - start >= 20_000_000
    reads, polls = reader.counts
    assert reads > 10 and polls >= reads // 4       # poll every 4th read (POLL_EVERY)


def test_a_ready_watched_descriptor_ends_the_wait_and_a_closed_one_does_not(md):
    reader = SpinReader(md[0])
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    reader.watch((a.fileno(), -1, c.fileno()))
    d.send(b"!")
    start = time.monotonic_ns()
    assert reader.wait(start + 5 * S) is None
    assert reader.ready == [(c.fileno(), select.POLLIN)] and time.monotonic_ns() - start < S
    closed = c.fileno()
    c.close()
    d.close()
    reader.watch((a.fileno(), closed))
    assert reader.wait(time.monotonic_ns() + 20_000_000) is None and reader.ready == []
    a.close()
    b.close()


def test_the_sockets_error_queue_is_reported(md):
    sock, sender = md
    reader = SpinReader(sock)
    sock.sendto(b"re-request", sender.getsockname())   # its TX stamp goes to the error queue
    time.sleep(0.01)
    assert reader.wait(soon()) is None
    assert reader.ready == [(sock.fileno(), select.POLLERR)]
    assert len(sock.poll_tx_timestamps()) == 1


def test_a_datagram_the_poll_sees_waiting_is_read_not_reported(md):
    sock, sender = md
    reader = SpinReader(sock, poll_every=1)
    for data in (b"one", b"two"):
        sender.sendto(data, sock.sock.getsockname())
    time.sleep(0.01)
    assert reader.wait(soon())[0] == b"one" and reader.counts == (1, 0)
    assert reader.wait(soon())[0] == b"two" and reader.counts == (2, 1)     # polled, then read


def test_a_flood_of_datagrams_does_not_starve_the_watched_descriptors(md):
    sock, sender = md
    reader = SpinReader(sock)
    a, b = socket.socketpair()
    reader.watch((a.fileno(),))
    for i in range(40):
        sender.sendto(b"%d" % i, sock.sock.getsockname())
    time.sleep(0.01)
    b.send(b"!")
    got = []
    while (packet := reader.wait(soon())) is not None:
        got.append(packet[0])
    assert len(got) == 4 and reader.ready[-1] == (a.fileno(), select.POLLIN)
    assert (sock.fileno(), select.POLLIN) in reader.ready      # datagrams still wait: said so
    a.close()
    b.close()


def test_the_spin_releases_the_gil(md):
    reader = SpinReader(md[0])
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
    other = threading.Thread(target=count)
    other.start()
    try:
        time.sleep(0.01)
        before = len(ticks)
        reader.wait(time.monotonic_ns() + 200_000_000)     # 40 GIL switch intervals if it were held
        during = len(ticks) - before
    finally:
        stop.set()
        other.join()
    assert during > 1000


def test_a_failed_read_raises_what_the_socket_would(md):
    sock, _ = md
    reader = SpinReader(sock)
    sock.close()
    with pytest.raises(OSError) as caught:
        reader.wait(0)
    assert caught.value.errno == errno.EBADF


def test_a_stamp_in_another_layout_is_decoded_or_refused_as_capture_does(md):
    reader = SpinReader(md[0])
    ctl = ffi.buffer(reader._r.ctl)
    timespec32 = (5).to_bytes(4, "little") + (7).to_bytes(4, "little") + bytes(16)
    for ctype, payload in ((SO_TIMESTAMPING_OLD, timespec32), (SO_TIMESTAMPING_NEW, pack_scm_timestamping(9))):
        reader._r.ncmsg = 1
        reader._r.cmsgs[0] = (socket.SOL_SOCKET, ctype, 16, len(payload))
        ctl[16:16 + len(payload)] = payload
        assert reader._undecided() == ((5 * S + 7, TsSource.SW_KERNEL) if len(payload) == 24
                                       else (9, TsSource.SW_KERNEL))
    reader._r.cmsgs[0] = (socket.SOL_SOCKET, SO_TIMESTAMPING_OLD, 16, 20)
    with pytest.raises(TimestampingError, match="20 bytes"):
        reader._undecided()


def test_bad_arguments_get_typed_errors(md):
    sock, _ = md
    with pytest.raises(ValueError, match="bufsize"):
        SpinReader(sock, bufsize=0)
    with pytest.raises(ValueError, match="poll_every"):
        SpinReader(sock, poll_every=0)
    with pytest.raises(ValueError, match="at most 8"):
        SpinReader(sock).watch(range(9))
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as six:
        with pytest.raises(TimestampingError, match="AF_INET"):
            SpinReader(TimestampedUdpSocket(six))
