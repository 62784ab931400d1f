"""The end-of-run summary is journaled: a METRICS "session-end" document (the engine summary the
table prints) right before SESSION_STOP, so the journal holds what was printed."""
import json

import pytest
from click.testing import CliRunner

from cli.run_cmd import command as run
from journal import Reader
from journal.catalogue import ClockState, RecordType, unpack, unpack_json
from mm_core.sessionconfig import lab_available

LAB = lab_available()


def test_the_printed_summary_is_the_last_metrics_document(tmp_path):
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--duration", "2s", "--journal", str(journal), "--no-ptp-lab", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 3, result.output       # no clock here on purpose: never quoted
    printed = json.loads(result.output)["engine"]
    with Reader(journal) as reader:
        recs = list(reader.records())
    assert [r.rtype for r in recs[-2:]] == [RecordType.METRICS, RecordType.SESSION_STOP]
    end = unpack_json(recs[-2].payload)
    assert end.pop("note") == "session-end" and end.pop("session_id") == 1
    assert end == printed and end["counts"]["events"] > 0
    fills = end["fills"]["bid"] + end["fills"]["ask"]     # every quote fill's markouts accounted for
    for h, pending in end["markout_pending"].items():
        assert end["markout_marked"][h] + end["markout_unmarked"][h]["fills"] + pending == fills
        assert end["markout_session_end"][h]["valued"] + end["markout_session_end"][h]["unmarked"] == pending


@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_the_closing_records_carry_the_clock_state_of_the_last_sample(tmp_path):
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--duration", "2s", "--journal", str(journal), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Reader(journal) as reader:
        recs = list(reader.records())
    last_sample = [r for r in recs if r.rtype == RecordType.CLOCK_SAMPLE][-1]
    assert int(unpack(RecordType.CLOCK_SAMPLE, last_sample.payload)["state"]) == ClockState.LOCKED
    assert [r.clock_state for r in recs[-2:]] == [ClockState.LOCKED, ClockState.LOCKED]
