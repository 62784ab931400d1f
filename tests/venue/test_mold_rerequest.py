"""MoldUDP64 re-requests are answered for every session whose messages the venue still holds:
the running session past its in-memory history (from its store on disk), and the session of a
run before a restart, under that session's name, from the same re-request server. What it cannot
answer (MoldUDP64 has no way to say so) is logged and counted."""
from __future__ import annotations

import json
import logging
import socket
import time

from mm_core.protocol import moldudp64
from mm_core.venue import restart
from mm_core.venue.client import MoldReceiver
from mm_core.venue.config import load_config
from mm_core.venue.publisher import MoldPublisher
from mm_core.venue.server import Venue
from mm_core.venue.session_log import SessionLog, read_session_log
from tests.venue.test_log_tail import SESSION, start_process
from tests.venue.test_token_use import kill


def ask(server: tuple[str, int], session: str, first: int, count: int,
        timeout: float = 5.0) -> list[tuple[str, int, list[bytes]]]:
    """Send one request packet; the (session, sequence, messages) of every reply packet until
    `count` messages came, or nothing came for `timeout` s at first and then for 0.5 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(moldudp64.encode_request(moldudp64.RequestPacket(session, first, count)),
                    server)
        replies: list[tuple[str, int, list[bytes]]] = []
        deadline = time.monotonic() + timeout
        while sum(len(r[2]) for r in replies) < count and time.monotonic() < deadline:
            quiet = 0.5 if replies else timeout
            sock.settimeout(min(quiet, max(deadline - time.monotonic(), 0.01)))
            try:
                packet = moldudp64.decode(sock.recv(65536))
            except socket.timeout:
                break
            replies.append((packet.session, packet.sequence, list(packet.messages)))
        return replies


def flatten(replies) -> list[bytes]:
    return [message for _, _, messages in replies for message in messages]


def test_a_restarted_venue_answers_rerequests_for_the_session_before_the_restart(tmp_path, caplog):
    logs = str(tmp_path / "logs")
    with MoldReceiver() as rx:
        proc = start_process(logs, rx.port)                 # background flow on
        try:
            old = json.loads(proc.stdout.readline())["itch_session"]
            rx.run(None, lambda r: len(r.messages) >= 120, 30.0)
        finally:
            kill(proc)
        seen = list(rx.messages)             # the old session's messages 1.., as sent live
    caplog.set_level(logging.WARNING, "mm_core.venue")
    with MoldReceiver() as live:
        config = load_config().with_venue(itch_port=live.port, log_dir=logs, session=SESSION)
        with Venue(config, background_flow=False) as venue:
            server = (venue.ports.host, venue.ports.rerequest)
            assert venue.ports.itch_session != old
            replies = ask(server, old, 5, 100)
            assert {session for session, _, _ in replies} == {old}     # the old name
            assert flatten(replies) == seen[4:104]
            sequence = 5
            for _, first, messages in replies:                         # numbered as then
                assert first == sequence
                sequence += len(messages)
            current = ask(server, venue.ports.itch_session, 1, 3)
            assert [s for s, _, _ in current] == [venue.ports.itch_session]
            assert flatten(current) == venue.publisher.retained(1, 3)
            assert venue.publisher.requests_unanswered == 0
            held = venue.mold_stores[old].durable_sequence
            assert held >= len(seen)
            assert ask(server, old, held + 1, 10, 1.0) == []           # past its end
            assert ask(server, "NOSUCH", 1, 10, 1.0) == []             # never ours
            deadline = time.monotonic() + 5.0
            while venue.publisher.requests_unanswered < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert venue.publisher.requests_unanswered == 2
    unanswered = [r.getMessage() for r in caplog.records if "not answered" in r.getMessage()]
    assert len(unanswered) == 2 and "NOSUCH" in unanswered[1]


def test_requests_older_than_the_memory_history_are_answered_from_the_store(tmp_path):
    store = SessionLog(tmp_path / "S.itch")
    sent: list[tuple[bytes, tuple[str, int]]] = []

    def send(packet: bytes, addr: tuple[str, int]) -> None:
        # the store is ahead of the wire: every message of a packet is on disk when it goes out
        header = moldudp64.decode_header(packet)
        if addr == ("127.0.0.1", 1) and header.count not in (0, moldudp64.END_OF_SESSION_COUNT):
            on_disk = read_session_log(store.path)
            assert len(on_disk) >= header.sequence + header.count - 1
        sent.append((packet, addr))

    publisher = MoldPublisher("S", ("127.0.0.1", 1), send, history=1, store=store)
    messages = [f"message {i:05d}".encode() for i in range(3000)]
    for message in messages:
        publisher.publish(message)
        if len(message) % 7 == 0:
            publisher.flush()
    publisher.flush()
    assert publisher.retained(1, 1) != messages[:1]                   # trimmed from memory
    me = ("127.0.0.1", 2)
    assert publisher.answer(moldudp64.encode_request(moldudp64.RequestPacket("S", 2, 40)),
                            me) == 40
    replies = [moldudp64.decode(p) for p, addr in sent if addr == me]
    assert [m for r in replies for m in r.messages] == messages[1:41]
    assert replies[0].sequence == 2 and publisher.requests_unanswered == 0
    store.close()


def test_without_a_store_a_request_before_the_history_is_counted_not_answered():
    publisher = MoldPublisher("S", ("127.0.0.1", 1), lambda *_: None, history=1)
    for i in range(3000):
        publisher.publish(b"m%d" % i)
    publisher.flush()
    request = moldudp64.encode_request(moldudp64.RequestPacket("S", 1, 5))
    assert publisher.answer(request, ("127.0.0.1", 2)) == 0
    assert publisher.answer(b"garbage", ("127.0.0.1", 2)) == 0
    assert publisher.requests_unanswered == 2 and publisher.requests_served == 0


def test_a_new_mold_session_never_takes_a_name_whose_store_is_on_disk(tmp_path):
    session_dir = tmp_path / SESSION
    session_dir.mkdir()
    restart.mold_store_path(session_dir, SESSION).write_bytes(b"")
    restart.mold_store_path(session_dir, SESSION[:8] + "R1").write_bytes(b"")
    # mold.sessions lost: the names on disk are still taken
    assert restart.mold_session(session_dir, SESSION, restarted=False) == SESSION[:8] + "R2"
