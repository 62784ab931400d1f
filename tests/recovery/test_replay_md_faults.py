"""A session whose feed goes wrong in every way the engine now handles (a message of unknown type,
a replace refused after its original went, a packet of another session, a malformed message
re-requested, then one unreadable again after its re-request, End of Session, a new session)
replays through a fresh engine to the same orders and state hash, packet by packet and on the
batch path."""
from __future__ import annotations

import pytest

from mm_core.events import ClockSample, MarketData, Timer
from mm_core.protocol import itch, moldudp64
from recovery.replay import replay_journal
from tests.mm_core.wire import ACME, MS, S, Feed, two_sided
from tests.recovery.journaling import fresh_engine, write_session


def packet(feed: Feed, *raw: bytes, first: int | None = None) -> bytes:
    seq = feed.seq if first is None else first
    if first is None:
        feed.seq += len(raw)
    return moldudp64.encode(moldudp64.Packet(feed.session, seq, raw))


def faulty_feed() -> list:
    feed = Feed("SESSION001")
    msgs, refs = two_sided(feed, ACME, 1_000_000, 1_001_000)
    add = lambda side, px: itch.encode(feed.add(ACME, side, 100, px))   # noqa: E731
    feeds = [feed.packet(*msgs),
             packet(feed, add("B", 999_900), b"z" + bytes(11), add("S", 1_001_100)),          # unknown type
             feed.packet(itch.OrderReplace(0, 0, 0, refs[1_000_000], refs[1_001_000], 500, 1_000_500)),
             moldudp64.encode(moldudp64.Heartbeat("SESSION00X", 5)),                          # a stray
             feed.packet(feed.add(ACME, "B", 100, 999_500))]
    bad_at = feed.seq
    good, bad = add("B", 999_600), add("B", 999_700)[:-1]
    feeds += [packet(feed, good, bad), packet(feed, bad, first=bad_at + 1)]               # unrecoverable
    feeds += [moldudp64.encode(moldudp64.EndOfSession(feed.session, feed.seq))]
    restarted = Feed("SESSION002")
    feeds += [restarted.packet(*two_sided(restarted, ACME, 1_000_200, 1_001_200)[0])]
    events = [ClockSample(S, True), Timer(S)]
    for i, pkt in enumerate(feeds):
        now = S + (i + 1) * 300 * MS
        events += [MarketData(pkt, now), Timer(now + 100 * MS)]
        if i % 3 == 2:
            events.append(ClockSample(now + 150 * MS, True))
    return events


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "one-by-one"])
def test_a_faulty_feed_replays_exactly(tmp_path, batch):
    events = faulty_feed()
    shell = write_session(str(tmp_path / "j"), events)
    shell.journal.close()
    live = shell.engine
    counts = live.counts
    assert (counts["md_skipped"], counts["md_foreign"], counts["md_unrecoverable"], counts["md_ends"],
            counts["md_session_changes"]) == (1, 1, 1, 1, 1)
    result = replay_journal(str(tmp_path / "j"), fresh_engine(), batch=batch)
    assert result.deterministic and result.divergences == [] and result.orders_checked > 0
    assert result.state_hash == live.state_hash()
