"""Packets past a MoldUDP64 gap are kept (mm_core.gapbuffer) and applied once the gap before them is
filled: the re-request asks only for the messages missing, the kept packets then go through the
same path as live ones in sequence order (those an answer overlapped only for their new messages,
those it covered wholly discarded), the book ends as if nothing was lost, a packet over the caps
is dropped, counted, alerted and asked for again, and the buffer is part of the engine's saved
state and state hash (a snapshot restored mid-gap carries on as the engine that was never stopped).
Compiled and reference engines stay in lockstep through sessions with gaps."""
import io
import pickle
import random

import pytest

from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, RequestRetransmit, SendOrder, Timer
from mm_core.gapbuffer import DUPLICATE, FULL, KEPT, GapBuffer
from mm_core.protocol import moldudp64
from recovery.snapshot import _Pickler
from tests.mm_core.test_determinism import fingerprint
from tests.mm_core.test_engine import alerts, quoted_book
from tests.mm_core.test_sig_engine import Lockstep
from tests.mm_core.wire import ACME, BOLT, MS, SYMBOLS, S, Feed, Venue, gateway, md, run, two_sided


def requests(actions):
    return [(a.sequence, a.count) for a in actions if isinstance(a, RequestRetransmit)]


def _flow(feed: Feed, refs: dict) -> list[bytes]:
    """Seven packets after quoted_book's (sequences 7..): the first carries 7 and 8, the others one
    message each but the fourth (three): adds, an execution and a delete of the resting book."""
    return [
        feed.packet(feed.add(ACME, "B", 100, 999_800), feed.add(ACME, "S", 100, 1_000_300)),   # 7, 8
        feed.packet(feed.add(ACME, "B", 200, 999_900)),                                         # 9
        feed.packet(Feed.execute(refs[1_000_100], 200, 77)),                                    # 10
        feed.packet(feed.add(ACME, "S", 300, 1_000_000), Feed.delete(refs[999_700]),
                    feed.add(ACME, "B", 100, 999_950)),                                         # 11..13
        feed.packet(feed.add(ACME, "S", 100, 1_000_200)),                                       # 14
        feed.packet(feed.add(ACME, "B", 400, 999_600)),                                         # 15
    ]


def _no_gap_book():
    engine, venue, feed, refs, _ = quoted_book()
    for i, pkt in enumerate(_flow(feed, refs)):
        run(engine, venue, md(pkt, 3 * S + i * MS), 3 * S + i * MS)
    return engine


def _past_the_gap(packets=None, config=None):
    """Sequences 7 and 8 lost, the five packets after them live: (engine, venue, feed, first asked)."""
    engine, venue, feed, refs, _ = quoted_book(config)
    flow = _flow(feed, refs)
    asked = []
    for i, pkt in enumerate(flow[1:] if packets is None else packets(flow)):
        asked += requests(run(engine, venue, md(pkt, 3 * S + i * MS), 3 * S + i * MS))
    return engine, venue, feed, asked


# --- the buffer ------------------------------------------------------------------------------------

def test_the_buffer_keeps_packets_in_sequence_order_and_says_what_is_next():
    kept = GapBuffer(max_packets=10, max_bytes=1_000)
    assert kept.keep(20, 22, b"b" * 30) is KEPT
    assert kept.keep(10, 13, b"a" * 40) is KEPT
    assert kept.keep(30, 31, b"c" * 10) is KEPT
    assert kept.sequences() == [(10, 13), (20, 22), (30, 31)] and kept.bytes == 80 and len(kept) == 3
    assert kept.keep(10, 12, b"x" * 5) is DUPLICATE      # 10..11 come in the kept 10..12
    assert kept.keep(11, 13, b"x" * 5) is DUPLICATE      # within the packet kept before it
    assert kept.keep(20, 25, b"d" * 50) is KEPT          # the same start, reaching further: replaces
    assert kept.sequences() == [(10, 13), (20, 25), (30, 31)] and kept.bytes == 100
    assert kept.after(5) == 10 and kept.after(10) == 20 and kept.after(25) == 30 and kept.after(30) is None
    assert not kept.due(9) and kept.due(10) and kept.due(12)
    assert kept.drop_behind(12) == 0 and kept.drop_behind(13) == 1     # 10..12 all behind 13
    assert kept.sequences() == [(20, 25), (30, 31)] and kept.bytes == 60
    assert kept.due(21) and kept.pop() == b"d" * 50 and kept.bytes == 10
    digest = kept.state_items()
    assert digest[:3] == (10, 1_000, 10) and [f for f, _, _ in digest[3]] == [30]
    assert kept.clear() == 1 and not kept and kept.bytes == 0


