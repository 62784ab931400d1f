"""The kill switch order (RTS 6 Art. 12): which resting orders to cancel, who asked and why.

Owns the scope vocabulary and the matching rule. It does not cancel anything: the engine's OMS
turns a KillOrder into cancels of every matching resting order and journals a KILL record. A kill
of everything latches the gateway HALTED; a scoped one (symbol, algo, desk, client) is kept by the
gateway, which refuses new orders in that scope until an operator enables that scope again.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from mm_core.risk.errors import RiskError

__all__ = ["KillScope", "KillOrder", "parse_scope", "scope_matches"]


class KillScope(enum.IntEnum):
    """Journaled as u1 in the KILL record: 0 all, 1 symbol, 2 algo, 3 desk, 4 client."""

    ALL = 0
    SYMBOL = 1
    ALGO = 2
    DESK = 3
    CLIENT = 4


def parse_scope(scope: "KillScope | str | int") -> KillScope:
    """Accepts a KillScope, its name in any case ("symbol") or its journal number."""
    if isinstance(scope, KillScope):
        return scope
    if isinstance(scope, str):
        try:
            return KillScope[scope.strip().upper()]
        except KeyError:
            raise RiskError(f"unknown kill scope {scope!r}") from None
    if isinstance(scope, int) and not isinstance(scope, bool):
        try:
            return KillScope(scope)
        except ValueError:
            raise RiskError(f"unknown kill scope {scope!r}") from None
    raise RiskError(f"unknown kill scope {scope!r}")


def scope_matches(scope: int, scope_id: int, symbol_id: int, algo_id: int, desk_id: int, client_id: int) -> bool:
    """True when an order with these ids falls under a kill of (scope, scope_id)."""
    if scope == KillScope.ALL:
        return True
    if scope == KillScope.SYMBOL:
        return symbol_id == scope_id
    if scope == KillScope.ALGO:
        return algo_id == scope_id
    if scope == KillScope.DESK:
        return desk_id == scope_id
    return client_id == scope_id


@dataclass(frozen=True, slots=True)
class KillOrder:
    scope: KillScope
    scope_id: int
    requested_by: str
    reason: str
    now_ns: int

    def matches(self, symbol_id: int, algo_id: int, desk_id: int, client_id: int) -> bool:
        """True when a resting order with these ids falls under this kill."""
        return scope_matches(self.scope, self.scope_id, symbol_id, algo_id, desk_id, client_id)

    def matches_order(self, order) -> bool:
        """The same rule for anything with symbol_id/algo_id/desk_id/client_id (OrderIntent)."""
        return self.matches(order.symbol_id, order.algo_id, order.desk_id, order.client_id)
