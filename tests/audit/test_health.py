"""The clock-health state machine and profile verdicts, driven by scripted ptp4l snapshots."""
from dataclasses import replace

import pytest

from audit.errors import HealthConfigError
from audit.health import (
    CLOCK_ACCURACY_NS, PROFILES, UNBOUNDED, HealthConfig, HealthTracker, Observation, profile,
)
from audit.pmc import PtpSnapshot
from journal.catalogue import ClockState, RecordType, unpack

S = 1_000_000_000
GOOD = PtpSnapshot(
    port_state="SLAVE", timestamping="SOFTWARE", interface="eth0", master_offset_ns=-800,
    ingress_time_ns=123, gm_present=True, gm_identity="c6a136.fffe.1e06ac", mean_path_delay_ns=2100.0,
    steps_removed=1, log_sync_interval=-3, gm_clock_class=6, gm_clock_accuracy=0x21,
    utc_offset=37, utc_offset_valid=True, leap61=False, leap59=False, ptp_timescale=True,
    time_traceable=True, frequency_traceable=True,
)


def obs(t_s: float, snap=GOOD, age_ns: int | None = 100_000_000, **kw) -> Observation:
    """A look at ptp4l at t_s that read a new Sync (its ingress time follows t_s), unless the
    test gives ingress_time_ns itself."""
    kw.setdefault("ingress_time_ns", 1_000 * S + int(t_s * S))
    snap = replace(snap, **kw)
    return Observation(snap, int(t_s * S), 1_700_000_000 * S + int(t_s * S), age_ns)


def test_profiles_carry_the_regulatory_numbers():
    assert (PROFILES["eu-hft"].max_divergence_ns, PROFILES["eu-hft"].granularity_ns) == (100_000, 1_000)
    assert (PROFILES["eu-algo"].max_divergence_ns, PROFILES["eu-algo"].granularity_ns) == (1_000_000, 1_000_000)
    assert PROFILES["us-cat"].max_divergence_ns == 50_000_000
    with pytest.raises(HealthConfigError):
        profile("eu-fast")


def test_locked_slave_bound_is_offset_plus_asymmetry_plus_gm_accuracy():
    tr = HealthTracker(HealthConfig(asymmetry_budget_ns=2_000))
    s = tr.update(obs(0))
    assert s.state == ClockState.LOCKED
    assert s.error_bound_ns == 800 + 2_000 + 100
    assert all(v.compliant for v in s.verdicts.values())
    assert s.compliant_mask == 0b111


def test_offset_beyond_hft_limit_fails_hft_with_offset_reason_but_passes_algo():
    s = HealthTracker().update(obs(0, master_offset_ns=250_000))
    hft, algo = s.verdicts["eu-hft"], s.verdicts["eu-algo"]
    assert not hft.compliant and algo.compliant and s.verdicts["us-cat"].compliant
    assert {"offset", "error_bound"} <= {r.code for r in hft.reasons}
    assert s.compliant_mask == 0b110


def test_asymmetry_budget_alone_can_break_hft():
    s = HealthTracker(HealthConfig(asymmetry_budget_ns=99_950)).update(obs(0))
    assert not s.verdicts["eu-hft"].compliant
    assert [r.code for r in s.verdicts["eu-hft"].reasons] == ["error_bound"]


@pytest.mark.parametrize("field,value,code", [
    ("gm_clock_class", 248, "clock_class"),
    ("time_traceable", False, "time_traceable"),
    ("utc_offset_valid", False, "utc_offset"),
    ("gm_clock_accuracy", 0xFE, "accuracy"),
    ("gm_clock_accuracy", 0x2B, "error_bound"),      # GM only claims 10 ms
])
def test_traceability_failures_fail_every_profile_with_the_reason(field, value, code):
    s = HealthTracker().update(obs(0, **{field: value}))
    for v in s.verdicts.values():
        if code == "error_bound" and v.profile == "us-cat":
            assert v.compliant          # 10 ms accuracy is still within 50 ms
            continue
        assert not v.compliant and code in {r.code for r in v.reasons}


def test_arb_timescale_does_not_need_a_utc_offset_but_ptp_timescale_does():
    assert HealthTracker().update(obs(0, ptp_timescale=False, utc_offset_valid=False)).compliant("eu-hft")
    assert not HealthTracker().update(obs(0, ptp_timescale=True, utc_offset_valid=False)).compliant("eu-hft")
    assert not HealthTracker().update(obs(0, utc_offset=10)).compliant("eu-hft")


