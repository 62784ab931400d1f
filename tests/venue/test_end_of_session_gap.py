"""A receiver that lost the last MoldUDP64 packets of the day learns of its gap only from the
End of Session packet; the venue's re-request server still answers it then, so the day's
market data ends complete (the venue is stopping, not gone yet)."""
from __future__ import annotations

import threading

from mm_core.protocol import itch, ouch
from tests.venue.test_server import connect, messages


def test_the_last_packets_lost_before_end_of_session_are_still_served(make_venue, receiver):
    venue = make_venue()
    with connect(venue) as c:
        c.enter("REST", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(c, 2)[1], ouch.Accepted)     # after the start of day
    receiver.run(None, lambda r: len(r.messages) == venue.publisher.next_sequence - 1, 5.0)
    venue.withhold_itch([venue.publisher.next_sequence])    # the close's first packet is lost
    stopper = threading.Thread(target=venue.stop)
    stopper.start()
    try:
        server = (venue.ports.host, venue.ports.rerequest)
        receiver.run(server, lambda r: r.ended and not r.tracker.in_gap, 10.0)
    finally:
        stopper.join(15.0)
    assert venue.publisher.packets_dropped == 1 and venue.publisher.requests_served >= 1
    codes = [x.event_code for x in receiver.decoded() if isinstance(x, itch.SystemEvent)]
    assert codes == list("OSQMEC")
    assert any(isinstance(x, itch.OrderDelete) for x in receiver.decoded())   # REST expired
    assert not venue.running
