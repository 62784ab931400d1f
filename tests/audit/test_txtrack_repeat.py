"""A second TX stamp for a send already stamped is a repeat, not a stamp for no known send: TCP
stamps the bytes again when it retransmits them (a tail loss probe fires while the venue delays its
ACK). The send keeps its first stamp (no second outcome); the repeat is counted in `repeated`. On a
real loopback TCP socket whose peer delays its ACKs (TCP_QUICKACK off), two sends in flight get the
last one probed, and stamped, again."""
import socket
import time

from audit.capture import TimestampedTcpSocket
from audit.txtrack import PendingTxTracker, TxStatus
from journal.catalogue import TsSource

KERNEL = TsSource.SW_KERNEL


def test_a_repeated_stamp_of_an_order_or_a_control_send_is_a_repeat():
    tr = PendingTxTracker(timeout_ns=50)
    tr.sent(95, 0, context=(3,))
    tr.control_sent(47, 0)
    out = tr.collect([(95, 10, KERNEL), (47, 11, KERNEL), (95, 20, KERNEL), (47, 21, KERNEL)], 30)
    assert [(o.tskey, o.status, o.ts_ns) for o in out] == [(95, TxStatus.STAMPED, 10)]
    assert (tr.repeated, tr.unmatched, tr.control, tr.late) == (2, 0, 1, 0)


def test_a_late_stamp_repeated_is_a_repeat_and_an_unknown_key_still_unmatched():
    tr = PendingTxTracker(timeout_ns=50)
    tr.sent(7, 0, context=(1,))
    assert [o.status for o in tr.expire(50)] == [TxStatus.MISSING]
    assert [o.status for o in tr.collect([(7, 60, KERNEL), (7, 70, KERNEL), (8, 71, KERNEL)], 80)] == [TxStatus.LATE]
    assert (tr.late, tr.repeated, tr.unmatched) == (1, 1, 1)


def test_a_key_sent_again_is_matched_to_its_new_send_not_repeated():
    # keys count each connection's bytes: a new connection's send may reuse a stamped key
    tr = PendingTxTracker(timeout_ns=50)
    tr.sent(5, 0, context=(1,))
    tr.collect([(5, 1, KERNEL)], 2)
    tr.sent(5, 3, context=(2,))
    assert [(o.context, o.status) for o in tr.collect([(5, 4, KERNEL)], 5)] == [((2,), TxStatus.STAMPED)]
    assert tr.repeated == 0


def test_the_stamped_keys_kept_are_bounded():
    # at least the newest max_expired stamped keys are known, at most twice as many
    tr = PendingTxTracker(timeout_ns=50, max_expired=2)
    for key in range(5):
        tr.sent(key, 0, context=(key,))
    tr.collect([(key, 1, KERNEL) for key in range(5)] + [(0, 2, KERNEL), (3, 2, KERNEL), (4, 2, KERNEL)], 3)
    assert (tr.repeated, tr.unmatched) == (2, 1)         # key 0 forgotten: among the oldest


def delayed_ack_pair():
    """(client, peer): a loopback connection whose peer delays its ACKs (pingpong mode)."""
    lsn = socket.create_server(("127.0.0.1", 0))
    client = TimestampedTcpSocket.connect(lsn.getsockname())
    peer, _ = lsn.accept()
    lsn.close()
    for _ in range(3):                      # a few exchanges: a round trip of microseconds
        client.send(b"h" * 20)
        peer.recv(100)
        peer.sendall(b"r")
        client.sock.recv(10)
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    return client, peer


def test_a_tail_loss_probe_stamps_a_send_again_and_it_is_a_repeat():
    client, peer = delayed_ack_pair()
    tr = PendingTxTracker(timeout_ns=10**9)
    try:
        time.sleep(0.01)
        client.poll_tx_timestamps()         # the exchanges' stamps (not tracked)
        for context in ((1,), (2,)):        # two segments in flight, the ACK delayed
            tr.sent(client.send(b"o" * 49), time.monotonic_ns(), context)
        stamps = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and len(stamps) < 3:
            time.sleep(0.01)
            stamps += client.poll_tx_timestamps()
    finally:
        client.close()
        peer.close()
    out = tr.collect(stamps, time.monotonic_ns())
    assert len(stamps) == 3 and stamps[1][0] == stamps[2][0], stamps    # the last send stamped twice
    assert [(o.context, o.status) for o in out] == [((1,), TxStatus.STAMPED), ((2,), TxStatus.STAMPED)]
    assert (tr.repeated, tr.unmatched) == (1, 0)
