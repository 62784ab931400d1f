
import pytest

from mm_core.fairvalue import (
    EwmaBeta, FairValueError, FairValueModel, MicroPriceEstimator, MicroPriceTable, imbalance, mid,
    multi_level_imbalance, weighted_mid,
)


def test_mid_weighted_mid_and_imbalance_by_hand():
    assert mid(10_000, 10_100) == 10_050.0
    assert imbalance(300, 100) == 0.75
    # W = I·Pa + (1 − I)·Pb = 0.75·10100 + 0.25·10000 = 10075
    assert weighted_mid(10_000, 300, 10_100, 100) == 10_075.0
    assert imbalance(0, 0) == 0.5


def test_multi_level_imbalance_by_hand():
    bids = [(100, 300), (99, 100)]
    asks = [(101, 100), (102, 500)]
    # decay 0.5: num = (300-100) + 0.5·(100-500) = 0; den = 400 + 0.5·600 = 700
    assert multi_level_imbalance(bids, asks, 0.5) == 0.0
    assert multi_level_imbalance(bids[:1], asks[:1], 0.5) == pytest.approx(0.5)
    assert multi_level_imbalance([], [], 0.5) == 0.0


def test_micro_price_table_lookup():
    t = MicroPriceTable(4, 2, [[-0.3, -0.1, 0.1, 0.3], [-0.6, -0.2, 0.2, 0.6]])
    assert t.adjustment_ticks(900, 100, 1) == 0.3
    assert t.adjustment_ticks(100, 0, 1) == 0.3     # imbalance 1.0 falls in the last bucket
    assert t.adjustment_ticks(100, 900, 2) == -0.6
    assert t.adjustment_ticks(300, 700, 7) == -0.2  # wider spreads use the last row
    with pytest.raises(FairValueError):
        MicroPriceTable(4, 2, [[0.0] * 3])


def test_estimator_by_hand_degenerate_trend():
    """Every observation from the high-imbalance state moves the mid up one tick and stays there.
    Symmetrised: R1[hi,+1 tick] = 1, R2[hi,hi] = 1 (and mirrored for lo); Q = 0, so
    g1 = R1·K = (−1, +1) ticks, B = I, G = Σ_{i=0..5} B^i g1 = (−6, +6)."""
    t = MicroPriceTable(2, 1)
    e = MicroPriceEstimator(t)
    for i in range(20):
        e.observe(10_000 + 100 * i, 900, 10_100 + 100 * i, 100, 100)
    assert e.calibrate(min_observations=5)
    assert t.g[0] == pytest.approx([-6.0, 6.0])


def test_estimator_learns_imbalance_predicts_direction_and_is_antisymmetric():
    t = MicroPriceTable(4, 2)
    e = MicroPriceEstimator(t)
    mid2 = 20_100
    for i in range(400):
        heavy_bid = i % 3 != 0
        bq, aq = (800, 100) if heavy_bid else (450, 550)
        bid = (mid2 - 100) // 2
        e.observe(bid, bq, bid + 100, aq, 100)
        if heavy_bid and i % 2 == 0:
            mid2 += 200          # the mid ticks up after a bid-heavy book, half the time
    assert e.calibrate(min_observations=100)
    row = t.g[0]
    assert row[3] > 0 > row[0]
    assert row[0] == pytest.approx(-row[3]) and row[1] == pytest.approx(-row[2])


def test_ewma_beta_recovers_a_linear_relation():
    b = EwmaBeta(0.2, prior=0.7)
    assert b.beta == 0.7
    for i in range(50):
        x = 0.001 * ((-1) ** i) * (1 + i % 5)
        b.update(x, 2.0 * x)
    assert b.beta == pytest.approx(2.0)


def test_fair_value_combines_micro_imbalance_flow_and_lead():
    model = FairValueModel(3, ticks=[1, 100, 100], tables={1: [[0.0, 0.0, 0.5, 1.0]] * 4},
                           w_flow=0.5, leaders={2: 1}, lead_prior=0.5, calibrate_every=0)
    # micro: mid 10050 + 1.0 tick (imbalance 0.9 in the top bucket) = 10150
    assert model.update(1, 10_000, 900, 10_100, 100) == pytest.approx(10_150.0)
    for _ in range(5):
        model.on_trade(1, True, 100)
    assert model.flow(1) == pytest.approx(1.0)
    # + w_flow · flow · half spread = 0.5 · 1 · 50
    assert model.update(1, 10_000, 900, 10_100, 100) == pytest.approx(10_175.0)
    # follower 2: first update fixes the leader reference; then the leader moves +1%
    assert model.update(2, 20_000, 100, 20_100, 100) == pytest.approx(20_050.0)
    model.update(1, 10_100, 500, 10_200, 500)        # leader mid 10050 -> 10150
    shifted = model.update(2, 20_000, 100, 20_100, 100)
    lead = 0.5 * (10_150 / 10_050 - 1.0) * 20_050
    assert shifted == pytest.approx(20_050.0 + lead)
    assert model.update(1, 10_000, 100, 10_000, 100) == 0.0   # locked/crossed: no fair value


def test_base_price_can_be_mid_or_weighted_mid():
    for base, want in (("mid", 10_050.0), ("weighted", 10_090.0), ("micro", 10_150.0)):
        model = FairValueModel(2, ticks=[1, 100], tables={1: [[0.0, 0.0, 0.5, 1.0]] * 4}, base=base)
        assert model.update(1, 10_000, 900, 10_100, 100) == pytest.approx(want)
    with pytest.raises(FairValueError):
        FairValueModel(2, ticks=[1, 100], base="vwap")
