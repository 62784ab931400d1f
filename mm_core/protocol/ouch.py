"""NASDAQ OUCH 4.2 order-entry messages, both directions, and their byte codec.

Owns the layouts of inbound orders (Enter, Replace, Cancel, Modify) and outbound venue messages
(System Event ... Order Modified); both directions reuse letters (U, M), so decoding is always
direction-aware. Must not know about SoupBinTCP sessions, sockets, clocks or order state.
Layouts follow the OUCH 4.2 specification as dissected by Wireshark's packet-ouch.c.
"""
from dataclasses import dataclass
from typing import Callable, Union

from mm_core.protocol._layout import (
    U32, U64, AnyChar, Price4, Registry, alpha, alpha_text, char_of, field_group, make_encoder,
    wire_message,
)

Token = alpha(14)            # day-unique order token
# token_text(raw) -> str: a token field's bytes as the decoders read them (the token of a message
# they refused); UnicodeDecodeError when not ASCII.
token_text = alpha_text
Stock = alpha(8)
Firm = alpha(4)
Side = char_of("BSTE")      # buy, sell, sell short, sell short exempt

MARKET_PRICE = 0x7FFFFFFF    # price value meaning a market order
TIF_IOC = 0
TIF_MARKET_HOURS = 99998
TIF_SYSTEM_HOURS = 99999

_frozen = dataclass(frozen=True, slots=True)


# --- inbound: client -> NASDAQ (SoupBinTCP unsequenced data) -----------------------------------

@wire_message("O")
@_frozen
class EnterOrder:
    token: Token
    side: Side
    shares: U32
    stock: Stock
    price: Price4
    time_in_force: U32       # seconds; 0 IOC, 99998 market hours, 99999 system hours
    firm: Firm
    display: AnyChar
    capacity: AnyChar
    intermarket_sweep: AnyChar
    minimum_quantity: U32
    cross_type: AnyChar
    customer_type: AnyChar


@wire_message("U")
@_frozen
class ReplaceOrder:
    existing_token: Token
    replacement_token: Token
    shares: U32
    price: Price4
    time_in_force: U32
    display: AnyChar
    intermarket_sweep: AnyChar
    minimum_quantity: U32


@wire_message("X")
@_frozen
class CancelOrder:
    token: Token
    shares: U32              # the new intended size: 0 cancels the whole order


@wire_message("M")
@_frozen
class ModifyOrder:
    token: Token
    side: Side
    shares: U32


# --- outbound: NASDAQ -> client (SoupBinTCP sequenced data), ns-since-midnight timestamps --------

@field_group
class _About:
    """Timestamp and the token of the order concerned: every outbound message but S starts so."""

    __slots__ = ()

    timestamp: U64
    token: Token


@field_group
class _OrderEcho(_About):
    """The order as the venue holds it: shared by Accepted and Replaced."""

    __slots__ = ()

    side: Side
    shares: U32
    stock: Stock
    price: Price4
    time_in_force: U32
    firm: Firm
    display: AnyChar
    order_ref: U64
    capacity: AnyChar
    intermarket_sweep: AnyChar
    minimum_quantity: U32
    cross_type: AnyChar
    order_state: char_of("LD")    # live, dead


@field_group
class _Fill(_About):
    """An execution: shared by E, G and F."""

    __slots__ = ()

    executed_shares: U32
    execution_price: Price4
    liquidity_flag: AnyChar
    match_number: U64


@field_group
class _Decrement(_About):
    """Shares taken off an order: shared by C and D."""

    __slots__ = ()

    decrement_shares: U32
    reason: AnyChar


@wire_message("S")
@_frozen
class SystemEvent:
    timestamp: U64
    event_code: char_of("SE")     # start of day, end of day


@wire_message("A")
@_frozen
class Accepted(_OrderEcho):
    """A: the order is accepted (order_state L) or accepted and already dead (D)."""

    bbo_weight: AnyChar


