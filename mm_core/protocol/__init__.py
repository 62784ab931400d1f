"""Sans-io codecs for NASDAQ ITCH 5.0, MoldUDP64, SoupBinTCP 3.0 and OUCH 4.2: bytes in, typed
frozen dataclasses out, and back. No sockets, clocks, files or randomness; every malformed input
raises a ProtocolError subclass (errors.py) and nothing else. Message classes are frozen slotted
dataclasses; their wire layout comes from the field annotations (_layout.py).

Public API (import the modules: ``from mm_core.protocol import itch, moldudp64, soupbintcp, ouch``)

itch (messages: SystemEvent S, StockDirectory R, StockTradingAction H, RegShoRestriction Y,
      MarketParticipantPosition L, MwcbDeclineLevel V, MwcbStatus W, IpoQuotingPeriodUpdate K,
      LuldAuctionCollar J, OperationalHalt h, AddOrder A, AddOrderMpid F, OrderExecuted E,
      OrderExecutedWithPrice C, OrderCancel X, OrderDelete D, OrderReplace U, Trade P,
      CrossTrade Q, BrokenTrade B, Noii I, RetailPriceImprovement N, DirectListingCapitalRaise O;
      every one starts stock_locate, tracking_number, timestamp (ns since midnight); prices are
      price4 ints; stock is str without padding)
    encode(msg) -> bytes
    decode(buf) -> ItchMessage                              exactly one message
    decode_at(buf, offset, length) -> ItchMessage           no copy, for framed input
    decode_mold_packet(buf) -> (moldudp64.DownstreamHeader, list[ItchMessage])
    MESSAGE_CLASSES, SIZES {type letter: bytes}; each class has .TYPE (its letter)

moldudp64
    Packet(session, sequence, messages: tuple[bytes, ...]), Heartbeat(session, sequence),
    EndOfSession(session, sequence), RequestPacket(session, sequence, count),
    DownstreamHeader(session, sequence, count)
    encode(packet) -> bytes;  decode(buf) -> Packet | Heartbeat | EndOfSession
    encode_request(req) -> bytes;  decode_request(buf) -> RequestPacket
    decode_header(buf) -> DownstreamHeader
    pack_messages(session, first_sequence, messages, max_payload=1400) -> list[bytes]
    Packetiser(session, next_sequence=1, max_payload=1400)
        .add(message) -> list[bytes]   .flush() -> bytes | None   .heartbeat() -> list[bytes]
        .end_of_session() -> list[bytes]   .next_sequence   .pending
    block_spans(buf, count) -> list[(offset, length)]       message blocks of a packet
    SequenceTracker(next_expected=1, session=None)          strict in-order delivery
        .on_packet(packet) / .on_header(header) -> SequenceVerdict(first_sequence, duplicates,
        new, gap: Gap(expected, received) | None, end_of_session); verdict.select(messages)
        .request(max_count=0xFFFE, before=None) -> RequestPacket | None   .skip_to(sequence)
        .next_expected   .in_gap   .highest_announced   .end_of_session

soupbintcp
    packets: Debug(text), LoginAccepted(session, sequence), LoginRejected(reason 'A'|'S'),
    SequencedData(payload), ServerHeartbeat(), EndOfSession(), LoginRequest(username, password,
    requested_session, requested_sequence), UnsequencedData(payload), ClientHeartbeat(),
    LogoutRequest()
    encode(packet) -> bytes                                 length prefix included
    decode(frame, direction: Direction | None = None) -> SoupPacket
    Framer(max_length=4096).feed(data) -> list[bytes]      whole frames; .buffered; a zero or
        oversized length raises (latched); frames cut before it in that call are in .salvaged

ouch
    inbound: EnterOrder O, ReplaceOrder U, CancelOrder X, ModifyOrder M
    outbound: SystemEvent S, Accepted A, Replaced U, Canceled C, AiqCanceled D, Executed E,
      ExecutedWithReferencePrice G, BrokenTrade B, TradeCorrection F, PriceCorrection K,
      Rejected J, CancelPending P, CancelReject I, OrderPriorityUpdate T, OrderModified M
    encode(msg) -> bytes;  decode_inbound(buf);  decode_outbound(buf)
    (Replaced.token is the replacement, now live, token; Replaced.previous_token the old one)
    INBOUND_SIZES, OUTBOUND_SIZES, MARKET_PRICE, TIF_IOC, TIF_MARKET_HOURS, TIF_SYSTEM_HOURS

errors: ProtocolError > TruncatedMessage, TrailingBytes, UnknownMessageType, BadField
        (.message, .field, .value, .reason), FrameTooLarge, SessionMismatch
"""
from mm_core.protocol import errors, itch, moldudp64, ouch, soupbintcp
from mm_core.protocol.errors import (
    BadField, FrameTooLarge, ProtocolError, SessionMismatch, TrailingBytes, TruncatedMessage,
    UnknownMessageType,
)

__all__ = [
    "errors", "itch", "moldudp64", "ouch", "soupbintcp",
    "ProtocolError", "TruncatedMessage", "TrailingBytes", "UnknownMessageType", "BadField",
    "FrameTooLarge", "SessionMismatch",
]
