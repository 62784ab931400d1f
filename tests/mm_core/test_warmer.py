"""The idle-time warmer (mm_core.warmer): its shadow engine keeps going through the order path
(orders sent, answered, replaced) over thousands of steps in bounded memory, is rebuilt when it
gets stuck, never changes what the real engine decides, and in the runner's busy-poll loop is
stepped while idle, turned off by warm_interval_ns = 0, and disabled by its first exception with
one journaled alert while the run goes on."""
from __future__ import annotations

import dataclasses
import gc
import socket
import threading
import time
import tracemalloc

import pytest

from journal import Journal, Reader
from journal.catalogue import RecordType, raw_bytes, unpack, unpack_json
from mm_core import runner as runner_module
from mm_core import warmer as warmer_module
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import OperatorCommand, SendOrder
from mm_core.risk import TradingState
from mm_core.protocol import itch
from mm_core.runner import Runner
from mm_core.runnerrecords import engine_events
from mm_core.runnertypes import RunnerError, RunnerSettings
from mm_core.warmer import Warmer
from tests.mm_core.fake_venue import new_engine
from tests.mm_core.test_runner import LockedClock
from tests.mm_core.test_runner_busy import md_runner
from tests.mm_core.wire import ACME, LIMITS_TEXT, SYMBOLS, Feed, gateway, make_engine, simulate, two_sided


def real_engine(limits: str = LIMITS_TEXT) -> Engine:
    return Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway(limits))


def test_the_shadow_keeps_sending_orders_through_the_gateway():
    warmer = Warmer(real_engine())
    for _ in range(5_000):
        warmer.step()
    shadow = warmer.shadow
    assert not warmer.failed and warmer.rebuilds == 0 and warmer.steps == 5_000
    # about one order for every three steps (a packet, the venue's answer, a timer now and then),
    # each allowed by the shadow's own gateway: replaces, as the quotes follow the moving book
    assert warmer.orders > 1_000 and shadow.counts["orders_sent"] == warmer.orders
    assert shadow.counts["denials"] == 0 and shadow.counts["md_packets"] > 2_000
    assert shadow.risk.state is TradingState.ACTIVE
    assert len(shadow.oms.live) <= 4


def test_the_shadows_memory_stays_bounded():
    warmer = Warmer(real_engine())
    for _ in range(5_000):
        warmer.step()
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            warmer.step()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    shadow = warmer.shadow
    assert not warmer.failed and warmer.rebuilds == 0
    assert grown < 256 * 1024, grown
    # the OMS forgets terminal orders (pruned on the shadow's timer), the scripted venue holds
    # only the resting quotes, nothing waits unanswered
    assert len(shadow.oms.orders) < 300 and len(warmer._script.orders) <= 4 and len(warmer._pending) <= 4


def test_a_stuck_shadow_is_rebuilt():
    warmer = Warmer(real_engine())
    for _ in range(200):
        warmer.step()
    warmer.shadow.on_event(OperatorCommand(warmer._script.now, "kill", "test", "stuck"))
    assert warmer.shadow.risk.state is not TradingState.ACTIVE
    orders = warmer.orders
    for _ in range(500):
        warmer.step()
    assert warmer.rebuilds == 1 and not warmer.failed
    assert warmer.orders > orders + 50 and warmer.shadow.risk.state is TradingState.ACTIVE


def test_a_shadow_stuck_again_soon_after_its_rebuild_fails():
    failures = []
    warmer = Warmer(real_engine(), failures.append)
    for kill in range(2):
        for _ in range(200):
            warmer.step()
        warmer.shadow.on_event(OperatorCommand(warmer._script.now, "kill", "test", "stuck"))
    warmer.step()
    assert warmer.rebuilds == 1 and len(failures) == 1 and "stuck again after 200 steps" in failures[0]


