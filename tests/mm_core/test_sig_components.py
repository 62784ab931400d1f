"""The compiled signal kernel, component by component, against the Python reference classes:
random operation streams (hypothesis) applied to both, every return value and the final
state_items() required equal — floats exactly, not approximately."""
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.fairvalue import FairValueModel
from mm_core.guard import GuardError, GuardParams, SymbolGuard
from mm_core.hedger import Hedger, HedgeParams
from mm_core.sigfair import KernelFairValue, KernelHedger, KernelVol, fv_setup
from mm_core.sigkernel import SignalKernel
from mm_core.spread import VolEstimator
from mm_core.trades import TAPE_MAX, TradeTape
from mm_core.config import FairValueParams

N = 3
guard_params = st.builds(
    GuardParams, prints_window=st.integers(1, 8), aggression_threshold=st.sampled_from([0.3, 0.6, 1.0]),
    aggression_min_volume=st.integers(1, 400), fill_window_ns=st.integers(1, 50),
    fill_spike_count=st.integers(1, 4), vpin_bucket_volume=st.integers(1, 500),
    vpin_buckets=st.integers(1, 4), vpin_threshold=st.sampled_from([0.2, 0.5, 0.9]),
    markout_window=st.integers(1, 4), markout_threshold=st.sampled_from([0.0, 0.7, 3.0]),
    cooldown_ns=st.integers(0, 30))
symbol = st.integers(0, N - 1)
# any float, or per-share markouts of whole price4 over a lot size (whose plain and compensated
# sums differ in the last bit: the mean must be the plain left-to-right sum in both)
markout = st.one_of(st.floats(-20, 20, allow_nan=False),
                    st.builds(lambda x2, qty: x2 / (2.0 * qty), st.integers(-1500, 500),
                              st.sampled_from([100, 200, 300, 700])))
guard_op = st.one_of(
    st.tuples(st.just("print"), symbol, st.booleans(), st.integers(1, 700), st.integers(1, 25)),
    st.tuples(st.just("break"), st.integers(1, 30)),
    st.tuples(st.just("fill"), symbol, st.booleans(), st.integers(0, 10)),
    st.tuples(st.just("markout"), symbol, st.booleans(), markout),
    st.tuples(st.just("evaluate"), symbol, st.integers(0, 10)),
    st.tuples(st.just("toxicity"), symbol),
)


class Reference:
    def __init__(self, p: GuardParams, alpha: float) -> None:
        self.guards = [SymbolGuard(s, p) for s in range(N)]
        self.fv = FairValueModel(N, ticks=[1] * N, flow_alpha=alpha)
        self.tape = TradeTape(N)


def apply(side, op, now: int):
    """One operation on either side (Reference or SignalKernel); returns its result."""
    kind = op[0]
    if kind == "print":
        _, s, buys, qty, match = op
        side.tape.on_prints([(s, buys, qty, match)], side.guards, getattr(side, "fv", None))
        return None
    if kind == "break":
        return side.tape.break_trade(op[1], side.guards, getattr(side, "fv", None))
    if kind == "fill":
        side.guards[op[1]].on_own_fill(op[2], now)
        return None
    if kind == "markout":
        side.guards[op[1]].on_markout(op[2], op[3])
        return None
    if kind == "evaluate":
        return side.guards[op[1]].evaluate(now)
    g = side.guards[op[1]]
    return g.toxicity(), g.aggression(), g.bid_until, g.ask_until


def flows(side) -> tuple:
    arrays = getattr(side, "fv", side)        # the reference's FairValueModel or the kernel's C arrays
    return list(arrays.flow_signed[0:N]), list(arrays.flow_abs[0:N])


@settings(max_examples=150, deadline=None)
@given(guard_params, st.sampled_from([0.1, 0.37, 1.0]), st.lists(guard_op, max_size=120))
def test_tape_and_guards_equal_the_reference(p, alpha, ops):
    ref, ker = Reference(p, alpha), SignalKernel(N, p, alpha)
    now = 0
    for op in ops:
        if op[0] in ("fill", "evaluate"):
            now += op[-1]
        assert apply(ker, op, now) == apply(ref, op, now), op
        assert flows(ker) == flows(ref)
    assert [g.state_items() for g in ker.guards] == [g.state_items() for g in ref.guards]
    assert ker.tape.state_items() == ref.tape.state_items()
    assert ker.tape.state_digest() == ref.tape.state_digest()
    copy = pickle.loads(pickle.dumps(ker))
    assert copy.tape.state_items() == ker.tape.state_items() and flows(copy) == flows(ker)
    assert copy.tape.state_digest() == ker.tape.state_digest()
    assert [g.state_items() for g in copy.guards] == [g.state_items() for g in ker.guards]


