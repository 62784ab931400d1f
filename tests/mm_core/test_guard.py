import pytest

from mm_core.guard import AGGRESSION, FILL_SPIKE, MARKOUT, VPIN, GuardError, GuardParams, SymbolGuard, Vpin

MS = 1_000_000


def test_vpin_on_a_small_series_by_hand():
    v = Vpin(bucket_volume=10, n_buckets=2)
    v.add(True, 6)
    v.add(False, 4)           # bucket 1: |4 − 6| = 2
    assert v.value == 0.0     # one bucket of two: not yet defined
    v.add(True, 10)           # bucket 2: |0 − 10| = 10
    assert v.value == pytest.approx((2 + 10) / (2 * 10))
    v.add(True, 15)           # straddles: bucket 3 = 10 buys, 5 buys carried into bucket 4
    assert list(v.imbalances) == [10, 10]
    assert (v.buy, v.sell) == (5, 0)
    v.add(False, 5)           # bucket 4: |5 − 5| = 0
    assert v.value == pytest.approx((10 + 0) / 20)
    assert v.direction == 1


def test_one_sided_aggression_trips_the_ask_and_cools_down():
    g = SymbolGuard(1, GuardParams(prints_window=5, aggression_threshold=0.8, aggression_min_volume=300,
                                   cooldown_ns=1000 * MS, vpin_bucket_volume=100_000))
    g.on_print(True, 100)
    g.on_print(True, 100)
    assert g.evaluate(0) is None          # 200 shares: below the minimum volume
    g.on_print(True, 100)
    trip = g.evaluate(1)
    assert trip is not None and trip.ask and not trip.bid and trip.reasons == AGGRESSION
    assert trip.aggression == 1.0 and trip.reason_text == "aggression"
    assert g.side_blocked(False, 2) and not g.side_blocked(True, 2)
    assert g.evaluate(2) is None          # still at risk, already pulled: no second trip
    for _ in range(5):
        g.on_print(False, 100)            # the window rolls over to sellers
    trip = g.evaluate(3)
    assert trip.bid and not trip.ask


def test_fill_spike_on_one_side():
    g = SymbolGuard(1, GuardParams(fill_window_ns=100 * MS, fill_spike_count=3))
    for t in (0, 10, 20):
        g.on_own_fill(True, t * MS)
    trip = g.evaluate(30 * MS)
    assert trip.bid and not trip.ask and trip.reasons & FILL_SPIKE
    g2 = SymbolGuard(1, GuardParams(fill_window_ns=100 * MS, fill_spike_count=3))
    for t in (0, 200, 400):               # spread out: never three inside the window
        g2.on_own_fill(True, t * MS)
    assert g2.evaluate(400 * MS) is None


def test_vpin_over_threshold_pulls_the_side_facing_the_flow():
    g = SymbolGuard(1, GuardParams(vpin_bucket_volume=100, vpin_buckets=2, vpin_threshold=0.7,
                                   aggression_min_volume=10**9))
    g.on_print(False, 100)
    g.on_print(False, 100)
    trip = g.evaluate(0)
    assert trip.reasons == VPIN and trip.bid and not trip.ask and trip.vpin == 1.0


def test_negative_markouts_trip_their_side():
    g = SymbolGuard(1, GuardParams(markout_window=3, markout_threshold=1.0))
    for m in (-3.0, -1.0, 0.5):      # mean −1.17 < −1
        g.on_markout(False, m)            # our sells were followed by rises
    trip = g.evaluate(0)
    assert trip.ask and not trip.bid and trip.reasons == MARKOUT
    assert g.toxicity() == 0.0


def test_a_markout_trip_lasts_its_cool_down_not_the_rest_of_the_day():
    """No new fills arrive while the side is pulled, so the old markouts must not keep it out."""
    p = GuardParams(markout_window=3, markout_threshold=1.0, cooldown_ns=2_000)
    g = SymbolGuard(1, p)
    for m in (-3.0, -2.0, -1.5):
        g.on_markout(True, m)
    assert g.evaluate(0).bid
    assert g.side_blocked(True, 1_999) and g.evaluate(1_000) is None
    assert g.evaluate(5_000) is None and not g.side_blocked(True, 5_000)
    for m in (-3.0, -2.0, -1.5):                 # fresh adverse fills trip it again
        g.on_markout(True, m)
    assert g.evaluate(6_000).bid


def test_bad_parameters():
    with pytest.raises(GuardError):
        GuardParams(aggression_threshold=1.5)
    with pytest.raises(GuardError):
        GuardParams(vpin_buckets=0)
