"""Quote pricing in C (mm_core/fastquote.h): Engine._price_quote as one call, and its Python reference.

Owns: packing the engine configuration into a C struct once (QuotePricer), the one call per
requote, and price_reference, the same computation in Python from the reference functions of
ticks, inventory and spread, which the C must equal bit for bit and which runs whenever the C
reports an exception or an integer beyond what int64_t mirrors exactly (so errors and big
integers come out exactly as the Python's). engine_price_quote has Engine._price_quote's
signature. Must not keep state between calls.
"""
from __future__ import annotations

from mm_core._fastmd_cffi import ffi, lib
from mm_core.config import EngineConfig
from mm_core.inventory import (as_depths, glft_depths, quote_sizes, within_order_caps,
                               within_position_cap)
from mm_core.risk import TradingState
from mm_core.spread import quote_prices, widen
from mm_core.ticks import TickTable

__all__ = ["QuotePricer", "engine_price_quote", "price_reference", "pack_config"]

_REDUCING = TradingState.REDUCING
_TICKS = (TickTable(False), TickTable(True))


def pack_config(cfg: EngineConfig):
    """The fq_config of an engine configuration (a new C struct the caller keeps alive)."""
    skew = cfg.skew
    c = ffi.new("fq_config *")
    c.glft = skew.model == "glft"
    c.gamma, c.k, c.arrival_a, c.horizon_s, c.lot = (skew.gamma, skew.k, skew.arrival_a,
                                                     skew.horizon_s, skew.lot)
    c.max_vol_ratio, c.min_depth_ticks = cfg.max_vol_ratio, cfg.min_depth_ticks
    c.adverse_rate_weight, c.toxicity_weight = cfg.adverse_rate_weight, cfg.toxicity_weight
    c.max_depth_bps, c.quote_size, c.position_limit = (cfg.max_depth_bps, cfg.quote_size,
                                                      cfg.position_limit)
    c.size_skew, c.withdraw_at = cfg.size_skew, cfg.withdraw_at
    return c


def depth_cap(cfg: EngineConfig, fair: float, tick: int, collar_fair_bps: int) -> float:
    """The deepest a side may quote, in ticks from fair value: max_depth_bps, and inside the
    gateway's fair-value collar by one tick (prices round away from fair by up to one)."""
    bps = min(cfg.max_depth_bps, collar_fair_bps)
    return max(fair * bps / 10_000 / tick - 1.0, cfg.min_depth_ticks)


def price_reference(cfg: EngineConfig, fair: float, half_penny: bool, variance_per_s: float,
                    prior_var_s: float, position: int, held: int, toxicity: float,
                    recent_markout: float, adverse_rate: float, spread_multiplier: float,
                    size_multiplier: float, collar_fair_bps: int, max_position: int,
                    max_order_qty: int, max_order_value: int, reducing: bool, bid_blocked: bool,
                    ask_blocked: bool, best_bid: int, best_ask: int) -> tuple[int, int, int, int]:
    """Engine._price_quote on plain values, step for step (the Python fq_price must equal).
    max_order_qty and max_order_value are RiskGateway.order_caps (the value over the symbol's
    multiplier, price4 x shares)."""
    skew = cfg.skew
    ticks = _TICKS[bool(half_penny)]
    tick = ticks.tick_at(int(fair))
    sigma2 = variance_per_s
    if prior_var_s > 0:
        sigma2 = min(sigma2, prior_var_s * cfg.max_vol_ratio * cfg.max_vol_ratio)
    sigma2 /= tick * tick
    net = position - held
    q = net / skew.lot
    bd, ad = glft_depths(q, sigma2, skew) if skew.model == "glft" else as_depths(q, sigma2, skew)
    adverse_move = max(0.0, -recent_markout) / tick
    # widening scales the half-spread only, not the inventory skew: a side the skew put near or
    # through fair value moves out with the other, never further in
    half, shift = 0.5 * (bd + ad), 0.5 * (bd - ad)
    half = widen(half, adverse_move=adverse_move, adverse_rate=adverse_rate, toxicity=toxicity,
                 rate_weight=cfg.adverse_rate_weight, toxicity_weight=cfg.toxicity_weight,
                 multiplier=spread_multiplier)
    bd, ad = half + shift, half - shift
    # each side at least min_depth_ticks from fair value: the skew never quotes through it
    if cfg.min_depth_ticks > bd:
        bd = cfg.min_depth_ticks
    if cfg.min_depth_ticks > ad:
        ad = cfg.min_depth_ticks
    cap = depth_cap(cfg, fair, tick, collar_fair_bps)
    if bd > cap:
        bd = cap
    if ad > cap:
        ad = cap
    bid_px, ask_px = quote_prices(fair, bd * tick, ad * tick, ticks, best_bid, best_ask)
    base = int(cfg.quote_size * size_multiplier) // skew.lot * skew.lot
    if base <= 0:
        return 0, 0, 0, 0
    # sized to the tighter of our inventory limit and the gateway's (a quote it would deny is
    # never priced), and cut to the gateway's cap on the whole position, hedges held included
    limit = min(cfg.position_limit, max_position)
    bid_qty, ask_qty = quote_sizes(net, limit, base, skew.lot, cfg.size_skew, cfg.withdraw_at)
    bid_qty, ask_qty = within_position_cap(position, max_position, skew.lot, bid_qty, ask_qty)
    # each side one order the gateway's size and value checks take at its price (order_caps)
    bid_qty = within_order_caps(bid_qty, bid_px, max_order_qty, max_order_value, skew.lot)
    ask_qty = within_order_caps(ask_qty, ask_px, max_order_qty, max_order_value, skew.lot)
    if reducing:
        # only the side that reduces |position| quotes, and never more than |position| (a full
        # fill must not flip the sign: the gateway's reduce-only check denies anything larger)
        if position >= 0:
            bid_qty = 0
        elif bid_qty > -position:
            bid_qty = -position
        if position <= 0:
            ask_qty = 0
        elif ask_qty > position:
            ask_qty = position
    if bid_blocked:
        bid_qty = 0
    if ask_blocked:
        ask_qty = 0
    return bid_px, bid_qty, ask_px, ask_qty


