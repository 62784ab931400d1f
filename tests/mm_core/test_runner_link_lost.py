"""A closed, reset or badly framed order-entry link is told to the engine as a journaled input
(METRICS "order-entry-dead", then Reconciled(False)), once per loss: the gateway latches, resting
quotes are pulled while the link still takes cancels, and a replay or a recovery's replay of the
journal ends in the same state. The venue's End of Session and a logout we asked for are no loss."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from journal import Journal, Reader
from journal.catalogue import RecordType, unpack, unpack_json
from mm_core.protocol import ouch, soupbintcp
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from recovery.replay import replay_journal
from tests.mm_core.fake_venue import ACCEPTED, new_engine, reset, run_against, serve
from tests.mm_core.test_runner import LockedClock
from tests.mm_core.test_runner_link_faults import (  # noqa: F401 (venue_process: a fixture)
    inputs, logged_in, replays_exactly, run_until_quoted, venue_process)

SYSTEM_EVENT = soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(ouch.SystemEvent(1, "S"))))


def closes(conn):
    conn.close()


def garbles(conn):
    conn.sendall(b"\x00\x00junk")
    time.sleep(1.0)


@pytest.mark.parametrize("end,cause", [(closes, "venue closed the order-entry session"),
                                       (reset, "ECONNRESET"),
                                       (garbles, "venue framing error")])
def test_a_lost_link_is_told_to_the_engine_once_and_replays_exactly(tmp_path, end, cause):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED + SYSTEM_EVENT)
        time.sleep(0.3)
        end(conn)
    runner, engine, records, exc = run_against(tmp_path, serve(script), 3.0)
    assert exc is None
    assert runner.report.venue_lost and cause in runner.report.stop_reason
    [dead] = inputs(records, "order-entry-dead")
    assert cause in unpack_json(dead.payload)["cause"]
    assert "unreconciled" in engine.risk.faults and engine.risk.latch_reasons
    replays_exactly(records, engine)
    result = replay_journal(str(tmp_path / "journal"), new_engine())
    assert result.deterministic and result.state_hash == engine.state_hash()


def test_the_venues_end_of_session_then_its_close_is_no_link_loss(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED + soupbintcp.encode(soupbintcp.EndOfSession()))
        time.sleep(0.1)
        conn.close()
    runner, engine, records, exc = run_against(tmp_path, serve(script), 3.0)
    assert exc is None and runner.report.stop_reason == "venue end of session"
    assert not runner.report.venue_lost and not inputs(records, "order-entry-dead")
    assert "unreconciled" not in engine.risk.faults


def test_the_close_that_answers_our_logout_is_no_link_loss(tmp_path):
    def script(conn):
        conn.recv(1000)
        conn.sendall(ACCEPTED)
        conn.recv(1000)               # the logout request: SoupBinTCP servers then close
        conn.close()
    path = str(tmp_path / "journal")
    settings = RunnerSettings(ouch_port=serve(script))
    with Journal(path) as journal:
        runner = Runner(new_engine(), journal, settings, LockedClock())
        runner._connect_oe()
        assert logged_in(runner)
        runner.logout_order_entry(2.0)
    with Reader(path) as reader:
        assert not inputs(list(reader.records()), "order-entry-dead")
    assert runner._oe is None and not runner._oe_end


class HalfCloser:
    """A relay between the runner and the venue's order entry that can stop forwarding the venue's
    bytes and close its side towards the runner (EOF), while the runner's bytes still reach the
    venue: a link the venue closed that still takes cancels."""

    def __init__(self, venue_port: int) -> None:
        self.lsn = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsn.getsockname()[1]
        self.venue_port = venue_port
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        client, _ = self.lsn.accept()
        upstream = socket.create_connection(("127.0.0.1", self.venue_port))
        threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()
        self._pump(client, upstream, False)

    def _pump(self, src: socket.socket, dst: socket.socket, cuttable: bool) -> None:
        src.settimeout(0.05)
        while True:
            if cuttable and self.cut.is_set():
                dst.shutdown(socket.SHUT_WR)
                return
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                dst.sendall(data)
            except OSError:
                return


def test_quotes_rest_at_a_venue_that_closed_the_link_are_pulled_while_it_takes_cancels(tmp_path, venue_process):
    proc, itch = venue_process
    ports = proc.ports
    relay = HalfCloser(ports["ouch_port"])
    settings = RunnerSettings(itch_port=itch, ouch_port=relay.port, rerequest_port=ports["rerequest_port"])
    engine = new_engine()
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        runner = Runner(engine, journal, settings, LockedClock())
        thread, done = run_until_quoted(runner)
        relay.cut.set()
        thread.join(10)
        assert not thread.is_alive()
    report = done["report"]
    assert report.venue_lost and report.stop_reason == "venue closed the order-entry session"
    with Reader(path) as reader:
        records = list(reader.records())
    [dead] = inputs(records, "order-entry-dead")
    pulls = [r for r in records if r.rtype == RecordType.ORDER_SENT and r.seq > dead.seq]
    assert pulls and {unpack(RecordType.ORDER_SENT, r.payload)["msg_type"] for r in pulls} == {ord("X")}
    assert report.sends_failed == 0 and report.orders_unsent == 0     # each cancel went out on the link
    assert "unreconciled" in engine.risk.faults
    replays_exactly(records, engine)
