"""The market-data socket is sized as the settings ask, and the datagrams the kernel drops when it
is full are counted in the run's report and journaled in an alert ahead of the packet that came
after them (so the gap that packet opens has its cause in the journal), by the epoll and the
busy-poll reader alike, at most one alert a second; drops after the last packet read, and those
held back, are named when the run ends."""
from __future__ import annotations

import json
import socket
import time

import pytest

from audit.fastcap import SpinReader
from audit.rxbuffer import MIN_RCVBUF, kernel_drops
from journal import Journal, Reader
from journal.catalogue import RecordType
from mm_core.protocol import moldudp64
from mm_core.mdsocket import md_sources
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerError, RunnerSettings
from tests.mm_core.test_runner import LockedClock, free_udp_port
from tests.mm_core.wire import make_engine

FLOOD = 64


def heartbeat(seq: int) -> bytes:
    return moldudp64.encode(moldudp64.Heartbeat("SESSION001", seq))


def send(port: int, packets) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        for packet in packets:
            out.sendto(packet, ("127.0.0.1", port))


def runner_on(journal, rcvbuf: int = MIN_RCVBUF) -> Runner:
    settings = RunnerSettings(itch_port=free_udp_port(), md_rcvbuf=rcvbuf)
    runner = Runner(make_engine(), journal, settings, LockedClock())
    runner._md_from = md_sources(settings)          # as connect() sets them up
    runner._open_md("127.0.0.1")
    return runner


def read_until(runner: Runner, inputs: int, spin: SpinReader | None) -> None:
    deadline = time.monotonic() + 5
    while runner.report.inputs < inputs and time.monotonic() < deadline:
        if spin is None:
            runner._on_md()
        else:
            runner._spin_turn(spin, time.monotonic_ns() + 1_000_000)


def journaled(path) -> list:
    with Reader(path) as reader:
        return [(r.rtype, r.payload) for r in reader.records()]


def alerts(records) -> list[dict]:
    return [json.loads(p) for t, p in records if t == RecordType.METRICS and b'"alert"' in p]


@pytest.mark.parametrize("busy_poll", [False, True], ids=["epoll", "busy-poll"])
def test_drops_are_counted_and_journaled_ahead_of_the_packet_after_them(tmp_path, busy_poll):
    path = str(tmp_path / "j")
    with Journal(path) as journal:
        runner = runner_on(journal)
        try:
            port = runner.settings.itch_port
            send(port, [heartbeat(1)] * FLOOD)         # nobody reads meanwhile: the buffer fills
            dropped = kernel_drops(runner._md.sock)
            assert dropped > 0
            spin = SpinReader(runner._md) if busy_poll else None
            read_until(runner, FLOOD - dropped, spin)
            assert runner.report.md_kernel_drops == 0  # the held ones were queued before any drop
            send(port, [heartbeat(2)])
            read_until(runner, FLOOD - dropped + 1, spin)
        finally:
            runner.close()
    assert runner.report.md_kernel_drops == dropped
    records = journaled(path)
    (alert,) = [a for a in alerts(records) if a["alert"] == "md-kernel-drops"]
    assert f"{dropped} market-data datagrams dropped by the kernel before the next datagram read" in alert["detail"]
    kinds = [(t, p) for t, p in records if t in (RecordType.MD_PACKET, RecordType.METRICS)]
    where = kinds.index((RecordType.METRICS, json.dumps(alert, sort_keys=True).encode()))
    assert kinds[where + 1] == (RecordType.MD_PACKET, heartbeat(2))    # the packet that carried them


def test_drops_after_the_last_packet_read_are_counted_at_the_end(tmp_path):
    path = str(tmp_path / "j")
    with Journal(path) as journal:
        runner = runner_on(journal)
        try:
            send(runner.settings.itch_port, [heartbeat(1)] * FLOOD)
            dropped = kernel_drops(runner._md.sock)
            read_until(runner, FLOOD - dropped, None)
            assert runner.report.md_kernel_drops == 0
            runner._md_tail_drops()
            runner._md_tail_drops()                     # counted once
        finally:
            runner.close()
    assert runner.report.md_kernel_drops == dropped > 0
    (alert,) = [a for a in alerts(journaled(path)) if a["alert"] == "md-kernel-drops"]
    assert f"{dropped} market-data datagrams dropped by the kernel after the last datagram read" in alert["detail"]


def test_drop_alerts_come_at_most_once_a_second_and_the_end_names_those_held_back(tmp_path):
    path = str(tmp_path / "j")
    with Journal(path) as journal:
        runner = runner_on(journal)
        try:
            port, read = runner.settings.itch_port, 0
            episodes = []
            for _ in range(3):                          # three overloads, well inside one second
                send(port, [heartbeat(1)] * FLOOD)
                episodes.append(kernel_drops(runner._md.sock) - sum(episodes))
                read += FLOOD - episodes[-1]
                read_until(runner, read, None)
                send(port, [heartbeat(2)])              # carries the drops before it
                read += 1
                read_until(runner, read, None)
            runner._md_tail_drops()
        finally:
            runner.close()
    assert all(n > 0 for n in episodes) and runner.report.md_kernel_drops == sum(episodes)
    first, last = [a["detail"] for a in alerts(journaled(path)) if a["alert"] == "md-kernel-drops"]
    assert first.startswith(f"{episodes[0]} market-data datagrams dropped by the kernel before the next")
    assert first.endswith(f"; {episodes[0]} this run")
    assert last.startswith(f"0 market-data datagrams dropped by the kernel after the last datagram read; "
                           f"{episodes[1] + episodes[2]} more before earlier reads, held back (one alert a second)")
    assert last.endswith(f"; {sum(episodes)} this run")


def test_a_buffer_sized_for_the_burst_loses_nothing_and_says_its_size(tmp_path):
    with Journal(str(tmp_path / "j")) as journal:
        runner = runner_on(journal, 1024 * 1024)
        try:
            send(runner.settings.itch_port, [heartbeat(1)] * FLOOD)
            read_until(runner, FLOOD, None)
            runner._md_tail_drops()
        finally:
            runner.close()
    assert runner.report.inputs == FLOOD and runner.report.md_kernel_drops == 0
    assert runner.report.md_rcvbuf == 2 * 1024 * 1024
    assert runner.md_drops.facts() == {"rcvbuf_asked": 1024 * 1024, "rcvbuf_kernel": 2 * 1024 * 1024,
                                       "capped": False, "drops_counted": "SO_RXQ_OVFL"}


def test_a_receive_buffer_out_of_range_is_a_one_line_runner_error(tmp_path):
    with Journal(str(tmp_path / "j")) as journal:
        runner = Runner(make_engine(), journal, RunnerSettings(itch_port=free_udp_port(), md_rcvbuf=100),
                        LockedClock())
        with pytest.raises(RunnerError, match="market-data receive buffer: receive buffer must be an int"):
            runner._open_md("127.0.0.1")
