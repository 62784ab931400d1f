"""SoupBinTCP 3.0: every packet type from one table (encode and decode), direction checks,
malformed frames, and the stream framer fed byte by byte and in random chunks."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.protocol import soupbintcp as soup
from mm_core.protocol.errors import (
    BadField, FrameTooLarge, ProtocolError, TrailingBytes, TruncatedMessage, UnknownMessageType,
)
from tests.mm_core.protocol.strategies import ascii_field, hex_bytes, only_protocol_errors

SERVER, CLIENT = soup.Direction.FROM_SERVER, soup.Direction.FROM_CLIENT


def seq_field(n: int) -> str:
    """Hex of a 20-byte right-justified ASCII number, written out by hand."""
    digits = str(n).encode("ascii")
    return ("20" * (20 - len(digits))) + digits.hex()


TABLE = [
    (soup.Debug("hi"), SERVER, hex_bytes("0003", "2b", "6869")),
    (soup.LoginAccepted("SESS", 42), SERVER, hex_bytes("001f", "41", ascii_field("SESS", 10), seq_field(42))),
    (soup.LoginRejected("A"), SERVER, hex_bytes("0002", "4a", "41")),
    (soup.LoginRejected("S"), SERVER, hex_bytes("0002", "4a", "53")),
    (soup.SequencedData(b"\x01\x02"), SERVER, hex_bytes("0003", "53", "0102")),
    (soup.ServerHeartbeat(), SERVER, hex_bytes("0001", "48")),
    (soup.EndOfSession(), SERVER, hex_bytes("0001", "5a")),
    (soup.LoginRequest("user", "pass", "", 1), CLIENT,
     hex_bytes("002f", "4c", ascii_field("user", 6), ascii_field("pass", 10), ascii_field("", 10),
               seq_field(1))),
    (soup.LoginRequest("abcdef", "0123456789", "SESSION123", 12345678901234567890), CLIENT,
     hex_bytes("002f", "4c", ascii_field("abcdef", 6), ascii_field("0123456789", 10),
               ascii_field("SESSION123", 10), seq_field(12345678901234567890))),
    (soup.UnsequencedData(b"O"), CLIENT, hex_bytes("0002", "55", "4f")),
    (soup.UnsequencedData(b""), CLIENT, hex_bytes("0001", "55")),
    (soup.ClientHeartbeat(), CLIENT, hex_bytes("0001", "52")),
    (soup.LogoutRequest(), CLIENT, hex_bytes("0001", "4f")),
    (soup.Debug(""), CLIENT, hex_bytes("0001", "2b")),
]
IDS = [f"{type(p).__name__}-{i}" for i, (p, _, _) in enumerate(TABLE)]


@pytest.mark.parametrize("packet,direction,frame", TABLE, ids=IDS)
def test_table_encode_and_decode(packet: soup.SoupPacket, direction: soup.Direction, frame: bytes) -> None:
    assert soup.encode(packet) == frame
    assert soup.decode(frame) == packet
    assert soup.decode(frame, direction) == packet
    assert soup.decode(memoryview(frame), direction) == packet


@pytest.mark.parametrize("packet,direction,frame", TABLE, ids=IDS)
def test_the_other_direction_does_not_accept_one_sided_types(packet: soup.SoupPacket,
                                                             direction: soup.Direction,
                                                             frame: bytes) -> None:
    other = CLIENT if direction is SERVER else SERVER
    if isinstance(packet, soup.Debug):
        assert soup.decode(frame, other) == packet               # both sides may send debug
    else:
        with pytest.raises(UnknownMessageType):
            soup.decode(frame, other)


@pytest.mark.parametrize("packet,direction,frame", TABLE, ids=IDS)
def test_truncated_and_over_long_frames(packet: soup.SoupPacket, direction: soup.Direction,
                                        frame: bytes) -> None:
    for cut in range(len(frame)):
        with pytest.raises(TruncatedMessage):
            soup.decode(frame[:cut])
    with pytest.raises(TrailingBytes):
        soup.decode(frame + b"\x00")


@pytest.mark.parametrize("frame,error", [
    (hex_bytes("001e", "41", ascii_field("SESS", 10), seq_field(42)[2:]), TruncatedMessage),
    (hex_bytes("0020", "41", ascii_field("SESS", 10), seq_field(42), "20"), TrailingBytes),
    (hex_bytes("001f", "41", ascii_field("SESS", 10), ("20" * 18) + "3478"), BadField),   # "4x"
    (hex_bytes("001f", "41", ascii_field("SESS", 10), "20" * 20), BadField),             # blank
    (hex_bytes("001f", "41", "ff" + ascii_field("ESS", 9), seq_field(1)), BadField),
    (hex_bytes("0002", "4a", "58"), BadField),                                            # reason X
    (hex_bytes("0003", "4a", "4141"), TrailingBytes),
    (hex_bytes("0001", "4a"), TruncatedMessage),
    (hex_bytes("0002", "48", "00"), TrailingBytes),                                       # heartbeat body
    (hex_bytes("0003", "2b", "ff00"), BadField),                                          # debug not ASCII
    (hex_bytes("002e", "4c", ascii_field("user", 6), ascii_field("pass", 10), ascii_field("", 10),
               seq_field(1)[2:]), TruncatedMessage),
    (hex_bytes("0001", "7a"), UnknownMessageType),
])
def test_malformed_bodies_have_typed_errors(frame: bytes, error: type) -> None:
    with pytest.raises(error):
        soup.decode(frame)


@pytest.mark.parametrize("packet,error", [
    (soup.LoginRequest("toolong", "p", "", 1), BadField),
    (soup.LoginRequest("u", "pässword", "", 1), BadField),
    (soup.LoginRequest("u", "p", "SESSION-ELEVEN", 1), BadField),
    (soup.LoginRequest("u", "p", " S", 1), BadField),
    (soup.LoginRequest("u", "p", "", -1), BadField),
    (soup.LoginRequest("u", "p", "", 10 ** 20), BadField),
    (soup.LoginRequest("u", "p", "", 10 ** 5000), BadField),     # too long even to print
    (soup.LoginAccepted("S", "1"), BadField),                    # type: ignore[arg-type]
    (soup.LoginRejected("X"), BadField),
    (soup.LoginRejected(["A"]), BadField),                       # type: ignore[arg-type]
    (soup.SequencedData("text"), BadField),                      # type: ignore[arg-type]
    (soup.Debug("ünïcode"), BadField),
    (soup.UnsequencedData(bytes(65535)), FrameTooLarge),
    ("not a packet", BadField),
])
def test_encode_errors(packet: object, error: type) -> None:
    with pytest.raises(error):
        soup.encode(packet)  # type: ignore[arg-type]


def test_largest_packet_encodes() -> None:
    frame = soup.encode(soup.SequencedData(bytes(65534)))
    assert frame[:3] == b"\xff\xffS" and len(frame) == 65537


# --- framer ---------------------------------------------------------------------------------

STREAM = b"".join(frame for _, _, frame in TABLE)
FRAMES = [frame for _, _, frame in TABLE]


def test_framer_byte_at_a_time() -> None:
    framer = soup.Framer()
    out = []
    for i in range(len(STREAM)):
        out += framer.feed(STREAM[i:i + 1])
        assert framer.buffered <= max(len(f) for f in FRAMES)
    assert out == FRAMES and framer.buffered == 0
    assert [soup.decode(f) for f in out] == [p for p, _, _ in TABLE]


def test_framer_whole_stream_at_once_and_partial_tail() -> None:
    framer = soup.Framer()
    assert framer.feed(STREAM + FRAMES[1][:5]) == FRAMES
    assert framer.buffered == 5
    assert framer.feed(FRAMES[1][5:]) == [FRAMES[1]]
    assert framer.feed(b"") == [] and framer.buffered == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=60))
def test_framer_any_chunking_gives_the_same_frames(cuts: list[int]) -> None:
    framer = soup.Framer()
    out: list[bytes] = []
    pos = 0
    for cut in cuts:
        out += framer.feed(memoryview(STREAM)[pos:pos + cut])
        pos += cut
    out += framer.feed(STREAM[pos:])
    assert out == FRAMES


def test_oversized_length_is_rejected_at_once_and_latched() -> None:
    framer = soup.Framer(max_length=100)
    assert framer.feed(soup.encode(soup.SequencedData(bytes(99)))) != []    # length 100 is allowed
    with pytest.raises(FrameTooLarge) as err:
        framer.feed(b"\x00\x65")                                             # 101: no body needed
    assert (err.value.length, err.value.limit) == (101, 100)
    with pytest.raises(FrameTooLarge):
        framer.feed(soup.encode(soup.ServerHeartbeat()))                     # stream is dead


def test_zero_length_is_rejected_and_latched_keeping_earlier_frames() -> None:
    framer = soup.Framer()
    heartbeat = soup.encode(soup.ServerHeartbeat())
    with pytest.raises(TruncatedMessage):
        framer.feed(heartbeat + heartbeat + b"\x00\x00")
    assert framer.salvaged == [heartbeat, heartbeat]
    with pytest.raises(TruncatedMessage):
        framer.feed(b"")


def test_framer_limits_are_validated() -> None:
    for bad in (0, 65536):
        with pytest.raises(ValueError):
            soup.Framer(max_length=bad)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_decode_raises_only_protocol_errors(data: bytes) -> None:
    for direction in (None, SERVER, CLIENT):
        only_protocol_errors(lambda d: soup.decode(d, direction), data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 50))
def test_fuzz_framer_then_decode_raises_only_protocol_errors(data: bytes, chunk: int) -> None:
    framer = soup.Framer(max_length=64)
    try:
        for pos in range(0, len(data), chunk):
            for frame in framer.feed(data[pos:pos + chunk]):
                only_protocol_errors(soup.decode, frame)
                assert len(frame) == 2 + int.from_bytes(frame[:2], "big")
    except ProtocolError:
        pass
