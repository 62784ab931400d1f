"""Each fill's markout matures at its own horizon: a symbol without a mid does not hold up the
markouts of the other symbols' fills (they are marked on time, against the mid of their time)."""
from journal.catalogue import Side
from mm_core.metrics import Metrics


def test_a_symbol_without_a_mid_does_not_block_the_others():
    m = Metrics(3, (100, 1000), adverse_horizon=0)
    mids = [0, 0, 20_000]
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)     # symbol 1's book goes one-sided (no mid)
    m.on_fill(2, Side.BUY, 100, 10_000, 20_000, 10)    # symbol 2 has a mid the whole time
    assert m.on_time(200, mids) == [(2, True, 0, 0.0)]   # marked at its horizon, not later
    assert m.blocked == [1]
    assert m.next_due_ns == 1_000                       # the next horizon still counts
    mids[2] = 19_000                                    # symbol 2 moves against us later
    assert m.on_time(900, mids) == []
    assert (m.marked_by[2], m.adverse_by[2], m.recent_markout[2]) == (1, 0, 0.0)
    mids[1] = 20_000
    assert m.on_time(950, mids) == [(1, True, 0, 0.0)]   # symbol 1 once it has a mid
    assert m.blocked == []
    assert m.on_time(1_010, mids) == [(1, True, 1, 0.0), (2, True, 1, -500.0)]
    assert not any(m.pending) and m.markout_n == [2, 2]


def test_waiting_fills_keep_their_order_and_mature_together():
    m = Metrics(3, (100,), adverse_horizon=0)
    mids = [0, 0, 20_000]
    for t, s in ((0, 1), (5, 2), (7, 1), (9, 2)):
        m.on_fill(s, Side.SELL, 100, 10_010, 20_000, t)
    assert [x[0] for x in m.on_time(150, mids)] == [2, 2]
    assert [(e[0], e[1]) for e in m.pending[0]] == [(0, 1), (7, 1)]
    assert m.on_time(160, mids) == []                   # nothing new due, still no mid
    mids[1] = 20_000
    assert m.on_time(161, mids) == [(1, False, 0, 10.0), (1, False, 0, 10.0)]
    assert m.next_due_ns > 10**18 and m.blocked == []
