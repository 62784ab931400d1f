"""The sampler: which clock ptp4l's ingress_time is on, and failures that must read UNKNOWN."""
import time
from dataclasses import replace

import pytest

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
    assert obs.system_offset_needed and obs.system_offset_ns is None and "no PHC" in obs.system_offset_error
    sample = HealthTracker().update(obs)
    # nor can the system clock that stamps our records be compared with it: UNKNOWN
    assert sample.state == ClockState.UNKNOWN and sample.compliant_mask == 0
    assert any(r.code == "no_data" and "no PHC" in r.text for r in sample.verdicts["eu-hft"].reasons)


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


class SkewedPhc:
    """Stands in for audit.phc.PhcClock (this machine has no /dev/ptp*): a PHC on TAI whose UTC
    time is `skew_ns` ahead of CLOCK_REALTIME, read with the real clock each time."""

    def __init__(self, skew_ns: int, tai_utc_s: int = 37) -> None:
        self.shift = tai_utc_s * 10**9 + skew_ns

    def gettime_ns(self) -> int:
        return time.clock_gettime_ns(time.CLOCK_REALTIME) + self.shift

    def compare_realtime(self, samples: int = 9):
        from audit.phc import PhcComparison
        before = time.clock_gettime_ns(time.CLOCK_REALTIME)
        phc = before + self.shift
        after = time.clock_gettime_ns(time.CLOCK_REALTIME)
        return PhcComparison(phc, (before + after) // 2, after - before)

    def close(self) -> None:
        pass


def hardware_sampler(skew_ns: int, **snap_kw) -> PmcSampler:
    phc = SkewedPhc(skew_ns)
    snap = replace(GOOD, timestamping="HARDWARE", interface="eth9",
                   ingress_time_ns=phc.gettime_ns() - 100_000_000, **snap_kw)
    sampler = PmcSampler(CannedClient(snap))
    sampler._phc = phc
    return sampler


def test_hardware_timestamping_adds_the_system_clocks_distance_from_the_phc():
    """ptp4l LOCKED describes the PHC; our records carry CLOCK_REALTIME. A system clock 300 us
    behind the PHC (phc2sys lost, or never run) is in the bound: eu-hft fails, eu-algo holds."""
    obs = hardware_sampler(300_000)()
    assert obs.system_offset_needed and -300_000 - 50_000 < obs.system_offset_ns < -300_000 + 50_000
    sample = HealthTracker().update(obs)
    assert sample.state == ClockState.LOCKED
    assert sample.error_bound_ns >= 800 + 300_000
    assert not sample.compliant("eu-hft") and sample.compliant("eu-algo")
    assert "error_bound" in {r.code for r in sample.verdicts["eu-hft"].reasons}
    # a system clock that follows the PHC closely keeps eu-hft
    close = HealthTracker().update(hardware_sampler(0)())
    assert close.state == ClockState.LOCKED and close.compliant("eu-hft")


def test_hardware_timestamping_without_a_valid_utc_offset_is_unknown():
    sample = HealthTracker().update(hardware_sampler(0, utc_offset_valid=False)())
    assert sample.state == ClockState.UNKNOWN and sample.compliant_mask == 0
    assert any("not compared" in r.text and "UTC offset" in r.text for r in sample.state_reasons)


def test_software_timestamping_measures_no_phc():
    obs = PmcSampler(CannedClient(replace(GOOD, timestamping="SOFTWARE",
                                          ingress_time_ns=time.clock_gettime_ns(time.CLOCK_REALTIME))))()
    assert not obs.system_offset_needed and obs.system_offset_ns is None
    assert HealthTracker().update(obs).state == ClockState.LOCKED


def test_ptp4l_log_lines_since_the_last_sample_give_the_excursion_and_servo_state(tmp_path):
    ingress = time.clock_gettime_ns(time.CLOCK_REALTIME)
    log = tmp_path / "ptp4l.log"

    def line(offset: int, state: int, ago_s: float = 0.0) -> str:   # stamped like ptp4l -m
        mono = time.clock_gettime(time.CLOCK_MONOTONIC) - ago_s
        return f"ptp4l[{mono:.3f}]: master offset {offset:9d} s{state} freq   -2961 path delay       741\n"

    # a long-running ptp4l's history (a step a minute ago: older than phc2sys_max_age_s, and
    # never before boot, whose CLOCK_MONOTONIC stamps start at 0) is not news to the first sample
    log.write_text(line(5_000_000, 1, ago_s=60) + line(-12, 2, ago_s=1))
    sampler = PmcSampler(CannedClient(replace(GOOD, ingress_time_ns=ingress)), ptp4l_log=str(log))
    first = sampler()
    assert (first.servo_excursion_ns, first.servo_unlocked) == (12, False)
    with log.open("a") as fh:                # a step between two pmc runs: s0, s1, back to s2
        fh.write(line(1_000_400, 0) + line(999_800, 1)
                 + "phc2sys[100.300]: CLOCK_REALTIME phc offset  5000000 s0 freq +0 delay 500\n"
                 + line(-300, 2) + "ptp4l: master offset     -400 s2 freq   -2900 path delay       741\n")
    second = sampler()
    assert (second.servo_excursion_ns, second.servo_unlocked) == (1_000_400, True)
    with log.open("a") as fh:                # summaries (Sync faster than summary_interval): max
        mono = time.clock_gettime(time.CLOCK_MONOTONIC)
        fh.write(f"ptp4l[{mono:.3f}]: rms  906 max 61618 freq   +145 +/- 800 delay  1811 +/- 258\n")
    third = sampler()
    assert (third.servo_excursion_ns, third.servo_unlocked) == (61_618, False)
    fourth = sampler()                       # nothing new logged: nothing claimed
    assert (fourth.servo_excursion_ns, fourth.servo_unlocked) == (None, False)
    tracker = HealthTracker()
    assert [tracker.update(o).state for o in (first, second)] == [ClockState.LOCKED, ClockState.DEGRADED]


class SequenceClient:
    """Stands in for PmcClient: returns the given snapshots one per query."""

    def __init__(self, *snaps):
        self.snaps = list(snaps)

    def query(self):
        return self.snaps.pop(0)


@pytest.mark.parametrize("ptp_timescale", [True, False])
def test_a_timestamping_mode_that_did_not_arrive_is_unknown_not_software(ptp_timescale):
    """PORT_PROPERTIES_NP lost in one pmc run (asked last, the answer missed the deadline): the
    mode is unknown, so is the clock ptp4l disciplines. Taking it for software would age the Sync
    against the wrong clock and drop the system clock's term from the bound (a system clock 5 ms
    off the PHC passed as compliant): UNKNOWN, nothing claimed."""
    hardware = hardware_sampler(5_000_000, ptp_timescale=ptp_timescale)
    snap = hardware.client.query()
    lost = replace(snap, timestamping=None, interface=None, missing=("PORT_PROPERTIES_NP",))
    sampler = PmcSampler(SequenceClient(snap, lost))
    sampler._phc = hardware._phc
    tracker = HealthTracker()
    first = tracker.update(sampler())
    assert first.state == ClockState.LOCKED and first.error_bound_ns > 5_000_000
    obs = sampler()
    assert obs.sync_age_ns is None and obs.system_offset_needed and obs.system_offset_ns is None
    sample = tracker.update(obs)
    assert sample.state == ClockState.UNKNOWN and sample.compliant_mask == 0
    assert any("timestamping" in r.text and "PORT_PROPERTIES_NP" in r.text for r in sample.state_reasons)


TAG = "[ptp4l.0.config]"      # linuxptp's message_tag, as a Debian unit sets it


def test_tagged_ptp4l_lines_give_the_excursion_between_two_samples(tmp_path):
    """ptp4l with message_tag: a 900 us excursion it logged between two pmc samples is seen (it
    was not: no tagged line parsed, and the clock passed as LOCKED, 1.9 us, eu-hft compliant)."""
    log = tmp_path / "ptp4l.log"
    log.write_text("")
    snap = replace(GOOD, ingress_time_ns=time.clock_gettime_ns(time.CLOCK_REALTIME))
    sampler = PmcSampler(CannedClient(snap), ptp4l_log=str(log))
    tracker = HealthTracker()
    assert tracker.update(sampler()).state == ClockState.LOCKED
    mono = time.clock_gettime(time.CLOCK_MONOTONIC)
    log.write_text(f"ptp4l[{mono:.3f}]: {TAG} master offset 900000 s2 freq +1234 path delay 2100\n"
                   f"ptp4l[{mono:.3f}]: {TAG} master offset -700 s2 freq +1234 path delay 2100\n")
    obs = sampler()
    assert obs.servo_excursion_ns == 900_000 and obs.servo_log_note is None
    sample = tracker.update(obs)
    assert sample.state == ClockState.DEGRADED and sample.error_bound_ns > 900_000
    assert not sample.compliant("eu-hft")


def test_tagged_phc2sys_lines_count_as_its_servo(tmp_path):
    log = tmp_path / "phc2sys.log"
    log.write_text(f"phc2sys[{time.monotonic():.3f}]: [phc2sys.0] CLOCK_REALTIME phc offset -40 s2 freq +3 "
                   "delay 500\n")
    snap = replace(GOOD, ingress_time_ns=time.clock_gettime_ns(time.CLOCK_REALTIME))
    obs = PmcSampler(CannedClient(snap), phc2sys_log=str(log))()
    assert (obs.phc2sys_offset_ns, obs.phc2sys_locked) == (-40, True)
    assert HealthTracker().update(obs).state == ClockState.LOCKED


def test_logs_read_without_a_servo_line_say_so(tmp_path):
    """Lines read, none understood as a servo line: said in the sample's reasons (ptp4l) and in
    why phc2sys does not count as locked, not left to look like a quiet servo."""
    ptp4l, phc2sys = tmp_path / "ptp4l.log", tmp_path / "phc2sys.log"
    ptp4l.write_text("ptp4l[1.0]: selected /dev/ptp0 as PTP clock\nptp4l[1.1]: offset=-5 state=s2\n")
    phc2sys.write_text("phc2sys[1.0]: reconfiguring after port state change\n")
    snap = replace(GOOD, ingress_time_ns=time.clock_gettime_ns(time.CLOCK_REALTIME))
    obs = PmcSampler(CannedClient(snap), ptp4l_log=str(ptp4l), phc2sys_log=str(phc2sys))()
    assert obs.servo_excursion_ns is None
    assert "2 line(s) read" in obs.servo_log_note and "none parsed as a ptp4l servo line" in obs.servo_log_note
    assert obs.phc2sys_locked is False and "1 line(s) read" in obs.phc2sys_detail
    sample = HealthTracker().update(obs)
    assert sample.state == ClockState.FREERUN
    assert any(r.code == "ptp4l_log" and "none parsed" in r.text for r in sample.state_reasons)
    # summaries only (phc2sys -u): no servo state to lock on, and the reason says what to do
    phc2sys.write_text(f"phc2sys[{time.monotonic():.3f}]: CLOCK_REALTIME rms 8 max 19 freq +10 +/- 6\n")
    obs = PmcSampler(CannedClient(snap), phc2sys_log=str(phc2sys))()
    assert obs.phc2sys_locked is False and "only summaries" in obs.phc2sys_detail
