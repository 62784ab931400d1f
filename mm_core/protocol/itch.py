"""NASDAQ TotalView-ITCH 5.0 messages: typed frozen dataclasses and their byte codec.

Owns the field layout of every ITCH 5.0 message (big-endian, 6-byte ns-since-midnight timestamps,
price4 integers, stock text without its padding) and the decode of a whole MoldUDP64 packet.
Must not know about sockets, clocks, books or how a message is used.
Layouts were checked against itchfeed's formats and the sizes in the NASDAQ specification.
"""
from dataclasses import dataclass
from typing import Any, Callable, Union

from mm_core.protocol import moldudp64
from mm_core.protocol._layout import (
    U16, U32, U64, AnyChar, Price4, Registry, Timestamp48, alpha, char_of, field_group, make_encoder,
    wire_message,
)

Stock = alpha(8)
Alpha2 = alpha(2)
Alpha4 = alpha(4)
Side = char_of("BS")

_frozen = dataclass(frozen=True, slots=True)


@field_group
class _Header:
    """The fields every ITCH 5.0 message starts with."""

    __slots__ = ()

    stock_locate: U16
    tracking_number: U16
    timestamp: Timestamp48          # nanoseconds since midnight


@field_group
class _OrderAdded(_Header):
    """Order reference, side, size, stock and price: shared by A, F and P."""

    __slots__ = ()

    order_ref: U64
    side: Side
    shares: U32
    stock: Stock
    price: Price4


@field_group
class _OrderExecution(_Header):
    """An execution against a resting order: shared by E and C."""

    __slots__ = ()

    order_ref: U64
    executed_shares: U32
    match_number: U64


@wire_message("S")
@_frozen
class SystemEvent(_Header):
    event_code: char_of("OSQMEC")   # start msgs/system/market, end market/system/msgs


@wire_message("R")
@_frozen
class StockDirectory(_Header):
    stock: Stock
    market_category: AnyChar
    financial_status: AnyChar
    round_lot_size: U32
    round_lots_only: AnyChar
    issue_classification: AnyChar
    issue_subtype: Alpha2
    authenticity: AnyChar
    short_sale_threshold: AnyChar
    ipo_flag: AnyChar
    luld_reference_price_tier: AnyChar
    etp_flag: AnyChar
    etp_leverage_factor: U32
    inverse_indicator: AnyChar


@wire_message("H")
@_frozen
class StockTradingAction(_Header):
    stock: Stock
    trading_state: AnyChar          # H halted, P paused, Q quotation only, T trading
    reserved: AnyChar
    reason: Alpha4


@wire_message("Y")
@_frozen
class RegShoRestriction(_Header):
    stock: Stock
    reg_sho_action: AnyChar


@wire_message("L")
@_frozen
class MarketParticipantPosition(_Header):
    mpid: Alpha4
    stock: Stock
    primary_market_maker: AnyChar
    market_maker_mode: AnyChar
    market_participant_state: AnyChar


@wire_message("V")
@_frozen
class MwcbDeclineLevel(_Header):
    level_1: U64                    # price with 8 implied decimals
    level_2: U64
    level_3: U64


@wire_message("W")
@_frozen
class MwcbStatus(_Header):
    breached_level: AnyChar


@wire_message("K")
@_frozen
class IpoQuotingPeriodUpdate(_Header):
    stock: Stock
    ipo_quotation_release_time: U32     # seconds since midnight
    ipo_quotation_release_qualifier: AnyChar
    ipo_price: Price4


@wire_message("J")
@_frozen
class LuldAuctionCollar(_Header):
    stock: Stock
    reference_price: Price4
    upper_price: Price4
    lower_price: Price4
    extension: U32


@wire_message("h")
@_frozen
class OperationalHalt(_Header):
    stock: Stock
    market_code: AnyChar
    operational_halt_action: AnyChar


@wire_message("A")
@_frozen
class AddOrder(_OrderAdded):
    """A: a new displayed order, without MPID attribution."""


@wire_message("F")
@_frozen
class AddOrderMpid(_OrderAdded):
    attribution: Alpha4


@wire_message("E")
@_frozen
class OrderExecuted(_OrderExecution):
    """E: a resting order executed at its displayed price."""


@wire_message("C")
@_frozen
class OrderExecutedWithPrice(_OrderExecution):
    printable: char_of("YN")
    execution_price: Price4


@wire_message("X")
@_frozen
class OrderCancel(_Header):
    order_ref: U64
    canceled_shares: U32


@wire_message("D")
@_frozen
class OrderDelete(_Header):
    order_ref: U64


@wire_message("U")
@_frozen
class OrderReplace(_Header):
    original_order_ref: U64
    new_order_ref: U64
    shares: U32
    price: Price4


