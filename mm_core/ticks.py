"""Tick tables (Reg NMS Rule 612): the only place that turns a model price into a sendable price4.

Owns: the minimum increment at a price ($0.01 at or above $1.00, $0.0001 below, or a per-symbol
$0.005 tier at or above $1.00) and rounding a float model price to a valid integer price4, bids
down and asks up. Must not know about books, models or orders.
"""
from __future__ import annotations

import math

ONE_DOLLAR = 10_000          # price4 of $1.00
TICK_SUB_DOLLAR = 1          # $0.0001
TICK_PENNY = 100             # $0.01
TICK_HALF_PENNY = 50         # $0.005 tier


class TickError(ValueError):
    """A price that no tick table can represent (non-positive or not finite)."""


class TickTable:
    """The increments of one symbol; `half_penny` selects the $0.005 tier at or above $1.00."""

    __slots__ = ("half_penny", "upper_tick")

    def __init__(self, half_penny: bool = False) -> None:
        self.half_penny = bool(half_penny)
        self.upper_tick = TICK_HALF_PENNY if half_penny else TICK_PENNY

    def tick_at(self, price4: int) -> int:
        """The increment that applies to a price (at the price itself, Rule 612 style)."""
        return self.upper_tick if price4 >= ONE_DOLLAR else TICK_SUB_DOLLAR

    def is_valid(self, price4: int) -> bool:
        return price4 > 0 and price4 % self.tick_at(price4) == 0

    def round_down(self, price: float) -> int:
        """Largest valid price4 <= price (a bid never improves by rounding)."""
        if not math.isfinite(price) or price < TICK_SUB_DOLLAR:
            raise TickError(f"cannot round {price!r} to a tick")
        p = math.floor(price)
        if p >= ONE_DOLLAR:
            tick = self.upper_tick
            return p - p % tick
        return p

    def round_up(self, price: float) -> int:
        """Smallest valid price4 >= price (an ask never improves by rounding)."""
        if not math.isfinite(price) or price <= 0:
            raise TickError(f"cannot round {price!r} to a tick")
        p = math.ceil(price)
        if p > ONE_DOLLAR:
            tick = self.upper_tick
            rem = p % tick
            return p if rem == 0 else p + tick - rem
        return p

    def tick_above(self, price4: int) -> int:
        """The next valid price strictly above a valid price."""
        return price4 + self.tick_at(price4)

    def tick_below(self, price4: int) -> int:
        """The next valid price strictly below a valid price (the tick that applies below it)."""
        below = price4 - 1
        if below < TICK_SUB_DOLLAR:
            raise TickError(f"no valid price below {price4}")
        return self.round_down(below)
