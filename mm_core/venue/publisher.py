"""MoldUDP64 downstream publisher with a retained message history that serves re-requests.

Owns sequence assignment (through the codecs' Packetiser), the bounded in-memory history,
heartbeat and end-of-session packets, answers to request packets, and a test hook that withholds
chosen sequence numbers from the live stream (they are still served on re-request). Every
message also goes to a durable store, written before any packet carrying it is sent, so a
request older than the in-memory history is answered from the store, and a request for an
earlier session of the venue (a restart publishes under a new name) from that session's store,
under its own name. A request it cannot answer (MoldUDP64 has no way to say so) is logged and
counted. Sends through a callable, so it never creates sockets; must not know about ITCH
contents, files or clocks.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Mapping, Protocol

from mm_core.protocol import moldudp64
from mm_core.protocol.errors import ProtocolError

log = logging.getLogger("mm_core.venue.publisher")

Send = Callable[[bytes, tuple[str, int]], None]
MAX_REPLY_MESSAGES = 2000      # per request packet; the client asks again for the rest


class Store(Protocol):
    """Durable, sequenced messages (sequence 1 first): a SessionLog."""

    @property
    def durable_sequence(self) -> int: ...
    @property
    def next_sequence(self) -> int: ...
    def append(self, payload: bytes) -> int: ...
    def flush(self) -> None: ...
    def messages(self, first: int = 1, count: int | None = None) -> list[bytes]: ...


class MoldPublisher:
    def __init__(self, session: str, dest: tuple[str, int], send: Send, history: int,
                 max_payload: int = moldudp64.DEFAULT_MAX_PAYLOAD, store: Store | None = None,
                 earlier: Mapping[str, Store] | None = None) -> None:
        """`store`: where this session's messages go (must be empty); `earlier`: the stores
        of earlier sessions, by name, that requests for them are answered from."""
        if store is not None and store.next_sequence != 1:
            raise ValueError(f"the store of MoldUDP64 session {session!r} is not empty")
        self.session = session
        self.dest = dest
        self._send = send
        self._store = store
        self._earlier = dict(earlier or {})
        self._packetiser = moldudp64.Packetiser(session, 1, max_payload)
        self._max_payload = max_payload
        self._history: list[bytes] = []
        self._history_base = 1              # sequence of _history[0]
        self._history_limit = history
        self.drop_sequences: set[int] = set()   # test hook: withhold packets holding these
        self.packets_sent = 0
        self.packets_dropped = 0
        self.requests_served = 0
        self.requests_unanswered = 0
        self.ended = False

    @property
    def next_sequence(self) -> int:
        return self._packetiser.next_sequence

    def publish(self, message: bytes) -> None:
        """Queue one ITCH message; full packets go out at once, the rest on flush()."""
        self._history.append(message)
        if self._store is not None:
            self._store.append(message)
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
        """Serve one request packet (this session or an earlier one); returns how many
        messages were sent. One that cannot be served is logged and counted."""
        try:
            request = moldudp64.decode_request(request_bytes)
        except ProtocolError as exc:
            return self._unanswered(sender, f"bad request packet: {exc}")
        first = max(request.sequence, 1)
        wanted = min(request.count, MAX_REPLY_MESSAGES)
        if request.session == self.session:
            end = self._history_base + len(self._history) - self._packetiser.pending   # sent
            last = min(first + wanted, end)
            if first >= self._history_base:
                window = self._history[first - self._history_base:last - self._history_base]
            elif self._store is not None:
                window = self._store.messages(first, max(last - first, 0))
            else:
                return self._unanswered(sender, f"{first}: history starts at "
                                                f"{self._history_base}")
        elif request.session in self._earlier:
            store = self._earlier[request.session]
            end = store.durable_sequence + 1
            window = store.messages(first, max(min(first + wanted, end) - first, 0))
        else:
            return self._unanswered(sender, f"session {request.session!r}: not ours (ours is "
                                            f"{self.session!r}, earlier {sorted(self._earlier)})")
        if not window:
            return self._unanswered(sender, f"{request.session!r} {first} (+{request.count}): "
                                            f"nothing held from there (ends before {end})")
        self.requests_served += 1      # counted first: the answer may be read before we return
        for packet in moldudp64.pack_messages(request.session, first, window, self._max_payload):
            self._send(packet, sender)
        return len(window)

    def _unanswered(self, sender: tuple[str, int], why: str) -> int:
        self.requests_unanswered += 1
        log.warning("MoldUDP64 request from %s not answered: %s", sender, why)
        return 0

    def _emit(self, packet: bytes) -> None:
        if self._store is not None:
            self._store.flush()         # the store is ahead of the wire
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
