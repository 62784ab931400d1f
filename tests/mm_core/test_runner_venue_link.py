"""The runner's order-entry link when the venue misbehaves: frames before a framing error are
journaled and fed, the bytes it could not frame (or a frame cut short by EOF) are kept in an
alert, a reset or a refused send ends the run with a stop reason (no exception), an order whose
send the socket refused gets a TX_TS of status SEND_FAILED, and a login reject is journaled first."""
from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from audit.capture import TimestampedTcpSocket
from audit.txtrack import TxStatus
from journal.catalogue import RecordType, TsSource, unpack, venue_fields, venue_payload
from mm_core.events import SendOrder
from mm_core.protocol import ouch, soupbintcp
from mm_core.runner import Runner
from mm_core.runnerrecords import engine_events
from mm_core.runnertypes import RunnerError, RunnerSettings
from mm_core.types import OrderKind, Side, make_intent
from tests.mm_core.fake_venue import ACCEPTED, alerts, new_engine, reset, run_against, serve, venue_msgs
from tests.mm_core.test_runner import LockedClock

SYSTEM_EVENT = soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(ouch.SystemEvent(1, "S"))))


def test_frames_before_a_framing_error_are_journaled_fed_and_the_rest_kept(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(0.2)
        conn.sendall(SYSTEM_EVENT + SYSTEM_EVENT + b"\x00\x00junk")
        time.sleep(1.0)
    runner, engine, records, exc = run_against(tmp_path, serve(script), 1.5)
    assert exc is None
    assert [(t, s) for t, s, _ in venue_msgs(records) if t == "S"] == [("S", 1), ("S", 2)]
    assert engine.venue_seq == 2 and runner.report.protocol_errors == 1
    assert runner.report.stop_reason.startswith("venue framing error") and runner.report.venue_lost
    framing = [a for a in alerts(records) if a["alert"] == "venue-framing-error"]
    assert len(framing) == 1 and bytes.fromhex(framing[0]["raw_hex"]) == b"\x00\x00junk"
    fresh = new_engine()
    for event in engine_events(records):
        fresh.on_event(event)
    assert fresh.state_hash() == engine.state_hash()


def test_a_frame_cut_short_by_the_venue_closing_is_kept_in_an_alert(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED + SYSTEM_EVENT[:5])
        time.sleep(0.3)
    runner, engine, records, exc = run_against(tmp_path, serve(script), 1.5)
    assert exc is None and runner.report.stop_reason == "venue closed the order-entry session"
    partial = [a for a in alerts(records) if a["alert"] == "venue-partial-frame"]
    assert len(partial) == 1 and bytes.fromhex(partial[0]["raw_hex"]) == SYSTEM_EVENT[:5]


def test_a_venue_reset_ends_the_run_with_a_stop_reason_not_an_exception(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(0.3)
        reset(conn)
    runner, engine, records, exc = run_against(tmp_path, serve(script), 1.5)
    assert exc is None
    assert "ECONNRESET" in runner.report.stop_reason and runner.report.venue_lost


def test_a_login_reject_is_journaled_before_the_run_fails(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(soupbintcp.encode(soupbintcp.LoginRejected("A")))
        time.sleep(0.3)
    runner, engine, records, exc = run_against(tmp_path, serve(script), 1.0)
    assert isinstance(exc, RunnerError) and "login rejected" in str(exc)
    assert [t for t, _, _ in venue_msgs(records)] == ["J"]


class ListJournal:
    def __init__(self) -> None:
        self.records: list[tuple[int, RecordType, bytes]] = []

    def append(self, rtype, payload, reserve=False, **kw) -> int:
        self.records.append((len(self.records) + 1, rtype, payload))
        return len(self.records)


def test_an_order_whose_send_the_socket_refuses_gets_a_send_failed_tx_record(tmp_path):
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    journal = ListJournal()
    runner = Runner(new_engine(), journal, RunnerSettings(), LockedClock())
    runner._oe = TimestampedTcpSocket.connect(lsn.getsockname())
    peer, _ = lsn.accept()
    reset(peer)
    lsn.close()
    time.sleep(0.05)
    msg = ouch.EnterOrder("T1", "B", 100, "ACME", 100_0000, 99999, "", "Y", "P", "N", 0, "N", "R")
    packet = soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(msg)))
    order = SendOrder(make_intent(OrderKind.ENTER, "T1", 0, Side.BUY, 100_0000, 100, (1, 2, 3, 4)),
                      packet, SimpleNamespace(limits_version=1), 1)
    runner._act([order], time.clock_gettime_ns(time.CLOCK_REALTIME))
    sent = [seq for seq, rtype, _ in journal.records if rtype == RecordType.ORDER_SENT]
    tx = [unpack(RecordType.TX_TS, p) for _, rtype, p in journal.records if rtype == RecordType.TX_TS]
    assert len(sent) == 1 and len(tx) == 1
    assert int(tx[0]["order_seq"]) == sent[0] and int(tx[0]["status"]) == TxStatus.SEND_FAILED
    assert int(tx[0]["tx_ts_ns"]) == 0
    assert runner.report.sends_failed == 1 and runner.report.orders_sent == 0
    assert runner._oe_end.startswith("order entry send failed")
    runner.close()


def test_only_the_last_frame_of_a_read_claims_the_reads_kernel_stamp(tmp_path):
    """One read returns one RX stamp, its last segment's: earlier frames, and a frame a partial one
    follows, are labelled received-by (an upper bound on the same clock)."""
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(0.2)
        conn.sendall(SYSTEM_EVENT + SYSTEM_EVENT)              # two frames, one read
        time.sleep(0.2)
        conn.sendall(SYSTEM_EVENT + SYSTEM_EVENT[:4])          # a frame, then a partial one
        time.sleep(0.2)
        conn.sendall(SYSTEM_EVENT[4:])                          # its rest: the last of its read
        time.sleep(0.3)
    runner, engine, records, exc = run_against(tmp_path, serve(script), 1.2)
    assert exc is None
    sources = [TsSource(r.ts_source) for r in records if r.rtype == RecordType.VENUE_MSG
               and unpack(RecordType.VENUE_MSG, r.payload)["packet_type"] == ord("S")]
    if TsSource.USER in sources:
        pytest.skip("no kernel RX stamps on this host's loopback TCP (user-space stand-ins only)")
    assert sources == [TsSource.SW_KERNEL_BY, TsSource.SW_KERNEL, TsSource.SW_KERNEL_BY, TsSource.SW_KERNEL]
    fresh = new_engine()
    for event in engine_events(records):
        fresh.on_event(event)
    assert fresh.state_hash() == engine.state_hash()


def test_reports_put_a_received_by_phc_stamp_on_the_phc_basis():
    import numpy as np
    from journal.catalogue import PAYLOAD_DTYPES
    from reports.timebase import BASIS_NAMES, to_utc
    samples = np.zeros(1, dtype=[("seq", "<u8")] + [(n, PAYLOAD_DTYPES[RecordType.CLOCK_SAMPLE][n])
                                                     for n in ("utc_offset", "utc_offset_valid",
                                                               "ptp_timescale", "state", "leap61", "leap59")])
    samples[0] = (1, 37, 1, 1, 1, 0, 0)      # a LOCKED sample, GM on the PTP (TAI) timescale
    src = np.array([TsSource.HW_PHC, TsSource.HW_PHC_BY, TsSource.SW_KERNEL_BY], dtype=np.uint8)
    utc = to_utc(np.array([2, 3, 4], dtype=np.uint64), np.full(3, 100 * 10**9, dtype=np.int64), src, samples)
    assert utc.utc_ns.tolist() == [63 * 10**9, 63 * 10**9, 100 * 10**9] and utc.valid.all()
    assert [BASIS_NAMES[b] for b in utc.basis][1:] == ["PHC_TAI_MINUS_UTC_OFFSET", "REALTIME_UTC"]


def test_a_long_venue_frame_is_journaled_whole_and_replays_exactly(tmp_path):
    long_frame = soupbintcp.encode(soupbintcp.Debug("x" * 300))

    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(0.2)
        conn.sendall(long_frame)
        time.sleep(1.0)
    runner, engine, records, exc = run_against(tmp_path, serve(script), 1.0)
    assert exc is None
    long = [r for r in records if r.rtype == RecordType.VENUE_MSG_LONG]
    assert len(long) == 1 and venue_fields(long[0].rtype, long[0].payload) == (0, ord("+"), 0, long_frame)
    fresh = new_engine()
    for event in engine_events(records):
        fresh.on_event(event)
    assert fresh.state_hash() == engine.state_hash()
    short = venue_payload(3, ord("S"), ord("A"), SYSTEM_EVENT)
    assert short[0] == RecordType.VENUE_MSG and venue_fields(*short) == (3, ord("S"), ord("A"), SYSTEM_EVENT)
