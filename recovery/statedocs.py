"""What RECON records say about the engine: an order's document, and the engine's state before
and after a reconciliation (open orders, positions, venue sequence, state hash). Shared by crash
recovery and the mid-session reconcile, so both journal the same fields. Reads the engine only."""
from __future__ import annotations

__all__ = ["order_doc", "engine_doc"]


def order_doc(engine, token: str) -> dict | None:
    """The order `token` as the engine holds it; None when it holds no such order."""
    order = engine.oms.orders.get(token)
    if order is None:
        return None
    return {"state": order.state.value, "leaves": order.leaves, "filled": order.filled,
            "price": order.price}


def engine_doc(engine) -> dict:
    open_orders, unknown = engine.oms.counts()
    return {"open_orders": open_orders, "unknown_outcome": unknown,
            "positions": {s.name: engine.inventory.position[s.id] for s in engine.symbols.symbols
                          if engine.inventory.position[s.id]},
            "venue_seq": engine.venue_seq, "state_hash": engine.state_hash()}
