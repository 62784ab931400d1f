"""Busy-poll waits in C (audit.fastcap) and watches every descriptor the epoll would: with an epoll
that reports nothing, the busy loop still carries out operator commands (the wake socket), reads
the venue's answers (the order entry), drains the market-data socket's error queue and takes the
venue's market data while refusing other senders'; and a stop set by another thread ends it
within its wait's slice, however far away the next timer is."""
from __future__ import annotations

import dataclasses
import json
import select
import socket
import threading
import time

from journal import Journal, Reader
from journal.catalogue import RecordType
from mm_core.events import OperatorCommand
from mm_core.protocol import moldudp64, soupbintcp
from tests.mm_core.test_runner_busy import BlindEpoll, md_runner

S = 1_000_000_000
HEARTBEAT = soupbintcp.encode(soupbintcp.ServerHeartbeat())


def packet(source: str) -> bytes:
    return moldudp64.encode(moldudp64.Heartbeat(f"S{source:>9}", 1))


def running(runner, seconds: float = 30.0):
    """The runner's run() on a thread, once its loop took over (its first clock sample, taken
    after the commands queued before the run were carried out): (thread, stop event, report box)."""
    stop, box = threading.Event(), []
    thread = threading.Thread(target=lambda: box.append(runner.run(seconds, stop)))
    thread.start()
    until = time.monotonic() + 5
    while not runner.report.inputs and time.monotonic() < until:
        time.sleep(0.001)
    time.sleep(0.01)
    return thread, stop, box


def records(path) -> list:
    with Reader(str(path)) as reader:
        return list(reader.records())


def test_an_operator_command_is_carried_out_though_the_epoll_never_reports_it(tmp_path, monkeypatch):
    monkeypatch.setattr(select, "epoll", BlindEpoll)
    with Journal(tmp_path / "j") as journal:
        runner, peer, _ = md_runner(journal, True)
        thread, stop, _ = running(runner)
        receipt = runner.operator(OperatorCommand(time.clock_gettime_ns(time.CLOCK_REALTIME), "safe-mode-on",
                                                  "ops1", "drill"))
        carried_out = receipt.wait(5.0)
        stop.set()
        thread.join()
        peer.close()
    assert carried_out and receipt.journaled and not receipt.error
    assert [json.loads(r.payload)["actor"] for r in records(tmp_path / "j")
            if r.rtype == RecordType.OPERATOR_CMD] == ["ops1"]


def test_the_venues_answers_are_read_though_the_epoll_never_reports_them(tmp_path, monkeypatch):
    monkeypatch.setattr(select, "epoll", BlindEpoll)
    with Journal(tmp_path / "j") as journal:
        runner, peer, _ = md_runner(journal, True)
        thread, stop, _ = running(runner)
        peer.sendall(HEARTBEAT)
        until = time.monotonic() + 5
        while runner.report.inputs < 3 and time.monotonic() < until:     # run start, clock, heartbeat
            time.sleep(0.005)
        stop.set()
        thread.join()
        peer.close()
    answers = [bytes(r.payload) for r in records(tmp_path / "j") if r.rtype == RecordType.VENUE_MSG]
    assert len(answers) == 1 and HEARTBEAT in answers[0]


def test_the_market_data_sockets_error_queue_is_drained_though_the_epoll_never_reports_it(tmp_path, monkeypatch):
    monkeypatch.setattr(select, "epoll", BlindEpoll)
    with Journal(tmp_path / "j") as journal:
        runner, peer, address = md_runner(journal, True)
        drained = []
        real = runner._md.poll_tx_timestamps
        runner._md.poll_tx_timestamps = lambda: drained.append(real()) or drained[-1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as venue:
            venue.bind(("127.0.0.1", 0))
            runner._md.sendto(b"re-request", venue.getsockname())      # its TX stamp: the error queue
            runner.run(0.2)
        peer.close()
    assert [len(stamps) for stamps in drained] == [1]


def test_market_data_from_the_venue_is_taken_and_from_others_refused(tmp_path):
    with Journal(tmp_path / "j") as journal:
        runner, peer, address = md_runner(journal, True)
        thread, stop, _ = running(runner)
        for source in ("127.0.0.2", "127.0.0.1"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.bind((source, 0))
                sender.sendto(packet(source), address)
        until = time.monotonic() + 5
        # until the foreign datagram was counted and the venue's journaled (a count of inputs
        # also takes the loop's clock samples and timers)
        while (runner.report.md_foreign < 1 or not any(
                r.rtype == RecordType.MD_PACKET for r in records(tmp_path / "j"))) and time.monotonic() < until:
            time.sleep(0.005)
        stop.set()
        thread.join()
        peer.close()
    journaled = records(tmp_path / "j")
    assert [bytes(r.payload) for r in journaled if r.rtype == RecordType.MD_PACKET] == [packet("127.0.0.1")]
    alerts = [json.loads(r.payload) for r in journaled if r.rtype == RecordType.METRICS]
    assert runner.report.md_foreign == 1
    assert [a["alert"] for a in alerts if "alert" in a] == ["md-foreign-source"]


def test_a_stop_ends_the_busy_loop_within_its_slice_with_no_timer_due(tmp_path):
    with Journal(tmp_path / "j") as journal:
        runner, peer, _ = md_runner(journal, True)
        runner.settings = dataclasses.replace(runner.settings, timer_ns=60 * S, clock_period_ns=60 * S,
                                              heartbeat_ns=60 * S, warm_interval_ns=0)
        thread, stop, box = running(runner)
        time.sleep(0.05)
        stopped = time.monotonic()
        stop.set()
        thread.join(10.0)
        took = time.monotonic() - stopped
        peer.close()
    assert box[0].stop_reason == "stopped" and took < 5.0


def test_heartbeats_still_go_out_while_the_busy_loop_waits_in_c(tmp_path):
    with Journal(tmp_path / "j") as journal:
        runner, peer, _ = md_runner(journal, True)
        runner.settings = dataclasses.replace(runner.settings, timer_ns=60 * S, clock_period_ns=60 * S,
                                              heartbeat_ns=S // 20, warm_interval_ns=0)
        runner.run(0.5)
        peer.settimeout(1.0)
        wire = b""
        while len(wire) < runner.tcp_bytes:
            wire += peer.recv(4096)
        peer.close()
    beats = soupbintcp.encode(soupbintcp.ClientHeartbeat())
    assert wire == beats * (len(wire) // len(beats)) and len(wire) // len(beats) >= 5
