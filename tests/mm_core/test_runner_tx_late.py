"""The runner journals a TX stamp that comes after its 50 ms timeout as a second TX_TS (status
LATE, with the kernel's stamp) after the order's MISSING one, and counts late stamps and stamps
for no known send in its report and the run summary: on a real loopback order entry whose venue
stops reading, so the order's segment (and its stamp) waits for the venue's window."""
from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

from audit.capture import TimestampedTcpSocket
from audit.txtrack import TxStatus
from cli.run_cmd import orders_sent_text
from journal.catalogue import RecordType, TsSource, unpack
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from tests.audit.test_txtrack_late import drain
from tests.mm_core.fake_venue import new_engine
from tests.mm_core.test_runner import LockedClock
from tests.mm_core.test_runner_link_faults import enter, now
from tests.mm_core.test_runner_venue_link import ListJournal


def blocked_runner(journal):
    """(runner, peer): the runner's order entry has more queued than the venue's window holds."""
    lsn = socket.socket()
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    runner = Runner(new_engine(), journal, RunnerSettings(), LockedClock())
    runner._oe = TimestampedTcpSocket.connect(lsn.getsockname())
    runner._oe.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    peer, _ = lsn.accept()
    lsn.close()
    oe = runner._oe
    oe.sock.setblocking(False)
    oe.sent_elsewhere(oe.sock.send(b"x" * 300_000))
    oe.sock.setblocking(True)
    return runner, peer


def test_a_late_tx_stamp_is_journaled_late_and_counted():
    journal = ListJournal()
    runner, peer = blocked_runner(journal)
    try:
        runner._act([enter("T1")], now())
        time.sleep(0.06)
        runner._drain_tx(time.monotonic_ns())
        reader = threading.Thread(target=drain, args=(peer,))
        reader.start()
        deadline = time.monotonic() + 5
        while runner.report.tx_late == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
            runner._drain_tx(time.monotonic_ns())
        reader.join()
    finally:
        runner.close()
        peer.close()
    sent = [seq for seq, rtype, _ in journal.records if rtype == RecordType.ORDER_SENT]
    tx = [unpack(RecordType.TX_TS, p) for _, rtype, p in journal.records if rtype == RecordType.TX_TS]
    assert [int(t["order_seq"]) for t in tx] == sent * 2
    assert [int(t["status"]) for t in tx] == [TxStatus.MISSING, TxStatus.LATE]
    assert int(tx[0]["tx_ts_ns"]) == 0 and int(tx[1]["tx_ts_ns"]) > 0
    assert int(tx[1]["source"]) == TsSource.SW_KERNEL
    report = runner.report
    assert (report.tx_stamped, report.tx_missing, report.tx_late) == (0, 1, 1)
    assert "missing 1, of those stamped late 1" in orders_sent_text(report)


def test_a_stamp_for_no_known_send_is_counted_and_shown():
    runner = Runner(new_engine(), ListJournal(), RunnerSettings(), LockedClock())
    runner._oe = SimpleNamespace(poll_tx_timestamps=lambda: [(12345, 1, TsSource.SW_KERNEL)])
    runner._drain_tx(time.monotonic_ns())
    runner._drain_tx(time.monotonic_ns())
    assert runner.report.tx_unmatched == 2 and runner.report.tx_late == 0
    assert "TX stamps for no known send 2" in orders_sent_text(runner.report)
