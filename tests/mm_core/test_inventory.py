import math

import pytest

from journal.catalogue import Side
from mm_core.inventory import (
    InventoryError, InventoryTracker, SkewParams, as_depths, glft_depths, quote_sizes,
)

P = SkewParams(model="as", gamma=0.1, k=1.0, arrival_a=1.0, horizon_s=1.0, lot=100)


def test_avellaneda_stoikov_reservation_price_by_hand():
    # s = 100, q = 2, γ = 0.1, σ² = 4, T−t = 1, k = 1:
    # r = s − qγσ²(T−t) = 100 − 0.8 = 99.2; spread = γσ²(T−t) + (2/γ)ln(1+γ/k) = 0.4 + 1.9062036
    bid_depth, ask_depth = as_depths(2.0, 4.0, P)
    s = 100.0
    r = 99.2
    half = (0.4 + 20 * math.log(1.1)) / 2
    assert s - bid_depth == pytest.approx(r - half)
    assert s + ask_depth == pytest.approx(r + half)
    assert bid_depth + ask_depth == pytest.approx(0.4 + 1.9062035960864972)
    assert as_depths(0.0, 4.0, P) == pytest.approx((1.1531017980432486, 1.1531017980432486))


def test_glft_closed_form_by_hand():
    # c = (1/γ)ln(1+γ/k) = 0.9531018; w = sqrt(σ²γ/(2kA)·(1+γ/k)^(1+k/γ)) = sqrt(0.2·1.1^11) = 0.7553961
    p = SkewParams(model="glft", gamma=0.1, k=1.0, arrival_a=1.0)
    assert glft_depths(0.0, 4.0, p) == pytest.approx((1.3307998723, 1.3307998723))
    assert glft_depths(1.0, 4.0, p) == pytest.approx((2.0861960208, 0.5754037238))
    assert glft_depths(-1.0, 4.0, p) == pytest.approx((0.5754037238, 2.0861960208))
    # market impact ξ amplifies the skew term by e^{kξ/4}
    b0, _ = glft_depths(0.0, 4.0, p, xi=4.0)
    assert b0 == pytest.approx(0.9531018 + 0.5 * 0.7553961 * math.e, rel=1e-6)


def test_size_skew_and_withdrawal_near_the_limit():
    assert quote_sizes(0, 1000, 200, 100, 0.5, 0.8) == (200, 200)
    # long 500 of 1000 with skew 0.5: the adding (bid) side is 200·(1 − 0.25) = 150 -> one lot
    assert quote_sizes(500, 1000, 200, 100, 0.5, 0.8) == (100, 200)
    assert quote_sizes(-500, 1000, 200, 100, 0.5, 0.8) == (200, 100)
    assert quote_sizes(800, 1000, 200, 100, 0.5, 0.8) == (0, 200)       # withdrawn
    assert quote_sizes(-850, 1000, 200, 100, 0.0, 0.8) == (200, 0)
    assert quote_sizes(950, 1000, 200, 100, 0.0, 1.0) == (0, 200)       # a fill may not pass the limit


def test_tracker_and_bad_parameters():
    t = InventoryTracker(3)
    assert t.apply_fill(1, Side.BUY, 300) == 300
    assert t.apply_fill(1, Side.SELL, 500) == -200
    assert t.traded[1] == 800
    with pytest.raises(InventoryError):
        t.apply_fill(1, Side.BUY, 0)
    with pytest.raises(InventoryError):
        SkewParams(model="xyz")
    with pytest.raises(InventoryError):
        SkewParams(gamma=0.0)
