"""The runner against the real embedded venue on loopback: write-ahead journaling of inputs and
orders, TX stamps accounted for, an exact replay of the journal through a fresh engine, a full
disk (risk-reducing records in the journal's reserve, the 1 Hz space retry) and operator commands
from other threads."""
import os
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from audit.health import ClockSample as HealthSample, Verdict
from journal import DiskFull, Journal, Reader
from journal.catalogue import (
    RAW_ORDER_MAX, CatalogueError, ClockState, RecordType, TsSource, pack, raw_bytes, unpack, unpack_json,
)
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import SYSTEM_ACTORS, OperatorCommand, SendOrder
from mm_core.protocol import ouch, soupbintcp
from mm_core.risk import TradingState
from mm_core.types import OrderKind, Side, make_intent
from mm_core.runner import Runner
from mm_core.runnerrecords import engine_events, order_sent_payload
from mm_core.runnertypes import RunnerError, RunnerSettings
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.drills.risk import _wait as wait
from tests.journal.conftest import small_tmpfs  # noqa: F401  (the 1 MiB tmpfs fixture)
from tests.mm_core.wire import SYMBOLS, gateway


class LockedClock:
    """Test double for audit.monitor.ClockMonitor: loopback has no PTP grandmaster, so this
    clock declares itself LOCKED and compliant for eu-hft (the runner journals it as such)."""

    def current(self):
        # a fresh measurement on every call, at the time it is taken (the runner journals a
        # sample once, at its own time)
        return HealthSample(ClockState.LOCKED, time.clock_gettime_ns(time.CLOCK_REALTIME), time.monotonic_ns(),
                            0, 0, 100, 0, None, None, 6, 0x21, 37, True,
                            False, False, True, True, 1, (), {"eu-hft": Verdict("eu-hft", True, ())})

    def compliant(self, profile, now_mono_ns=None):
        return profile == "eu-hft"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DiskFillsUp:
    """The real journal as it behaves on a full disk, after `orders` ORDER_SENT records: ordinary
    appends raise DiskFull, risk-reducing ones (reserve=True) still write, no space comes back."""

    def __init__(self, journal, orders: int) -> None:
        self.journal, self.left = journal, orders

    def append(self, rtype, payload, reserve=False, **kw):
        if self.left <= 0 and not reserve:
            raise DiskFull("no space left to preallocate a segment")
        if rtype == RecordType.ORDER_SENT:
            self.left -= 1
        return self.journal.append(rtype, payload, reserve=reserve, **kw)

    def retry_space(self) -> bool:
        return False


def trade(tmp_path, seconds: float, wrap=None, busy_poll: bool = False):
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=30.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=5.0)
    with Venue(config) as venue:
        ports = venue.ports
        settings = RunnerSettings(itch_port=port, ouch_port=ports.ouch, rerequest_port=ports.rerequest,
                                  busy_poll=busy_poll)
        engine = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
        with Journal(str(tmp_path / "journal")) as journal:
            runner = Runner(engine, wrap(journal) if wrap else journal, settings, LockedClock())
            report = runner.run(seconds)
        answers = venue.session_messages(settings.username)
    return report, engine, str(tmp_path / "journal"), answers, runner.packet_stages()


@pytest.fixture
def session(tmp_path):
    return trade(tmp_path, 3.0)


def test_runner_journals_ahead_and_replays_exactly(session):
    journaled_ahead_and_replayed(session)


def test_the_busy_poll_loop_journals_ahead_and_replays_exactly(tmp_path):
    """The same session spinning on a zero-timeout epoll (market data read first each wake-up)."""
    journaled_ahead_and_replayed(trade(tmp_path, 2.0, busy_poll=True))