def test_the_buffer_refuses_what_passes_either_cap():
    by_count = GapBuffer(max_packets=2, max_bytes=1_000)
    assert [by_count.keep(s, s + 1, b"p") for s in (5, 6, 7)] == [KEPT, KEPT, FULL]
    assert by_count.keep(6, 8, b"q") is KEPT             # a replacement takes no new place
    by_size = GapBuffer(max_packets=10, max_bytes=100)
    assert by_size.keep(5, 6, b"p" * 60) is KEPT and by_size.keep(6, 7, b"q" * 41) is FULL
    assert by_size.keep(6, 7, b"q" * 40) is KEPT and by_size.bytes == 100
    assert GapBuffer(0, 0).keep(5, 6, b"p") is FULL


# --- through the engine -------------------------------------------------------------------------

def test_two_lost_then_five_past_asks_for_the_two_and_applies_the_five_in_order():
    engine, venue, feed, asked = _past_the_gap()
    assert asked == [(7, 2)]                         # only 7 and 8: 9..15 came and are kept
    assert engine.counts["md_gap_packets"] == 5 and engine.counts["md_gap_kept"] == 5
    assert engine.gap_kept.sequences() == [(9, 10), (10, 11), (11, 14), (14, 15), (15, 16)]
    assert engine.stale and engine.book.bids(ACME, 5) == [(999_900, 500), (999_800, 500), (999_700, 500)]
    answer = run(engine, venue, md(feed.resend(7, 2), 3 * S + 20 * MS), 3 * S + 20 * MS)
    assert "book-recovered" in alerts(answer) and not engine.stale and not requests(answer)
    assert alerts(answer).count("book-recovered") == 1   # once, when the last kept packet closed the gap
    assert engine.counts["md_gap_applied"] == 5 and not engine.gap_kept and engine.gap_kept.bytes == 0
    assert engine.tracker.next_expected == 16 and not engine.tracker.in_gap
    assert engine.counts["md_messages"] == 6 + 9     # every message once
    whole = _no_gap_book()
    assert engine.book.state_items() == whole.book.state_items()
    assert engine.book.bids(ACME, 5) == whole.book.bids(ACME, 5)
    assert engine.book.asks(ACME, 5) == whole.book.asks(ACME, 5)
    assert engine.mid2[ACME] == whole.mid2[ACME]


def test_the_kept_packets_are_applied_in_sequence_order_whatever_order_they_came_in():
    engine, venue, feed, asked = _past_the_gap(lambda flow: [flow[4], flow[2], flow[5], flow[1], flow[3]])
    assert asked == [(7, 7)]                         # 14 came first: 7..13 were missing then
    assert engine.gap_kept.sequences() == [(9, 10), (10, 11), (11, 14), (14, 15), (15, 16)]
    again = run(engine, venue, Timer(3 * S + 600 * MS), 3 * S + 600 * MS)
    assert requests(again) == [(7, 2)]               # asked again: only what is still missing
    run(engine, venue, md(feed.resend(7, 2), 3 * S + 20 * MS), 3 * S + 20 * MS)
    assert not engine.stale and engine.book.state_items() == _no_gap_book().book.state_items()


