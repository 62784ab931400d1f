"""The compiled revaluation (mm_core/fastgreeks.h through risk.greekbatch) against its Python
reference (risk.greeks): equal bit for bit over the input space, edge cases included (expiry at
and near now, expiries past 2^53 ns, deep in and out of the money, tiny and huge vol), the
reference deciding whenever the C meets an exception, and whole gateways whose decisions and state
are the same whichever of the two revalues."""
from __future__ import annotations

import io
import math
import pickle
import random
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mm_core._fastmd_cffi import ffi, lib
from mm_core.risk import CheckId, RiskError, bs_greeks, bs_price
from mm_core.risk.greekbatch import GroupPricer
from mm_core.risk.greeks import YEAR_NS, OptionParams, scenario_grid, underlying_risk, unit_risk
from mm_core.types import Side
from recovery.snapshot import _Pickler
from tests.risk.conftest import FAIR, MS, T0, make_gateway, order
from tests.risk.test_on_markets import _state

DAY_NS = 86_400 * 1_000_000_000
EXACT = 1 << 53


def _bits(x: float) -> bytes:
    """A float's bytes: equal bits, signed zeros and NaN payloads included."""
    return struct.pack("<d", x)


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return _bits(a) == _bits(b)


def _c_greeks(is_call, spot, strike, years, vol, rate):
    out = ffi.new("double[4]")
    rc = lib.fg_bs_greeks(is_call, spot, strike, years, vol, rate, out)
    price = ffi.new("double *")
    assert lib.fg_bs_price(is_call, spot, strike, years, vol, rate, price) == rc
    if rc == lib.FG_OK:
        assert _same(price[0], out[0])
    return rc, tuple(out)


def _python_greeks(*args):
    try:
        return lib.FG_OK, bs_greeks(*args)
    except RiskError:
        return lib.FG_RISK, None
    except ValueError:
        return lib.FG_VALUE, None
    except OverflowError:
        return lib.FG_OVERFLOW, None
    except ZeroDivisionError:
        return lib.FG_ZERODIV, None


spots = st.one_of(st.floats(1e-3, 1e6), st.sampled_from([0.0, -1.0, 1e-300, 5e-324, 1e300, math.inf]))
years = st.one_of(st.floats(1e-12, 30.0), st.sampled_from([0.0, -0.0, -1.0, 1 / YEAR_NS, 3.2e-17]))
vols = st.one_of(st.floats(1e-6, 9.99), st.sampled_from([0.0, -0.1, 1e-6, 1e-9]))
rates = st.floats(-0.99, 0.99)


@settings(max_examples=1500, deadline=None)
@given(is_call=st.booleans(), spot=spots, strike=spots, years=years, vol=vols, rate=rates)
@example(True, 100.0, 100.0, 1.0, 0.2, 0.05)          # at the money
@example(False, 1e-3, 1e6, 30.0, 9.99, 0.99)          # deep in the money put, long expiry, huge vol and rate
@example(True, 1e6, 1e-3, 1e-12, 1e-6, -0.99)         # deep in the money, expiry a moment away
@example(True, 1e-300, 1e300, 1.0, 1.0, 0.0)          # spot / strike underflows: math.log refuses
@example(False, 100.0, 100.0, 0.0, 0.2, 0.0)          # expiring now: intrinsic, put's -0.0 price
@example(True, 5e-324, 1.0, 1e-12, 1e-6, 0.0)         # spot x sd underflows: gamma divides by 0
def test_bs_greeks_c_equals_python_bit_for_bit(is_call, spot, strike, years, vol, rate):
    c_rc, c_out = _c_greeks(is_call, spot, strike, years, vol, rate)
    py_rc, py_out = _python_greeks(is_call, spot, strike, years, vol, rate)
    assert c_rc == py_rc
    if py_rc == lib.FG_OK:
        assert _same(c_out, py_out), (c_out, py_out)
        assert _same(bs_price(is_call, spot, strike, years, vol, rate), py_out[0])


@settings(max_examples=2000, deadline=None)
@given(d=st.one_of(st.integers(-(1 << 63) + 1, (1 << 63) - 1), st.integers(-EXACT - 5, EXACT + 5),
                   st.integers(EXACT, 300 * YEAR_NS), st.integers(0, 10 * YEAR_NS)))
@example(d=EXACT)
@example(d=EXACT + 1)
@example(d=YEAR_NS)
@example(d=1)
@example(d=0)
def test_years_is_pythons_correctly_rounded_quotient(d):
    out = ffi.new("double *")
    now = -(1 << 62) if d > 0 else (1 << 62)       # expiry - now = d without int64 overflow
    expiry = now + d
    rc = lib.fg_years(expiry, now, out)
    if rc == lib.FG_RANGE:                         # the one double-rounding case: Python decides
        assert d > EXACT
        return
    assert rc == lib.FG_OK
    if d >= -EXACT:
        assert _same(out[0], d / YEAR_NS)
    else:                                          # only its sign is used (expired)
        assert out[0] < 0 and d / YEAR_NS < 0


