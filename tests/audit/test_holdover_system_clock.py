"""Holdover re-measures the system clock: the PHC's bound from the last lock widens by drift, and
the term for CLOCK_REALTIME (which stamps our records) against the clock ptp4l disciplines is the
one measured with this sample, never the one from the lock. Where it cannot be measured now (a
phc2sys that stopped locking, and no direct comparison), holdover claims no bound."""
from dataclasses import replace

from audit.health import UNBOUNDED, HealthConfig, HealthTracker
from journal.catalogue import ClockState
from tests.audit.test_health import S, obs

CFG = HealthConfig(holdover_drift_ppb=10_000, asymmetry_budget_ns=0)
PHC_LOCK = 800 + 100          # |master offset| + GM accuracy 0x21 (100 ns), no asymmetry budget


def hw(t_s: float, system_offset_ns: int, window_ns: int = 50, **kw):
    """Hardware timestamping: CLOCK_REALTIME measured against the PHC with this sample."""
    return replace(obs(t_s, **kw), system_offset_needed=True, system_offset_ns=system_offset_ns,
                   system_offset_window_ns=window_ns)


def test_holdover_adds_the_system_offset_measured_now_not_the_one_from_the_lock():
    tr = HealthTracker(CFG)
    locked = tr.update(hw(10, 500, age_ns=0))
    assert locked.state == ClockState.LOCKED and locked.error_bound_ns == PHC_LOCK + 500 + 50
    # GM lost; phc2sys no longer steers the system clock, which has wandered 40 us off the PHC
    h = tr.update(hw(12, -40_000, window_ns=70, port_state="LISTENING", age_ns=None))
    assert h.state == ClockState.HOLDOVER
    assert h.error_bound_ns == PHC_LOCK + 20_000 + 40_000 + 70
    # it came back close: the bound follows what is measured, both ways
    h2 = tr.update(hw(13, 200, port_state="LISTENING", age_ns=None))
    assert h2.error_bound_ns == PHC_LOCK + 30_000 + 200 + 50


def test_a_system_clock_far_off_the_phc_in_holdover_fails_hft():
    tr = HealthTracker(CFG)
    tr.update(hw(0, 300, age_ns=0))
    h = tr.update(hw(1, 150_000, port_state="LISTENING", age_ns=None))
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns > 150_000
    assert not h.compliant("eu-hft") and h.compliant("eu-algo")


def test_holdover_without_a_system_clock_measurement_claims_no_bound():
    """Only phc2sys reports the system clock against the PHC: once it stops locking (or stops
    printing) in holdover, there is no measurement of that term, so no bound."""
    tr = HealthTracker(CFG)
    locked = tr.update(replace(obs(0, age_ns=0), phc2sys_offset_ns=-300, phc2sys_locked=True))
    assert locked.state == ClockState.LOCKED and locked.error_bound_ns == PHC_LOCK + 300
    h = tr.update(replace(obs(1, port_state="LISTENING", age_ns=None), phc2sys_offset_ns=-300,
                          phc2sys_locked=False, phc2sys_detail="last phc2sys servo line 9.0 s old"))
    assert h.error_bound_ns == UNBOUNDED and h.state == ClockState.FREERUN and h.compliant_mask == 0
    assert any(r.code == "phc2sys" and "9.0 s old" in r.text for r in h.state_reasons)
    # phc2sys locks again while the GM is still gone: holdover resumes from the lock before
    h2 = tr.update(replace(obs(2, port_state="LISTENING", age_ns=None), phc2sys_offset_ns=1_000,
                           phc2sys_locked=True))
    assert h2.state == ClockState.HOLDOVER and h2.error_bound_ns == PHC_LOCK + 20_000 + 1_000


def test_holdover_with_phc2sys_still_locked_uses_its_newest_offset():
    tr = HealthTracker(CFG)
    tr.update(replace(obs(0, age_ns=0), phc2sys_offset_ns=100, phc2sys_locked=True))
    h = tr.update(replace(obs(1, port_state="LISTENING", age_ns=None), phc2sys_offset_ns=-7_000,
                          phc2sys_locked=True))
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns == PHC_LOCK + 10_000 + 7_000
