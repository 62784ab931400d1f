"""First-landing check: every codec round-trips one message (the full tables live beside it)."""
from mm_core.protocol import itch, moldudp64, ouch, soupbintcp


def test_itch_add_order_round_trip() -> None:
    msg = itch.AddOrder(1, 2, 34_200_000_000_001, 12345, "B", 100, "AAPL", 2_999_400)
    wire = itch.encode(msg)
    assert len(wire) == 36 and wire[:1] == b"A"
    assert itch.decode(wire) == msg


def test_mold_packet_carries_itch() -> None:
    message = itch.encode(itch.OrderDelete(1, 2, 3, 99))
    packet = moldudp64.encode(moldudp64.Packet("S1", 7, (message,)))
    header, messages = itch.decode_mold_packet(packet)
    assert (header.session, header.sequence, header.count) == ("S1", 7, 1)
    assert messages == [itch.OrderDelete(1, 2, 3, 99)]


def test_soup_and_ouch_round_trip() -> None:
    order = ouch.EnterOrder("TOK1", "B", 100, "AAPL", 1_000_000, 0, "FIRM", "Y", "P", "N", 0, "N", "R")
    frame = soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(order)))
    packet = soupbintcp.decode(frame, soupbintcp.Direction.FROM_CLIENT)
    assert isinstance(packet, soupbintcp.UnsequencedData)
    assert ouch.decode_inbound(packet.payload) == order
