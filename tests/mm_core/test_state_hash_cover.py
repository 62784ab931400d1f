"""state_hash() covers every piece of state that can change a later decision, in the reference
engine and in the compiled one: the micro-price estimator's counts (Q, R1, R2, the observation
count, the previous state and mid, the last top it observed), the quote memo (a hit returns the
quote priced at an older fair value within the same 1/8 tick) and the fair values last told to
the risk gateway (they decide when it is told again), every order's times (ack timeouts, the
requote rest), flags and fill counts, the replacements abandoned with their original, and the
metrics counters the METRICS summary reads. Each is changed in turn: the hash must move, and
come back when the change is undone."""
import pytest

from mm_core._fastmd_cffi import lib
from mm_core.config import EngineConfig, FairValueParams
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, Timer
from mm_core.types import Purpose
from tests.mm_core.wire import ACME, S, SYMBOLS, gateway, simulate

# calibrating rarely: the counts since the last calibration are not in the table yet
CONFIG = EngineConfig(fair_value=FairValueParams(calibrate_every=10_000))


@pytest.fixture(scope="module")
def events():
    return simulate(7, 600, CONFIG)[0]


def session(events, compiled: bool) -> Engine:
    engine = Engine(CONFIG, SYMBOLS, gateway(), compiled=compiled)
    for event in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(event)
    for event in events:
        engine.on_event(event)
    return engine


def tweaks(engine: Engine):
    """(name, change, undo) for each piece of decision state the hash must cover."""
    est = engine.fv.estimators[ACME]
    i, j = next((i, j) for i, row in enumerate(est.q) for j, x in enumerate(row) if x)

    def bump(obj, name, by):
        return lambda: setattr(obj, name, getattr(obj, name) + by)

    def cell(matrix, i, j, by):
        def change():
            matrix[i][j] += by
        return change

    if engine.compiled:
        has_top = engine.sig.iarray(lib.FSIG_I_HAS_TOP)
        top = (lambda: has_top.__setitem__(ACME, 0), lambda: has_top.__setitem__(ACME, 1))
    else:
        saved = engine.fv.last_top[ACME]
        top = (lambda: engine.fv.last_top.__setitem__(ACME, ()),
               lambda: engine.fv.last_top.__setitem__(ACME, saved))
    memo, sent = engine.quote_memo[ACME], engine.risk_sent[ACME]
    assert memo is not None and sent[0] > 0
    oms, m = engine.oms, engine.metrics
    order = next(reversed(oms.orders.values()))     # kept until pruned, terminal or not

    def swap(obj, name, value):
        saved = getattr(obj, name)
        return (f"{type(obj).__name__}.{name}", lambda: setattr(obj, name, value),
                lambda: setattr(obj, name, saved))

    def bumped(obj, name):
        saved = list(getattr(obj, name))
        return swap(obj, name, [x + 1 for x in saved])

    orders_and_metrics = [
        swap(order, "last_ns", order.last_ns - S), swap(order, "sent_ns", order.sent_ns - S),
        swap(order, "cancel_on_accept", Purpose.QUOTE), swap(order, "fills_after_cancel", 3),
        swap(order, "modify_sent", not order.modify_sent), swap(oms, "abandoned", ["X"]),
        bumped(m, "filled_qty"), bumped(m, "traded"), bumped(m, "markout_qty"),
        swap(m, "pos_samples", m.pos_samples + 1), bumped(m, "spread_marked_qty"),
        bumped(m, "spread_marked_side"), bumped(m, "after_cancel_fills"), bumped(m, "after_cancel_qty"),
    ]
    return orders_and_metrics + [
        ("q", cell(est.q, i, j, 1.0), cell(est.q, i, j, -1.0)),
        ("r1", cell(est.r1, i, 0, 1.0), cell(est.r1, i, 0, -1.0)),
        ("r2", cell(est.r2, i, j, 1.0), cell(est.r2, i, j, -1.0)),
        ("observations", bump(est, "observations", 1), bump(est, "observations", -1)),
        ("previous state", bump(est, "_prev_state", 1), bump(est, "_prev_state", -1)),
        ("previous mid", bump(est, "_prev_mid2", 2), bump(est, "_prev_mid2", -2)),
        ("last top", *top),
        ("quote memo", lambda: engine.quote_memo.__setitem__(ACME, None),
         lambda: engine.quote_memo.__setitem__(ACME, memo)),
        ("risk feed", lambda: engine.risk_sent.__setitem__(ACME, (sent[0], sent[1], sent[2] - 1)),
         lambda: engine.risk_sent.__setitem__(ACME, sent)),
    ]


@pytest.mark.parametrize("compiled", [False, True], ids=["reference", "kernel"])
def test_state_hash_moves_with_every_piece_of_decision_state(events, compiled):
    engine = session(events, compiled)
    assert 0 < engine.fv.estimators[ACME].observations < 10_000
    base = engine.state_hash()
    for name, change, undo in tweaks(engine):
        change()
        assert engine.state_hash() != base, f"{name} is not in state_hash"
        undo()
        assert engine.state_hash() == base, name


def test_both_engines_hash_the_same_state_alike(events):
    assert session(events, True).state_hash() == session(events, False).state_hash()
