"""Stage 2 of the signal kernel against the engine's Python code, on generated inputs: the quote
memo key (fsig_quote_key vs Engine._quote_key: the same quantisation and int() truncations of fair
value and toxicity) and the requote decision (fsig_requote_acts vs Engine._requote: whether any
side reaches _work_side, with every order state, price and size relation and the self-trade rules)."""
import functools
from types import SimpleNamespace

from hypothesis import HealthCheck, example, given, settings, strategies as st

from mm_core._fastmd_cffi import ffi, lib
from mm_core.oms import OrderState
from mm_core.sigreact import work_words
from tests.mm_core.wire import ACME, BOLT, CHIP, simulate

SYMBOLS = (ACME, BOLT, CHIP)


@functools.lru_cache(maxsize=1)
def _session():
    """A compiled engine after a short simulated session (books, guards and quotes populated)."""
    _, _, engine = simulate(3, 400)
    assert engine.compiled
    return engine


def _fairs():
    """Fair values anywhere, and right at / a hair off the 1/8-tick steps the key truncates at."""
    near = st.builds(lambda k, tick, eps: k * tick / 8 + eps, st.integers(-8, 8_000_000),
                     st.sampled_from((1, 50, 100)), st.sampled_from((0.0, 1e-9, -1e-9, 0.5, -0.5)))
    return st.one_of(st.floats(-1e3, 1e10, allow_nan=False), near)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=st.sampled_from(SYMBOLS), fair=_fairs(), position=st.integers(-10**6, 10**6),
       hedged=st.integers(-10**5, 10**5), until=st.tuples(st.integers(-2, 2), st.integers(-2, 2)),
       prints=st.lists(st.tuples(st.booleans(), st.integers(1, 5_000)), max_size=8),
       markouts=st.integers(0, 10**6), halted=st.booleans())
def test_the_c_quote_key_is_the_engines(s, fair, position, hedged, until, prints, markouts, halted):
    engine = _session()
    rx, now = engine._rx, engine.now
    engine.fv.fair[s] = fair
    engine.inventory.position[s] = rx.position[s] = position
    for t in engine.hedge_of[s]:
        engine.hedger.pairs[t].hedged = hedged
        engine.hedger._mirror(t)
    engine.sig.until[2 * s] = now + until[0]
    engine.sig.until[2 * s + 1] = now + until[1]
    for buys, qty in prints:
        lib.fsig_guard_on_print(engine._sh, s, buys, qty)
    m = engine.metrics
    m.markout_n[m.adverse_horizon] = markouts
    rx.set_metrics(m)
    engine.halted_symbols[s] = halted
    rx.halted[s] = int(halted)
    engine._risk_to_react()
    assert not engine.mirrors_stale()
    key = ffi.new("int64_t[]", lib.FSIG_M_NKEY)
    rc = lib.fsig_quote_key(engine._sh, engine._bh, rx.r, s, now, key)
    expected = engine._quote_key(s)
    assert (rc == 1) == (expected is None)
    if expected is not None:
        assert list(key) == [int(x) for x in expected]


# prices below $1.00 (tick $0.0001) and around it (ACME's tick is $0.01 from $1.00 up)
_PRICES = (99, 100, 101, 102, 9_999, 10_000, 10_001, 10_100, 10_200)
_NOW = 10_000_000_000
_order = st.one_of(st.none(), st.builds(
    lambda price, leaves, state, age: SimpleNamespace(
        price=price, leaves=leaves, fsm=SimpleNamespace(state=state), symbol_id=ACME,
        token="T", orig_token="", sent_ns=_NOW - age),
    st.sampled_from(_PRICES), st.integers(0, 3), st.sampled_from(list(OrderState)),
    st.sampled_from((0, 1, 49_999_999, 50_000_000, 10 ** 9))))
_side = st.tuples(st.one_of(st.integers(-1, 0), st.sampled_from(_PRICES)), st.integers(0, 3))


def _resting(price: int, leaves: int, age: int, state=OrderState.ACCEPTED) -> SimpleNamespace:
    return SimpleNamespace(price=price, leaves=leaves, fsm=SimpleNamespace(state=state), symbol_id=ACME,
                           token="T", orig_token="", sent_ns=_NOW - age)


@settings(max_examples=800, deadline=None)
@given(bid=_order, ask=_order, want_bid=_side, want_ask=_side, hold=st.integers(-1, 2),
       denied=st.tuples(*[st.sampled_from((0, _NOW, _NOW + 1))] * 2))
# Engine._can_wait: more size at the same price, a one-tick step toward the market, a one-tick step
# across $1.00 (the tick below it applies), all before and after the quote rested
@example(bid=_resting(101, 1, 1), ask=None, want_bid=(101, 2), want_ask=(0, 0), hold=0, denied=(0, 0))
@example(bid=_resting(101, 1, 50_000_000), ask=None, want_bid=(101, 2), want_ask=(0, 0), hold=0,
         denied=(0, 0))
