"""Value types shared by the engine, the OMS and the risk gateway.

Owns the shape of an order intent (what the engine wants sent) before it is encoded as OUCH.
Frozen dataclasses, integers for prices (price4: 4 implied decimals) and no I/O.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from journal.catalogue import Side

__all__ = ["Side", "OrderKind", "Purpose", "OrderIntent", "make_intent"]


class OrderKind(enum.Enum):
    ENTER = "O"
    REPLACE = "U"
    CANCEL = "X"
    MODIFY = "M"


class Purpose(enum.Enum):
    QUOTE = "quote"
    HEDGE = "hedge"
    GUARD_CANCEL = "guard-cancel"   # quote guard pulling quotes on toxic flow
    KILL = "kill"                    # kill switch
    RECOVERY = "recovery"            # reconciliation cancelling unknown orders


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One order action the engine wants to send; prices are price4 integers."""

    kind: OrderKind
    token: str                 # day-unique OUCH order token (<= 14 chars)
    symbol_id: int
    side: Side
    price: int
    qty: int                   # for CANCEL: the new intended size (0 = cancel all)
    tif: int = 99999           # OUCH TIF seconds; 0 = IOC
    algo_id: int = 0
    desk_id: int = 0
    trader_id: int = 0
    client_id: int = 0
    orig_token: str = ""       # REPLACE: the order being replaced
    purpose: Purpose = Purpose.QUOTE

    @property
    def is_cancel(self) -> bool:
        return self.kind is OrderKind.CANCEL or (self.kind is OrderKind.MODIFY and self.qty == 0)


# OrderIntent's frozen __init__ sets each of its 13 fields through object.__setattr__; on the
# quoting hot path the fields are stored on a builder of the same slot layout instead, which is
# then retyped (the codecs in protocol/_layout build their frozen messages the same way).
_IntentBuilder = type("_OrderIntentBuilder", OrderIntent.__bases__, {"__slots__": OrderIntent.__slots__})
_new = object.__new__


def make_intent(kind: OrderKind, token: str, symbol_id: int, side: Side, price: int, qty: int,
                ids: tuple[int, int, int, int], orig_token: str = "", tif: int = 99999,
                purpose: Purpose = Purpose.QUOTE) -> OrderIntent:
    """OrderIntent(kind, token, symbol_id, side, price, qty, tif, *ids, orig_token, purpose)."""
    o = _new(_IntentBuilder)
    o.kind, o.token, o.symbol_id, o.side, o.price, o.qty, o.tif = kind, token, symbol_id, side, price, qty, tif
    o.algo_id, o.desk_id, o.trader_id, o.client_id = ids
    o.orig_token, o.purpose = orig_token, purpose
    o.__class__ = OrderIntent
    return o
