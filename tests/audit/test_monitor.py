"""The clock monitor's thread, its cheap reads, its fail-closed rules and its Prometheus output."""
import threading
import time
from dataclasses import replace

import pytest

from audit.errors import HealthConfigError
from audit.health import HealthConfig, HealthTracker, Observation
from audit.monitor import ClockMonitor
from audit.prometheus import exposition
from journal.catalogue import ClockState, RecordType, TsSource, unpack
from tests.audit.test_health import GOOD

S = 1_000_000_000


class ScriptedSampler:
    """Plays back snapshots with real clock readings; the sequence is the test's input."""

    def __init__(self, snapshots):
        self.snapshots = list(snapshots)
        self.calls = 0

    def __call__(self) -> Observation:
        snap = self.snapshots[min(self.calls, len(self.snapshots) - 1)]
        self.calls += 1
        return Observation(snap, time.clock_gettime_ns(time.CLOCK_MONOTONIC),
                           time.clock_gettime_ns(time.CLOCK_REALTIME), 50_000_000 if snap else None,
                           None if snap else "pmc is not installed")


class ListJournal:
    def __init__(self, fail_after: int | None = None):
        self.records = []
        self.fail_after = fail_after

    def append(self, rtype, payload, ts_ns=0, ts_source=0, clock_state=0):
        if self.fail_after is not None and len(self.records) >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.records.append((rtype, payload, ts_ns, ts_source, clock_state))
        return len(self.records)


