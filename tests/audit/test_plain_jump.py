"""A plain PTP client (ptp4l's servo steers the clock, not a verifier) whose offset jumps more than
max_offset_step_ns is DEGRADED, with the jump in its bound (|offset| + the largest jump + max(
asymmetry budget, path delay) + GM accuracy + the system clock's term), until it has re-settled:
stable_samples samples in a row in SLAVE with |offset| and its change within the step. A servo
that slews the jump out stays SLAVE (ptp4l's default step_threshold 0); one that steps it goes
UNCALIBRATED (s0, s1) first: both are measured, neither passes as LOCKED or as a holdover from
the bound before the jump. Every bound below is computed by hand."""
from dataclasses import replace

from audit.health import UNBOUNDED, HealthTracker, Observation
from journal.catalogue import ClockState
from tests.audit.test_degraded import ACC, DELAY, plain, slave
from tests.audit.test_health import obs

PATH = max(1_000, DELAY)        # max(asymmetry budget, path delay)
LOCKED_TERMS = 1_000 + ACC      # a LOCKED sample: |offset| + asymmetry budget + GM accuracy


def run(tr: HealthTracker, observations) -> list[tuple[ClockState, int]]:
    return [(s.state, s.error_bound_ns) for s in map(tr.update, observations)]


def test_a_jump_slewed_out_in_slave_is_degraded_until_resettled():
    tr = plain()
    got = run(tr, [slave(0, -800), slave(1, 70_000), slave(2, 60_000), slave(3, 20_000),
                   slave(4, 2_000), slave(5, -300), slave(6, 60_000)])
    assert got == [
        (ClockState.LOCKED, 800 + LOCKED_TERMS),
        (ClockState.DEGRADED, 70_000 + 70_800 + PATH + ACC),   # jumped 70.8 us: 143 us
        (ClockState.DEGRADED, 60_000 + 70_800 + PATH + ACC),   # slewing; |offset| > 50 us: not settled
        (ClockState.DEGRADED, 20_000 + 70_800 + PATH + ACC),   # settled 1/3
        (ClockState.DEGRADED, 2_000 + 70_800 + PATH + ACC),    # settled 2/3
        (ClockState.LOCKED, 300 + LOCKED_TERMS),               # settled 3/3: re-settled
        (ClockState.DEGRADED, 60_000 + 60_300 + PATH + ACC),   # a new jump owes only itself
    ]


def test_the_jump_decides_the_verdicts_while_it_is_owed():
    tr = plain()
    tr.update(slave(0, -800))
    s = tr.update(slave(1, 70_000))
    assert not s.compliant("eu-hft") and s.compliant("eu-algo") and s.compliant("us-cat")
    assert "error_bound" in {r.code for r in s.verdicts["eu-hft"].reasons}
    assert {"offset", "state"} <= {r.code for r in s.state_reasons}
    assert any("re-settling after a jump: 0/3" in r.text for r in s.state_reasons)
    s = tr.update(slave(2, 1_000))          # |offset| 1 us, but the 70.8 us jump is still owed
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 1_000 + 70_800 + PATH + ACC
    assert s.compliant("eu-hft")            # 74 us: inside 100 us even with the jump


def test_an_offset_that_stays_off_never_resettles():
    tr = plain()
    tr.update(slave(0, -800))
    got = run(tr, [slave(t, 80_000 + 10 * t) for t in range(1, 11)])
    assert {state for state, _ in got} == {ClockState.DEGRADED}
    assert got[-1] == (ClockState.DEGRADED, 80_100 + 80_810 + PATH + ACC)


def test_a_servo_that_steps_goes_uncalibrated_and_is_measured_not_holdover():
    """step_threshold 0.001: offset 1 ms is over it, so the PI servo unlocks (s0: port
    UNCALIBRATED), steps the clock (s1: still UNCALIBRATED) and locks again (s2: SLAVE)."""
    tr = plain()
    u = {"port_state": "UNCALIBRATED"}
    got = run(tr, [slave(0, -800), slave(1, 1_000_000, **u), slave(2, 400, **u), slave(3, 300),
                   slave(4, -200), slave(5, 100)])
    assert got == [
        (ClockState.LOCKED, 800 + LOCKED_TERMS),
        (ClockState.DEGRADED, 1_000_000 + 1_000_800 + PATH + ACC),   # s0 with the 1 ms measured
        (ClockState.DEGRADED, 400 + 1_000_800 + PATH + ACC),         # s1: stepped, not yet locked
        (ClockState.DEGRADED, 300 + 1_000_800 + PATH + ACC),         # SLAVE, settled 1/3
        (ClockState.DEGRADED, 200 + 1_000_800 + PATH + ACC),         # 2/3
        (ClockState.LOCKED, 100 + LOCKED_TERMS),
    ]
    tr = plain()
    tr.update(slave(0, -800))
    s = tr.update(slave(1, 1_000_000, **u))
    assert any("UNCALIBRATED" in r.text for r in s.state_reasons)
    assert not s.compliant("eu-algo") and s.compliant("us-cat")     # 2 ms bound: CAT's 50 ms holds