@wire_message("U")
@_frozen
class Replaced(_OrderEcho):
    """token is the replacement (now live) token; previous_token the order it replaced."""

    previous_token: Token
    bbo_weight: AnyChar


@wire_message("C")
@_frozen
class Canceled(_Decrement):
    """C: shares canceled (decrement_shares), with the reason code."""


@wire_message("D")
@_frozen
class AiqCanceled(_Decrement):
    quantity_prevented: U32
    execution_price: Price4
    liquidity_flag: AnyChar


@wire_message("E")
@_frozen
class Executed(_Fill):
    """E: an execution of the order."""


@wire_message("G")
@_frozen
class ExecutedWithReferencePrice(_Fill):
    reference_price: Price4
    reference_price_type: AnyChar


@wire_message("B")
@_frozen
class BrokenTrade(_About):
    match_number: U64
    reason: AnyChar


@wire_message("F")
@_frozen
class TradeCorrection(_Fill):
    reason: AnyChar


@wire_message("K")
@_frozen
class PriceCorrection(_About):
    match_number: U64
    new_execution_price: Price4
    reason: AnyChar


@wire_message("J")
@_frozen
class Rejected(_About):
    reason: AnyChar


@wire_message("P")
@_frozen
class CancelPending(_About):
    """P: a cancel is pending (the order is in a cross)."""


@wire_message("I")
@_frozen
class CancelReject(_About):
    """I: a cancel request could not be honoured."""


@wire_message("T")
@_frozen
class OrderPriorityUpdate(_About):
    price: Price4
    display: AnyChar
    order_ref: U64


@wire_message("M")
@_frozen
class OrderModified(_About):
    side: Side
    shares: U32


INBOUND_CLASSES: tuple[type, ...] = (EnterOrder, ReplaceOrder, CancelOrder, ModifyOrder)
OUTBOUND_CLASSES: tuple[type, ...] = (
    SystemEvent, Accepted, Replaced, Canceled, AiqCanceled, Executed, ExecutedWithReferencePrice,
    BrokenTrade, TradeCorrection, PriceCorrection, Rejected, CancelPending, CancelReject,
    OrderPriorityUpdate, OrderModified,
)

InboundMessage = Union[EnterOrder, ReplaceOrder, CancelOrder, ModifyOrder]
OutboundMessage = Union[
    SystemEvent, Accepted, Replaced, Canceled, AiqCanceled, Executed, ExecutedWithReferencePrice,
    BrokenTrade, TradeCorrection, PriceCorrection, Rejected, CancelPending, CancelReject,
    OrderPriorityUpdate, OrderModified,
]

_INBOUND = Registry("OUCH 4.2 inbound", INBOUND_CLASSES)
_OUTBOUND = Registry("OUCH 4.2 outbound", OUTBOUND_CLASSES)
INBOUND_SIZES: dict[str, int] = {chr(t): c.size for t, c in _INBOUND.codecs.items()}
OUTBOUND_SIZES: dict[str, int] = {chr(t): c.size for t, c in _OUTBOUND.codecs.items()}


# encode(msg) -> bytes: the wire bytes of one OUCH message of either direction (type byte first).
encode: Callable[[Union[InboundMessage, OutboundMessage]], bytes] = make_encoder(_INBOUND, _OUTBOUND)

# decode_inbound(buf) -> InboundMessage: one client -> NASDAQ message (what the venue receives).
# decode_outbound(buf) -> OutboundMessage: one NASDAQ -> client message (what the engine receives).
# Bound directly to the registry methods: one Python call per message.
decode_inbound: Callable[[bytes | bytearray | memoryview], InboundMessage] = _INBOUND.decode
decode_outbound: Callable[[bytes | bytearray | memoryview], OutboundMessage] = _OUTBOUND.decode
# decode_outbound_from(buf, off) -> OutboundMessage: decode_outbound(buf[off:]) without the copy.
decode_outbound_from: Callable[[bytes | bytearray | memoryview, int], OutboundMessage] = _OUTBOUND.decode_from
