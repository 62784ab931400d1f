"""catalogue's raw readers (venue_fields, order_sent_raw) slice the payload and give exactly what
the numpy record gives, including a raw_len past the field (cut to it), and a payload of the
wrong size is the typed error unpack raises."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journal.catalogue import (PAYLOAD_DTYPES, CatalogueError, RecordType, order_sent_raw, raw_bytes, unpack,
                               venue_fields)

_VENUE = PAYLOAD_DTYPES[RecordType.VENUE_MSG]
_SENT = PAYLOAD_DTYPES[RecordType.ORDER_SENT]


def _with_raw_len(dtype, payload: bytes, raw_len: int) -> bytes:
    """`payload` with its raw_len field set to raw_len (any u16, also past the raw field)."""
    at = dtype.fields["raw_len"][1]
    return payload[:at] + struct.pack("<H", raw_len) + payload[at + 2:]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=_VENUE.itemsize, max_size=_VENUE.itemsize), st.integers(0, 0xFFFF))
def test_venue_fields_equal_the_numpy_record(payload, raw_len):
    payload = _with_raw_len(_VENUE, payload, raw_len)
    msg = unpack(RecordType.VENUE_MSG, payload)
    expected = (int(msg["soup_seq"]), int(msg["packet_type"]), int(msg["msg_type"]), raw_bytes(msg))
    got = venue_fields(RecordType.VENUE_MSG, payload)
    assert got == expected
    assert all(type(v) is int for v in got[:3]) and type(got[3]) is bytes
    assert len(got[3]) == min(raw_len, _VENUE["raw"].shape[0])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=_SENT.itemsize, max_size=_SENT.itemsize), st.integers(0, 0xFFFF))
def test_order_sent_raw_equals_the_numpy_record(payload, raw_len):
    payload = _with_raw_len(_SENT, payload, raw_len)
    got = order_sent_raw(payload)
    assert got == raw_bytes(unpack(RecordType.ORDER_SENT, payload))
    assert type(got) is bytes and len(got) == min(raw_len, _SENT["raw"].shape[0])


@pytest.mark.parametrize("size", [0, 12, _SENT.itemsize - 1, _SENT.itemsize + 1])
def test_order_sent_raw_of_a_wrong_size_is_a_catalogue_error(size):
    with pytest.raises(CatalogueError, match="ORDER_SENT payload is"):
        order_sent_raw(bytes(size))


@pytest.mark.parametrize("size", [0, 12, _VENUE.itemsize - 1, _VENUE.itemsize + 1])
def test_venue_fields_of_a_wrong_size_is_a_catalogue_error(size):
    with pytest.raises(CatalogueError, match="VENUE_MSG payload is"):
        venue_fields(RecordType.VENUE_MSG, bytes(size))