def test_uncalibrated_after_a_jump_needs_no_sync_age_but_a_stale_sync_is_holdover():
    """ptp4l reports no ingress time once its servo has unlocked: the offset still counts. A Sync
    known to be stale is old news: holdover from the last bound, as before."""
    tr = plain()
    tr.update(slave(0, -800))
    s = tr.update(slave(1, 999_200, port_state="UNCALIBRATED", age_ns=None))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 999_200 + 1_000_000 + PATH + ACC
    assert s.last_sync_age_ns == -1
    tr = plain(holdover_drift_ppb=10_000)
    tr.update(slave(0, -800, age_ns=0))
    s = tr.update(slave(3, 999_200, port_state="UNCALIBRATED", age_ns=3 * 10**9))
    assert s.state == ClockState.HOLDOVER and s.error_bound_ns == 800 + LOCKED_TERMS + 30_000


def test_uncalibrated_without_a_jump_with_fresh_syncs_is_measured_not_holdover():
    """ptp4l still measures the GM (a Sync 1.5 s old is fresh): the offset is judged, DEGRADED with
    the step since the lock in the bound, not a holdover from the lock (tests/audit/
    test_uncalibrated_client.py)."""
    tr = plain(holdover_drift_ppb=10_000)
    tr.update(slave(0, -800, age_ns=0))
    s = tr.update(slave(2, -700, port_state="UNCALIBRATED", age_ns=int(1.5e9)))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 700 + 100 + PATH + ACC


def test_the_jump_owed_survives_holdover_no_data_and_a_new_grandmaster():
    tr = plain(holdover_drift_ppb=10_000)
    tr.update(slave(0, -800, age_ns=0))
    d = tr.update(slave(1, 70_000, age_ns=0))
    assert d.error_bound_ns == 70_000 + 70_800 + PATH + ACC
    h = tr.update(slave(3, 70_000, port_state="LISTENING", age_ns=None))   # Syncs stop 2 s
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns == d.error_bound_ns + 20_000
    # Syncs are back, the offset small: still owed, so re-settling starts, from 1/3
    s = tr.update(slave(4, 10_000, age_ns=0))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 10_000 + 70_800 + PATH + ACC
    assert tr.update(Observation(None, 5 * 10**9, 0, None, "pmc timed out")).state == ClockState.UNKNOWN
    new_gm = {"gm_identity": "aaaaaa.fffe.000001"}
    got = run(tr, [slave(6, 5_000), slave(7, 4_000, **new_gm), slave(8, 3_000, **new_gm),
                   slave(9, 2_000, **new_gm)])
    assert got == [
        (ClockState.DEGRADED, 5_000 + 70_800 + PATH + ACC),    # UNKNOWN broke the run: 1/3 again
        (ClockState.DEGRADED, 4_000 + 70_800 + PATH + ACC),    # a new GM breaks it too: 1/3
        (ClockState.DEGRADED, 3_000 + 70_800 + PATH + ACC),    # 2/3
        (ClockState.LOCKED, 2_000 + LOCKED_TERMS),
    ]
    assert tr.gm_changes == 1


def test_the_system_clock_term_joins_the_bound_and_no_measurement_claims_no_bound():
    tr = plain()
    hw = {"system_offset_needed": True, "system_offset_ns": -3_000, "system_offset_window_ns": 500}
    tr.update(replace(slave(0, -800), **hw))
    s = tr.update(replace(slave(1, 70_000), **hw))
    assert s.state == ClockState.DEGRADED
    assert s.error_bound_ns == 70_000 + 70_800 + PATH + ACC + 3_000 + 500
    for bad in ({"mean_path_delay_ns": None}, {"gm_clock_accuracy": 0xFE}):
        tr = plain()
        tr.update(slave(0, -800))
        s = tr.update(slave(1, 70_000, **bad))
        assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED and s.compliant_mask == 0
    tr = plain()
    tr.update(slave(0, -800))
    s = tr.update(replace(slave(1, 70_000), phc2sys_locked=False))
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED


def test_small_moves_and_a_large_steady_offset_stay_locked_as_before():
    tr = plain()
    got = run(tr, [slave(0, -800), slave(1, 49_000), slave(2, 90_000), slave(3, 120_000)])
    assert got == [(ClockState.LOCKED, 800 + LOCKED_TERMS), (ClockState.LOCKED, 49_000 + LOCKED_TERMS),
                   (ClockState.LOCKED, 90_000 + LOCKED_TERMS), (ClockState.LOCKED, 120_000 + LOCKED_TERMS)]


def logged(t_s: float, offset: int, excursion: int | None, unlocked: bool = False, **kw):
    """A sample with what ptp4l's log showed since the previous one."""
    return replace(slave(t_s, offset, **kw), servo_excursion_ns=excursion, servo_unlocked=unlocked)


