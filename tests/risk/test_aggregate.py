"""Account-wide credit limits in the aggregate (SEC 15c3-5 (c)(1)(i)): gross and net notional count
the working orders of every symbol, not only the order's own: for gross the larger side of each
symbol (a symbol's worst case is all its buys or all its sells filled, so the larger side), for net every
working order on the side this order is on. The running totals stay equal to a recount from the
working orders whatever happens to them."""
from __future__ import annotations

import random

from journal.catalogue import Side
from mm_core.risk import CheckId
from mm_core.risk.gateway import OpenOrder
from mm_core.types import OrderKind
from tests.risk.conftest import FAIR, MS, T0, make_gateway, order

THREE = ((1, FAIR, FAIR), (2, FAIR, FAIR), (3, FAIR, FAIR))
SIZES = {"max_order_qty": 10_000, "max_order_value": 5_000_000, "max_position": 50_000}


def gateway(gross=10_000_000, net=10_000_000):
    return make_gateway(feeds=THREE, account={"max_gross_notional": gross, "max_net_notional": net},
                        defaults=SIZES)


def test_working_buys_in_other_symbols_count_against_gross_notional():
    gw = gateway(gross=150_000, net=10_000_000)
    assert gw.check(order(symbol_id=1, qty=1000), T0).allowed           # 100 000
    d = gw.check(order(symbol_id=2, qty=1000), T0 + 1)                  # 200 000 at worst
    assert not d.allowed and d.check is CheckId.GROSS_NOTIONAL, d
    assert (d.value, d.limit) == (200_000 * 10_000, 150_000 * 10_000)
    assert gw.check(order(symbol_id=2, qty=500), T0 + 2).allowed        # 150 000: at the limit


def test_working_orders_in_other_symbols_count_against_net_notional_on_the_orders_side():
    gw = gateway(gross=10_000_000, net=150_000)
    assert gw.check(order(symbol_id=1, qty=1000), T0).allowed
    d = gw.check(order(symbol_id=2, qty=1000), T0 + 1)
    assert not d.allowed and d.check is CheckId.NET_NOTIONAL and d.value == 200_000 * 10_000, d
    # a sell offsets nothing of the buys' worst case, and its own side holds nothing yet
    assert gw.check(order(symbol_id=2, side=Side.SELL, qty=1000), T0 + 2, "T").allowed
    d = gw.check(order(symbol_id=3, side=Side.SELL, qty=1000), T0 + 3, "T")
    assert not d.allowed and d.check is CheckId.NET_NOTIONAL and d.value == -200_000 * 10_000, d


def test_a_two_sided_quote_counts_its_larger_side_for_gross():
    gw = gateway(gross=250_000)
    for s in (1, 2):
        assert gw.check(order(symbol_id=s, qty=1000, price=FAIR - 100), T0 + s).allowed
        assert gw.check(order(symbol_id=s, side=Side.SELL, qty=1000, price=FAIR + 100), T0 + s, "T").allowed
    d = gw.check(order(symbol_id=3, qty=600, price=FAIR - 100), T0 + 5)
    assert not d.allowed and d.check is CheckId.GROSS_NOTIONAL, d           # ~200 000 + 60 000


def test_an_order_reducing_a_position_passes_while_other_symbols_hold_working_orders():
    gw = gateway(gross=150_000)
    gw.on_position(1, 1000, T0)
    assert gw.check(order(symbol_id=2, qty=400), T0).allowed              # 100 000 + 40 000
    gw.on_position(3, 200, T0)                                           # now over the limit
    assert not gw.check(order(symbol_id=3, qty=1), T0 + 1).allowed
    assert gw.check(order(symbol_id=1, side=Side.SELL, qty=500), T0 + 2, "S").allowed


