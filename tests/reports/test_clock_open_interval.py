"""An interval out of tolerance still open at the range's end is counted in the summary, up to
the range's last record when the samples reach it (else up to the last sample), and marked as a
lower bound: before, its duration was None and the summary's out_of_tolerance_ns said 0 with
one interval out."""
from journal.catalogue import RecordType
from reports import clock
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder

NS = 1_000_000_000


def _clock(tmp_path, b: DayBuilder):
    out = tmp_path / "o"
    run(["clock"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    out_iv = [r for r in read(out, "clock", "intervals").to_pylist() if r["status"] == clock.STATUS_OUT]
    return out_iv, {r["profile"]: r for r in read(out, "clock", "summary").to_pylist()}


def test_an_interval_open_at_the_range_end_counts_to_the_last_record(tmp_path):
    b = DayBuilder()
    for _ in range(3):
        b.clock_sample(); b.advance(NS)
    first_bad = len(b.records) + 1
    for _ in range(60):                          # a minute 500 us off, to the end
        b.clock_sample(offset_ns=500_000, error_bound_ns=501_100); b.advance(NS)
    b.json_record(RecordType.DRILL_RESULT, {"drill": "x"})       # the range's last record
    intervals, summary = _clock(tmp_path, b)
    assert [(r["profile"], r["start_seq"], r["end_seq"]) for r in intervals] == [("eu_hft", first_bad, None)]
    iv = intervals[0]
    assert iv["open_at_range_end"] and iv["duration_is_lower_bound"]
    assert iv["duration_ns"] == 60 * NS           # from the first bad sample to the last record
    hft = summary["eu_hft"]
    assert hft["intervals_out_of_tolerance"] == 1 and hft["out_of_tolerance_ns"] == 60 * NS
    assert hft["out_of_tolerance_ns_is_lower_bound"] and hft["verdict"] == "NOT_COMPLIANT"
    assert summary["eu_algo"]["out_of_tolerance_ns"] == 0
    assert not summary["eu_algo"]["out_of_tolerance_ns_is_lower_bound"]


def test_past_a_gap_the_open_interval_stops_at_its_last_sample(tmp_path):
    b = DayBuilder()
    b.clock_sample(); b.advance(NS)
    for _ in range(5):
        b.clock_sample(offset_ns=500_000, error_bound_ns=501_100); b.advance(NS)
    b.advance(10 * NS)                           # then silence: an unmonitored interval of its own
    b.json_record(RecordType.DRILL_RESULT, {"drill": "x"})
    intervals, summary = _clock(tmp_path, b)
    assert intervals[0]["duration_ns"] == 4 * NS and intervals[0]["duration_is_lower_bound"]
    assert summary["eu_hft"]["out_of_tolerance_ns"] == 4 * NS
    assert summary["eu_hft"]["unmonitored_intervals"] == 1


def test_closed_intervals_are_exact(tmp_path):
    b = DayBuilder()
    b.clock_sample(); b.advance(NS)
    b.clock_sample(offset_ns=500_000, error_bound_ns=501_100); b.advance(2 * NS)
    b.clock_sample(); b.advance(NS)
    b.clock_sample()
    intervals, summary = _clock(tmp_path, b)
    assert intervals[0]["duration_ns"] == 2 * NS and not intervals[0]["duration_is_lower_bound"]
    assert not summary["eu_hft"]["out_of_tolerance_ns_is_lower_bound"]