def _wait(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_before_the_first_sample_the_clock_is_unknown_and_not_compliant():
    monitor = ClockMonitor(ScriptedSampler([GOOD]))
    assert monitor.current().state == ClockState.UNKNOWN
    assert not monitor.compliant("us-cat")


def test_thread_samples_at_its_rate_and_journals_each_sample():
    journal = ListJournal()
    monitor = ClockMonitor(ScriptedSampler([GOOD]), journal=journal, rate_hz=200)
    with monitor:
        assert _wait(lambda: monitor.samples_taken >= 10)
    taken = monitor.samples_taken
    time.sleep(0.05)
    assert monitor.samples_taken == taken            # stopped means stopped
    assert len(journal.records) == taken
    rtype, payload, ts_ns, ts_source, clock_state = journal.records[-1]
    assert rtype == RecordType.CLOCK_SAMPLE and ts_source == TsSource.USER
    assert clock_state == ClockState.LOCKED
    assert ts_ns == monitor.current().realtime_ns
    assert int(unpack(RecordType.CLOCK_SAMPLE, payload)["state"]) == ClockState.LOCKED
    assert monitor.compliant("eu-hft")


def test_stale_sample_is_not_compliant():
    monitor = ClockMonitor(ScriptedSampler([GOOD]), rate_hz=1, stale_after_s=0.5)
    sample = monitor.sample_once()
    assert monitor.compliant("eu-hft", now_mono_ns=sample.mono_ns + S // 4)
    assert not monitor.compliant("eu-hft", now_mono_ns=sample.mono_ns + S)


def test_journal_failure_latches_non_compliance():
    journal = ListJournal(fail_after=2)
    monitor = ClockMonitor(ScriptedSampler([GOOD]), journal=journal)
    monitor.sample_once()
    monitor.sample_once()
    assert monitor.compliant("eu-hft")
    monitor.sample_once()
    assert isinstance(monitor.journal_error, OSError)
    monitor.sample_once()
    assert not monitor.compliant("eu-hft") and len(journal.records) == 2


def test_sampler_bug_latches_and_publishes_unknown():
    def broken():
        raise RuntimeError("boom")
    monitor = ClockMonitor(broken, rate_hz=100)
    with monitor:
        assert _wait(lambda: monitor.sampler_error is not None)
    assert monitor.current().state == ClockState.UNKNOWN
    assert "boom" in str(monitor.current().state_reasons[0])
    assert not monitor.compliant("us-cat")


def test_missing_pmc_reads_unknown():
    monitor = ClockMonitor(ScriptedSampler([None]))
    sample = monitor.sample_once()
    assert sample.state == ClockState.UNKNOWN and not monitor.compliant("us-cat")


def test_reads_from_many_threads_while_sampling_never_fail():
    monitor = ClockMonitor(ScriptedSampler([GOOD]), rate_hz=500)
    errors = []

    def reader():
        for _ in range(20_000):
            s = monitor.current()
            if s.state not in (ClockState.UNKNOWN, ClockState.LOCKED):
                errors.append(s.state)

    with monitor:
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == [] and monitor.samples_taken > 0


def test_bad_rate_is_rejected():
    with pytest.raises(HealthConfigError):
        ClockMonitor(ScriptedSampler([GOOD]), rate_hz=0)


# -- Prometheus: each state maps to its own number; HOLDOVER is never folded into FREERUN ----------

def _sample_in(state: ClockState):
    tracker = HealthTracker(HealthConfig(max_holdover_ns=10 * S))
    mono = 100 * S
    if state == ClockState.UNKNOWN:
        return tracker.update(Observation(None, mono, mono, None, "no pmc"))
    if state == ClockState.FREERUN:
        return tracker.update(Observation(replace(GOOD, port_state="LISTENING"), mono, mono, None))
    if state == ClockState.DEGRADED:      # a verifier whose offset jumped before it was steady
        tracker = HealthTracker(HealthConfig(free_running=True, stable_samples=3))
        tracker.update(Observation(GOOD, mono, mono, 0))
        return tracker.update(Observation(replace(GOOD, master_offset_ns=60_000), mono + S, mono + S, 0))
    locked = tracker.update(Observation(GOOD, mono, mono, 0))
    if state == ClockState.LOCKED:
        return locked
    return tracker.update(Observation(replace(GOOD, port_state="LISTENING"), mono + S, mono + S, None))


@pytest.mark.parametrize("state,value", [
    (ClockState.UNKNOWN, 0), (ClockState.LOCKED, 1), (ClockState.HOLDOVER, 2), (ClockState.FREERUN, 3),
    (ClockState.DEGRADED, 4)])
def test_state_metric_mapping(state, value):
    sample = _sample_in(state)
    assert sample.state == state
    text = exposition(sample, {"uds": "/var/run/ptp4l"})
    assert f'mmaudit_clock_state{{uds="/var/run/ptp4l"}} {value}\n' in text
    assert f'mmaudit_clock_state_info{{state="{state.name}",uds="/var/run/ptp4l"}} 1\n' in text
    assert text.count("mmaudit_clock_state_info{") == 5
    assert "0 UNKNOWN, 1 LOCKED, 2 HOLDOVER, 3 FREERUN, 4 DEGRADED." in text
    assert sum(line.endswith(" 1") for line in text.splitlines() if line.startswith("mmaudit_clock_state_info")) == 1


def test_exposition_carries_offset_delay_class_bound_and_compliance():
    sample = _sample_in(ClockState.LOCKED)
    lines = exposition(sample).splitlines()
    assert "mmaudit_clock_offset_ns -800" in lines
    assert "mmaudit_clock_path_delay_ns 2100" in lines
    assert "mmaudit_clock_gm_clock_class 6" in lines
    assert f"mmaudit_clock_error_bound_ns {sample.error_bound_ns}" in lines
    assert 'mmaudit_clock_compliant{profile="eu-hft"} 1' in lines
    for name in ("offset_ns", "path_delay_ns", "state", "gm_clock_class", "error_bound_ns"):
        assert f"# TYPE mmaudit_clock_{name} gauge" in lines


def test_label_values_are_escaped():
    text = exposition(_sample_in(ClockState.LOCKED), {"uds": 'a"b\\c'})
    assert 'uds="a\\"b\\\\c"' in text


def test_samples_since_hands_out_each_sample_once_and_counts_what_the_history_lost():
    from audit.monitor import HISTORY
    monitor = ClockMonitor(ScriptedSampler([GOOD]))
    assert monitor.samples_since(0) == (0, (), 0)
    taken = [monitor.sample_once() for _ in range(3)]
    count, new, missed = monitor.samples_since(0)
    assert (count, new, missed) == (3, tuple(taken), 0)
    assert monitor.samples_since(3) == (3, (), 0)
    more = [monitor.sample_once() for _ in range(HISTORY + 5)]
    count, new, missed = monitor.samples_since(3)
    assert count == HISTORY + 8 and new == tuple(more[-HISTORY:]) and missed == 5
    # a sampler bug publishes its UNKNOWN sample in the same feed
    monitor.sampler = lambda: 1 / 0
    monitor.start()
    try:
        assert _wait(lambda: monitor.samples_since(count)[1])
    finally:
        monitor.stop()
    assert monitor.samples_since(count)[1][0].state == ClockState.UNKNOWN