@example(bid=_resting(100, 2, 1), ask=None, want_bid=(101, 2), want_ask=(0, 0), hold=0, denied=(0, 0))
@example(bid=None, ask=_resting(10_100, 2, 1), want_bid=(0, 0), want_ask=(10_000, 2), hold=0, denied=(0, 0))
@example(bid=None, ask=_resting(10_000, 2, 1), want_bid=(0, 0), want_ask=(9_999, 2), hold=0, denied=(0, 0))
@example(bid=_resting(9_999, 2, 1), ask=None, want_bid=(10_000, 2), want_ask=(0, 0), hold=0, denied=(0, 0))
@example(bid=_resting(10_000, 2, 1), ask=None, want_bid=(10_100, 2), want_ask=(0, 0), hold=0, denied=(0, 0))
# a side backing off after a denial: no enter, modify or replace, but a refused replace away from
# the market pulls the quote
@example(bid=None, ask=None, want_bid=(101, 2), want_ask=(0, 0), hold=0, denied=(_NOW + 1, 0))
@example(bid=_resting(101, 2, 10 ** 9), ask=None, want_bid=(101, 1), want_ask=(0, 0), hold=0,
         denied=(_NOW + 1, 0))
@example(bid=_resting(101, 2, 10 ** 9), ask=None, want_bid=(100, 2), want_ask=(0, 0), hold=0,
         denied=(_NOW + 1, 0))
@example(bid=_resting(101, 2, 10 ** 9), ask=None, want_bid=(102, 2), want_ask=(0, 0), hold=0,
         denied=(_NOW + 1, 0))
@example(bid=None, ask=_resting(10_100, 2, 10 ** 9), want_bid=(0, 0), want_ask=(10_200, 2), hold=0,
         denied=(0, _NOW + 1))
def test_the_c_requote_decision_is_the_engines(bid, ask, want_bid, want_ask, hold, denied):
    engine = _session()
    s = ACME
    bid_key, ask_key = engine.quote_slots[s]
    oms = SimpleNamespace(orders={}, working={}, new_token=lambda: "N1")
    for key, order, token in ((bid_key, bid, "B1"), (ask_key, ask, "A1")):
        if order is not None:
            order.token = token
            order.mark = "B" if token == "B1" else "S"
            oms.orders[token] = order
            oms.working[key] = token
    quote = (want_bid[0], want_bid[1], want_ask[0], want_ask[1])
    calls = []
    # the engine's own _requote_sides and _work_side (with _can_wait) with their inputs replaced: an
    # order submitted or cancelled is an action
    engine_type = type(engine)
    until = {slot: t for slot, t in zip((bid_key, ask_key), denied) if t}
    # the gateway's duplicate window and live position room are read in Python only, after C sent
    # the symbol there: they can only make Python do less (an enter waits or is cut), never more,
    # so they are left open here and the two decisions must agree exactly
    risk = SimpleNamespace(state=engine.risk.state, duplicate_until=lambda *key: -1,
                           position_room=lambda symbol_id, buy, freed=0: 10 ** 9)
    probe = SimpleNamespace(oms=oms, quote_slots=engine.quote_slots, hedge_hold={s: hold}, risk=risk,
                            _quote=lambda symbol_id: quote, now=_NOW, cfg=engine.cfg,
                            ticks=engine.ticks, ids=engine.ids, denied_until=until, ssr=[False] * engine.n,
                            _long_sells=lambda symbol_id, qty, skip="": (True, []), _holding=None)
    for name in ("_requote_side", "_work_side", "_can_wait", "_quote_denied", "_reach",
                 "_replacement_fits", "_replacement_room", "_within_room"):
        setattr(probe, name, functools.partial(getattr(engine_type, name), probe))
    # Engine._submit refuses a side backing off (denied_until) before anything else
    probe._submit = lambda intent, actions: (until.get((s, int(intent.side), "quote"), -1) <= _NOW
                                             and (calls.append(intent) or True))
    probe._cancel = lambda order, purpose, actions: calls.append(order)
    engine_type._requote_sides(probe, s, [])
    work = engine._rx.work
    w = lib.FSIG_W_N
    saved = list(work[2 * s * w:(2 * s + 2) * w])
    saved_denied = list(engine._rx.denied[2 * s:2 * s + 2])     # the cached engine is shared
    try:
        work[2 * s * w:(2 * s + 2) * w] = work_words(oms, bid_key) + work_words(oms, ask_key)
        engine._rx.denied[2 * s:2 * s + 2] = list(denied)
        bp, bq, ap, aq = quote
        if hold in (1, 2):          # 2: HOLD_BOTH, two pairs hedging opposite ways
            aq = 0
        if hold in (-1, 2):
            bq = 0
        acts = lib.fsig_requote_acts(engine._rx.r, s, bp, bq, ap, aq, _NOW)
    finally:
        work[2 * s * w:(2 * s + 2) * w] = saved
        engine._rx.denied[2 * s:2 * s + 2] = saved_denied
    assert bool(acts) == bool(calls), (quote, hold, calls)


def test_the_risk_cap_mirrors_are_checked_unless_the_gateway_moved_since_they_were_written():
    """The C reaction's position and order caps are compared with the gateway's like every other
    mirror: a wrong cap is named by mirrors_stale, except while the gateway's state has moved
    since set_risk wrote them (the engine rewrites them before C reads them next)."""
    _, _, engine = simulate(1, 200)
    assert engine.mirrors_stale() == []
    rx = engine._rx
    for name in ("max_position", "max_order_qty", "max_order_value"):
        mirror = getattr(rx, name)
        kept = mirror[ACME]
        mirror[ACME] = kept + 1
        assert engine.mirrors_stale() == [name]
        seen, engine._risk_seen = engine._risk_seen, None    # as after a state change not yet taken
        assert engine.mirrors_stale() == []
        engine._risk_seen = seen
        mirror[ACME] = kept
    assert engine.mirrors_stale() == []
