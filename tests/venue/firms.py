"""Two member firms logged in to a venue's OUCH port, as the restart and crash tests use them."""
from __future__ import annotations

import contextlib

from mm_core.venue.client import SoupClient


@contextlib.contextmanager
def two_firms(venue):
    """(MM01, MM02) SoupClients logged in from sequence 0; closed on exit."""
    with SoupClient(venue.ports.host, venue.ports.ouch) as first, \
            SoupClient(venue.ports.host, venue.ports.ouch) as second:
        first.login("MM01", "mmaudit", 0)
        second.login("MM02", "mmaudit2", 0)
        yield first, second
