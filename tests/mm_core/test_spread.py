import pytest

from mm_core.spread import SpreadError, VolEstimator, quote_prices, widen
from mm_core.ticks import TickTable

S = 1_000_000_000


def test_volatility_is_squared_move_over_time():
    v = VolEstimator(0.1, prior_sigma=3.0)
    assert v.variance_per_s == 9.0            # prior until ten moves
    mid = 10_000.0
    for i in range(1, 30):
        mid += 50.0 if i % 2 else -50.0       # ±50 price4 every 0.5 s
        v.update(mid, i * S // 2)
    # EWMA(d²) / EWMA(dt) = 2500 / 0.5 (both averages share the same warm-up weight)
    assert v.variance_per_s == pytest.approx(5_000.0)
    assert v.sigma == pytest.approx(5_000.0 ** 0.5)
    with pytest.raises(SpreadError):
        VolEstimator(0.0, 1.0)


def test_widen_by_hand():
    # 2 · (1 + 1·0.5) · (1 + 2·0.25) + 0.5·1 = 4.5 + 0.5; SAFE_MODE ×2
    assert widen(2.0, adverse_move=1.0, adverse_rate=0.5, toxicity=0.25, rate_weight=1.0,
                 toxicity_weight=2.0) == pytest.approx(5.0)
    assert widen(2.0, adverse_move=-3.0, adverse_rate=0.0, toxicity=0.0, rate_weight=1.0,
                 toxicity_weight=1.0, multiplier=2.0) == pytest.approx(4.0)


def test_quote_prices_round_outward_and_stay_a_tick_apart():
    t = TickTable()
    assert quote_prices(10_050.0, 30.0, 30.0, t, 0, 0) == (10_000, 10_100)
    # a tiny spread around $1.00 still spans a full tick of the grid it lands on
    assert quote_prices(9_999.5, 0.2, 0.2, t, 0, 0) == (9_999, 10_000)
    bid, ask = quote_prices(10_000.0, 0.0, 0.0, t, 0, 0)
    assert ask - bid >= t.tick_at(bid)


def test_quote_prices_never_marketable():
    t = TickTable()
    # skew pushed the bid through the best ask: it is pulled back one tick below it
    assert quote_prices(1_000_500.0, -200.0, 300.0, t, 1_000_300, 1_000_400) == (1_000_300, 1_000_800)
    assert quote_prices(1_000_000.0, 300.0, -500.0, t, 1_000_600, 1_000_700)[1] == 1_000_700


def test_half_penny_symbol_uses_its_tier():
    t = TickTable(half_penny=True)
    assert quote_prices(505_020.0, 10.0, 10.0, t, 0, 0) == (505_000, 505_050)
