"""Faults on the market-data feed, each in the reference engine and the compiled one: a message of
unknown type is skipped and the feed goes on; a malformed message makes the book stale at once
and is re-requested, and escalates (a latched kill) when its re-request brings it back unreadable;
a packet of another MoldUDP64 session never wipes the books unless that session streams
consistently while ours has ended or gone silent; End of Session pulls the quotes at once; a
replace whose new order is refused still reprices on the top it changed."""
from __future__ import annotations

import pytest

from mm_core.book import Book, BookError
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, RequestRetransmit, SendOrder, Timer
from mm_core.fastbook import FastBook
from mm_core.mdpath import MarketDataPath, apply_messages
from mm_core.protocol import itch, moldudp64
from mm_core.risk import TradingState
from mm_core.types import OrderKind
from tests.mm_core.wire import ACME, MS, S, SYMBOLS, Feed, gateway, md, two_sided

BID, ASK = 1_000_000, 1_001_000
UNKNOWN = b"z" + b"\x00" * 11                 # a type this codec does not know (a newer ITCH message)


def alerts(actions) -> list[str]:
    return [a.summary.split(":")[0] for a in actions if hasattr(a, "summary")]


def cancels(actions) -> list:
    return [a for a in actions if isinstance(a, SendOrder) and a.intent.kind is OrderKind.CANCEL]


def requests(actions) -> list[tuple[int, int]]:
    return [(a.sequence, a.count) for a in actions if isinstance(a, RequestRetransmit)]


def quoting(compiled: bool, session: str = "TEST000001"):
    """An engine quoting ACME on a two-sided book of messages 1..6."""
    engine = Engine(EngineConfig(), SYMBOLS, gateway(), compiled=compiled)
    for event in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(event)
    feed = Feed(session)
    msgs, refs = two_sided(feed, ACME, BID, ASK)
    acts = engine.on_event(md(feed.packet(*msgs), S + MS))
    assert [a.intent.kind for a in acts if isinstance(a, SendOrder)] == [OrderKind.ENTER, OrderKind.ENTER]
    return engine, feed, refs


def raw_packet(feed: Feed, *raw: bytes) -> bytes:
    """A packet of raw message bytes at the feed's next sequence (kept for re-requests)."""
    for i, r in enumerate(raw):
        feed.history[feed.seq + i] = r
    pkt = moldudp64.encode(moldudp64.Packet(feed.session, feed.seq, raw))
    feed.seq += len(raw)
    return pkt


compiled_or_not = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])


@compiled_or_not
def test_an_unknown_message_type_is_skipped_and_the_feed_goes_on(compiled):
    engine, feed, _ = quoting(compiled)
    before = len(engine.book.orders)
    good1, good2 = (itch.encode(feed.add(ACME, side, 100, px)) for side, px in (("B", 999_900), ("S", 1_001_100)))
    out = engine.on_event(md(raw_packet(feed, good1, UNKNOWN, good2), S + 2 * MS))
    assert alerts(out) == ["md-unknown-message"] and "sequence 8" in out[0].summary
    # both valid messages applied, the unknown one's sequence used up: no gap, nothing re-requested
    assert len(engine.book.orders) == before + 2 and engine.tracker.next_expected == 10
    assert not engine.stale and not engine.tracker.in_gap and requests(out) == []
    assert engine.counts["md_skipped"] == 1 and engine.counts["protocol_errors"] == 0
    later = engine.on_event(md(feed.packet(feed.add(ACME, "B", 100, 999_800)), S + 3 * MS))
    assert requests(later) == [] and engine.tracker.next_expected == 11 and not engine.stale


def malformed(feed: Feed) -> tuple[bytes, bytes, bytes]:
    """A valid add, a known message cut one byte short, another valid add."""
    good1 = itch.encode(feed.add(ACME, "B", 100, 999_900))
    bad = itch.encode(feed.add(ACME, "B", 100, 999_700))[:-1]
    good2 = itch.encode(feed.add(ACME, "S", 100, 1_001_100))
    return good1, bad, good2