@pytest.mark.parametrize("snap,err", [
    (None, "pmc is not installed"),
    (PtpSnapshot(), None),
    (replace(GOOD, gm_clock_class=None), None),
    (replace(GOOD, timestamping=None, missing=("PORT_PROPERTIES_NP",)), None),
    (replace(GOOD, errors=("TIME_STATUS_NP.master_offset: bad",)), None),
])
def test_missing_or_bad_data_is_unknown_and_never_compliant(snap, err):
    s = HealthTracker().update(Observation(snap, 0, 0, 1, err))
    assert s.state == ClockState.UNKNOWN and s.error_bound_ns == UNBOUNDED
    assert s.compliant_mask == 0
    assert all("no_data" in {r.code for r in v.reasons} for v in s.verdicts.values())


def test_stale_sync_or_lost_gm_is_not_locked():
    for kw in ({"age_ns": 3 * S}, {"age_ns": None}, {"gm_present": False}, {"port_state": "LISTENING"}):
        s = HealthTracker().update(obs(0, **kw))
        assert s.state == ClockState.FREERUN and s.compliant_mask == 0, kw


def test_holdover_widens_the_bound_by_drift_then_expires_to_freerun():
    cfg = HealthConfig(holdover_drift_ppb=10_000, max_holdover_ns=5 * S, asymmetry_budget_ns=0)
    tr = HealthTracker(cfg)
    locked = tr.update(obs(10, age_ns=0))
    assert locked.state == ClockState.LOCKED and locked.error_bound_ns == 900
    # GM gone: port falls back to LISTENING, no Sync since t=10 s.
    h = tr.update(obs(12, port_state="LISTENING", age_ns=None))
    assert h.state == ClockState.HOLDOVER
    assert h.error_bound_ns == 900 + 20_000          # 10 000 ppb x 2 s
    assert h.last_sync_age_ns == 2 * S
    assert h.compliant("eu-hft")                      # 20.9 us bound is inside 100 us
    h2 = tr.update(obs(14.9, port_state="LISTENING", age_ns=None))
    assert h2.state == ClockState.HOLDOVER and h2.error_bound_ns == 900 + 49_000
    f = tr.update(obs(15.1, port_state="LISTENING", age_ns=None))
    assert f.state == ClockState.FREERUN and f.compliant_mask == 0
    assert "sync_age" in {r.code for r in f.verdicts["eu-hft"].reasons}
    # and it stays FREERUN: holdover is not re-entered without a new lock
    assert tr.update(obs(15.2, port_state="LISTENING", age_ns=None)).state == ClockState.FREERUN


def test_holdover_bound_growing_past_the_limit_fails_hft_first():
    tr = HealthTracker(HealthConfig(holdover_drift_ppb=100_000, asymmetry_budget_ns=0))
    tr.update(obs(0, age_ns=0))
    h = tr.update(obs(2.5, age_ns=int(2.5 * S)))    # still SLAVE but the Sync is stale (> 2 s)
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns == 900 + 250_000
    assert not h.compliant("eu-hft") and h.compliant("eu-algo")


def test_verifier_mode_needs_steady_samples_and_accepts_uncalibrated():
    cfg = HealthConfig(free_running=True, stable_samples=3, max_offset_step_ns=10_000)
    tr = HealthTracker(cfg)
    states = [tr.update(obs(t, port_state="UNCALIBRATED", master_offset_ns=o)).state
              for t, o in [(0, 100), (1, 200), (2, 300), (3, 40_000), (4, 41_000), (5, 42_000)]]
    assert states == [ClockState.FREERUN, ClockState.FREERUN, ClockState.LOCKED,
                      ClockState.DEGRADED,           # the jump restarts the count: bounded by the
                      ClockState.DEGRADED, ClockState.LOCKED]   # measurement meanwhile
    # without free_running, UNCALIBRATED never locks: with fresh Syncs it is bounded by what
    # ptp4l measures (DEGRADED), with none it is not following
    assert HealthTracker().update(obs(0, port_state="UNCALIBRATED")).state == ClockState.DEGRADED
    assert HealthTracker().update(obs(0, port_state="UNCALIBRATED", age_ns=None)).state == ClockState.FREERUN


