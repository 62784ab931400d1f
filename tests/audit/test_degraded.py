"""DEGRADED: a verifier (ptp4l free_running) whose offset jumped more than the steady step still
reports a valid measurement; instead of claiming no bound until it is steady again, the sample
is bounded by what was measured: |offset now| + the largest jump since the clock was last steady
+ the path delay (the most a two-way exchange can be off whatever the asymmetry, as chrony's
½ root delay) + the GM's accuracy (+ the system clock's term, measured now). Only from a
measurement: no path delay, unknown GM accuracy, an unlocked phc2sys or rising timeouts stay
FREERUN with no bound, and so does a verifier only starting or meeting a new GM (no jump caused
its settling: it waits for its steady samples). A plain client after a jump is DEGRADED by the
same bound (tests/audit/test_plain_jump.py) and takes the same paths: journal, monitor,
Prometheus, replay and the RTS 25 report."""
from dataclasses import replace

import pytest

from audit.health import UNBOUNDED, HealthConfig, HealthTracker, judge, PROFILES
from audit.monitor import ClockMonitor
from audit.prometheus import exposition
from journal.catalogue import ClockState, RecordType, TsSource, unpack
from mm_core.runnerrecords import engine_events
from tests.audit.test_health import S, obs

DELAY = 2_100                 # GOOD's mean path delay, ns
ACC = 100                     # GOOD's GM accuracy 0x21


def verifier(**kw) -> HealthTracker:
    return HealthTracker(HealthConfig(**{"free_running": True, "stable_samples": 3, "max_offset_step_ns": 50_000,
                                         "asymmetry_budget_ns": 1_000, **kw}))


def uncal(t_s: float, offset: int, **kw):
    return obs(t_s, master_offset_ns=offset, **{"port_state": "UNCALIBRATED", **kw})


def steady(tr: HealthTracker, offsets=(-800, -700, -900)):
    for t, o in enumerate(offsets):
        s = tr.update(uncal(t, o))
    assert s.state == ClockState.LOCKED
    return len(offsets)


def test_a_software_timestamp_jump_is_degraded_with_a_measured_bound_not_freerun():
    tr = verifier()
    t = steady(tr)
    s = tr.update(uncal(t, 60_000))                  # jumped 60.9 us in one sample
    assert s.state == ClockState.DEGRADED
    assert s.error_bound_ns == 60_000 + 60_900 + DELAY + ACC
    assert {"offset", "state"} <= {r.code for r in s.state_reasons}
    # 123 us: outside eu-hft's 100 us, well inside eu-algo's 1 ms and us-cat
    assert not s.compliant("eu-hft") and s.compliant("eu-algo") and s.compliant("us-cat")
    assert "error_bound" in {r.code for r in s.verdicts["eu-hft"].reasons}
    # back near zero (a jump too): settling again, and the largest jump counts until the clock
    # is steady again
    s = tr.update(uncal(t + 1, -500))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 500 + 60_900 + DELAY + ACC
    s = tr.update(uncal(t + 2, -600))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 600 + 60_900 + DELAY + ACC
    s = tr.update(uncal(t + 3, -650))
    assert s.state == ClockState.LOCKED and s.error_bound_ns == 650 + 1_000 + ACC


def test_a_small_jump_with_a_small_offset_stays_compliant_for_hft():
    tr = verifier()
    t = steady(tr, (0, 100, 200))
    s = tr.update(uncal(t, 51_000))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 51_000 + 50_800 + DELAY + ACC
    assert not s.compliant("eu-hft")
    tr2 = verifier(max_offset_step_ns=10_000)
    t = steady(tr2, (0, 100, 200))
    s = tr2.update(uncal(t, 20_000))
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 20_000 + 19_800 + DELAY + ACC
    assert s.compliant("eu-hft")


def test_the_path_delay_widens_the_bound_when_larger_than_the_asymmetry_budget():
    tr = verifier()
    t = steady(tr)
    s = tr.update(uncal(t, 60_000, mean_path_delay_ns=40_000.4))
    assert s.error_bound_ns == 60_000 + 60_900 + 40_001 + ACC
    tr = verifier()
    t = steady(tr)
    s = tr.update(uncal(t, 60_000, mean_path_delay_ns=300.0))      # the budget is the floor
    assert s.error_bound_ns == 60_000 + 60_900 + 1_000 + ACC


@pytest.mark.parametrize("bad", [
    {"mean_path_delay_ns": None},            # no path delay measured
    {"mean_path_delay_ns": 0.0},             # none or negative: not a measurement (ptpcheck FAILs it)
    {"mean_path_delay_ns": -50.0},
    {"gm_clock_accuracy": 0xFE},             # the GM does not say how good it is
])
def test_no_bound_is_claimed_without_a_measurement(bad):
    tr = verifier()
    t = steady(tr)
    s = tr.update(uncal(t, 60_000, **bad))
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED and s.compliant_mask == 0


def test_starting_or_a_new_grandmaster_settles_freerun_unless_a_jump_caused_it():
    tr = verifier()
    states = [tr.update(uncal(t, o)).state for t, o in enumerate((-800, -700, -900))]
    assert states == [ClockState.FREERUN, ClockState.FREERUN, ClockState.LOCKED]
    new_gm = {"gm_identity": "aaaaaa.fffe.000001"}
    s = tr.update(uncal(3, -700, **new_gm))
    assert s.state == ClockState.FREERUN and "gm_change" in {r.code for r in s.state_reasons}
    s = tr.update(uncal(4, -750, **new_gm))
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED
    s = tr.update(uncal(5, 80_000, **new_gm))          # jumped while settling on the new GM
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 80_000 + 80_750 + DELAY + ACC
    tr = verifier()
    tr.update(uncal(0, -800))
    s = tr.update(uncal(1, 70_000))                    # a jump as the second sample at start
    assert s.state == ClockState.DEGRADED and s.error_bound_ns == 70_000 + 70_800 + DELAY + ACC


