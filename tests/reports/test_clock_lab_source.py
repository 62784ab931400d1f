"""The RTS 25 report knows which clock each sample came from (its session's session-start METRICS
record, as mm_core.session journals it): samples of a PTP-lab session show the monitoring path,
not traceability to UTC, however the lab's grandmaster announces itself (clockClass 6,
timeTraceable), so the verdict is LAB_CLOCK_NOT_TRACEABLE instead of COMPLIANT and the manifest's
provenance says so. A real lab session's journal: tests/reports/test_golden_engine_journal.py."""
import json

from audit.ptplab import CLOCK_SOURCE
from journal.catalogue import RecordType
from mm_core.sessionsetup import LAB_NOTE
from reports import clock
from reports.output import read_metadata
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder

NS = 1_000_000_000
REAL_PTP4L = "ptp4l at /var/run/ptp4l"


def _session(b: DayBuilder, source: str, note: str, samples: int = 3) -> None:
    b.json_record(RecordType.METRICS, {"note": "session-start", "session_id": 1, "clock_profile": "eu-hft",
                                       "clock_source": source, "clock_evidence": note})
    for _ in range(samples):
        b.clock_sample()
        b.enter(f"T{len(b.records)}", 1, "B", 1_500_000, 100)
        b.advance(NS // 2)


def _report(tmp_path, b: DayBuilder):
    out = tmp_path / "o"
    run(["clock"], b.write(tmp_path / "j"), out, refdata_dir=FIXTURE_REFDATA)
    summary = {r["profile"]: r for r in read(out, "clock", "summary").to_pylist()}
    manifest = json.loads((out / "clock" / "_manifest.json").read_text())
    return out, summary, manifest["provenance"]


def test_a_lab_session_is_not_traceable_to_utc(tmp_path):
    b = DayBuilder()
    _session(b, CLOCK_SOURCE, LAB_NOTE)
    out, summary, provenance = _report(tmp_path, b)
    for row in summary.values():
        assert row["samples_within"] == row["samples"] == 3          # the measurement is kept
        assert row["verdict"] == clock.VERDICT_LAB and row["lab_clock_samples"] == 3
    assert provenance["clock_sources"] == CLOCK_SOURCE
    assert provenance["clock_traceable_to_utc"].startswith("no") and provenance["clock_evidence"] == LAB_NOTE
    assert read_metadata(next((out / "clock" / "event_clock").rglob("*.parquet")))["clock_evidence"] == LAB_NOTE
    assert set(read(out, "clock", "samples")["clock_source"].to_pylist()) == {CLOCK_SOURCE}


def test_a_real_ptp4l_session_stays_compliant(tmp_path):
    b = DayBuilder()
    _session(b, REAL_PTP4L, "clock evidence from the ptp4l at /var/run/ptp4l through pmc")
    _, summary, provenance = _report(tmp_path, b)
    assert {r["verdict"] for r in summary.values()} == {"COMPLIANT"}
    assert {r["lab_clock_samples"] for r in summary.values()} == {0}
    assert provenance["clock_sources"] == REAL_PTP4L and "clock_traceable_to_utc" not in provenance


def test_a_journal_with_a_lab_session_after_a_real_one_is_marked(tmp_path):
    b = DayBuilder()
    _session(b, REAL_PTP4L, "real")
    _session(b, CLOCK_SOURCE, LAB_NOTE, samples=2)
    out, summary, provenance = _report(tmp_path, b)
    sources = read(out, "clock", "samples")["clock_source"].to_pylist()
    assert sources == [REAL_PTP4L] * 3 + [CLOCK_SOURCE] * 2
    assert {r["verdict"] for r in summary.values()} == {clock.VERDICT_LAB}
    assert {r["lab_clock_samples"] for r in summary.values()} == {2}
    assert provenance["clock_sources"] == f"{CLOCK_SOURCE},{REAL_PTP4L}"      # sorted


def test_a_lab_session_out_of_tolerance_is_still_not_compliant(tmp_path):
    b = DayBuilder()
    _session(b, CLOCK_SOURCE, LAB_NOTE)
    b.clock_sample(offset_ns=500_000, error_bound_ns=501_100)
    _, summary, _ = _report(tmp_path, b)
    assert summary["eu_hft"]["verdict"] == "NOT_COMPLIANT" and summary["eu_algo"]["verdict"] == clock.VERDICT_LAB


def test_samples_without_a_session_record_have_no_source(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    b.advance(NS)
    b.clock_sample()
    out, summary, provenance = _report(tmp_path, b)
    assert read(out, "clock", "samples")["clock_source"].to_pylist() == ["", ""]
    assert provenance["clock_sources"] == "" and {r["verdict"] for r in summary.values()} == {"COMPLIANT"}
