"""The engine's Reg SHO marking as the regulators see it: the engine's own order bytes and the
venue's answers journaled on a scripted trading day, then the RTS 22 and CAT reports built from
that journal and read back from Parquet. A sale made while flat is short (field 62 SESH, CAT side SS); one made
out of a long position is a plain sale (SELL, SL)."""
from __future__ import annotations

import pyarrow.parquet as pq

from journal.catalogue import RecordType, pack
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, Timer, VenueMessage
from mm_core.protocol import ouch, soupbintcp
from reports.rts22 import COLUMNS
from reports.run import run as report
from tests.mm_core.test_short_sale import QUIET_GUARD, wire_side
from tests.mm_core.wire import ACME, MS, S, SYMBOLS, Feed, Venue, gateway, md, orders, two_sided
from tests.reports.journal_builder import DayBuilder


class Session:
    """The engine with the scripted venue answering every order it sends, its orders and the
    venue's messages journaled as the runner journals them (the engine's own order bytes) on a
    scripted trading day (tests.reports.journal_builder: session start, a LOCKED clock)."""

    def __init__(self) -> None:
        self.engine = Engine(EngineConfig(guard=QUIET_GUARD), SYMBOLS, gateway())   # no toxicity pulls
        self.venue = Venue()
        self.day = DayBuilder()
        self.day.session_start()
        self.day.clock_sample()
        self.sent: list = []

    def feed(self, event, now: int) -> None:
        if isinstance(event, VenueMessage):
            self._venue(event)
        pending = self.engine.on_event(event)
        for _ in range(20):
            self._journal(pending)
            replies = self.venue.answer(pending, now)
            if not replies:
                return
            pending = []
            for reply in replies:
                self._venue(reply)
                pending += self.engine.on_event(reply)

    def _journal(self, actions) -> None:
        for a in orders(actions):
            i = a.intent
            self.sent.append(a)
            self.day.advance(1_000)
            self.day._add(RecordType.ORDER_SENT, pack(
                RecordType.ORDER_SENT, token=i.token.encode(), orig_token=i.orig_token.encode(),
                msg_type=a.packet[3], side=int(i.side), tif=i.tif, symbol_id=i.symbol_id, price=i.price,
                qty=i.qty, algo_id=i.algo_id, desk_id=i.desk_id, trader_id=i.trader_id,
                client_id=i.client_id, risk_verdict=1, trading_state=a.trading_state,
                limits_version=1, tskey=len(self.day.records), raw=a.packet))

    def _venue(self, reply) -> None:
        self.day.advance(1_000)
        msg = ouch.decode_outbound(soupbintcp.decode(reply.packet, soupbintcp.Direction.FROM_SERVER).payload)
        self.day._venue(msg)

    def ours(self, side: str) -> tuple[str, dict]:
        [(token, order)] = [(t, o) for t, o in self.venue.orders.items() if o["side"] == side]
        return token, order

    def fill(self, side: str, now: int) -> tuple[str, str, int]:
        """Fill our whole resting order on `side`: (its token, its OUCH side as sent, the match)."""
        token, order = self.ours(side)
        marked = order["marked"]
        execution = self.venue.fill(token, order["qty"], now)
        match = self.venue.match
        self.feed(execution, now)
        return token, marked, match


def test_the_reports_mark_the_engines_short_sale_sesh_and_its_long_sale_sell(tmp_path):
    session = Session()
    engine = session.engine
    now = S
    session.feed(JournalHealth(now, True), now)
    session.feed(ClockSample(now, True), now)
    session.feed(Timer(now), now)
    feed = Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    now = 2 * S
    session.feed(md(feed.packet(*msgs), now), now)
    short_token, short_side, short_match = session.fill("S", now + MS)     # sold while flat: short
    assert short_side == "T" and engine.inventory.position[ACME] < 0
    now += 2 * MS
    while engine.inventory.position[ACME] < 600:                   # our bid hit: long
        now += 100 * MS
        session.feed(Timer(now), now)                               # the bid is quoted again
        session.fill("B", now)
    token, _ = session.ours("S")
    now += MS
    session.feed(session.venue.cancel_rest(token, now), now)       # the venue pulls the ask ...
    long_token, long_side, long_match = session.fill("S", now + MS)        # ... its successor is owned
    assert long_side == "S"
    assert {wire_side(o) for o in session.sent if o.intent.token in (short_token, long_token)} == {"T", "S"}
    out = tmp_path / "reports"
    report(["rts22", "cat"], session.day.write(tmp_path / "journal"), out)
    rts22 = pq.read_table(out / "rts22" / "transactions", partitioning="hive").to_pylist()
    field62 = {r[COLUMNS[3]]: r[COLUMNS[62]] for r in rts22}     # by trading venue transaction id
    assert field62[str(short_match)] == "SESH" and field62[str(long_match)] == "SELL"
    cat = pq.read_table(out / "cat" / "order_events", partitioning="hive").to_pylist()
    sides = {(r["orderID"], r["type"]): r["side"] for r in cat if r.get("side")}
    assert sides[(short_token, "MENO")] == "SS" and sides[(long_token, "MENO")] == "SL"