def test_a_shadow_that_never_trades_fails_once():
    # the gateway refuses every quoted symbol: a fresh shadow sends nothing, warming is pointless
    limits = LIMITS_TEXT.replace("restricted = []", "restricted = [1, 2]")
    failures = []
    warmer = Warmer(real_engine(limits), failures.append)
    for _ in range(500):
        warmer.step()
    assert warmer.orders == 0 and len(failures) == 1 and "ShadowError" in failures[0]
    assert warmer.failed == failures[0] and warmer.shadow is None
    steps = warmer.steps
    warmer.step()
    assert warmer.steps == steps


def test_a_failure_building_the_shadow_is_reported_not_raised():
    failures = []
    engine = real_engine()
    engine.risk = object()          # no limits to build the shadow's gateway from
    warmer = Warmer(engine, failures.append)
    warmer.step()
    assert len(failures) == 1 and failures[0].startswith("AttributeError") and warmer.steps == 0


def test_the_shadow_does_not_change_the_real_engines_decisions():
    """A recorded session through an engine alone, and again with a shadow step (warmer built from
    that engine) before every event: the same orders, byte for byte, and the same final state."""
    events = simulate(3, 3_000)[0]
    alone, warmed = make_engine(), make_engine()
    warmer = Warmer(warmed)
    sent = {}
    for engine, shadow in ((alone, None), (warmed, warmer)):
        out = []
        for event in events:
            if shadow is not None:
                shadow.step()
            out.extend(a.packet for a in engine.on_event(event) if type(a) is SendOrder)
        sent[engine is warmed] = out
    assert warmer.orders > 500 and not warmer.failed
    assert sent[True] == sent[False] and len(sent[True]) > 50
    assert warmed.state_hash() == alone.state_hash()


class CountingWarmer(Warmer):
    made: list = []

    def __init__(self, *args) -> None:
        super().__init__(*args)
        CountingWarmer.made.append(self)


def idle_run(tmp_path, monkeypatch, name: str, **settings):
    """A busy-poll runner with nothing to read for 0.3 s: (its warmers, the journal's alerts)."""
    CountingWarmer.made = []
    monkeypatch.setattr(runner_module, "Warmer", CountingWarmer)
    with Journal(tmp_path / name) as journal:
        runner, peer, _ = md_runner(journal, True)
        runner.settings = dataclasses.replace(runner.settings, **settings)
        report = runner.run(0.3)
        peer.close()
    assert report.stop_reason == "duration"
    with Reader(str(tmp_path / name)) as reader:
        docs = [unpack_json(r.payload) for r in reader.records() if r.rtype == RecordType.METRICS]
    return CountingWarmer.made, [d for d in docs if "alert" in d]


def test_the_busy_poll_loop_steps_the_shadow_while_idle(tmp_path, monkeypatch):
    made, alerts = idle_run(tmp_path, monkeypatch, "on")
    assert len(made) == 1 and made[0].steps > 100 and made[0].orders > 30 and not alerts
    # at most one step per interval: 0.3 s of 250 us intervals
    assert made[0].steps <= 0.3e9 / RunnerSettings().warm_interval_ns + 1


def test_warm_interval_zero_turns_it_off(tmp_path, monkeypatch):
    made, alerts = idle_run(tmp_path, monkeypatch, "off", warm_interval_ns=0)
    assert made == [] and not alerts
    made, _ = idle_run(tmp_path, monkeypatch, "wait", busy_poll=False)
    assert made == []


def test_an_exception_in_the_shadow_disables_it_with_one_alert(tmp_path, monkeypatch):
    def broken(self):
        raise RuntimeError("the script broke")

    monkeypatch.setattr(warmer_module._Script, "move", broken)
    made, alerts = idle_run(tmp_path, monkeypatch, "broken")
    assert len(made) == 1 and made[0].failed == "RuntimeError: the script broke"
    assert [a["alert"] for a in alerts] == ["warmer-failed"] and "the script broke" in alerts[0]["detail"]


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_a_bad_warm_interval_is_refused(value):
    with pytest.raises(RunnerError, match="warm_interval_ns"):
        Runner(real_engine(), None, RunnerSettings(warm_interval_ns=value), LockedClock())


