"""SoupBinTCP 3.0 packets and the stream framer.

Owns the packet layouts both ways (length u16 + type + payload; login fields are fixed-width
ASCII, sequence numbers are right-justified ASCII digits) and the cutting of a TCP byte stream
into whole frames. Must not know about sockets, heartbeat timers, session state or OUCH.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Union

from mm_core.protocol._layout import pack_text, unpack_text
from mm_core.protocol.errors import (
    BadField, FrameTooLarge, ProtocolError, TrailingBytes, TruncatedMessage, UnknownMessageType,
)

__all__ = [
    "Direction", "Debug", "LoginAccepted", "LoginRejected", "SequencedData", "ServerHeartbeat",
    "EndOfSession", "LoginRequest", "UnsequencedData", "ClientHeartbeat", "LogoutRequest",
    "SoupPacket", "encode", "decode", "Framer", "DEFAULT_MAX_LENGTH",
]

PROTOCOL = "SoupBinTCP"
SESSION_WIDTH = 10
SEQUENCE_WIDTH = 20
USERNAME_WIDTH = 6
PASSWORD_WIDTH = 10
MAX_LENGTH_FIELD = 0xFFFF
DEFAULT_MAX_LENGTH = 4096        # largest length field the framer accepts by default


class Direction(enum.Enum):
    FROM_SERVER = "server"
    FROM_CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Debug:
    text: str


@dataclass(frozen=True, slots=True)
class LoginAccepted:
    session: str
    sequence: int       # sequence number of the next sequenced message the server will send


@dataclass(frozen=True, slots=True)
class LoginRejected:
    reason: str         # 'A' not authorized, 'S' session not available


@dataclass(frozen=True, slots=True)
class SequencedData:
    payload: bytes


@dataclass(frozen=True, slots=True)
class ServerHeartbeat:
    """H: the server is alive (sent after 1 s without other traffic)."""


@dataclass(frozen=True, slots=True)
class EndOfSession:
    """Z: the server ends the session; no more sequenced data will follow."""


@dataclass(frozen=True, slots=True)
class LoginRequest:
    username: str
    password: str
    requested_session: str     # "" = the currently active session
    requested_sequence: int    # 1 = from the start of the session, 0 = only new messages


@dataclass(frozen=True, slots=True)
class UnsequencedData:
    payload: bytes


@dataclass(frozen=True, slots=True)
class ClientHeartbeat:
    """R: the client is alive."""


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """O: the client ends the connection."""


SoupPacket = Union[Debug, LoginAccepted, LoginRejected, SequencedData, ServerHeartbeat,
                   EndOfSession, LoginRequest, UnsequencedData, ClientHeartbeat, LogoutRequest]

REJECT_REASONS = frozenset("AS")


# --- fixed-width ASCII fields ---------------------------------------------------------------

def _number(cls: str, field: str, value: object) -> bytes:
    """Right-justified ASCII decimal, space-padded on the left."""
    if type(value) is not int or not 0 <= value < 10 ** SEQUENCE_WIDTH:
        raise BadField(cls, field, value, f"not a non-negative integer of <= {SEQUENCE_WIDTH} digits")
    return str(value).encode("ascii").rjust(SEQUENCE_WIDTH, b" ")


def _parse_number(cls: str, field: str, raw: bytes) -> int:
    digits = raw.strip(b" ")
    if not digits or not digits.isdigit():
        raise BadField(cls, field, raw, "not ASCII digits")
    return int(digits)


def _payload(cls: str, value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise BadField(cls, "payload", value, "not bytes")
    return bytes(value)


# --- per-type body codecs ----------------------------------------------------------------------

def _enc_body(packet: Any) -> tuple[bytes, bytes]:
    name = type(packet).__name__
    if isinstance(packet, Debug):
        if type(packet.text) is not str or not packet.text.isascii():
            raise BadField(name, "text", packet.text, "not ASCII text")
        return b"+", packet.text.encode("ascii")
    if isinstance(packet, LoginAccepted):
        return b"A", (pack_text(name, "session", packet.session, SESSION_WIDTH)
                      + _number(name, "sequence", packet.sequence))
    if isinstance(packet, LoginRejected):
        if type(packet.reason) is not str or packet.reason not in REJECT_REASONS:
            raise BadField(name, "reason", packet.reason, "not one of A, S")
        return b"J", packet.reason.encode("ascii")
    if isinstance(packet, SequencedData):
        return b"S", _payload(name, packet.payload)
    if isinstance(packet, UnsequencedData):
        return b"U", _payload(name, packet.payload)
    if isinstance(packet, LoginRequest):
        return b"L", (pack_text(name, "username", packet.username, USERNAME_WIDTH)
                      + pack_text(name, "password", packet.password, PASSWORD_WIDTH)
                      + pack_text(name, "requested_session", packet.requested_session, SESSION_WIDTH)
                      + _number(name, "requested_sequence", packet.requested_sequence))
    empty = _EMPTY_TYPES.get(type(packet))
    if empty is None:
        raise BadField(PROTOCOL, None, packet, "not a SoupBinTCP packet")
    return empty, b""


def _dec_login_accepted(body: bytes) -> LoginAccepted:
    _expect_size("LoginAccepted", body, SESSION_WIDTH + SEQUENCE_WIDTH)
    return LoginAccepted(unpack_text("LoginAccepted", "session", body[:SESSION_WIDTH]),
                         _parse_number("LoginAccepted", "sequence", body[SESSION_WIDTH:]))


def _dec_login_rejected(body: bytes) -> LoginRejected:
    _expect_size("LoginRejected", body, 1)
    reason = chr(body[0])
    if reason not in REJECT_REASONS:
        raise BadField("LoginRejected", "reason", body, "not one of A, S")
    return LoginRejected(reason)


def _dec_login_request(body: bytes) -> LoginRequest:
    _expect_size("LoginRequest", body, USERNAME_WIDTH + PASSWORD_WIDTH + SESSION_WIDTH + SEQUENCE_WIDTH)
    p, s, q = USERNAME_WIDTH, USERNAME_WIDTH + PASSWORD_WIDTH, USERNAME_WIDTH + PASSWORD_WIDTH + SESSION_WIDTH
    return LoginRequest(unpack_text("LoginRequest", "username", body[:p]),
                        unpack_text("LoginRequest", "password", body[p:s]),
                        unpack_text("LoginRequest", "requested_session", body[s:q]),
                        _parse_number("LoginRequest", "requested_sequence", body[q:]))


def _dec_debug(body: bytes) -> Debug:
    try:
        return Debug(body.decode("ascii"))
    except UnicodeDecodeError:
        raise BadField("Debug", "text", body, "not ASCII") from None


def _empty(cls: type) -> Callable[[bytes], Any]:
    def dec(body: bytes) -> Any:
        _expect_size(cls.__name__, body, 0)
        return cls()
    return dec


def _expect_size(name: str, body: bytes, size: int) -> None:
    if len(body) != size:
        kind = TruncatedMessage if len(body) < size else TrailingBytes
        raise kind(f"{PROTOCOL} {name}: payload of {len(body)} bytes, expected {size}")


_EMPTY_TYPES: dict[type, bytes] = {
    ServerHeartbeat: b"H", EndOfSession: b"Z", ClientHeartbeat: b"R", LogoutRequest: b"O",
}

_SERVER_DECODERS: dict[int, Callable[[bytes], Any]] = {
    ord("+"): _dec_debug,
    ord("A"): _dec_login_accepted,
    ord("J"): _dec_login_rejected,
    ord("S"): SequencedData,
    ord("H"): _empty(ServerHeartbeat),
    ord("Z"): _empty(EndOfSession),
}
_CLIENT_DECODERS: dict[int, Callable[[bytes], Any]] = {
    ord("+"): _dec_debug,
    ord("L"): _dec_login_request,
    ord("U"): UnsequencedData,
    ord("R"): _empty(ClientHeartbeat),
    ord("O"): _empty(LogoutRequest),
}
_DECODERS = {
    None: {**_SERVER_DECODERS, **_CLIENT_DECODERS},
    Direction.FROM_SERVER: _SERVER_DECODERS,
    Direction.FROM_CLIENT: _CLIENT_DECODERS,
}


# --- public codec -----------------------------------------------------------------------------

def encode(packet: SoupPacket) -> bytes:
    """The frame of one packet: 2-byte big-endian length (type + payload), type, payload."""
    type_byte, body = _enc_body(packet)
    length = 1 + len(body)
    if length > MAX_LENGTH_FIELD:
        raise FrameTooLarge(length, MAX_LENGTH_FIELD, "SoupBinTCP packet")
    return length.to_bytes(2, "big") + type_byte + body


def decode(frame: bytes | bytearray | memoryview, direction: Direction | None = None) -> SoupPacket:
    """Decode exactly one frame (length prefix included), optionally only the types one side sends."""
    n = len(frame)
    if n < 3:
        raise TruncatedMessage(f"{PROTOCOL}: frame of {n} bytes is shorter than length + type")
    length = frame[0] << 8 | frame[1]
    if length + 2 != n:
        kind = TruncatedMessage if length + 2 > n else TrailingBytes
        raise kind(f"{PROTOCOL}: length field says {length}, frame carries {n - 2}")
    decoder = _DECODERS[direction].get(frame[2])
    if decoder is None:
        raise UnknownMessageType(PROTOCOL if direction is None else f"{PROTOCOL} {direction.value}",
                                 frame[2])
    return decoder(bytes(frame[3:]))  # type: ignore[no-any-return]


class Framer:
    """Cuts a byte stream into whole frames (length prefix included), fed in any chunking.

    A zero or oversized length field is a ProtocolError that is latched: a TCP stream cannot be
    resynchronised, so every later feed() raises it again. Frames completed earlier in the same
    feed() are kept in `salvaged`, the bytes it could not cut in `unframed`, so that nothing
    received is lost. Between calls the framer holds at most one partial frame (under 2 +
    max_length bytes)."""

    def __init__(self, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        if not 1 <= max_length <= MAX_LENGTH_FIELD:
            raise ValueError(f"max_length must be in 1..{MAX_LENGTH_FIELD}")
        self.max_length = max_length
        self._rest = b""                       # the start of an incomplete frame
        self._error: ProtocolError | None = None
        self.salvaged: list[bytes] = []        # whole frames cut before the error, to journal
        self.unframed = b""                    # the bytes from the bad length field on, to journal

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame waiting for the rest."""
        return len(self._rest)

    @property
    def partial(self) -> bytes:
        """The bytes of an incomplete frame waiting for the rest (to journal when the stream ends)."""
        return self._rest

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Append `data`; return every frame it completed, in order."""
        if self._error is not None:
            raise self._error
        buf = self._rest + bytes(data) if self._rest else bytes(data)
        limit = self.max_length
        frames: list[bytes] = []
        append = frames.append
        off = 0
        end = len(buf)
        while end - off >= 2:
            length = buf[off] << 8 | buf[off + 1]
            if length == 0 or length > limit:
                self._rest = b""
                self.salvaged = frames
                self.unframed = buf[off:]
                self._error = (FrameTooLarge(length, limit, "SoupBinTCP packet") if length
                               else TruncatedMessage(f"{PROTOCOL}: length 0 leaves no room for a type"))
                raise self._error
            stop = off + 2 + length
            if stop > end:
                break
            append(buf[off:stop])
            off = stop
        self._rest = buf[off:] if off else buf
        return frames
