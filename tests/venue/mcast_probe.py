"""Run inside a test's network namespace (tests/venue/mcast_netns.py): a venue publishing to a
multicast group and the runner's market-data socket joined to it; prints one JSON line of what
arrived (source, destination, MoldUDP64 sequence and count of each datagram) before and after a
re-request sent from that socket. Bounded: 40 live packets or 5 s, then the answer or 5 s."""
from __future__ import annotations

import json
import select
import socket
import struct
import sys
import tempfile
import time

from mm_core.mdsocket import market_data_socket
from mm_core.protocol import moldudp64
from mm_core.runnertypes import RunnerSettings
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue

_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)     # Linux's: each datagram's destination address


def _read(md: socket.socket, until: float) -> dict | None:
    ready, _, _ = select.select([md], [], [], max(until - time.monotonic(), 0))
    if not ready:
        return None
    data, ancillary, _, sender = md.recvmsg(65536, socket.CMSG_SPACE(12))
    dest = next(socket.inet_ntoa(info[8:12]) for level, kind, info in ancillary if kind == _IP_PKTINFO)
    header = moldudp64.decode_header(data)
    return {"source": sender[0], "dest": dest, "sequence": header.sequence, "count": header.count}


def main(group: str, interface: str) -> None:
    md = market_data_socket(RunnerSettings(host="127.0.0.1", itch_port=0, md_bind=group, md_interface=interface))
    md.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
    config = load_config().with_venue(itch_group=group, itch_interface=interface, itch_port=md.getsockname()[1],
                                      duration=20.0, log_dir=tempfile.mkdtemp(), session="MCAST00001")
    venue = Venue(config)
    ports = venue.start()
    live, answers = [], []
    try:
        deadline = time.monotonic() + 5
        while len(live) < 40 and (got := _read(md, deadline)) is not None:
            live.append(got)
        # from the market-data socket, as the runner asks (the answer comes back to it)
        md.sendto(moldudp64.encode_request(moldudp64.RequestPacket(ports.itch_session, 1, 3)),
                  ("127.0.0.1", ports.rerequest))
        deadline = time.monotonic() + 5
        while not answers and (got := _read(md, deadline)) is not None:
            (answers if got["dest"] != group else live).append(got)
    finally:
        venue.stop()
        md.close()
    print(json.dumps({"ports": ports.as_dict(), "live": live, "answers": answers}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
