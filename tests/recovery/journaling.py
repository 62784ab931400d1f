"""An in-memory trading session journaled the way mm_core.runner journals one: every input record
before the engine sees it, then every order (ORDER_SENT) and note the engine returns, in order.

Used where a test needs a deterministic journal without sockets (the runner itself needs a venue);
the end-to-end tests use the real runner. `write_session` can end with a SIGKILL of its own process.
"""
from __future__ import annotations

from journal import Journal
from journal.catalogue import RecordType, TsSource, pack
from mm_core.engine import Engine
from mm_core.events import (
    ClockSample, JournalHealth, JournalNote, MarketData, Reconciled, SendOrder, Timer, VenueMessage,
)
from recovery.codecheck import session_start
from recovery.recover import RecoverySettings
from tests.mm_core.wire import ACME, BOLT, CHIP, LIMITS_TEXT, MS, S, Feed, Venue, make_engine, md, simulate


class RunnerLike:
    """Journal, then feed; the engine's orders and notes are journaled after it answers (with
    their parties when `parties`, as the runner journals them: what the reports need)."""

    parties = False

    def __init__(self, engine: Engine, journal: Journal) -> None:
        self.engine = engine
        self.journal = journal
        self.soup_seq = 0
        self.inputs = 0

    def start(self, now: int) -> None:
        # the session's first record names the code (as mm_core.session's SESSION_START does)
        self.journal.append(RecordType.SESSION_START, session_start(), ts_ns=now, ts_source=int(TsSource.USER))
        # what the runner feeds without a record: the journal is healthy, a fresh session
        self.act(self.engine.on_event(JournalHealth(now, True)), now)
        self.act(self.engine.on_event(Reconciled(now, True)), now)

    def feed(self, event) -> list:
        rtype, payload = self.record(event)
        self.journal.append(rtype, payload, ts_ns=event.now_ns, ts_source=int(TsSource.USER))
        self.inputs += 1
        actions = self.engine.on_event(event)
        self.act(actions, event.now_ns)
        return actions

    def record(self, event) -> tuple[RecordType, bytes]:
        return record_for(event, self)

    def act(self, actions, now: int) -> None:
        for a in actions:
            if isinstance(a, SendOrder):
                self.journal.append(RecordType.ORDER_SENT, order_sent(a, self.parties), ts_ns=now,
                                    ts_source=int(TsSource.USER))
            elif isinstance(a, JournalNote):
                self.journal.append(a.rtype, a.payload, ts_ns=now, ts_source=int(TsSource.USER))


def order_sent(a: SendOrder, parties: bool = False) -> bytes:
    i = a.intent
    ids = dict(algo_id=i.algo_id, desk_id=i.desk_id, trader_id=i.trader_id, client_id=i.client_id) if parties else {}
    return pack(RecordType.ORDER_SENT, token=i.token.encode(), orig_token=i.orig_token.encode(),
                msg_type=a.packet[3], side=int(i.side), tif=i.tif, symbol_id=i.symbol_id, price=i.price,
                qty=i.qty, risk_verdict=1, trading_state=a.trading_state, raw=a.packet, **ids)


def record_for(event, runner: RunnerLike) -> tuple[RecordType, bytes]:
    if isinstance(event, MarketData):
        return RecordType.MD_PACKET, event.packet
    if isinstance(event, VenueMessage):
        sequenced = event.packet[2] == ord("S")
        runner.soup_seq += sequenced
        return RecordType.VENUE_MSG, pack(RecordType.VENUE_MSG, soup_seq=runner.soup_seq if sequenced else 0,
                                          packet_type=event.packet[2], raw=event.packet)
    if isinstance(event, Timer):
        return RecordType.TIMER, pack(RecordType.TIMER, timer_id=event.timer_id, now_ns=event.now_ns)
    if isinstance(event, ClockSample):
        # a grandmaster on the PTP timescale with TAI - UTC 37 s, as a LOCKED sample has read it
        return RecordType.CLOCK_SAMPLE, pack(RecordType.CLOCK_SAMPLE, state=1,
                                             compliant_mask=1 if event.compliant else 0,
                                             ptp_timescale=1, utc_offset=37, utc_offset_valid=1)
    raise TypeError(f"no record for {type(event).__name__}")


def session_events(seed: int, steps: int) -> list:
    """The inputs of a seeded simulated session (tests.mm_core.wire.simulate), start-up included."""
    events, _, _ = simulate(seed, steps)
    return [ClockSample(S, True), Timer(S)] + events


def fresh_engine() -> Engine:
    """An engine as the runner builds one (nothing fed yet), with the simulated session's setup."""
    engine = make_engine()
    return Engine(engine.cfg, engine.symbols, type(engine.risk)(engine.risk.limits))


def recovery_settings(path: str, venue=None, **overrides) -> RecoverySettings:
    """Recovery settings that build the engine these sessions were journaled by (fresh_engine's
    config, symbols and limits)."""
    engine = fresh_engine()
    return RecoverySettings(journal=path, config=engine.cfg, symbols=engine.symbols,
                            limits_text=LIMITS_TEXT, venue=venue, **overrides)


