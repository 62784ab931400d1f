"""MoldUDP64 downstream publisher with a retained message history that serves re-requests.

Owns sequence assignment (through the codecs' Packetiser), the bounded history, heartbeat and
end-of-session packets, answers to request packets, and a test hook that withholds chosen
sequence numbers from the live stream (they are still served on re-request). Sends through a
callable, so it never creates sockets; must not know about ITCH contents or clocks.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from mm_core.protocol import moldudp64
from mm_core.protocol.errors import ProtocolError

log = logging.getLogger("mm_core.venue.publisher")

Send = Callable[[bytes, tuple[str, int]], None]
MAX_REPLY_MESSAGES = 2000      # per request packet; the client asks again for the rest


class MoldPublisher:
    def __init__(self, session: str, dest: tuple[str, int], send: Send, history: int,
                 max_payload: int = moldudp64.DEFAULT_MAX_PAYLOAD) -> None:
        self.session = session
        self.dest = dest
        self._send = send
        self._packetiser = moldudp64.Packetiser(session, 1, max_payload)
        self._max_payload = max_payload
        self._history: list[bytes] = []
        self._history_base = 1              # sequence of _history[0]
        self._history_limit = history
        self.drop_sequences: set[int] = set()   # test hook: withhold packets holding these
        self.packets_sent = 0
        self.packets_dropped = 0
        self.requests_served = 0
        self.ended = False

    @property
    def next_sequence(self) -> int:
        return self._packetiser.next_sequence

    def publish(self, message: bytes) -> None:
        """Queue one ITCH message; full packets go out at once, the rest on flush()."""
        self._history.append(message)
        for packet in self._packetiser.add(message):
            self._emit(packet)

    def flush(self) -> bool:
        """Send the open packet; returns whether anything was sent."""
        packet = self._packetiser.flush()
        if packet is None:
            return False
        self._emit(packet)
        self._trim()
        return True

    def heartbeat(self) -> None:
        for packet in self._packetiser.heartbeat():
            self._emit(packet)

    def end_of_session(self) -> None:
        for packet in self._packetiser.end_of_session():
            self._emit(packet)
        self.ended = True

    def retained(self, first: int = 1, count: int | None = None) -> list[bytes]:
        """Messages kept for re-requests, from sequence `first` (at most `count` of them)."""
        start = max(first - self._history_base, 0)
        stop = len(self._history) if count is None else min(start + count, len(self._history))
        return self._history[start:stop]

    def withhold(self, sequences: Iterable[int]) -> None:
        """Test hook: the next live packets carrying any of these sequence numbers are not sent."""
        self.drop_sequences.update(sequences)

    def answer(self, request_bytes: bytes, sender: tuple[str, int]) -> int:
        """Serve one request packet from the history; returns how many messages were sent."""
        try:
            request = moldudp64.decode_request(request_bytes)
        except ProtocolError as exc:
            log.warning("bad MoldUDP64 request from %s: %s", sender, exc)
            return 0
        if request.session != self.session:
            log.warning("MoldUDP64 request from %s for session %r, ours is %r",
                        sender, request.session, self.session)
            return 0
        first = max(request.sequence, 1)
        durable_end = self._history_base + len(self._history) - self._packetiser.pending
        last = min(first + min(request.count, MAX_REPLY_MESSAGES), durable_end)
        if first < self._history_base:
            log.warning("MoldUDP64 request from %s for %d: history starts at %d",
                        sender, first, self._history_base)
            return 0
        if first >= last:
            return 0
        window = self._history[first - self._history_base:last - self._history_base]
        self.requests_served += 1      # counted first: the answer may be read before we return
        for packet in moldudp64.pack_messages(self.session, first, window, self._max_payload):
            self._send(packet, sender)
        return len(window)

    def _emit(self, packet: bytes) -> None:
        if self.drop_sequences:
            header = moldudp64.decode_header(packet)
            count = 0 if header.count == moldudp64.END_OF_SESSION_COUNT else header.count
            span = set(range(header.sequence, header.sequence + count))
            if span & self.drop_sequences:
                self.drop_sequences -= span
                self.packets_dropped += 1
                return
        self._send(packet, self.dest)
        self.packets_sent += 1

    def _trim(self) -> None:
        excess = len(self._history) - self._history_limit
        if excess > max(1024, self._history_limit // 8):   # trim in batches, not per message
            del self._history[:excess]
            self._history_base += excess
