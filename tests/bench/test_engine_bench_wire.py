"""The engine benchmark's wire-to-wire pairing (bench.engine_bench._wire_latencies): a send whose TX
stamp came after the runner called it MISSING counts at its LATE stamp, never dropped; the gaps
between market-data packets, which set the kernel floor's second gap; and the floor's own readings
(bench.kernel_floor, a real C program and a real Python sender on loopback)."""
from journal import Record
from journal.catalogue import RecordType, TsSource, pack
from audit.txtrack import TxStatus
import shutil

import pytest

from bench import kernel_floor
from bench.engine_bench import _session_gap_us, _wire_latencies


def _rec(seq, rtype, ts_ns, payload=b"", source=TsSource.SW_KERNEL):
    return Record(seq, int(rtype), ts_ns, int(source), 0, payload)


def _sent(seq, ts_ns, msg_type=b"U"):
    return _rec(seq, RecordType.ORDER_SENT, ts_ns, pack(RecordType.ORDER_SENT, msg_type=ord(msg_type)),
                TsSource.USER)


def _tx(seq, order_seq, status, tx_ns):
    source = TsSource.NONE if status == TxStatus.MISSING else TsSource.SW_KERNEL
    return _rec(seq, RecordType.TX_TS, 0, pack(RecordType.TX_TS, order_seq=order_seq, status=int(status),
                                                 source=int(source), tx_ts_ns=tx_ns), TsSource.USER)


def test_a_late_stamp_counts_and_a_never_stamped_send_is_counted_missing():
    records = [
        _rec(1, RecordType.MD_PACKET, 1_000, b"p"),
        _sent(2, 1_010),
        _tx(3, 2, TxStatus.STAMPED, 1_030),                  # on time: 30 ns
        _rec(4, RecordType.MD_PACKET, 2_000, b"p"),
        _sent(5, 2_020, b"X"),
        _tx(6, 5, TxStatus.MISSING, 0),                      # called missing ...
        _rec(7, RecordType.MD_PACKET, 3_000, b"p"),
        _tx(8, 5, TxStatus.LATE, 2_900),                     # ... then stamped late: 900 ns
        _sent(9, 3_010),
        _tx(10, 9, TxStatus.MISSING, 0),                     # never stamped
    ]
    out = _wire_latencies(records)
    assert out["w2w"] == [30, 900]
    assert out["w2w cancels"] == [900]
    assert out["late"] == [900]
    assert out["rx->decided"] == [10, 20] and out["append+send"] == [20, 880]
    assert len(out["missing"]) == 1


def test_the_market_data_gap_is_read_from_kernel_stamped_packets_only():
    records = [
        _rec(1, RecordType.MD_PACKET, 1_000_000, b"p"),
        _rec(2, RecordType.MD_PACKET, 2_500_000, b"p", TsSource.USER),   # no kernel stamp: skipped
        _rec(3, RecordType.VENUE_MSG, 3_000_000, b"v"),
        _rec(4, RecordType.MD_PACKET, 11_000_000, b"p"),
        _rec(5, RecordType.MD_PACKET, 31_000_000, b"p"),
    ]
    gaps = _wire_latencies(records)["md gap"]
    assert gaps == [10_000_000, 20_000_000]
    assert _session_gap_us(gaps) == 15_000
    assert _session_gap_us([]) == 10_000                       # too few packets: the default
    assert _session_gap_us([50]) == 200                        # never below the warm floor's gap
    assert _session_gap_us([10 ** 12]) == 50_000


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler to build the floor program")
def test_the_c_floor_reads_each_datagram_and_its_senders_clock():
    floor = kernel_floor.kernel_floor(40, 1_000)
    assert floor is not None
    assert len(floor["rx->read"]) == 40 and len(floor["send->tx"]) == 40
    assert len(floor["rx->sendto-returned"]) == 40
    # the stamp comes before the read and before the sender's syscall returns (one clock, one host)
    assert all(v > 0 for v in floor["rx->read"] + floor["rx->sendto-returned"] + floor["send->tx"])
    assert "rx->sendto-returned p50" in kernel_floor.summary(floor, 1_000)
    assert "1,000 us apart" in kernel_floor.summary(floor, 1_000)


def test_the_python_sender_floor_pairs_each_datagram_with_its_senders_clock():
    floor = kernel_floor.python_sender(30, 1_000)
    assert len(floor["rx->read"]) == 30 and len(floor["rx->sendto-returned"]) == 30
    assert all(v > 0 for v in floor["rx->read"] + floor["rx->sendto-returned"])
