"""Used locates belong to the venue's trading day: the ITCH System Event 'O' (start of messages) of a
later day gives them back, one of the same day (a venue restart) does not. The day is the calendar
date of the venue's midnight the event's timestamp counts from; a journaled session replays to the
same gateway state."""
from __future__ import annotations

import calendar

from journal import Journal, Reader, RecordType
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, Timer
from mm_core.protocol import itch
from mm_core.types import Side
from recovery.replay import replay_journal
from tests.mm_core.wire import ACME, LIMITS_TEXT, MS, SYMBOLS, Feed, Venue, gateway, md, two_sided
from tests.recovery.journaling import RunnerLike

H = 3_600 * 1_000_000_000
DAY_NS = 24 * H
LIMITS = (LIMITS_TEXT.replace("easy_to_borrow = [1, 2, 3]", "easy_to_borrow = [2, 3]")
          .replace("[reg_sho.locates]             # symbol id = shares located for the day (used up by short sales)",
                   "[reg_sho.locates]\n1 = 5000"))
# 2026-11-20, 04:00 US/Eastern (EST, UTC-5): 09:00 UTC
MIDNIGHT = calendar.timegm((2026, 11, 20, 5, 0, 0)) * 1_000_000_000
DAY = (MIDNIGHT + 12 * H) // DAY_NS          # days since 1970-01-01 of 2026-11-20


def engine() -> Engine:
    return Engine(EngineConfig(), SYMBOLS, gateway(LIMITS))


def start_of_day(feed: Feed, since_midnight: int) -> itch.SystemEvent:
    return itch.SystemEvent(0, 0, since_midnight, "O")


class Session:
    """A journaled session with the scripted venue answering every order."""

    def __init__(self, journal: Journal) -> None:
        self.shell = RunnerLike(engine(), journal)
        self.venue = Venue()
        self.feed = Feed()

    def input(self, event) -> None:
        pending = self.shell.feed(event)
        for _ in range(20):
            replies = self.venue.answer(pending, event.now_ns)
            if not replies:
                return
            pending = [a for r in replies for a in self.shell.feed(r)]

    def healthy(self, now: int) -> None:
        self.input(ClockSample(now, True))
        self.input(Timer(now))

    def packet(self, now: int, *messages) -> None:
        self.input(md(self.feed.packet(*messages), now))


def test_a_later_trading_day_gives_back_the_locates_a_short_sale_used(tmp_path):
    path = str(tmp_path / "j")
    t = MIDNIGHT + 4 * H
    with Journal(path) as journal:
        s = Session(journal)
        eng = s.shell.engine
        s.shell.start(t - 2 * MS)
        s.healthy(t - MS)
        book, _ = two_sided(s.feed, ACME, 999_900, 1_000_100)
        s.packet(t, start_of_day(s.feed, 4 * H), *book)
        assert eng.risk.trading_day == DAY
        ask = eng.oms.working_order(ACME, Side.SELL)
        assert ask is not None and ask.mark == "T", ask      # flat: the ask is a short sale
        s.input(s.venue.fill(ask.token, ask.leaves, t + MS))
        sold = ask.qty
        assert eng.risk.locates_used(ACME) == sold > 0
        # the venue restarts the same day: a new start of messages, the same day, still used
        s.healthy(t + H)
        s.packet(t + H, start_of_day(s.feed, 5 * H))
        assert eng.risk.trading_day == DAY and eng.risk.locates_used(ACME) == sold
        # the next day (received a few seconds late, the clock 37 s ahead as TAI would be)
        nxt = t + DAY_NS + 37 * 1_000_000_000
        s.healthy(nxt)
        s.packet(nxt, start_of_day(s.feed, 4 * H))
        assert eng.risk.trading_day == DAY + 1 and eng.risk.locates_used(ACME) == 0
        live = eng.state_hash()
    replayed = replay_journal(path, engine())
    assert replayed.deterministic, [d.detail for d in replayed.divergences[:3]]
    assert replayed.engine.risk.trading_day == DAY + 1 and replayed.engine.risk.locates_used(ACME) == 0
    assert replayed.state_hash == live
    # replayed to before the next day's start, the used locates are there
    with Reader(path) as reader:
        last_packet = max(r.seq for r in reader.records(rtypes=[RecordType.MD_PACKET]))
    before = replay_journal(path, engine(), last_seq=last_packet - 1)
    assert before.engine.risk.locates_used(ACME) == sold