def test_grandmaster_change_is_detected_and_counted():
    tr = HealthTracker(HealthConfig(free_running=True, stable_samples=2))
    tr.update(obs(0))
    assert tr.update(obs(1, master_offset_ns=-750)).state == ClockState.LOCKED
    s = tr.update(obs(2, gm_identity="aaaaaa.fffe.000001"))
    assert tr.gm_changes == 1 and s.state == ClockState.FREERUN and s.compliant_mask == 0
    assert "gm_change" in {r.code for r in s.state_reasons}
    assert tr.update(obs(3, gm_identity="aaaaaa.fffe.000001", master_offset_ns=-820)).state == ClockState.LOCKED


def test_granularity_requirement():
    coarse = HealthTracker(HealthConfig(timestamp_granularity_ns=1_000_000)).update(obs(0))
    assert not coarse.compliant("eu-hft") and coarse.compliant("eu-algo")
    assert [r.code for r in coarse.verdicts["eu-hft"].reasons] == ["granularity"]


def test_payload_matches_the_catalogue_layout():
    s = HealthTracker().update(obs(0))
    rec = unpack(RecordType.CLOCK_SAMPLE, s.payload())
    assert int(rec["offset_ns"]) == -800 and int(rec["path_delay_ns"]) == 2100
    assert int(rec["state"]) == ClockState.LOCKED and int(rec["port_state"]) == 9
    assert int(rec["gm_identity"]) == 0xC6A136FFFE1E06AC
    assert (int(rec["gm_clock_class"]), int(rec["gm_clock_accuracy"])) == (6, 0x21)
    assert int(rec["compliant_mask"]) == 0b111 and int(rec["utc_offset"]) == 37
    assert int(rec["error_bound_ns"]) == s.error_bound_ns


def test_accuracy_table_is_monotonic():
    codes = sorted(CLOCK_ACCURACY_NS)
    values = [CLOCK_ACCURACY_NS[c] for c in codes]
    assert values == sorted(values) and CLOCK_ACCURACY_NS[0x27] == 100_000 and CLOCK_ACCURACY_NS[0x29] == 1_000_000


def test_bad_config_is_rejected():
    with pytest.raises(HealthConfigError):
        HealthConfig(stable_samples=0)
    with pytest.raises(HealthConfigError):
        HealthConfig(asymmetry_budget_ns=-1)


def test_growing_service_stats_timeouts_block_lock():
    stats = {"announce_timeout": 0, "sync_timeout": 2, "sync_mismatch": 0}
    tr = HealthTracker()
    assert tr.update(obs(0, service_stats=stats)).state == ClockState.LOCKED
    assert tr.update(obs(1, service_stats=dict(stats))).state == ClockState.LOCKED
    s = tr.update(obs(2, service_stats={**stats, "sync_timeout": 5}))
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED
    assert any(r.code == "service_stats" and "sync_timeout +3" in r.text for r in s.state_reasons)
    assert tr.update(obs(3, service_stats={**stats, "sync_timeout": 5})).state == ClockState.LOCKED


@pytest.mark.parametrize("free_running", [True, False])
def test_a_grandmaster_step_being_slewed_out_is_not_compliant_holdover(free_running):
    """The GM steps 5 ms; ptp4l (still SLAVE, fresh Syncs) slews it out over seconds. No sample may
    pass as HOLDOVER with the last lock's ~2 us bound, nor as LOCKED: a verifier (which needs
    steady samples) and a plain client (which must re-settle after a jump) are both DEGRADED, with
    a bound of at least the offset plus the 5 ms jump they measured."""
    tr = HealthTracker(HealthConfig(free_running=free_running, stable_samples=3))
    for t in range(3):
        first = tr.update(obs(t, master_offset_ns=-800 + 10 * t))
    assert first.state == ClockState.LOCKED
    for t, offset in enumerate(range(5_000_000, 0, -500_000), start=3):   # 500 us/s of slewing
        s = tr.update(obs(t, master_offset_ns=offset))
        assert s.state == ClockState.DEGRADED, (t, s.state)
        assert s.error_bound_ns >= offset + 5_000_800
        for name, prof in PROFILES.items():
            if offset > prof.max_divergence_ns:
                assert not s.compliant(name), (t, offset, name)
        assert "offset" in {r.code for r in s.state_reasons}
    # the Syncs stopping now cannot start a holdover from the lock before the step: only from the
    # last measured bound, which still holds the 5 ms jump
    h = tr.update(obs(20, port_state="LISTENING", age_ns=None))
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns > 5_000_000
    assert not h.compliant("eu-hft") and not h.compliant("eu-algo")


