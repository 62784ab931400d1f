"""OUCH 4.2: both directions from one hand-written table (encode and decode), direction-aware
decoding of the shared letters, error cases, round-trip properties, fuzzing, and OUCH carried
over SoupBinTCP through the framer."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.protocol import ouch, soupbintcp
from mm_core.protocol.errors import (
    BadField, TrailingBytes, TruncatedMessage, UnknownMessageType,
)
from tests.mm_core.protocol.strategies import (
    ascii_field, assert_encode_names_bad_field, hex_bytes, message_strategy, only_protocol_errors,
)

T1, T2 = ascii_field("T1", 14), ascii_field("T2", 14)
AAPL, FIRM = ascii_field("AAPL", 8), ascii_field("FIRM", 4)
TS = "0102030405060708"
OTS = 0x0102030405060708
MATCH = 0x1112131415161718

INBOUND = [
    (ouch.EnterOrder("T1", "B", 100, "AAPL", 2_999_400, 99_999, "FIRM", "Y", "P", "N", 0, "N", "R"),
     hex_bytes("4f", T1, "42", "00000064", AAPL, "002dc468", "0001869f", FIRM, "59", "50", "4e",
               "00000000", "4e", "52")),
    (ouch.EnterOrder("ABCDEFGHIJKLMN", "T", 1, "ZVZZT", ouch.MARKET_PRICE, ouch.TIF_IOC, "", "N",
                     "A", "Y", 1, "O", "N"),
     hex_bytes("4f", ascii_field("ABCDEFGHIJKLMN", 14), "54", "00000001", ascii_field("ZVZZT", 8),
               "7fffffff", "00000000", "20202020", "4e", "41", "59", "00000001", "4f", "4e")),
    (ouch.ReplaceOrder("T1", "T2", 200, 2_999_500, 0, "Y", "N", 100),
     hex_bytes("55", T1, T2, "000000c8", "002dc4cc", "00000000", "59", "4e", "00000064")),
    (ouch.CancelOrder("T1", 0), hex_bytes("58", T1, "00000000")),
    (ouch.ModifyOrder("T1", "S", 50), hex_bytes("4d", T1, "53", "00000032")),
]

OUTBOUND = [
    (ouch.SystemEvent(OTS, "S"), hex_bytes("53", TS, "53")),
    (ouch.Accepted(OTS, "T1", "B", 100, "AAPL", 2_999_400, 99_999, "FIRM", "Y", 0xABCDEF, "P", "N",
                   0, "N", "L", "0"),
     hex_bytes("41", TS, T1, "42", "00000064", AAPL, "002dc468", "0001869f", FIRM, "59",
               "0000000000abcdef", "50", "4e", "00000000", "4e", "4c", "30")),
    (ouch.Replaced(OTS, "T2", "B", 200, "AAPL", 2_999_500, 0, "FIRM", "Y", 0xABCDF0, "P", "N", 100,
                   "N", "L", "T1", "1"),
     hex_bytes("55", TS, T2, "42", "000000c8", AAPL, "002dc4cc", "00000000", FIRM, "59",
               "0000000000abcdf0", "50", "4e", "00000064", "4e", "4c", T1, "31")),
    (ouch.Canceled(OTS, "T1", 100, "U"), hex_bytes("43", TS, T1, "00000064", "55")),
    (ouch.AiqCanceled(OTS, "T1", 100, "Q", 50, 2_999_400, "A"),
     hex_bytes("44", TS, T1, "00000064", "51", "00000032", "002dc468", "41")),
    (ouch.Executed(OTS, "T1", 50, 2_999_400, "A", MATCH),
     hex_bytes("45", TS, T1, "00000032", "002dc468", "41", "1112131415161718")),
    (ouch.ExecutedWithReferencePrice(OTS, "T1", 50, 2_999_400, "R", MATCH, 2_999_500, "Q"),
     hex_bytes("47", TS, T1, "00000032", "002dc468", "52", "1112131415161718", "002dc4cc", "51")),
    (ouch.BrokenTrade(OTS, "T1", MATCH, "E"), hex_bytes("42", TS, T1, "1112131415161718", "45")),
    (ouch.TradeCorrection(OTS, "T1", 50, 2_999_400, "A", MATCH, "N"),
     hex_bytes("46", TS, T1, "00000032", "002dc468", "41", "1112131415161718", "4e")),
    (ouch.PriceCorrection(OTS, "T1", MATCH, 2_999_500, "N"),
     hex_bytes("4b", TS, T1, "1112131415161718", "002dc4cc", "4e")),
    (ouch.Rejected(OTS, "T1", "X"), hex_bytes("4a", TS, T1, "58")),
    (ouch.CancelPending(OTS, "T1"), hex_bytes("50", TS, T1)),
    (ouch.CancelReject(OTS, "T1"), hex_bytes("49", TS, T1)),
    (ouch.OrderPriorityUpdate(OTS, "T1", 2_999_400, "Y", 0xABCDEF),
     hex_bytes("54", TS, T1, "002dc468", "59", "0000000000abcdef")),
    (ouch.OrderModified(OTS, "T1", "S", 50), hex_bytes("4d", TS, T1, "53", "00000032")),
]

# Sizes from the OUCH 4.2 specification (type byte included).
SPEC_IN = {"O": 49, "U": 47, "X": 19, "M": 20}
SPEC_OUT = {"S": 10, "A": 66, "U": 80, "C": 28, "D": 37, "E": 40, "G": 45, "B": 32, "F": 41,
            "K": 36, "J": 24, "P": 23, "I": 23, "T": 36, "M": 28}


def ids(table: list) -> list[str]:
    return [f"{type(m).__name__}-{i}" for i, (m, _) in enumerate(table)]


def test_tables_cover_every_type_with_spec_sizes() -> None:
    assert {type(m) for m, _ in INBOUND} == set(ouch.INBOUND_CLASSES)
    assert {type(m) for m, _ in OUTBOUND} == set(ouch.OUTBOUND_CLASSES)
    assert ouch.INBOUND_SIZES == SPEC_IN and ouch.OUTBOUND_SIZES == SPEC_OUT


@pytest.mark.parametrize("msg,wire", INBOUND, ids=ids(INBOUND))
def test_inbound_table(msg: ouch.InboundMessage, wire: bytes) -> None:
    assert ouch.encode(msg) == wire
    assert ouch.decode_inbound(wire) == msg


@pytest.mark.parametrize("msg,wire", OUTBOUND, ids=ids(OUTBOUND))
def test_outbound_table(msg: ouch.OutboundMessage, wire: bytes) -> None:
    assert ouch.encode(msg) == wire
    assert ouch.decode_outbound(wire) == msg


@pytest.mark.parametrize("msg,wire", INBOUND + OUTBOUND, ids=ids(INBOUND + OUTBOUND))
def test_truncation_and_trailing_bytes(msg: object, wire: bytes) -> None:
    decode = ouch.decode_inbound if type(msg) in ouch.INBOUND_CLASSES else ouch.decode_outbound
    for cut in range(len(wire)):
        with pytest.raises(TruncatedMessage):
            decode(wire[:cut])
    with pytest.raises(TrailingBytes):
        decode(wire + b" ")


def test_shared_letters_decode_by_direction() -> None:
    replace_order, replaced = INBOUND[2][1], OUTBOUND[2][1]
    modify_order, modified = INBOUND[4][1], OUTBOUND[14][1]
    assert replace_order[:1] == replaced[:1] == b"U" and modify_order[:1] == modified[:1] == b"M"
    assert isinstance(ouch.decode_inbound(replace_order), ouch.ReplaceOrder)
    assert isinstance(ouch.decode_outbound(replaced), ouch.Replaced)
    assert isinstance(ouch.decode_inbound(modify_order), ouch.ModifyOrder)
    assert isinstance(ouch.decode_outbound(modified), ouch.OrderModified)
    with pytest.raises(TrailingBytes):
        ouch.decode_inbound(replaced)
    with pytest.raises(TruncatedMessage):
        ouch.decode_outbound(replace_order)
    with pytest.raises(UnknownMessageType):
        ouch.decode_outbound(INBOUND[0][1])                 # Enter Order is never sent by NASDAQ
    with pytest.raises(UnknownMessageType):
        ouch.decode_inbound(OUTBOUND[1][1])                 # nor Accepted by a client


def test_bad_codes_in_bytes_are_named() -> None:
    wire = bytearray(INBOUND[0][1])
    wire[15] = ord("Z")                                     # side
    with pytest.raises(BadField) as err:
        ouch.decode_inbound(bytes(wire))
    assert err.value.field == "side"
    wire = bytearray(OUTBOUND[1][1])
    wire[64] = ord("Q")                                     # order state must be L or D
    with pytest.raises(BadField) as err:
        ouch.decode_outbound(bytes(wire))
    assert err.value.field == "order_state"


ENTER = INBOUND[0][0]


@pytest.mark.parametrize("changes,field", [
    ({"token": "FIFTEEN-CHARS-X"}, "token"),
    ({"side": "X"}, "side"),
    ({"shares": -5}, "shares"),
    ({"price": 1 << 32}, "price"),
    ({"firm": "FIRMS"}, "firm"),
    ({"display": ""}, "display"),
    ({"time_in_force": None}, "time_in_force"),
])
def test_encode_errors_name_the_field(changes: dict, field: str) -> None:
    assert_encode_names_bad_field(ouch.encode, ENTER, changes, field)


@pytest.mark.parametrize("cls", ouch.INBOUND_CLASSES + ouch.OUTBOUND_CLASSES, ids=lambda c: c.__name__)
def test_round_trip_property(cls: type) -> None:
    decode = ouch.decode_inbound if cls in ouch.INBOUND_CLASSES else ouch.decode_outbound
    sizes = SPEC_IN if cls in ouch.INBOUND_CLASSES else SPEC_OUT

    @settings(max_examples=50, deadline=None)
    @given(message_strategy(cls))
    def round_trip(msg: object) -> None:
        wire = ouch.encode(msg)  # type: ignore[arg-type]
        assert len(wire) == sizes[cls.TYPE]
        assert decode(wire) == msg

    round_trip()


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=90))
def test_fuzz_both_decoders_raise_only_protocol_errors(data: bytes) -> None:
    only_protocol_errors(ouch.decode_inbound, data)
    only_protocol_errors(ouch.decode_outbound, data)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(INBOUND + OUTBOUND), st.integers(0, 79), st.integers(0, 255))
def test_fuzz_mutated_messages(entry: tuple, pos: int, value: int) -> None:
    msg, wire = entry
    decode = ouch.decode_inbound if type(msg) in ouch.INBOUND_CLASSES else ouch.decode_outbound
    mutated = bytearray(wire)
    mutated[pos % len(wire)] = value
    result = only_protocol_errors(decode, bytes(mutated))
    if result is not None:
        assert ouch.encode(result) == bytes(mutated)


def test_ouch_over_soupbintcp_byte_at_a_time() -> None:
    client_stream = b"".join(soupbintcp.encode(soupbintcp.UnsequencedData(w)) for _, w in INBOUND)
    server_stream = b"".join(soupbintcp.encode(soupbintcp.SequencedData(w)) for _, w in OUTBOUND)
    for stream, direction, decode, table in (
        (client_stream, soupbintcp.Direction.FROM_CLIENT, ouch.decode_inbound, INBOUND),
        (server_stream, soupbintcp.Direction.FROM_SERVER, ouch.decode_outbound, OUTBOUND),
    ):
        framer = soupbintcp.Framer()
        frames = [f for i in range(len(stream)) for f in framer.feed(stream[i:i + 1])]
        packets = [soupbintcp.decode(f, direction) for f in frames]
        assert [decode(p.payload) for p in packets] == [m for m, _ in table]  # type: ignore[union-attr]


def _outcome(decode, *args) -> tuple:
    """(message, None) or (None, (error type, text)) of one decode."""
    try:
        return decode(*args), None
    except Exception as exc:        # compared, not swallowed: the test asserts both sides agree
        return None, (type(exc), str(exc))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(OUTBOUND + INBOUND), st.integers(0, 79), st.integers(0, 255), st.integers(-1, 1),
       st.binary(max_size=3))
def test_decode_outbound_from_is_decode_outbound_of_the_rest(entry: tuple, pos: int, value: int,
                                                             cut: int, head: bytes) -> None:
    """In a frame (any head before the message): the same message, or the same error, as
    decode_outbound of the bytes from the offset on; also mutated, cut short or with a byte more."""
    wire = bytearray(entry[1])
    wire[pos % len(wire)] = value
    wire = bytes(wire[:len(wire) + cut] if cut < 0 else wire + b"\x00" * cut)
    frame = head + wire
    assert _outcome(ouch.decode_outbound_from, frame, len(head)) == _outcome(ouch.decode_outbound, wire)
    assert _outcome(ouch.decode_outbound_from, memoryview(frame), len(head)) == _outcome(ouch.decode_outbound, wire)


@pytest.mark.parametrize("msg,wire", OUTBOUND, ids=ids(OUTBOUND))
def test_decode_outbound_from_a_sequenced_frame(msg: ouch.OutboundMessage, wire: bytes) -> None:
    frame = soupbintcp.encode(soupbintcp.SequencedData(wire))
    assert ouch.decode_outbound_from(frame, 3) == msg
    with pytest.raises(TruncatedMessage):
        ouch.decode_outbound_from(frame, len(frame))


@pytest.mark.parametrize("token", ["T1", "  T1", " A B", "X" * 14, "", "a\tb"])
def test_token_text_reads_a_token_field_as_the_decoders_do(token: str) -> None:
    wire = ouch.encode(ouch.ReplaceOrder("OLD", token, 100, 10_0000, 0, "Y", "N", 0))
    assert ouch.token_text(wire[15:29]) == ouch.decode_inbound(wire).replacement_token == token
    with pytest.raises(UnicodeDecodeError):
        ouch.token_text(b"AB\xff" + b" " * 11)
