"""A scripted SoupBinTCP venue (one connection, a thread) and a runner against it, for tests of the
runner's order-entry link: what the venue sends, byte for byte, and when it closes or resets."""
from __future__ import annotations

import socket
import struct
import threading

from audit.capture import TimestampedTcpSocket
from journal import Journal, Reader
from journal.catalogue import RecordType, unpack, unpack_json
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.protocol import soupbintcp
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from tests.mm_core.test_runner import LockedClock, free_udp_port
from tests.mm_core.wire import SYMBOLS, gateway

ACCEPTED = soupbintcp.encode(soupbintcp.LoginAccepted("S1", 1))


def serve(script) -> int:
    """A listening port whose first connection is handed to script(conn) on a thread."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)

    def run():
        conn, _ = lsn.accept()
        try:
            script(conn)
        finally:
            conn.close()
            lsn.close()
    threading.Thread(target=run, daemon=True).start()
    return lsn.getsockname()[1]


def reset(conn: socket.socket) -> None:
    """Close with an RST (as a venue process that died or reset the session)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def new_engine() -> Engine:
    return Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())


def run_against(tmp_path, port: int, seconds: float, **settings):
    """(runner, engine, records, exception or None) of a run against the venue at port
    (`settings`: RunnerSettings fields)."""
    path = str(tmp_path / "journal")
    settings = RunnerSettings(itch_port=free_udp_port(), ouch_port=port, rerequest_port=free_udp_port(),
                              **settings)
    engine, exc = new_engine(), None
    with Journal(path) as journal:
        runner = Runner(engine, journal, settings, LockedClock())
        try:
            runner.run(seconds)
        except Exception as e:       # the tests say which exceptions may escape
            exc = e
    with Reader(path) as reader:
        return runner, engine, list(reader.records()), exc


def linked_runner(journal, settings: RunnerSettings | None = None, buffers: int = 0):
    """(runner, peer): a runner, not run, whose order entry is connected to a local socket the
    test holds as the venue. `buffers`: that socket's receive buffer and the runner's send buffer
    this small (a peer that stops reading blocks the runner's sends soon)."""
    lsn = socket.socket()
    if buffers:
        lsn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffers)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    runner = Runner(new_engine(), journal, settings or RunnerSettings(), LockedClock())
    runner._oe = TimestampedTcpSocket.connect(lsn.getsockname(), send_timeout_ns=runner.settings.send_timeout_ns)
    if buffers:
        runner._oe.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffers)
    peer, _ = lsn.accept()
    lsn.close()
    return runner, peer


def venue_msgs(records) -> list[tuple[str, int, int]]:
    """(packet type, soup_seq, raw_len) of every VENUE_MSG record."""
    out = []
    for rec in records:
        if rec.rtype == RecordType.VENUE_MSG:
            v = unpack(RecordType.VENUE_MSG, rec.payload)
            out.append((chr(int(v["packet_type"])), int(v["soup_seq"]), int(v["raw_len"])))
    return out


def alerts(records) -> list[dict]:
    return [doc for doc in (unpack_json(r.payload) for r in records if r.rtype == RecordType.METRICS)
            if isinstance(doc, dict) and "alert" in doc]
