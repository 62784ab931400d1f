import math

import pytest

from mm_core.spread import SpreadError, VolEstimator, quote_prices, widen
from mm_core.ticks import TickTable

S = 1_000_000_000


LN2 = math.log(2.0)


def test_volatility_is_squared_move_over_time():
    v = VolEstimator(LN2 / 1.0, prior_sigma=3.0)     # half-life 1 s
    assert v.variance_per_s == 9.0            # the prior, before any move
    mid = 10_000.0
    v.update(mid, 0)
    v.update(mid + 50.0, S // 2)              # 50 price4 in 0.5 s: the target is 2500 / 0.5
    k = 1.0 - 2.0 ** -0.5                     # half a half-life: the share of the way there
    assert v.variance_per_s == pytest.approx(9.0 + k * (5_000.0 - 9.0))
    for i in range(2, 60):
        mid += 50.0 if i % 2 else -50.0       # ±50 price4 every 0.5 s
        v.update(mid, i * S // 2)
    assert v.variance_per_s == pytest.approx(5_000.0)      # the prior decayed away (2^-29)
    assert v.sigma == pytest.approx(5_000.0 ** 0.5)
    for bad in ((0.0, 1.0), (math.inf, 1.0), (1.0, -1.0), (1.0, math.nan)):
        with pytest.raises(SpreadError):
            VolEstimator(*bad)


def test_a_burst_of_moves_adds_the_variance_it_realized_not_its_pace():
    """Steady: one 50-price4 move a second (2,500 per s). Then 100 moves 1 ms apart: with a 10 s
    half-life the burst adds rate · 100 · 2500, the variance it realized over the window (~8x the
    steady rate), not its 1,000-fold pace (an EWMA per move of d² over one of dt, with weight 0.05,
    gave ~145x)."""
    rate = LN2 / 10.0
    v = VolEstimator(rate, prior_sigma=50.0)
    mid, now = 10_000.0, 0
    for i in range(200):
        mid += 50.0 if i % 2 else -50.0
        now += S
        v.update(mid, now)
    steady = v.variance_per_s
    assert steady == pytest.approx(2_500.0)
    for i in range(100):
        mid += 50.0 if i % 2 else -50.0
        now += S // 1000
        v.update(mid, now)
    assert v.variance_per_s == pytest.approx(steady + rate * 100 * 2_500.0, rel=0.01)
    assert v.variance_per_s < 10 * steady
