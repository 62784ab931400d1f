"""Inventory: one position tracker and the quoting skew it implies.

Owns: signed positions per symbol id (shares) and the inventory models — Avellaneda–Stoikov
reservation price or the Guéant–Lehalle–Fernandez-Tapia closed form — that turn (position,
volatility) into bid/ask depths around fair value, plus size skew and one-side withdrawal near
the limit, and the cut of quote sizes to a hard position cap and to a cap on one order's
shares and value. Must not know about orders, books or wire formats. Depths are float price4
distances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from journal.catalogue import Side

__all__ = ["InventoryError", "InventoryTracker", "SkewParams", "as_depths", "glft_depths", "quote_sizes",
           "within_order_caps", "within_position_cap"]


class InventoryError(ValueError):
    """A bad inventory parameter or fill."""


class InventoryTracker:
    """Signed positions in shares; the only copy the engine, hedger and risk feed read."""

    __slots__ = ("position", "traded")

    def __init__(self, n_symbols: int) -> None:
        self.position = [0] * n_symbols
        self.traded = [0] * n_symbols      # total shares bought + sold (for turnover)

    def apply_fill(self, symbol_id: int, side: Side, qty: int) -> int:
        if qty <= 0:
            raise InventoryError(f"fill of {qty} shares")
        self.position[symbol_id] += qty if side == Side.BUY else -qty
        self.traded[symbol_id] += qty
        return self.position[symbol_id]


@dataclass(frozen=True, slots=True)
class SkewParams:
    """Model constants in tick units (depths and σ measured in ticks of the symbol's tick table,
    so one set of constants fits a $100 and a $0.85 symbol), seconds, and lots of `lot` shares."""

    model: str = "glft"        # "as" (Avellaneda–Stoikov) or "glft"
    gamma: float = 0.1         # risk aversion per (tick · lot)
    k: float = 1.0             # order-arrival decay per tick of depth
    arrival_a: float = 1.0     # A: order arrivals per second at zero depth (GLFT)
    horizon_s: float = 1.0     # T − t for Avellaneda–Stoikov (a rolling horizon)
    lot: int = 100             # shares per inventory unit q

    def __post_init__(self) -> None:
        if self.model not in ("as", "glft"):
            raise InventoryError(f"skew model {self.model!r} is not 'as' or 'glft'")
        if self.gamma <= 0 or self.k <= 0 or self.arrival_a <= 0 or self.horizon_s <= 0 or self.lot <= 0:
            raise InventoryError("skew parameters gamma, k, arrival_a, horizon_s, lot must be > 0")


def as_depths(q: float, sigma2: float, p: SkewParams) -> tuple[float, float]:
    """Avellaneda–Stoikov: r = s − qγσ²(T−t); total spread γσ²(T−t) + (2/γ)ln(1+γ/k).

    Returns (bid depth, ask depth) measured from s: bid = r − spread/2, ask = r + spread/2.
    """
    g = p.gamma
    shift = q * g * sigma2 * p.horizon_s
    half = 0.5 * g * sigma2 * p.horizon_s + math.log1p(g / p.k) / g
    return shift + half, half - shift


def glft_depths(q: float, sigma2: float, p: SkewParams, xi: float = 0.0) -> tuple[float, float]:
    """GLFT asymptotic closed form (optionally with the market-impact amplification e^{kξ/4}).

    δb = (1/γ)ln(1+γ/k) + ((2q+1)/2)·w, δa = (1/γ)ln(1+γ/k) − ((2q−1)/2)·w with
    w = sqrt(σ²γ/(2kA) · (1+γ/k)^(1+k/γ)). The ξ/2 widening itself is added by spread.widen.
    """
    g, k = p.gamma, p.k
    c = math.log1p(g / k) / g
    w = math.sqrt(sigma2 * g / (2.0 * k * p.arrival_a) * (1.0 + g / k) ** (1.0 + k / g))
    if xi:
        w *= math.exp(k * xi / 4.0)
    return c + (2.0 * q + 1.0) * 0.5 * w, c - (2.0 * q - 1.0) * 0.5 * w


def quote_sizes(position: int, limit: int, base: int, lot: int, size_skew: float,
                withdraw_at: float) -> tuple[int, int]:
    """(bid shares, ask shares): shrink the side that adds to the position, drop it near the limit.

    size_skew in [0, 1]: at |position| = limit the adding side is base·(1 − size_skew) before the
    withdrawal rule; withdraw_at in (0, 1]: |position| >= withdraw_at·limit quotes only the side
    that reduces. Sizes are whole lots and never let a full fill pass the limit.
    """
    if limit <= 0 or base <= 0 or lot <= 0:
        raise InventoryError("limit, base size and lot must be > 0")
    frac = min(abs(position) / limit, 1.0)
    adding = base * (1.0 - size_skew * frac)
    adding = int(adding // lot) * lot
    bid = ask = base
    if position > 0:
        bid = adding
    elif position < 0:
        ask = adding
    if position >= withdraw_at * limit:
        bid = 0
    if -position >= withdraw_at * limit:
        ask = 0
    bid = max(0, min(bid, limit - position))
    ask = max(0, min(ask, limit + position))
    return (bid // lot) * lot, (ask // lot) * lot


def within_position_cap(position: int, cap: int, lot: int, bid: int, ask: int) -> tuple[int, int]:
    """(bid shares, ask shares) cut to whole lots a full fill of which keeps |position| <= cap.

    The risk gateway's max_position counts the whole position, shares held as hedges for other
    symbols included, where quote_sizes sees only the quoting inventory: a quote that fits one
    may not fit the other.
    """
    if lot <= 0:
        raise InventoryError("lot must be > 0")
    bid_room = max(cap - position, 0) // lot * lot
    ask_room = max(cap + position, 0) // lot * lot
    return min(bid, bid_room), min(ask, ask_room)


def within_order_caps(qty: int, price: int, max_qty: int, max_value: int, lot: int) -> int:
    """`qty` shares cut to whole lots of one order at `price` (price4) that is at most `max_qty`
    shares and whose qty x price is at most `max_value` (price4 x shares); 0 at a price of 0 or
    less (no order to size)."""
    if lot <= 0:
        raise InventoryError("lot must be > 0")
    if price <= 0:
        return 0
    cap = min(max_qty, max_value // price)
    return min(qty, max(cap, 0) // lot * lot)
