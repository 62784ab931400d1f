"""The C quote pricer (mm_core/fastquote.h) equals the Python bit for bit: every step against its
reference function, the whole of fq_price against quotepricer.price_reference (what the engine on
the reference classes prices with, Engine._price_quote_py), and whole seeded sessions through an
engine pricing in C against one pricing in Python."""
from __future__ import annotations

import dataclasses
import math
import pickle
import struct
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mm_core._fastmd_cffi import ffi, lib
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.inventory import (
    InventoryError, SkewParams, as_depths, glft_depths, quote_sizes, within_order_caps,
    within_position_cap,
)
from mm_core.quotepricer import (
    QuotePricer, depth_cap, engine_price_quote, pack_config, price_reference, quote_inputs,
)
from mm_core.risk import TradingState
from mm_core.sigreact import ReactMirror
from mm_core.spread import quote_prices, widen
from mm_core.ticks import TickError, TickTable
from tests.mm_core.wire import simulate

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The Python exception each fq_rc stands for (FQ_RANGE: the wrapper's reference computes it).
RAISES = {lib.FQ_TICK: TickError, lib.FQ_VALUE: ValueError, lib.FQ_OVERFLOW: OverflowError,
          lib.FQ_ZERODIV: ZeroDivisionError, lib.FQ_INVENTORY: InventoryError}


def bits(x: float) -> bytes:
    """A float's bytes: equal bits, so -0.0 != 0.0 and NaN == NaN."""
    return struct.pack("<d", float(x))


def python_outcome(fn, *args):
    """('ok', result) or ('raise', exception class) of a Python call."""
    try:
        return "ok", fn(*args)
    except (TickError, InventoryError, ValueError, OverflowError, ZeroDivisionError) as exc:
        return "raise", type(exc)


def assert_rc_matches(rc: int, outcome) -> bool:
    """The C failed exactly where the Python raised, with the same exception; True when both ran."""
    kind, value = outcome
    if rc == lib.FQ_RANGE:
        return False
    if kind == "raise":
        assert rc != lib.FQ_OK, f"Python raised {value.__name__}, C returned a result"
        assert issubclass(value, RAISES[rc]) or issubclass(RAISES[rc], value)
        return False
    assert rc == lib.FQ_OK, f"C returned {rc}, Python gave {value!r}"
    return True


# ------------------------------------------------------------------------ strategies

finite = st.floats(allow_nan=False, allow_infinity=False)
prices = st.one_of(
    st.floats(0.0, 30_000.0), st.floats(9_900.0, 10_100.0),          # across $1.00
    st.floats(1e5, 5e6), st.integers(1, 30_000).map(float),          # on-tick values
    st.floats(-10.0, 2.0), st.sampled_from([math.inf, -math.inf, math.nan, 1e300, 9_999.5, 10_000.0]))
int_prices = st.one_of(st.integers(-5, 30_000), st.integers(9_900, 10_100), st.integers(1, 10**7))
half_penny = st.booleans()


def unchecked(**fields) -> EngineConfig:
    """An EngineConfig with these fields, past its checks: the C and the Python must agree on
    values the config refuses too (a risk size multiplier brings a quote size below one lot)."""
    cfg = object.__new__(EngineConfig)
    defaults = EngineConfig()
    for f in dataclasses.fields(EngineConfig):
        object.__setattr__(cfg, f.name, fields.pop(f.name, getattr(defaults, f.name)))
    assert not fields, fields
    return cfg


@st.composite
def configs(draw) -> EngineConfig:
    skew = SkewParams(model=draw(st.sampled_from(["as", "glft"])),
                      gamma=draw(st.floats(1e-3, 10.0)), k=draw(st.floats(1e-2, 10.0)),
                      arrival_a=draw(st.floats(0.05, 20.0)), horizon_s=draw(st.floats(0.05, 10.0)),
                      lot=draw(st.sampled_from([1, 7, 50, 100, 100, 100])))
    return unchecked(
        quote_size=draw(st.one_of(st.integers(-300, 5_000), st.sampled_from([0, 100, 200]))),
        position_limit=draw(st.integers(1, 100_000)),
        size_skew=draw(st.floats(0.0, 1.5)), withdraw_at=draw(st.floats(0.05, 1.2)),
        min_depth_ticks=draw(st.one_of(st.floats(0.0, 3.0), st.sampled_from([0.5, 1.0, 0]))),
        max_depth_bps=draw(st.integers(1, 2_000)), max_vol_ratio=draw(st.floats(1.0, 20.0)),
        adverse_rate_weight=draw(st.floats(0.0, 2.0)), toxicity_weight=draw(st.floats(0.0, 2.0)),
        skew=skew)


@st.composite
def situations(draw) -> dict:
    """Everything _price_quote reads besides the configuration."""
    fair = draw(st.one_of(st.floats(100.0, 20_000.0), st.floats(9_950.0, 10_050.0),
                          st.floats(1e5, 3e6), st.sampled_from([9_999.99, 10_000.0, 10_000.01])))
    spread = draw(st.integers(0, 400))
    best_bid = draw(st.one_of(st.just(0), st.integers(max(1, int(fair) - 300), int(fair) + 50)))
    best_ask = draw(st.one_of(st.just(0), st.just(best_bid + spread),
                              st.integers(max(1, int(fair) - 50), int(fair) + 300)))
    return dict(
        fair=fair, half_penny=draw(half_penny),
        variance_per_s=draw(st.one_of(st.floats(0.0, 1e6), st.just(0.0))),
        prior_var_s=draw(st.one_of(st.floats(0.0, 1e4), st.just(0.0))),
        position=draw(st.one_of(st.integers(-5_000, 5_000), st.integers(-10**7, 10**7),
                                st.integers(-2**52, 2**52), st.sampled_from([0, 2**60, -2**60]))),
        held=draw(st.one_of(st.just(0), st.integers(-3_000, 3_000))),
        toxicity=draw(st.floats(0.0, 1.0)), recent_markout=draw(st.floats(-50.0, 50.0)),
        adverse_rate=draw(st.floats(0.0, 1.0)),
        spread_multiplier=draw(st.sampled_from([1.0, 2.0, 1.5])),
        size_multiplier=draw(st.sampled_from([1.0, 0.5, 0.0, 0.33])),
        collar_fair_bps=draw(st.integers(0, 2_000)),
        max_position=draw(st.one_of(st.integers(1, 100_000), st.integers(1, 2**60),
                                    st.sampled_from([1, 99, 100, 2**53 - 1, 2**53, 2**62]))),
        # RiskGateway.order_caps: shares (0 in safe mode below one share) and value over the
        # multiplier, price4 x shares: a few lots at the quote's price, any size, big integers
        max_order_qty=draw(st.one_of(st.integers(0, 1_000), st.integers(1, 2**60),
                                     st.sampled_from([0, 1, 99, 100, 250, 2**53 - 1, 2**53, 2**62]))),
        max_order_value=draw(st.one_of(st.integers(0, 6_000).map(lambda shares: shares * int(fair)),
                                       st.integers(0, 10**10), st.integers(1, 2**62),
                                       st.sampled_from([0, 1, 2**53 - 1, 2**53, 2**63 - 1]))),
        reducing=draw(st.booleans()),
        bid_blocked=draw(st.booleans()), ask_blocked=draw(st.booleans()),
        best_bid=best_bid, best_ask=best_ask)


ORDER = ("fair", "half_penny", "variance_per_s", "prior_var_s", "position", "held", "toxicity",
         "recent_markout", "adverse_rate", "spread_multiplier", "size_multiplier",
         "collar_fair_bps", "max_position", "max_order_qty", "max_order_value", "reducing",
         "bid_blocked", "ask_blocked", "best_bid", "best_ask")


def fake_engine(cfg: EngineConfig, s: dict):
    """An object with exactly what Engine._price_quote reads, holding the situation `s`."""
    symbol_limits = SimpleNamespace(max_position=s["max_position"])
    eng = SimpleNamespace(
        cfg=cfg, now=5,
        risk=SimpleNamespace(spread_multiplier=s["spread_multiplier"],
                             size_multiplier=s["size_multiplier"],
                             order_caps=lambda sym: (s["max_order_qty"], s["max_order_value"]),
                             limits=SimpleNamespace(collar_fair_bps=s["collar_fair_bps"],
                                                    for_symbol=lambda sym: symbol_limits)),
        ticks=[TickTable(s["half_penny"])],
        vol=[SimpleNamespace(variance_per_s=s["variance_per_s"], prior_var_s=s["prior_var_s"])],
        inventory=SimpleNamespace(position=[s["position"]]),
        metrics=SimpleNamespace(recent_markout=[s["recent_markout"]],
                                adverse_rate=lambda sym: s["adverse_rate"]),
        _hedge_held=lambda sym: s["held"])
    guard = SimpleNamespace(toxicity=lambda: s["toxicity"],
                            side_blocked=lambda bid, now: s["bid_blocked"] if bid else s["ask_blocked"])
    state = TradingState.REDUCING if s["reducing"] else TradingState.ACTIVE
    return eng, guard, state


# ------------------------------------------------------------------------ the steps

@SETTINGS
@given(half_penny, int_prices)
def test_tick_at_above_below(hp, p):
    table = TickTable(hp)
    assert lib.fq_tick_at(hp, p) == table.tick_at(p)
    assert lib.fq_tick_above(hp, p) == table.tick_above(p)
    out = ffi.new("int64_t *")
    if assert_rc_matches(lib.fq_tick_below(hp, p, out), python_outcome(table.tick_below, p)):
        assert out[0] == table.tick_below(p)


@SETTINGS
@given(half_penny, prices)
def test_round_down_and_up(hp, price):
    table = TickTable(hp)
    out = ffi.new("int64_t *")
    if assert_rc_matches(lib.fq_round_down(hp, price, out), python_outcome(table.round_down, price)):
        assert out[0] == table.round_down(price)
    if assert_rc_matches(lib.fq_round_up(hp, price, out), python_outcome(table.round_up, price)):
        assert out[0] == table.round_up(price)


def test_round_at_the_dollar_boundary():
    """Hand cases: $0.9999 stays on the sub-dollar tick, $1.0001 rounds to the penny (or the
    half-penny tier), both ways."""
    out = ffi.new("int64_t *")
    for hp, price, down, up in ((False, 9_999.5, 9_999, 10_000), (False, 10_000.5, 10_000, 10_100),
                                (True, 10_030.0, 10_000, 10_050), (True, 10_050.0, 10_050, 10_050)):
        assert lib.fq_round_down(hp, price, out) == lib.FQ_OK and out[0] == down
        assert lib.fq_round_up(hp, price, out) == lib.FQ_OK and out[0] == up


@SETTINGS
@given(configs(), st.floats(-1e4, 1e4), st.one_of(st.floats(0.0, 1e7), st.just(0.0)))
def test_model_depths(cfg, q, sigma2):
    c = pack_config(cfg)
    bd, ad = ffi.new("double *"), ffi.new("double *")
    lib.fq_as_depths(q, sigma2, c, bd, ad)
    want = as_depths(q, sigma2, cfg.skew)
    assert (bits(bd[0]), bits(ad[0])) == tuple(map(bits, want))
    if assert_rc_matches(lib.fq_glft_depths(q, sigma2, c, bd, ad),
                         python_outcome(glft_depths, q, sigma2, cfg.skew)):
        want = glft_depths(q, sigma2, cfg.skew)
        assert (bits(bd[0]), bits(ad[0])) == tuple(map(bits, want))


def test_glft_domain_and_overflow_match_python():
    """Negative variance: math.sqrt's ValueError, as in Python."""
    bd, ad = ffi.new("double *"), ffi.new("double *")
    cfg = EngineConfig(skew=SkewParams(gamma=1.0, k=1.0))
    assert lib.fq_glft_depths(0.0, -1.0, pack_config(cfg), bd, ad) == lib.FQ_VALUE
    with pytest.raises(ValueError):
        glft_depths(0.0, -1.0, cfg.skew)
    # γ/k overflowing to inf: float ** on an infinite base is left to the reference
    cfg = EngineConfig(skew=SkewParams(gamma=1e300, k=1e-10))
    assert python_outcome(glft_depths, 0.0, 1.0, cfg.skew)[0] == "ok"
    assert lib.fq_glft_depths(0.0, 1.0, pack_config(cfg), bd, ad) == lib.FQ_RANGE


@SETTINGS
@given(finite, finite, st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 3.0),
       st.floats(0.0, 3.0), st.floats(0.5, 1000.0))
