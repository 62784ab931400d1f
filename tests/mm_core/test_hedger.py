import pytest

from journal.catalogue import Side
from mm_core.hedger import HedgeError, HedgeParams, Hedger
from mm_core.ticks import TickTable

MS = 1_000_000
T = TickTable()
P = HedgeParams(trigger=1_000, keep=200, hold_ns=100 * MS, band=100, lot=100, cross_ticks=1,
                beta_alpha=0.2, beta_prior=1.0, min_samples=5)


def decide(h, position, now, s=500_000.0, hp=1_000_000.0, bid=999_900, ask=1_000_000):
    return h.decide(2, position, now, s, hp, bid, ask, T.tick_above, T.tick_below)


def _learn(h, beta: float) -> tuple[float, float]:
    """Feed mids whose returns have this beta; returns the last (symbol, hedge) mids."""
    s, hp = 500_000.0, 1_000_000.0
    h.observe(2, s, hp)
    for i in range(30):
        r = 0.001 * (1 if i % 2 else -1)
        s, hp = s * (1 + beta * r), hp * (1 + r)
        h.observe(2, s, hp)
    return s, hp


def test_ratio_and_target_by_hand():
    h = Hedger({2: 1}, P)
    # prior beta 1 on returns; price ratio 50/100: half a share of hedge per share
    assert h.ratio(2, 500_000.0, 1_000_000.0) == 0.5
    # long 1200, keep 200: hedge the excess 1000 with −500 shares of the hedge
    assert h.target(2, 1_200, 500_000.0, 1_000_000.0) == -500
    assert h.target(2, 150, 500_000.0, 1_000_000.0) == 0


def test_sustained_position_sends_a_crossing_ioc_then_handles_a_partial():
    h = Hedger({2: 1}, P)
    assert decide(h, 1_200, 0) is None              # not sustained yet
    assert decide(h, 1_200, 50 * MS) is None
    order = decide(h, 1_200, 100 * MS)
    assert (order.hedge_id, order.side, order.qty) == (1, Side.SELL, 500)
    assert order.price == 999_800                    # one tick through the best bid
    assert decide(h, 1_200, 110 * MS) is None        # one hedge in flight at a time
    h.on_fill(2, Side.SELL, 200)                     # partial, the IOC rest is canceled
    h.on_done(2)
    again = decide(h, 1_200, 120 * MS)
    assert (again.side, again.qty) == (Side.SELL, 300)
    h.on_fill(2, Side.SELL, 300)
    h.on_done(2)
    assert h.hedged(2) == -500 and decide(h, 1_200, 130 * MS) is None


def test_a_partial_fill_short_of_the_goal_by_less_than_the_band_is_finished():
    """The IOC for 500 fills 450: the 50 short (under the 100-share band) go out next, and the
    goal stays put while the target wobbles inside the band around it."""
    h = Hedger({2: 1}, P)
    decide(h, 1_200, 0)
    order = decide(h, 1_200, 100 * MS)
    assert (order.side, order.qty) == (Side.SELL, 500)
    h.on_fill(2, Side.SELL, 450)
    h.on_done(2)
    assert h.target(2, 1_300, 500_000.0, 1_000_000.0) == -600
    rest = decide(h, 1_300, 120 * MS)                # target −600: inside the band of the goal −500
    assert (rest.side, rest.qty, rest.price) == (Side.SELL, 50, 999_800)
    h.on_fill(2, Side.SELL, 50)
    h.on_done(2)
    assert h.hedged(2) == -500 and h.pairs[2].goal == -500
    assert decide(h, 1_300, 130 * MS) is None        # at the goal, and −600 is inside its band
    more = decide(h, 1_500, 140 * MS)                # target −700: a new goal
    assert (more.side, more.qty) == (Side.SELL, 200) and h.pairs[2].goal == -700


def test_a_brief_excursion_is_left_to_the_skew():
    h = Hedger({2: 1}, P)
    assert decide(h, 1_200, 0) is None
    assert decide(h, 800, 60 * MS) is None           # back under the trigger: timer resets
    assert decide(h, 1_200, 120 * MS) is None


def test_ratio_drift_rebalances_past_the_band():
    h = Hedger({2: 1}, P)
    decide(h, 1_200, 0)
    order = decide(h, 1_200, 100 * MS)
    h.on_fill(2, Side.SELL, order.qty)
    h.on_done(2)
    # the regression learns beta 2 (symbol moves twice the hedge): target doubles to −1000
    s, hp = _learn(h, 2.0)
    assert h.ratio(2, 1.0, 1.0) == pytest.approx(2.0, rel=1e-6)
    more = decide(h, 1_200, 200 * MS, s=s, hp=hp)
    assert more.side is Side.SELL and more.qty == pytest.approx(500, abs=100)


