"""A reader never takes missing segments for the end of the journal: when its snapshot ends with a
sealed segment and no successor, it checks the end as verify does (a segment file past a gap, or
LOCK naming another end) and reports MMJ_R_MISSING_SEGMENT in `stopped`, at open and refresh
(journal.h THE END OF THE JOURNAL). `journal info` and `dump` say so and dump exits non-zero."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.journal_cmd import command
from journal import Journal, Reader, RecordType, verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import SMALL_SEGMENT, payload_for, segment_files, write_journal
from tests.journal.test_missing_end import remove_last


def remove_segment(d, index: int) -> int:
    """Delete segment `index` and its summary; the first sequence it held."""
    path = segment_files(d)[index]
    with Reader(d, full_scan=True) as r:
        first = r.segments()[index]["first_seq"]
    path.unlink()
    path.with_suffix(".sum").unlink(missing_ok=True)
    return first


@pytest.mark.parametrize("full_scan", [False, True])
def test_a_segment_missing_in_the_middle_stops_the_reader(tmp_path, full_scan):
    d = tmp_path / "j"
    write_journal(d, 3000)
    assert len(segment_files(d)) >= 5
    first_missing = remove_segment(d, 2)
    with Reader(d, full_scan=full_scan) as r:
        assert r.last_seq == first_missing - 1
        assert r.stopped == {"reason": "missing segment", "segment": 2, "offset": 0, "seq": first_missing}
        assert sum(1 for _ in r) == first_missing - 1
    report = verify(d)
    assert report.first_bad.reason_code == lib.MMJ_R_MISSING_SEGMENT and report.first_bad.segment == 2


@pytest.mark.parametrize("removed", [1, 2])
def test_segments_missing_at_the_end_stop_the_reader(tmp_path, removed):
    d = tmp_path / "j"
    write_journal(d, 3000)
    first_missing = remove_last(d, removed)
    with Reader(d) as r:
        assert r.stopped is not None and r.stopped["reason"] == "missing segment"
        assert r.stopped["segment"] == first_missing and r.stopped["seq"] == r.last_seq + 1


def test_an_intact_journal_open_closed_or_continued_reads_to_the_end(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 3000)
    with Reader(d) as r:
        assert r.stopped is None and r.last_seq == 3000
        with Journal(d, segment_size=SMALL_SEGMENT) as j:       # a writer continues the closed journal
            for _ in range(500):
                seq = j.next_seq
                j.append(RecordType.MD_PACKET, payload_for(seq, 40), ts_ns=seq, ts_source=2, clock_state=1)
            with Reader(d) as live:                             # LOCK says open: not an end to check
                assert live.stopped is None and live.last_seq == 3500
            r.refresh()
            assert r.stopped is None and r.last_seq == 3500
        r.refresh()
        assert r.stopped is None and r.last_seq == 3500


def test_a_refresh_looks_at_missing_segments_again(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 3000)
    last = segment_files(d)[-1]
    kept = last.read_bytes()
    remove_last(d, 1)
    with Reader(d) as r:
        assert r.stopped["reason"] == "missing segment"
        last.write_bytes(kept)                                  # restored (its summary is gone: scanned)
        r.refresh()
        assert r.stopped is None and r.last_seq == 3000


def test_a_bad_header_later_does_not_cut_the_segments_before_it(tmp_path):
    """Segments opened from their summary and checked on first read keep their records when the
    snapshot already stopped further on (it used to be cut at the first segment read)."""
    d = tmp_path / "j"
    write_journal(d, 3000)
    bad = segment_files(d)[3]
    with open(bad, "r+b") as f:
        f.write(b"XXXX")
    with Reader(d, full_scan=True) as r:
        readable = r.last_seq
    with Reader(d) as r:
        assert r.unchecked_segments == 3 and r.last_seq == readable
        assert sum(1 for _ in r) == readable
        assert r.last_seq == readable and r.stopped["segment"] == 3 and r.stopped["reason"] == "bad segment header"


def test_info_and_dump_name_a_missing_segment(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 3000)
    first_missing = remove_segment(d, 2)
    runner = CliRunner()
    info = runner.invoke(command, ["info", str(d)])
    assert info.exit_code == 0
    assert f"readable  up to seq {first_missing - 1}: missing segment at segment 2 offset 0" in info.output
    dump = runner.invoke(command, ["dump", str(d)])
    assert dump.exit_code == 1
    assert f"the journal stops before seq {first_missing}: missing segment at segment 2" in dump.output
    assert len(dump.output.splitlines()) == first_missing        # the readable records, then the error
