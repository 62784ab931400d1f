"""The short-sale side (OUCH 'T' sell short, 'E' short exempt) is echoed as entered, on the
engine's events and over the wire, while the public book shows a plain sell."""
from __future__ import annotations

from mm_core.protocol import itch, ouch
from mm_core.venue import matching as m
from tests.venue.test_server import connect, messages

LISTINGS = [m.Listing("ACME", 1)]


def test_engine_events_carry_the_side_as_entered():
    e = m.MatchingEngine(LISTINGS)
    for token, side in (("t", "T"), ("x", "E"), ("s", "S"), ("b", "B")):
        price = 10_0000 if side == "B" else 10_0100
        ev = e.enter("a", token, "ACME", side, 100, price)
        assert (type(ev[0]).__name__, ev[0].side) == ("Accepted", side)
        book = [x for x in ev if isinstance(x, m.BookAdd)][0]
        assert book.side == ("B" if side == "B" else "S")       # the public book: buy or sell
    assert e.replace("a", "t", "t2", 100, 10_0200)[1].side == "T"      # re-entered: BookCancel first
    assert e.replace("a", "t2", "t3", 50, 10_0200)[0].side == "T"      # kept priority
    e.modify("a", "t3", "E", 50)
    assert e.replace("a", "t3", "t4", 40, 10_0200)[0].side == "E"      # as last modified


def test_accepted_and_replaced_echo_short_sale_over_the_wire(make_venue, receiver):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.enter("SS1", "T", 300, "ACME", 10_0100)
        c.enter("SX1", "E", 300, "ACME", 10_0200)
        short, exempt = messages(c, 2)
        assert (short.side, exempt.side) == ("T", "E")
        c.order(ouch.ReplaceOrder("SS1", "SS2", 200, 10_0300, ouch.TIF_SYSTEM_HOURS, "Y", "N", 0))
        replaced = messages(c, 1)[0]
        assert isinstance(replaced, ouch.Replaced) and replaced.side == "T"
    receiver.run(None, lambda r: sum(isinstance(x, itch.AddOrder) for x in r.decoded()) >= 3, 5.0)
    assert {x.side for x in receiver.decoded() if isinstance(x, itch.AddOrder)} == {"S"}