def test_widen(depth, move, rate, tox, rw, tw, mult):
    got = lib.fq_widen(depth, move, rate, tox, rw, tw, mult)
    want = widen(depth, adverse_move=move, adverse_rate=rate, toxicity=tox, rate_weight=rw,
                 toxicity_weight=tw, multiplier=mult)
    assert bits(got) == bits(want)


@SETTINGS
@given(st.one_of(st.floats(1.0, 30_000.0), st.floats(9_900.0, 10_100.0)), st.floats(-500.0, 500.0),
       st.floats(-500.0, 500.0), half_penny, st.one_of(st.just(0), int_prices),
       st.one_of(st.just(0), int_prices))
def test_quote_prices(fair, bdepth, adepth, hp, best_bid, best_ask):
    assume(best_bid >= 0 and best_ask >= 0)
    bid, ask = ffi.new("int64_t *"), ffi.new("int64_t *")
    rc = lib.fq_quote_prices(fair, bdepth, adepth, hp, best_bid, best_ask, bid, ask)
    outcome = python_outcome(quote_prices, fair, bdepth, adepth, TickTable(hp), best_bid, best_ask)
    if assert_rc_matches(rc, outcome):
        assert (bid[0], ask[0]) == outcome[1]


@SETTINGS
@given(st.one_of(finite, st.floats(-1e6, 1e6), st.sampled_from([math.inf, -math.inf, math.nan, -0.0])),
       st.one_of(st.integers(1, 1000).map(float), st.floats(-100.0, 100.0).filter(bool)))
