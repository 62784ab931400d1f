"""A markout still pending when the session ends is in the session-end summary: valued at the last
mid when the rule that marks a due markout would use that mid (the book not stale, a mid there,
not one that waited for a mid past its last chance), else counted unmarked at session end, so per
horizon the quote fills marked, unmarked and pending add up to the quote fills and the pending
ones are each valued or unmarked. Read only and deterministic: a replay's summary is the same."""
import pytest

from journal.catalogue import Side
from mm_core.events import Timer
from mm_core.metrics import Metrics
from tests.mm_core.test_markout_stale import _markout_in_gap, _quoting
from tests.mm_core.wire import ACME, MS, S, run


def add_up(doc: dict) -> None:
    """Per horizon: marked + unmarked + pending = quote fills, and pending = valued + unmarked at end."""
    fills = doc["fills"]["bid"] + doc["fills"]["ask"]
    for h, pending in doc["markout_pending"].items():
        assert doc["markout_marked"][h] + doc["markout_unmarked"][h]["fills"] + pending == fills, h
        end = doc.get("markout_session_end")
        if end is not None:
            assert end[h]["valued"] + end[h]["unmarked"] == pending, h


def test_pending_markouts_are_valued_at_the_last_mid_or_unmarked_at_session_end():
    m = Metrics(3, (1_000, 10_000), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)      # symbol 1 has a mid throughout
    m.on_fill(2, Side.SELL, 50, 10_010, 20_000, 500)    # symbol 2's book empties
    m.on_time(1_100, [0, 20_100, 0])                     # symbol 1's first horizon marked
    mids = [0, 20_100, 0]
    doc = m.summary(mids, session_end=(1_200, False))
    add_up(doc)
    assert doc["markout_marked"] == {"1000": 1, "10000": 0}
    assert doc["markout_pending"] == {"1000": 1, "10000": 2}
    assert doc["markout_session_end"] == {
        "1000": {"valued": 0, "qty": 0, "markout_x2": 0, "per_share": None, "unmarked": 1, "book_stale": 0},
        "10000": {"valued": 1, "qty": 100, "markout_x2": 100 * 100, "per_share": 50.0, "unmarked": 1,
                  "book_stale": 0}}
    assert "markout_session_end" not in m.summary(mids)       # a summary during the session


def test_with_the_book_stale_every_pending_markout_is_unmarked_at_session_end():
    m = Metrics(2, (1_000, 10_000), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    doc = m.summary([0, 20_100], session_end=(500, True))
    add_up(doc)
    assert {h: (e["valued"], e["unmarked"], e["book_stale"]) for h, e in doc["markout_session_end"].items()} == \
        {"1000": (0, 1, 1), "10000": (0, 1, 1)}


@pytest.mark.parametrize("end, valued", [(1_080, 1), (1_100, 0)])
def test_one_that_waited_for_a_mid_is_valued_only_before_its_last_chance(end, valued):
    m = Metrics(2, (1_000,), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    assert m.on_time(1_050, [0, 0]) == [] and m.waiting == [1]      # due, no mid: it waits
    doc = m.summary([0, 20_000], session_end=(end, False))          # a mid by the session's end
    add_up(doc)
    assert (doc["markout_session_end"]["1000"]["valued"], doc["markout_session_end"]["1000"]["unmarked"]) == \
        (valued, 1 - valued)


def test_the_session_end_summary_moves_nothing():
    m = Metrics(2, (1_000, 10_000), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    before = m.state_items()
    m.summary([0, 20_100], session_end=(2_000, False))
    assert m.state_items() == before and sum(map(len, m.pending)) == 2


def _ended(compiled: bool):
    """A quote filled 150 ms before the session ends: its 1 s and 5 s horizons have not run out."""
    engine, venue, feed, refs, bid, px = _quoting(compiled)
    t0 = S + 2 * MS
    run(engine, venue, venue.fill(bid, 100, t0, px), t0)
    run(engine, venue, Timer(t0 + 150 * MS), t0 + 150 * MS)      # the 100 ms horizon matures
    return engine, px


@pytest.mark.parametrize("compiled", [True, False])
def test_the_engines_session_end_summary_values_the_pending_horizons(compiled):
    engine, px = _ended(compiled)
    doc = engine.summary(session_end=True)
    add_up(doc)
    mid2 = engine.mid2[ACME]
    assert mid2 > 0 and not engine.stale
    assert doc["markout_marked"] == {str(100 * MS): 1, str(1000 * MS): 0, str(5000 * MS): 0}
    for h in (1000 * MS, 5000 * MS):
        assert doc["markout_session_end"][str(h)] == {
            "valued": 1, "qty": 100, "markout_x2": (mid2 - 2 * px) * 100,
            "per_share": (mid2 - 2 * px) / 2.0, "unmarked": 0, "book_stale": 0}
    assert "markout_session_end" not in engine.summary()


@pytest.mark.parametrize("compiled", [True, False])
def test_a_session_ending_with_the_book_stale_counts_them_unmarked(compiled):
    engine = _markout_in_gap(compiled)
    doc = engine.summary(session_end=True)
    add_up(doc)
    assert doc["book_stale"] and doc["markout_unmarked"][str(100 * MS)] == {"fills": 1, "book_stale": 1}
    for h in (1000 * MS, 5000 * MS):
        end = doc["markout_session_end"][str(h)]
        assert (end["valued"], end["unmarked"], end["book_stale"]) == (0, 1, 1)


@pytest.mark.parametrize("scenario", [lambda c: _ended(c)[0], _markout_in_gap])
def test_a_replay_gives_the_same_session_end_record(scenario):
    """Two fresh engines fed the same inputs, compiled or not, end with the same METRICS record."""
    first, again, reference = scenario(True), scenario(True), scenario(False)
    doc = first.summary(session_end=True)
    assert again.summary(session_end=True) == doc == reference.summary(session_end=True)
    assert first.state_hash() == again.state_hash() == reference.state_hash()