def journaled_ahead_and_replayed(session) -> None:
    """Every input and order journaled, orders before the venue's answers, every TX stamp
    accounted for, and a replay of the journal giving the same orders and final state."""
    report, engine, path, _, _ = session
    assert report.stop_reason == "duration" and report.journal_failures == 0
    with Reader(path) as reader:
        records = list(reader.records())
    kinds = {}
    for r in records:
        kinds.setdefault(r.rtype, []).append(r)
    for rtype in (RecordType.MD_PACKET, RecordType.VENUE_MSG, RecordType.TIMER,
                  RecordType.CLOCK_SAMPLE, RecordType.ORDER_SENT):
        assert kinds.get(rtype), f"no {rtype.name} records"
    sent = kinds[RecordType.ORDER_SENT]
    assert len(sent) == report.orders_sent > 0
    # every order's TX stamp is accounted for: stamped, or recorded as missing (never invented)
    tx = [unpack(RecordType.TX_TS, r.payload) for r in kinds.get(RecordType.TX_TS, [])]
    assert sorted(int(t["order_seq"]) for t in tx) == [r.seq for r in sent]
    assert all((t["status"] == 0) == (t["tx_ts_ns"] > 0) for t in tx)
    # write-ahead: an order is journaled before the venue's answer to it
    sent_at = {}      # token -> the first ORDER_SENT naming it (cancels name it again later)
    for r in sent:
        sent_at.setdefault(unpack(RecordType.ORDER_SENT, r.payload)["token"].decode(), r.seq)
    answered = 0
    for r in kinds[RecordType.VENUE_MSG]:
        frame = raw_bytes(unpack(RecordType.VENUE_MSG, r.payload))
        packet = soupbintcp.decode(frame, soupbintcp.Direction.FROM_SERVER)
        if isinstance(packet, soupbintcp.SequencedData):
            msg = ouch.decode_outbound(packet.payload)
            token = getattr(msg, "token", None)
            if token in sent_at:
                assert sent_at[token] < r.seq
                answered += 1
    assert answered > 0
    # replay: the journal's inputs through a fresh engine give the same orders, byte for byte
    fresh = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
    replayed = []
    for event in engine_events(records):
        replayed.extend(a.packet for a in fresh.on_event(event) if isinstance(a, SendOrder))
    assert replayed == [raw_bytes(unpack(RecordType.ORDER_SENT, r.payload)) for r in sent]
    assert fresh.state_hash() == engine.state_hash()


def test_the_order_sent_payload_is_packs(session):
    """order_sent_payload (one positional struct call) gives pack()'s bytes for every order the
    session sent, for a token longer than its field (cut, as pack cuts), and refuses a raw packet
    longer than its field as pack does."""
    _, _, path, _, _ = session
    with Reader(path) as reader:
        recs = [unpack(RecordType.ORDER_SENT, r.payload) for r in reader.records()
                if r.rtype == RecordType.ORDER_SENT]
    assert recs
    checked = 0
    for rec in recs:
        packet = raw_bytes(rec)
        intent = make_intent(OrderKind.ENTER, rec["token"].decode() + "LONGERTHAN14", int(rec["symbol_id"]),
                             Side(int(rec["side"])), int(rec["price"]), int(rec["qty"]), (1, 2, 3, 4),
                             orig_token=rec["orig_token"].decode(), tif=int(rec["tif"]))
        action = SendOrder(intent, packet, SimpleNamespace(limits_version=7), int(rec["trading_state"]))
        expected = pack(RecordType.ORDER_SENT, token=intent.token.encode(),
                        orig_token=intent.orig_token.encode(), msg_type=packet[3], side=int(intent.side),
                        tif=intent.tif, symbol_id=intent.symbol_id, price=intent.price, qty=intent.qty,
                        algo_id=1, desk_id=2, trader_id=3, client_id=4, risk_verdict=1,
                        trading_state=action.trading_state, limits_version=7, tskey=int(rec["tskey"]),
                        raw=packet)
        assert order_sent_payload(action, int(rec["tskey"])) == expected
        checked += 1
    assert checked == len(recs)
    too_long = SendOrder(intent, packet + bytes(RAW_ORDER_MAX), SimpleNamespace(limits_version=7), 1)
    with pytest.raises(CatalogueError):
        order_sent_payload(too_long, 0)


def journaled_orders(path):
    """(seq, token, OUCH type) of every ORDER_SENT, and the journal-health inputs (seq, ok)."""
    sent, health = [], []
    with Reader(path) as reader:
        for r in reader.records():
            if r.rtype == RecordType.ORDER_SENT:
                rec = unpack(RecordType.ORDER_SENT, r.payload)
                sent.append((r.seq, rec["token"].decode(), chr(int(rec["msg_type"]))))
            elif r.rtype == RecordType.METRICS and b"journal-health" in r.payload:
                doc = unpack_json(r.payload)
                health.append((r.seq, doc["ok"]))
    return sent, health


def venue_tokens(answers, kinds) -> list[str]:
    return [m.token for m in map(ouch.decode_outbound, answers) if isinstance(m, kinds)]


def closed_at_venue(answers) -> set[str]:
    """Tokens the venue canceled, replaced (the old token: a cancel of it is ignored then) or
    executed (a fill may beat the cancel)."""
    msgs = list(map(ouch.decode_outbound, answers))
    return ({m.token for m in msgs if isinstance(m, (ouch.Canceled, ouch.Executed))}
            | {m.previous_token for m in msgs if isinstance(m, ouch.Replaced)})


