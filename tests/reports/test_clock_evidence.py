import numpy as np
import pyarrow.compute as pc
from hypothesis import given, settings, strategies as st

from journal.catalogue import ClockState, RecordType, TsSource
from reports import clock
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def test_samples_carry_compliance_per_profile(all_reports):
    s = read(all_reports, "clock", "samples").to_pylist()
    assert [r["state"] for r in s] == ["LOCKED", "LOCKED", "HOLDOVER", "LOCKED"]
    holdover = s[2]
    assert holdover["within_eu_hft"] is False and holdover["within_eu_algo"] is True
    assert holdover["within_us_cat"] is True
    for r in s:      # the monitor's own verdict is kept beside ours
        assert r["monitor_said_eu_hft"] == r["within_eu_hft"]
    assert s[0]["gm_identity"] == "001b21fffe0a0b0c" and s[0]["utc_offset_s"] == 37


def test_interval_out_of_tolerance_and_events_inside(all_reports):
    iv = read(all_reports, "clock", "intervals").to_pylist()
    assert [(r["profile"], r["order_events_inside"]) for r in iv] == [("eu_hft", 3)]
    assert iv[0]["duration_ns"] > 1_500_000_000 and iv[0]["worst_error_bound_ns"] == 250_000
    assert iv[0]["states"] == "HOLDOVER" and iv[0]["open_at_range_end"] is False


def test_each_order_event_has_its_clock_context(all_reports):
    ev = read(all_reports, "clock", "event_clock")
    orders = read(all_reports, "orders", "order_events")
    assert ev.num_rows == orders.num_rows
    outside = ev.filter(pc.invert(ev["within_eu_hft"]))
    assert set(outside["order_id"].to_pylist()) == {"Q7"}
    assert set(outside["clock_error_bound_ns"].to_pylist()) == {250_000}
    assert pc.all(ev["within_eu_algo"]).as_py()


def test_summary_verdicts(all_reports):
    summary = {r["profile"]: r for r in read(all_reports, "clock", "summary").to_pylist()}
    assert summary["eu_hft"]["verdict"] == "NOT_COMPLIANT"
    assert summary["eu_hft"]["order_events_not_demonstrably_within"] == 3
    assert summary["eu_algo"]["verdict"] == "COMPLIANT" and summary["us_cat"]["verdict"] == "COMPLIANT"
    assert summary["eu_hft"]["samples"] == 4 and summary["eu_hft"]["samples_within"] == 3