@pytest.mark.parametrize("reject", [
    {"phc2sys_locked": False},
    {"service_stats": {"sync_timeout": 9}},
])
def test_rejected_tracking_samples_carry_no_old_bound(reject):
    tr = HealthTracker()
    tr.update(obs(0, service_stats={"sync_timeout": 0}))
    snap_kw = {k: v for k, v in reject.items() if k != "phc2sys_locked"}
    o = obs(1, **snap_kw)
    if "phc2sys_locked" in reject:
        o = replace(o, phc2sys_locked=False)
    s = tr.update(o)
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED and s.compliant_mask == 0


def test_holdover_judges_the_offset_too():
    tr = HealthTracker(HealthConfig(asymmetry_budget_ns=0))
    tr.update(obs(0, age_ns=0))
    # Syncs stale (> 2 s): holdover, but the offset ptp4l last measured is 250 us
    h = tr.update(obs(2.5, age_ns=int(2.5 * S), master_offset_ns=250_000))
    assert h.state == ClockState.HOLDOVER and h.error_bound_ns < 100_000
    assert not h.compliant("eu-hft") and "offset" in {r.code for r in h.verdicts["eu-hft"].reasons}
    assert h.compliant("eu-algo")


def test_a_verifier_with_no_path_delay_is_never_locked():
    """No Delay_Resp (or Pdelay_Resp) ever answered: ptp4l computes no offset, so master_offset
    stays at its start value 0 while Syncs keep arriving. That is no measurement: not LOCKED, no
    bound, no profile met."""
    tr = HealthTracker(HealthConfig(free_running=True))
    for t in range(6):
        s = tr.update(obs(t, port_state="UNCALIBRATED", master_offset_ns=0, mean_path_delay_ns=0.0))
        assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED, (t, s.state)
        assert s.compliant_mask == 0
        assert "path_delay" in {r.code for r in s.state_reasons}
    # the first Delay_Resp arrives: offsets are measured from now on, and steady ones lock
    for t, offset in enumerate((-800, -760, -790), start=6):
        s = tr.update(obs(t, port_state="UNCALIBRATED", master_offset_ns=offset))
    assert s.state == ClockState.LOCKED and s.compliant("eu-hft")


@pytest.mark.parametrize("delay", [None, 0.0, -30.0])
def test_a_plain_client_without_a_positive_path_delay_is_not_locked(delay):
    s = HealthTracker().update(obs(0, mean_path_delay_ns=delay))
    assert s.state == ClockState.FREERUN and s.compliant_mask == 0
    assert "path_delay" in {r.code for r in s.state_reasons}


def test_two_samples_reading_the_same_sync_count_once():
    """pmc asked twice while one Sync was the newest (check interval shorter than the Sync
    interval): one measurement, one steady sample. The repeat neither counts nor breaks the run."""
    tr = HealthTracker(HealthConfig(free_running=True, stable_samples=3))
    ingress = [1, 1, 2, 2, 2, 3]
    states = [tr.update(obs(t, port_state="UNCALIBRATED", master_offset_ns=-800 + (i or 0),
                            ingress_time_ns=i * S)).state
              for t, i in enumerate(ingress)]
    assert states == [ClockState.FREERUN] * 5 + [ClockState.LOCKED]
    # once locked, a repeat of the newest Sync is still a fresh measurement of a locked clock
    assert tr.update(obs(6, port_state="UNCALIBRATED", master_offset_ns=-797,
                         ingress_time_ns=3 * S)).state == ClockState.LOCKED


def test_a_verifier_offset_carried_over_a_grandmaster_change_is_not_a_measurement():
    """After a GM change ptp4l keeps the old GM's last offset until it has measured the new path:
    Syncs arrive, the offset does not move. Only offsets that move again count as steady samples."""
    tr = HealthTracker(HealthConfig(free_running=True, stable_samples=3))
    for t, offset in enumerate((-800, -760, -790)):
        s = tr.update(obs(t, port_state="UNCALIBRATED", master_offset_ns=offset))
    assert s.state == ClockState.LOCKED
    new_gm = {"port_state": "UNCALIBRATED", "gm_identity": "aaaaaa.fffe.000001"}
    for t in range(3, 8):        # the new GM's Syncs, the offset carried from the old one
        s = tr.update(obs(t, master_offset_ns=-790, **new_gm))
        assert s.state != ClockState.LOCKED and s.compliant_mask == 0, t
    assert "not measured again" in str(s.state_reasons)
    for t, offset in enumerate((-300, -320, -310), start=8):
        s = tr.update(obs(t, master_offset_ns=offset, **new_gm))
    assert s.state == ClockState.LOCKED and s.offset_ns == -310