@pytest.mark.parametrize("count, applied, discarded", [
    (3, 4, 1),          # the answer brings 7..9: the kept 9 is behind it (discarded), 10 on applied
    (4, 3, 2),          # 7..10: the kept 9 and 10 discarded
    (6, 3, 2),          # 7..12: 9 and 10 discarded, the kept 11..13 applied for its 13 only
])
def test_an_answer_overlapping_the_kept_packets(count, applied, discarded):
    engine, venue, feed, _ = _past_the_gap()
    answer = run(engine, venue, md(feed.resend(7, count), 3 * S + 20 * MS), 3 * S + 20 * MS)
    assert "book-recovered" in alerts(answer) and not engine.stale and not engine.gap_kept
    assert engine.counts["md_gap_applied"] == applied and engine.counts["md_gap_discarded"] == discarded
    assert engine.counts["md_messages"] == 6 + 9     # every message once, the overlaps skipped
    assert engine.book.state_items() == _no_gap_book().book.state_items()


def test_a_packet_past_the_gap_that_came_twice_is_kept_once():
    engine, venue, feed, asked = _past_the_gap(lambda flow: [flow[1], flow[2], flow[1], flow[2]])
    assert asked == [(7, 2)] and engine.gap_kept.sequences() == [(9, 10), (10, 11)]
    assert engine.counts["md_gap_kept"] == 2 and engine.counts["md_gap_discarded"] == 2
    assert engine.counts["md_gap_packets"] == 4      # every packet past the gap counted
    run(engine, venue, md(feed.resend(7, 2), 3 * S + 20 * MS), 3 * S + 20 * MS)
    assert engine.counts["md_gap_applied"] == 2 and engine.tracker.next_expected == 11


def test_a_packet_over_the_cap_is_dropped_counted_alerted_and_asked_for_again():
    engine, venue, feed, refs, _ = quoted_book(EngineConfig(quoted=("ACME",), gap_buffer_packets=2))
    flow = _flow(feed, refs)
    out = []
    for i, pkt in enumerate(flow[1:]):
        out += run(engine, venue, md(pkt, 3 * S + i * MS), 3 * S + i * MS)
    assert requests(out) == [(7, 2)]
    assert engine.gap_kept.sequences() == [(9, 10), (10, 11)]
    assert engine.counts["md_gap_kept"] == 2 and engine.counts["md_gap_dropped"] == 3
    # alerted: the first at once, the two after it in the same second held back by the gate (counted)
    assert alerts(out).count("md-gap-buffer-full") == 1 and engine.counts["alerts_held"] == 2
    note = [a for a in out if "md-gap-buffer-full" in getattr(a, "summary", "")][0]
    assert "messages 11..13 past the gap at 7 not kept" in note.summary
    # the answer fills 7..8, the kept 9 and 10 follow; 11..15 were dropped: asked for at once
    now = 3 * S + 20 * MS
    answer = run(engine, venue, md(feed.resend(7, 2), now), now)
    assert engine.stale and engine.counts["md_gap_applied"] == 2 and requests(answer) == [(11, 5)]
    done = run(engine, venue, md(feed.resend(11, 5), now + MS), now + MS)
    assert "book-recovered" in alerts(done) and not engine.stale
    assert engine.book.state_items() == _no_gap_book().book.state_items()


def test_a_packet_over_the_byte_cap_is_dropped_and_asked_for_again():
    engine, venue, feed, refs, _ = quoted_book(EngineConfig(quoted=("ACME",), gap_buffer_bytes=130))
    flow = _flow(feed, refs)
    for i, pkt in enumerate(flow[1:]):
        run(engine, venue, md(pkt, 3 * S + i * MS), 3 * S + i * MS)
    kept = engine.gap_kept
    assert kept.bytes <= 130 and engine.counts["md_gap_dropped"] == 5 - len(kept) > 0
    answer = run(engine, venue, md(feed.resend(7, 2), 3 * S + 20 * MS), 3 * S + 20 * MS)
    (first, count), = requests(answer)
    run(engine, venue, md(feed.resend(first, count), 3 * S + 21 * MS), 3 * S + 21 * MS)
    assert not engine.stale and engine.book.state_items() == _no_gap_book().book.state_items()