def test_the_tape_evicts_the_oldest_beyond_tape_max_as_the_reference():
    p = GuardParams()
    ref, ker = Reference(p, 0.1), SignalKernel(N, p, 0.1)
    prints = [(i % N, i % 3 == 0, 100 + i % 7, 10 + i) for i in range(TAPE_MAX + 500)]
    prints.insert(300, (1, True, 5, 10 + TAPE_MAX + 100))     # a match seen again keeps its place
    for side in (ref, ker):
        side.tape.on_prints(prints, side.guards, getattr(side, "fv", None))
    assert ker.tape.state_items() == ref.tape.state_items()
    for match in (10, 10 + 499, 10 + 500, 10 + TAPE_MAX + 100, 10 + TAPE_MAX + 499):
        assert ker.tape.break_trade(match) == ref.tape.break_trade(match, ref.guards, ref.fv)
    assert ker.tape.state_items() == ref.tape.state_items() and flows(ker) == flows(ref)
    assert ker.tape.state_digest() == ref.tape.state_digest()


def test_the_tape_digest_changes_with_any_column_of_the_log():
    """The state hash reads the tape through its digest: a print that differs in one field only
    (or a tape one print shorter) must give another digest, on the kernel and the reference."""
    p = GuardParams()
    base = [(i % N, i % 2 == 0, 100 + i, 50 + i) for i in range(40)]
    variants = [base, base[:-1],
                base[:-1] + [(base[-1][0], not base[-1][1], *base[-1][2:])],   # aggressor side
                base[:-1] + [(*base[-1][:2], base[-1][2] + 1, base[-1][3])],   # quantity
                base[:-1] + [(*base[-1][:3], base[-1][3] + 10_000)]]           # match number
    digests = []
    for prints in variants:
        ref, ker = Reference(p, 0.1), SignalKernel(N, p, 0.1)
        for side in (ref, ker):
            side.tape.on_prints(prints, side.guards, getattr(side, "fv", None))
        assert ker.tape.state_digest() == ref.tape.state_digest()
        digests.append(ker.tape.state_digest())
    assert len(set(digests)) == len(variants)


@pytest.mark.parametrize("bad", [dict(markout_window=0), dict(aggression_min_volume=0)])
def test_guard_parameters_that_would_divide_by_zero_are_refused(bad):
    with pytest.raises(GuardError):
        GuardParams(**bad)


# --- fair value, estimator, lead beta -----------------------------------------------------

FV = dict(n_spread=3, imbalance_levels=3, level_decay=0.5, lead_alpha=0.2, lead_prior=0.3,
          lead_min_samples=3)
# sizes in 100-share lots as often as not: exact imbalances k/n_imb and exact balances
size = st.one_of(st.integers(1, 900), st.integers(0, 9).map(lambda lots: 100 * lots))
top = st.tuples(st.integers(0, 2), st.integers(-2, 30), size, st.integers(0, 6),
                size, st.floats(-1, 1, allow_nan=False))
TABLES = {3: [[0.5, -0.25, 1.0]] * 3, 4: [[0.5, -0.25, 0.25, 1.0]] * 3}


def fair_values(w_imbalance, w_flow, base, calibrate_every, n_imb=4):
    ticks, leaders = [100, 50, 1], {1: 0, 2: 1}
    kw = dict(FV, n_imb=n_imb, ticks=ticks, w_imbalance=w_imbalance, w_flow=w_flow, base=base,
              calibrate_every=calibrate_every, leaders=leaders, tables={0: TABLES[n_imb]})
    ref = FairValueModel(N, flow_alpha=0.2, **kw)
    params = FairValueParams(n_imb=n_imb, n_spread=3, base=base, w_imbalance=w_imbalance, w_flow=w_flow,
                             flow_alpha=0.2, lead_alpha=0.2, lead_prior=0.3, lead_min_samples=3,
                             calibrate_every=calibrate_every)
    kernel = SignalKernel(N, GuardParams(), 0.2, fv_setup(N, params, ticks, leaders, [0.0] * N, {},
                                                          0.05, HedgeParams()))
    return ref, KernelFairValue(kernel, N, **kw)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([0.0, 0.2]), st.sampled_from([0.0, 0.5]), st.sampled_from(["micro", "mid", "weighted"]),
       st.sampled_from([0, 7]), st.lists(top, min_size=1, max_size=400), st.randoms(use_true_random=False),
       st.sampled_from([3, 4]))