def test_a_decisions_orders_leave_in_one_send_each_with_its_tx_stamp(session):
    """Every order of a decision is journaled first, then they all go out in one send: each
    ORDER_SENT names the stamp key of that send, each gets its own TX_TS with that key, and the
    orders of one send share one stamp."""
    report, _, path, _, _ = session
    with Reader(path) as reader:
        records = list(reader.records())
    keys = {r.seq: int(unpack(RecordType.ORDER_SENT, r.payload)["tskey"])
            for r in records if r.rtype == RecordType.ORDER_SENT}
    tx = {int(t["order_seq"]): t for t in (unpack(RecordType.TX_TS, r.payload)
                                           for r in records if r.rtype == RecordType.TX_TS)}
    assert sorted(tx) == sorted(keys) and len(keys) == report.orders_sent
    sends: dict[int, set] = {}
    for seq, key in keys.items():
        assert int(tx[seq]["tskey"]) == key              # the key it was journaled with
        sends.setdefault(key, set()).add(int(tx[seq]["tx_ts_ns"]))
    assert all(len(stamps) == 1 for stamps in sends.values())
    assert len(sends) < len(keys)                        # some decision sent several orders at once
    assert not [r for r in records if r.rtype == RecordType.METRICS and b"tskey-mismatch" in r.payload]


def test_packets_that_sent_orders_keep_their_stage_times(session):
    """RX stamp -> read -> journaled -> decided -> sent, in order, for each market-data packet that
    sent orders; their order counts add up to at most every order sent (timers and venue answers
    send the rest)."""
    report, _, path, _, stages = session
    assert stages and sum(st.orders for st in stages) <= report.orders_sent
    for st in stages:
        assert st.orders >= 1
        assert st.read_ns <= st.journaled_ns <= st.decided_ns <= st.sent_ns
        if st.source == TsSource.SW_KERNEL:         # a kernel stamp is taken before the read
            assert st.rx_ns <= st.read_ns
    # each is a journaled MD_PACKET, by its RX stamp
    with Reader(path) as reader:
        rx = {r.ts_ns for r in reader.records() if r.rtype == RecordType.MD_PACKET}
    assert {st.rx_ns for st in stages} <= rx


def test_no_order_leaves_without_its_journal_record_and_cancels_use_the_reserve(tmp_path):
    report, engine, path, answers, _ = trade(tmp_path, 2.5, wrap=lambda j: DiskFillsUp(j, orders=3))
    assert report.journal_failures > 0 and report.inputs_refused > 0 and report.reserve_appends > 0
    sent, health = journaled_orders(path)
    assert [ok for _, ok in health] == [False]           # told once; no space came back
    fault = health[0][0]
    new_orders = {token for seq, token, kind in sent if kind in "OU"}
    assert len(new_orders) <= 3 and all(seq < fault for seq, _, kind in sent if kind in "OU")
    pulled = {token for seq, token, kind in sent if kind == "X" and seq > fault}
    assert pulled                                         # the pull went out, from the reserve
    # the venue saw only journaled orders, and carried out the cancels sent after the fault
    assert set(venue_tokens(answers, (ouch.Accepted, ouch.Replaced))) <= new_orders
    assert pulled <= closed_at_venue(answers) and set(venue_tokens(answers, (ouch.Canceled,))) & pulled
    assert "journal-unhealthy" in engine.risk.faults
    assert engine.risk.state is TradingState.HALTED
    assert engine.oms.counts() == (0, 0)                  # every order closed: nothing unknown


