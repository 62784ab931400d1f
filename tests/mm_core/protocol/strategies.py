"""Hypothesis strategies built from the codecs' own layouts, and small test helpers.

One strategy per wire kind, so every message class gets a round-trip property without a
hand-written generator; the hand-written byte tables stay in the test modules.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
from hypothesis import strategies as st

from mm_core.protocol._layout import Alpha, Char, Ts48, UInt, layout_of
from mm_core.protocol.errors import BadField, ProtocolError

PRINTABLE_ASCII = "".join(chr(c) for c in range(33, 127))


def hex_bytes(*fields: str) -> bytes:
    """Hand-written wire bytes, one hex string per field (spaces inside are ignored)."""
    return bytes.fromhex("".join(fields))


def ascii_field(text: str, width: int) -> str:
    """Hex of a left-justified space-padded ASCII field, for writing tables by hand."""
    assert len(text) <= width
    return text.encode("ascii").ljust(width, b" ").hex()


def kind_strategy(kind: Any) -> st.SearchStrategy[Any]:
    if isinstance(kind, Ts48):
        return st.integers(0, kind.max_value)
    if isinstance(kind, UInt):
        return st.integers(0, kind.max_value)
    if isinstance(kind, Char):
        choices = sorted(kind.choices) if kind.choices is not None else list(PRINTABLE_ASCII + " ")
        return st.sampled_from(choices)
    if isinstance(kind, Alpha):
        # inner spaces are data; only trailing ones are padding
        return st.text(alphabet=PRINTABLE_ASCII + " ", max_size=kind.width).map(lambda s: s.rstrip(" "))
    raise TypeError(kind)


def message_strategy(cls: type) -> st.SearchStrategy[Any]:
    """Any valid instance of a layout message class."""
    return st.builds(cls, **{name: kind_strategy(kind) for name, kind in layout_of(cls).fields})


def example_of(cls: type) -> Any:
    """A fixed, valid instance (smallest values) for tests that need one of each type."""
    values = {}
    for name, kind in layout_of(cls).fields:
        if isinstance(kind, Char):
            values[name] = sorted(kind.choices)[0] if kind.choices else "Y"
        elif isinstance(kind, Alpha):
            values[name] = "ABCDEFGHIJKLMN"[: kind.width]
        else:
            values[name] = 7
    return cls(**values)


def only_protocol_errors(decode: Callable[[bytes], Any], data: bytes) -> Any:
    """Run a decoder on arbitrary bytes: a result or a ProtocolError, anything else fails."""
    try:
        return decode(data)
    except ProtocolError:
        return None


def assert_encode_names_bad_field(encode: Callable[[Any], bytes], good: Any,
                                  changes: dict[str, Any], field: str) -> None:
    """Encoding `good` with `changes` raises BadField naming `field`; a non-message too."""
    with pytest.raises(BadField) as err:
        encode(dataclasses.replace(good, **changes))
    assert err.value.field == field
    with pytest.raises(BadField):
        encode(object())
