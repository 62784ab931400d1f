"""CAT chunks built while the venue session scan runs (cat.SESSION_AHEAD): the rows, schema and
rejects are the same whether each chunk waits for the session or is finished long after it was
built, with a session and without one (routes then rejected for it)."""
from __future__ import annotations

import threading

import pytest

from reports import cat, events, refdata
from reports.source import open_slice
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder

CHUNK = 4          # journal sequences per chunk: each journal spans many chunks


def _build(journal, monkeypatch, held: bool):
    """cat.build of `journal`, and the order of builds and publications it made. `held`: the
    session scan is made to finish only after every chunk is built (none may wait for it)."""
    monkeypatch.setattr(events, "CHUNK_SEQS", CHUNK)
    src = open_slice(journal)
    ref = refdata.load(FIXTURE_REFDATA)
    chunks = -(-(src.last_seq - src.first_seq + 1) // CHUNK)
    log, all_built = [], threading.Event()
    build, scan, with_session = cat.build_unsessioned, cat._venue_session, cat.Unsessioned.with_session

    def counted_build(*args, **kwargs):
        out = build(*args, **kwargs)
        log.append("built")
        if log.count("built") == chunks:
            all_built.set()
        return out

    def late_scan(s):
        assert all_built.wait(timeout=60), "the chunks were not built while the session scan ran"
        return scan(s)

    def logged_finish(self, session):
        log.append("published")
        return with_session(self, session)

    monkeypatch.setattr(cat, "build_unsessioned", counted_build)
    monkeypatch.setattr(cat.Unsessioned, "with_session", logged_finish)
    if held:
        monkeypatch.setattr(cat, "SESSION_AHEAD", chunks)
        monkeypatch.setattr(cat, "_venue_session", late_scan)
    else:
        monkeypatch.setattr(cat, "SESSION_AHEAD", 0)          # each chunk waits for the session
    report = cat.build(src, ref)
    return report, log


def _same(a, b):
    ta, tb = a.tables["order_events"], b.tables["order_events"]
    assert ta.schema.equals(tb.schema, check_metadata=True)
    assert ta.equals(tb) and ta.num_rows > 0
    assert a.rejects.equals(b.rejects)


def _day_without_session(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    for i in range(6):
        b.enter(f"R{i}", 1, "B", 1_500_000, 100)
        b.accept(f"R{i}")
    return b.write(tmp_path / "j")


@pytest.mark.parametrize("journal", ["day", "no_session"])
def test_rows_are_the_same_when_chunks_wait_for_the_session_or_not(journal, day_journal, tmp_path, monkeypatch):
    path = day_journal if journal == "day" else _day_without_session(tmp_path)
    waited, waited_log = _build(path, monkeypatch, held=False)
    ahead, ahead_log = _build(path, monkeypatch, held=True)
    assert waited_log[:4] == ["built", "published", "built", "published"]
    chunks = ahead_log.count("built")
    assert chunks > 2 and ahead_log == ["built"] * chunks + ["published"] * chunks
    _same(waited, ahead)
    if journal == "no_session":          # every route rejected for its missing session, both ways
        assert set(ahead.rejects.column("field").to_pylist()) == {"session"} and ahead.rejects.num_rows == 6
