"""The engine benchmark's wire-to-wire pairing (bench.engine_bench._wire_latencies): a send whose TX
stamp came after the runner called it MISSING counts at its LATE stamp, never dropped."""
from journal import Record
from journal.catalogue import RecordType, TsSource, pack
from audit.txtrack import TxStatus
from bench.engine_bench import _wire_latencies


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
