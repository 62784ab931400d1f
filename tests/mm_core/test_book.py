import pytest
from hypothesis import given, settings, strategies as st

from mm_core.book import Book, BookError


def test_levels_aggregate_and_best_prices():
    b = Book(4)
    b.add(1, 1, True, 100, 9_900)
    b.add(2, 1, True, 200, 10_000)
    b.add(3, 1, True, 50, 10_000)
    b.add(4, 1, False, 300, 10_100)
    b.add(5, 1, False, 100, 10_200)
    assert b.top(1) == (10_000, 250, 10_100, 300)
    assert b.bids(1, 5) == [(10_000, 250), (9_900, 100)]
    assert b.asks(1, 1) == [(10_100, 300)]
    assert b.top(2) == (0, 0, 0, 0)


def test_execute_cancel_delete_replace():
    b = Book(2)
    b.add(1, 1, True, 100, 10_000)
    b.add(2, 1, False, 100, 10_100)
    ex = b.execute(1, 40)
    assert (ex.symbol_id, ex.resting_is_buy, ex.price, ex.qty) == (1, True, 10_000, 40)
    assert b.top(1)[1] == 60
    assert b.cancel(1, 10) == 1 and b.top(1)[1] == 50
    ex = b.execute(1, 80)          # more than left: executes what is there
    assert ex.qty == 50 and b.best_bid(1) == 0 and 1 not in b.orders
    assert b.replace(2, 7, 300, 10_200) == 1
    assert b.top(1) == (0, 0, 10_200, 300)
    assert b.orders[7] == [1, False, 10_200, 300]
    assert b.delete(7) == 1 and b.best_ask(1) == 0 and not b.orders


def test_unknown_references_are_counted_not_fatal():
    b = Book(2)
    assert b.execute(99, 1) is None
    assert b.cancel(99, 1) == -1 and b.delete(99) == -1 and b.replace(99, 100, 1, 1) == -1
    assert b.unknown_refs == 4


@pytest.mark.parametrize("args", [(1, 1, True, 100, 10_000), (2, 5, True, 1, 1), (3, 1, True, 0, 1)])
def test_bad_adds_raise_book_error(args):
    b = Book(2)
    b.add(1, 1, True, 100, 10_000)
    with pytest.raises(BookError):
        b.add(*args)


ops = st.lists(st.tuples(st.sampled_from("AECDU"), st.integers(1, 12), st.booleans(),
                         st.integers(1, 300), st.integers(95, 105)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_levels_always_equal_the_sum_of_live_orders(seq):
    """Oracle: every level is the sum of its live orders; price lists stay sorted and exact."""
    b = Book(3)
    live = {}
    next_ref = 100
    for op, ref, is_buy, qty, px in seq:
        price = px * 100
        if op == "A" and ref not in live:
            b.add(ref, 1 + ref % 2, is_buy, qty, price)
            live[ref] = [1 + ref % 2, is_buy, price, qty]
        elif op == "E" and ref in live:
            b.execute(ref, qty)
            live[ref][3] -= min(qty, live[ref][3])
        elif op == "C" and ref in live:
            b.cancel(ref, qty)
            live[ref][3] -= min(qty, live[ref][3])
        elif op == "D" and ref in live:
            b.delete(ref)
            live[ref][3] = 0
        elif op == "U" and ref in live:
            next_ref += 1
            b.replace(ref, next_ref, qty, price)
            live[next_ref] = [live[ref][0], live[ref][1], price, qty]
            live[ref][3] = 0
        live = {r: o for r, o in live.items() if o[3] > 0}
    for s in (1, 2):
        for is_buy, levels, prices in ((True, b.bid_qty[s], b.bid_px[s]), (False, b.ask_qty[s], b.ask_px[s])):
            want = {}
            for sym, side, price, qty in live.values():
                if sym == s and side == is_buy:
                    want[price] = want.get(price, 0) + qty
            assert levels == want
            assert prices == sorted(want)
    assert {r: o for r, o in b.orders.items()} == live


def test_depth_imbalance_matches_the_reference_formula():
    from mm_core.fairvalue import multi_level_imbalance
    b = Book(2)
    for ref, (is_buy, qty, px) in enumerate([(True, 300, 100), (True, 100, 99), (True, 50, 98),
                                              (False, 100, 101), (False, 500, 102)]):
        b.add(ref, 1, is_buy, qty, px)
    for depth in (1, 2, 3, 5):
        want = multi_level_imbalance(b.bids(1, depth), b.asks(1, depth), 0.5)
        assert b.depth_imbalance(1, depth, 0.5) == want
    assert b.depth_imbalance(0, 3, 0.5) == 0.0
