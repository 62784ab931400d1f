"""Each fill's markout matures at its own horizon: a symbol without a mid does not hold up the
markouts of the other symbols' fills (they are marked on time, against the mid of their time);
one that finds no mid within a tenth of its horizon past it is counted unmarked, never marked at
a later mid under its horizon's name."""
from journal.catalogue import Side
from mm_core.metrics import Metrics


def test_a_symbol_without_a_mid_does_not_block_the_others():
    m = Metrics(3, (1_000, 10_000), adverse_horizon=0)
    mids = [0, 0, 20_000]
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)     # symbol 1's book goes one-sided (no mid)
    m.on_fill(2, Side.BUY, 100, 10_000, 20_000, 10)    # symbol 2 has a mid the whole time
    assert m.on_time(1_020, mids) == [(2, True, 0, 0.0)]   # marked at its horizon, not later
    assert m.blocked == [1] and m.waiting == [1, 0]    # symbol 1 waits a tenth of its horizon
    assert m.next_due_ns == 10_000                      # the next horizon still counts
    mids[2] = 19_000                                    # symbol 2 moves against us later
    assert m.on_time(1_050, mids) == []
    assert (m.marked_by[2], m.adverse_by[2], m.recent_markout[2]) == (1, 0, 0.0)
    mids[1] = 20_000
    assert m.on_time(1_060, mids) == [(1, True, 0, 0.0)]   # symbol 1 once it has a mid
    assert m.blocked == [] and m.waiting == [0, 0]
    assert m.on_time(10_010, mids) == [(1, True, 1, 0.0), (2, True, 1, -500.0)]
    assert not any(m.pending) and m.markout_n == [2, 2] and m.markout_unmarked == [0, 0]


def test_waiting_fills_keep_their_order_and_mature_together():
    m = Metrics(3, (100,), adverse_horizon=0)
    mids = [0, 0, 20_000]
    for t, s in ((0, 1), (5, 2), (7, 1), (9, 2)):
        m.on_fill(s, Side.SELL, 100, 10_010, 20_000, t)
    assert [x[0] for x in m.on_time(109, mids)] == [2, 2]
    assert [(e[0], e[1]) for e in m.pending[0]] == [(0, 1), (7, 1)]
    assert m.on_time(109, mids) == []                   # nothing new due, still no mid
    mids[1] = 20_000
    assert m.on_time(109, mids) == [(1, False, 0, 10.0), (1, False, 0, 10.0)]
    assert m.next_due_ns > 10**18 and m.blocked == []


def test_a_markout_with_no_mid_by_its_horizon_and_a_tenth_is_counted_unmarked():
    m = Metrics(2, (1_000, 5_000), adverse_horizon=0)
    mids = [0, 0]                                       # the book emptied (a session change)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    assert m.on_time(1_050, mids) == [] and m.blocked == [1]
    assert m.next_due_ns == 5_000                       # its last chance wakes nothing
    mids[1] = 10_000                                    # a mid after its last chance (1_100)
    assert m.on_time(1_200, mids) == []                 # is not its markout: unmarked
    assert m.markout_unmarked == [1, 0] and m.blocked == [] and m.waiting == [0, 0]
    assert m.on_time(5_000, mids) == [(1, True, 1, -5_000.0)]   # the next horizon has its mid
    assert m.markout_n == [0, 1] and m.markout_qty == [0, 100] and m.markout_x2[0] == 0
    assert m.summary([0, 10_000])["markout_unmarked"] == {
        "1000": {"fills": 1, "book_stale": 0}, "5000": {"fills": 0, "book_stale": 0}}


def test_the_timer_counts_a_waiting_markout_past_its_last_chance():
    m = Metrics(2, (1_000, 5_000), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    assert m.on_time(1_050, [0, 0]) == [] and m.blocked == [1]
    assert m.on_time(1_099, [0, 0], expire=True) == [] and m.waiting == [1, 0]   # still in time
    assert m.on_time(1_100, [0, 0]) == [] and m.waiting == [1, 0]    # not the timer: nothing due
    assert m.on_time(1_100, [0, 0], expire=True) == []
    assert m.markout_unmarked == [1, 0] and m.blocked == [] and not m.pending[0]


def test_a_fill_first_seen_after_its_last_chance_with_the_mid_of_its_horizon_is_marked():
    """Nothing ran between its horizon and now: the mid now is the one its horizon saw."""
    m = Metrics(2, (1_000,), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    assert m.on_time(2_000, [0, 20_200]) == [(1, True, 0, 100.0)]


def test_markouts_due_while_the_book_is_stale_are_unmarked_and_not_returned():
    m = Metrics(2, (1_000,), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    assert m.on_time(1_000, [0, 20_000], stale=True) == []   # the stale mid is not used
    assert m.markout_unmarked == [1] and m.markout_unmarked_stale == [1]
    assert m.markout_n == [0] and m.adverse == 0 and m.recent_markout == [0.0, 0.0]
    m.on_fill(1, Side.SELL, 100, 10_100, 20_000, 2_000, stale=True)
    assert m.spread_x2[1] == 0 and m.spread_marked_qty[1] == 100 and m.stale_fill_qty == [100, 0]
    m.on_hedge_fill(1, Side.BUY, 100, 10_100, 20_000, stale=True)
    assert m.hedge_cost_x2 == 0 and m.hedge_marked_qty == 0 and m.stale_fill_qty == [100, 100]
    assert m.on_time(3_000, [0, 19_000]) == [(1, False, 0, 600.0)]   # current again: marked


def _metrics_view(m: Metrics) -> tuple:
    return (m.state_items(), m.next_due_ns, m.blocked)


def test_the_timer_leaves_waiting_markouts_as_the_whole_pass_would():
    """on_time(expire=True) with nothing due returns at once while every waiting markout waits
    on (no mid, its last chance ahead): exactly what the whole pass over the queues leaves (run
    here by moving next_due_ns back to now, which makes nothing else due), on random fills, mids
    and times, with and without a stale book."""
    import copy
    import random
    rng = random.Random(5)
    m = Metrics(3, (1_000, 10_000, 50_000), adverse_horizon=1)
    mids = [20_000, 20_000, 20_000]
    now = early = 0
    for step in range(3_000):
        now += rng.choice((1, 30, 90, 400, 2_000))
        if rng.random() < 0.3:
            s = rng.randrange(3)
            m.on_fill(s, rng.choice((Side.BUY, Side.SELL)), rng.randrange(1, 300), 10_000 + rng.randrange(-40, 40),
                      mids[s], now)
        if rng.random() < 0.1:
            s = rng.randrange(3)
            mids[s] = 0 if rng.random() < 0.5 else 20_000 + 2 * rng.randrange(-30, 30)
        stale = rng.random() < 0.05
        if now < m.next_due_ns and m.blocked:
            whole = copy.deepcopy(m)
            whole.next_due_ns = now
            want = whole.on_time(now, mids, stale, expire=True)
            changes = m.changes
            assert m.on_time(now, mids, stale, expire=True) == want
            assert _metrics_view(m) == _metrics_view(whole)
            early += m.changes == changes
        else:
            m.on_time(now, mids, stale, expire=rng.random() < 0.5)
        assert m.blocked == m.blocked_of_waiting()      # what MarkoutQueues.from_c derives
    assert early > 50 and m.markout_n[1] > 100 and sum(m.markout_unmarked) > 10
