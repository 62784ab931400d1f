"""A venue process killed (os._exit, as SIGKILL would) at a chosen point of its work.

`python3 -m tests.venue.crash_points POINT LOG_DIR SESSION`: MM01 rests an ACME sell of 100 at
89.0000 (11% below the prior close), then
- `end_of_day`: the venue is stopped and dies right after ITCH End of Messages is stored and
  the MoldUDP64 End of Session sent;
- `trade`: MM02 lifts it with an IOC and the venue dies as soon as the matching engine's trade
  starts the Rule 201 price test, before anything of the trade is written.
Exits 0 only when the crash point was never reached.
"""
from __future__ import annotations

import os
import sys

from mm_core.protocol import ouch
from mm_core.venue import publisher, regsho
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.venue.firms import two_firms

CRASHED = 9


def _die_after(cls, name: str, when=lambda result: True) -> None:
    original = getattr(cls, name)

    def wrapper(self, *args):
        result = original(self, *args)
        if when(result):
            os._exit(CRASHED)
        return result

    setattr(cls, name, wrapper)


def main(point: str, log_dir: str, session: str) -> None:
    if point == "end_of_day":
        _die_after(publisher.MoldPublisher, "end_of_session")
    elif point == "trade":
        _die_after(regsho.Rule201, "on_trade", bool)
    else:
        raise SystemExit(f"unknown crash point {point!r}")
    config = load_config().with_venue(itch_port=9, log_dir=log_dir, session=session)
    venue = Venue(config, background_flow=False)
    venue.start()
    with two_firms(venue) as (seller, buyer):
        seller.enter("S1", "S", 100, "ACME", 89_0000)
        seller.sequenced(1)
        if point == "trade":
            buyer.enter("B1", "B", 100, "ACME", 89_0000, tif=ouch.TIF_IOC)
            buyer.sequenced(2, timeout=10.0)      # the venue dies before it answers
    venue.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
