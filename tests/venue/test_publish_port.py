"""The venue's own UDP sockets (its sender and its re-request port, both bound to whatever port the
kernel hands out) never take the port it publishes market data to: the kernel may hand out that
number once a subscriber's probe let it go, and the subscriber on this host could then not bind it
(seen as EADDRINUSE in a recovery test's runner)."""
from __future__ import annotations

import socket

import pytest

from mm_core.venue import server
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.mm_core.test_runner import free_udp_port


@pytest.mark.parametrize("nth", [0, 1], ids=["sender", "rerequest"])
def test_a_port_the_kernel_hands_out_that_is_the_publish_port_is_refused(tmp_path, monkeypatch, nth):
    publish = free_udp_port()
    handed: list[int] = []
    binds = []

    class KernelPicksThePublishPort(socket.socket):
        """The nth UDP socket bound to port 0 gets the publish port, as the kernel may do."""

        def bind(self, address):
            if address[1] == 0 and self.type == socket.SOCK_DGRAM:
                binds.append(address)
                if len(binds) == nth + 1:
                    handed.append(publish)
                    return super().bind((address[0], publish))
            return super().bind(address)

    monkeypatch.setattr(server.socket, "socket", KernelPicksThePublishPort)
    config = load_config().with_venue(itch_port=publish, duration=5.0, log_dir=str(tmp_path / "venue"))
    with Venue(config) as venue:
        assert handed == [publish]              # that bind took it, and was refused
        assert venue.ports.rerequest != publish
        mine = [s.getsockname()[1] for s in venue._sockets if s.type == socket.SOCK_DGRAM]
        assert publish not in mine
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as subscriber:
        subscriber.bind(("127.0.0.1", publish))  # free again for the runner
