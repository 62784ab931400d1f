"""The runner against the real embedded venue on loopback: write-ahead journaling of inputs and
orders, TX stamps accounted for, and an exact replay of the journal through a fresh engine."""
import socket

import pytest

from audit.health import ClockSample as HealthSample, Verdict
from journal import DiskFull, Journal, Reader
from journal.catalogue import ClockState, RecordType, raw_bytes, unpack
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import SendOrder
from mm_core.protocol import ouch, soupbintcp
from mm_core.runner import Runner, RunnerSettings, engine_events
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.mm_core.wire import SYMBOLS, gateway


class LockedClock:
    """Test double for audit.monitor.ClockMonitor: loopback has no PTP grandmaster, so this
    clock declares itself LOCKED and compliant for eu-hft (the runner journals it as such)."""

    def current(self):
        return HealthSample(ClockState.LOCKED, 0, 0, 0, 0, 100, 0, None, None, 6, 0x21, 37, True,
                            False, False, True, True, 1, (), {"eu-hft": Verdict("eu-hft", True, ())})

    def compliant(self, profile, now_mono_ns=None):
        return profile == "eu-hft"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DiskFillsUp:
    """Fault injector around the real journal: after `orders` ORDER_SENT records every append
    fails with DiskFull, as the C core reports a full disk."""

    def __init__(self, journal, orders: int) -> None:
        self.journal, self.left = journal, orders

    def append(self, rtype, payload, **kw):
        if self.left <= 0:
            raise DiskFull("no space left to preallocate a segment")
        if rtype == RecordType.ORDER_SENT:
            self.left -= 1
        return self.journal.append(rtype, payload, **kw)


def trade(tmp_path, seconds: float, wrap=None):
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=30.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=5.0)
    with Venue(config) as venue:
        ports = venue.ports
        settings = RunnerSettings(itch_port=port, ouch_port=ports.ouch, rerequest_port=ports.rerequest)
        engine = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
        with Journal(str(tmp_path / "journal")) as journal:
            runner = Runner(engine, wrap(journal) if wrap else journal, settings, LockedClock())
            report = runner.run(seconds)
        answers = venue.session_messages(settings.username)
    return report, engine, str(tmp_path / "journal"), answers


@pytest.fixture
def session(tmp_path):
    return trade(tmp_path, 3.0)


def test_runner_journals_ahead_and_replays_exactly(session):
    report, engine, path, _ = session
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


def test_no_order_leaves_without_its_journal_record(tmp_path):
    report, engine, path, answers = trade(tmp_path, 2.5, wrap=lambda j: DiskFillsUp(j, orders=3))
    assert report.journal_failures > 0
    with Reader(path) as reader:
        journaled = {unpack(RecordType.ORDER_SENT, r.payload)["token"].decode()
                     for r in reader.records() if r.rtype == RecordType.ORDER_SENT}
    assert len(journaled) <= 3
    venue_tokens = set()
    for payload in answers:
        msg = ouch.decode_outbound(payload)
        if hasattr(msg, "token"):
            venue_tokens.add(msg.token)
    assert venue_tokens and venue_tokens <= journaled        # the venue saw only journaled orders
    assert "journal-unhealthy" in engine.risk.faults
    from mm_core.risk import TradingState
    assert engine.risk.state is TradingState.HALTED