def test_the_re_request_on_the_timer_asks_for_the_missing_only():
    engine, venue, feed, _ = _past_the_gap()
    again = run(engine, venue, Timer(3 * S + 600 * MS), 3 * S + 600 * MS)
    assert requests(again) == [(7, 2)]


def test_a_session_change_discards_the_old_sessions_kept_packets():
    engine, venue, feed, _ = _past_the_gap()
    # the followed session ends (its end past the gap): the next session is followed from its start
    run(engine, venue, md(moldudp64.encode(moldudp64.EndOfSession(feed.session, feed.seq)), 4 * S), 4 * S)
    restarted = Feed("SESSION002")
    msgs, _ = two_sided(restarted, BOLT, 504_900, 505_100, tick=100)
    out = run(engine, venue, md(restarted.packet(*msgs), 4 * S), 4 * S)
    assert "md-session-change" in alerts(out) and engine.tracker.session == "SESSION002"
    assert not engine.gap_kept and engine.counts["md_gap_discarded"] == 5


# --- saved state --------------------------------------------------------------------------------

def _snapshot(engine: Engine) -> Engine:
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(engine)           # as recovery.snapshot writes it
    return pickle.loads(buf.getvalue())


@pytest.mark.parametrize("compiled", [True, False])
def test_a_snapshot_with_kept_packets_carries_on_as_the_engine_never_stopped(compiled):
    engine = Engine(EngineConfig(), SYMBOLS, gateway(), compiled=compiled)
    for event in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(event)
    venue, feed = Venue(), Feed()
    msgs, refs = two_sided(feed, ACME, 999_900, 1_000_100)
    run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    flow = _flow(feed, refs)
    for i, pkt in enumerate(flow[1:4]):
        run(engine, venue, md(pkt, 3 * S + i * MS), 3 * S + i * MS)
    assert len(engine.gap_kept) == 3
    copy = _snapshot(engine)
    assert copy.gap_kept.sequences() == engine.gap_kept.sequences()
    assert copy.state_hash() == engine.state_hash()
    rest = [md(flow[4], 3 * S + 10 * MS), md(flow[5], 3 * S + 11 * MS), Timer(3 * S + 12 * MS),
            md(feed.resend(7, 2), 3 * S + 20 * MS), Timer(3 * S + 120 * MS)]
    copy_venue = Venue()
    copy_venue.orders, copy_venue.match = dict(venue.orders), venue.match
    sent = 0
    for event in rest:
        a = run(engine, venue, event, event.now_ns)
        b = run(copy, copy_venue, event, event.now_ns)
        assert fingerprint(a) == fingerprint(b)
        assert copy.state_hash() == engine.state_hash()
        sent += sum(type(x) is SendOrder for x in a)
    assert not engine.stale and engine.counts["md_gap_applied"] == 5
    assert sent                                      # quoting again once the gap closed


def test_the_kept_packets_are_in_the_state_hash():
    engine, _, _, _ = _past_the_gap()
    copy = _snapshot(engine)
    copy.gap_kept.pop()                              # as a snapshot that lost the buffer would be
    assert copy.state_hash() != engine.state_hash()


def test_a_snapshot_from_before_the_buffer_loads_with_none_kept():
    engine, _, _, _ = _past_the_gap(lambda flow: [])
    state = engine.__getstate__()
    del state["gap_kept"]
    for name in ("md_gap_kept", "md_gap_applied", "md_gap_dropped", "md_gap_discarded"):
        del state["counts"][name]
    copy = Engine.__new__(Engine)
    copy.__setstate__(state)
    assert not copy.gap_kept and copy.counts["md_gap_kept"] == 0
    assert copy.state_hash() == engine.state_hash()


# --- lockstep ------------------------------------------------------------------------------------

