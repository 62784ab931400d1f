"""A Broken Trade takes its print out of the guard's aggression window wherever it sits, also after
newer prints were broken before it (each break leaves a gap, so the window is no longer the last
`later` prints): in the Python reference and in the compiled kernel, checked against a plain
model of the window."""
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.fairvalue import FairValueModel
from mm_core.guard import GuardParams, SymbolGuard
from mm_core.sigkernel import SignalKernel
from mm_core.trades import TradeTape


def sides(p: GuardParams, n: int = 1):
    ref = SimpleNamespace(guards=[SymbolGuard(s, p) for s in range(n)], tape=TradeTape(n),
                          fv=FairValueModel(n, ticks=[100] * n))
    kernel = SignalKernel(n, p, 0.1)
    return {"reference": ref, "kernel": SimpleNamespace(guards=kernel.guards, tape=kernel.tape, fv=None)}


@pytest.mark.parametrize("name", ["reference", "kernel"])
def test_breaking_an_older_print_after_a_newer_one_finds_it_in_the_window(name):
    side = sides(GuardParams(aggression_min_volume=1))[name]
    side.tape.on_prints([(0, False, 100, 1), (0, True, 200, 2), (0, True, 300, 3)], side.guards, side.fv)
    g = side.guards[0]
    assert g.aggression() == pytest.approx(400 / 600)
    assert side.tape.break_trade(2, side.guards, side.fv).window
    assert side.tape.break_trade(1, side.guards, side.fv).window      # was missed: window=False
    assert g.aggression() == 1.0 and list(g.prints) == [(True, 300)]
    assert (g.buy_vol, g.sell_vol) == (300, 0)


ops = st.lists(st.one_of(st.tuples(st.just("print"), st.booleans(), st.integers(1, 500)),
                         st.tuples(st.just("break"), st.integers(0, 40))), max_size=80)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6), ops)
def test_the_window_is_the_recent_prints_less_the_broken_ones(window, stream):
    """Model: the window keeps the last `window` prints it was given (a break frees no room for
    an older one to come back), minus every broken one still in it."""
    p = GuardParams(prints_window=window, aggression_min_volume=1)
    both = sides(p)
    model: list[tuple[int, bool, int]] = []          # (match, aggressor buys, qty), oldest first
    match = 0
    for op in stream:
        if op[0] == "print":
            match += 1
            model.append((match, op[1], op[2]))
            if len(model) > window:
                model.pop(0)
            for side in both.values():
                side.tape.on_prints([(0, op[1], op[2], match)], side.guards, side.fv)
        else:
            target = op[1]
            in_window = any(m == target for m, _, _ in model)
            model = [e for e in model if e[0] != target]
            for side in both.values():
                r = side.tape.break_trade(target, side.guards, side.fv)
                assert (r is not None and r.window) == in_window
        buy = sum(q for _, b, q in model if b)
        sell = sum(q for _, b, q in model if not b)
        want = (buy - sell) / (buy + sell) if model else 0.0
        for side in both.values():
            g = side.guards[0]
            assert list(g.prints) == [(b, q) for _, b, q in model]
            assert (g.buy_vol, g.sell_vol) == (buy, sell) and g.aggression() == want
    ref, ker = both["reference"].guards[0], both["kernel"].guards[0]
    assert ker.state_items() == ref.state_items()


def test_a_guard_pickled_before_print_numbers_restores_with_a_gap_free_window():
    g = SymbolGuard(0, GuardParams(aggression_min_volume=1))
    for buys, qty in ((False, 100), (True, 200), (True, 300)):
        g.on_print(buys, qty)
    state = dict(g.__dict__)
    del state["print_index"], state["printed"]          # as a guard pickled before them
    old = SymbolGuard.__new__(SymbolGuard)
    old.__setstate__(state)
    assert old.state_items() == g.state_items()
    assert old.reverse_print(True, 200, 1, False) == (True, False)
    assert list(old.prints) == [(False, 100), (True, 300)]
