"""RiskGateway.order_room: the most shares one new order may carry and pass the size, value and
position checks. An order of exactly that size is allowed; one share more is denied by the check
that binds, in every situation of the table (the engine cuts its hedges to it)."""
from __future__ import annotations

import pytest

from mm_core.risk import CheckId
from mm_core.types import Side
from tests.risk.conftest import FAIR, T0, make_gateway, order

BUY, SELL = Side.BUY, Side.SELL
BIG = {"max_order_qty": 1_000_000, "max_order_value": 10**9, "max_position": 50_000}
# the account-wide checks out of the way: the positions set here are not bought, so they value
# as a drawdown and large notionals
WIDE = {"max_gross_notional": 10**12, "max_net_notional": 10**12, "max_drawdown": 10**12}


@pytest.mark.parametrize("defaults, safe, position, working, side, price, room, binding", [
    ({}, False, 0, 0, BUY, FAIR, 10_000, CheckId.MAX_ORDER_QTY),
    ({}, True, 0, 0, SELL, FAIR, 5_000, CheckId.MAX_ORDER_QTY),            # safe mode's 0.5
    ({"max_order_value": 500_000}, False, 0, 0, BUY, FAIR, 5_000, CheckId.MAX_ORDER_VALUE),
    ({"max_order_value": 500_000}, False, 0, 0, BUY, FAIR - 300, 5_001, CheckId.MAX_ORDER_VALUE),
    ({"max_position": 8_000}, False, 1_000, 3_000, BUY, FAIR, 4_000, CheckId.POSITION_LIMIT),
    ({"max_position": 8_000}, False, 1_000, 0, SELL, FAIR, 9_000, CheckId.POSITION_LIMIT),
    # past the cap on the other side: a buy may reduce, then go on to the cap
    (BIG, False, -60_000, 0, BUY, FAIR, 110_000, CheckId.POSITION_LIMIT),
    (BIG, False, 60_000, 0, SELL, FAIR, 110_000, CheckId.POSITION_LIMIT),
])
def test_an_order_of_the_room_passes_and_one_share_more_is_denied(defaults, safe, position, working,
                                                                   side, price, room, binding):
    gw = make_gateway(defaults=defaults, account=WIDE)
    if safe:
        gw.set_safe_mode(True, "ops", "drill", T0)
    gw.on_position(1, position, T0)
    if working:
        assert gw.check(order(side=side, qty=working, price=price - 1), T0).allowed
    assert gw.order_room(1, side is BUY, price) == room
    mark = None if side is BUY else "T"
    denied = gw.check(order(side=side, qty=room + 1, price=price), T0)
    assert not denied.allowed and denied.check is binding, denied
    assert gw.check(order(side=side, qty=room, price=price), T0, mark).allowed


def test_no_room_is_zero_never_negative():
    gw = make_gateway(defaults={"max_position": 1_000})
    gw.on_position(1, 1_500, T0)
    assert gw.order_room(1, True, FAIR) == 0
    assert gw.order_room(9, True, FAIR) == 0            # a symbol the gateway does not know
    assert gw.order_room(1, False, 0) == 0
