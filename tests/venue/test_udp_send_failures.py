"""A market-data datagram the kernel refuses to send is lost as on a wire (the subscriber
re-requests it), but never silently: the venue counts every one, logs the first as a warning and
the total when the session ends."""
from __future__ import annotations

import logging

from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.mm_core.test_runner import free_udp_port


def test_refused_sends_are_counted_and_the_first_and_the_total_logged(tmp_path, caplog):
    config = load_config().with_venue(itch_port=free_udp_port(), duration=5.0, log_dir=str(tmp_path / "venue"))
    caplog.set_level(logging.WARNING, logger="mm_core.venue")
    with Venue(config) as venue:
        assert venue.udp_send_failures == 0
        for _ in range(3):       # a broadcast address without SO_BROADCAST: the kernel says EACCES
            venue._udp_send(b"packet", ("255.255.255.255", 9))
        assert venue.udp_send_failures == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    first = [w for w in warnings if w.startswith("market-data send to ('255.255.255.255', 9) failed")]
    assert len(first) == 1 and "Permission denied" in first[0]
    assert "3 market-data datagrams could not be sent this session" in warnings
