"""Spread: realized volatility (an EWMA in time), widening for adverse selection and toxicity, tick rounding.

Owns: the per-symbol volatility estimate and the step from model depths (float price4 distances
from fair value, as the inventory model produced them) to sendable integer bid/ask prices that are
at least one tick apart, on the symbol's tick table and never marketable against the book.
Must not know about orders, risk or time sources; times arrive as integer nanoseconds.
"""
from __future__ import annotations

import math

from mm_core.ticks import TickTable

__all__ = ["SpreadError", "VolEstimator", "widen", "quote_prices"]

NS_PER_S = 1_000_000_000


class SpreadError(ValueError):
    """A spread parameter out of range."""


class VolEstimator:
    """Realized volatility of the mid in price4 per sqrt(second): an EWMA in calendar time of the
    squared mid moves per second, starting from the prior.

    Each move d after dt seconds takes the estimate a share k = 1 − e^(−rate·dt) of the way to
    d²/dt, rate = ln 2 / half-life. For a short dt, k·d²/dt tends to rate·d²: a burst of moves adds
    the variance it realized and no more (an EWMA per move of d² over one of dt took a burst's
    pace for the market's and multiplied the estimate by it). A long quiet spell before a move
    lets the estimate fall towards what that spell realized."""

    __slots__ = ("rate", "prior_var_s", "var_s", "last_mid", "last_ns", "n")

    def __init__(self, rate: float, prior_sigma: float) -> None:
        if not 0.0 < rate < math.inf or not 0.0 <= prior_sigma < math.inf:
            raise SpreadError(f"bad volatility parameters rate={rate} prior={prior_sigma}")
        self.rate = rate       # per second: ln 2 / the half-life
        self.prior_var_s = prior_sigma * prior_sigma
        self.var_s = self.prior_var_s       # price4² per second
        self.last_mid = 0.0
        self.last_ns = 0
        self.n = 0             # moves taken

    def update(self, mid: float, now_ns: int) -> bool:
        """Take the mid at now_ns; True when it moved (only then can variance_per_s change)."""
        if mid == self.last_mid:
            return False
        if self.last_mid > 0:
            d = mid - self.last_mid
            dt = max(now_ns - self.last_ns, 1) / NS_PER_S
            # the same operations in the same order as fsig_vol_update (bit-identical)
            k = -math.expm1(-dt * self.rate)
            self.var_s += k * (d * d / dt - self.var_s)
            self.n += 1
        self.last_mid = mid
        self.last_ns = now_ns
        return True

    @property
    def variance_per_s(self) -> float:
        """sigma² in price4² per second."""
        return self.var_s

    @property
    def sigma(self) -> float:
        return math.sqrt(self.variance_per_s)


def widen(depth: float, *, adverse_move: float, adverse_rate: float, toxicity: float,
          rate_weight: float, toxicity_weight: float, multiplier: float = 1.0) -> float:
    """The half-spread after widening (the caller adds the inventory skew after: scaling a skewed
    side's depth would push a side through fair value further in).

    GLFT's market-impact form adds half the expected post-fill move (adverse_move, price4) to each
    side; the measured adverse-selection rate (share of our fills with negative markout, 0..1) and
    the toxicity score (0..1) scale the half-spread up; SAFE_MODE's multiplier applies last.
    """
    return (depth * (1.0 + rate_weight * adverse_rate) * (1.0 + toxicity_weight * toxicity)
            + 0.5 * max(adverse_move, 0.0)) * multiplier


def quote_prices(fair: float, bid_depth: float, ask_depth: float, ticks: TickTable,
                 best_bid: int, best_ask: int) -> tuple[int, int]:
    """Integer (bid, ask) prices: bid rounded down, ask up, at least one tick apart, post-only.

    A side that cannot be priced (its price would fall at or below zero) comes back as 0.
    """
    raw_bid = fair - bid_depth
    raw_ask = fair + ask_depth
    bid = ticks.round_down(raw_bid) if raw_bid >= 1.0 else 0
    ask = ticks.round_up(raw_ask) if raw_ask > 0 else 0
    # Never marketable: a bid at or through the best ask (or an ask through the bid) would take.
    if bid and best_ask and bid >= best_ask:
        bid = ticks.tick_below(best_ask) if best_ask > 1 else 0
    if ask and best_bid and ask <= best_bid:
        ask = ticks.tick_above(best_bid)
    # Never inside one tick: widen the ask when both sides landed on the same or crossed prices.
    if bid and ask and ask - bid < ticks.tick_at(bid):
        ask = ticks.tick_above(bid)
    return bid, ask
