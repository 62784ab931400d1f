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
    _assert_reads(PacketRun([MarketData(packet, now) for packet, now in rows]), rows)


def _assert_reads(run: PacketRun, rows: list) -> None:
    n = len(rows)
    assert len(run.events) == n
    off = ffi.unpack(run.off, n + 1)
    data = bytes(ffi.buffer(run.buf, off[-1]))
    assert [data[off[i]:off[i + 1]] for i in range(n)] == [packet for packet, _ in rows]
    stamps = ffi.unpack(run.ts, n) if n else []
    assert stamps == [now for _, now in rows]
    assert bytes(ffi.buffer(run.ts, 8 * n)) == struct.pack(f"{n}q", *stamps)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), INT64), min_size=1, max_size=30), st.data())
def test_a_view_reads_its_stretch_of_the_run(rows, data):
    """PacketRun.view(first, size): the C reads packets first .. first + size - 1 and their stamps
    as a run of those alone would give them."""
    first = data.draw(st.integers(0, len(rows) - 1))
    size = data.draw(st.integers(0, len(rows) - first))
    view = PacketRun([MarketData(packet, now) for packet, now in rows]).view(first, size)
    _assert_reads(view, rows[first:first + size])


class _Recorder:
    """An engine stand-in that notes every event it is handed and takes a run a few at a time."""

    def __init__(self, steps: list[int]) -> None:
        self.seen, self.steps = [], steps

    def on_event(self, ev) -> list:
        self.seen.append(("one", ev))
        return []

    def on_packet_run(self, run: PacketRun, start: int) -> tuple[int, list]:
        take = min(self.steps.pop() if self.steps else 1, len(run.events) - start)
        rows = [(ev.packet, ev.now_ns) for ev in run.events]
        _assert_reads(run, rows)        # the view's C arrays hold its own events' packets
        self.seen += [("run", ev) for ev in run.events[start:start + take]]
        return take, []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.binary(min_size=1, max_size=12), st.integers(0, 1 << 40)),
                          st.integers(0, 1 << 40)), max_size=40),
       st.lists(st.integers(1, 5), max_size=40))
def test_feed_batched_hands_every_event_over_once_in_order(items, steps):
    """feed_batched: every event once, in order; a MarketData in a run of two or more through
    on_packet_run (over a view of the one buffer), any other event and a lone MarketData
    through on_event."""
    from mm_core.engine import feed_batched
    from mm_core.events import Timer
    events = [MarketData(*it) if isinstance(it, tuple) else Timer(it) for it in items]
    engine = _Recorder(steps)
    feed_batched(engine, events)
    assert [ev for _, ev in engine.seen] == events
    for i, (path, ev) in enumerate(engine.seen):
        md_before = i > 0 and type(events[i - 1]) is MarketData
        md_after = i + 1 < len(events) and type(events[i + 1]) is MarketData
        in_run = type(ev) is MarketData and (md_before or md_after)
        assert path == ("run" if in_run else "one")


@pytest.mark.parametrize("now", [1 << 63, -(1 << 63) - 1, 1 << 70])
def test_a_stamp_past_int64_is_refused_as_struct_refuses_it(now):
    """A stamp the C cannot hold is a struct.error, not a wrapped value."""
    with pytest.raises(struct.error):
        PacketRun([MarketData(b"x", 0), MarketData(b"y", now)])
