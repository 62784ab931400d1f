"""The runner's order-entry link when the venue misbehaves, on real loopback sockets (and a real
venue process): a venue gone silent (hung, stopped, half-open) is declared dead after rx_timeout; a
venue that stops reading cannot freeze the runner's thread (the send deadline, both send paths); a
re-request the kernel refuses costs neither the gap's cancels nor the run; a legal long SoupBinTCP
frame is taken; the venue's End of Session ends the run cleanly."""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from audit.capture import TimestampedUdpSocket
from audit.txtrack import TxStatus
from journal import Journal, Reader
from journal.catalogue import RecordType, raw_bytes, unpack, unpack_json, venue_fields
from mm_core.events import RequestRetransmit, SendOrder
from mm_core.protocol import moldudp64, ouch, soupbintcp
from mm_core.runner import Runner
from mm_core.runnerrecords import engine_events
from mm_core.runnertypes import RunnerError, RunnerSettings
from mm_core.sessionsetup import _VenueProcess
from mm_core.types import OrderKind, Side, make_intent
from tests.mm_core.fake_venue import ACCEPTED, alerts, linked_runner, new_engine, run_against, serve
from tests.mm_core.test_runner import LockedClock, free_udp_port
from tests.mm_core.test_runner_venue_link import ListJournal

SECOND = 1_000_000_000


def inputs(records, kind: str) -> list:
    """The METRICS {"input": kind} records."""
    out = []
    for rec in records:
        if rec.rtype == RecordType.METRICS:
            doc = unpack_json(rec.payload)
            if isinstance(doc, dict) and doc.get("input") == kind:
                out.append(rec)
    return out


def replays_exactly(records, engine) -> None:
    """A fresh engine fed the journal decides the same orders and ends in the same state."""
    fresh = new_engine()
    replayed = [a.packet for e in engine_events(records) for a in fresh.on_event(e) if isinstance(a, SendOrder)]
    journaled = [raw_bytes(unpack(RecordType.ORDER_SENT, r.payload)) for r in records
                 if r.rtype == RecordType.ORDER_SENT]
    assert replayed == journaled
    assert fresh.state_hash() == engine.state_hash()


def enter(token: str) -> SendOrder:
    msg = ouch.EnterOrder(token, "B", 100, "ACME", 100_0000, 99999, "", "Y", "P", "N", 0, "N", "R")
    return SendOrder(make_intent(OrderKind.ENTER, token, 0, Side.BUY, 100_0000, 100, (1, 2, 3, 4)),
                     soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(msg))),
                     SimpleNamespace(limits_version=1), 1)


def cancel(token: str) -> SendOrder:
    return SendOrder(make_intent(OrderKind.CANCEL, token, 0, Side.BUY, 0, 0, (1, 2, 3, 4)),
                     soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.CancelOrder(token, 0)))),
                     SimpleNamespace(limits_version=1), 1)


def now() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


# ------------------------------------------------------------------------ a silent venue (rx_timeout)

def test_a_venue_silent_past_rx_timeout_is_declared_dead_and_the_engine_latches(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(6)                 # half-open / hung: nothing more, the socket kept open
    t0 = time.monotonic()
    runner, engine, records, exc = run_against(tmp_path, serve(script), 5.0, rx_timeout_ns=SECOND)
    assert exc is None
    assert time.monotonic() - t0 < 3.0
    report = runner.report
    assert report.venue_lost and report.stop_reason.startswith("order entry silent for 1.")
    assert [a["alert"] for a in alerts(records)] == ["order-entry-silent"]
    [dead] = inputs(records, "order-entry-dead")
    assert "silent" in unpack_json(dead.payload)["cause"]
    assert "unreconciled" in engine.risk.faults
    assert engine.risk.latch_reasons
    replays_exactly(records, engine)


def test_a_venue_that_heartbeats_is_not_silent(tmp_path):
    heartbeat = soupbintcp.encode(soupbintcp.ServerHeartbeat())

    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        try:
            for _ in range(16):
                time.sleep(0.2)
                conn.sendall(heartbeat)
        except OSError:               # the run ended and closed its side
            pass
    runner, engine, records, exc = run_against(tmp_path, serve(script), 2.5, rx_timeout_ns=SECOND)
    assert exc is None
    assert runner.report.stop_reason == "duration" and not runner.report.venue_lost
    assert not inputs(records, "order-entry-dead") and not alerts(records)


@pytest.fixture
def venue_process(tmp_path):
    """A `python3 -m mm_core.venue` process (its ports), stopped by the test; always ended."""
    itch = free_udp_port()
    argv = [sys.executable, "-m", "mm_core.venue", "--duration", "60s", "--itch-port", str(itch),
            "--heartbeat-timeout", "60", "--log-dir", str(tmp_path / "venue")]
    (tmp_path / "venue").mkdir()
    proc = _VenueProcess(argv, tmp_path / "venue" / "process.log")
    try:
        yield proc, itch
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)
        proc.close()