@compiled_or_not
def test_a_malformed_message_makes_the_book_stale_at_once_and_is_re_requested(compiled):
    engine, feed, _ = quoting(compiled)
    before = len(engine.book.orders)
    good1, bad, good2 = malformed(feed)
    out = engine.on_event(md(raw_packet(feed, good1, bad, good2), S + 2 * MS))
    assert alerts(out)[:2] == ["md-protocol-error", "book-stale"] and "sequence 8" in out[0].summary
    assert len(cancels(out)) == 2 and engine.stale
    # the message before it applied; it and the one after are missing again, re-requested
    assert len(engine.book.orders) == before + 1 and engine.tracker.next_expected == 8
    assert engine.tracker.in_gap and requests(out) == [(8, 2)]
    # the re-request server has the right bytes: the book is whole and current again
    fixed = itch.encode(itch.AddOrder(ACME, 0, 0, feed.ref(), "B", 100, "ACME", 999_700))
    reply = moldudp64.encode(moldudp64.Packet(feed.session, 8, (fixed, good2)))
    back = engine.on_event(md(reply, S + 3 * MS))
    assert "book-recovered" in alerts(back) and not engine.stale and engine.tracker.next_expected == 10
    assert len(engine.book.orders) == before + 3 and engine.risk.state is TradingState.ACTIVE


@compiled_or_not
def test_the_same_message_unreadable_again_after_its_re_request_escalates(compiled):
    engine, feed, _ = quoting(compiled)
    good1, bad, good2 = malformed(feed)
    engine.on_event(md(raw_packet(feed, good1, bad, good2), S + 2 * MS))
    assert engine.risk.state is TradingState.ACTIVE
    reply = moldudp64.encode(moldudp64.Packet(feed.session, 8, (bad, good2)))
    out = engine.on_event(md(reply, S + 3 * MS))
    assert alerts(out)[:2] == ["md-protocol-error", "md-unrecoverable"]
    assert engine.risk.state is TradingState.HALTED and engine.counts["md_unrecoverable"] == 1
    assert engine.stale and engine.tracker.next_expected == 8
    # once only: the timer's next re-request coming back the same way does not kill again
    engine.on_event(Timer(S + 3 * MS + engine.cfg.rerequest_timeout_ns + MS))
    again = engine.on_event(md(reply, S + 4 * MS + engine.cfg.rerequest_timeout_ns))
    assert "md-unrecoverable" not in alerts(again) and engine.counts["md_unrecoverable"] == 1


@compiled_or_not
def test_a_network_duplicate_of_the_unreadable_packet_is_not_its_re_requests_answer(compiled):
    engine, feed, _ = quoting(compiled)
    good1, bad, good2 = malformed(feed)
    first = raw_packet(feed, good1, bad, good2)
    engine.on_event(md(first, S + 2 * MS))
    hash_after_first = engine.state_hash()
    # the same bytes again before the re-request was answered (UDP duplicates): counted, not escalated
    dup = engine.on_event(md(first, S + 2 * MS + 1000))
    assert alerts(dup) == ["md-duplicate-unreadable"] and "sequence 8" in dup[0].summary
    assert engine.risk.state is TradingState.ACTIVE and engine.counts["md_duplicates"] == 1
    assert engine.counts["md_unrecoverable"] == 0 and engine.counts["protocol_errors"] == 1
    assert engine.stale and engine.tracker.next_expected == 8 and engine.state_hash() != hash_after_first
    # the re-request's answer, unreadable again: that escalates
    reply = moldudp64.encode(moldudp64.Packet(feed.session, 8, (bad, good2)))
    out = engine.on_event(md(reply, S + 3 * MS))
    assert alerts(out)[:2] == ["md-protocol-error", "md-unrecoverable"]
    assert engine.risk.state is TradingState.HALTED and engine.counts["md_unrecoverable"] == 1


@compiled_or_not
def test_a_retransmission_repeating_the_unreadable_packet_exactly_escalates_at_its_second_copy(compiled):
    """One identical copy is the network's duplicate; a venue that re-sends the very same bytes
    each time is escalated at the next copy (never left re-requesting for ever)."""
    engine, feed, _ = quoting(compiled)
    good1, bad, good2 = malformed(feed)
    first = raw_packet(feed, good1, bad, good2)
    engine.on_event(md(first, S + 2 * MS))
    engine.on_event(md(first, S + 3 * MS))
    assert engine.risk.state is TradingState.ACTIVE
    out = engine.on_event(md(first, S + 4 * MS))
    assert alerts(out)[:2] == ["md-protocol-error", "md-unrecoverable"]
    assert engine.risk.state is TradingState.HALTED
    assert (engine.counts["md_duplicates"], engine.counts["md_unrecoverable"]) == (1, 1)


