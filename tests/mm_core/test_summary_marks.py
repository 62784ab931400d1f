"""The METRICS summary reads the mids of the traded symbols only: a mapping of those gives the
document a full list of mids gives, and the engine's summary (mids of its traded symbols, the
guards that tripped) is the document of every slot's mid and every guard's count."""
from __future__ import annotations

from tests.mm_core.wire import simulate


def _holding_session():
    """The first of a few seeded sessions that ends holding a position in a traded symbol (which
    seed does moves with the engine's decisions; one that ends flat marks nothing to a mid)."""
    for seed in range(2, 12):
        _, _, engine = simulate(seed, 3000)
        m = engine.metrics
        traded = [s for s in range(m.n) if m.traded[s]]
        if len(traded) >= 2 and any(m.lots[s] for s in traded):
            return engine, traded
    raise AssertionError("no seeded session ends holding a position")


def test_a_mapping_of_the_traded_symbols_mids_is_the_full_list():
    engine, traded = _holding_session()
    m = engine.metrics
    # the session ends with books one-sided: odd (half-price) mids of its own, so the figures
    # against them are exact halves
    mids2 = [2 * 100_000 + 2 * s + 1 for s in range(engine.n)]
    doc = m.summary({s: mids2[s] for s in traded})
    assert doc == m.summary(mids2)
    assert doc["unrealized_x2"] == sum(m.unrealized_x2(s, mids2[s]) for s in traded) != 0
    unpriced = list(mids2)
    unpriced[traded[0]] = 0                 # a traded symbol without a mid: no unrealized P&L
    doc = m.summary({s: unpriced[s] for s in traded})
    assert doc == m.summary(unpriced) and doc["symbols"][str(traded[0])]["unrealized_x2"] is None
    assert doc["unrealized_x2"] == sum(m.unrealized_x2(s, unpriced[s]) for s in traded if unpriced[s] > 0)


def test_the_engine_summary_is_every_slots_document():
    _, _, engine = simulate(6, 3000)
    doc = engine.summary()
    assert any(engine.mid2[s] for s in range(engine.n) if engine.metrics.traded[s])
    expected = engine.metrics.summary(list(engine.mid2[0:engine.n]))
    trips = engine.sig.trips()
    assert sum(trips) > 0
    assert doc["guard_trips"] == {str(g.symbol_id): t for g, t in zip(engine.guards, trips) if t}
    assert {k: v for k, v in doc.items() if k in expected} == expected