def test_float_floor_division_is_cpythons(vx, wx):
    assert bits(lib.fq_floor_div(vx, wx)) == bits(vx // wx)


@SETTINGS
@given(st.one_of(st.integers(-5_000, 5_000), st.integers(-10**9, 10**9)), st.integers(-10, 100_000),
       st.integers(-200, 10_000), st.sampled_from([1, 7, 50, 100, 0, -1]), st.floats(0.0, 3.0),
       st.floats(0.01, 1.5))
def test_quote_sizes(position, limit, base, lot, size_skew, withdraw_at):
    bid, ask = ffi.new("int64_t *"), ffi.new("int64_t *")
    rc = lib.fq_quote_sizes(position, limit, base, lot, size_skew, withdraw_at, bid, ask)
    outcome = python_outcome(quote_sizes, position, limit, base, lot, size_skew, withdraw_at)
    if assert_rc_matches(rc, outcome):
        assert (bid[0], ask[0]) == outcome[1]


@SETTINGS
@given(st.one_of(st.integers(-5_000, 5_000), st.integers(-10**9, 10**9), st.integers(-2**60, 2**60)),
       st.one_of(st.integers(-10, 100_000), st.integers(-2**60, 2**60)),
       st.sampled_from([1, 7, 50, 100, 0, -1]), st.integers(0, 10_000), st.integers(0, 10_000))
def test_cap_sizes(position, cap, lot, bid, ask):
    b, a = ffi.new("int64_t *", bid), ffi.new("int64_t *", ask)
    rc = lib.fq_cap_sizes(position, cap, lot, b, a)
    outcome = python_outcome(within_position_cap, position, cap, lot, bid, ask)
    if assert_rc_matches(rc, outcome):
        assert (b[0], a[0]) == outcome[1]


@SETTINGS
@given(st.integers(0, 10_000), st.one_of(int_prices, st.integers(-2**60, 2**60)),
       st.one_of(st.integers(-10, 1_000), st.integers(-2**60, 2**60)),
       st.one_of(st.integers(-10, 10**10), st.integers(-2**62, 2**62)),
       st.sampled_from([1, 7, 50, 100, 0, -1]))
def test_order_caps(qty, px, max_qty, max_value, lot):
    q = ffi.new("int64_t *", qty)
    rc = lib.fq_order_caps(px, max_qty, max_value, lot, q)
    outcome = python_outcome(within_order_caps, qty, px, max_qty, max_value, lot)
    if assert_rc_matches(rc, outcome):
        assert q[0] == outcome[1]


# ------------------------------------------------------------------------ the whole function

@SETTINGS
@given(configs(), situations())
def test_price_equals_engine_price_quote(cfg, s):
    """fq_price against the Python reference, with the intermediate floats; the engine's reads
    feed both the same values; the wrapper gives the same answer or the same error."""
    eng, guard, state = fake_engine(cfg, s)
    args = [s[name] for name in ORDER]
    assert quote_inputs(eng, 0, s["fair"], state, guard, s["best_bid"], s["best_ask"]) == tuple(args)
    engine_outcome = python_outcome(Engine._price_quote_py, eng, 0, s["fair"], state, guard,
                                    s["best_bid"], s["best_ask"])
    assert python_outcome(price_reference, cfg, *args) == engine_outcome
    pricer = QuotePricer(cfg)
    assert python_outcome(pricer.price, *args) == engine_outcome
    out = ffi.new("fq_quote *")
    rc = lib.fq_price(pack_config(cfg), *args, out)
    if not assert_rc_matches(rc, engine_outcome):
        return
    assert (out.bid_px, out.bid_qty, out.ask_px, out.ask_qty) == engine_outcome[1]
    tick = TickTable(s["half_penny"]).tick_at(int(s["fair"]))
    sigma2 = s["variance_per_s"]
    if s["prior_var_s"] > 0:
        sigma2 = min(sigma2, s["prior_var_s"] * cfg.max_vol_ratio * cfg.max_vol_ratio)
    sigma2 /= tick * tick
    q = (s["position"] - s["held"]) / cfg.skew.lot
    depths = (glft_depths if cfg.skew.model == "glft" else as_depths)(q, sigma2, cfg.skew)
    assert out.tick == tick
    assert out.base == int(cfg.quote_size * s["size_multiplier"]) // cfg.skew.lot * cfg.skew.lot
    assert bits(out.sigma2) == bits(sigma2) and bits(out.q) == bits(q)
    assert (bits(out.model_bid), bits(out.model_ask)) == tuple(map(bits, depths))
    assert bits(out.cap) == bits(depth_cap(cfg, s["fair"], tick, s["collar_fair_bps"]))


def test_errors_and_big_integers_come_out_as_in_python():
    """The wrapper answers what the C cannot mirror with the reference: a non-finite fair value
    raises as int(fair) does, and a position beyond int64_t is priced with Python integers."""
    cfg = EngineConfig()
    pricer = QuotePricer(cfg)
    base = dict(fair=1_000_050.0, half_penny=False, variance_per_s=400.0, prior_var_s=300.0,
                position=300, held=0, toxicity=0.2, recent_markout=-3.0, adverse_rate=0.1,
                spread_multiplier=1.0, size_multiplier=1.0, collar_fair_bps=100, max_position=20_000,
                max_order_qty=5_000, max_order_value=5_000_000_000,
                reducing=False, bid_blocked=False, ask_blocked=False, best_bid=1_000_000,
                best_ask=1_000_100)
    assert pricer.price(*[base[n] for n in ORDER]) == (999_900, 100, 1_000_200, 200)
    for fair, exc in ((math.inf, OverflowError), (math.nan, ValueError)):
        with pytest.raises(exc):
            pricer.price(*[fair if n == "fair" else base[n] for n in ORDER])
    huge = [2**70 if n == "position" else base[n] for n in ORDER]
    assert pricer.price(*huge) == price_reference(cfg, *huge)
    for name in ("max_position", "max_order_qty", "max_order_value"):
        uncapped = [2**70 if n == name else base[n] for n in ORDER]
        assert pricer.price(*uncapped) == price_reference(cfg, *uncapped) == (999_900, 100, 1_000_200, 200)
    assert pickle.loads(pickle.dumps(pricer)).price(*[base[n] for n in ORDER]) == pricer.price(
        *[base[n] for n in ORDER])


# ------------------------------------------------------------------------ whole sessions

def _c_price_quote(calls: list):
    def patched(self, symbol_id, fair, state, guard, best_bid, best_ask):
        if "quote_pricer" not in self.__dict__:
            self.quote_pricer = QuotePricer(self.cfg)
        calls.append(symbol_id)
        return engine_price_quote(self, symbol_id, fair, state, guard, best_bid, best_ask)
    return patched


@pytest.mark.parametrize("seed,model,compiled", [(1, "glft", True), (2, "glft", True),
                                                 (3, "as", True), (4, "glft", True),
                                                 (5, "glft", False)])
def test_sessions_in_lockstep(monkeypatch, seed, model, compiled):
    """A seeded session through the C pricer: the same actions and the same final state hash,
    on the signal kernel and on the reference classes (Engine(compiled=False))."""
    import tests.mm_core.wire as wire
    monkeypatch.setattr(wire, "Engine", lambda *a, **k: Engine(*a, compiled=compiled, **k))
    config = EngineConfig(skew=SkewParams(model=model))
    # every memo miss priced in Python (not in the kernel's reaction) for the first two runs
    monkeypatch.setattr(ReactMirror, "price_misses", False)
    monkeypatch.setattr(Engine, "_price_quote", Engine._price_quote_py)     # the Python reference
    _, want_actions, want_engine = simulate(seed, 1_500, config)
    calls: list = []
    monkeypatch.setattr(Engine, "_price_quote", _c_price_quote(calls))
    _, actions, engine = simulate(seed, 1_500, config)
    assert (engine.sig is not None) == compiled
    assert len(calls) > 100                      # the C priced a real share of the requotes
    assert [repr(a) for a in actions] == [repr(a) for a in want_actions]
    assert engine.state_hash() == want_engine.state_hash()
    # and with the kernel's reaction pricing memo misses itself (fsig_react_from, stage 3)
    monkeypatch.setattr(ReactMirror, "price_misses", True)
    in_python: list = []
    monkeypatch.setattr(Engine, "_price_quote", _c_price_quote(in_python))
    _, actions, engine = simulate(seed, 1_500, config)
    assert [repr(a) for a in actions] == [repr(a) for a in want_actions]
    assert engine.state_hash() == want_engine.state_hash()
    assert engine.quote_memo == want_engine.quote_memo
    if compiled:
        assert len(in_python) < len(calls)       # the kernel priced some misses without Python


def test_long_session_in_lockstep(monkeypatch, tmp_path):
    """The recovery benchmark's session (journaled) decides the same through the C pricer."""
    from tests.recovery.journaling import write_long_session
    monkeypatch.setattr(ReactMirror, "price_misses", False)     # every miss priced in Python
    monkeypatch.setattr(Engine, "_price_quote", Engine._price_quote_py)     # the Python reference
    want = write_long_session(str(tmp_path / "py"), 7, 4_000)
    want.journal.close()
    calls: list = []
    monkeypatch.setattr(Engine, "_price_quote", _c_price_quote(calls))
    got = write_long_session(str(tmp_path / "c"), 7, 4_000)
    got.journal.close()
    assert len(calls) > 500
    assert got.engine.state_hash() == want.engine.state_hash()
    assert got.inputs == want.inputs
    monkeypatch.setattr(ReactMirror, "price_misses", True)      # misses priced in the kernel too
    staged = write_long_session(str(tmp_path / "k"), 7, 4_000)
    staged.journal.close()
    assert staged.engine.state_hash() == want.engine.state_hash()
    assert staged.engine.quote_memo == want.engine.quote_memo
    assert staged.inputs == want.inputs
