"""Widening (adverse selection, toxicity, SAFE_MODE's spread multiplier) moves both quotes away
from fair value, never a skewed side further through it, and each side stays at least
min_depth_ticks from fair value: in the C pricer and its Python reference alike."""
import dataclasses

import pytest

from mm_core.config import EngineConfig
from mm_core.quotepricer import QuotePricer, price_reference

FAIR = 505_000.0                         # a $50.50 symbol on the half-penny tier: tick 50
TICK = 50
VAR = (0.80 * 505_000 / (252 * 6.5 * 3600) ** 0.5) ** 2
CALM = dict(fair=FAIR, half_penny=True, variance_per_s=VAR, prior_var_s=VAR, position=0, held=0,
            toxicity=0.0, recent_markout=0.0, adverse_rate=0.0, spread_multiplier=1.0,
            size_multiplier=1.0, collar_fair_bps=200, max_position=20_000, max_order_qty=5_000,
            max_order_value=5_000_000_000, reducing=False,
            bid_blocked=False, ask_blocked=False, best_bid=500_000,
            best_ask=510_000)                                        # post-only does not bind
WIDENED = [dict(toxicity=1.0), dict(toxicity=1.0, adverse_rate=1.0), dict(spread_multiplier=2.0),
           dict(recent_markout=-200.0), dict(toxicity=0.5, spread_multiplier=2.0)]


def both(cfg, **kw):
    """The quote from price_reference, checked equal to the C pricer's."""
    args = dict(CALM, **kw)
    want = price_reference(cfg, **args)
    assert QuotePricer(cfg).price(**args) == want
    return want


@pytest.mark.parametrize("min_depth", [0.5, 2.0])
@pytest.mark.parametrize("model", ["glft", "as"])
@pytest.mark.parametrize("position", [500, -500, 1_500, -1_500, 0])
def test_widening_moves_each_side_out_and_never_through_fair(position, model, min_depth):
    base = EngineConfig()
    cfg = dataclasses.replace(base, min_depth_ticks=min_depth,
                              skew=dataclasses.replace(base.skew, model=model))
    bid, _, ask, _ = calm = both(cfg, position=position)
    for kw in WIDENED:
        w_bid, _, w_ask, _ = both(cfg, position=position, **kw)
        assert w_bid <= bid and w_ask >= ask, (kw, calm)
        assert FAIR - w_bid >= min_depth * TICK and w_ask - FAIR >= min_depth * TICK, kw
    assert FAIR - bid >= min_depth * TICK and ask - FAIR >= min_depth * TICK


def test_the_skew_survives_widening():
    """Long: the ask stays the nearer side (the skew sells down the position) when widened."""
    cfg = EngineConfig()
    for kw in [{}] + WIDENED:
        bid, _, ask, _ = both(cfg, position=500, **kw)
        assert FAIR - bid > ask - FAIR, kw