@compiled_or_not
def test_a_flood_of_unknown_messages_is_counted_in_full_and_alerted_once_a_second(compiled):
    engine, feed, _ = quoting(compiled)
    flood = []
    for i in range(50):
        flood += engine.on_event(md(raw_packet(feed, UNKNOWN), S + 2 * MS + i * MS))
    assert alerts(flood) == ["md-unknown-message"]
    assert engine.counts["md_skipped"] == 50 and engine.counts["alerts_held"] == 49
    # the timer once the window passed names what was held back; then the window starts again
    named = engine.on_event(Timer(S + 2 * MS + 1_000 * MS))
    [summary] = [a.summary for a in named if hasattr(a, "summary") and a.summary.startswith("md-unknown")]
    assert "49 more held back" in summary
    assert alerts(engine.on_event(md(raw_packet(feed, UNKNOWN), S + 1_100 * MS))) == []
    later = engine.on_event(md(raw_packet(feed, UNKNOWN), S + 2_100 * MS))
    assert alerts(later) == ["md-unknown-message"] and "(1 more held back since the last)" in later[0].summary
    assert engine.counts["md_skipped"] == 52 and engine.counts["alerts_held"] == 50


@compiled_or_not
def test_a_flood_of_another_sessions_packets_is_counted_in_full_and_alerted_once_a_second(compiled):
    engine, feed, _ = quoting(compiled, "SESSION001")
    out = []
    for i in range(30):
        out += engine.on_event(md(moldudp64.encode(moldudp64.Heartbeat("SESSION00X", 5 + i)), S + 2 * MS + i * MS))
    assert alerts(out).count("md-foreign-session") == 1
    assert engine.counts["md_foreign"] == 30 and engine.counts["alerts_held"] == 29
    summary = engine.summary()
    assert summary["counts"]["md_foreign"] == 30 and summary["counts"]["alerts_held"] == 29


@compiled_or_not
def test_a_packet_of_another_session_does_not_wipe_the_books(compiled):
    engine, feed, _ = quoting(compiled, "SESSION001")
    before = engine.book.state_items()
    stray = moldudp64.encode(moldudp64.Heartbeat("SESSION00X", 5))
    out = engine.on_event(md(stray, S + 2 * MS))
    assert alerts(out) == ["md-foreign-session", "book-stale"] and len(cancels(out)) == 2
    assert engine.book.state_items() == before and engine.tracker.session == "SESSION001"
    assert engine.md.ended_sessions == frozenset() and requests(out) == []
    assert engine.counts["md_foreign"] == 1 and engine.counts["md_session_changes"] == 0
    # the real session goes on: its next packet shows the book current, and applies
    back = engine.on_event(md(feed.packet(feed.add(ACME, "B", 100, 999_000)), S + 3 * MS))
    assert alerts(back) == ["book-recovered"] and not engine.stale and engine.tracker.next_expected == 8
    # another session streaming consistently from its sequence 1 while ours is live: not followed
    other = Feed("SESSION00Y")
    for k in range(3):
        engine.on_event(md(other.packet(other.add(ACME, "B", 100, 990_000 + k)), S + (4 + k) * MS))
        assert engine.tracker.session == "SESSION001"
        engine.on_event(md(feed.packet(feed.add(ACME, "S", 100, 1_002_000 + k)), S + (4 + k) * MS + 1))
    assert engine.md_heard_ns == S + 6 * MS + 1 and engine.counts["md_session_changes"] == 0


@compiled_or_not
def test_a_new_session_is_followed_once_the_old_one_ended(compiled):
    engine, feed, _ = quoting(compiled, "SESSION001")
    out = engine.on_event(md(moldudp64.encode(moldudp64.EndOfSession(feed.session, feed.seq)), S + 2 * MS))
    assert alerts(out)[:2] == ["md-end-of-session", "book-stale"]
    restarted = Feed("SESSION002")
    new = engine.on_event(md(restarted.packet(restarted.add(ACME, "B", 300, 999_500)), S + 3 * MS))
    assert alerts(new)[0] == "md-session-change" and engine.tracker.session == "SESSION002"
    assert engine.book.best_bid(ACME) == 999_500 and engine.book.best_ask(ACME) == 0
    # the ended session's late packet is refused, never followed back
    late = engine.on_event(md(feed.packet(feed.add(ACME, "S", 100, 1_000_000)), S + 4 * MS))
    assert alerts(late) == ["md-protocol-error"] and engine.tracker.session == "SESSION002"


