"""RiskGateway.on_markets (the engine's replay hands over deferred risk feeds in one call) against
on_market called feed by feed: the same gateway afterwards, whatever the feeds hold."""
from __future__ import annotations

import random

import pytest

from mm_core.risk.gateway_state import _Group, _Symbol
from mm_core.types import Side
from tests.risk.conftest import FAIR, MS, T0, make_gateway
from tests.risk.test_feeds import _options


def _value(v) -> str:
    """A slot's value comparable across two gateways (links to a group or symbol by id)."""
    if isinstance(v, _Group):
        return f"group {v.underlying_id}"
    if isinstance(v, _Symbol):
        return f"symbol {v.symbol_id}"
    return repr(v)


def _state(gw) -> dict:
    """Everything on_market can write: every symbol's slots, the groups, the account marks."""
    symbols = {s: {name: _value(getattr(sym, name)) for name in type(sym).__slots__}
               for s, sym in sorted(gw._symbols.items())}
    groups = {u: {name: _value(getattr(g, name)) for name in type(g).__slots__}
              for u, g in sorted(gw._groups.items())}
    return {"symbols": symbols, "groups": groups,
            "marks": (gw._gross, gw._net, gw._pnl_peak, gw._cash, gw._faults, sorted(gw._stale_books)),
            "state": gw.state, "events": [repr(e) for e in gw.drain_events()]}


def _gateway():
    gw = make_gateway(feeds=((1, FAIR, FAIR), (3, FAIR, FAIR), (4, 2 * FAIR, 2 * FAIR)))
    _options(gw, underlying=1, first_option=2)
    gw.on_fill(3, Side.BUY, 300, FAIR, T0)
    gw.on_fill(4, Side.SELL, 100, 2 * FAIR, T0)
    gw.on_fill(1, Side.BUY, 50, FAIR, T0)
    return gw


@pytest.mark.parametrize("seed", range(6))
def test_on_markets_equals_on_market_one_by_one(seed):
    rng = random.Random(seed)
    one, batch = _gateway(), _gateway()
    now = T0
    for _ in range(40):
        feeds = []
        for _ in range(rng.randrange(1, 30)):
            now += rng.randrange(0, 5 * MS)
            s = rng.choice([1, 2, 3, 3, 4, 4, 5])       # 1: an underlying, 2: its option, 5: new
            r = rng.random()
            fair = (float(FAIR + rng.randrange(-9_000, 9_000)) + rng.random() if r < 0.8 else
                    FAIR + rng.randrange(-100, 100) if r < 0.9 else
                    rng.choice([float("inf"), float("nan"), -1.0, 0.0]))
            feeds.append((s, fair, rng.choice([FAIR, FAIR, 2 * FAIR, FAIR + 3]), now))
        for s, fair, ref, t in feeds:
            one.on_market(s, fair, ref, False, t)
        batch.on_markets(*map(list, zip(*feeds)))
        assert _state(batch) == _state(one)
        if rng.random() < 0.2:                          # a stale report between runs
            for gw in (one, batch):
                gw.on_market(3, float(FAIR), FAIR, True, now)
