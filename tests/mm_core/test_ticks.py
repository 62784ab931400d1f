import pytest

from mm_core.ticks import TickError, TickTable


@pytest.mark.parametrize("half_penny, price, tick", [
    (False, 9_999, 1), (False, 10_000, 100), (False, 1_000_000, 100),
    (True, 9_999, 1), (True, 10_000, 50), (True, 505_000, 50),
])
def test_tick_at_follows_rule_612(half_penny, price, tick):
    assert TickTable(half_penny).tick_at(price) == tick


@pytest.mark.parametrize("half_penny, raw, down, up", [
    (False, 10_050.7, 10_000, 10_100),   # $1.005: bid to $1.00, ask to $1.01
    (False, 9_999.2, 9_999, 10_000),     # just under $1.00: sub-penny bid, ask lands on $1.00
    (False, 9_999.9, 9_999, 10_000),
    (False, 10_000.0, 10_000, 10_000),   # exactly $1.00 is valid both ways
    (False, 10_000.5, 10_000, 10_100),
    (True, 10_010.0, 10_000, 10_050),    # $0.005 tier
    (True, 505_049.0, 505_000, 505_050),
    (False, 8_500.4, 8_500, 8_501),
])
def test_rounding_bids_down_asks_up(half_penny, raw, down, up):
    t = TickTable(half_penny)
    assert t.round_down(raw) == down
    assert t.round_up(raw) == up
    assert t.is_valid(down) and t.is_valid(up)


def test_steps_across_one_dollar():
    t = TickTable()
    assert t.tick_below(10_000) == 9_999
    assert t.tick_above(9_999) == 10_000
    assert t.tick_below(10_100) == 10_000
    assert t.tick_above(10_000) == 10_100
    assert not t.is_valid(10_001)


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf")])
def test_unroundable_prices_raise(bad):
    with pytest.raises(TickError):
        TickTable().round_down(bad)
    with pytest.raises(TickError):
        TickTable().round_up(bad if bad != 0.0 else -1.0)
