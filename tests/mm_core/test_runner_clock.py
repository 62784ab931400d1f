"""The runner's clock evidence, through a real venue, journal and audit.monitor.ClockMonitor:
every monitor sample journaled exactly once at its own measurement time, a stalled monitor
recorded as UNKNOWN with no profile bit, every record carrying the clock state in force, and
engine notes never labelled with another clock's stamp."""
import threading
import time
from dataclasses import replace

import pytest

from audit.health import HealthTracker, Observation
from audit.monitor import ClockMonitor
from journal import Journal, Reader
from journal.catalogue import ClockState, RecordType, TsSource, unpack
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.runner import Runner
from mm_core.runnerrecords import engine_events
from mm_core.runnertypes import RunnerSettings
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.audit.test_health import GOOD
from tests.mm_core.test_runner import free_udp_port
from tests.mm_core.wire import SYMBOLS, gateway


class StallingSampler:
    """A ptp4l that answers (the GOOD snapshot, a Sync 100 ms old, measured with the real clocks)
    `answers` times, then hangs like a pmc that never returns, until released (bounded)."""

    def __init__(self, answers: int) -> None:
        self.left = answers
        self.release = threading.Event()
        self.taken: list[int] = []     # realtime_ns of each observation handed out

    def __call__(self) -> Observation:
        if self.left <= 0:
            self.release.wait(30)
        self.left -= 1
        mono, real = time.monotonic_ns(), time.clock_gettime_ns(time.CLOCK_REALTIME)
        self.taken.append(real)
        return Observation(replace(GOOD, ingress_time_ns=real - 100_000_000), mono, real, 100_000_000)


def run_with_monitor(tmp_path, sampler, seconds: float, rate_hz: float, stale_after_s: float, prepare=None):
    """`prepare(runner, journal)`, when given, before the run."""
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=30.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=5.0)
    monitor = ClockMonitor(sampler, HealthTracker(), rate_hz=rate_hz, stale_after_s=stale_after_s)
    monitor.start()
    try:
        deadline = time.monotonic() + 10
        while monitor.samples_taken < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        first_count = monitor.samples_since(0)[0]
        with Venue(config) as venue:
            ports = venue.ports
            settings = RunnerSettings(itch_port=port, ouch_port=ports.ouch, rerequest_port=ports.rerequest)
            engine = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
            with Journal(str(tmp_path / "journal")) as journal:
                runner = Runner(engine, journal, settings, monitor)
                if prepare is not None:
                    prepare(runner, journal)
                report = runner.run(seconds)
    finally:
        sampler.release.set()
        monitor.stop()
    with Reader(str(tmp_path / "journal")) as reader:
        records = list(reader.records())
    return report, engine, records, first_count


@pytest.fixture(scope="module")
def stalled(tmp_path_factory):
    """A 5 Hz monitor, stale after 1 s, whose ptp4l hangs after 8 answers (~1.6 s), under a runner
    that looks at the clock once a second for 4.5 s."""
    sampler = StallingSampler(8)
    report, engine, records, first_count = run_with_monitor(
        tmp_path_factory.mktemp("stalled"), sampler, 4.5, rate_hz=5, stale_after_s=1.0)
    return sampler, report, engine, records, first_count


def test_each_sample_is_journaled_once_at_its_own_time(stalled):
    sampler, report, _, records, first_count = stalled
    assert report.journal_failures == 0
    samples = [r for r in records if r.rtype == RecordType.CLOCK_SAMPLE]
    measured = [r.ts_ns for r in samples if r.clock_state == ClockState.LOCKED]
    # the sample in force when the runner started, then every later one: no gaps, no repeats,
    # though the monitor samples five times per runner look (a loaded machine may start the venue
    # and the runner after the monitor's next tick, so the first is the one then in force)
    assert measured and measured[0] in sampler.taken, measured
    first = sampler.taken.index(measured[0])
    assert first >= first_count - 1 and measured == sampler.taken[first:8], (first, first_count)
    assert all(r.ts_source == TsSource.USER for r in samples)


def test_a_stalled_monitor_is_recorded_unknown_with_every_bit_cleared(stalled):
    _, _, engine, records, _ = stalled
    samples = [r for r in records if r.rtype == RecordType.CLOCK_SAMPLE]
    last = samples[-1]
    rec = unpack(RecordType.CLOCK_SAMPLE, last.payload)
    assert last.clock_state == ClockState.UNKNOWN and int(rec["state"]) == ClockState.UNKNOWN
    assert int(rec["compliant_mask"]) == 0 and int(rec["error_bound_ns"]) == -1
    assert sum(r.clock_state == ClockState.UNKNOWN for r in samples) == 1     # told once
    # taken at least stale_after (1 s) after the newest real sample it replaces
    assert last.ts_ns - samples[-2].ts_ns >= 1_000_000_000
    # replay sees the same clock inputs and reaches the same state
    fresh = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
    for event in engine_events(records):
        fresh.on_event(event)
    assert fresh.state_hash() == engine.state_hash()


def test_every_record_carries_the_clock_state_in_force(stalled):
    _, _, _, records, _ = stalled
    first = next(i for i, r in enumerate(records) if r.rtype == RecordType.CLOCK_SAMPLE)
    assert all(r.clock_state == ClockState.UNKNOWN for r in records[:first])
    state = None
    kinds = set()
    for r in records[first:]:
        if r.rtype == RecordType.CLOCK_SAMPLE:
            state = int(unpack(RecordType.CLOCK_SAMPLE, r.payload)["state"])
            continue
        assert r.clock_state == state, (r.seq, RecordType(r.rtype).name, r.clock_state, state)
        kinds.add(RecordType(r.rtype))
    # orders, market data, the venue's answers and TX stamps were all among them
    assert {RecordType.ORDER_SENT, RecordType.MD_PACKET, RecordType.VENUE_MSG, RecordType.TX_TS} <= kinds
    locked = [r for r in records if r.rtype == RecordType.ORDER_SENT and r.clock_state == ClockState.LOCKED]
    assert locked, "orders sent while the clock was LOCKED say so"


_INPUTS = {RecordType.MD_PACKET, RecordType.VENUE_MSG, RecordType.TIMER, RecordType.CLOCK_SAMPLE,
           RecordType.OPERATOR_CMD, RecordType.ORDER_SENT, RecordType.TX_TS}


def test_engine_notes_after_a_kernel_stamped_packet_carry_our_own_user_stamp(stalled):
    """A note the engine writes while handling a packet is labelled USER, so it is stamped with
    user-space CLOCK_REALTIME after the decision, never with the packet's kernel (or NIC) stamp."""
    _, _, _, records, _ = stalled
    checked = 0
    for prev, rec in zip(records, records[1:]):
        if prev.rtype in (RecordType.MD_PACKET, RecordType.VENUE_MSG) and prev.ts_source != TsSource.USER \
                and rec.rtype not in _INPUTS:
            assert rec.ts_source == TsSource.USER
            assert rec.ts_ns > prev.ts_ns, (RecordType(rec.rtype).name, rec.ts_ns, prev.ts_ns)
            checked += 1
    assert checked, "no engine note followed a kernel-stamped packet in this session"
