"""A market-data gap through the whole engine: counted once however many packets come past it (they
are kept and applied once it is filled, so only the messages missing are asked for), re-requested
again at once when the first answer leaves part of it open (a second gap further on), and asked
for in requests of at most rerequest_max_count messages (what the venue answers to one), each
followed by the next at once."""
from mm_core.config import EngineConfig
from mm_core.events import RequestRetransmit
from mm_core.protocol import moldudp64
from tests.mm_core.test_engine import alerts, quoted_book
from tests.mm_core.wire import ACME, MS, S, md, run


def requests(actions):
    return [(a.sequence, a.count) for a in actions if isinstance(a, RequestRetransmit)]


def _gap_with_packets_past_it(engine, venue, feed, past: int, now: int = 3 * S):
    """Two messages lost, then `past` live packets from `now`: what the engine asked for first."""
    feed.packet(feed.add(ACME, "B", 100, 999_800), feed.add(ACME, "S", 100, 1_000_300))   # lost
    first = run(engine, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_700)), now), now)
    for i in range(1, past):
        run(engine, venue, md(feed.packet(feed.add(ACME, "S", 100, 1_000_400 + 100 * i)), now + i * MS), now + i * MS)
    return requests(first)


def _two_gaps(engine, venue, feed, now: int = 3 * S):
    """7 and 8 lost, 9 comes, 10 lost, 11 comes: what the engine asked for first."""
    feed.packet(feed.add(ACME, "B", 100, 999_800), feed.add(ACME, "S", 100, 1_000_300))   # lost
    first = run(engine, venue, md(feed.packet(feed.add(ACME, "B", 100, 999_700)), now), now)
    feed.packet(feed.add(ACME, "S", 100, 1_000_400))                                      # lost
    run(engine, venue, md(feed.packet(feed.add(ACME, "S", 100, 1_000_500)), now + MS), now + MS)
    return requests(first)


def test_a_gap_is_counted_once_and_the_packets_past_it_apart():
    engine, venue, feed, _, _ = quoted_book()
    gaps, past = engine.counts["gaps"], engine.counts["md_gap_packets"]
    # only the two messages missing are asked for (was (7, 3): 9, kept now, was asked for again)
    assert _gap_with_packets_past_it(engine, venue, feed, 5) == [(7, 2)]
    assert engine.counts["gaps"] - gaps == 1          # was 5: one per packet past the gap
    assert engine.counts["md_gap_packets"] - past == 5
    assert engine.counts["md_gap_kept"] == 5 and engine.gap_kept.sequences() == [(s, s + 1) for s in range(9, 14)]


def test_an_answer_that_leaves_the_gap_open_is_followed_by_the_next_request_at_once():
    engine, venue, feed, _, _ = quoted_book()
    assert _two_gaps(engine, venue, feed) == [(7, 2)]    # 9 and 11 kept
    now = 3 * S + 10 * MS                                # long before rerequest_timeout
    answer = run(engine, venue, md(feed.resend(7, 2), now), now)
    assert engine.stale and "book-recovered" not in alerts(answer)
    assert engine.tracker.next_expected == 10 and engine.counts["md_gap_applied"] == 1   # 9 applied
    assert requests(answer) == [(10, 1)]                 # the rest, without the 500 ms wait
    request = [a for a in answer if isinstance(a, RequestRetransmit)][0]
    assert moldudp64.decode_request(request.packet) == moldudp64.RequestPacket(feed.session, 10, 1)
    done = run(engine, venue, md(feed.resend(10, 1), now + MS), now + MS)
    assert "book-recovered" in alerts(done) and not engine.stale
    assert engine.counts["gaps"] == 1 and engine.counts["md_gap_applied"] == 2 and not engine.gap_kept


def test_a_partial_answer_waits_for_the_rest_of_the_request():
    engine, venue, feed, _, _ = quoted_book()
    assert _two_gaps(engine, venue, feed) == [(7, 2)]
    now = 3 * S + 10 * MS
    part = run(engine, venue, md(feed.resend(7, 1), now), now)
    assert requests(part) == [] and engine.stale         # 8 is still on its way
    rest = run(engine, venue, md(feed.resend(8, 1), now + MS), now + MS)
    assert requests(rest) == [(10, 1)]                   # 9 applied from the buffer; 10 missing


def test_a_second_gap_after_recovery_is_counted_again():
    engine, venue, feed, _, _ = quoted_book()
    gaps = engine.counts["gaps"]
    _gap_with_packets_past_it(engine, venue, feed, 1)
    run(engine, venue, md(feed.resend(7, 3), 3 * S + 5 * MS), 3 * S + 5 * MS)
    assert not engine.stale
    assert _gap_with_packets_past_it(engine, venue, feed, 1, 4 * S) == [(10, 2)]
    assert engine.counts["gaps"] - gaps == 2


def test_a_gap_longer_than_one_answer_is_asked_for_in_capped_requests_back_to_back():
    engine, venue, feed, _, _ = quoted_book(EngineConfig(quoted=("ACME",), rerequest_max_count=2))
    for price in (999_800, 999_810, 999_820, 999_830, 999_840):     # 7..11 lost; 12 past the gap
        feed.packet(feed.add(ACME, "B", 100, price))
    now = 3 * S
    assert requests(run(engine, venue, md(feed.packet(feed.add(ACME, "S", 100, 1_000_300)), now), now)) == [(7, 2)]
    asked = []
    for first, count in ((7, 2), (9, 2), (11, 1)):       # each answer in full, long before the timeout
        now += MS
        answer = run(engine, venue, md(feed.resend(first, count), now), now)
        asked += requests(answer)
    assert asked == [(9, 2), (11, 1)]                    # 12 was kept: not asked for (was (11, 2))
    assert "book-recovered" in alerts(answer) and not engine.stale
