"""A damaged or incomplete journal never yields reports that exit 0 as if complete: a range that
runs into a record that fails its check, a bad segment header or missing segments is refused with
where the journal stops; after a recovery kept damaged records in discarded/, the reports of what
is left say so in their provenance and the command exits EXIT_DISCARDED."""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
from click.testing import CliRunner

from cli.report_cmd import EXIT_DISCARDED, command
from journal import Journal, Reader
from tests.journal.jhelpers import flip_byte, record_offsets, segment_files
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def denials_day(count: int) -> DayBuilder:
    b = DayBuilder()
    b.session_start()
    b.clock_sample()
    for i in range(count):
        b.risk_denial(f"T{i:05d}", 1, 3, 5000, 1000, "max order qty")
        b.advance(1_000)
    return b


def report(journal, out, *extra):
    return CliRunner().invoke(command, ["controls", "--journal", str(journal), "--out", str(out),
                                        "--refdata", str(FIXTURE_REFDATA), *map(str, extra)])


def crashed_with_damage(tmp_path, count: int, damaged_seq: int):
    """A journal whose writer never closed (so nothing seals it), with one payload byte of
    `damaged_seq` flipped; returns its directory."""
    d = tmp_path / "j"
    records = denials_day(count).records
    pid = os.fork()
    if pid == 0:                      # the writer dies without a close: what a crash leaves (no seal)
        try:
            j = Journal(d, create=True, segment_size=1 << 20)
            for r in records:
                j.append(r.rtype, r.payload, r.ts_ns, r.ts_source, r.clock_state)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    seg = segment_files(d)[0]
    with Reader(d) as r:
        assert r.last_seq == count + 2
    off = [o for o, _size, _word in record_offsets(seg)][damaged_seq - 1]
    flip_byte(seg, off + 40)
    return d


def test_damage_in_the_middle_is_refused_not_cut_short(tmp_path):
    d = crashed_with_damage(tmp_path, 600, 301)
    result = report(d, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "the journal stops before seq 301 (bad crc at segment 0" in result.output
    assert "give --last-seq 300 or less" in result.output
    assert not (tmp_path / "out" / "controls" / "_manifest.json").exists()
    beyond = report(d, tmp_path / "out2", "--last-seq", 600)
    assert beyond.exit_code == 1 and "stops before seq 301" in beyond.output
    before = report(d, tmp_path / "out3", "--last-seq", 300)     # the readable part, asked for
    assert before.exit_code == 0, before.output
    assert "risk_decisions=298" in before.output


def test_after_recovery_the_reports_name_what_was_discarded(tmp_path):
    d = crashed_with_damage(tmp_path, 600, 301)
    with Journal(d) as j:                # the next writer's open keeps what follows the damage
        assert j.recovery.discarded_run == 1 and j.next_seq == 301
    out = tmp_path / "out"
    result = report(d, out)
    assert result.exit_code == EXIT_DISCARDED, result.output
    assert "incomplete journal: discarded/r1: 1 files" in result.output
    assert "risk_decisions=298" in result.output
    manifest = json.loads((out / "controls" / "_manifest.json").read_text())
    assert manifest["provenance"]["journal_discarded"].startswith("discarded/r1: 1 files, ")
    part = next((out / "controls" / "risk_decisions").rglob("*.parquet"))
    meta = pq.read_schema(part).metadata
    assert meta[b"mmaudit.journal_discarded"].decode() == manifest["provenance"]["journal_discarded"]
    assert pq.read_table(part).num_rows == 298


def test_an_intact_journal_reports_no_discarded_runs(tmp_path):
    d = denials_day(20).write(tmp_path / "j")
    out = tmp_path / "out"
    result = report(d, out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "controls" / "_manifest.json").read_text())["provenance"]["journal_discarded"] == ""


def test_missing_segments_are_refused(tmp_path):
    b = denials_day(3000)
    d = tmp_path / "j"
    with Journal(d, create=True, segment_size=65536) as j:
        for r in b.records:
            j.append(r.rtype, r.payload, r.ts_ns, r.ts_source, r.clock_state)
    segs = segment_files(d)
    assert len(segs) >= 4
    with Reader(d) as r:
        first_missing = r.segments()[2]["first_seq"]
    segs[2].unlink()
    segs[2].with_suffix(".sum").unlink()
    result = report(d, tmp_path / "out")
    assert result.exit_code == 1
    assert f"the journal stops before seq {first_missing} (missing segment at segment 2 offset 0)" in result.output
    for seg in segs[3:]:                # the end removed too: segment 0 missing is named as such
        seg.unlink()
    segs[0].unlink()
    gone = report(d, tmp_path / "out2")
    assert gone.exit_code == 1 and "stops before seq 1 (missing segment at segment 0" in gone.output
    assert "empty journal range" not in gone.output
