"""Fixed-width big-endian message layouts shared by the ITCH and OUCH codecs.

A message is a frozen slotted dataclass whose annotations carry their wire kind
(`stock: Alpha8`, `shares: U32`); `wire_message(b"A")` compiles one struct.Struct and a pair of
straight-line encode/decode functions for it (as dataclasses itself generates __init__).
Knows nothing of any particular protocol's message list, of framing or of I/O.
"""
from __future__ import annotations

import struct
import typing
from dataclasses import dataclass, fields
from typing import Annotated, Any, Callable, ClassVar, Iterable

from mm_core.protocol.errors import BadField, TrailingBytes, TruncatedMessage, UnknownMessageType

__all__ = [
    "UInt", "Ts48", "Char", "Alpha",
    "U8", "U16", "U32", "U64", "Price4", "Timestamp48", "AnyChar",
    "Codec", "Registry", "wire_message", "char_of", "alpha", "layout_of", "pack_text", "unpack_text",
]


# --- wire kinds -------------------------------------------------------------------------------

@dataclass(frozen=True)
class UInt:
    """Unsigned big-endian integer of 1, 2, 4 or 8 bytes."""

    fmt: str
    nitems: ClassVar[int] = 1

    @property
    def max_value(self) -> int:
        return (1 << (8 * struct.calcsize(self.fmt))) - 1

    def decode_expr(self, v: list[str]) -> str:
        return v[0]

    def encode_expr(self, a: str, const: str) -> str:
        return a

    def check(self, value: object) -> str | None:
        if type(value) is not int:
            return "not an int"
        if not 0 <= value <= self.max_value:
            return f"outside 0..{self.max_value}"
        return None


@dataclass(frozen=True)
class Ts48:
    """ITCH 6-byte timestamp: nanoseconds since midnight, packed as u16 high + u32 low."""

    fmt: str = "HI"
    max_value: int = (1 << 48) - 1
    nitems: ClassVar[int] = 2

    def decode_expr(self, v: list[str]) -> str:
        return f"({v[0]} << 32 | {v[1]})"

    def encode_expr(self, a: str, const: str) -> str:
        return f"{a} >> 32, {a} & 0xFFFFFFFF"

    def check(self, value: object) -> str | None:
        return UInt.check(self, value)  # type: ignore[arg-type]  # same int range rule


@dataclass(frozen=True)
class Char:
    """One ASCII character, optionally restricted to a set of codes."""

    choices: frozenset[str] | None = None
    fmt: str = "c"
    nitems: ClassVar[int] = 1

    def decode_expr(self, v: list[str]) -> str:
        return f"{v[0]}.decode('ascii')"

    def encode_expr(self, a: str, const: str) -> str:
        return f"_char({a}, {const})"

    def check(self, value: object) -> str | None:
        if type(value) is not str or len(value) != 1 or not value.isascii():
            return "not one ASCII character"
        if self.choices is not None and value not in self.choices:
            return f"not one of {''.join(sorted(self.choices))}"
        return None


@dataclass(frozen=True)
class Alpha:
    """Left-justified, space-padded ASCII text of a fixed width; decoded without the padding."""

    width: int
    nitems: ClassVar[int] = 1

    @property
    def fmt(self) -> str:
        return f"{self.width}s"

    def decode_expr(self, v: list[str]) -> str:
        return f"{v[0]}.decode('ascii').rstrip(' ')"

    def encode_expr(self, a: str, const: str) -> str:
        return f"_alpha({a}, {self.width})"

    def check(self, value: object) -> str | None:
        if type(value) is not str or not value.isascii():
            return "not ASCII text"
        if len(value) > self.width:
            return f"longer than {self.width} characters"
        if value != value.rstrip(" "):
            return "trailing spaces are padding and cannot round-trip"
        return None


Kind = UInt | Ts48 | Char | Alpha

U8 = Annotated[int, UInt("B")]
U16 = Annotated[int, UInt("H")]
U32 = Annotated[int, UInt("I")]
U64 = Annotated[int, UInt("Q")]
Price4 = Annotated[int, UInt("I")]     # price with 4 implied decimals, unsigned 32-bit
Timestamp48 = Annotated[int, Ts48()]
AnyChar = Annotated[str, Char()]


