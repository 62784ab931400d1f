"""Hedger: offsets a position that quoting skew cannot work off, in the correlated instrument.

Owns: the online hedge ratio per pair (EWMA regression of the symbol's returns on the hedge's),
the hedge position built so far, the in-flight hedge order and the sustain timer. It decides
(side, qty, limit price) of an IOC that crosses the spread; the engine sends it through the risk
gateway and OMS. Handles partial fills and gateway cuts (the shortfall is sent again, however
small, until what is hedged reaches the goal it was sent for) and ratio drift (a new goal only
when the target is more than a band away from the goal worked towards: hysteresis, so a price
wobble across a lot boundary does not trade back and forth across the spread); an unwind (target
0) goes out whatever is left, as the band only damps rebalances. Must not know about wire formats
or clocks.
"""
from __future__ import annotations

from dataclasses import dataclass

from journal.catalogue import Side
from mm_core.fairvalue import EwmaBeta

__all__ = ["HedgeError", "HedgeParams", "HedgeOrder", "Hedger", "MAX_BETA"]

MAX_BETA = 100.0        # the most a configuration may allow max_beta to be


class HedgeError(ValueError):
    """A bad hedge parameter or pair."""


@dataclass(frozen=True, slots=True)
class HedgeParams:
    trigger: int = 1_000          # |position| (shares) that skew is no longer expected to work off
    keep: int = 300               # shares left unhedged for the skew to work off
    hold_ns: int = 500_000_000    # the position must stay past the trigger this long
    band: int = 100               # rebalance when |target − hedged| is more than this (>= lot)
    lot: int = 100
    cross_ticks: int = 1          # how far through the far touch the IOC limit goes
    beta_alpha: float = 0.05
    beta_prior: float = 1.0       # return beta used until the regression has data
    min_samples: int = 20
    # the largest |return beta| the ratio uses, learned or prior: the regression has no bound of
    # its own, and a runaway ratio would size hedges far past any position being hedged
    max_beta: float = 5.0

    def __post_init__(self) -> None:
        if self.min_samples < 0:
            raise HedgeError(f"min_samples must be >= 0, not {self.min_samples!r}")
        if not 0 <= self.keep < self.trigger or self.lot <= 0 or self.band <= 0:
            raise HedgeError("need 0 <= keep < trigger, lot > 0, band > 0")
        if self.band < self.lot:
            # targets are whole lots: a band under one lot trades every one-lot move of the
            # target, which a one-tick wobble of either price makes
            raise HedgeError(f"band must be >= lot ({self.lot}), not {self.band!r}")
        # each named: a ConfigError from the config document carries the message
        if not 0.0 < self.beta_alpha <= 1.0:
            raise HedgeError(f"beta_alpha must be within (0, 1], not {self.beta_alpha!r}")
        if not 0.0 < self.max_beta <= MAX_BETA:
            raise HedgeError(f"max_beta must be within (0, {MAX_BETA:g}], not {self.max_beta!r}")
        if not abs(self.beta_prior) <= self.max_beta:
            raise HedgeError(f"beta_prior must be within ±max_beta ({self.max_beta:g}), not {self.beta_prior!r}")
        for name in ("hold_ns", "cross_ticks"):
            if getattr(self, name) < 0:
                raise HedgeError(f"{name} must be >= 0, not {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class HedgeOrder:
    symbol_id: int        # the position being hedged
    hedge_id: int         # the instrument traded
    side: Side
    qty: int
    price: int


class _Pair:
    __slots__ = ("symbol_id", "hedge_id", "beta", "last_s", "last_h", "hedged", "in_flight",
                 "over_since", "active", "goal")

    def __init__(self, symbol_id: int, hedge_id: int, p: HedgeParams) -> None:
        self.symbol_id = symbol_id
        self.hedge_id = hedge_id
        self.beta = EwmaBeta(p.beta_alpha, p.beta_prior)
        self.last_s = 0.0
        self.last_h = 0.0
        self.hedged = 0           # shares of hedge_id bought (+) / sold (−) by our hedges
        self.in_flight = 0        # signed shares of the working hedge IOC, 0 when none
        self.goal = 0             # the hedge position the last IOC was sent to reach
        self.over_since = -1
        self.active = False


class Hedger:
    def __init__(self, pairs: dict[int, int], params: HedgeParams) -> None:
        for s, h in pairs.items():
            if s == h:
                raise HedgeError(f"symbol {s} cannot hedge itself")
        self.p = params
        self.pairs = {s: _Pair(s, h, params) for s, h in sorted(pairs.items())}

    def observe(self, symbol_id: int, s_mid: float, h_mid: float) -> None:
        """Sample both mids when the hedged symbol's mid changes (regression on returns)."""
        pair = self.pairs.get(symbol_id)
        if pair is None or s_mid <= 0 or h_mid <= 0:
            return
        if pair.last_s > 0 and s_mid != pair.last_s:
            pair.beta.update(h_mid / pair.last_h - 1.0, s_mid / pair.last_s - 1.0)
        if s_mid != pair.last_s:
            pair.last_s, pair.last_h = s_mid, h_mid

    def ratio(self, symbol_id: int, s_price: float, h_price: float) -> float:
        """Hedge shares per share of the symbol: return beta scaled by the price ratio."""
        pair = self.pairs[symbol_id]
        p = self.p
        beta = pair.beta.beta if pair.beta.n >= p.min_samples else pair.beta.prior
        if not -p.max_beta <= beta <= p.max_beta:       # (a NaN is not within: no ratio)
            beta = p.max_beta if beta > 0 else -p.max_beta if beta < 0 else 0.0
        return beta * s_price / h_price

    def target(self, symbol_id: int, position: int, s_price: float, h_price: float) -> int:
        """Signed hedge-instrument position wanted now (whole lots)."""
        p = self.p
        if abs(position) <= p.keep:
            return 0
        excess = position - (p.keep if position > 0 else -p.keep)
        raw = -self.ratio(symbol_id, s_price, h_price) * excess
        lots = int(abs(raw) / p.lot + 0.5)
        return lots * p.lot if raw > 0 else -lots * p.lot

    def idle(self, symbol_id: int, position: int) -> bool:
        """True when decide() could not act now: nothing hedged or in flight and the position is
        under the trigger (the sustain timer is reset). Cheap enough for every book update."""
        pair = self.pairs[symbol_id]
        if pair.active or pair.in_flight or abs(position) >= self.p.trigger:
            return False
        pair.over_since = -1
        return True

    def decide(self, symbol_id: int, position: int, now_ns: int, s_price: float, h_price: float,
               h_bid: int, h_ask: int, tick_above, tick_below) -> HedgeOrder | None:
        """The IOC to send now, if any. tick_above/tick_below step the hedge's tick table."""
        pair = self.pairs.get(symbol_id)
        p = self.p
        if pair is None or pair.in_flight:
            return None
        if abs(position) >= p.trigger:
            if pair.over_since < 0:
                pair.over_since = now_ns
            if now_ns - pair.over_since >= p.hold_ns:
                pair.active = True
        else:
            pair.over_since = -1
        if not pair.active:
            return None
        if s_price <= 0 or h_price <= 0:
            return None
        want = self.target(symbol_id, position, s_price, h_price)
        if want == 0 and pair.hedged == 0:
            pair.active = False
            pair.goal = 0
            return None
        if want and abs(want - pair.goal) <= p.band:
            # the band is hysteresis around the goal last worked towards, not around what is
            # hedged: a target wobbling inside it keeps that goal, and what a partial fill or a
            # gateway cut left short of it still goes out. An unwind is never left inside the
            # band: shares kept as a hedge with nothing to hedge would keep the pair active and
            # out of the instrument's quoting inventory
            want = pair.goal
        delta = want - pair.hedged
        if delta == 0:
            return None
        if delta > 0:
            if not h_ask:
                return None
            price = h_ask
            for _ in range(p.cross_ticks):
                price = tick_above(price)
            side, qty = Side.BUY, delta
        else:
            if not h_bid:
                return None
            price = h_bid
            for _ in range(p.cross_ticks):
                price = tick_below(price)
            side, qty = Side.SELL, -delta
        pair.in_flight = delta
        pair.goal = want
        return HedgeOrder(symbol_id, pair.hedge_id, side, qty, price)

    def on_fill(self, symbol_id: int, side: Side, qty: int) -> None:
        pair = self.pairs[symbol_id]
        signed = qty if side == Side.BUY else -qty
        pair.hedged += signed
        pair.in_flight -= signed

    def on_done(self, symbol_id: int) -> None:
        """The hedge IOC is finished (filled, canceled remainder, rejected or denied)."""
        self.pairs[symbol_id].in_flight = 0

    def hedged(self, symbol_id: int) -> int:
        return self.pairs[symbol_id].hedged

    def state_items(self):
        return [(s, p.hedged, p.in_flight, p.over_since, p.active, p.goal, p.beta.sxy, p.beta.sxx, p.beta.n,
                 p.last_s, p.last_h) for s, p in self.pairs.items()]
