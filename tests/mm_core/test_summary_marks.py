"""The METRICS summary reads the marks of the traded symbols only: a mapping of those gives the
document a full list of marks gives, and the engine's summary (marks of its traded symbols, the
guards that tripped) is the document of every slot's mark and every guard's count."""
from __future__ import annotations

from tests.mm_core.wire import simulate


def test_a_mapping_of_the_traded_symbols_marks_is_the_full_list():
    _, _, engine = simulate(2, 3000)
    m = engine.metrics
    marks = [mid // 2 for mid in engine.mid2[0:engine.n]]
    traded = [s for s in range(m.n) if m.traded[s]]
    assert len(traded) >= 2 and any(marks[s] > 0 for s in traded)
    assert m.summary({s: marks[s] for s in traded}) == m.summary(marks)
    unpriced = list(marks)
    unpriced[traded[0]] = 0                 # a traded symbol without a mark: no unrealized P&L
    doc = m.summary({s: unpriced[s] for s in traded})
    assert doc == m.summary(unpriced) and doc["symbols"][str(traded[0])]["unrealized"] is None
    assert doc["unrealized"] == sum(m.unrealized(s, unpriced[s]) for s in traded if unpriced[s] > 0)


def test_the_engine_summary_is_every_slots_document():
    _, _, engine = simulate(3, 3000)
    doc = engine.summary()
    expected = engine.metrics.summary([mid // 2 for mid in engine.mid2[0:engine.n]])
    trips = engine.sig.trips()
    assert sum(trips) > 0
    assert doc["guard_trips"] == {str(g.symbol_id): t for g, t in zip(engine.guards, trips) if t}
    assert {k: v for k, v in doc.items() if k in expected} == expected
