"""ITCH 5.0 codec: one hand-written table drives encode and decode, plus error cases,
round-trip properties, fuzzing and the MoldUDP64 packet helper."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.protocol import itch, moldudp64
from mm_core.protocol.errors import (
    BadField, ProtocolError, TrailingBytes, TruncatedMessage, UnknownMessageType,
)
from tests.mm_core.protocol.strategies import (
    ascii_field, assert_encode_names_bad_field, example_of, hex_bytes, message_strategy, only_protocol_errors,
)

HDR = ("0001", "0002", "1f1aced9f001")        # locate 1, tracking 2, 09:30:00.000000001
TS = 34_200_000_000_001
REF = 0x0102030405060708
MATCH = 0x1112131415161718
AAPL = ascii_field("AAPL", 8)

# (message, its bytes written field by field from the specification)
TABLE = [
    (itch.SystemEvent(1, 2, TS, "O"), hex_bytes("53", *HDR, "4f")),
    (itch.StockDirectory(1, 2, TS, "AAPL", "Q", "N", 100, "N", "C", "Z", "P", "N", "N", "1", "N", 0, "N"),
     hex_bytes("52", *HDR, AAPL, "51", "4e", "00000064", "4e", "43", "5a20", "50", "4e", "4e", "31",
               "4e", "00000000", "4e")),
    (itch.StockTradingAction(1, 2, TS, "AAPL", "H", " ", "LUDP"),
     hex_bytes("48", *HDR, AAPL, "48", "20", ascii_field("LUDP", 4))),
    (itch.RegShoRestriction(1, 2, TS, "AAPL", "0"), hex_bytes("59", *HDR, AAPL, "30")),
    (itch.MarketParticipantPosition(1, 2, TS, "GSCO", "AAPL", "Y", "N", "A"),
     hex_bytes("4c", *HDR, ascii_field("GSCO", 4), AAPL, "59", "4e", "41")),
    (itch.MwcbDeclineLevel(1, 2, TS, REF, MATCH, 3),
     hex_bytes("56", *HDR, "0102030405060708", "1112131415161718", "0000000000000003")),
    (itch.MwcbStatus(1, 2, TS, "1"), hex_bytes("57", *HDR, "31")),
    (itch.IpoQuotingPeriodUpdate(1, 2, TS, "ZVZZT", 34_200, "A", 100_000),
     hex_bytes("4b", *HDR, ascii_field("ZVZZT", 8), "00008598", "41", "000186a0")),
    (itch.LuldAuctionCollar(1, 2, TS, "AAPL", 1_500_000, 1_650_000, 1_350_000, 1),
     hex_bytes("4a", *HDR, AAPL, "0016e360", "00192d50", "00149970", "00000001")),
    (itch.OperationalHalt(1, 2, TS, "AAPL", "Q", "H"), hex_bytes("68", *HDR, AAPL, "51", "48")),
    (itch.AddOrder(1, 2, TS, REF, "B", 100, "AAPL", 2_999_400),
     hex_bytes("41", *HDR, "0102030405060708", "42", "00000064", AAPL, "002dc468")),
    (itch.AddOrderMpid(1, 2, TS, REF, "S", 200, "MSFT", 4_105_000, "GSCO"),
     hex_bytes("46", *HDR, "0102030405060708", "53", "000000c8", ascii_field("MSFT", 8),
               "003ea328", ascii_field("GSCO", 4))),
    (itch.OrderExecuted(1, 2, TS, REF, 50, MATCH),
     hex_bytes("45", *HDR, "0102030405060708", "00000032", "1112131415161718")),
    (itch.OrderExecutedWithPrice(1, 2, TS, REF, 50, MATCH, "N", 2_999_500),
     hex_bytes("43", *HDR, "0102030405060708", "00000032", "1112131415161718", "4e", "002dc4cc")),
    (itch.OrderCancel(1, 2, TS, REF, 25), hex_bytes("58", *HDR, "0102030405060708", "00000019")),
    (itch.OrderDelete(1, 2, TS, REF), hex_bytes("44", *HDR, "0102030405060708")),
    (itch.OrderReplace(1, 2, TS, REF, REF + 1, 300, 2_999_300),
     hex_bytes("55", *HDR, "0102030405060708", "0102030405060709", "0000012c", "002dc404")),
    (itch.Trade(1, 2, TS, 0, "B", 100, "AAPL", 2_999_400, MATCH),
     hex_bytes("50", *HDR, "0000000000000000", "42", "00000064", AAPL, "002dc468", "1112131415161718")),
    (itch.CrossTrade(1, 2, TS, 1 << 32, "AAPL", 2_999_400, MATCH, "O"),
     hex_bytes("51", *HDR, "0000000100000000", AAPL, "002dc468", "1112131415161718", "4f")),
    (itch.BrokenTrade(1, 2, TS, MATCH), hex_bytes("42", *HDR, "1112131415161718")),
    (itch.Noii(1, 2, TS, 1000, 500, "B", "AAPL", 2_999_400, 2_999_500, 2_999_300, "O", "L"),
     hex_bytes("49", *HDR, "00000000000003e8", "00000000000001f4", "42", AAPL, "002dc468",
               "002dc4cc", "002dc404", "4f", "4c")),
    (itch.RetailPriceImprovement(1, 2, TS, "AAPL", "B"), hex_bytes("4e", *HDR, AAPL, "42")),
    (itch.DirectListingCapitalRaise(1, 2, TS, "ZVZZT", "Y", 100_000, 200_000, 150_000, REF,
                                    140_000, 160_000),
     hex_bytes("4f", *HDR, ascii_field("ZVZZT", 8), "59", "000186a0", "00030d40", "000249f0",
               "0102030405060708", "000222e0", "00027100")),
]
IDS = [type(m).__name__ for m, _ in TABLE]

# Sizes from the NASDAQ TotalView-ITCH 5.0 specification (type byte included).
SPEC_SIZES = {"S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
              "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
              "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48}


def test_table_covers_every_message_type() -> None:
    assert {type(m) for m, _ in TABLE} == set(itch.MESSAGE_CLASSES)
    assert itch.SIZES == SPEC_SIZES


@pytest.mark.parametrize("msg,wire", TABLE, ids=IDS)
def test_encode_matches_table(msg: itch.ItchMessage, wire: bytes) -> None:
    assert itch.encode(msg) == wire
    assert len(wire) == SPEC_SIZES[type(msg).TYPE]


@pytest.mark.parametrize("msg,wire", TABLE, ids=IDS)
def test_decode_matches_table(msg: itch.ItchMessage, wire: bytes) -> None:
    assert itch.decode(wire) == msg
    assert itch.decode(bytearray(wire)) == msg
    assert itch.decode(memoryview(wire)) == msg
    padded = b"xx" + wire + b"yy"
    assert itch.decode_at(padded, 2, len(wire)) == msg


@pytest.mark.parametrize("msg,wire", TABLE, ids=IDS)
def test_every_truncation_and_trailing_byte_is_rejected(msg: itch.ItchMessage, wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(TruncatedMessage):
            itch.decode(wire[:cut])
    for garbage in (b"\x00", b"A", b"garbage"):
        with pytest.raises(TrailingBytes):
            itch.decode(wire + garbage)


@pytest.mark.parametrize("offset,length", [(0, 40), (30, 10), (-1, 5), (36, 1)])
def test_decode_at_outside_the_buffer_is_truncated(offset: int, length: int) -> None:
    with pytest.raises(TruncatedMessage):
        itch.decode_at(TABLE[10][1], offset, length)


def test_unknown_type_is_typed() -> None:
    with pytest.raises(UnknownMessageType) as err:
        itch.decode(b"z" + bytes(30))
    assert err.value.type_byte == ord("z")


def test_decoded_messages_are_frozen_and_strip_padding() -> None:
    msg = itch.decode(TABLE[10][1])
    assert msg.stock == "AAPL"                      # padding removed
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.shares = 1                               # type: ignore[misc]
    assert not hasattr(msg, "__dict__")              # slots


@pytest.mark.parametrize("field,offset,byte,reason", [
    ("side", 19, b"X", "not one of BS"),
    ("stock", 24, b"\xff", "not ASCII"),
])
def test_bad_fields_in_bytes_are_named(field: str, offset: int, byte: bytes, reason: str) -> None:
    wire = bytearray(TABLE[10][1])                   # AddOrder
    wire[offset:offset + 1] = byte
    with pytest.raises(BadField) as err:
        itch.decode(bytes(wire))
    assert (err.value.message, err.value.field) == ("AddOrder", field)
    assert reason in err.value.reason


GOOD_ADD = itch.AddOrder(1, 2, TS, REF, "B", 100, "AAPL", 2_999_400)


@pytest.mark.parametrize("changes,field", [
    ({"stock": "TOOLONGNAME"}, "stock"),
    ({"stock": "AAPL "}, "stock"),
    ({"stock": "ÄPPL"}, "stock"),
    ({"side": "X"}, "side"),
    ({"side": "BS"}, "side"),
    ({"shares": -1}, "shares"),
    ({"shares": 1 << 32}, "shares"),
    ({"price": "1.00"}, "price"),
    ({"timestamp": 1 << 48}, "timestamp"),
    ({"timestamp": -1}, "timestamp"),
    ({"order_ref": 1.5}, "order_ref"),
])
def test_bad_fields_on_encode_are_named(changes: dict, field: str) -> None:
    assert_encode_names_bad_field(itch.encode, GOOD_ADD, changes, field)


@pytest.mark.parametrize("cls", itch.MESSAGE_CLASSES, ids=lambda c: c.__name__)
def test_round_trip_property(cls: type) -> None:
    @settings(max_examples=60, deadline=None)
    @given(message_strategy(cls))
    def round_trip(msg: itch.ItchMessage) -> None:
        wire = itch.encode(msg)
        assert len(wire) == SPEC_SIZES[cls.TYPE] and wire[:1] == cls.TYPE.encode()
        assert itch.decode(wire) == msg

    round_trip()


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=60))
def test_fuzz_decode_raises_only_protocol_errors(data: bytes) -> None:
    only_protocol_errors(itch.decode, data)


@settings(max_examples=800, deadline=None)
@given(st.sampled_from([w for _, w in TABLE]), st.integers(0, 49), st.integers(0, 255))
def test_fuzz_mutated_messages_raise_only_protocol_errors(wire: bytes, pos: int, value: int) -> None:
    mutated = bytearray(wire)
    mutated[pos % len(wire)] = value
    result = only_protocol_errors(itch.decode, bytes(mutated))
    if result is not None:
        assert itch.encode(result) == bytes(mutated)   # whatever decodes re-encodes identically


# --- MoldUDP64 packets of ITCH ------------------------------------------------------------------

def mold(session: bytes, seq: int, *blocks: bytes) -> bytes:
    out = session.ljust(10) + seq.to_bytes(8, "big") + len(blocks).to_bytes(2, "big")
    return out + b"".join(len(b).to_bytes(2, "big") + b for b in blocks)


def test_decode_mold_packet_returns_every_message_in_order() -> None:
    wires = [w for _, w in TABLE]
    header, messages = itch.decode_mold_packet(mold(b"SESSION01", 41, *wires))
    assert (header.session, header.sequence, header.count) == ("SESSION01", 41, len(wires))
    assert messages == [m for m, _ in TABLE]


def test_decode_mold_heartbeat_and_end_of_session_have_no_messages() -> None:
    heartbeat = b"SESSION01 " + (9).to_bytes(8, "big") + b"\x00\x00"
    end = b"SESSION01 " + (9).to_bytes(8, "big") + b"\xff\xff"
    assert itch.decode_mold_packet(heartbeat)[1] == []
    header, messages = itch.decode_mold_packet(end)
    assert header.is_end_of_session and messages == []
    with pytest.raises(TrailingBytes):
        itch.decode_mold_packet(heartbeat + b"\x00")


@pytest.mark.parametrize("packet,error", [
    (mold(b"S", 1, TABLE[10][1])[:-1], TruncatedMessage),               # block overruns packet
    (mold(b"S", 1, TABLE[10][1]) + b"\x00", TrailingBytes),              # byte after last block
    (mold(b"S", 1, TABLE[10][1] + b"\x00"), TrailingBytes),              # block longer than message
    (mold(b"S", 1, TABLE[10][1][:-1]), TruncatedMessage),                # block shorter than message
    (mold(b"S", 1, b""), TruncatedMessage),                              # empty block
    (mold(b"S", 1, b"z123"), UnknownMessageType),
    (mold(b"S", 1)[:-2] + b"\x00\x02" + (0).to_bytes(2, "big"), TruncatedMessage),  # count > blocks
    (b"short", TruncatedMessage),
])
def test_decode_mold_packet_errors(packet: bytes, error: type) -> None:
    with pytest.raises(error):
        itch.decode_mold_packet(packet)


def test_decode_mold_packet_names_bad_field_in_a_block() -> None:
    bad = bytearray(TABLE[10][1])
    bad[19] = ord("Q")
    with pytest.raises(BadField) as err:
        itch.decode_mold_packet(mold(b"S", 1, TABLE[15][1], bytes(bad)))
    assert err.value.field == "side"


def test_mold_round_trip_through_packetiser() -> None:
    packer = moldudp64.Packetiser("SESSION01", 100, max_payload=200)
    packets = []
    for _, wire in TABLE:
        packets += packer.add(wire)
    packets.append(packer.flush())
    decoded = []
    expected_seq = 100
    for packet in packets:
        header, messages = itch.decode_mold_packet(packet)
        assert header.sequence == expected_seq and len(packet) <= 200
        expected_seq += len(messages)
        decoded += messages
    assert decoded == [m for m, _ in TABLE]


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_decode_mold_packet_raises_only_protocol_errors(data: bytes) -> None:
    only_protocol_errors(itch.decode_mold_packet, data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([w for _, w in TABLE]), min_size=1, max_size=6),
       st.integers(0, 400), st.integers(0, 255))
def test_fuzz_mutated_mold_packets_raise_only_protocol_errors(blocks: list[bytes], pos: int,
                                                              value: int) -> None:
    packet = bytearray(mold(b"S", 1, *blocks))
    packet[pos % len(packet)] = value
    only_protocol_errors(itch.decode_mold_packet, bytes(packet))


def test_example_of_every_class_round_trips() -> None:
    for cls in itch.MESSAGE_CLASSES:
        msg = example_of(cls)
        assert itch.decode(itch.encode(msg)) == msg
        with pytest.raises(ProtocolError):
            itch.decode(itch.encode(msg)[:-1])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of([message_strategy(c) for c in itch.MESSAGE_CLASSES]), min_size=1, max_size=30),
       st.integers(0, (1 << 64) - 1))
def test_mold_packet_property_decodes_what_was_packed(messages: list, sequence: int) -> None:
    packet = moldudp64.encode(moldudp64.Packet("PROP", sequence, tuple(itch.encode(m) for m in messages)))
    header, decoded = itch.decode_mold_packet(packet)
    assert (header.sequence, header.count) == (sequence, len(messages))
    assert decoded == messages