def live_session(tmp_path, name: str, packets: list[bytes], **settings):
    """A busy-poll runner fed `packets` on its market-data socket once its loop runs, each sent
    10 ms after the one before was taken in (so no two are read in one turn, whatever the load),
    the run stopped 0.1 s after the last: (its warmers, the engine, the journal's records)."""
    CountingWarmer.made = []
    with Journal(tmp_path / name) as journal:
        runner, peer, address = md_runner(journal, True)
        runner.settings = dataclasses.replace(runner.settings, **settings)
        done = threading.Event()

        def feed():
            while runner._thread is None:      # the loop's first clock sample before any packet
                time.sleep(0.001)
            time.sleep(0.05)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as venue:
                for i, packet in enumerate(packets):
                    time.sleep(0.01)
                    venue.sendto(packet, address)
                    until = time.monotonic() + 5.0
                    while runner.report.inputs <= i and time.monotonic() < until:
                        time.sleep(0.001)
            time.sleep(0.1)
            done.set()
        sender = threading.Thread(target=feed)
        sender.start()
        report = runner.run(30.0, done)
        sender.join()
        peer.close()
    assert report.stop_reason == "stopped"
    with Reader(str(tmp_path / name)) as reader:
        return CountingWarmer.made, runner.engine, list(reader.records())


def test_a_warmed_live_session_journals_what_an_unwarmed_one_does(tmp_path, monkeypatch):
    """The same market data into a busy-poll runner with warming on and off: the same packets
    journaled, byte for byte, no alert, nothing of the shadow's; each journal replays through a
    fresh engine to its session's orders and final state (a shadow order or decision leaking into
    the real engine or its journal would break that). The two sessions' orders are not compared
    with each other: they depend on when the runner's timers fell between the packets, which a
    loaded machine moves (test_the_shadow_does_not_change_the_real_engines_decisions compares
    decisions on the same events with and without the shadow, deterministically)."""
    monkeypatch.setattr(runner_module, "Warmer", CountingWarmer)
    feed = Feed()
    book, refs = two_sided(feed, ACME, 1_000_000, 1_000_100)
    packets = [feed.packet(*book)]
    for i in range(12):       # the best bid a tick up, then back
        price, back = (1_000_000, 1_000_100) if i % 2 else (1_000_100, 1_000_000)
        old, new = refs.pop(back), feed.ref()
        refs[price] = new
        packets.append(feed.packet(itch.OrderReplace(ACME, 0, 0, old, new, 500, price)))
    journaled = {}
    for interval in (0, 100_000):
        made, engine, records = live_session(tmp_path, f"w{interval}", packets, warm_interval_ns=interval)
        assert len(made) == (1 if interval else 0) and all(m.steps > 100 and not m.failed for m in made)
        assert {r.rtype for r in records} == {RecordType.METRICS, RecordType.CLOCK_SAMPLE, RecordType.TIMER,
                                              RecordType.MD_PACKET, RecordType.ORDER_SENT, RecordType.TX_TS}
        docs = [unpack_json(r.payload) for r in records if r.rtype == RecordType.METRICS]
        assert not [d for d in docs if "alert" in d]
        sent = [bytes(r.payload) for r in records if r.rtype == RecordType.ORDER_SENT]
        journaled[interval] = [bytes(r.payload) for r in records if r.rtype == RecordType.MD_PACKET], sent
        fresh = new_engine()
        replayed = [a.packet for e in engine_events(records) for a in fresh.on_event(e) if type(a) is SendOrder]
        assert replayed == [raw_bytes(unpack(RecordType.ORDER_SENT, p)) for p in sent]
        assert fresh.state_hash() == engine.state_hash()
    assert journaled[0][0] == journaled[100_000][0] and len(journaled[0][0]) == len(packets)
    assert journaled[0][1] and journaled[100_000][1]
