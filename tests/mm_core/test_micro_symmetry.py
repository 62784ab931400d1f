"""Stoikov's symmetrisation needs the mirror of a book (bid and ask sizes swapped) to fall in the
mirror imbalance bucket, exact imbalances k/n_imb included (with 100-share lots they are common):
symmetric data must price a balanced book at mid, an antisymmetric table must price mirrored
books mirrored, and the estimator must count a mirrored path as the path itself — in the Python
reference and in the compiled kernel alike."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.config import EngineConfig, FairValueParams
from mm_core.fairvalue import FairValueModel, MicroPriceTable
from mm_core.guard import GuardParams
from mm_core.hedger import HedgeParams
from mm_core.sigfair import KernelFairValue, fv_setup
from mm_core.sigkernel import SignalKernel

TICK = 100


def model(compiled: bool, n_imb: int, n_spread: int = 2, table=None, calibrate_every: int = 0):
    """A one-symbol fair value model on micro-price alone (no imbalance, flow or lead terms)."""
    kw = dict(ticks=[TICK], n_imb=n_imb, n_spread=n_spread, w_imbalance=0.0, w_flow=0.0,
              calibrate_every=calibrate_every, tables={0: table} if table else None)
    if not compiled:
        return FairValueModel(1, **kw)
    params = FairValueParams(n_imb=n_imb, n_spread=n_spread, w_imbalance=0.0, w_flow=0.0,
                             calibrate_every=calibrate_every)
    kernel = SignalKernel(1, GuardParams(), 0.1, fv_setup(1, params, [TICK], {}, [0.0], {}, 0.05,
                                                          HedgeParams()))
    return KernelFairValue(kernel, 1, **kw)


both = pytest.mark.parametrize("compiled", [False, True], ids=["reference", "kernel"])


@both
def test_symmetric_data_prices_a_balanced_book_at_mid(compiled):
    """The reviewer's session: balanced 100x100 books move the mid either way with equal odds,
    300x100 books mostly up, 100x300 mostly down, and every move lands on a 200x200 book. The
    exact imbalances 1/2, 1/4 and 3/4 once mirrored into the wrong buckets, and a balanced
    100x100 book priced 0.3 tick above mid."""
    rng = random.Random(1)
    fv = model(compiled, 4, 4, calibrate_every=1000)
    bid = 10_000
    for _ in range(5000):
        r = rng.random()
        if r < 0.5:
            sizes, d = (100, 100), rng.choice((-TICK, TICK))
        elif r < 0.75:
            sizes, d = (300, 100), TICK if rng.random() < 0.8 else -TICK
        else:
            sizes, d = (100, 300), -TICK if rng.random() < 0.8 else TICK
        fv.update(0, bid, sizes[0], bid + TICK, sizes[1])
        bid += d
        fv.update(0, bid, 200, bid + TICK, 200)
    assert fv.estimators[0].observations == 10_000 - 1
    row = fv.tables[0].g[0]
    assert row[2] > 0.1 and row[1] == pytest.approx(-row[2], abs=1e-12)
    mid = 20_050.0
    assert fv.update(0, 20_000, 100, 20_100, 100) == pytest.approx(mid, abs=1e-9)
    up = fv.update(0, 20_000, 300, 20_100, 100) - mid
    down = fv.update(0, 20_000, 100, 20_100, 300) - mid
    assert up > 10 and down == pytest.approx(-up, abs=1e-9)


@both
@settings(max_examples=40, deadline=None)
@given(st.integers(2, 7), st.data())
def test_an_antisymmetric_table_prices_mirrored_books_mirrored(compiled, n_imb, data):
    half = data.draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=n_imb // 2, max_size=n_imb // 2))
    row = [*half, *([0.0] if n_imb % 2 else []), *(-x for x in reversed(half))]
    fv = model(compiled, n_imb, table=[row, [2 * x for x in row]])
    size = st.one_of(st.integers(0, 12).map(lambda lots: 100 * lots), st.integers(0, 1000))
    for _ in range(20):
        bq, aq = data.draw(size), data.draw(size)
        spread = data.draw(st.integers(1, 3))
        mid = 10_000 + spread * TICK * 0.5
        above = fv.update(0, 10_000, bq, 10_000 + spread * TICK, aq) - mid
        below = fv.update(0, 10_000, aq, 10_000 + spread * TICK, bq) - mid
        assert above == pytest.approx(-below, abs=1e-9), (bq, aq)
        assert fv.update(0, 10_000, bq, 10_000 + spread * TICK, bq) == mid


def mirrored(tops, centre: int):
    """The mirror path: prices reflected about `centre`, bid and ask sizes swapped."""
    return [(2 * centre - ask, aq, 2 * centre - bid, bq) for bid, bq, ask, aq in tops]


lot_top = st.tuples(st.integers(-3, 3), st.integers(0, 8), st.integers(1, 3), st.integers(0, 8))


@both
@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5), st.lists(lot_top, min_size=2, max_size=60))
def test_the_estimator_counts_a_mirrored_path_as_the_path(compiled, n_imb, steps):
    """Symmetrised counts of a path and of its mirror are the same counts, edges included."""
    tops = [(10_000 + off * TICK, 100 * bl, 10_000 + (off + spread) * TICK, 100 * al)
            for off, bl, spread, al in steps]
    counts = []
    for path in (tops, mirrored(tops, 10_050)):
        fv = model(compiled, n_imb, 3, calibrate_every=10**9)
        for top in path:
            fv.update(0, *top)
        e = fv.estimators[0]
        counts.append([[list(r) for r in m] for m in (e.q, e.r1, e.r2)] + [e.observations])
    assert counts[0] == counts[1]


@both
def test_a_four_bucket_table_from_config_keeps_its_buckets(compiled):
    """A config table of n_imb = 4 columns still means the four quarters of [0, 1]: only an edge
    k/4 now belongs to the bucket on the side of 1/2, and an exact balance, on the edge between
    the two centre buckets, prices at their mean."""
    from mm_core.engine import Engine
    from tests.mm_core.wire import SYMBOLS, gateway
    cfg = EngineConfig.from_toml("[fair_value]\nn_imb = 4\nn_spread = 1\ncalibrate_every = 0\n"
                                 "w_imbalance = 0.0\nw_flow = 0.0\nmicro_table = [-1.0, -0.5, 0.25, 2.0]\n")
    fv = Engine(cfg, SYMBOLS, gateway(), compiled=compiled).fv
    mid = 1_000_000.0
    for (bq, aq), ticks in {(900, 100): 2.0, (600, 400): 0.25, (300, 700): -0.5, (100, 900): -1.0,
                            (100, 300): -0.5, (300, 100): 0.25, (1000, 0): 2.0, (0, 1000): -1.0,
                            (100, 100): -0.125, (0, 0): -0.125}.items():
        assert fv.update(1, 999_950, bq, 1_000_050, aq) == mid + ticks * 100, (bq, aq)


def test_the_table_finds_buckets_from_integer_sizes():
    t = MicroPriceTable(4, 2, [[-0.3, -0.1, 0.1, 0.3], [-0.6, -0.2, 0.2, 0.6]])
    assert [t.position(b, 400 - b) for b in (0, 99, 100, 199, 200, 201, 300, 301, 400)] == \
        [0, 0, 2, 2, 3, 4, 4, 6, 6]
    assert t.adjustment_ticks(300, 300, 1) == 0.0 and t.adjustment_ticks(0, 0, 2) == 0.0
    assert t.adjustment_ticks(300, 100, 2) == 0.2 and t.adjustment_ticks(100, 300, 2) == -0.2
    odd = MicroPriceTable(3, 1, [[-1.0, 0.0, 1.0]])
    assert [odd.position(b, 300 - b) for b in (0, 100, 150, 200, 300)] == [0, 2, 2, 2, 4]
