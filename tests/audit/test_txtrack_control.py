"""Sends that carry no order (a session's login, heartbeats, logout) are registered as such: their
TX stamps, on time or late, are counted in `control`, never in `unmatched`, and give no outcome;
one that never comes is no MISSING either (no order waits on it). Orders are tracked as before."""
from audit.txtrack import PendingTxTracker, TxStatus
from journal.catalogue import TsSource

KERNEL = TsSource.SW_KERNEL


def test_a_control_sends_stamp_is_known_and_gives_no_outcome():
    tr = PendingTxTracker(timeout_ns=50)
    assert tr.control_sent(47, 0) == []
    tr.sent(95, 0, context=(3,))
    out = tr.collect([(47, 10, KERNEL), (95, 11, KERNEL), (12345, 12, KERNEL)], 20)
    assert [(o.tskey, o.status, o.context) for o in out] == [(95, TxStatus.STAMPED, (3,))]
    assert (tr.control, tr.unmatched, tr.late, len(tr)) == (1, 1, 0, 0)


def test_a_control_send_without_a_stamp_is_not_missing_and_its_late_stamp_still_known():
    tr = PendingTxTracker(timeout_ns=50)
    tr.control_sent(47, 0)
    tr.sent(95, 10, context=(3,))
    assert [(o.tskey, o.status) for o in tr.expire(100)] == [(95, TxStatus.MISSING)]
    assert tr.collect([(47, 120, KERNEL)], 130) == []
    assert (tr.control, tr.unmatched, tr.late) == (1, 0, 0)
    assert tr.stamped(95, 140, KERNEL).status == TxStatus.LATE


def test_control_sends_pushed_out_of_a_full_tracker_give_no_outcome():
    tr = PendingTxTracker(timeout_ns=10**9, max_pending=1)
    tr.control_sent(1, 0)
    assert tr.sent(2, 0, context=(7,)) == []
    assert [o.status for o in tr.control_sent(3, 0)] == [TxStatus.MISSING]
    assert tr.stamped(1, 5, KERNEL) is None and tr.control == 1 and tr.unmatched == 0


def test_a_control_send_over_a_pending_orders_key_makes_the_order_missing():
    # keys count each connection's bytes: a new connection's login can reuse an old order's key
    tr = PendingTxTracker(timeout_ns=10**9)
    tr.sent(47, 0, context=(5,))
    assert [(o.tskey, o.status, o.context) for o in tr.control_sent(47, 1)] == [(47, TxStatus.MISSING, (5,))]
    assert tr.stamped(47, 9, KERNEL) is None and tr.control == 1 and tr.late == 0
    assert tr.control_sent(47, 2) == [] and len(tr) == 1      # a control send again: nothing to report