def test_years_refuses_an_int64_overflow():
    out = ffi.new("double *")
    assert lib.fg_years((1 << 63) - 1, -(1 << 63), out) == lib.FG_RANGE


def _reference(options, spot, now, grid):
    """What _refresh_group's reference path computes: (risk, pnl_lo, pnl_hi) per member."""
    risks = [underlying_risk(spot, grid)] + [unit_risk(o, spot, now, grid) for o in options]
    return [(r, min(r.scenario_pnl), max(r.scenario_pnl)) for r in risks]


def _option(k, strike, expiry_ns, vol, rate, is_call, multiplier):
    return OptionParams(100 + k, 1, strike, expiry_ns, vol, rate, is_call, multiplier)


option_st = st.builds(
    lambda strike, expiry, vol, rate, is_call, mult: (strike, expiry, vol, rate, is_call, mult),
    st.one_of(st.integers(1, 10**9), st.sampled_from([1, EXACT, EXACT + 1])),
    st.one_of(st.integers(-YEAR_NS, 3 * YEAR_NS), st.integers(-3, 3), st.integers(EXACT - 3, EXACT + 3),
              st.integers(3 * YEAR_NS, 50 * YEAR_NS)),
    st.one_of(st.floats(1e-6, 9.99), st.sampled_from([1e-6, 0.05, 9.99])),
    st.floats(-0.99, 0.99), st.booleans(),
    st.one_of(st.integers(1, 10**6), st.sampled_from([1, 100, EXACT + 1, 1 << 70])))


@settings(max_examples=800, deadline=None)
@given(specs=st.lists(option_st, min_size=0, max_size=4),
       spot=st.one_of(st.floats(1e-3, 1e6), st.sampled_from([1e-300, 100.0])),
       sigmas=st.floats(0.0, 10.0), vol_ref=st.floats(0.01, 3.0), days=st.floats(0.0, 30.0),
       shift=st.floats(0.0, 0.5))
def test_group_revaluation_equals_the_reference(specs, spot, sigmas, vol_ref, days, shift):
    now = T0
    options = [_option(k, s, now + e, v, r, c, m) for k, (s, e, v, r, c, m) in enumerate(specs)]
    grid = scenario_grid(sigmas, vol_ref, days, shift)
    pricer = GroupPricer(options, grid)
    got = pricer.revalue(spot, now)
    try:
        want = _reference(options, spot, now, grid)
    except (RiskError, ValueError, OverflowError, ZeroDivisionError):
        assert got is None                          # the C never answers where Python raises
        return
    if got is None:                                 # only where the C cannot mirror the Python
        unmirrored = not grid or any(
            o.strike > EXACT or o.multiplier >= 1 << 63 or o.multiplier > EXACT or
            lib.fg_years(o.expiry_ns, now, ffi.new("double *")) == lib.FG_RANGE for o in options)
        assert unmirrored
        return
    assert len(got) == len(want)
    for (risk, lo, hi), (ref, ref_lo, ref_hi) in zip(got, want):
        assert _same((risk.delta, risk.gamma, risk.vega, lo, hi), (ref.delta, ref.gamma, ref.vega, ref_lo, ref_hi))
        assert _same(risk.scenario_pnl, ref.scenario_pnl)


def test_session_options_take_the_c_path_and_pickle_as_their_inputs():
    grid = scenario_grid(3.0, 0.55, 1.0, 0.05)
    options = [_option(k, 1_000_000, T0 + 30 * DAY_NS, 0.55, 0.0, k == 1, 1) for k in (1, 2)]
    pricer = GroupPricer(options, grid)
    got = pricer.revalue(101.25, T0 + 5)
    assert got is not None and _same([g[1:] for g in got], [w[1:] for w in _reference(options, 101.25, T0 + 5, grid)])
    again = pickle.loads(pickle.dumps(pricer))
    assert repr(again) == repr(pricer)
    assert _same([(r.delta, r.scenario_pnl) for r, _, _ in again.revalue(101.25, T0 + 5)],
                 [(r.delta, r.scenario_pnl) for r, _, _ in got])


def test_a_spot_shock_past_zero_raises_risk_error_as_before():
    """A grid whose down move exceeds 100 % (huge vol): the reference raises RiskError inside the
    gateway's revaluation, as it did before the C existed."""
    grid = scenario_grid(10.0, 9.0, 30.0, 0.05)
    assert grid[0][0] < -1.0
    pricer = GroupPricer([_option(1, 1_000_000, T0 + DAY_NS, 9.0, 0.0, True, 1)], grid)
    assert pricer.revalue(100.0, T0) is None
    with pytest.raises(RiskError):
        _reference(pricer.options, 100.0, T0, grid)