def test_position_back_inside_keep_unwinds_the_hedge():
    h = Hedger({2: 1}, P)
    decide(h, 1_200, 0)
    order = decide(h, 1_200, 100 * MS)
    h.on_fill(2, Side.SELL, order.qty)
    h.on_done(2)
    unwind = decide(h, 100, 200 * MS)
    assert (unwind.side, unwind.qty, unwind.price) == (Side.BUY, 500, 1_000_100)


def test_bad_pairs_and_params():
    with pytest.raises(HedgeError):
        Hedger({1: 1}, P)
    with pytest.raises(HedgeError):
        HedgeParams(trigger=100, keep=100)


def test_a_one_tick_wobble_across_a_lot_boundary_does_not_trade_back_and_forth():
    """Band one lot (the defaults): the target moving by one lot is inside the band, so a price
    wobbling by a tick around a lot boundary is left alone rather than crossing the spread each way."""
    h = Hedger({2: 1}, HedgeParams())
    position, now = 1_300, 0
    decide(h, position, now, s=550_000.0)
    first = decide(h, position, now + 600 * MS, s=550_000.0)
    assert (first.side, first.qty) == (Side.SELL, 600)
    h.on_fill(2, first.side, first.qty)
    h.on_done(2)
    for i in range(8):
        s = 549_900.0 if i % 2 == 0 else 550_000.0      # 54.99 <-> 55.00: target −500 <-> −600
        assert h.target(2, position, s, 1_000_000.0) == (-500 if i % 2 == 0 else -600)
        assert decide(h, position, now + (i + 2) * 600 * MS, s=s) is None
    assert h.hedged(2) == -600
    # more than the band away (two lots): rebalanced
    more = decide(h, position, now + 20 * 600 * MS, s=800_000.0)
    assert h.target(2, position, 800_000.0, 1_000_000.0) == -800
    assert (more.side, more.qty) == (Side.SELL, 200)


def test_the_band_may_not_be_under_a_lot():
    with pytest.raises(HedgeError, match="band must be >= lot"):
        HedgeParams(band=50, lot=100)
    assert HedgeParams(band=100, lot=100).band == 100


def test_an_unwind_left_short_by_less_than_a_band_is_finished():
    """The unwind IOC fills all but 50 shares (under the band): the rest goes out next, and the
    pair goes idle once nothing is hedged, instead of keeping 50 shares as a hedge for good."""
    h = Hedger({2: 1}, HedgeParams())
    decide(h, 1_300, 0, s=505_000.0)
    order = decide(h, 1_300, 600 * MS, s=505_000.0)
    h.on_fill(2, order.side, order.qty)
    h.on_done(2)
    unwind = decide(h, 0, 700 * MS, s=505_000.0)
    assert (unwind.side, unwind.qty) == (Side.BUY, order.qty)
    h.on_fill(2, Side.BUY, unwind.qty - 50)          # the IOC's last 50 are canceled
    h.on_done(2)
    rest = decide(h, 0, 800 * MS, s=505_000.0)
    assert (rest.side, rest.qty, rest.price) == (Side.BUY, 50, 1_000_100)
    h.on_fill(2, Side.BUY, 50)
    h.on_done(2)
    assert h.hedged(2) == 0 and decide(h, 0, 900 * MS, s=505_000.0) is None
    assert not h.pairs[2].active and h.idle(2, 0)


def test_the_ratio_uses_a_beta_bounded_by_max_beta():
    """The regression has no bound of its own: a learned beta of 40 would size the hedge at 40
    times the position's value; the ratio uses at most max_beta."""
    h = Hedger({2: 1}, HedgeParams(beta_alpha=0.2, min_samples=5, max_beta=3.0))
    _learn(h, 40.0)
    assert h.pairs[2].beta.beta == pytest.approx(40.0, rel=1e-3)
    assert h.ratio(2, 1.0, 1.0) == 3.0
    assert h.target(2, 1_300, 1.0, 1.0) == -3_000


@pytest.mark.parametrize("kwargs, problem", [
    ({"beta_prior": 1e7}, "beta_prior must be within"),
    ({"beta_prior": -6.0}, "beta_prior must be within"),
    ({"max_beta": 0.0}, "max_beta must be within"),
    ({"max_beta": 1e9, "beta_prior": 1e7}, "max_beta must be within"),
    ({"max_beta": float("nan")}, "max_beta must be within"),
])
def test_a_runaway_beta_is_refused(kwargs, problem):
    with pytest.raises(HedgeError, match=problem):
        HedgeParams(**kwargs)
