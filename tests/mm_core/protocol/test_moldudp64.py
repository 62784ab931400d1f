"""MoldUDP64: table-driven encode/decode, packetiser limits, and the receiver sequence tracker
(gaps, duplicates, re-requests), including a randomised lossy-network property."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_core.protocol import moldudp64 as mold
from mm_core.protocol.errors import (
    BadField, FrameTooLarge, SessionMismatch, TrailingBytes, TruncatedMessage,
)
from tests.mm_core.protocol.strategies import ascii_field, hex_bytes, only_protocol_errors

SESS = ascii_field("SESS", 10)

DOWNSTREAM = [
    (mold.Packet("SESS", 1, (b"hello",)),
     hex_bytes(SESS, "0000000000000001", "0001", "0005", b"hello".hex())),
    (mold.Packet("ABCDEFGHIJ", 0x0102030405060708, (b"A", b"BC", b"")),
     hex_bytes(ascii_field("ABCDEFGHIJ", 10), "0102030405060708", "0003", "0001", "41",
               "0002", "4243", "0000")),
    (mold.Heartbeat("SESS", 7), hex_bytes(SESS, "0000000000000007", "0000")),
    (mold.EndOfSession("SESS", 8), hex_bytes(SESS, "0000000000000008", "ffff")),
]
IDS = [type(p).__name__ for p, _ in DOWNSTREAM]
REQUEST = (mold.RequestPacket("SESS", 5, 3), hex_bytes(SESS, "0000000000000005", "0003"))


@pytest.mark.parametrize("packet,wire", DOWNSTREAM, ids=IDS)
def test_downstream_table(packet: mold.Downstream, wire: bytes) -> None:
    assert mold.encode(packet) == wire
    assert mold.decode(wire) == packet
    assert mold.decode(memoryview(wire)) == packet


@pytest.mark.parametrize("packet,wire", DOWNSTREAM, ids=IDS)
def test_downstream_truncation_and_trailing_bytes(packet: mold.Downstream, wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(TruncatedMessage):
            mold.decode(wire[:cut])
    with pytest.raises(TrailingBytes):
        mold.decode(wire + b"\x00")


def test_header_flags() -> None:
    assert mold.decode_header(DOWNSTREAM[2][1]).is_heartbeat
    assert mold.decode_header(DOWNSTREAM[3][1]).is_end_of_session
    header = mold.decode_header(DOWNSTREAM[1][1])
    assert (header.session, header.sequence, header.count) == ("ABCDEFGHIJ", 0x0102030405060708, 3)
    assert not header.is_heartbeat and not header.is_end_of_session


def test_request_table_and_errors() -> None:
    request, wire = REQUEST
    assert mold.encode_request(request) == wire
    assert mold.decode_request(wire) == request
    with pytest.raises(TrailingBytes):
        mold.decode_request(wire + b"x")
    with pytest.raises(TruncatedMessage):
        mold.decode_request(wire[:-1])
    for count in (b"\x00\x00", b"\xff\xff"):
        with pytest.raises(BadField):
            mold.decode_request(wire[:-2] + count)
    with pytest.raises(BadField):
        mold.encode_request(mold.RequestPacket("SESS", 5, 0))


@pytest.mark.parametrize("packet,field", [
    (mold.Packet("ELEVENCHARS", 1, (b"x",)), "session"),
    (mold.Packet("SÉSS", 1, (b"x",)), "session"),
    (mold.Packet("SESS", -1, (b"x",)), "sequence"),
    (mold.Packet("SESS", 1 << 64, (b"x",)), "sequence"),
    (mold.Packet("SESS", 1, ()), "messages"),
    (mold.Packet("SESS", 1, ("text",)), "messages"),           # type: ignore[arg-type]
    (mold.Packet("SESS", 1, (bytes(65536),)), "messages"),
    (mold.Heartbeat("SESS", "1"), "sequence"),                 # type: ignore[arg-type]
])
def test_encode_errors_name_the_field(packet: mold.Downstream, field: str) -> None:
    with pytest.raises(BadField) as err:
        mold.encode(packet)
    assert err.value.field == field


def test_non_ascii_session_on_the_wire_is_a_bad_field() -> None:
    wire = bytearray(DOWNSTREAM[2][1])
    wire[0] = 0xC9
    with pytest.raises(BadField):
        mold.decode(bytes(wire))


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_decoders_raise_only_protocol_errors(data: bytes) -> None:
    only_protocol_errors(mold.decode, data)
    only_protocol_errors(mold.decode_request, data)
    only_protocol_errors(mold.decode_header, data)


# --- packetiser -----------------------------------------------------------------------------

def test_packetiser_fills_to_the_limit_and_numbers_messages() -> None:
    packer = mold.Packetiser("SESS", next_sequence=10, max_payload=20 + 3 * 12)
    closed = []
    for i in range(7):
        closed += packer.add(bytes([i]) * 10)                   # a block is 12 bytes: 3 per packet
    assert packer.pending == 1 and packer.next_sequence == 17
    closed.append(packer.flush())
    assert packer.flush() is None
    decoded = [mold.decode(p) for p in closed]
    assert [(p.sequence, len(p.messages)) for p in decoded] == [(10, 3), (13, 3), (16, 1)]
    assert all(len(p) <= 56 for p in closed)
    assert [m for p in decoded for m in p.messages] == [bytes([i]) * 10 for i in range(7)]


def test_packetiser_heartbeat_and_end_flush_pending_first() -> None:
    packer = mold.Packetiser("SESS", 5)
    assert [mold.decode(p) for p in packer.heartbeat()] == [mold.Heartbeat("SESS", 5)]
    packer.add(b"m")
    out = [mold.decode(p) for p in packer.end_of_session()]
    assert out == [mold.Packet("SESS", 5, (b"m",)), mold.EndOfSession("SESS", 6)]


def test_packetiser_rejects_a_message_that_cannot_fit_and_bad_limits() -> None:
    packer = mold.Packetiser("SESS", max_payload=100)
    packer.add(bytes(78))                                        # 20 + 2 + 78 = 100 fits exactly
    with pytest.raises(FrameTooLarge):
        packer.add(bytes(79))
    with pytest.raises(BadField):
        packer.add("text")                                       # type: ignore[arg-type]
    with pytest.raises(ValueError):
        mold.Packetiser("SESS", max_payload=22)
    with pytest.raises(BadField):
        mold.Packetiser("SESSION-TOO-LONG")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=60), st.integers(23, 1400))
def test_packing_is_greedy_bounded_and_lossless(sizes: list[int], limit: int) -> None:
    messages = [bytes([i % 256]) * min(n, limit - 22) for i, n in enumerate(sizes)]
    packets = mold.pack_messages("S", 1, messages, limit)
    decoded = [mold.decode(p) for p in packets]
    assert all(len(p) <= limit for p in packets)
    assert [m for p in decoded for m in p.messages] == messages
    seq = 1
    for i, p in enumerate(decoded):
        assert p.sequence == seq
        seq += len(p.messages)
        if i + 1 < len(decoded):                                 # the next message did not fit
            assert len(packets[i]) + 2 + len(decoded[i + 1].messages[0]) > limit


# --- sequence tracker ----------------------------------------------------------------------------

def pkt(seq: int, n: int, session: str = "S") -> mold.Packet:
    return mold.Packet(session, seq, tuple(f"m{seq + i}".encode() for i in range(n)))


def test_in_order_packets_are_applied() -> None:
    tracker = mold.SequenceTracker()
    v = tracker.on_packet(pkt(1, 3))
    assert (v.first_sequence, v.duplicates, v.new, v.gap) == (1, 0, 3, None)
    assert v.select(pkt(1, 3).messages) == (b"m1", b"m2", b"m3")
    assert tracker.next_expected == 4 and tracker.session == "S"


def test_duplicates_and_overlap_apply_only_new_messages() -> None:
    tracker = mold.SequenceTracker()
    tracker.on_packet(pkt(1, 3))
    again = tracker.on_packet(pkt(1, 3))
    assert (again.duplicates, again.new, again.gap) == (3, 0, None)
    overlap = tracker.on_packet(pkt(2, 4))                        # m2..m5: m2, m3 seen
    assert (overlap.duplicates, overlap.new, overlap.first_sequence) == (2, 2, 4)
    assert overlap.select(pkt(2, 4).messages) == (b"m4", b"m5")
    assert tracker.next_expected == 6


def test_gap_is_reported_held_and_filled_by_a_request() -> None:
    tracker = mold.SequenceTracker()
    tracker.on_packet(pkt(1, 2))
    v = tracker.on_packet(pkt(6, 2))                              # 3, 4, 5 missing
    assert v.gap == mold.Gap(expected=3, received=6) and v.gap.count == 3 and v.new == 0
    assert tracker.in_gap and tracker.next_expected == 3
    assert tracker.request() == mold.RequestPacket("S", 3, 5)     # up to the highest announced (7)
    assert tracker.request(max_count=2) == mold.RequestPacket("S", 3, 2)
    # 6 and 7 held already (kept past the gap): only 3..5 asked for, still capped
    assert tracker.request(before=6) == mold.RequestPacket("S", 3, 3)
    assert tracker.request(max_count=2, before=6) == mold.RequestPacket("S", 3, 2)
    assert tracker.request(before=99) == mold.RequestPacket("S", 3, 5)   # never past the highest
    assert tracker.request(before=3) is None                             # nothing before it missing
    assert tracker.on_packet(pkt(3, 5)).new == 5
    assert not tracker.in_gap and tracker.request() is None and tracker.next_expected == 8


def test_heartbeat_and_end_of_session_reveal_gaps() -> None:
    tracker = mold.SequenceTracker()
    assert tracker.on_packet(mold.Heartbeat("S", 1)).gap is None
    v = tracker.on_packet(mold.Heartbeat("S", 4))
    assert v.gap == mold.Gap(1, 4) and tracker.request() == mold.RequestPacket("S", 1, 3)
    end = tracker.on_header(mold.DownstreamHeader("S", 5, mold.END_OF_SESSION_COUNT))
    assert end.end_of_session and end.gap == mold.Gap(1, 5) and tracker.end_of_session


def test_on_header_matches_on_packet() -> None:
    a, b = mold.SequenceTracker(), mold.SequenceTracker()
    for p in (pkt(1, 2), pkt(5, 1), pkt(3, 3)):
        assert a.on_packet(p) == b.on_header(mold.decode_header(mold.encode(p)))


def test_other_session_is_an_error_and_skip_to_accepts_loss() -> None:
    tracker = mold.SequenceTracker(session="S")
    with pytest.raises(SessionMismatch):
        tracker.on_packet(pkt(1, 1, session="OTHER"))
    tracker.on_packet(pkt(10, 1))
    tracker.skip_to(10)
    assert tracker.on_packet(pkt(10, 1)).new == 1 and not tracker.in_gap
    with pytest.raises(ValueError):
        tracker.skip_to(3)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), limit=st.integers(30, 120),
       order=st.lists(st.integers(0, 1000), max_size=80), batch=st.integers(1, 7))
def test_lossy_reordering_network_recovers_the_exact_stream(n: int, limit: int, order: list[int],
                                                            batch: int) -> None:
    messages = [f"msg{i}".encode() for i in range(1, n + 1)]
    packets = [mold.decode(p) for p in mold.pack_messages("S", 1, messages, limit)]
    tracker = mold.SequenceTracker()
    applied: list[bytes] = []

    def deliver(packet: mold.Downstream) -> None:
        before = tracker.next_expected
        verdict = tracker.on_packet(packet)
        if isinstance(packet, mold.Packet):
            applied.extend(verdict.select(packet.messages))
        if verdict.gap is not None:
            assert verdict.gap.expected == before < verdict.gap.received == packet.sequence
        assert applied == messages[:len(applied)]                   # always an in-order prefix

    for index in order:                                             # drops, duplicates, reordering
        deliver(packets[index % len(packets)])
    deliver(mold.EndOfSession("S", n + 1))
    for _ in range(n + 1):                                          # re-request until complete
        request = tracker.request(max_count=batch)
        if request is None:
            break
        start = request.sequence - 1
        for reply in mold.pack_messages("S", request.sequence, messages[start:start + request.count], limit):
            deliver(mold.decode(reply))
    assert applied == messages and tracker.next_expected == n + 1 and not tracker.in_gap