def test_the_running_totals_equal_a_recount_whatever_happens_to_the_working_orders():
    rnd = random.Random(7)
    gw = gateway()
    live: list[tuple[str, int, Side]] = []
    now = T0
    for step in range(400):
        now += MS
        r = rnd.random()
        if r < 0.35 or not live:
            s, side = rnd.choice((1, 2, 3)), rnd.choice((Side.BUY, Side.SELL))
            intent = order(symbol_id=s, side=side, qty=rnd.randint(1, 300),
                           price=FAIR + 100 * rnd.randint(-5, 5))
            if gw.check(intent, now, "B" if side is Side.BUY else "T").allowed:
                live.append((intent.token, s, side))
        elif r < 0.5:
            token, s, side = rnd.choice(live)
            intent = order(kind=OrderKind.REPLACE, symbol_id=s, side=side, orig_token=token,
                           qty=rnd.randint(1, 300), price=FAIR + 100 * rnd.randint(-5, 5))
            if gw.check(intent, now, "B" if side is Side.BUY else "T").allowed:
                live.append((intent.token, s, side))
        elif r < 0.65:
            token, s, side = rnd.choice(live)
            gw.on_fill(s, side, rnd.randint(1, 50), FAIR, now, token)
        elif r < 0.75:
            token, _, _ = rnd.choice(live)
            gw.on_order_confirmed(token, rnd.randint(0, 200), now)
        elif r < 0.8:
            token, _, _ = rnd.choice(live)
            gw.on_order_resting(token, rnd.randint(1, 200), FAIR + 100 * rnd.randint(-5, 5), now)
        elif r < 0.87:             # an Accepted or Replaced at a price the venue chose
            token, _, _ = rnd.choice(live)
            gw.on_order_priced(token, FAIR + 100 * rnd.randint(-5, 5), now)
        elif r < 0.97:
            token, _, _ = rnd.choice(live)
            gw.on_order_done(token, now)
        else:
            gw.on_order_state([OpenOrder(t, o[0], Side.BUY if o[1] else Side.SELL, o[3], o[2])
                               for t, o in gw.working_orders().items()], 0, now)
        totals = (gw._work_buy, gw._work_sell, gw._work_gross,
                  [(x.work_buy, x.work_sell) for x in gw._symbols.values()])
        gw._recount_work()
        assert totals == (gw._work_buy, gw._work_sell, gw._work_gross,
                          [(x.work_buy, x.work_sell) for x in gw._symbols.values()]), step


EXPIRY = T0 + 30 * 86_400 * 10**9


def option_gateway(**sections):
    gw = make_gateway(feeds=((1, FAIR, FAIR), (2, 50_000, 50_000)), **sections)
    gw.on_option_params(2, 1, FAIR, EXPIRY, 0.25, 0.01, True, 100, T0)
    return gw


def test_working_orders_on_another_symbol_of_the_group_count_against_the_greeks():
    """Working share buys and working call buys on one underlying: delta at worst is the sum."""
    gw = option_gateway(greeks={"max_delta": 10_000.0}, defaults={"max_order_qty": 100_000,
                                                                   "max_order_value": 500_000_000})
    unit = gw._symbols[2].risk.delta                 # per contract (x100 multiplier)
    calls = int(6_000 / unit)                        # ~6 000 delta of calls
    assert gw.check(order(symbol_id=2, qty=calls, price=50_000), T0).allowed
    d = gw.check(order(symbol_id=1, qty=5_000), T0 + 1)       # ~11 000 delta if both fill
    assert not d.allowed and d.check is CheckId.DELTA_LIMIT, d
    assert d.value == round(calls * unit + 5_000)
    assert gw.check(order(symbol_id=1, qty=3_000), T0 + 2).allowed    # ~9 000
    # a sell of shares offsets nothing: the buys may fill and the sell not
    assert gw.check(order(symbol_id=1, side=Side.SELL, qty=3_000, price=FAIR + 100), T0 + 3, "T").allowed
    d = gw.check(order(symbol_id=2, qty=int(2_000 / unit), price=50_000), T0 + 4)
    assert not d.allowed and d.check is CheckId.DELTA_LIMIT, d


def test_working_orders_on_another_symbol_of_the_group_count_in_the_scenarios():
    gw = option_gateway(scenario={"max_loss": 20_000}, defaults={"max_order_qty": 100_000,
                                                                 "max_order_value": 500_000_000})
    alone = option_gateway(scenario={"max_loss": 20_000}, defaults={"max_order_qty": 100_000,
                                                                    "max_order_value": 500_000_000})
    assert gw.check(order(symbol_id=2, qty=20, price=50_000), T0).allowed

    def passes(g, q: int, at: int) -> bool:
        """The buy of q shares passes (and is forgotten again: one order at a time)."""
        intent = order(symbol_id=1, qty=q)
        d = g.check(intent, at)
        if d.allowed:
            g.on_order_done(intent.token, at)
        else:
            assert d.check is CheckId.SCENARIO_LOSS, d
        return d.allowed

    # shares bought on top of the working calls lose in the same down scenarios
    qty = next(q for q in range(100, 20_000, 100) if not passes(gw, q, T0 + q))
    assert passes(alone, qty, T0 + qty)