def test_fair_value_and_calibration_equal_the_reference(w_imb, w_flow, base, every, tops, rnd, n_imb):
    ref, ker = fair_values(w_imb, w_flow, base, every, n_imb)
    centre = [100_000, 50_000, 1_000]
    for s, off, bq, spread, aq, depth in tops:
        tick = ref.ticks[s]
        bid = centre[s] + off * tick
        ask = bid + spread * tick
        assert ker.update(s, bid, bq, ask, aq, depth) == ref.update(s, bid, bq, ask, aq, depth)
        if rnd.random() < 0.3:
            buys, qty = rnd.random() < 0.5, rnd.randrange(1, 500)
            ref.on_trade(s, buys, qty)
            ker.sig.tape.on_prints([(s, buys, qty, rnd.randrange(1, 10**9))])
    assert ker.state_items() == ref.state_items()
    if every:
        for e_ref, e_ker in zip(ref.estimators, ker.estimators):
            assert e_ker.observations == e_ref.observations
            assert (e_ker._prev_state, e_ker._prev_mid2) == (e_ref._prev_state, e_ref._prev_mid2)
            assert e_ker.q.tolist() == e_ref.q and e_ker.r1.tolist() == e_ref.r1 and e_ker.r2.tolist() == e_ref.r2


@pytest.mark.parametrize("n_imb", [3, 4])
@pytest.mark.parametrize("lots", [False, True], ids=["any-size", "lots"])
def test_a_long_stream_calibrates_the_same_table(n_imb, lots):
    import random
    rng = random.Random(3)
    ref, ker = fair_values(0.2, 0.5, "micro", 50, n_imb)
    mid = 100_000

    def size():
        return 100 * rng.randrange(1, 9) if lots else rng.randrange(100, 900)
    for _ in range(3000):
        mid += 100 * rng.choice((-1, 0, 0, 1))
        spread = rng.choice((1, 1, 2, 3))
        args = (0, mid, size(), mid + spread * 100, size(), rng.uniform(-1, 1))
        assert ker.update(*args) == ref.update(*args)
    assert ref.estimators[0].observations > 1000
    assert any(x != 0.0 for row in ref.tables[0].g for x in row)
    assert ker.tables[0].g == ref.tables[0].g and ker.state_items() == ref.state_items()


# --- volatility and the hedge regression --------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2_000_000_000)), max_size=80),
       st.sampled_from([0.0693, 0.1386, 1e-9, 50.0]), st.sampled_from([0.0, 3.5]))
def test_volatility_equals_the_reference(moves, rate, prior):
    params = FairValueParams(calibrate_every=0)
    kernel = SignalKernel(1, GuardParams(), 0.1, fv_setup(1, params, [1], {}, [prior], {}, rate, HedgeParams()))
    ref, ker = VolEstimator(rate, prior), KernelVol(kernel, 0, rate)
    now = 0
    for half_ticks, dt in moves:
        now += dt
        mid = 1000 + half_ticks * 0.5
        assert ker.update(mid, now) == ref.update(mid, now)
        assert ker.variance_per_s == ref.variance_per_s and ker.sigma == ref.sigma
    assert (ker.var_s, ker.last_mid, ker.last_ns, ker.n) == (ref.var_s, ref.last_mid, ref.last_ns, ref.n)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(-5, 5)), max_size=80))
def test_hedge_regression_equals_the_reference(steps):
    p = HedgeParams(beta_alpha=0.2, beta_prior=0.7, min_samples=3)
    params = FairValueParams(calibrate_every=0)
    kernel = SignalKernel(2, GuardParams(), 0.1, fv_setup(2, params, [1, 1], {}, [0.0, 0.0], {1: 0}, 0.05, p))
    ref, ker = Hedger({1: 0}, p), KernelHedger(kernel, {1: 0}, p)
    s_mid, h_mid = 500.0, 1000.0
    for ds, dh in steps:
        s_mid, h_mid = s_mid + ds * 0.5, h_mid + dh * 0.5
        ref.observe(1, s_mid, h_mid)
        ker.observe(1, s_mid, h_mid)
        assert ker.ratio(1, s_mid, h_mid) == ref.ratio(1, s_mid, h_mid)
    assert ker.state_items() == ref.state_items()
    copy = pickle.loads(pickle.dumps(ker))
    assert copy.state_items() == ker.state_items()


def test_a_blob_of_another_shape_is_refused():
    from mm_core.sigkernel import _restore
    kernel = SignalKernel(2, GuardParams(), 0.1)
    kernel.tape.on_prints([(1, True, 100, 5)])
    blob = kernel.save()
    assert _restore(2, GuardParams(), 0.1, blob).tape.state_items() == kernel.tape.state_items()
    for bad in (blob[:-8], blob + b"\0" * 8, SignalKernel(3, GuardParams(), 0.1).save()):
        with pytest.raises(ValueError, match="restoring a snapshot"):
            _restore(2, GuardParams(), 0.1, bad)


def test_a_symbol_outside_the_kernel_is_an_index_error_and_changes_nothing():
    ref, ker = fair_values(0.2, 0.5, "micro", 7)
    before = ker.state_items()
    with pytest.raises(IndexError):
        ref.update(N, 100, 1, 200, 1)
    with pytest.raises(IndexError):
        ker.update(N, 100, 1, 200, 1)
    with pytest.raises(IndexError):
        ker.sig.tape.on_prints([(N, True, 100, 1)])
    assert ker.state_items() == before and ker.sig.tape.state_items() == ([0] * N, [])
