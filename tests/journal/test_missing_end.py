"""Segments removed from the end of a journal are found: LOCK names the journal's end (the
segment a writer started in while it is open, the last one and its seal once it closes), so a
sealed last segment that LOCK does not name, or fewer segments than LOCK names, is
MMJ_R_MISSING_SEGMENT for verify, and a writer refuses to open (SegmentsMissing) instead of
handing out the removed records' sequences again (journal.h THE END OF THE JOURNAL)."""
from __future__ import annotations

import pytest

from journal import Journal, Reader, SegmentsMissing, verify
from journal._journal_cffi import lib
from tests.journal.jhelpers import SMALL_SEGMENT, segment_files, write_journal
from tests.journal.test_reopen import crash_after


def remove_last(d, count: int) -> int:
    """Delete the last `count` segments and their summaries; the index of the first removed."""
    files = segment_files(d)
    for path in files[-count:]:
        path.unlink()
        path.with_suffix(".sum").unlink(missing_ok=True)
    return len(files) - count


def snapshot(d) -> dict:
    """The journal's files (a crashed writer's next.mmj.tmp, never journal data, an open deletes)."""
    return {p.name: p.read_bytes() for p in d.iterdir()
            if p.is_file() and p.name != "notify" and not p.name.endswith(".tmp")}


def assert_refused(d, first_missing: int) -> None:
    report = verify(d)
    assert not report.ok and report.first_bad.reason_code == lib.MMJ_R_MISSING_SEGMENT, report
    assert report.first_bad.segment == first_missing
    before = snapshot(d)
    with pytest.raises(SegmentsMissing, match=f"segment {first_missing}"):
        Journal(d, segment_size=SMALL_SEGMENT)
    assert snapshot(d) == before       # refused before touching anything


@pytest.mark.parametrize("removed", [1, 2])
def test_segments_removed_after_a_clean_close_are_missing(tmp_path, removed):
    d = tmp_path / "j"
    write_journal(d, 3000)
    assert len(segment_files(d)) >= 4 and verify(d).ok
    assert_refused(d, remove_last(d, removed))


def test_the_last_segment_of_a_crashed_writer_removed_is_missing(tmp_path):
    d = tmp_path / "j"
    crash_after(d, "pagecache", 3000)
    report = verify(d)
    assert report.ok and not report.last_sealed and len(segment_files(d)) >= 4
    # what is left ends sealed, but a live or crashed writer never leaves a sealed last segment
    assert_refused(d, remove_last(d, 1))


def test_every_segment_removed_is_missing(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 100)
    assert_refused(d, remove_last(d, len(segment_files(d))))


def test_a_journal_closed_or_crashed_intact_opens_as_before(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 3000)
    crash_after(d, "pagecache", 500)
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.next_seq == 3501 and j.recovery.continued_segment is not None
    with Journal(d, segment_size=SMALL_SEGMENT) as j:   # after a clean close: a new segment
        assert j.next_seq == 3501 and j.recovery.continued_segment is None
    assert verify(d).ok


def test_a_close_cut_before_its_seal_is_a_crash_and_after_it_an_end(tmp_path):
    d = tmp_path / "j"
    crash_after(d, "pagecache", 300)
    last = len(segment_files(d)) - 1
    # the close wrote "closing" and died before (or while) sealing: the segment continues
    (d / "LOCK").write_text(f"pid 999999 closing {last}\n")
    assert verify(d).ok
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.recovery.continued_segment == last and j.next_seq == 301
    # sealed by that close, and "closed" not written yet: "closing <last>" names that end
    (d / "LOCK").write_text(f"pid 999999 closing {len(segment_files(d)) - 1}\n")
    assert verify(d).ok
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.next_seq == 301


def test_a_closed_lock_must_match_the_last_seal(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 1000)
    words = (d / "LOCK").read_text().split()
    words[4] = str(int(words[4]) + 5)          # LOCK names records the directory does not hold
    (d / "LOCK").write_text(" ".join(words) + "\n")
    assert_refused(d, len(segment_files(d)))


def test_a_lock_of_an_older_writer_is_taken_as_before(tmp_path):
    """A LOCK without the segment fields ("pid <pid> open" or "closed", as writers before them wrote
    it) checks nothing: a sealed last segment is the clean end, as it always was. Removing LOCK is
    how an operator who accepts a loss lets the journal open again."""
    d = tmp_path / "j"
    write_journal(d, 3000)
    first_removed = remove_last(d, 2)
    for text in ("pid 999999 closed\n", "pid 999999 open\n", None):
        if text is None:
            (d / "LOCK").unlink()
        else:
            (d / "LOCK").write_text(text)
        report = verify(d)
        assert report.ok and report.last_seq < 3000
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        assert j.segment == first_removed and j.next_seq == report.last_seq + 1
    assert verify(d).ok
    with Reader(d) as r:
        assert r.last_seq == report.last_seq
