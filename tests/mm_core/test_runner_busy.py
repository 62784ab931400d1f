"""The busy-poll loop reads market data straight off its socket on every turn, before the poll:
a packet is journaled and fed without the poll reporting it, and with none waiting the socket's
error queue is left to the poll's turn (which drains it)."""
from __future__ import annotations

import dataclasses
import select
import socket

from audit.capture import TimestampedUdpSocket
from journal import Journal, Reader
from journal.catalogue import RecordType
from mm_core.mdsocket import md_sources
from tests.mm_core.test_runner_txkeys import connected_runner


class BlindEpoll:
    """An epoll that never reports a descriptor ready."""

    def __init__(self, *args) -> None:
        pass

    def register(self, *args) -> None:
        pass

    modify = unregister = register

    def poll(self, timeout: float = -1) -> list:
        return []

    def close(self) -> None:
        pass


def md_runner(journal, busy: bool):
    """A connected runner with a bound market-data socket: (runner, order-entry peer, md address)."""
    runner, peer = connected_runner(journal)
    runner.settings = dataclasses.replace(runner.settings, busy_poll=busy)
    md = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    md.bind(("127.0.0.1", 0))
    md.setblocking(False)
    runner._md = TimestampedUdpSocket(md)
    runner._md_from = md_sources(runner.settings)          # as connect() sets them up
    return runner, peer, md.getsockname()


def test_busy_poll_reads_a_packet_the_poll_never_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(select, "epoll", BlindEpoll)
    packets = {}
    for busy in (False, True):
        with Journal(tmp_path / f"j{busy}") as journal:
            runner, peer, address = md_runner(journal, busy)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as venue:
                venue.sendto(b"not a MoldUDP64 packet", address)
            runner.run(0.2)
            peer.close()
        with Reader(str(tmp_path / f"j{busy}")) as reader:
            packets[busy] = [bytes(r.payload) for r in reader.records() if r.rtype == RecordType.MD_PACKET]
    assert packets == {False: [], True: [b"not a MoldUDP64 packet"]}


def test_the_turns_own_read_leaves_the_error_queue_to_the_poll(tmp_path):
    with Journal(tmp_path / "j") as journal:
        runner, peer, address = md_runner(journal, True)
        drained = []
        runner._md.poll_tx_timestamps = lambda: drained.append(1) or []
        assert runner._on_md(False) == 0 and drained == []     # nothing waiting: nothing drained
        assert runner._on_md() == 0 and drained == [1]         # the poll's turn drains it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as venue:
            for i in range(3):
                venue.sendto(b"packet %d" % i, address)
        assert runner._on_md(False) == 3 and drained == [1]
        assert runner.report.inputs == 3
        runner.close()
        peer.close()