def rewrite_snapshot_header(path, change, reseal: bool = True) -> None:
    """Edit the header of the snapshot file at `path` in place (`change(header)`); with `reseal`
    its checksum is made to fit again (a header as its writer made it, not one altered after)."""
    import json
    import pathlib
    from recovery.snapshot import _header_digest
    head, _, body = pathlib.Path(path).read_bytes().partition(b"\n")
    header = json.loads(head)
    change(header)
    if reseal:
        header["header_sha256"] = _header_digest(header)
    pathlib.Path(path).write_bytes(json.dumps(header, sort_keys=True).encode() + b"\n" + body)


def write_session(path: str, events: list, segment_size: int = 1 << 20,
                  durability: str = "pagecache") -> RunnerLike:
    """Journal and run `events`; returns the runner-like shell (its engine is the live one)."""
    journal = Journal(path, segment_size=segment_size, checkpoint_every=64, durability=durability)
    shell = RunnerLike(fresh_engine(), journal)
    shell.start(events[0].now_ns)
    for event in events:
        shell.feed(event)
    return shell


def write_long_session(path: str, seed: int, inputs: int, segment_size: int = 64 << 20,
                       progress=None, rate: float = 0.0) -> RunnerLike:
    """Journal and run a seeded session of at least `inputs` inputs, generated as it goes (no
    event list in memory, a bounded book: sessions of millions of inputs in linear time). Market
    data on three symbols, the scripted venue answering every order and filling some, timers every
    100 ms and clock samples every second. `progress(inputs)` is called every 10,000 inputs; with
    `rate`, inputs are journaled at most that many per second of wall time (a live session's pace)."""
    import random
    import time

    rng = random.Random(seed)
    journal = Journal(path, segment_size=segment_size, checkpoint_every=64)
    shell = RunnerLike(fresh_engine(), journal)
    feed, venue = Feed(), Venue()
    books = {ACME: [1_000_000, 100], BOLT: [505_000, 50], CHIP: [8_500, 1]}
    live: dict[int, list[tuple[int, str, int, int]]] = {s: [] for s in books}   # ref, side, price, qty
    now = 2 * S
    shell.start(now)
    next_timer = next_clock = now
    reported = 0
    started = time.monotonic()

    def settled(event) -> None:
        pending = shell.feed(event)
        for _ in range(20):           # the venue answers until nothing more is sent
            replies = venue.answer(pending, now)
            if not replies:
                return
            pending = [a for reply in replies for a in shell.feed(reply)]

    while shell.inputs < inputs:
        now += rng.randrange(100_000, 3_000_000)
        msgs = []
        for _ in range(rng.randrange(1, 5)):
            sym = rng.choice((ACME, BOLT, CHIP))
            centre, tick = books[sym]
            if rng.random() < 0.02:
                books[sym][0] += tick * rng.choice((-1, 1))
            refs = live[sym]
            if len(refs) < 6 or (rng.random() < 0.5 and len(refs) < 40):
                side = rng.choice("BS")
                off = tick * rng.randrange(1, 5)
                qty, price = 100 * rng.randrange(1, 6), centre - off if side == "B" else centre + off
                m = feed.add(sym, side, qty, price)
                refs.append((m.order_ref, side, price, qty))
            elif rng.random() < 0.6:
                m = Feed.delete(refs.pop(rng.randrange(len(refs)))[0])
            else:       # the best order of one side trades in full
                side = rng.choice("BS")
                same = [r for r in refs if r[1] == side]
                if not same:
                    continue
                best = (max if side == "B" else min)(same, key=lambda r: r[2])
                refs.remove(best)
                m = Feed.execute(best[0], best[3], rng.randrange(1, 10**9))
            msgs.append(m)
        if msgs:
            feed.history.clear()      # nobody re-requests here: keep memory flat
            settled(md(feed.packet(*msgs), now))
        if venue.orders and rng.random() < 0.05:
            token = rng.choice(list(venue.orders))
            settled(venue.fill(token, min(venue.orders[token]["qty"], 100), now))
        if now >= next_clock:
            settled(ClockSample(now, True))
            next_clock += S
        if now >= next_timer:
            settled(Timer(now))
            next_timer += 100 * MS
        if rate and shell.inputs % 64 == 0:
            ahead = shell.inputs / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if progress is not None and shell.inputs - reported >= 10_000:
            reported = shell.inputs
            progress(reported)
    return shell


def tear(path: str, seq: int | None = None, power_loss: bool = False) -> int:
    """Zero the second half of data record `seq` (default: the last one) as a torn write leaves
    it; returns the sequence torn. With power_loss, everything written after that point is lost
    too (the pages the kernel had not written back: zeroed to the end of the segment, which must
    be the last one). Raw access through journal.h's record layout."""
    from journal._journal_cffi import lib
    from tests.journal.jhelpers import record_offsets, segment_files

    flags = lib.MMJ_FLAG_CONTROL | lib.MMJ_FLAG_EOS
    segments = segment_files(path)
    for seg in reversed(segments):
        data = seg.read_bytes()
        records = [(off, size, int.from_bytes(data[off + 8:off + 16], "little"))
                   for off, size, word in record_offsets(seg) if not word & flags]
        for off, size, rec_seq in reversed(records):
            if seq is None or rec_seq == seq:
                end = len(data) if power_loss else off + size
                if power_loss and seg != segments[-1]:
                    raise LookupError(f"record {rec_seq} is not in the last segment")
                with open(seg, "r+b") as f:
                    f.seek(off + size // 2)
                    f.write(bytes(end - off - size // 2))
                return rec_seq
    raise LookupError(f"no data record {seq} in {path}")
