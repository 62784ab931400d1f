"""The one exception tree of the protocol codecs (ITCH, MoldUDP64, SoupBinTCP, OUCH).

Every malformed input a decoder or framer sees ends as a ProtocolError subclass; callers catch
ProtocolError at the boundary and never need to know about struct or unicode errors.
"""
from __future__ import annotations

__all__ = [
    "ProtocolError",
    "TruncatedMessage",
    "TrailingBytes",
    "UnknownMessageType",
    "BadField",
    "FrameTooLarge",
    "SessionMismatch",
]


class ProtocolError(Exception):
    """Base of every codec error: the bytes (or the message to encode) break the protocol."""


class TruncatedMessage(ProtocolError):
    """Fewer bytes than the message, block or header needs."""


class TrailingBytes(ProtocolError):
    """More bytes than the message, block or packet accounts for."""


class UnknownMessageType(ProtocolError):
    """The type byte names no message of this protocol (in this direction)."""

    def __init__(self, protocol: str, type_byte: int) -> None:
        self.protocol = protocol
        self.type_byte = type_byte
        shown = chr(type_byte) if 32 <= type_byte < 127 else f"0x{type_byte:02x}"
        super().__init__(f"{protocol}: unknown message type {shown!r}")


class BadField(ProtocolError):
    """A field's value is not allowed (wrong code, out of range, not ASCII, too long)."""

    def __init__(self, message: str, field: str | None, value: object, reason: str) -> None:
        self.message = message
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{message}.{field}: {reason} (value {_short_repr(value)})")


def _short_repr(value: object, limit: int = 80) -> str:
    """repr for an error message: bounded, and never failing (huge ints refuse str())."""
    try:
        text = repr(value)
    except ValueError:
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


class FrameTooLarge(ProtocolError):
    """A length prefix or message exceeds the configured bound."""

    def __init__(self, length: int, limit: int, what: str = "frame") -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"{what} of {length} bytes exceeds the limit of {limit}")


class SessionMismatch(ProtocolError):
    """A MoldUDP64 packet belongs to another session than the one being tracked."""

    def __init__(self, expected: str, received: str) -> None:
        self.expected = expected
        self.received = received
        super().__init__(f"session {received!r} received while tracking {expected!r}")
