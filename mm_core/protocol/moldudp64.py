"""MoldUDP64 framing: downstream packets, heartbeats, end of session, re-request packets.

Owns the 20-byte header (session, sequence, count), the length-prefixed message blocks, a
packetiser that fills packets up to a payload limit, and a receiver-side sequence tracker that
reports gaps and duplicates. Must not know about sockets, timers or what the messages contain.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Iterable, Sequence, TypeVar, Union

from mm_core.protocol._layout import pack_text, unpack_text
from mm_core.protocol.errors import (
    BadField, FrameTooLarge, SessionMismatch, TrailingBytes, TruncatedMessage,
)

__all__ = [
    "HEADER_SIZE", "HEARTBEAT_COUNT", "END_OF_SESSION_COUNT", "MAX_MESSAGE_COUNT",
    "DEFAULT_MAX_PAYLOAD", "DownstreamHeader", "Packet", "Heartbeat", "EndOfSession",
    "RequestPacket", "Downstream", "encode", "decode", "decode_header", "expect_end", "block_spans",
    "encode_request", "decode_request", "pack_messages", "Packetiser", "Gap", "SequenceVerdict",
    "SequenceTracker",
]

HEADER = struct.Struct(">10sQH")
HEADER_SIZE = HEADER.size                 # 20
SESSION_WIDTH = 10
HEARTBEAT_COUNT = 0
END_OF_SESSION_COUNT = 0xFFFF
MAX_MESSAGE_COUNT = 0xFFFE                # 0xFFFF is reserved for end of session
DEFAULT_MAX_PAYLOAD = 1400                # whole UDP payload (header + blocks), as nassau
MAX_SEQUENCE = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class DownstreamHeader:
    session: str
    sequence: int     # sequence of the first message; for heartbeat/end: the next sequence
    count: int        # message count; 0 heartbeat, 0xFFFF end of session

    @property
    def is_heartbeat(self) -> bool:
        return self.count == HEARTBEAT_COUNT

    @property
    def is_end_of_session(self) -> bool:
        return self.count == END_OF_SESSION_COUNT


@dataclass(frozen=True, slots=True)
class Packet:
    """A downstream packet carrying at least one message (message i has sequence + i)."""

    session: str
    sequence: int
    messages: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    session: str
    sequence: int     # the sequence number of the next message the server will send


@dataclass(frozen=True, slots=True)
class EndOfSession:
    session: str
    sequence: int     # one past the last message of the session


@dataclass(frozen=True, slots=True)
class RequestPacket:
    """Client -> re-request server: send `count` messages starting at `sequence`."""

    session: str
    sequence: int
    count: int


Downstream = Union[Packet, Heartbeat, EndOfSession]


# --- header and session text ------------------------------------------------------------------

def _session_bytes(session: object) -> bytes:
    return pack_text("MoldUDP64", "session", session, SESSION_WIDTH)


def _pack_header(session: str, sequence: object, count: int) -> bytes:
    if type(sequence) is not int or not 0 <= sequence <= MAX_SEQUENCE:
        raise BadField("MoldUDP64", "sequence", sequence, "not a u64")
    return HEADER.pack(_session_bytes(session), sequence, count)


def decode_header(buf: Any) -> DownstreamHeader:
    """The header of a downstream packet (blocks not examined)."""
    if len(buf) < HEADER_SIZE:
        raise TruncatedMessage(f"MoldUDP64: {len(buf)} bytes, header needs {HEADER_SIZE}")
    session, sequence, count = HEADER.unpack_from(buf, 0)
    return DownstreamHeader(unpack_text("MoldUDP64", "session", session), sequence, count)


def expect_end(buf: Any, offset: int) -> None:
    """Raise TrailingBytes when the packet continues past `offset`."""
    if len(buf) != offset:
        raise TrailingBytes(f"MoldUDP64: {len(buf) - offset} bytes after the last block")


def block_spans(buf: Any, count: int) -> list[tuple[int, int]]:
    """(offset, length) of each of the `count` message blocks after the header; the blocks must
    end exactly where the packet does."""
    spans = []
    end = len(buf)
    off = HEADER_SIZE
    for _ in range(count):
        if off + 2 > end:
            raise TruncatedMessage(f"MoldUDP64: block length missing at offset {off}")
        length = buf[off] << 8 | buf[off + 1]
        off += 2
        if off + length > end:
            raise TruncatedMessage(f"MoldUDP64: block of {length} bytes at offset {off} overruns packet")
        spans.append((off, length))
        off += length
    expect_end(buf, off)
    return spans


# --- downstream packets -----------------------------------------------------------------------

def encode(packet: Downstream) -> bytes:
    """Wire bytes of a downstream packet, heartbeat or end-of-session."""
    if isinstance(packet, Heartbeat):
        return _pack_header(packet.session, packet.sequence, HEARTBEAT_COUNT)
    if isinstance(packet, EndOfSession):
        return _pack_header(packet.session, packet.sequence, END_OF_SESSION_COUNT)
    if not isinstance(packet, Packet):
        raise BadField("MoldUDP64", None, packet, "not a MoldUDP64 downstream packet")
    count = len(packet.messages)
    if not 1 <= count <= MAX_MESSAGE_COUNT:
        raise BadField("MoldUDP64", "messages", count, f"count must be 1..{MAX_MESSAGE_COUNT}")
    parts = [_pack_header(packet.session, packet.sequence, count)]
    for message in packet.messages:
        if not isinstance(message, (bytes, bytearray)) or len(message) > 0xFFFF:
            raise BadField("MoldUDP64", "messages", message, "each message must be bytes of <= 65535")
        parts.append(len(message).to_bytes(2, "big"))
        parts.append(bytes(message))
    return b"".join(parts)


def decode(buf: Any) -> Downstream:
    """Decode one downstream UDP payload; the blocks must fill it exactly."""
    header = decode_header(buf)
    if header.count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT):
        expect_end(buf, HEADER_SIZE)
        kind = Heartbeat if header.count == HEARTBEAT_COUNT else EndOfSession
        return kind(header.session, header.sequence)
    messages = tuple(bytes(buf[off:off + length]) for off, length in block_spans(buf, header.count))
    return Packet(header.session, header.sequence, messages)


# --- re-request packets (client -> request server) ---------------------------------------------

def encode_request(request: RequestPacket) -> bytes:
    if type(request.count) is not int or not 1 <= request.count <= MAX_MESSAGE_COUNT:
        raise BadField("MoldUDP64", "count", request.count, f"must be 1..{MAX_MESSAGE_COUNT}")
    return _pack_header(request.session, request.sequence, request.count)


def decode_request(buf: Any) -> RequestPacket:
    """A request packet is exactly a header; its count is the number of messages wanted."""
    header = decode_header(buf)
    expect_end(buf, HEADER_SIZE)
    if not 1 <= header.count <= MAX_MESSAGE_COUNT:
        raise BadField("MoldUDP64", "count", header.count, f"request count must be 1..{MAX_MESSAGE_COUNT}")
    return RequestPacket(header.session, header.sequence, header.count)


# --- packing messages into packets --------------------------------------------------------------

def _check_limit(max_payload: int) -> None:
    if not HEADER_SIZE + 2 < max_payload <= 0xFFFF:
        raise ValueError(f"max_payload must be in {HEADER_SIZE + 3}..65535")


def pack_messages(session: str, first_sequence: int, messages: Iterable[bytes],
                  max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[bytes]:
    """Pack consecutive messages into as few packets as fit `max_payload` (re-request replies)."""
    packer = Packetiser(session, first_sequence, max_payload)
    packets: list[bytes] = []
    for message in messages:
        packets.extend(packer.add(message))
    tail = packer.flush()
    if tail is not None:
        packets.append(tail)
    return packets


class Packetiser:
    """Fills downstream packets with messages up to `max_payload` bytes; the caller decides when
    to flush (e.g. on a timer) and sends the returned bytes. Sequence numbers are assigned here."""

    def __init__(self, session: str, next_sequence: int = 1,
                 max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        _check_limit(max_payload)
        self._session_raw = _session_bytes(session)
        self.session = session
        self.max_payload = max_payload
        self._first_sequence = next_sequence      # sequence of the first pending message
        self._pending: list[bytes] = []
        self._size = HEADER_SIZE

    @property
    def next_sequence(self) -> int:
        """The sequence number the next added message will get."""
        return self._first_sequence + len(self._pending)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, message: bytes) -> list[bytes]:
        """Queue one message; returns the packet it closed, if it did not fit in the open one."""
        if not isinstance(message, (bytes, bytearray)):
            raise BadField("MoldUDP64", "message", message, "not bytes")
        block = len(message) + 2
        if HEADER_SIZE + block > self.max_payload:
            raise FrameTooLarge(HEADER_SIZE + block, self.max_payload, "MoldUDP64 packet")
        out: list[bytes] = []
        # max_payload <= 65535 caps a packet at 32757 (empty) blocks, so the 0xFFFE count
        # limit can never be reached first
        if self._size + block > self.max_payload:
            out.append(self._close())
        self._pending.append(bytes(message))
        self._size += block
        return out

    def flush(self) -> bytes | None:
        """Close the open packet (None when nothing is pending)."""
        return self._close() if self._pending else None

    def heartbeat(self) -> list[bytes]:
        """Pending messages (if any) then a heartbeat announcing the next sequence."""
        return self._then(HEARTBEAT_COUNT)

    def end_of_session(self) -> list[bytes]:
        """Pending messages (if any) then the end-of-session packet."""
        return self._then(END_OF_SESSION_COUNT)

    def _then(self, count: int) -> list[bytes]:
        out = [self._close()] if self._pending else []
        out.append(HEADER.pack(self._session_raw, self._first_sequence, count))
        return out

    def _close(self) -> bytes:
        parts = [HEADER.pack(self._session_raw, self._first_sequence, len(self._pending))]
        for message in self._pending:
            parts.append(len(message).to_bytes(2, "big"))
            parts.append(message)
        self._first_sequence += len(self._pending)
        self._pending = []
        self._size = HEADER_SIZE
        return b"".join(parts)


# --- receiver-side sequence tracking -------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages expected..received-1 are missing."""

    expected: int
    received: int

    @property
    def count(self) -> int:
        return self.received - self.expected