def char_of(codes: str) -> Any:
    """Annotation for a one-character field limited to `codes`."""
    return Annotated[str, Char(frozenset(codes))]


def alpha(width: int) -> Any:
    """Annotation for a fixed-width space-padded ASCII field."""
    return Annotated[str, Alpha(width)]


# --- fixed-width ASCII text outside generated layouts (sessions, logins) ----------------------

def pack_text(owner: str, field: str, value: object, width: int) -> bytes:
    """Left-justified, space-padded ASCII of exactly `width` bytes, or BadField."""
    if type(value) is not str or not value.isascii():
        raise BadField(owner, field, value, "not ASCII text")
    raw = value.encode("ascii")
    if len(raw) > width or raw != raw.strip(b" "):
        raise BadField(owner, field, value, f"longer than {width} characters or space-padded")
    return raw.ljust(width, b" ")


def unpack_text(owner: str, field: str, raw: bytes) -> str:
    """Inverse of pack_text (padding on either side is dropped), or BadField."""
    try:
        return raw.decode("ascii").strip(" ")
    except UnicodeDecodeError:
        raise BadField(owner, field, raw, "not ASCII") from None


# --- helpers called from generated encoders ---------------------------------------------------

def _char(value: str, choices: frozenset[str] | None) -> bytes:
    if choices is not None and value not in choices:
        raise ValueError("code not allowed")
    return value.encode("ascii")   # struct's 'c' rejects anything but exactly one byte


def _alpha(value: str, width: int) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width or raw.endswith(b" "):
        raise ValueError("alpha field too long or padded")   # struct would silently truncate
    return raw.ljust(width, b" ")


# --- one compiled message layout ---------------------------------------------------------------

class Codec:
    """Compiled layout of one message class: its type byte, size and generated functions."""

    __slots__ = ("cls", "type_byte", "size", "fields", "struct", "decode_at", "encode_unchecked")

    def __init__(self, cls: type, type_byte: bytes) -> None:
        hints = typing.get_type_hints(cls, include_extras=True)
        layout: list[tuple[str, Kind]] = []
        for f in fields(cls):
            meta = getattr(hints[f.name], "__metadata__", ())
            kinds = [m for m in meta if isinstance(m, (UInt, Ts48, Char, Alpha))]
            if len(kinds) != 1:
                raise TypeError(f"{cls.__name__}.{f.name} needs exactly one wire kind annotation")
            layout.append((f.name, kinds[0]))
        self.cls = cls
        self.type_byte = type_byte
        self.fields: tuple[tuple[str, Kind], ...] = tuple(layout)
        self.struct = struct.Struct(">c" + "".join(k.fmt for _, k in layout))
        self.size = self.struct.size
        self.decode_at, self.encode_unchecked = self._compile()

    def _compile(self) -> tuple[Callable[[Any, int], Any], Callable[[Any], bytes]]:
        env: dict[str, Any] = {
            "_unpack_from": self.struct.unpack_from, "_pack": self.struct.pack,
            "_new": object.__new__, "_cls": self.cls, "_type": self.type_byte,
            "_char": _char, "_alpha": _alpha,
        }
        items: list[str] = []
        checks: list[str] = []
        sets: list[str] = []
        enc: list[str] = []
        for i, (name, kind) in enumerate(self.fields):
            v = [f"v{i}_{j}" for j in range(kind.nitems)]
            items += v
            env[f"_set_{name}"] = getattr(self.cls, name).__set__   # slot descriptor: skips frozen __setattr__
            const = f"_choices_{name}"
            if isinstance(kind, Char) and kind.choices is not None:
                env[const] = kind.choices
                env[f"_raw_{name}"] = frozenset(c.encode("ascii") for c in kind.choices)
                checks.append(f"    if {v[0]} not in _raw_{name}: raise ValueError({name!r})")
            else:
                env[const] = None
            sets.append(f"    _set_{name}(o, {kind.decode_expr(v)})")
            enc.append(kind.encode_expr(f"m.{name}", const))
        src = (
            "def decode_at(buf, off):\n"
            f"    _t, {', '.join(items)}, = _unpack_from(buf, off)\n"
            + "".join(c + "\n" for c in checks)
            + "    o = _new(_cls)\n"
            + "".join(s + "\n" for s in sets)
            + "    return o\n"
            "def encode_unchecked(m):\n"
            f"    return _pack(_type, {', '.join(enc)})\n"
        )
        exec(compile(src, f"<codec {self.cls.__name__}>", "exec"), env)
        return env["decode_at"], env["encode_unchecked"]

    # Slow paths, only reached once something is already wrong: name the offending field.
    def bad_field_in_bytes(self, buf: Any, off: int) -> BadField:
        raw = self.struct.unpack_from(buf, off)[1:]
        pos = 0
        for name, kind in self.fields:
            value = raw[pos]
            pos += kind.nitems
            if isinstance(kind, (Char, Alpha)):
                try:
                    text = value.decode("ascii")
                except UnicodeDecodeError:
                    return BadField(self.cls.__name__, name, value, "not ASCII")
                if isinstance(kind, Char) and kind.choices is not None and text not in kind.choices:
                    return BadField(self.cls.__name__, name, text,
                                    f"not one of {''.join(sorted(kind.choices))}")
        return BadField(self.cls.__name__, None, bytes(buf[off:off + self.size]), "undecodable")

    def bad_field_in_message(self, msg: Any, exc: Exception) -> BadField:
        for name, kind in self.fields:
            value = getattr(msg, name)
            reason = kind.check(value)
            if reason is not None:
                return BadField(self.cls.__name__, name, value, reason)
        return BadField(self.cls.__name__, None, msg, f"cannot encode: {exc}")


