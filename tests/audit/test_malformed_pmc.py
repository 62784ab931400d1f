"""Malformed pmc output is one UNKNOWN sample, never a traceback, a latched monitor or a crashed
runner: every field is range-checked against its PTP type (UInteger8 class and accuracy,
UInteger16 stepsRemoved, Integer16 UTC offset, finite ns floats) and a failure goes into the
snapshot's errors; bytes that are not UTF-8 are replaced; the sampler turns ValueError/OSError
into an observation error; the monitor reads compliant again once sampling works; and a sample
that cannot be packed reaches the runner's journal as UNKNOWN."""
import time
import types
from dataclasses import replace

import pytest
from click.testing import CliRunner

from audit.health import HealthTracker, Observation
from audit.monitor import ClockMonitor
from audit.pmc import PmcClient, parse_pmc_output, snapshot_from_responses
from audit.sampler import PmcSampler
from cli.clock_cmd import command
from journal.catalogue import ClockState, RecordType, unpack, unpack_json
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from tests.audit.test_health import GOOD, obs
from tests.audit.test_monitor import ScriptedSampler
from tests.audit.test_pmc_parse import REAL


@pytest.mark.parametrize("old,new,attr", [
    ("gm.ClockClass                         6", "gm.ClockClass 256", "gm_clock_class"),
    ("gm.ClockAccuracy                      0x21", "gm.ClockAccuracy 0x121", "gm_clock_accuracy"),
    ("gm.OffsetScaledLogVariance            0xffff", "gm.OffsetScaledLogVariance 0x10000",
     "gm_offset_scaled_log_variance"),
    ("stepsRemoved     1", "stepsRemoved 70000", "steps_removed"),
    ("stepsRemoved     1", "stepsRemoved -1", "steps_removed"),
    ("currentUtcOffset      37", "currentUtcOffset 40000", "utc_offset"),
    ("logSyncInterval         -3", "logSyncInterval 200", "log_sync_interval"),
    ("meanPathDelay    2113.0", "meanPathDelay nan", "mean_path_delay_ns"),
    ("meanPathDelay    2113.0", "meanPathDelay inf", "mean_path_delay_ns"),
    ("meanPathDelay    2113.0", "meanPathDelay 1e300", "mean_path_delay_ns"),
    ("master_offset              -761", f"master_offset {1 << 63}", "master_offset_ns"),
    ("ingress_time               1795276725255745228", "ingress_time -5", "ingress_time_ns"),
])
def test_a_field_outside_its_ptp_type_is_an_error_and_the_sample_unknown(old, new, attr):
    assert old in REAL
    snap = snapshot_from_responses(parse_pmc_output(REAL.replace(old, new)))
    assert getattr(snap, attr) is None and snap.errors, attr
    s = HealthTracker().update(Observation(snap, 1, 1, 100_000_000))
    assert s.state == ClockState.UNKNOWN and s.compliant_mask == 0
    assert any(r.code == "no_data" and ("range" in r.text or "finite" in r.text) for r in s.state_reasons)
    unpack(RecordType.CLOCK_SAMPLE, s.payload())          # and it journals


def test_in_range_extremes_are_accepted():
    text = REAL.replace("gm.ClockClass                         6", "gm.ClockClass 255") \
        .replace("currentUtcOffset      37", "currentUtcOffset -32768")
    snap = snapshot_from_responses(parse_pmc_output(text))
    assert snap.errors == () and snap.gm_clock_class == 255 and snap.utc_offset == -32768


def _fake_pmc(tmp_path, monkeypatch, body: str) -> None:
    fake = tmp_path / "pmc"
    fake.write_bytes(b"#!/bin/sh\ncat <<'OUT'\n" + body.encode("latin-1") + b"OUT\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")


def test_clock_check_with_a_nan_path_delay_is_unknown_not_a_traceback(tmp_path, monkeypatch):
    _fake_pmc(tmp_path, monkeypatch, REAL.replace("meanPathDelay    2113.0", "meanPathDelay    nan"))
    result = CliRunner().invoke(command, ["check", "--samples", "1"])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1 and "UNKNOWN" in result.output and "meanPathDelay" in result.output


def test_bytes_that_are_not_utf8_are_replaced_not_raised(tmp_path, monkeypatch):
    _fake_pmc(tmp_path, monkeypatch, REAL.replace("interface               h3b", "interface h\xff3b"))
    snap = PmcClient(str(tmp_path / "uds")).query()
    assert snap.interface == "h\ufffd3b" and snap.errors == ()


@pytest.mark.parametrize("exc", [ValueError("bad"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "x"),
                                 OSError(5, "I/O error")])
def test_the_sampler_turns_value_and_os_errors_into_an_observation_error(exc):
    def query():
        raise exc
    observation = PmcSampler(types.SimpleNamespace(query=query))()
    assert observation.snapshot is None and type(exc).__name__ in observation.error
    assert HealthTracker().update(observation).state == ClockState.UNKNOWN


def test_one_failed_tick_does_not_latch_the_monitor():
    good = ScriptedSampler([GOOD])
    calls = []

    def flaky() -> Observation:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("one bad tick")
        return good()
    monitor = ClockMonitor(flaky, rate_hz=50)
    with monitor:
        assert _until(lambda: len(calls) >= 3)
    assert monitor.sampler_failures == 1 and monitor.sampler_error is None
    assert monitor.compliant("us-cat")


def _until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.005)
    return predicate()


class _Journal:
    def __init__(self):
        self.records = []

    def append(self, rtype, payload, ts_ns=0, ts_source=0, clock_state=0, reserve=False):
        self.records.append((RecordType(rtype), bytes(payload), clock_state))
        return len(self.records)


class _Clock:
    def __init__(self, sample):
        self.sample = sample

    def current(self):
        return self.sample

    def compliant(self, profile, now_mono_ns=None):
        return self.sample.compliant(profile)


def test_a_sample_that_does_not_fit_clock_sample_is_journaled_unknown_not_raised():
    bad = replace(HealthTracker().update(obs(0)), gm_clock_class=256)
    journal = _Journal()
    engine = types.SimpleNamespace(urgent=None, on_event=lambda ev: [], venue_seq=0)
    runner = Runner(engine, journal, RunnerSettings(), _Clock(bad))
    runner._on_clock(0)
    kinds = [r[0] for r in journal.records]
    assert RecordType.CLOCK_SAMPLE in kinds and RecordType.METRICS in kinds
    sample = next(unpack(RecordType.CLOCK_SAMPLE, p) for t, p, _ in journal.records if t == RecordType.CLOCK_SAMPLE)
    assert int(sample["state"]) == int(ClockState.UNKNOWN) and int(sample["compliant_mask"]) == 0
    alert = next(unpack_json(p) for t, p, _ in journal.records if t == RecordType.METRICS)
    assert alert["alert"] == "clock-sample-unfit" and "gm_clock_class" in alert["detail"]