@dataclass(frozen=True, slots=True)
class SequenceVerdict:
    """What to do with one packet: skip `duplicates` leading messages, apply the next `new`."""

    first_sequence: int    # sequence of the first message to apply
    duplicates: int
    new: int
    gap: Gap | None        # set when this packet starts beyond the next expected sequence
    end_of_session: bool

    def select(self, messages: Sequence[T]) -> Sequence[T]:
        """The messages of the packet (raw or decoded) that are new and in order."""
        return messages[self.duplicates:self.duplicates + self.new]


class SequenceTracker:
    """Strict in-order delivery for one MoldUDP64 session.

    A packet that starts beyond the next expected sequence is a gap: it is reported and nothing
    in it is applied until the missing messages arrive (re-request) or the caller calls
    skip_to() after recovering from a snapshot. Messages already applied are duplicates."""

    def __init__(self, next_expected: int = 1, session: str | None = None) -> None:
        self.next_expected = next_expected
        self.session = session
        self.highest_announced = next_expected   # one past the highest sequence seen announced
        self.end_of_session = False

    @property
    def in_gap(self) -> bool:
        return self.highest_announced > self.next_expected

    def on_header(self, header: DownstreamHeader) -> SequenceVerdict:
        if header.is_heartbeat or header.is_end_of_session:
            return self._observe(header.session, header.sequence, 0, header.is_end_of_session)
        return self._observe(header.session, header.sequence, header.count, False)

    def on_packet(self, packet: Downstream) -> SequenceVerdict:
        if isinstance(packet, Packet):
            return self._observe(packet.session, packet.sequence, len(packet.messages), False)
        return self._observe(packet.session, packet.sequence, 0, isinstance(packet, EndOfSession))

    def _observe(self, session: str, first: int, count: int, end: bool) -> SequenceVerdict:
        if self.session is None:
            self.session = session
        elif session != self.session:
            raise SessionMismatch(self.session, session)
        self.highest_announced = max(self.highest_announced, first + count)
        self.end_of_session = self.end_of_session or end
        expected = self.next_expected
        if first > expected:
            return SequenceVerdict(expected, 0, 0, Gap(expected, first), end)
        duplicates = min(count, expected - first)
        new = count - duplicates
        self.next_expected = expected + new
        return SequenceVerdict(expected, duplicates, new, None, end)

    def request(self, max_count: int = MAX_MESSAGE_COUNT, before: int | None = None) -> RequestPacket | None:
        """The re-request for the current gap, or None when nothing is missing. `before`: the
        messages from there on are held already (packets kept past the gap): ask only up to it."""
        if self.session is None or not self.in_gap:
            return None
        end = self.highest_announced if before is None else min(before, self.highest_announced)
        if end <= self.next_expected:
            return None
        return RequestPacket(self.session, self.next_expected, min(end - self.next_expected, max_count))

    def stop_at(self, sequence: int) -> None:
        """The message at `sequence`, taken as new by the last on_header, could not be read: it
        and the ones after it are missing again (a gap, re-requested as any other)."""
        if not sequence < self.next_expected:
            raise ValueError(f"cannot stop at {sequence}: only messages before {self.next_expected} were taken")
        self.next_expected = sequence

    def skip_to(self, sequence: int) -> None:
        """Accept the loss of everything before `sequence` (after a snapshot recovery)."""
        if sequence < self.next_expected:
            raise ValueError(f"cannot skip back from {self.next_expected} to {sequence}")
        self.next_expected = sequence
        self.highest_announced = max(self.highest_announced, sequence)
