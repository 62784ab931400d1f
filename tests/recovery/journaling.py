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
from tests.mm_core.wire import S, make_engine, simulate


class RunnerLike:
    """Journal, then feed; the engine's orders and notes are journaled after it answers."""

    def __init__(self, engine: Engine, journal: Journal) -> None:
        self.engine = engine
        self.journal = journal
        self.soup_seq = 0
        self.inputs = 0

    def start(self, now: int) -> None:
        # what the runner feeds without a record: the journal is healthy, a fresh session
        self.act(self.engine.on_event(JournalHealth(now, True)), now)
        self.act(self.engine.on_event(Reconciled(now, True)), now)

    def feed(self, event) -> list:
        rtype, payload = record_for(event, self)
        self.journal.append(rtype, payload, ts_ns=event.now_ns, ts_source=int(TsSource.USER))
        self.inputs += 1
        actions = self.engine.on_event(event)
        self.act(actions, event.now_ns)
        return actions

    def act(self, actions, now: int) -> None:
        for a in actions:
            if isinstance(a, SendOrder):
                self.journal.append(RecordType.ORDER_SENT, order_sent(a), ts_ns=now,
                                    ts_source=int(TsSource.USER))
            elif isinstance(a, JournalNote):
                self.journal.append(a.rtype, a.payload, ts_ns=now, ts_source=int(TsSource.USER))


def order_sent(a: SendOrder) -> bytes:
    i = a.intent
    return pack(RecordType.ORDER_SENT, token=i.token.encode(), orig_token=i.orig_token.encode(),
                msg_type=a.packet[3], side=int(i.side), tif=i.tif, symbol_id=i.symbol_id, price=i.price,
                qty=i.qty, risk_verdict=1, trading_state=a.trading_state, raw=a.packet)


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
        return RecordType.CLOCK_SAMPLE, pack(RecordType.CLOCK_SAMPLE, state=1,
                                             compliant_mask=1 if event.compliant else 0)
    raise TypeError(f"no record for {type(event).__name__}")


def session_events(seed: int, steps: int) -> list:
    """The inputs of a seeded simulated session (tests.mm_core.wire.simulate), start-up included."""
    events, _, _ = simulate(seed, steps)
    return [ClockSample(S, True), Timer(S)] + events


def fresh_engine() -> Engine:
    """An engine as the runner builds one (nothing fed yet), with the simulated session's setup."""
    engine = make_engine()
    return Engine(engine.cfg, engine.symbols, type(engine.risk)(engine.risk.limits))


def write_session(path: str, events: list, segment_size: int = 1 << 20) -> RunnerLike:
    """Journal and run `events`; returns the runner-like shell (its engine is the live one)."""
    journal = Journal(path, segment_size=segment_size, checkpoint_every=64)
    shell = RunnerLike(fresh_engine(), journal)
    shell.start(events[0].now_ns)
    for event in events:
        shell.feed(event)
    return shell


def tear(path: str, seq: int | None = None) -> int:
    """Zero the second half of data record `seq` (default: the last one) as a torn write leaves
    it; returns the sequence torn. Raw access through journal.h's record layout."""
    from journal._journal_cffi import lib
    from tests.journal.jhelpers import record_offsets, segment_files

    flags = lib.MMJ_FLAG_CONTROL | lib.MMJ_FLAG_EOS
    for seg in reversed(segment_files(path)):
        data = seg.read_bytes()
        records = [(off, size, int.from_bytes(data[off + 8:off + 16], "little"))
                   for off, size, word in record_offsets(seg) if not word & flags]
        for off, size, rec_seq in reversed(records):
            if seq is None or rec_seq == seq:
                with open(seg, "r+b") as f:
                    f.seek(off + size // 2)
                    f.write(bytes(size - size // 2))
                return rec_seq
    raise LookupError(f"no data record {seq} in {path}")