# ----------------------------------------------------------------- whole gateways, C vs reference

def _greek_gateway(greeks: dict, scenario_max_loss: int):
    gw = make_gateway(feeds=((1, FAIR, FAIR),), greeks=greeks,
                      scenario={"max_loss": scenario_max_loss, "spot_sigmas": 3.0})
    for k, (is_call, strike, days) in enumerate(((True, FAIR, 30), (False, FAIR, 30),
                                                 (True, 2 * FAIR, 400))):      # 400 days: > 2^53 ns
        gw.on_option_params(2 + k, 1, strike, T0 + days * DAY_NS, 0.3 + 0.1 * k, 0.01, is_call, 100, T0)
        gw.on_market(2 + k, 50_000 + 10_000 * k, 50_000 + 10_000 * k, False, T0)
    return gw


def _drive(gw, seed: int) -> list:
    """A seeded walk: underlying moves (revaluations), fills, orders near the Greek limits."""
    rng = random.Random(seed)
    now, decisions = T0, []
    fair = FAIR
    for step in range(400):
        now += rng.randrange(1, 400) * MS
        fair = max(FAIR // 2, fair + rng.randrange(-400, 401))
        gw.on_clock(True, now)
        gw.on_market(1, float(fair) + rng.random(), fair, False, now)
        for s in (2, 3, 4):
            px = 50_000 + 10_000 * (s - 2) + rng.randrange(-500, 500)
            gw.on_market(s, px, px, False, now)
        if rng.random() < 0.3:
            s = rng.choice((1, 2, 3, 4))
            side = rng.choice((Side.BUY, Side.SELL))
            px = fair if s == 1 else gw._symbols[s].fair
            gw.on_fill(s, side, rng.randrange(1, 40), px, now)
        s = rng.choice((1, 2, 3, 4))
        px = fair if s == 1 else gw._symbols[s].fair
        side = rng.choice((Side.BUY, Side.SELL))
        d = gw.check(order(symbol_id=s, side=side, price=px, qty=rng.randrange(1, 200), token=f"W{step}"),
                     now, "B" if side is Side.BUY else "T")
        decisions.append((d.allowed, d.check, d.value, d.limit))
        if d.allowed:
            gw.on_order_done(f"W{step}", now)
    return decisions


@pytest.mark.parametrize("seed", range(4))
def test_gateways_decide_the_same_with_the_c_or_the_reference(seed, monkeypatch):
    """Limits tight enough that the Greek and scenario checks decide often: the C-revalued gateway
    and one forced onto the Python reference deny the same orders with the same values and end in
    the same state (every slot, Greeks and scenario P&L included)."""
    limits = dict(greeks={"max_delta": 8_000.0, "max_gamma": 300.0, "max_vega": 6_000.0},
                  scenario_max_loss=40_000)          # currency
    fast = _greek_gateway(limits["greeks"], limits["scenario_max_loss"])
    fast_decisions = _drive(fast, seed)
    with monkeypatch.context() as m:
        m.setattr(GroupPricer, "revalue", lambda self, spot, now_ns: None)
        ref = _greek_gateway(limits["greeks"], limits["scenario_max_loss"])
        ref_decisions = _drive(ref, seed)
    assert fast_decisions == ref_decisions
    denied = {c for allowed, c, _, _ in fast_decisions if not allowed}
    assert {CheckId.DELTA_LIMIT, CheckId.GAMMA_LIMIT, CheckId.SCENARIO_LOSS} <= denied, denied
    fast_state, ref_state = _state(fast), _state(ref)
    assert fast_state == ref_state


def _roundtrip(gw):
    """A gateway through the engine snapshot's pickler (its limits hold a read-only mapping)."""
    buf = io.BytesIO()
    _Pickler(buf).dump(gw)
    return pickle.loads(buf.getvalue())


def test_a_group_pickled_before_the_pricer_existed_loads_and_revalues():
    """A snapshot written by the version before the compiled revaluation has groups without the
    pricer slot: they load, and the next revaluation builds it (same numbers as a fresh one)."""
    gw = _greek_gateway({"max_delta": 1e9, "max_gamma": 1e9, "max_vega": 1e9}, 10**9)
    group = gw._groups[1]
    del group.pricer                      # as an older version's pickle leaves the slot
    old = _roundtrip(gw)
    assert old._groups[1].pricer is None
    fresh = _roundtrip(_greek_gateway({"max_delta": 1e9, "max_gamma": 1e9, "max_vega": 1e9}, 10**9))
    assert fresh._groups[1].pricer is not None
    for g in (old, fresh):
        g.on_market(1, float(FAIR + 900), FAIR, False, T0 + MS)       # a 9 bp move: revalued
    assert old._groups[1].pricer is not None
    assert _state(old) == _state(fresh)
