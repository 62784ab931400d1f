"""Fixtures: a venue on loopback with its own log dir and a MoldUDP64 receiver, always stopped."""
from __future__ import annotations

import pytest

from mm_core.venue.client import MoldReceiver
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue


@pytest.fixture
def receiver():
    with MoldReceiver() as rx:
        yield rx


@pytest.fixture
def make_venue(tmp_path, receiver):
    """make_venue(background_flow=False, **venue_settings) -> a started Venue."""
    started = []

    def make(background_flow: bool = False, **settings) -> Venue:
        values = dict(itch_port=receiver.port, duration=60.0, log_dir=str(tmp_path / "logs"),
                      session="TEST000001")
        values.update(settings)
        venue = Venue(load_config().with_venue(**values), background_flow=background_flow)
        venue.start()
        started.append(venue)
        return venue

    yield make
    for venue in started:
        venue.stop()
