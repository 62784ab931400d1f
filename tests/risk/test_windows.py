"""The order path's windows in C (mm_core/fastrisk.h) against the Python reference: a compiled
gateway and one with compiled=False, driven in lockstep through random checks, cancels, orders
leaving, confirmed or filled, time steps (backwards too), snapshots and new limits, give the same decisions and hold
the same rate windows, drift queues and duplicate table after every step."""
from __future__ import annotations

import io
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm_core.risk import CheckId, Limits, RiskGateway
from mm_core.risk import windows
from mm_core.types import OrderKind, Side
from recovery.snapshot import _Pickler
from tests.risk.conftest import FAIR, MS, T0, cancel, healthy, limits_text, order

LIMITS = dict(rates={"window_ms": 3, "max_submits": 6, "max_modifies": 4, "max_cancels": 5},
              duplicate={"window_ms": 2}, account={"max_open_orders": 10_000},
              collar={"fair_bps": 100, "reference_bps": 200, "drift_bps": 50, "drift_window_ms": 4})
FEEDS = ((1, FAIR, FAIR), (2, FAIR, FAIR))


def pair(**sections) -> tuple[RiskGateway, RiskGateway]:
    text = limits_text(**{**LIMITS, **sections})
    fast = healthy(RiskGateway(Limits.from_toml(text)), T0, FEEDS)
    ref = healthy(RiskGateway(Limits.from_toml(text), compiled=False), T0, FEEDS)
    assert fast.compiled and not ref.compiled
    return fast, ref