class QuotePricer:
    """The configuration packed once; price() is one C call (fq_price) per quote."""

    __slots__ = ("cfg", "_c", "_out", "_price")

    @property
    def config(self):
        """The packed fq_config (the signal kernel's memo misses price with it too)."""
        return self._c

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self._c = pack_config(cfg)
        self._out = ffi.new("fq_quote *")
        self._price = lib.fq_price

    def __reduce__(self):
        """Pickled as its configuration (engine snapshots): the C struct is rebuilt on load."""
        return QuotePricer, (self.cfg,)

    def price(self, fair: float, half_penny: bool, variance_per_s: float, prior_var_s: float,
              position: int, held: int, toxicity: float, recent_markout: float,
              adverse_rate: float, spread_multiplier: float, size_multiplier: float,
              collar_fair_bps: int, max_position: int, max_order_qty: int, max_order_value: int,
              reducing: bool, bid_blocked: bool, ask_blocked: bool, best_bid: int,
              best_ask: int) -> tuple[int, int, int, int]:
        """(bid price, bid size, ask price, ask size), equal to price_reference's answer."""
        out = self._out
        try:
            rc = self._price(self._c, fair, half_penny, variance_per_s, prior_var_s, position,
                             held, toxicity, recent_markout, adverse_rate, spread_multiplier,
                             size_multiplier, collar_fair_bps, max_position, max_order_qty,
                             max_order_value, reducing, bid_blocked, ask_blocked, best_bid,
                             best_ask, out)
        except OverflowError:           # an integer argument beyond int64_t
            rc = lib.FQ_RANGE
        if rc:
            # an exception or a big integer: the reference raises it or computes it
            return price_reference(self.cfg, fair, half_penny, variance_per_s, prior_var_s,
                                   position, held, toxicity, recent_markout, adverse_rate,
                                   spread_multiplier, size_multiplier, collar_fair_bps,
                                   max_position, max_order_qty, max_order_value, reducing,
                                   bid_blocked, ask_blocked, best_bid, best_ask)
        return out.bid_px, out.bid_qty, out.ask_px, out.ask_qty


def quote_inputs(engine, symbol_id: int, fair: float, state: TradingState, guard,
                 best_bid: int, best_ask: int) -> tuple:
    """What the engine's quote for `symbol_id` depends on besides the configuration, in the
    argument order of price_reference / QuotePricer.price (after the config)."""
    risk = engine.risk
    m = engine.metrics
    vol = engine.vol[symbol_id]
    now = engine.now
    return (fair, engine.ticks[symbol_id].half_penny, vol.variance_per_s, vol.prior_var_s,
            engine.inventory.position[symbol_id], engine._hedge_held(symbol_id), guard.toxicity(),
            m.recent_markout[symbol_id], m.adverse_rate(symbol_id), risk.spread_multiplier,
            risk.size_multiplier, risk.limits.collar_fair_bps,
            risk.limits.for_symbol(symbol_id).max_position, *risk.order_caps(symbol_id),
            state is _REDUCING,
            guard.side_blocked(True, now), guard.side_blocked(False, now), best_bid, best_ask)


def engine_price_quote(engine, symbol_id: int, fair: float, state: TradingState, guard,
                       best_bid: int, best_ask: int) -> tuple[int, int, int, int]:
    """Engine._price_quote(symbol_id, fair, state, guard, best_bid, best_ask) through
    engine.quote_pricer (a QuotePricer of engine.cfg): the engine's reads, one C call."""
    return engine.quote_pricer.price(*quote_inputs(engine, symbol_id, fair, state, guard,
                                                   best_bid, best_ask))


def engine_price_reference(engine, symbol_id: int, fair: float, state: TradingState, guard,
                           best_bid: int, best_ask: int) -> tuple[int, int, int, int]:
    """The same quote by price_reference, in Python (the engine on the reference classes)."""
    return price_reference(engine.cfg, *quote_inputs(engine, symbol_id, fair, state, guard,
                                                      best_bid, best_ask))