@wire_message("P")
@_frozen
class Trade(_OrderAdded):
    match_number: U64


@wire_message("Q")
@_frozen
class CrossTrade(_Header):
    shares: U64
    stock: Stock
    cross_price: Price4
    match_number: U64
    cross_type: AnyChar


@wire_message("B")
@_frozen
class BrokenTrade(_Header):
    match_number: U64


@wire_message("I")
@_frozen
class Noii(_Header):
    paired_shares: U64
    imbalance_shares: U64
    imbalance_direction: AnyChar
    stock: Stock
    far_price: Price4
    near_price: Price4
    current_reference_price: Price4
    cross_type: AnyChar
    price_variation_indicator: AnyChar


@wire_message("N")
@_frozen
class RetailPriceImprovement(_Header):
    stock: Stock
    interest_flag: AnyChar


@wire_message("O")
@_frozen
class DirectListingCapitalRaise(_Header):
    stock: Stock
    open_eligibility_status: AnyChar
    minimum_allowable_price: Price4
    maximum_allowable_price: Price4
    near_execution_price: Price4
    near_execution_time: U64
    lower_price_range_collar: Price4
    upper_price_range_collar: Price4


MESSAGE_CLASSES: tuple[type, ...] = (
    SystemEvent, StockDirectory, StockTradingAction, RegShoRestriction, MarketParticipantPosition,
    MwcbDeclineLevel, MwcbStatus, IpoQuotingPeriodUpdate, LuldAuctionCollar, OperationalHalt,
    AddOrder, AddOrderMpid, OrderExecuted, OrderExecutedWithPrice, OrderCancel, OrderDelete,
    OrderReplace, Trade, CrossTrade, BrokenTrade, Noii, RetailPriceImprovement,
    DirectListingCapitalRaise,
)

ItchMessage = Union[
    SystemEvent, StockDirectory, StockTradingAction, RegShoRestriction, MarketParticipantPosition,
    MwcbDeclineLevel, MwcbStatus, IpoQuotingPeriodUpdate, LuldAuctionCollar, OperationalHalt,
    AddOrder, AddOrderMpid, OrderExecuted, OrderExecutedWithPrice, OrderCancel, OrderDelete,
    OrderReplace, Trade, CrossTrade, BrokenTrade, Noii, RetailPriceImprovement,
    DirectListingCapitalRaise,
]

_REGISTRY = Registry("ITCH 5.0", MESSAGE_CLASSES)
SIZES: dict[str, int] = {chr(t): c.size for t, c in _REGISTRY.codecs.items()}


# encode(msg) -> bytes: the wire bytes of one ITCH message (type byte first, no length prefix);
# a bad field raises BadField naming it.
encode: Callable[[ItchMessage], bytes] = make_encoder(_REGISTRY)

# decode(buf) -> ItchMessage: exactly one message, the buffer holding it and nothing else.
# Bound directly to the registry method: one Python call per message on the hot path.
decode: Callable[[bytes | bytearray | memoryview], ItchMessage] = _REGISTRY.decode


def decode_at(buf: Any, offset: int, length: int) -> ItchMessage:
    """Decode the message at buf[offset:offset+length] without copying (framed input)."""
    return _REGISTRY.decode_at(buf, offset, length)  # type: ignore[no-any-return]


def decode_mold_packet(buf: bytes | bytearray | memoryview
                       ) -> tuple[moldudp64.DownstreamHeader, list[ItchMessage]]:
    """Decode a MoldUDP64 downstream packet and every ITCH message in it, in sequence order.

    Message i has sequence number header.sequence + i. Heartbeats and end-of-session packets
    return an empty list; malformed framing or messages raise a ProtocolError.
    """
    header = moldudp64.decode_header(buf)
    if header.count in (0, moldudp64.END_OF_SESSION_COUNT):
        moldudp64.expect_end(buf, moldudp64.HEADER_SIZE)
        return header, []
    fast = _REGISTRY.fast
    out: list[ItchMessage] = []
    append = out.append
    end = len(buf)
    off = moldudp64.HEADER_SIZE
    try:
        # Hot path: walk the blocks and decode in one pass, trusting the bytes; any anomaly
        # (IndexError, KeyError, ValueError, size mismatch) hands over to the checked path.
        for _ in range(header.count):
            length = buf[off] << 8 | buf[off + 1]
            off += 2
            size, decode_one = fast[buf[off]]
            if size != length or off + size > end:
                raise LookupError
            append(decode_one(buf, off))
            off += size
    except (LookupError, ValueError):
        checked = _REGISTRY.decode_at
        return header, [checked(buf, o, n) for o, n in moldudp64.block_spans(buf, header.count)]
    moldudp64.expect_end(buf, off)
    return header, out
