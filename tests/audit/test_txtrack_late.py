"""A TX stamp that comes after its send was journaled MISSING is not dropped: the tracker keeps
the newest expired keys (bounded) and reports the stamp as LATE with the send's context; a stamp
for a key it no longer knows is counted as unmatched. On a real loopback TCP socket whose peer
stops reading, the kernel stamps the order only when its segment leaves, after the timeout."""
import socket
import threading
import time

import pytest

from audit.capture import TimestampedTcpSocket
from audit.errors import TimestampingError
from audit.txtrack import PendingTxTracker, TxStatus
from journal.catalogue import TsSource

KERNEL = TsSource.SW_KERNEL


def test_a_stamp_after_the_timeout_is_late_with_the_sends_context():
    tr = PendingTxTracker(timeout_ns=50)
    tr.sent(7, 0, context=(1234,))
    assert [(o.status, o.context) for o in tr.expire(50)] == [(TxStatus.MISSING, (1234,))]
    late = tr.collect([(7, 999, KERNEL)], 60)
    assert [(o.tskey, o.status, o.ts_ns, o.source, o.context) for o in late] == [
        (7, TxStatus.LATE, 999, KERNEL, (1234,))]
    assert tr.late == 1 and tr.unmatched == 0


def test_evicted_sends_are_remembered_for_a_late_stamp_too():
    tr = PendingTxTracker(timeout_ns=10**9, max_pending=1)
    tr.sent(1, 0, context="a")
    assert [o.status for o in tr.sent(2, 0, context="b")] == [TxStatus.MISSING]
    assert tr.stamped(1, 5, KERNEL).status == TxStatus.LATE


def test_expired_keys_are_bounded_and_the_oldest_become_unmatched():
    tr = PendingTxTracker(timeout_ns=1, max_expired=2)
    for key in range(3):
        tr.sent(key, 0, context=key)
    assert len(tr.expire(1)) == 3
    assert tr.stamped(0, 5, KERNEL) is None and tr.unmatched == 1        # forgotten: oldest
    assert [tr.stamped(k, 5, KERNEL).context for k in (1, 2)] == [1, 2] and tr.late == 2
    none_kept = PendingTxTracker(timeout_ns=1, max_expired=0)
    none_kept.sent(0, 0)
    none_kept.expire(1)
    assert none_kept.stamped(0, 5, KERNEL) is None and none_kept.unmatched == 1
    with pytest.raises(TimestampingError):
        PendingTxTracker(max_expired=-1)


def test_a_key_sent_again_belongs_to_the_new_send():
    tr = PendingTxTracker(timeout_ns=1)
    tr.sent(9, 0, context="old")
    tr.expire(1)
    tr.sent(9, 2, context="new")          # the u32 byte counter came round
    assert tr.stamped(9, 5, KERNEL).status == TxStatus.STAMPED and tr.late == 0


def blocked_tcp_pair():
    """(client, peer): a stamping TCP client whose send buffer holds more than the peer's window,
    with the window already full, so the next send's segment waits until the peer reads."""
    lsn = socket.socket()
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    raw.connect(lsn.getsockname())
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = TimestampedTcpSocket(raw)
    peer, _ = lsn.accept()
    lsn.close()
    client.sock.setblocking(False)
    client.sent_elsewhere(client.sock.send(b"x" * 300_000))    # beyond the window, within our buffer
    time.sleep(0.05)
    client.poll_tx_timestamps()
    return client, peer


def drain(peer: socket.socket) -> None:
    peer.settimeout(0.2)
    try:
        while peer.recv(1 << 20):
            pass
    except (socket.timeout, OSError):
        pass


def test_a_real_kernel_stamp_after_the_timeout_is_late_not_dropped():
    client, peer = blocked_tcp_pair()
    try:
        tr = PendingTxTracker(timeout_ns=50_000_000)
        client.sock.send(b"O" * 49)
        key = client.sent_elsewhere(49)
        tr.sent(key, time.monotonic_ns(), context=(42,))
        time.sleep(0.06)
        first = tr.collect(client.poll_tx_timestamps(), time.monotonic_ns())
        assert [(o.tskey, o.status) for o in first] == [(key, TxStatus.MISSING)]
        reader = threading.Thread(target=drain, args=(peer,))
        reader.start()
        late, deadline = [], time.monotonic() + 5
        while not late and time.monotonic() < deadline:
            time.sleep(0.01)
            late = [o for o in tr.collect(client.poll_tx_timestamps(), time.monotonic_ns())
                    if o.tskey == key]
        reader.join()
        assert [(o.status, o.source, o.context) for o in late] == [(TxStatus.LATE, KERNEL, (42,))]
        assert late[0].ts_ns > 0 and tr.late == 1
    finally:
        client.close()
        peer.close()