def wire_message(type_code: str) -> Callable[[type], type]:
    """Class decorator (put above @dataclass(frozen=True, slots=True)): compile the layout."""

    def attach(cls: type) -> type:
        cls._codec = Codec(cls, type_code.encode("ascii"))   # type: ignore[attr-defined]
        cls.TYPE = type_code                                 # type: ignore[attr-defined]
        return cls

    return attach


def layout_of(cls: type) -> Codec:
    """The compiled layout of a message class (fields, size, type byte)."""
    return cls._codec   # type: ignore[attr-defined, no-any-return]


_ENCODE_FAILURES = (struct.error, TypeError, AttributeError, ValueError, OverflowError)


class Registry:
    """Messages of one protocol (and direction), dispatched on the first byte."""

    def __init__(self, protocol: str, classes: Iterable[type]) -> None:
        self.protocol = protocol
        self.codecs: dict[int, Codec] = {}
        for cls in classes:
            codec = layout_of(cls)
            if codec.type_byte[0] in self.codecs:
                raise TypeError(f"{protocol}: two messages use type {codec.type_byte!r}")
            self.codecs[codec.type_byte[0]] = codec
        self.classes = frozenset(c.cls for c in self.codecs.values())

    def decode(self, buf: Any) -> Any:
        """Decode exactly one message occupying all of `buf`."""
        return self.decode_at(buf, 0, len(buf))

    def decode_at(self, buf: Any, off: int, length: int) -> Any:
        """Decode the one message in buf[off:off+length] (the length comes from the framing)."""
        if length <= 0:
            raise TruncatedMessage(f"{self.protocol}: empty message")
        codec = self.codecs.get(buf[off])
        if codec is None:
            raise UnknownMessageType(self.protocol, buf[off])
        if length != codec.size:
            cls = TruncatedMessage if length < codec.size else TrailingBytes
            raise cls(f"{self.protocol} {codec.cls.__name__}: {length} bytes, expected {codec.size}")
        try:
            return codec.decode_at(buf, off)
        except ValueError:   # a disallowed code or non-ASCII text
            raise codec.bad_field_in_bytes(buf, off) from None

    def encode(self, msg: Any) -> bytes:
        """Encode one message of this registry; a bad field raises BadField naming it."""
        cls = type(msg)
        if cls not in self.classes:
            raise BadField(self.protocol, None, msg, f"{cls.__name__} is not a {self.protocol} message")
        codec: Codec = cls._codec
        try:
            return codec.encode_unchecked(msg)   # type: ignore[no-any-return]
        except _ENCODE_FAILURES as exc:
            raise codec.bad_field_in_message(msg, exc) from None