@compiled_or_not
def test_a_new_session_heard_past_its_start_is_followed_once_it_streams_and_ours_is_silent(compiled):
    engine, feed, _ = quoting(compiled, "SESSION001")
    limit = engine.risk.limits.max_market_age_ns
    restarted = Feed("SESSION002")
    restarted.packet(restarted.add(ACME, "B", 300, 999_500))              # its sequence 1, lost
    t = S + MS + limit + MS                                                 # ours silent past the limit
    first = engine.on_event(md(restarted.packet(restarted.add(ACME, "S", 300, 1_000_500)), t))
    assert alerts(first)[0] == "md-foreign-session" and engine.tracker.session == "SESSION001"
    second = engine.on_event(md(restarted.packet(restarted.add(ACME, "S", 300, 1_000_600)), t + MS))
    assert alerts(second)[0] == "md-session-change" and engine.tracker.session == "SESSION002"
    # its 1 and 2 asked for (was (1, 3): 3, kept past the gap, was asked for again)
    assert engine.stale and engine.tracker.in_gap and requests(second) == [(1, 2)]
    reply = engine.on_event(md(restarted.resend(1, 2), t + 2 * MS))
    assert "book-recovered" in alerts(reply) and engine.book.best_bid(ACME) == 999_500


@compiled_or_not
def test_end_of_session_pulls_the_quotes_at_once_and_the_book_stays_stale(compiled):
    engine, feed, _ = quoting(compiled)
    out = engine.on_event(md(moldudp64.encode(moldudp64.EndOfSession(feed.session, feed.seq)), S + 2 * MS))
    assert alerts(out) == ["md-end-of-session", "book-stale"] and len(cancels(out)) == 2
    assert engine.stale and engine.counts["md_ends"] == 1
    # a heartbeat of the ended session shows nothing current: no recovery, no new quotes
    hb = engine.on_event(md(moldudp64.encode(moldudp64.Heartbeat(feed.session, feed.seq)), S + 3 * MS))
    assert hb == [] and engine.stale


@compiled_or_not
def test_a_replace_whose_new_order_is_refused_reprices_on_the_changed_top(compiled):
    engine, feed, refs = quoting(compiled)
    fair = engine.fv.fair[ACME]
    # the best bid replaced by a new reference already resting (the best ask's): refused
    replace = itch.OrderReplace(0, 0, 0, refs[BID], refs[ASK], 500, BID + 500)
    out = engine.on_event(md(feed.packet(replace), S + 2 * MS))
    assert alerts(out)[0] == "book-error" and engine.book.best_bid(ACME) == BID - 100
    assert engine.fv.fair[ACME] < fair      # the original is gone: the top moved, fair value with it


@pytest.mark.parametrize("book_type", [Book, FastBook])
def test_both_books_name_the_symbol_a_refused_replace_changed(book_type):
    book = book_type(4, 3)
    book.add(1, ACME, True, 100, 1000)
    book.add(2, ACME, False, 100, 1100)
    with pytest.raises(BookError, match="duplicate order reference 2") as info:
        book.replace(1, 2, 100, 1050)
    assert info.value.changed == ACME and book.best_bid(ACME) == 0
    with pytest.raises(BookError) as info:
        book.add(2, ACME, True, 100, 1000)
    assert info.value.changed == -1


def test_the_packet_path_and_the_reference_agree_on_a_refused_replace():
    fast, ref = MarketDataPath(4, [True] * 4), Book(4, 3)
    feed = Feed()
    adds = [feed.add(ACME, "B", 100, 1000, ref=1), feed.add(ACME, "S", 100, 1100, ref=2)]
    replace = itch.OrderReplace(0, 0, 0, 1, 2, 100, 1050)
    for msgs in (adds, [replace]):
        update = fast.on_packet(feed.packet(*msgs))
        expected = apply_messages(ref, msgs, [True] * 4)
        assert update.touched == expected.touched == [ACME] and update.errors == expected.errors
    # the first packet (the session not known yet) went the Python way, the replace through C
    assert fast.fast_packets == 1 and fast.book.state_items() == ref.state_items()
