"""Check identities and the decision event the gateway returns for every order.

Owns the stable check ids (journaled as u16 in RISK_DECISION), their hyphenated names and
the unit each check's value/limit is expressed in. It knows nothing about how a check is computed.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from mm_core.risk.states import TradingState

__all__ = ["CheckId", "RiskDecision", "CHECK_UNITS"]


class CheckId(enum.IntEnum):
    """Stable numbers: never renumber, only append (they are in journals)."""

    OK = 0
    MISSING_IDS = 1
    INTERNAL_ERROR = 2
    JOURNAL_UNHEALTHY = 3
    CLOCK_NONCOMPLIANT = 4
    CLOCK_STALE = 5
    UNRECONCILED = 6
    UNKNOWN_OUTCOME = 7
    BOOK_STALE = 8
    MARKET_DATA_MISSING = 9
    MARKET_DATA_STALE = 10
    RESTRICTED_SYMBOL = 11
    TRADING_HALTED = 12
    REDUCE_ONLY = 13
    MSG_RATE_SUBMIT = 14
    MSG_RATE_MODIFY = 15
    MSG_RATE_CANCEL = 16      # cancels are never denied; this id only names the counter
    EXECUTION_THROTTLE = 17
    MAX_ORDER_QTY = 18
    MAX_ORDER_VALUE = 19
    COLLAR_FAIR = 20
    COLLAR_REFERENCE = 21
    COLLAR_DRIFT = 22
    DUPLICATE_ORDER = 23
    MAX_OPEN_ORDERS = 24
    POSITION_LIMIT = 25
    GROSS_NOTIONAL = 26
    NET_NOTIONAL = 27
    DELTA_LIMIT = 28
    GAMMA_LIMIT = 29
    VEGA_LIMIT = 30
    SCENARIO_LOSS = 31
    DRAWDOWN = 32
    OPTION_PARAMS_MISSING = 33
    KILLED = 34              # state changes caused by the kill switch
    OPERATOR = 35            # state changes caused by an operator command
    INVALID_ORDER = 36       # non-positive qty or price, side not B/S
    INCONSISTENT_INPUT = 37  # a feed reported something impossible (e.g. a fill of 0 shares)
    SELF_TRADE = 38          # would execute against one of our own working orders (a wash trade)
    SALE_MARKING = 39        # Reg SHO 200(g): side byte not B/S/T/E, a buy marked as a sale, a
                             # replace changing its original's marking, or a long sale (S) that the
                             # position net of every working sell does not cover
    LOCATE_REQUIRED = 40     # Reg SHO 203(b): a short sale with no locate left (nor easy to borrow)
    SHORT_SALE_PRICE_TEST = 41   # Rule 201 in force: a short sale at or below the national best bid
    LOCATE_EXCEPTION = 42    # allowed, journaled: a quote shorting without a locate under the bona
                             # fide market-making exception configured for its symbol

    @property
    def label(self) -> str:
        """The hyphenated name used in reports and logs, e.g. "collar-fair"."""
        return _LABELS[self]


_LABELS = {c: c.name.lower().replace("_", "-") for c in CheckId}

# The unit of RiskDecision.value and .limit for each check (the same for both).
CHECK_UNITS: dict[CheckId, str] = {
    CheckId.MAX_ORDER_QTY: "shares", CheckId.MAX_ORDER_VALUE: "price4 x shares",
    CheckId.COLLAR_FAIR: "price4", CheckId.COLLAR_REFERENCE: "price4", CheckId.COLLAR_DRIFT: "price4",
    CheckId.MSG_RATE_SUBMIT: "messages per window", CheckId.MSG_RATE_MODIFY: "messages per window",
    CheckId.MSG_RATE_CANCEL: "messages per window", CheckId.EXECUTION_THROTTLE: "fills per window",
    CheckId.DUPLICATE_ORDER: "ns since the same order", CheckId.MAX_OPEN_ORDERS: "orders",
    CheckId.POSITION_LIMIT: "shares", CheckId.GROSS_NOTIONAL: "price4 x shares",
    CheckId.NET_NOTIONAL: "price4 x shares", CheckId.DELTA_LIMIT: "share-equivalents",
    CheckId.GAMMA_LIMIT: "delta shares per 1% move", CheckId.VEGA_LIMIT: "price4 per vol point",
    CheckId.SCENARIO_LOSS: "price4", CheckId.DRAWDOWN: "price4",
    CheckId.MARKET_DATA_STALE: "ns of age", CheckId.CLOCK_STALE: "ns of age",
    CheckId.UNKNOWN_OUTCOME: "orders", CheckId.REDUCE_ONLY: "shares",
    CheckId.SELF_TRADE: "price4 (value: this order's price, limit: our own order's)",
    CheckId.SALE_MARKING: "shares (value: position less every working sell incl. this one)",
    CheckId.LOCATE_REQUIRED: "shares (value: located shares needed incl. this order, limit: located)",
    CheckId.LOCATE_EXCEPTION: "shares (value: located shares needed incl. this order, limit: located)",
    CheckId.SHORT_SALE_PRICE_TEST: "price4 (value: this order's price, limit: national best bid)",
}


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The gateway's verdict on one order action; a denial is this event, never an exception."""

    allowed: bool
    check: CheckId
    value: int
    limit: int
    detail: str
    state: TradingState
    limits_version: int

    @property
    def check_name(self) -> str:
        return self.check.label
