"""Names the engine's parts share (mm_core.engine and its engine_* mixins), bound once at import:
sides, order states and kinds, purposes and trading states as module constants, the C signal
kernel's codes, the OUCH Executed frame's layout the fill lane and the venue path read, and the
small builders and checks more than one part calls. Owns no state and decides nothing.
"""
from __future__ import annotations

import math

from mm_core.events import SendOrder
from mm_core.fastbook import ffi, lib
from mm_core.oms import OrderState
from mm_core.protocol import ouch
from mm_core.risk import OptionParams, RiskError, TradingState
from mm_core.risk.greeks import MAX_EXPIRY_DAYS
from mm_core.types import OrderIntent, OrderKind, Purpose, Side

_BUY, _SELL = Side.BUY, Side.SELL
_log2 = math.log2
_HALTED, _REDUCING = TradingState.HALTED, TradingState.REDUCING
_ACCEPTED, _PARTIAL = OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED
_PENDING_NEW, _PENDING_CANCEL = OrderState.PENDING_NEW, OrderState.PENDING_CANCEL
_ENTER, _REPLACE, _CANCEL, _MODIFY = OrderKind.ENTER, OrderKind.REPLACE, OrderKind.CANCEL, OrderKind.MODIFY
_QUOTE = Purpose.QUOTE
_SIG_FALLBACK, _SIG_NOMEM, _SIG_TRIPPED = lib.FSIG_FALLBACK, lib.FSIG_NOMEM, lib.FSIG_TRIPPED
_MEMO_N, _SENT_N = lib.FSIG_M_N, lib.FSIG_S_N
_STATE_OF = {int(state): state for state in TradingState}.__getitem__   # TradingState(v), one dict lookup
_DAY_NS = 86_400 * 1_000_000_000
# The fill lane's frame (Engine._fill_lane): SoupBinTCP sequenced data ('S') carrying an OUCH
# Executed ('E': timestamp 8, token 14, shares 4, price 4, liquidity flag 1, match 8), whole.
_EXEC_FRAME = 3 + ouch.OUTBOUND_SIZES["E"]
_EXEC_HEAD = (_EXEC_FRAME - 2).to_bytes(2, "big") + b"SE"
_EXEC_TOKEN, _EXEC_SHARES, _EXEC_PRICE, _EXEC_FLAG = slice(12, 26), slice(26, 30), slice(30, 34), 34
assert _EXEC_FRAME == 43, "OUCH Executed changed size: update the fill lane's offsets"
_NO_PRICE = bytes(4)        # an execution price of 0: impossible (Engine._on_ouch halts on it)
_SendOrderBuilder = type("_SendOrderBuilder", SendOrder.__bases__, {"__slots__": SendOrder.__slots__})


def _send_order(intent: OrderIntent, packet: bytes, decision, trading_state: int) -> SendOrder:
    """SendOrder(intent, packet, decision, trading_state) without the frozen dataclass's
    per-field setattr calls (as types.make_intent builds an intent): the guard's pulls build one
    per cancel before they are handed over."""
    o = object.__new__(_SendOrderBuilder)
    o.intent, o.packet, o.decision, o.trading_state = intent, packet, decision, trading_state
    o.__class__ = SendOrder
    return o


unpack = ffi.unpack
_NULL = ffi.NULL


class EngineError(Exception):
    """A bad engine setup (config, symbols or gateway that cannot work together)."""


def _fit(text: str, size: int) -> bytes:
    """`text` in UTF-8 cut to `size` bytes on a character boundary (a fixed-size journal field:
    a cut character would make the whole field unreadable). Operator texts are checked to fit
    before they get here (mm_core.control); this guards the engine's own texts."""
    data = text.encode()
    return data if len(data) <= size else data[:size].decode("utf-8", "ignore").encode()


def _option_params(spec, start_ns: int) -> OptionParams:
    """The gateway's valuation inputs of an [[options]] row, for a session that started at
    start_ns: the venue prices its options by Black-Scholes with no rates, per unit of underlying."""
    if not 0 < spec.expiry_days <= MAX_EXPIRY_DAYS:      # (NaN too) its ns would not be an integer
        raise RiskError(f"expiry_days {spec.expiry_days!r} outside (0, {MAX_EXPIRY_DAYS}]")
    return OptionParams(spec.id, spec.underlying, spec.reference_price,
                        start_ns + round(spec.expiry_days * _DAY_NS), spec.volatility, 0.0, spec.is_call, 1)