def test_a_full_tmpfs_pulls_every_quote_and_trading_waits_for_the_operator(small_tmpfs, tmp_path):
    """The real journal on a small tmpfs that fills up while the runner trades with the embedded
    venue: ordinary appends refused, the cancels written in the reserve and carried out by the
    venue, no new order until space is freed and an operator re-enables; the journal replays."""
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=60.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=10.0)
    path = str(small_tmpfs / "journal")
    filler = small_tmpfs / "filler"
    with Venue(config) as venue:
        ports = venue.ports
        settings = RunnerSettings(itch_port=port, ouch_port=ports.ouch, rerequest_port=ports.rerequest)
        user = settings.username
        engine = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
        with Journal(path, segment_size=64 * 1024) as journal:
            runner = Runner(engine, journal, settings, LockedClock())
            stop = threading.Event()
            thread = threading.Thread(target=runner.run, args=(60.0, stop))
            thread.start()
            try:
                assert wait(lambda: len(venue.live_orders(user)) >= 2, 10), "never quoted"
                free = os.statvfs(small_tmpfs)
                filler.write_bytes(bytes(free.f_bavail * free.f_frsize - 32 * 1024))
                assert wait(lambda: not runner.journal_health().ok, 10), "the disk never filled"
                assert wait(lambda: venue.live_orders(user) == [], 5), venue.live_orders(user)
                full = runner.journal_health()
                assert full.space_low and "DiskFull" in full.cause and full.unhealthy_since_ns > 0
                assert engine.risk.state is TradingState.HALTED
                filler.unlink()                               # space freed: the 1 Hz retry sees it
                assert wait(lambda: runner.journal_health().ok, 5)
                assert engine.risk.state is TradingState.HALTED   # the latch waits for an operator
                assert runner.journal_health().retries >= 1 and not runner.journal_health().space_low

                def enable() -> bool:
                    done = runner.operator(OperatorCommand(time.time_ns(), "enable", "ops", "space freed"))
                    return done.wait(5) and engine.risk.state is TradingState.ACTIVE
                assert wait(enable, 10), engine.risk.faults
                assert wait(lambda: len(venue.live_orders(user)) >= 2, 10), "never quoted again"
            finally:
                stop.set()
                thread.join(10)
        answers = venue.session_messages(user)
    sent, health = journaled_orders(path)
    assert [ok for _, ok in health] == [False, True]
    (down, _), (up, _) = health
    assert not [t for seq, t, kind in sent if down < seq < up and kind != "X"]   # no new order
    pulled = {t for seq, t, kind in sent if down < seq < up}
    assert pulled and pulled <= closed_at_venue(answers)
    assert set(venue_tokens(answers, (ouch.Canceled,))) & pulled
    journaled = {t for _, t, kind in sent if kind in "OU"}
    assert set(venue_tokens(answers, (ouch.Accepted, ouch.Replaced))) <= journaled
    # the refused market data never reached the engine, the health changes did: exact replay.
    # An order the journal refused never left; replay decides it again, and the health record
    # that follows names it as unsent (which order that is depends on when the disk filled).
    with Reader(path) as reader:
        records = list(reader.records())
    unsent = {token for r in records if r.rtype == RecordType.METRICS and b"journal-health" in r.payload
              for token in unpack_json(r.payload)["unsent"]}
    fresh = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
    replayed = [a.packet for e in engine_events(records) for a in fresh.on_event(e)
                if isinstance(a, SendOrder) and a.intent.token not in unsent]
    assert replayed == [raw_bytes(unpack(RecordType.ORDER_SENT, r.payload)) for r in records
                        if r.rtype == RecordType.ORDER_SENT]
    assert fresh.state_hash() == engine.state_hash()


def test_operator_commands_from_other_threads_wait_in_a_bounded_queue(tmp_path):
    engine = Engine(EngineConfig(quoted=("ACME",)), SYMBOLS, gateway())
    with Journal(str(tmp_path / "j")) as journal:
        runner = Runner(engine, journal, RunnerSettings(operator_queue=2), LockedClock())
        kill = OperatorCommand(1, "kill", "ops", "test")
        waiting = [runner.operator(kill), runner.operator(kill)]     # not running: they wait
        with pytest.raises(RunnerError, match="2 operator commands already wait"):
            runner.operator(kill)
        assert not any(done.is_set() for done in waiting)
        assert engine.risk.state is TradingState.ACTIVE and journal.next_seq == 1   # untouched
        health = runner.journal_health()
        assert health.ok and not health.space_low and health.failures == 0


@pytest.mark.parametrize("actor", sorted(SYSTEM_ACTORS))
def test_no_caller_may_sign_a_command_as_the_system(tmp_path, actor):
    """The close-out's kill by "session" is what recovery releases: a caller's must never pass for it."""
    engine = Engine(EngineConfig(quoted=("ACME",)), SYMBOLS, gateway())
    with Journal(str(tmp_path / "j")) as journal:
        runner = Runner(engine, journal, RunnerSettings(), LockedClock())
        with pytest.raises(RunnerError, match=f"actor {actor!r} is the system's own; 'kill' refused"):
            runner.operator(OperatorCommand(1, "kill", actor, "session end"))
        runner.operator(OperatorCommand(1, "kill", "ops", "desk call"))      # an operator's is queued
        assert journal.next_seq == 1


def test_the_loop_prepares_the_next_packet_after_timers_too(tmp_path, monkeypatch):
    """A timer's requotes move the OMS as a packet's do: the loop rebuilds what the next packet's C
    call reads (Engine.prepare) before it waits again, not inside that packet's latency."""
    calls: list[str] = []

    def spy(cls, name):
        real = getattr(cls, name)
        monkeypatch.setattr(cls, name, lambda self, *a: (calls.append(name), real(self, *a))[1])
    spy(Engine, "prepare")
    spy(Runner, "_on_timer")
    spy(Runner, "_on_md")
    trade(tmp_path, 1.5, busy_poll=True)
    timers = [i for i, name in enumerate(calls) if name == "_on_timer"]
    assert len(timers) >= 5 and "_on_md" in calls
    assert all(calls[i + 1] == "prepare" for i in timers if i + 1 < len(calls))
