"""A plain client (ptp4l's servo steers the clock) whose port is UNCALIBRATED while Syncs keep
arriving is measured, not in holdover: each sample is judged by the offset ptp4l measures
(DEGRADED, bounded by |offset| + the largest step since it was last steady + max(asymmetry, path
delay) + GM accuracy; FREERUN when that cannot be bounded), never LOCKED, and jumps between such
samples are seen. A holdover runs from the Sync of the last LOCKED or DEGRADED sample: fresh
Syncs that yield no bounded sample do not renew it, so it widens and ends."""
from audit.health import UNBOUNDED, HealthConfig, HealthTracker
from journal.catalogue import ClockState
from tests.audit.test_degraded import ACC, DELAY, plain, slave
from tests.audit.test_health import S

PATH = max(1_000, DELAY)
U = {"port_state": "UNCALIBRATED"}


def test_uncalibrated_with_fresh_syncs_is_judged_by_the_measured_offset():
    """The review's case: locked at -1 us, then UNCALIBRATED with fresh Syncs while the offset
    walks to 99.5 us and stays there for minutes. Before: HOLDOVER with the lock's 2.35 us bound,
    RTS 25 HFT-compliant throughout."""
    tr = HealthTracker()   # default config: max_holdover 30 s, step 50 us
    assert tr.update(slave(0, -1_000)).state == ClockState.LOCKED
    first = tr.update(slave(1, 40_000, **U))
    assert first.state == ClockState.DEGRADED
    assert first.error_bound_ns == 40_000 + 41_000 + PATH + ACC      # step since the lock: 41 us
    for t in (2, 10, 40, 120):
        s = tr.update(slave(t, 99_500, **U))
        assert s.state == ClockState.DEGRADED, t
        assert s.error_bound_ns >= 99_500 + PATH + ACC, t              # never below what is measured
        assert not s.compliant("eu-hft") and s.compliant("eu-algo"), t
    # 40 -> 99.5 us in one sample is a jump (the offset is remembered across UNCALIBRATED)
    assert s.error_bound_ns == 99_500 + 59_500 + PATH + ACC
    assert "offset" not in {r.code for r in s.state_reasons}          # the jump was reported once
    assert tr.update(slave(200, 500)).state == ClockState.DEGRADED    # back in SLAVE: re-settling


def test_uncalibrated_never_locks_and_an_unmeasured_offset_has_no_bound():
    tr = plain()
    got = [tr.update(slave(t, -800 + 10 * t, **U)).state for t in range(6)]
    assert got == [ClockState.DEGRADED] * 6
    s = tr.update(slave(6, -700, mean_path_delay_ns=0.0, **U))       # ptp4l computes no offset
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED
    s = tr.update(slave(7, -700, gm_clock_accuracy=0xFE, **U))       # GM accuracy unknown
    assert s.state == ClockState.FREERUN and s.compliant_mask == 0


def test_a_jump_between_uncalibrated_samples_is_seen():
    tr = plain()
    tr.update(slave(0, -800))
    tr.update(slave(1, -700, **U))
    s = tr.update(slave(2, 70_000, **U))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 70_000 + 70_700 + PATH + ACC
    assert "offset" in {r.code for r in s.state_reasons}


def test_holdover_runs_from_the_last_bounded_sample_not_the_last_sync():
    """Fresh Syncs keep arriving but yield no bounded sample (no grandmaster present): the
    holdover widens from the lock's Sync and ends after max_holdover_ns."""
    tr = plain(holdover_drift_ppb=10_000, max_holdover_ns=5 * S)
    tr.update(slave(0, -800, age_ns=0))
    h = tr.update(slave(2, -800, gm_present=False, age_ns=100_000_000, **U))
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns == 800 + 1_000 + ACC + 20_000
    assert h.last_sync_age_ns == 2 * S
    h = tr.update(slave(4, -800, gm_present=False, age_ns=100_000_000, **U))
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns == 800 + 1_000 + ACC + 40_000
    f = tr.update(slave(5.5, -800, gm_present=False, age_ns=100_000_000, **U))
    assert f.state == ClockState.FREERUN and f.error_bound_ns == UNBOUNDED


def test_holdover_after_an_uncalibrated_sample_starts_from_its_bound():
    tr = plain(holdover_drift_ppb=10_000)
    tr.update(slave(0, -800, age_ns=0))
    d = tr.update(slave(1, 30_000, age_ns=0, **U))
    assert d.state == ClockState.DEGRADED
    h = tr.update(slave(3, 30_000, port_state="LISTENING", age_ns=None))
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns == d.error_bound_ns + 20_000


def test_a_verifier_is_unchanged_by_the_plain_client_rule():
    tr = HealthTracker(HealthConfig(free_running=True, stable_samples=2))
    assert [tr.update(slave(t, -800 + t, **U)).state for t in range(3)] == [
        ClockState.FREERUN, ClockState.LOCKED, ClockState.LOCKED]
