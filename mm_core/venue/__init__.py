"""The embedded venue: a price-display-time matching engine with background flow, speaking
OUCH 4.2 over SoupBinTCP and ITCH 5.0 over MoldUDP64 on 127.0.0.1, with durable per-session
replay logs.

Public entry points (modules: matching and flow are pure; server, session_log, client do I/O):
  Venue(config, background_flow=True).start() -> VenuePorts; .stop(); context manager
  load_config(path=None) -> VenueConfig          (format: mm_core/venue/config.py docstring)
  MatchingEngine(listings) and its events          (mm_core/venue/matching.py)
  TradingCalendar (config.calendar: holidays)      (mm_core/venue/tradingdays.py)
  SoupClient / MoldReceiver                        (mm_core/venue/client.py, tests and drills)
"""
from mm_core.venue.config import VenueConfig, load_config
from mm_core.venue.errors import (
    ConfigError, SessionEndedError, SessionLogError, VenueError, VenueStateError,
)
from mm_core.venue.matching import Listing, MatchingEngine
from mm_core.venue.server import Venue, VenuePorts

__all__ = ["Venue", "VenuePorts", "VenueConfig", "load_config", "MatchingEngine", "Listing",
           "VenueError", "ConfigError", "SessionLogError", "VenueStateError", "SessionEndedError"]
