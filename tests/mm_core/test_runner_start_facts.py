"""The facts a run starts from (the journal is healthy; a fresh session has nothing to reconcile)
are journaled as a "run-start" record and fed at its time, live and in replay alike: packets that
waited in the socket between connect() and run() carry older stamps, so no other time would do.
A journal without such a record (written before runners journaled it) still gets them at its first
record's time; a replay resumed from a snapshot gets them from the snapshot."""
from __future__ import annotations

import json
import socket
import time

from journal import Journal, Reader, Record
from journal.catalogue import RecordType, TsSource, pack, raw_bytes, unpack, unpack_json
from mm_core.events import SendOrder
from mm_core.runner import Runner
from mm_core.runnerrecords import engine_events
from mm_core.runnertypes import RunnerSettings
from tests.mm_core.fake_venue import ACCEPTED, new_engine, serve
from tests.mm_core.test_runner import LockedClock, free_udp_port
from tests.mm_core.wire import ACME, BOLT, Feed, two_sided


def test_packets_waiting_before_run_replay_to_the_same_engine(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(4)
    path = str(tmp_path / "journal")
    itch = free_udp_port()
    settings = RunnerSettings(itch_port=itch, ouch_port=serve(script), rerequest_port=free_udp_port())
    engine, feed = new_engine(), Feed()
    with Journal(path) as journal:
        runner = Runner(engine, journal, settings, LockedClock())
        runner.connect()
        # the kernel turns RX stamping on for the system a moment after the first socket asks
        # (a deferred static key): a datagram before that carries no stamp and is journaled with
        # the read's user time, honestly, but after run-start, which is not the case at hand
        time.sleep(0.2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for sym in (ACME, BOLT):
                msgs, _ = two_sided(feed, sym, 1_000_000, 1_001_000)
                tx.sendto(feed.packet(*msgs), ("127.0.0.1", itch))
        time.sleep(0.3)                  # what a session does between connect() and run()
        runner.run(2.0)
    with Reader(path) as reader:
        records = list(reader.records())
    start = records[0]
    doc = unpack_json(start.payload)
    assert start.rtype == RecordType.METRICS and doc["input"] == "run-start" and doc["reconciled"] is True
    packets = [r for r in records if r.rtype == RecordType.MD_PACKET]
    assert len(packets) >= 2 and all(r.ts_ns < start.ts_ns for r in packets[:2])   # the case at hand
    # the clock's first sample is journaled (and fed) before the waiting packets are decided, so
    # they are quoted on, not denied for a clock the engine has not heard of yet
    kinds_in_order = [r.rtype for r in records]
    assert kinds_in_order.index(RecordType.CLOCK_SAMPLE) < kinds_in_order.index(RecordType.MD_PACKET)
    fresh = new_engine()
    replayed = [a.packet for e in engine_events(records) for a in fresh.on_event(e) if isinstance(a, SendOrder)]
    assert replayed == [raw_bytes(unpack(RecordType.ORDER_SENT, r.payload)) for r in records
                        if r.rtype == RecordType.ORDER_SENT]
    assert fresh.md_heard_ns == engine.md_heard_ns
    assert fresh.state_hash() == engine.state_hash()


def record(seq: int, rtype: RecordType, ts_ns: int, payload: bytes) -> Record:
    return Record(seq, int(rtype), ts_ns, int(TsSource.USER), 0, payload)


def metrics(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True).encode()


def timer(ts_ns: int) -> bytes:
    return pack(RecordType.TIMER, timer_id=1, now_ns=ts_ns)


def kinds(events) -> list[tuple]:
    return [(type(e).__name__, e.now_ns, getattr(e, "ok", None)) for e in events]


def test_the_start_facts_come_from_each_run_start_record():
    note = metrics({"note": "session-start", "inputs": {}})
    records = [record(1, RecordType.METRICS, 100, note),
               record(2, RecordType.METRICS, 300, metrics({"input": "run-start", "journal_ok": True,
                                                            "reconciled": True, "now_ns": 300})),
               record(3, RecordType.TIMER, 400, timer(400)),
               # a reconnect's run on the same engine: not fresh, nothing reconciled by it
               record(4, RecordType.METRICS, 500, metrics({"input": "run-start", "journal_ok": True,
                                                            "reconciled": False, "now_ns": 500})),
               record(5, RecordType.METRICS, 600, metrics({"input": "order-entry-dead", "cause": "x",
                                                            "now_ns": 600}))]
    assert kinds(engine_events(records)) == [
        ("JournalHealth", 300, True), ("Reconciled", 300, True), ("Timer", 400, None),
        ("JournalHealth", 500, True), ("Reconciled", 600, False)]


def test_a_journal_without_a_run_start_record_gets_the_facts_at_its_first_record():
    records = [record(1, RecordType.METRICS, 100, metrics({"note": "session-start"})),
               record(2, RecordType.TIMER, 400, timer(400))]
    assert kinds(engine_events(records)) == [
        ("JournalHealth", 100, True), ("Reconciled", 100, True), ("Timer", 400, None)]
    assert kinds(engine_events(records, fresh_session=False)) == [("JournalHealth", 100, True), ("Timer", 400, None)]
    # resumed from a snapshot: the facts are in the snapshot's engine already
    assert kinds(engine_events(records[1:], resumed=True)) == [("Timer", 400, None)]


def test_a_recovery_of_a_session_that_never_ran_gets_no_start_facts():
    """A session that crashed before its run started: the recovery's engine, built from those
    records, got no start facts; a later replay of the journal, RECON records and all, gets none
    either (the recovered run's own run-start record brings them)."""
    records = [record(1, RecordType.SESSION_START, 100, b""),
               record(2, RecordType.RECON, 200, metrics({"kind": "begin"})),
               record(3, RecordType.TIMER, 400, timer(400))]
    assert kinds(engine_events(records)) == [("Timer", 400, None)]
