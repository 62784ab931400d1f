"""A markout whose horizon ended before a market-data packet is marked at the mid the book held
until that packet (the exact mid at its horizon), not at the mid the packet makes: on the
Python path, the compiled packet path and replay's batch path (Engine.on_packet_run)."""
import pytest

from mm_core.engine import Engine, PacketRun
from tests.mm_core import wire
from tests.mm_core.wire import CHIP, MS, S, Feed, Venue, make_engine, md, run, two_sided

FILL_AT = S + 10 * MS
PACKET_AT = FILL_AT + 1_500 * MS        # past the 100 ms and 1 s horizons, before the 5 s one


def filled(compiled: bool, monkeypatch):
    """Our bid on CHIP filled for 100 at FILL_AT; returns the engine, the feed and the book's refs."""
    monkeypatch.setattr(wire, "Engine", lambda *a, **kw: Engine(*a, compiled=compiled, **kw))
    engine, venue, feed = make_engine(), Venue(), Feed()
    msgs, refs = two_sided(feed, CHIP, 8400, 8600, qty=500, levels=3, tick=10)
    run(engine, venue, md(feed.packet(*msgs), S), S)
    bid = venue.resting("CHIP", "B")[0]
    price = venue.orders[bid]["price"]
    run(engine, venue, venue.fill(bid, 100, FILL_AT), FILL_AT)
    return engine, feed, refs, price


def market_drops(feed, refs):
    """One packet that moves the market down a tick (8390/8590 from 8400/8600)."""
    return feed.packet(feed.delete(refs[8400]), feed.delete(refs[8600]), feed.add(CHIP, "S", 500, 8590))


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
def test_a_markout_due_before_a_packet_is_marked_at_the_mid_before_it(compiled, monkeypatch):
    engine, feed, refs, price = filled(compiled, monkeypatch)
    mid2 = engine.mid2[CHIP]
    engine.on_event(md(market_drops(feed, refs), PACKET_AT))
    assert engine.mid2[CHIP] < mid2
    m = engine.metrics
    due = (mid2 - 2 * price) * 100          # bought below the mid: favourable at 100 ms and 1 s
    assert due > 0
    assert m.markout_x2 == [due, due, 0] and m.markout_n == [1, 1, 0]
    assert m.adverse_by[CHIP] == 0 and m.recent_markout[CHIP] > 0
    assert m.next_due_ns == FILL_AT + m.horizons[2]


def test_the_batch_path_marks_before_the_packet_as_one_by_one(monkeypatch):
    one, feed, refs, _ = filled(True, monkeypatch)
    batch, _, _, _ = filled(True, monkeypatch)
    quiet = feed.packet(feed.add(CHIP, "B", 100, 8300))      # deep: moves no mid, no quote
    events = [md(quiet, FILL_AT + 50 * MS), md(market_drops(feed, refs), PACKET_AT)]
    for ev in events:
        one.on_event(ev)
    packets = PacketRun(events)
    i = 0
    while i < len(events):
        taken, _ = batch.on_packet_run(packets, i)
        i += taken
    assert batch.metrics.markout_x2 == one.metrics.markout_x2 and one.metrics.markout_x2[1] > 0
    assert batch.state_hash() == one.state_hash() and batch.now == one.now


@pytest.mark.parametrize("in_c", [True, False], ids=["fsig_mature", "python"])
def test_the_batch_path_keeps_a_packet_with_markouts_due_in_the_c_run(in_c, monkeypatch):
    """Markouts due by a packet that pull nothing mature in the C run (fsig_on_packets, by
    fsig_mature), or without it in Python, and the packet stays in the run: no one-by-one
    on_event for it, same state as one by one."""
    one, feed, refs, _ = filled(True, monkeypatch)
    batch, _, _, _ = filled(True, monkeypatch)
    batch._rx.markouts.enabled = in_c
    matured = []
    monkeypatch.setattr(batch._rx.markouts, "from_c", lambda m, f=batch._rx.markouts.from_c: matured.append(1) or f(m))
    deep = [feed.packet(feed.add(CHIP, "B", 100, 8300 - 10 * k)) for k in range(3)]   # move no mid
    events = [md(deep[0], FILL_AT + 50 * MS), md(deep[1], PACKET_AT), md(deep[2], PACKET_AT + MS)]
    for ev in events:
        assert one.on_event(ev) == []
    one_by_one = []
    monkeypatch.setattr(batch, "on_event", lambda ev: one_by_one.append(ev) or Engine.on_event(batch, ev))
    assert batch.on_packet_run(PacketRun(events), 0) == (3, [])
    assert one_by_one == []
    assert batch.metrics.markout_n == one.metrics.markout_n == [1, 1, 0]
    assert batch.state_hash() == one.state_hash() and batch.now == one.now
    assert batch.counts == one.counts and batch.quiet_packets == one.quiet_packets
    assert matured == ([1] if in_c else [])


def test_markouts_the_c_run_matures_that_trip_the_guard_pull_as_one_by_one(monkeypatch):
    """Adverse markouts due by a packet in a run trip the guard when fsig_mature matures them:
    the run stops before that packet and the pulls go out as on_event's would (the same actions,
    the same engine), the packet then taken as one by one."""
    from mm_core.events import SendOrder
    from mm_core.types import Side
    one, feed, refs, price = filled(True, monkeypatch)
    batch, _, _, _ = filled(True, monkeypatch)
    for engine in (one, batch):         # bought well above the mid: adverse at every horizon
        mid2 = engine.mid2[CHIP]
        for k in range(6):
            engine.metrics.on_fill(CHIP, Side.BUY, 100, mid2 // 2 + 50, mid2, FILL_AT + k)
    handed = []                         # _markouts_before's `tripped` of each packet handed back
    original = Engine._markouts_before
    monkeypatch.setattr(Engine, "_markouts_before", lambda self, ev, tripped=False: (
        handed.append(tripped), original(self, ev, tripped))[1])
    deep = [feed.packet(feed.add(CHIP, "B", 100, 8300 - 10 * k)) for k in range(3)]   # move no mid
    events = [md(deep[0], FILL_AT + 50 * MS), md(deep[1], PACKET_AT), md(deep[2], PACKET_AT + MS)]
    want = [one.on_event(ev) for ev in events]
    assert any("guard-trip" in repr(a) for a in want[1])
    assert any(type(a) is SendOrder and a.intent.kind.name == "CANCEL" for a in want[1])
    got, i, packets = [], 0, PacketRun(events)
    while i < len(events):
        taken, actions = batch.on_packet_run(packets, i)
        got.extend([[]] * (taken - 1) + [actions])
        i += taken
    assert handed == [True]
    assert [repr(a) for a in got] == [repr(a) for a in want]
    assert batch.state_hash() == one.state_hash() and batch.now == one.now
    assert batch.counts == one.counts and not batch.mirrors_stale()