def snapshot(gw: RiskGateway) -> RiskGateway:
    """gw pickled and loaded as an engine snapshot does it."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(gw)
    return pickle.loads(buf.getvalue())


def held(gw: RiskGateway) -> tuple:
    """The windows as the reference keeps them (the C object's copied out when compiled)."""
    if gw.compiled:
        state = windows.gateway_windows(gw._win)
        windows.export(gw._win, gw, symbols_only=True)
    else:
        state = {name: getattr(gw, name) for name in ("_submits", "_modifies", "_dup_last", "_dup_purge_at")}
    drift = {s: (list(map(list, sym.drift_buy)), list(map(list, sym.drift_sell))) for s, sym in gw._symbols.items()}
    return (list(state["_submits"]), list(state["_modifies"]), list(state["_dup_last"].items()),
            state["_dup_purge_at"], drift, list(gw._cancels))


# steps of whole windows too, so an entry meets a horizon exactly (times <= it leave the window)
STEPS = st.sampled_from([0, 1, 300_000, MS // 2, MS, 2 * MS, 3 * MS, 4 * MS, 2 * MS + 1, -MS])
OPS = st.one_of(
    st.tuples(st.just("order"), st.sampled_from([OrderKind.ENTER] * 4 + [OrderKind.REPLACE, OrderKind.MODIFY]),
              st.sampled_from([1, 2]), st.sampled_from([Side.BUY, Side.SELL]),
              st.sampled_from([-12_000, -9_000, -3_000, -1, 0, 2_500, 6_000, 10_000, 10_001]),
              st.sampled_from([50, 100, 100, 200, 300, 20_000]), st.integers(0, 30), st.booleans(),
              st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("done"), st.integers(0, 30)),
    st.tuples(st.just("confirm"), st.integers(0, 30), st.sampled_from([0, 50, 100, 200])),
    st.tuples(st.just("fill"), st.integers(0, 30), st.sampled_from([50, 100])),
    st.tuples(st.just("step"), STEPS),
    st.tuples(st.just("snapshot"), st.booleans()),
    st.tuples(st.just("limits"), st.sampled_from([1, 3, 5]), st.sampled_from([0, 1, 2])),
)
# replaces and modifies of orders on their own symbol and side, marked (a sell short or exempt:
# a modify may change the side byte), within the collars, with the venue's answers between them:
# chains of changes in flight, a modify of a replacement too
CHANGE = st.tuples(st.just("order"), st.sampled_from([OrderKind.ENTER, OrderKind.REPLACE, OrderKind.MODIFY]),
                   st.just(1), st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from([-40, -20, 0, 20, 40]),
                   st.sampled_from([50, 100, 150, 200, 300]), st.integers(0, 30), st.just(True),
                   st.sampled_from(["T", "E"]))
CHANGES = st.one_of(
    CHANGE, CHANGE, CHANGE, CHANGE,
    st.tuples(st.just("confirm"), st.integers(0, 30), st.sampled_from([0, 50, 100, 150]),
              st.sampled_from([None, "S", "T", "E"])),      # the side byte the venue echoes, if any
    st.tuples(st.just("fill"), st.integers(0, 30), st.sampled_from([50, 100])),
    st.tuples(st.just("done"), st.integers(0, 30)),
    st.tuples(st.just("step"), st.sampled_from([MS, 4 * MS])),
    st.tuples(st.just("snapshot"), st.booleans()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=80))
def test_compiled_windows_decide_and_hold_as_the_reference(ops):
    lockstep(ops)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CHANGES, min_size=10, max_size=60))
def test_changes_in_flight_count_as_the_reference(ops):
    lockstep(ops)


def lockstep(ops) -> None:
    """Both gateways through `ops`, compared (and the counts checked) after every step."""
    fast, ref = pair()
    now = T0
    tokens: list[str] = []
    version = 1
    for op in ops:
        if op[0] == "order":
            _, kind, symbol_id, side, offset, qty, pick, own, marked = op
            kw = {}
            if kind is not OrderKind.ENTER:
                if not tokens:
                    continue
                target = tokens[pick % len(tokens)]
                kw = {"orig_token": target} if kind is OrderKind.REPLACE else {"token": target}
                if own and target in ref._working:      # on the order's own symbol and side
                    symbol_id = ref._working[target][0].symbol_id
                    side = Side.BUY if ref._working[target][1] else Side.SELL
            intent = order(symbol_id=symbol_id, side=side, price=FAIR + offset, qty=qty, kind=kind, **kw)
            sell_mark = marked if isinstance(marked, str) else "T"
            mark = ("B" if side is Side.BUY else sell_mark) if marked else None
            before = ref._working.get(intent.token) if kind is OrderKind.MODIFY else None
            second = kind is OrderKind.REPLACE and intent.orig_token in ref._replaced_by
            in_place = before is not None and intent.token not in ref._replacing and \
                before[0].symbol_id == symbol_id and before[1] is (side is Side.BUY)
            key = (symbol_id, side is Side.BUY, intent.price, qty)
            until = ref.duplicate_until(*key)
            assert fast.duplicate_until(*key) == until
            got, want = fast.check(intent, now, mark), ref.check(intent, now, mark)
            assert got == want
            if kind is OrderKind.ENTER:     # the prediction the engine waits on is the check's answer
                assert not (want.allowed and until > now) and \
                    (want.check is not CheckId.DUPLICATE_ORDER or until > now), (until, now, want)
            if want.allowed and intent.token not in tokens:
                tokens.append(intent.token)
            assert not (second and want.allowed), intent     # its original is counted in the first
            if want.allowed and in_place:        # a modify in place: the larger size until confirmed
                for gw in (fast, ref):
                    assert gw._working[intent.token][2] == max(before[2], qty), (intent, before)
        elif op[0] in ("cancel", "done"):
            if not tokens:
                continue
            token = tokens[op[1] % len(tokens)]
            if op[0] == "cancel":
                assert fast.check(cancel(token), now) == ref.check(cancel(token), now)
            else:
                fast.on_order_done(token, now)
                ref.on_order_done(token, now)
                tokens.remove(token)
        elif op[0] in ("confirm", "fill"):
            if not tokens:
                continue
            token = tokens[op[1] % len(tokens)]
            for gw in (fast, ref):
                if op[0] == "confirm":           # OUCH Replaced / Order Modified
                    gw.on_order_confirmed(token, op[2], now, *op[3:])
                elif token in gw._working:
                    symbol_id, is_buy = gw._working[token][0].symbol_id, gw._working[token][1]
                    gw.on_fill(symbol_id, Side.BUY if is_buy else Side.SELL, op[2], FAIR, now, token=token)
        elif op[0] == "step":
            now += op[1]
            for gw in (fast, ref):
                healthy(gw, now, FEEDS)
        elif op[0] == "snapshot":
            fast = snapshot(fast)
            assert fast.compiled
            if op[1]:
                ref = snapshot(ref)
                assert not ref.compiled
        else:
            version += 1
            text = limits_text(**{**LIMITS, "version": version,
                                  "rates": {**LIMITS["rates"], "window_ms": op[1], "max_submits": 3 + op[2]},
                                  "duplicate": {"window_ms": op[2]},
                                  "collar": {**LIMITS["collar"], "drift_window_ms": op[1]}})
            assert fast.replace_limits(text) == ref.replace_limits(text)
        assert held(fast) == held(ref)
        assert fast.state_items() == ref.state_items() and fast.state is ref.state
        assert_counted(fast)


def assert_counted(gw: RiskGateway) -> None:
    """A replacement in flight counts the original's shares left plus its own size (whatever
    modified it since), and each side's open quantity is its working orders' sum."""
    for token, (_orig, left, _price, own, _symbol, _is_buy) in gw._replacing.items():
        assert gw._working[token][2] == left + own, (token, gw._working[token], left, own)
    for symbol_id, sym in gw._symbols.items():
        for is_buy, open_qty in ((True, sym.open_buy), (False, sym.open_sell)):
            assert open_qty == sum(o[2] for o in gw._working.values() if o[0] is sym and o[1] is is_buy)


def test_every_window_denial_reports_the_reference_values():
    fast, ref = pair()
    now = T0 + 10
    seen = set()
    script = [(Side.BUY, 0, 100), (Side.BUY, 0, 100),            # duplicate
              (Side.BUY, 8_000, 100), (Side.BUY, -8_000, 100),   # drift
              *((Side.BUY, k, 100) for k in range(1, 8))]                   # rate
    for side, offset, qty in script:
        intent = order(side=side, price=FAIR + offset, qty=qty)
        got = fast.check(intent, now)
        assert got == ref.check(intent, now)
        seen.add(got.check)
        now += 1
    assert {CheckId.DUPLICATE_ORDER, CheckId.COLLAR_DRIFT, CheckId.MSG_RATE_SUBMIT} <= seen
    # a size denial the rate would have made first reports the rate, as in the reference
    big = order(price=FAIR, qty=20_000)
    assert fast.check(big, now) == ref.check(big, now)
    assert fast.check(big, now).check is CheckId.MSG_RATE_SUBMIT


def test_each_window_ends_exactly_at_its_horizon_as_the_reference():
    """A time equal to the horizon (now - window) has left the window: the duplicate passes
    one window after, the drift forgets the old price, the rate frees the slot."""
    fast, ref = pair()
    start = T0 + 10

    def both(intent, now):
        got = fast.check(intent, now)
        assert got == ref.check(intent, now)
        return got.check

    assert both(order(price=FAIR, qty=100), start) is CheckId.OK
    assert both(order(price=FAIR, qty=100), start + 2 * MS - 1) is CheckId.DUPLICATE_ORDER
    assert both(order(price=FAIR, qty=100), start + 2 * MS) is CheckId.OK
    assert both(order(price=FAIR + 8_000, qty=100), start + 4 * MS - 1) is CheckId.COLLAR_DRIFT
    assert both(order(price=FAIR + 8_000, qty=100), start + 4 * MS) is CheckId.COLLAR_DRIFT  # the 2nd
    assert both(order(price=FAIR + 8_000, qty=100), start + 6 * MS) is CheckId.OK
    for k in range(5):          # six in the 3 ms before start + 9 ms: the seventh waits for the first
        assert both(order(price=FAIR + 8_001 + k, qty=100), start + 6 * MS + 1 + k) is CheckId.OK
    assert both(order(price=FAIR + 8_100, qty=100), start + 9 * MS - 1) is CheckId.MSG_RATE_SUBMIT
    assert both(order(price=FAIR + 8_100, qty=100), start + 9 * MS) is CheckId.OK
    assert held(fast) == held(ref)


def test_duplicate_purge_keeps_the_reference_keys_and_threshold():
    fast, ref = pair(rates={"window_ms": 1, "max_submits": 1_000_000, "max_modifies": 10, "max_cancels": 5},
                     duplicate={"window_ms": 1}, collar={"fair_bps": 100, "reference_bps": 200,
                                                         "drift_bps": 10_000, "drift_window_ms": 1})
    now = T0
    for i in range(9_000):
        now += 97_000 if i % 1000 == 999 else 13
        intent = order(side=Side.BUY if i % 2 else Side.SELL, price=FAIR - i % 997, qty=1 + i % 5)
        assert fast.check(intent, now) == ref.check(intent, now)
        fast.on_order_done(intent.token, now)
        ref.on_order_done(intent.token, now)
    assert ref._dup_purge_at > 4096                # purged, and the threshold grew
    assert held(fast) == held(ref)


def test_time_running_backwards_latches_as_the_reference():
    """An order stamped before one the windows saw (the event clock stepped back) is denied and
    latches INCONSISTENT_INPUT in both forms, and never enters the windows, so the drift collar
    still binds (before, it passed: the max queue lost its entry while the min queue kept one, and
    a 9000 spread passed a band of 5000)."""
    fast, ref = pair()
    for gw in (fast, ref):
        assert gw.check(order(price=FAIR - 4000), T0 + 10 * MS).allowed
    for at in (T0 + 5 * MS, T0 + 9 * MS + MS // 2):
        back = order(price=FAIR + 5000)
        got, want = fast.check(back, at), ref.check(back, at)
        assert got == want and got.check is CheckId.INCONSISTENT_INPUT, got
        assert (got.value, got.limit) == (at, T0 + 10 * MS) and fast.state.name == "HALTED"
        assert held(fast) == held(ref)
        for gw in (fast, ref):
            healthy(gw, T0 + 10 * MS, FEEDS)
            gw.operator_enable("ops", "clock checked", T0 + 10 * MS)
    late = order(price=FAIR + 5000)
    got, want = fast.check(late, T0 + 11 * MS), ref.check(late, T0 + 11 * MS)
    assert got == want and got.check is CheckId.COLLAR_DRIFT and (got.value, got.limit) == (9000, 5000)


@pytest.mark.parametrize("kept", [0, 1], ids=["max-only", "min-only"])
def test_one_drift_queue_empty_fails_closed_as_the_reference(kept):
    """A side whose max queue holds an entry and min queue none, or the other way round (an altered
    snapshot): the collar cannot be judged, so both forms deny and latch INTERNAL_ERROR (the C's
    FRK_EMPTY as the reference's IndexError)."""
    _, ref = pair()
    assert ref.check(order(price=FAIR - 4000), T0 + MS).allowed
    ref._symbols[1].drift_buy[1 - kept].clear()
    fast = snapshot(ref)
    fast._compiled = True
    fast._compile()
    assert fast.compiled and held(fast) == held(ref)
    probe = order(price=FAIR + 5000)
    got, want = fast.check(probe, T0 + 2 * MS), ref.check(probe, T0 + 2 * MS)
    assert got == want and got.check is CheckId.INTERNAL_ERROR and got.state.name == "HALTED", got


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
def test_a_snapshot_from_before_the_high_water_time_takes_the_windows_latest(compiled):
    """A gateway pickled before it kept the latest order time: loaded, it takes the latest time its
    windows hold, so an order stamped before that is still refused."""
    gw = pair()[0 if compiled else 1]
    assert gw.check(order(price=FAIR - 4000), T0 + 10 * MS).allowed
    attrs, slots = gw.__getstate__()
    old = RiskGateway.__new__(RiskGateway)
    old.__setstate__((attrs, {k: v for k, v in slots.items() if k != "_order_ns"}))
    d = old.check(order(price=FAIR + 5000), T0 + 5 * MS)
    assert d.check is CheckId.INCONSISTENT_INPUT and d.limit == T0 + 10 * MS, d


def test_values_outside_the_c_range_move_the_windows_to_python_and_back():
    fast, ref = pair(duplicate={"window_ms": 0})    # (a duplicate key stays until a purge)
    for gw in (fast, ref):
        assert gw.check(order(price=FAIR + 1), T0 + 1).allowed
    odd = order(price=FAIR + 2.0)           # a float price: the C takes only int64_t
    assert fast.check(odd, T0 + 2) == ref.check(odd, T0 + 2)
    assert not fast.compiled and held(fast) == held(ref)
    assert not snapshot(fast).compiled      # a float in the windows: the snapshot stays in Python
    for gw in (fast, ref):
        gw.on_order_done(odd.token, T0 + 10 * MS)
        assert gw.check(order(price=FAIR + 3), T0 + 10 * MS).allowed   # the float left the windows
    again = snapshot(fast)
    assert again.compiled and held(again) == held(ref)
    follow = order(price=FAIR + 4)
    assert again.check(follow, T0 + 10 * MS + 1) == ref.check(follow, T0 + 10 * MS + 1)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_snapshot_loads_into_either_form(compiled):
    """A pickle holds the reference's structures either way, so one from a compiled gateway loads
    as the reference and the other way round, and both then decide alike."""
    fast, ref = pair()
    now = T0
    for i in range(20):
        now += 400_000
        for gw in (fast, ref):
            gw.check(order(side=Side.BUY if i % 3 else Side.SELL, price=FAIR - 700 * (i % 4), qty=100 + i % 2,
                           token=f"S{i}"), now)
    loaded = snapshot(fast if compiled else ref)
    if compiled:
        loaded._compiled = False
        loaded._decompile()
    else:
        loaded._compiled = True
        loaded._compile()
    assert loaded.compiled is not compiled and held(loaded) == held(ref)
    for i in range(10):
        now += 300_000
        intent = order(price=FAIR - 900 * (i % 3), qty=100, token=f"L{i}")
        assert loaded.check(intent, now) == ref.check(intent, now)
