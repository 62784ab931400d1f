"""A second fresh session on a venue account already used that day: it logs in for new messages
only (SoupBinTCP requested sequence 0), its journal's LoginAccepted records the sequence it joined
at, and it trades without the earlier session's messages. Recovery's full-session comparison
starts at that join point: the earlier session's messages are not missing from the journal, its
fills are listed apart from ours, and an order of it still live (the account's exposure that
nothing manages) is adopted and cancelled. The embedded venue on loopback, real runners, the
earlier session SIGKILLed, the second one too."""
from __future__ import annotations

import dataclasses
import time

from journal import Journal, Reader, RecordType
from journal.catalogue import TsSource, raw_bytes, unpack, venue_payload
from mm_core.engine import Engine
from mm_core.events import VenueMessage
from mm_core.protocol import ouch, soupbintcp
from mm_core.types import Side
from recovery.codecheck import session_start
from recovery.reconcile import CancelAtVenue, local_view, reconcile, venue_view
from recovery.recover import recover
from recovery.replay import replay_journal
from tests.mm_core.wire import ACME, S, SYMBOLS, Feed, gateway, make_engine, md, run, two_sided
from tests.recovery.conftest import USER, count, sigkilled_session
from tests.recovery.session import CONFIG, settings_for
from tests.recovery.test_reconcile import NOW, LoggingVenue, accepted

EARLIER = "ZZEARLIER0001", "ZZEARLIER0002"


def logins(path: str) -> list[int]:
    """The sequences of the LoginAccepted frames the journal holds, in order."""
    with Reader(path) as reader:
        frames = [raw_bytes(unpack(RecordType.VENUE_MSG, r.payload))
                  for r in reader.records(rtypes=[RecordType.VENUE_MSG])
                  if unpack(RecordType.VENUE_MSG, r.payload)["packet_type"] == ord("A")]
    return [soupbintcp.decode(f, soupbintcp.Direction.FROM_SERVER).sequence for f in frames]


def venue_seqs(path: str) -> list[int]:
    with Reader(path) as reader:
        return [int(unpack(RecordType.VENUE_MSG, r.payload)["soup_seq"])
                for r in reader.records(rtypes=[RecordType.VENUE_MSG])
                if unpack(RecordType.VENUE_MSG, r.payload)["soup_seq"]]


def joined_only(path: str, sequence: int) -> None:
    """The journal of a fresh session the venue accepted at `sequence`, killed right after."""
    engine = Engine(CONFIG, SYMBOLS, gateway())
    login = soupbintcp.encode(soupbintcp.LoginAccepted("", sequence))
    with Journal(path) as journal:
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        journal.append(RecordType.SESSION_START, session_start(engine=engine, now_ns=now), ts_ns=now,
                       ts_source=int(TsSource.USER))
        rtype, payload = venue_payload(0, login[2], 0, login)
        journal.append(rtype, payload, ts_ns=now, ts_source=int(TsSource.USER))


def test_a_second_fresh_session_joins_where_the_first_left_off_and_recovers_from_there(crashed_session, tmp_path):
    venue, first, address = crashed_session
    done = recover(settings_for(first, address))        # the desk recovers the first session
    assert done.reconciled, done.reasons
    carried = {k: v for k, v in venue.position(USER).items() if v}
    head = len(venue.session_messages(USER))
    # a session that joined and died before any venue message: recovery resumes at its join point
    bare = str(tmp_path / "bare")
    joined_only(bare, head + 1)
    nothing = recover(settings_for(bare, address))
    assert nothing.reconciled and nothing.delivered == 0, nothing.reasons
    assert nothing.engine.counts["halts"] == 0 and nothing.engine.oms.orders == {}
    second = str(tmp_path / "second")
    sigkilled_session(second, venue.ports, venue.config.venue.itch_port,
                      lambda: count(second, RecordType.ORDER_SENT) >= 6,
                      "sent no orders (halted on the earlier session's messages?)")
    joined = logins(second)[0]
    assert joined == head + 1
    assert min(venue_seqs(second)) >= joined                # none of the first session's messages
    # the second session never halted on the first one's orders, and recovers clean from its join
    replayed = replay_journal(second, Engine(CONFIG, SYMBOLS, gateway()))
    assert replayed.engine.counts["halts"] == 0 and replayed.engine.venue_joined == joined
    result = recover(settings_for(second, address))
    assert result.reconciled, result.reasons
    first_round = result.rounds[0]
    assert first_round.joined == joined and first_round.earlier_positions == carried
    assert not any(d.venue and d.venue.get("sequence", joined) < joined for d in first_round.discrepancies)
    assert venue.live_orders(USER) == []


def test_the_earlier_sessions_live_orders_are_cancelled_its_fills_listed_apart():
    """The comparison itself, from real encoded OUCH: an earlier session left one order live and
    one filled before ours joined at sequence 4."""
    earlier = [accepted(EARLIER[0], side="S", shares=200, price=1_001_000, ref=11),
               accepted(EARLIER[1], shares=300, ref=12),
               ouch.encode(ouch.Executed(NOW, EARLIER[1], 300, 999_000, "A", 5))]
    joined = len(earlier) + 1
    engine, venue, feed = make_engine(), LoggingVenue(), Feed()
    engine.on_event(VenueMessage(soupbintcp.encode(soupbintcp.LoginAccepted("S1", joined)), 2 * S))
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    bid = engine.oms.working_order(ACME, Side.BUY)
    run(engine, venue, venue.fill(bid.token, 100, NOW), NOW)
    assert engine.venue_joined == joined and engine.venue_seq == len(earlier) + len(venue.log)
    log = [*earlier, *venue.log]
    ours = range(joined, len(log) + 1)
    result = reconcile(local_view(engine, ours), venue_view(enumerate(log, 1)))
    assert [(d.kind, d.token) for d in result.discrepancies] == [("unknown-live", EARLIER[0])]
    (found,) = result.discrepancies
    assert "earlier session" in found.detail
    assert found.resolution == CancelAtVenue(EARLIER[0], ACME, "S", 1_001_000, 200, 11, True)
    assert result.venue_positions == result.local_positions == {"ACME": 100}
    assert result.earlier_positions == {"ACME": 300} and result.joined == joined
    assert result.to_json()["earlier_positions"] == {"ACME": 300}
    # read from sequence 1 as if it were all ours, the earlier session's messages would be missing
    whole = reconcile(dataclasses.replace(local_view(engine, ours), joined=1), venue_view(enumerate(log, 1)))
    assert {d.kind for d in whole.discrepancies} >= {"missing-message", "missing-fill"}
