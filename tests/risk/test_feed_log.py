"""RiskGateway.on_feed_log (the engine's replay hands over its deferred risk feeds as C arrays, the
common case applied in one C call, mm_core/fastfeed.h) against on_market called feed by feed: the
same gateway afterwards, whatever the log holds — unknown and stale symbols, an option group's
underlying and option, prices that are not finite or positive, references that are not positive
integers, and marks past int64_t that only Python's integers hold."""
from __future__ import annotations

import random

import pytest

from mm_core._fastmd_cffi import ffi
from mm_core.risk import gateway as gateway_module
from mm_core.types import Side
from tests.risk.conftest import FAIR, MS, T0
from tests.risk.test_on_markets import _gateway, _state


def _log(feeds):
    """The C arrays of a log of (symbol, fair, time) feeds."""
    return (ffi.new("uint32_t[]", [s for s, _, _ in feeds]), ffi.new("double[]", [f for _, f, _ in feeds]),
            ffi.new("int64_t[]", [t for _, _, t in feeds]))


def _feed_both(one, log, feeds, references) -> None:
    for s, fair, t in feeds:
        one.on_market(s, fair, references[s], False, t)
    log.on_feed_log(len(feeds), *_log(feeds), references)


def _random_fair(rng) -> float:
    r = rng.random()
    if r < 0.85:
        return float(FAIR + rng.randrange(-9_000, 9_000)) + rng.choice([0.0, 0.5, rng.random()])
    if r < 0.9:
        return float(FAIR + rng.randrange(-100, 100)) + 0.5        # ties: half to even
    return rng.choice([float("inf"), float("nan"), -1.0, 0.0, 2.0 ** 52 + 2.0])   # the C leaves to Python


@pytest.mark.parametrize("seed", range(8))
def test_feed_log_equals_on_market_one_by_one(seed):
    rng = random.Random(seed)
    one, log = _gateway(), _gateway()
    python = []                                         # the feeds on_market took in `log`
    log.on_market = lambda *a: python.append(a) or type(log).on_market(log, *a)
    # by symbol: 1 an underlying, 2 its option, 3 and 4 held, 5 new, 6 a float reference, 7 none
    references = [FAIR, FAIR, FAIR, FAIR, 2 * FAIR, FAIR + 3, float(FAIR), 0]
    now, total = T0, 0
    for _ in range(60):
        feeds = []
        for _ in range(rng.randrange(1, 40)):
            now += rng.randrange(0, 40 * MS)
            feeds.append((rng.choice([1, 1, 2, 3, 3, 4, 4, 5, 6, 7]), _random_fair(rng), now))
        total += len(feeds)
        _feed_both(one, log, feeds, references)
        assert _state(log) == _state(one)
        r, filled = rng.random(), rng.choice([1, 3, 4])
        for gw in (one, log):
            if r < 0.15:                                # a stale report between logs
                gw.on_market(3, float(FAIR), FAIR, True, now)
            elif r < 0.3:                               # a fill moves a position and the cash
                gw.on_fill(filled, Side.BUY, 100, FAIR, now)
    assert _state(log) == _state(one)
    assert 0 < len(python) < 0.75 * total              # many feeds were C's, some on_market's


def test_marks_past_int64_go_through_python():
    one, log = _gateway(), _gateway()
    references = [FAIR] * 5
    for gw in (one, log):
        gw.on_fill(3, Side.BUY, 10 ** 14, FAIR, T0)     # notional and cash past 2^63
    feeds = [(3, FAIR + 0.25 * k, T0 + k * MS) for k in range(20)] + [(4, 2.0 * FAIR, T0 + 30 * MS)]
    _feed_both(one, log, feeds, references)
    assert _state(log) == _state(one)
    assert abs(log._cash) > 2 ** 63


def test_a_due_revaluation_follows_its_feed(monkeypatch):
    """The underlying's feeds revalue its group whenever it moved 1 bp or a second passed: the C
    applies such a feed and stops, the group is revalued at its time, the C goes on; the same
    revaluations, at the same feeds, as on_market feed by feed."""
    one, log = _gateway(), _gateway()
    refreshed = []
    refresh = gateway_module.RiskGateway._refresh_group
    monkeypatch.setattr(gateway_module.RiskGateway, "_refresh_group", lambda self, group, at: (
        refreshed.append((self is log, at)), refresh(self, group, at)))
    references = [FAIR] * 5
    feeds = [(1, FAIR + 10.0 * k, T0 + k * MS) for k in range(40)]     # 100 price4 = 1 bp: every 10th
    for s, fair, t in feeds:
        one.on_market(s, fair, FAIR, False, t)
    log.on_feed_log(len(feeds), *_log(feeds), references)
    assert _state(log) == _state(one)
    by_one = [at for mine, at in refreshed if not mine]
    assert [at for mine, at in refreshed if mine] == by_one and 2 <= len(by_one) < len(feeds)
