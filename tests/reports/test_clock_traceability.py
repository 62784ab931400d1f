"""The RTS 25 clock report requires a traceable grandmaster, as the monitor's verdict does: a GM
that lost its GPS (clockClass 248, timeTraceable 0) is not within tolerance, however small the
offset and bound of a LOCKED clock."""
import pytest

from journal.catalogue import ClockState, RecordType, TsSource, pack
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, TAI_MINUS_UTC, DayBuilder

GOOD = dict(gm_clock_class=6, time_traceable=1, ptp_timescale=1, utc_offset_valid=1, utc_offset=TAI_MINUS_UTC)


def _sample(b: DayBuilder, **fields) -> None:
    """A LOCKED sample with a 120 ns offset and 900 ns bound; `fields` override the traceability."""
    b.state = ClockState.LOCKED
    values = {**GOOD, **fields}
    b._add(RecordType.CLOCK_SAMPLE, pack(
        RecordType.CLOCK_SAMPLE, offset_ns=120, path_delay_ns=2_500, error_bound_ns=900,
        last_sync_age_ns=125_000_000, gm_identity=0x001B21FFFE0A0B0C, state=int(ClockState.LOCKED),
        port_state=9, gm_clock_accuracy=0x21, leap61=0, leap59=0, compliant_mask=0, steps_removed=1,
        **values), source=TsSource.SW_KERNEL)


@pytest.mark.parametrize("fields", [
    {"gm_clock_class": 248, "time_traceable": 0},     # GM lost GPS: default class, not traceable
    {"gm_clock_class": 52},                           # degraded
    {"time_traceable": 0},
    {"utc_offset_valid": 0},                          # TAI timescale without a valid UTC offset
    {"utc_offset": 10},
])
def test_untraceable_grandmaster_is_never_within_tolerance(tmp_path, fields):
    b = DayBuilder()
    _sample(b)
    b.enter("A", 1, "B", 1_500_000, 100)
    b.advance(1_000_000_000)
    _sample(b, **fields)
    b.enter("B", 1, "B", 1_500_000, 100)
    run(["clock"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    samples = read(tmp_path / "o", "clock", "samples").to_pylist()
    assert [s["within_us_cat"] for s in samples] == [True, False]
    ev = {r["order_id"]: r for r in read(tmp_path / "o", "clock", "event_clock").to_pylist()}
    assert ev["A"]["within_eu_hft"] is True and ev["B"]["within_eu_hft"] is False
    assert ev["B"]["within_us_cat"] is False
    summary = {r["profile"]: r["verdict"] for r in read(tmp_path / "o", "clock", "summary").to_pylist()}
    assert summary == {"eu_hft": "NOT_COMPLIANT", "eu_algo": "NOT_COMPLIANT", "us_cat": "NOT_COMPLIANT"}


def test_arbitrary_timescale_needs_no_utc_offset(tmp_path):
    b = DayBuilder()
    _sample(b, ptp_timescale=0, utc_offset_valid=0, utc_offset=0)
    b.enter("A", 1, "B", 1_500_000, 100)
    run(["clock"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    assert read(tmp_path / "o", "clock", "samples").to_pylist()[0]["within_eu_hft"] is True
