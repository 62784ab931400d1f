"""The sampler: which clock ptp4l's ingress_time is on, and failures that must read UNKNOWN."""
import time
from dataclasses import replace

from audit.errors import ToolTimeout
from audit.health import HealthTracker
from audit.sampler import PmcSampler
from journal.catalogue import ClockState
from tests.audit.test_health import GOOD


class CannedClient:
    """Stands in for PmcClient: returns a given snapshot or raises a given error."""

    def __init__(self, result):
        self.result = result

    def query(self):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_software_timestamping_ages_the_sync_against_realtime():
    ingress = time.clock_gettime_ns(time.CLOCK_REALTIME) - 300_000_000
    obs = PmcSampler(CannedClient(replace(GOOD, timestamping="SOFTWARE", ingress_time_ns=ingress)))()
    assert 300_000_000 <= obs.sync_age_ns < 5_000_000_000
    assert HealthTracker().update(obs).state == ClockState.LOCKED


def test_hardware_timestamping_without_a_phc_cannot_age_the_sync():
    # lo has no PHC (ethtool -T says so): the Sync age is unknown, so the clock is not LOCKED
    snap = replace(GOOD, timestamping="HARDWARE", interface="lo", ingress_time_ns=37 * 10**9)
    obs = PmcSampler(CannedClient(snap))()
    assert obs.sync_age_ns is None and "lo has no PHC" in obs.error
    sample = HealthTracker().update(obs)
    assert sample.state == ClockState.FREERUN
    assert any(r.code == "sync_age" and "no PHC" in r.text for r in sample.verdicts["eu-hft"].reasons)


def test_hardware_timestamping_with_a_missing_phc_device():
    snap = replace(GOOD, timestamping="HARDWARE", interface="eth9", ingress_time_ns=1)
    obs = PmcSampler(CannedClient(snap), phc_device="/nonexistent/ptp7")()
    assert obs.sync_age_ns is None and "cannot open /nonexistent/ptp7" in obs.error


def test_pmc_failure_becomes_an_observation_without_snapshot():
    obs = PmcSampler(CannedClient(ToolTimeout("pmc on /x did not finish within 3 s")))()
    assert obs.snapshot is None and obs.error.startswith("ToolTimeout")
    sample = HealthTracker().update(obs)
    assert sample.state == ClockState.UNKNOWN and "did not finish" in str(sample.state_reasons[0])


def test_phc2sys_log_without_lines_blocks_lock(tmp_path):
    ingress = time.clock_gettime_ns(time.CLOCK_REALTIME)
    log = tmp_path / "phc2sys.log"
    log.write_text("")
    sampler = PmcSampler(CannedClient(replace(GOOD, ingress_time_ns=ingress)), phc2sys_log=str(log))
    assert HealthTracker().update(sampler()).state == ClockState.FREERUN
    log.write_text(f"phc2sys[{time.monotonic():.3f}]: CLOCK_REALTIME phc offset  -40 s2 freq +3 delay 500\n")
    obs = sampler()
    assert (obs.phc2sys_offset_ns, obs.phc2sys_locked) == (-40, True)
    assert HealthTracker().update(obs).state == ClockState.LOCKED


def _phc2sys_line(mono_s: float) -> str:
    return f"phc2sys[{mono_s:.3f}]: CLOCK_REALTIME phc offset  -40 s2 freq +3 delay 500\n"


def test_a_dead_phc2sys_is_not_locked(tmp_path):
    """phc2sys stamps its lines with CLOCK_MONOTONIC: its newest locked line, written while it ran,
    stops counting once it is older than a few update intervals (phc2sys died or hung)."""
    log = tmp_path / "phc2sys.log"
    now = time.monotonic()
    log.write_text(_phc2sys_line(now - 30) + _phc2sys_line(now - 29))     # died 29 s ago
    snap = replace(GOOD, ingress_time_ns=time.clock_gettime_ns(time.CLOCK_REALTIME))
    sampler = PmcSampler(CannedClient(snap), phc2sys_log=str(log), phc2sys_max_age_s=5)
    obs = sampler()
    assert obs.phc2sys_locked is False and obs.phc2sys_offset_ns == -40
    sample = HealthTracker().update(obs)
    assert sample.state != ClockState.LOCKED and sample.compliant_mask == 0
    assert any(r.code == "phc2sys" and "not running" in r.text for r in sample.state_reasons)
    with open(log, "a") as fh:                           # running again: a fresh line counts
        fh.write(_phc2sys_line(time.monotonic()))
    assert sampler().phc2sys_locked is True


def test_phc2sys_lines_without_a_time_are_not_locked(tmp_path):
    log = tmp_path / "phc2sys.log"
    log.write_text("CLOCK_REALTIME phc offset  -40 s2 freq +3 delay 500\n")
    obs = PmcSampler(CannedClient(GOOD), phc2sys_log=str(log))()
    assert obs.phc2sys_locked is False and "no time" in obs.phc2sys_detail