def test_an_unlocked_phc2sys_or_rising_timeouts_stay_freerun():
    tr = verifier()
    t = steady(tr)
    s = tr.update(replace(uncal(t, 60_000), phc2sys_locked=False))
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED
    tr = verifier()
    for i in range(3):
        tr.update(uncal(i, -800, service_stats={"sync_timeout": 0}))
    s = tr.update(uncal(3, 60_000, service_stats={"sync_timeout": 2}))
    assert s.state == ClockState.FREERUN and s.error_bound_ns == UNBOUNDED


def test_holdover_after_a_degraded_sample_widens_its_measured_bound():
    tr = verifier(holdover_drift_ppb=10_000)
    t = steady(tr)
    d = tr.update(uncal(t, 60_000, age_ns=0))
    assert d.state == ClockState.DEGRADED
    h = tr.update(uncal(t + 2, 60_000, age_ns=None, port_state="LISTENING"))
    assert h.state == ClockState.HOLDOVER
    assert h.error_bound_ns == d.error_bound_ns + 20_000


def plain(**kw) -> HealthTracker:
    return HealthTracker(HealthConfig(**{"stable_samples": 3, "max_offset_step_ns": 50_000,
                                         "asymmetry_budget_ns": 1_000, **kw}))


def slave(t_s: float, offset: int, **kw):
    return obs(t_s, master_offset_ns=offset, **kw)


# (tracker, observation) of a verifier and of a plain client (test_plain_jump): the same paths
KINDS = pytest.mark.parametrize("make_tracker,make_obs", [(verifier, uncal), (plain, slave)],
                                ids=["verifier", "plain"])


@KINDS
def test_degraded_goes_to_the_journal_the_monitor_prometheus_and_replay(make_tracker, make_obs):
    records = []

    class Journal:
        def append(self, rtype, payload, ts_ns=0, ts_source=0, clock_state=0):
            records.append((rtype, payload, ts_ns, clock_state))
            return len(records)

    offsets = iter([-800, -700, -900, 60_000])
    monitor = ClockMonitor(lambda: make_obs(len(records), next(offsets)), make_tracker(), journal=Journal())
    for _ in range(4):
        sample = monitor.sample_once()
    assert monitor.state == ClockState.DEGRADED
    now = sample.mono_ns
    assert monitor.compliant("eu-algo", now) and not monitor.compliant("eu-hft", now)
    rtype, payload, ts_ns, clock_state = records[-1]
    row = unpack(RecordType.CLOCK_SAMPLE, payload)
    assert clock_state == int(row["state"]) == int(ClockState.DEGRADED) == 4
    assert int(row["error_bound_ns"]) == sample.error_bound_ns == 60_000 + 60_900 + DELAY + ACC
    assert "mmaudit_clock_state 4" in exposition(sample)

    class Rec:
        seq, rtype, ts_source = 1, RecordType.CLOCK_SAMPLE, 0

    rec = Rec()
    rec.ts_ns, rec.clock_state, rec.payload = ts_ns, clock_state, payload
    told = {p: [e for e in engine_events([rec], p) if type(e).__name__ == "ClockSample"][0].compliant
            for p in PROFILES}
    assert told == {"eu-hft": False, "eu-algo": True, "us-cat": True}


def test_judge_treats_degraded_by_its_bound_like_locked():
    tr = verifier()
    t = steady(tr)
    s = tr.update(uncal(t, 60_000))
    cfg = tr.config
    wide = replace(s, error_bound_ns=2_000_000)
    assert not judge(wide, PROFILES["eu-algo"], cfg).compliant
    none = replace(s, error_bound_ns=UNBOUNDED)
    assert not judge(none, PROFILES["us-cat"], cfg).compliant


@KINDS
def test_the_rts25_report_judges_degraded_samples_by_their_bound(tmp_path, make_tracker, make_obs):
    from reports.run import run
    from tests.reports.conftest import read
    from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
    from tests.reports.test_clock_traceability import _sample

    tr = make_tracker()
    for t, o in enumerate((-800, -700, -900)):
        tr.update(make_obs(t, o))
    degraded = tr.update(make_obs(3, 60_000))
    assert degraded.state == ClockState.DEGRADED
    b = DayBuilder()
    _sample(b)
    b.enter("A", 1, "B", 1_500_000, 100)
    b.advance(1_000_000_000)
    b.state = ClockState.DEGRADED          # the tracker's own CLOCK_SAMPLE payload
    b._add(RecordType.CLOCK_SAMPLE, degraded.payload(), source=TsSource.SW_KERNEL)
    b.enter("B", 1, "B", 1_500_000, 100)
    run(["clock"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    samples = read(tmp_path / "o", "clock", "samples").to_pylist()
    assert [s["state"] for s in samples] == ["LOCKED", "DEGRADED"]
    assert samples[1]["error_bound_ns"] == degraded.error_bound_ns
    assert [(s["within_eu_hft"], s["within_eu_algo"], s["within_us_cat"]) for s in samples] == [
        (True, True, True), (False, True, True)]
    ev = {r["order_id"]: r for r in read(tmp_path / "o", "clock", "event_clock").to_pylist()}
    assert ev["B"]["sample_state"] == "DEGRADED"
    assert (ev["B"]["within_eu_hft"], ev["B"]["within_eu_algo"]) == (False, True)
    summary = {r["profile"]: r["verdict"] for r in read(tmp_path / "o", "clock", "summary").to_pylist()}
    assert summary == {"eu_hft": "NOT_COMPLIANT", "eu_algo": "COMPLIANT", "us_cat": "COMPLIANT"}