def test_unknown_and_freerun_clocks_are_never_compliant_and_stale_samples_do_not_cover(tmp_path):
    b = DayBuilder()
    b.clock_sample(state=ClockState.UNKNOWN, error_bound_ns=10)
    b.enter("A", 1, "B", 1_500_000, 100)
    b.clock_sample(state=ClockState.LOCKED, error_bound_ns=10)
    b.advance(5_000_000_000)                         # 5 s after the last sample: stale evidence
    b.enter("B", 1, "B", 1_500_000, 100)
    run(["clock"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    ev = {r["order_id"]: r for r in read(tmp_path / "o", "clock", "event_clock").to_pylist()}
    assert ev["A"]["within_us_cat"] is False and ev["B"]["within_us_cat"] is False
    assert ev["B"]["sample_age_ns"] == 5_000_000_000
    iv = read(tmp_path / "o", "clock", "intervals").to_pylist()
    assert {r["profile"] for r in iv} == {"eu_hft", "eu_algo", "us_cat"}


def test_no_samples_means_no_evidence(tmp_path):
    b = DayBuilder()
    b.enter("A", 1, "B", 1_500_000, 100)
    run(["clock"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    summary = read(tmp_path / "o", "clock", "summary").to_pylist()
    assert {r["verdict"] for r in summary} == {"NO_EVIDENCE"}
    assert summary[0]["order_events_without_sample"] == 1


def test_sample_in_force_is_chosen_by_time_not_journal_order(tmp_path):
    """A venue message stamped by the kernel 1 ms before a clock sample, but journaled after it
    (the monitor got in first), is covered by the previous sample: age 999 ms, not -1 ms."""
    b = DayBuilder()
    b.clock_sample(error_bound_ns=500)
    b.enter("R1", 1, "B", 1_500_000, 100)
    b.advance(1_000_000_000)
    b.clock_sample(error_bound_ns=700)
    b.advance(-1_000_000)                  # the message's receive stamp precedes the sample's
    b.accept("R1", source=TsSource.SW_KERNEL)
    run(["clock"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    ev = {r["event_type"]: r for r in read(tmp_path / "o", "clock", "event_clock").to_pylist()}
    accepted = ev["ACCEPTED"]
    assert accepted["sample_age_ns"] == 999_000_000 and accepted["clock_sample_seq"] == 1
    assert accepted["clock_error_bound_ns"] == 500 and accepted["within_eu_hft"] is True
    summary = {r["profile"]: r for r in read(tmp_path / "o", "clock", "summary").to_pylist()}
    assert {r["verdict"] for r in summary.values()} == {"COMPLIANT"}
    assert summary["eu_hft"]["order_events_not_demonstrably_within"] == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=0, max_size=12),
       st.lists(st.tuples(st.integers(0, 7), st.booleans()), min_size=1, max_size=20), st.randoms())
def test_sample_in_force_matches_the_rule_with_many_equal_times(samples, events, rnd):
    """Against the rule itself, on times drawn from a handful of values (so several samples and
    events share a nanosecond): the latest valid sample before the event in (time, sequence)
    order, -1 when none or when the event has no UTC time."""
    seqs = list(range(1, len(samples) + len(events) + 1))
    rnd.shuffle(seqs)
    s_seq, e_seq = np.array(seqs[:len(samples)], np.int64), np.array(seqs[len(samples):], np.int64)
    s_time = np.array([t for t, _ in samples], np.int64)
    s_valid = np.array([v for _, v in samples], bool)
    e_time = np.array([t for t, _ in events], np.int64)
    e_valid = np.array([v for _, v in events], bool)
    got = clock.sample_in_force(s_time, s_valid, s_seq, e_time, e_valid, e_seq)
    for i in range(len(events)):
        before = [j for j in range(len(samples))
                  if s_valid[j] and (s_time[j], s_seq[j]) < (e_time[i], e_seq[i])]
        want = max(before, key=lambda j: (s_time[j], s_seq[j])) if before and e_valid[i] else -1
        assert got[i] == want


def _unmonitored(out):
    return [r for r in read(out, "clock", "intervals").to_pylist() if r["status"] == "UNMONITORED"]


def test_a_pause_in_clock_sampling_is_an_unmonitored_interval_with_its_start_and_end(tmp_path):
    """The 1 Hz monitor journals nothing for 11 s (pmc hung, monitor stalled) while an order goes
    out: each profile shows the interval between the samples either side as unmonitored."""
    NS = 1_000_000_000
    b = DayBuilder()
    b.clock_sample()
    b.advance(NS); b.clock_sample()
    last_before = len(b.records)
    b.advance(5 * NS); b.enter("G1", 1, "B", 1_500_000, 100)     # inside the silence
    b.advance(6 * NS); b.clock_sample()
    first_after = len(b.records)
    b.advance(NS); b.clock_sample()
    b.advance(NS); b.clock_sample()
    out = tmp_path / "o"
    run(["clock"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    gaps = _unmonitored(out)
    assert [r["profile"] for r in gaps] == [name for name, _ in clock.PROFILES]
    for r in gaps:
        assert (r["start_seq"], r["end_seq"]) == (last_before, first_after)
        assert r["duration_ns"] == 11 * NS and r["order_events_inside"] == 1
        assert r["open_at_range_end"] is False
        assert (r["end_utc"] - r["start_utc"]).total_seconds() == 11
    out_of_tolerance = [r for r in read(out, "clock", "intervals").to_pylist() if r["status"] == "OUT_OF_TOLERANCE"]
    assert out_of_tolerance == []                       # every sample taken was within tolerance
    summary = {r["profile"]: r for r in read(out, "clock", "summary").to_pylist()}
    for r in summary.values():
        assert r["unmonitored_intervals"] == 1 and r["unmonitored_ns"] == 11 * NS
        assert r["verdict"] == "NOT_COMPLIANT"           # G1 has no fresh sample


def test_samples_that_stop_before_the_range_ends_leave_an_open_unmonitored_interval(tmp_path):
    NS = 1_000_000_000
    b = DayBuilder()
    b.clock_sample()
    b.advance(NS); b.clock_sample()
    last_sample = len(b.records)
    b.advance(NS // 2); b.enter("Z1", 1, "B", 1_500_000, 100)    # still covered (0.5 s old)
    b.advance(4 * NS); b.json_record(RecordType.DRILL_RESULT, {"drill": "x", "passed": True})   # the range's last record
    out = tmp_path / "o"
    run(["clock"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    gaps = _unmonitored(out)
    assert len(gaps) == len(clock.PROFILES)
    for r in gaps:
        assert (r["start_seq"], r["end_seq"], r["open_at_range_end"]) == (last_sample, len(b.records), True)
        assert r["duration_ns"] == 4 * NS + NS // 2 and r["order_events_inside"] == 1
    summary = {r["profile"]: r for r in read(out, "clock", "summary").to_pylist()}
    assert {r["verdict"] for r in summary.values()} == {"INCOMPLETE_EVIDENCE"}   # nothing seen outside


def test_regular_sampling_has_no_unmonitored_interval(all_reports):
    assert _unmonitored(all_reports) == []
    summary = read(all_reports, "clock", "summary").to_pylist()
    assert {r["unmonitored_intervals"] for r in summary} == {0}


def test_a_range_starting_after_a_pause_does_not_show_it(tmp_path):
    from reports.source import Selection
    NS = 1_000_000_000
    b = DayBuilder()
    b.clock_sample()
    b.advance(10 * NS); b.clock_sample()                # a 10 s pause before the range
    for _ in range(3):
        b.advance(NS); b.clock_sample()
    start = len(b.records) - 1
    b.enter("R1", 1, "B", 1_500_000, 100)
    j = b.write(tmp_path / "j")
    run(["clock"], j, tmp_path / "all", refdata_dir=FIXTURE_REFDATA)
    assert len(_unmonitored(tmp_path / "all")) == len(clock.PROFILES)
    run(["clock"], j, tmp_path / "o", Selection(first_seq=start), refdata_dir=FIXTURE_REFDATA)
    summary = read(tmp_path / "o", "clock", "summary").to_pylist()
    assert {(r["unmonitored_intervals"], r["verdict"]) for r in summary} == {(0, "COMPLIANT")}
