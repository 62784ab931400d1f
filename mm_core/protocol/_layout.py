"""Fixed-width big-endian message layouts shared by the ITCH and OUCH codecs.

A message is a frozen slotted dataclass whose annotations carry their wire kind
(`stock: alpha(8)`, `shares: U32`); `wire_message("A")` compiles one struct.Struct and a pair of
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
    "Codec", "Registry", "make_encoder", "wire_message", "field_group", "char_of", "alpha", "layout_of",
    "pack_text", "unpack_text", "alpha_text",
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

    def decode_expr(self, v: list[str], name: str) -> str:
        return v[0]

    def encode_expr(self, a: str, name: str) -> str:
        return a

    def bind(self, name: str) -> dict[str, Any]:
        return {}

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

    def decode_expr(self, v: list[str], name: str) -> str:
        return f"({v[0]} << 32 | {v[1]})"

    def encode_expr(self, a: str, name: str) -> str:
        return f"{a} >> 32, {a} & 0xFFFFFFFF"

    def bind(self, name: str) -> dict[str, Any]:
        return {}

    def check(self, value: object) -> str | None:
        return UInt.check(self, value)  # type: ignore[arg-type]  # same int range rule


@dataclass(frozen=True)
class Char:
    """One ASCII character, optionally restricted to a set of codes."""

    choices: frozenset[str] | None = None
    fmt: str = "c"
    nitems: ClassVar[int] = 1

    # One dict lookup converts and validates a code both ways; a miss raises KeyError.
    def decode_expr(self, v: list[str], name: str) -> str:
        return f"_dmap_{name}[{v[0]}]"

    def encode_expr(self, a: str, name: str) -> str:
        return f"_emap_{name}[{a}]"

    def bind(self, name: str) -> dict[str, Any]:
        codes = self.choices if self.choices is not None else [chr(c) for c in range(128)]
        return {f"_dmap_{name}": {c.encode("ascii"): c for c in codes},
                f"_emap_{name}": {c: c.encode("ascii") for c in codes}}

    def check(self, value: object) -> str | None:
        if type(value) is not str or len(value) != 1 or not value.isascii():
            return "not one ASCII character"
        if self.choices is not None and value not in self.choices:
            return f"not one of {''.join(sorted(self.choices))}"
        return None


# How an Alpha field's bytes become text, spelled once: ASCII with the trailing space padding
# dropped (leading spaces are text). Generated decoders inline it (a call would cost ~50 ns a
# field on the hot path); alpha_text() is compiled from it for every other reader.
_ALPHA_TEXT = "{raw}.decode('ascii').rstrip(' ')"


def _compile_alpha_text() -> Callable[[bytes], str]:
    env: dict[str, Any] = {}
    exec(f"def alpha_text(raw):\n    return {_ALPHA_TEXT.format(raw='raw')}\n", env)
    fn = env["alpha_text"]
    fn.__doc__ = ("An Alpha field's bytes as every generated decoder reads them (trailing "
                  "padding dropped, leading spaces kept); UnicodeDecodeError when not ASCII.")
    return fn


alpha_text = _compile_alpha_text()


MEMO_MAX_WIDTH = 8        # alpha fields this narrow are memoised (tokens are unique: not)
MEMO_ENTRIES = 8192       # per field; beyond it values are converted each time, never evicted


@dataclass(frozen=True)
class Alpha:
    """Left-justified, space-padded ASCII text of a fixed width; decoded without the padding."""

    width: int
    nitems: ClassVar[int] = 1

    @property
    def fmt(self) -> str:
        return f"{self.width}s"

    # Short fields (stock, MPID, firm) repeat all day: a bounded memo skips the text work.
    def decode_expr(self, v: list[str], name: str) -> str:
        if self.width > MEMO_MAX_WIDTH:
            return _ALPHA_TEXT.format(raw=v[0])
        return f"(_dmemo_{name}.get({v[0]}) or _dslow_{name}({v[0]}))"

    def encode_expr(self, a: str, name: str) -> str:
        if self.width > MEMO_MAX_WIDTH:
            return f"_alpha({a}, {self.width})"
        return f"(_ememo_{name}.get({a}) or _eslow_{name}({a}))"

    def bind(self, name: str) -> dict[str, Any]:
        if self.width > MEMO_MAX_WIDTH:
            return {}
        dmemo: dict[bytes, str] = {}
        ememo: dict[str, bytes] = {}
        width = self.width

        def dslow(raw: bytes) -> str:
            text = alpha_text(raw)
            if len(dmemo) < MEMO_ENTRIES:
                dmemo[raw] = text
            return text

        def eslow(text: str) -> bytes:
            raw = _alpha(text, width)
            if len(ememo) < MEMO_ENTRIES:
                ememo[text] = raw
            return raw

        return {f"_dmemo_{name}": dmemo, f"_dslow_{name}": dslow,
                f"_ememo_{name}": ememo, f"_eslow_{name}": eslow}

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
        if set(getattr(cls, "__slots__", ())) != {name for name, _ in layout}:
            raise TypeError(f"{cls.__name__}: every field must be a slot of the class itself "
                            "(use @dataclass(frozen=True, slots=True); bases via field_group)")
        self.cls = cls
        self.type_byte = type_byte
        self.fields: tuple[tuple[str, Kind], ...] = tuple(layout)
        self.struct = struct.Struct(">c" + "".join(k.fmt for _, k in layout))
        self.size = self.struct.size
        self.decode_at, self.encode_unchecked = self._compile()

    def _compile(self) -> tuple[Callable[[Any, int], Any], Callable[[Any], bytes]]:
        # Decoding fills a mutable twin of the class (same slots, same bases, plain __setattr__)
        # with ordinary attribute stores, then retypes it: twice as fast as calling each frozen
        # slot's descriptor, and the object seen by callers is the frozen dataclass.
        builder = type(f"_{self.cls.__name__}Builder", self.cls.__bases__, {
            "__slots__": self.cls.__slots__,
            "__setattr__": object.__setattr__, "__delattr__": object.__delattr__,
        })
        env: dict[str, Any] = {
            "_unpack_from": self.struct.unpack_from, "_pack": self.struct.pack,
            "_new": object.__new__, "_builder": builder, "_cls": self.cls,
            "_type": self.type_byte, "_alpha": _alpha,
        }
        items: list[str] = []
        sets: list[str] = []
        enc: list[str] = []
        for i, (name, kind) in enumerate(self.fields):
            v = [f"v{i}_{j}" for j in range(kind.nitems)]
            items += v
            env.update(kind.bind(name))
            sets.append(f"    o.{name} = {kind.decode_expr(v, name)}")
            enc.append(kind.encode_expr(f"m.{name}", name))
        src = (
            "def decode_at(buf, off):\n"
            f"    _t, {', '.join(items)}, = _unpack_from(buf, off)\n"
            + "    o = _new(_builder)\n"
            + "".join(s + "\n" for s in sets)
            + "    o.__class__ = _cls\n"
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


def field_group(cls: type) -> type:
    """Decorator for a private base that only lends leading fields to messages. It must declare
    `__slots__ = ()` so that every slot lives in the final message class (see Codec)."""
    if cls.__dict__.get("__slots__") != ():
        raise TypeError(f"{cls.__name__}: a field group declares __slots__ = ()")
    return dataclass(frozen=True)(cls)


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


_ENCODE_FAILURES = (struct.error, TypeError, AttributeError, ValueError, KeyError, OverflowError)


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
        self._encode = make_encoder(self)
        # type byte -> (size, unchecked decoder): for loops that check sizes themselves
        self.fast: dict[int, tuple[int, Callable[[Any, int], Any]]] = {
            t: (c.size, c.decode_at) for t, c in self.codecs.items()}

    def decode(self, buf: Any) -> Any:
        """Decode exactly one message occupying all of `buf`.

        The hot path assumes the bytes are good; anything odd (empty, unknown type, wrong size,
        bad code) falls through to decode_at, which finds and raises the precise error."""
        try:
            size, decode_at = self.fast[buf[0]]
            if size == len(buf):
                return decode_at(buf, 0)
        except (LookupError, ValueError):
            pass
        return self.decode_at(buf, 0, len(buf))

    def decode_from(self, buf: Any, off: int) -> Any:
        """decode(buf[off:]) without copying: the one message filling buf from `off` (a frame's
        body after its header), the same message or the same error."""
        length = len(buf) - off
        try:
            size, decode_at = self.fast[buf[off]]
            if size == length:
                return decode_at(buf, off)
        except (LookupError, ValueError):
            pass
        return self.decode_at(buf, off, length)

    def decode_at(self, buf: Any, off: int, length: int) -> Any:
        """Decode the one message in buf[off:off+length] (the length comes from the framing)."""
        if length <= 0:
            raise TruncatedMessage(f"{self.protocol}: empty message")
        if off < 0 or off + length > len(buf):
            raise TruncatedMessage(f"{self.protocol}: {length} bytes at offset {off} overrun the buffer")
        codec = self.codecs.get(buf[off])
        if codec is None:
            raise UnknownMessageType(self.protocol, buf[off])
        if length != codec.size:
            cls = TruncatedMessage if length < codec.size else TrailingBytes
            raise cls(f"{self.protocol} {codec.cls.__name__}: {length} bytes, expected {codec.size}")
        try:
            return codec.decode_at(buf, off)
        except (ValueError, KeyError):
            raise codec.bad_field_in_bytes(buf, off) from None

    def encode(self, msg: Any) -> bytes:
        """Encode one message of this registry; a bad field raises BadField naming it."""
        return self._encode(msg)


def make_encoder(*registries: Registry) -> Callable[[Any], bytes]:
    """One encode(msg) for the messages of several registries (e.g. both OUCH directions).

    The hot path is a dict lookup on the class and the generated packer; any failure, including
    an unknown class, is diagnosed afterwards into one BadField."""
    encoders: dict[type, Callable[[Any], bytes]] = {}
    codecs: dict[type, Codec] = {}
    for registry in registries:
        for codec in registry.codecs.values():
            encoders[codec.cls] = codec.encode_unchecked
            codecs[codec.cls] = codec
    protocol = " / ".join(r.protocol for r in registries)

    def encode(msg: Any) -> bytes:
        try:
            return encoders[type(msg)](msg)
        except _ENCODE_FAILURES as exc:
            codec = codecs.get(type(msg))
            if codec is None:
                raise BadField(protocol, None, msg, f"{type(msg).__name__} is not a {protocol} message") from None
            raise codec.bad_field_in_message(msg, exc) from None

    return encode