def test_a_jump_ptp4l_logged_between_two_samples_counts():
    """pmc samples 1 a second; a servo that steps 1 ms out at 8 Syncs/s is done before the next
    one. ptp4l's log shows the 1 ms (s0, then s1), so the jump is owed all the same."""
    tr = plain()
    got = run(tr, [logged(0, -800, 900), logged(1, 300, 1_000_000, unlocked=True),
                   logged(2, 200, 400), logged(3, -100, 300), logged(4, 100, 250),
                   logged(5, 150, 200)])
    assert got == [
        (ClockState.LOCKED, 800 + LOCKED_TERMS),                     # nothing to compare with yet
        (ClockState.DEGRADED, 300 + 999_200 + PATH + ACC),           # 1 ms logged, 800 ns from the last
        (ClockState.DEGRADED, 200 + 999_200 + PATH + ACC),           # settled 1/3
        (ClockState.DEGRADED, 100 + 999_200 + PATH + ACC),           # 2/3
        (ClockState.LOCKED, 100 + LOCKED_TERMS),                     # 3/3
        (ClockState.LOCKED, 150 + LOCKED_TERMS),
    ]
    tr = plain()
    tr.update(logged(0, -800, 900))
    s = tr.update(logged(1, 300, 1_000_000, unlocked=True))
    assert any("ptp4l logged |offset| 1000.000 us" in r.text for r in s.state_reasons)


def test_after_a_gap_the_logged_offset_is_compared_with_this_sample():
    tr = plain()
    tr.update(slave(0, -800))
    tr.update(slave(1, -800, port_state="LISTENING", age_ns=None))        # the run is broken
    s = tr.update(logged(2, 1_000, 999_800, unlocked=True))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 1_000 + 998_800 + PATH + ACC


def test_a_logged_s0_or_s1_is_not_settled():
    tr = plain()
    tr.update(slave(0, -800))
    tr.update(slave(1, 70_000))
    got = run(tr, [logged(2, 100, 200), logged(3, 100, 200, unlocked=True), logged(4, 100, 200),
                   logged(5, 100, 200), logged(6, 100, 200)])
    assert [state for state, _ in got] == [ClockState.DEGRADED] * 4 + [ClockState.LOCKED]
    # a small logged excursion is no jump, and a verifier ignores the log (it is judged by pmc)
    tr = plain()
    got = run(tr, [logged(0, -800, 900), logged(1, -700, 30_000)])
    assert got[-1] == (ClockState.LOCKED, 700 + LOCKED_TERMS)
    tr = HealthTracker(replace(plain().config, free_running=True, stable_samples=1))
    u = {"port_state": "UNCALIBRATED"}
    assert tr.update(logged(0, -800, None, **u)).state == ClockState.LOCKED
    assert tr.update(logged(1, -700, 1_000_000, unlocked=True, **u)).state == ClockState.LOCKED


def test_a_jump_seen_in_a_sample_that_cannot_be_tracked_is_owed_not_a_holdover():
    """The sample that first sees the jump may be untracked: its Sync was stamped after the
    clock's time now (the clock moved back since; in the PTP lab a virtual clock ahead of the
    machine's), or it is stale. ptp4l's log still shows the 2 ms. Before, that sample was a
    holdover from the pre-jump 5 us bound, the log lines were spent on it, and the next sample
    (the servo had stepped the clock back) was LOCKED: the jump was never owed (a CI run)."""
    tr = plain(holdover_drift_ppb=10_000)
    tr.update(logged(0, 3_000, 3_500))
    s = tr.update(logged(1, 2_000_889, 2_000_889, age_ns=-1_800_000))
    assert (s.state, s.error_bound_ns, s.compliant_mask) == (ClockState.FREERUN, UNBOUNDED, 0)
    assert s.last_sync_age_ns == -1
    assert any("stamped 1800.000 us after the clock's time now" in r.text for r in s.state_reasons)
    assert any("ptp4l logged |offset| 2000.889 us" in r.text for r in s.state_reasons)
    got = run(tr, [logged(2, 3_967, 4_000), logged(3, 2_000, 2_500), logged(4, 1_000, 1_500)])
    owed = 2_000_889 - 3_000
    assert got == [
        (ClockState.DEGRADED, 3_967 + owed + PATH + ACC),            # settled 1/3, the jump owed
        (ClockState.DEGRADED, 2_000 + owed + PATH + ACC),            # 2/3
        (ClockState.LOCKED, 1_000 + LOCKED_TERMS),                   # 3/3
    ]
    # no log followed: a Sync stamped 1.8 ms ahead shows the clock moved back that far at least
    tr = plain()
    tr.update(slave(0, 3_000))
    s = tr.update(slave(1, 2_000_889, age_ns=-1_800_000))
    assert s.state == ClockState.FREERUN
    assert tr.update(slave(2, 3_967)).error_bound_ns == 3_967 + 1_800_000 + PATH + ACC
    # a stale Sync with nothing new logged is still a holdover; a small move logged too
    tr = plain(holdover_drift_ppb=10_000)
    tr.update(logged(0, 3_000, 3_500, age_ns=0))
    assert tr.update(logged(3, 3_000, 20_000, age_ns=3 * 10**9)).state == ClockState.HOLDOVER
    assert tr.update(logged(4, 3_000, None, age_ns=-30_000)).state == ClockState.HOLDOVER
