"""PacketRun: the packets and stamps of a run of MarketData events as the C batch call reads them."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.engine import PacketRun, ffi
from mm_core.events import MarketData

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), INT64), max_size=30))
def test_each_packet_and_its_stamp_are_where_the_c_reads_them(rows):
    """Packet i is buf[off[i]:off[i+1]] and ts[i] its now_ns, for every int64_t stamp: what
    struct's "q" would have packed, bit for bit."""
    run = PacketRun([MarketData(packet, now) for packet, now in rows])
    n = len(rows)
    off = ffi.unpack(run.off, n + 1)
    data = bytes(ffi.buffer(run.buf, off[-1]))
    assert [data[off[i]:off[i + 1]] for i in range(n)] == [packet for packet, _ in rows]
    stamps = ffi.unpack(run.ts, n) if n else []
    assert stamps == [now for _, now in rows]
    assert bytes(ffi.buffer(run.ts, 8 * n)) == struct.pack(f"{n}q", *stamps)


@pytest.mark.parametrize("now", [1 << 63, -(1 << 63) - 1, 1 << 70])
def test_a_stamp_past_int64_is_refused_as_struct_refuses_it(now):
    """A stamp the C cannot hold is a struct.error, not a wrapped value."""
    with pytest.raises(struct.error):
        PacketRun([MarketData(b"x", 0), MarketData(b"y", now)])