def _gappy_session(seed: int, steps: int, config: EngineConfig) -> dict:
    """A seeded session through compiled and reference engines in lockstep: order-level flow
    where now and then packets are lost and others come past the gap (some twice, some out of
    order), the engines' re-requests answered (sometimes in two packets, sometimes late, the
    timer asking again), with the state hash compared after every event."""
    rng = random.Random(seed)
    engines = Lockstep(config)
    venue, feed = Venue(), Feed()
    k, ref = engines.kernel, engines.reference
    seen = {"gaps": 0, "answers": 0}
    live: list[int] = []
    mid = 1_000_000
    now = next_clock = 2 * S
    pending: list[tuple[int, int]] = []              # re-requests not yet answered
    held: list[bytes] = []                           # packets past a gap not yet delivered

    def feed_event(event):
        nonlocal next_clock
        if event.now_ns >= next_clock:           # the clock sampled each second, as the runner does
            engines.on_event(ClockSample(event.now_ns, True))
            next_clock += S
        out = run(engines, venue, event, event.now_ns)
        assert k.state_hash() == ref.state_hash(), f"state differs after {event}"
        pending.extend(requests(out))

    def messages():
        msgs = []
        for _ in range(rng.randrange(1, 4)):
            if live and rng.random() < 0.3:
                msgs.append(Feed.delete(live.pop(rng.randrange(len(live)))))
            else:
                side = rng.choice("BS")
                m = feed.add(ACME, side, 100 * rng.randrange(1, 5),
                             mid + (-1 if side == "B" else 1) * 100 * rng.randrange(1, 6))
                live.append(m.order_ref)
                msgs.append(m)
        return msgs

    msgs, _ = two_sided(feed, ACME, mid - 100, mid + 100)
    feed_event(md(feed.packet(*msgs), now))
    for _ in range(steps):
        now += rng.randrange(200_000, 2_000_000)
        if rng.random() < 0.08:
            seen["gaps"] += 1
            for _ in range(rng.randrange(1, 3)):
                feed.packet(*messages())             # lost on the wire
            held = [feed.packet(*messages()) for _ in range(rng.randrange(1, 8))]
            if rng.random() < 0.3:
                held.insert(rng.randrange(len(held) + 1), rng.choice(held))   # the network's duplicate
            if rng.random() < 0.3:
                rng.shuffle(held)
            for pkt in held:
                now += 100_000
                feed_event(md(pkt, now))
            held = []
        else:
            feed_event(md(feed.packet(*messages()), now))
        while pending and rng.random() < 0.9:
            first, count = pending.pop(0)
            seen["answers"] += 1
            now += 50_000
            if count > 1 and rng.random() < 0.3:     # answered in two packets
                cut = rng.randrange(1, count)
                feed_event(md(feed.resend(first, cut), now))
                feed_event(md(feed.resend(first + cut, count - cut), now + 10_000))
            else:
                feed_event(md(feed.resend(first, count), now))
        if rng.random() < 0.05:
            now += 600 * MS                          # long enough for the timer to ask again
            feed_event(Timer(now))
    seen["kept"], seen["applied"] = k.counts["md_gap_kept"], k.counts["md_gap_applied"]
    seen["dropped"], seen["discarded"] = k.counts["md_gap_dropped"], k.counts["md_gap_discarded"]
    seen["orders"] = k.counts["orders_sent"]
    assert not k.stale or k.tracker.in_gap
    assert k.summary() == ref.summary()
    return seen


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_and_reference_engines_keep_and_apply_identically(seed):
    seen = _gappy_session(seed, 400, EngineConfig(quoted=("ACME",)))
    assert seen["gaps"] > 10 and seen["kept"] > 30 and seen["applied"] > 20 and seen["discarded"] > 0
    assert seen["orders"] > 10                       # quoting between the gaps, pulled in them


def test_compiled_and_reference_engines_drop_over_the_cap_identically():
    seen = _gappy_session(3, 400, EngineConfig(quoted=("ACME",), gap_buffer_packets=2))
    assert seen["gaps"] > 10 and seen["dropped"] > 10 and seen["applied"] > 10 and seen["orders"] > 10