def run_until_quoted(runner: Runner) -> tuple[threading.Thread, dict]:
    """The runner run on a thread (its report in the dict, "report") until the venue answered its
    first quotes."""
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("report", runner.run(30.0)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while runner.report.orders_sent == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.report.orders_sent, "the engine never quoted"
    time.sleep(0.5)                        # the venue's answers to the quotes
    return thread, done


def test_a_stopped_venue_process_is_detected_its_quotes_pulled_and_the_run_ends(tmp_path, venue_process):
    """SIGSTOP the venue process while we quote: nothing comes from it any more (no heartbeats,
    no answers), its sockets stay open. The runner declares the link dead after rx_timeout, the
    engine latches unreconciled and tries to cancel what rests, and a replay agrees."""
    proc, itch = venue_process
    ports = proc.ports
    # under the market data's silence limit (2 s): the feed stops too, and its own pull must not
    # cancel what rests before the link is declared dead (then there is nothing left to pull)
    settings = RunnerSettings(itch_port=itch, ouch_port=ports["ouch_port"], rerequest_port=ports["rerequest_port"],
                              rx_timeout_ns=3 * SECOND // 2)
    engine = new_engine()
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        runner = Runner(engine, journal, settings, LockedClock())
        thread, done = run_until_quoted(runner)
        os.kill(proc.proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - stopped < 6
    report = done["report"]
    assert report.venue_lost and report.stop_reason.startswith("order entry silent")
    with Reader(path) as reader:
        records = list(reader.records())
    [dead] = inputs(records, "order-entry-dead")
    pulled = [unpack(RecordType.ORDER_SENT, r.payload)["msg_type"] for r in records
              if r.rtype == RecordType.ORDER_SENT and r.seq > dead.seq]
    assert pulled and set(pulled) == {ord("X")}     # what rested is cancelled, nothing new entered
    assert "unreconciled" in engine.risk.faults
    replays_exactly(records, engine)


# ------------------------------------------------------------------------ a venue that stops reading

def keep_sending(runner: Runner, action) -> threading.Thread:
    """Orders on the runner's thread until the link is lost (or 100,000 of them)."""
    def work():
        for i in range(100_000):
            if runner._oe_end:
                return
            action(i)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_venue_that_stops_reading_cannot_freeze_the_runner(tmp_path):
    journal = ListJournal()
    runner, peer = linked_runner(journal, RunnerSettings(send_timeout_ns=100_000_000), buffers=4096)
    thread = keep_sending(runner, lambda i: runner._act([enter(f"T{i}")], now()))
    thread.join(10)
    assert not thread.is_alive(), "the runner's thread is stuck in a send"
    assert "send timed out" in runner._oe_end
    tx = [unpack(RecordType.TX_TS, p) for _, rtype, p in journal.records if rtype == RecordType.TX_TS]
    sent = [seq for seq, rtype, _ in journal.records if rtype == RecordType.ORDER_SENT]
    assert sent[-1] == int(tx[-1]["order_seq"]) and int(tx[-1]["status"]) == TxStatus.SEND_FAILED
    assert runner.report.sends_failed == 1 and runner.report.orders_sent == len(sent) - 1
    notes = [unpack_json(p) for _, rtype, p in journal.records if rtype == RecordType.METRICS]
    assert [n["alert"] for n in notes if "alert" in n] == ["order-entry-send-timeout"]
    # the run's end tells the engine (outside the event whose send failed): it latches
    report = runner._ended(None)
    assert report.venue_lost and "send timed out" in report.stop_reason
    assert [n for n in (unpack_json(p) for _, rtype, p in journal.records if rtype == RecordType.METRICS)
            if n.get("input") == "order-entry-dead"]
    assert "unreconciled" in runner.engine.risk.faults
    peer.close()


def test_the_send_deadline_holds_on_the_journals_append_then_send_path(tmp_path):
    """The guard's pulls leave through the journal's C append_then_send on the same descriptor:
    SO_SNDTIMEO bounds that send too, and its orders get SEND_FAILED stamps."""
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        runner, peer = linked_runner(journal, RunnerSettings(send_timeout_ns=100_000_000), buffers=4096)
        assert runner._append_send is not None
        thread = keep_sending(runner, lambda i: runner._act_urgent([cancel(f"C{i}"), cancel(f"D{i}")]))
        thread.join(10)
        assert not thread.is_alive(), "the runner's thread is stuck in append_then_send"
        assert "send timed out" in runner._oe_end and runner.report.sends_failed == 2
    with Reader(path) as reader:
        records = list(reader.records())
    sent = [r.seq for r in records if r.rtype == RecordType.ORDER_SENT]
    failed = [int(t["order_seq"]) for t in (unpack(RecordType.TX_TS, r.payload) for r in records
                                            if r.rtype == RecordType.TX_TS)
              if int(t["status"]) == TxStatus.SEND_FAILED]
    assert failed == sent[-2:]
    peer.close()


# ------------------------------------------------------------------------ a re-request the kernel refuses

def test_a_refused_rerequest_costs_neither_the_gaps_cancels_nor_the_run():
    journal = ListJournal()
    runner, peer = linked_runner(journal)
    peer.settimeout(2)
    runner._md = TimestampedUdpSocket.bound()
    runner._rerequest_to = ("255.255.255.255", 9)     # broadcast without SO_BROADCAST: EACCES
    rr = RequestRetransmit(moldudp64.encode_request(moldudp64.RequestPacket("S1", 7, 4)), 7, 4)
    pull = cancel("Q1")
    runner._act([pull, rr], now())
    assert peer.recv(1000) == pull.packet
    assert runner.report.orders_sent == 1 and not runner._oe_end
    notes = [unpack_json(p) for _, rtype, p in journal.records if rtype == RecordType.METRICS]
    [note] = [n for n in notes if n.get("alert") == "rerequest-failed"]
    assert "PermissionError EACCES" in note["detail"] and "4 packet(s) from 7" in note["detail"]
    runner.close()
    peer.close()


def test_the_venue_host_is_resolved_once_at_connect(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(1)
    rerequest = free_udp_port()
    runner = Runner(new_engine(), ListJournal(), RunnerSettings(
        host="localhost", itch_port=free_udp_port(), ouch_port=serve(script), rerequest_port=rerequest),
        LockedClock())
    runner.connect()
    try:
        assert runner._rerequest_to == ("127.0.0.1", rerequest)
    finally:
        runner.close()
    unknown = Runner(new_engine(), ListJournal(), RunnerSettings(host="no-such-venue.invalid"), LockedClock())
    with pytest.raises(RunnerError, match="cannot resolve the venue's host 'no-such-venue.invalid'"):
        unknown.connect()


def logged_in(runner: Runner, timeout: float = 2.0) -> bool:
    """Take the venue's answers until it accepted the runner's login (TX stamps wake it too)."""
    deadline = time.monotonic() + timeout
    while not runner.order_entry_logged_in and time.monotonic() < deadline:
        runner.pump_order_entry(0.1)
    return runner.order_entry_logged_in


def test_the_venue_host_name_is_looked_up_once_for_every_use(tmp_path, monkeypatch):
    """Order entry (and its reconnect), re-requests, the market data's source and its bind all
    use the one address connect() resolved: one lookup of the name, none by gethostbyname."""
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        conn.recv(1000)               # the logout: then the venue closes
    real, lookups = socket.getaddrinfo, []

    def counted(host, *args, **kw):
        lookups.append(host)
        return real(host, *args, **kw)
    monkeypatch.setattr(socket, "getaddrinfo", counted)
    monkeypatch.setattr(socket, "gethostbyname", lambda name: pytest.fail(f"gethostbyname({name!r})"))
    lsn = socket.create_server(("127.0.0.1", 0))
    port = lsn.getsockname()[1]

    def venue():
        for _ in range(2):            # the first connection, then the reconnect
            conn, _ = lsn.accept()
            with conn:
                script(conn)
        lsn.close()
    threading.Thread(target=venue, daemon=True).start()
    runner = Runner(new_engine(), ListJournal(), RunnerSettings(
        host="localhost", itch_port=free_udp_port(), ouch_port=port, rerequest_port=free_udp_port()),
        LockedClock())
    try:
        runner.connect()
        assert logged_in(runner)
        runner.logout_order_entry(2.0)
        runner.login_order_entry()
        assert logged_in(runner)
        assert runner._md_from == {"127.0.0.1"} and runner._md.sock.getsockname()[0] == "127.0.0.1"
    finally:
        runner.close()
    assert lookups.count("localhost") == 1


def test_a_venue_host_that_does_not_resolve_fails_the_run_before_anything_is_written():
    journal = ListJournal()
    runner = Runner(new_engine(), journal, RunnerSettings(host="no-such-venue.invalid"), LockedClock())
    with pytest.raises(RunnerError, match="cannot resolve the venue's host 'no-such-venue.invalid'"):
        runner.run(1.0)
    assert journal.records == []


# ------------------------------------------------------------------------ long frames, End of Session

def test_a_legal_soupbintcp_frame_longer_than_4096_bytes_is_taken(tmp_path):
    long_debug = soupbintcp.encode(soupbintcp.Debug("x" * 65_534))      # length field 65,535: the most

    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(0.2)
        conn.sendall(soupbintcp.encode(soupbintcp.Debug("y" * 5000)) + long_debug)
        time.sleep(1.5)
    runner, _, records, exc = run_against(tmp_path, serve(script), 1.2)
    assert exc is None and runner.report.stop_reason == "duration" and not runner.report.venue_lost
    assert runner.report.protocol_errors == 0 and not alerts(records)
    frames = [venue_fields(r.rtype, r.payload)[3] for r in records if r.rtype == RecordType.VENUE_MSG_LONG]
    assert [len(f) for f in frames] == [5003, 65_537] and frames[1] == long_debug


def test_the_venues_end_of_session_ends_the_run_cleanly(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        time.sleep(0.2)
        conn.sendall(soupbintcp.encode(soupbintcp.EndOfSession()))
        time.sleep(0.5)               # then the venue closes, as SoupBinTCP servers do after 'Z'
    t0 = time.monotonic()
    runner, _, records, exc = run_against(tmp_path, serve(script), 3.0)
    assert exc is None and time.monotonic() - t0 < 1.5
    assert runner.report.stop_reason == "venue end of session" and not runner.report.venue_lost
    assert [a["alert"] for a in alerts(records)] == ["venue-end-of-session"]


def test_orders_decided_after_the_end_of_session_are_withheld_not_sent():
    journal = ListJournal()
    runner, peer = linked_runner(journal)
    peer.settimeout(0.3)
    assert runner._on_oe_bytes(ACCEPTED + soupbintcp.encode(soupbintcp.EndOfSession()), now(), 0)
    assert runner._oe_end == "venue end of session"
    runner._act([enter("T1")], now())
    with pytest.raises(socket.timeout):
        peer.recv(1000)
    tx = [unpack(RecordType.TX_TS, p) for _, rtype, p in journal.records if rtype == RecordType.TX_TS]
    assert [int(t["status"]) for t in tx] == [TxStatus.MISSING]
    assert runner.report.orders_unsent == 1 and runner.report.sends_failed == 0
    runner.close()
    peer.close()


@pytest.mark.parametrize("field,value", [("rx_timeout_ns", 0), ("send_timeout_ns", -1), ("send_timeout_ns", 0.5)])
def test_link_timeouts_that_make_no_sense_are_refused(field, value):
    with pytest.raises(RunnerError, match=field):
        Runner(new_engine(), ListJournal(), RunnerSettings(**{field: value}), LockedClock())
