"""Running the venue as a process: overrides from the command line, the ready line, signals.

Owns the shared behaviour of `python3 -m mm_core.venue` and `mmaudit venue run`: parse a
duration ("60s", "2m", "500ms", "1h" or plain seconds) and a timeout in seconds, apply overrides to the config, start the
venue, print its ports (and any torn session-log tail it cut) as ONE JSON line on stdout when
ready, and stop cleanly on SIGTERM/SIGINT or when the venue stops by itself. Must not know about click or argparse.
"""
from __future__ import annotations

import json
import math
import re
import signal
import threading
from typing import Callable

from mm_core.venue.config import MAX_DURATION_S, VenueConfig, load_config
from mm_core.venue.errors import ConfigError
from mm_core.venue.server import Venue

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_duration(text: str, maximum_s: float = MAX_DURATION_S) -> float:
    """Seconds in a duration such as "60s", "2m", "500ms", "1.5h" or "30", at most `maximum_s`."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|)\s*", text or "")
    if not match or float(match.group(1)) <= 0:
        raise ConfigError("duration", f"{text!r} is not a positive duration like 60s, 2m, 500ms")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds <= maximum_s:        # infinity too
        raise ConfigError("duration", f"{text.strip()[:40]!r} is longer than the most a run may last, "
                                      f"{maximum_s:g} s ({maximum_s / 3600:g} h)")
    return seconds


def parse_seconds(text: str) -> float:
    """A timeout given on the command line: a number of seconds > 0 and at most a day ("2.5");
    ValueError saying so otherwise (the caller names the option)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value <= MAX_DURATION_S:          # NaN and infinity fail too
        raise ValueError(f"must be a number of seconds > 0 and <= {MAX_DURATION_S:g}, not {text!r}")
    return value


def build_config(path: str | None = None, duration: str | None = None, seed: int | None = None,
                 **ports: int | str | None) -> VenueConfig:
    """Load a config (None: the shipped default) and apply command-line overrides."""
    config = load_config(path)
    changes = {k: v for k, v in ports.items() if v is not None}
    if duration is not None:
        changes["duration"] = parse_duration(duration)
    if seed is not None:
        changes["seed"] = seed
    return config.with_venue(**changes) if changes else config


def run(config: VenueConfig, emit: Callable[[str], None] = print) -> str:
    """Run until the venue stops by itself or a SIGTERM/SIGINT arrives; returns the stop reason."""
    venue = Venue(config)
    stop = threading.Event()
    previous = {}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        ports = venue.start()
        emit(json.dumps(ports.as_dict() | {"duration": config.venue.duration,
                                           "seed": config.venue.seed,
                                           "log_tail_cut": venue.log_tail_cut}))
        while not stop.is_set() and not venue.wait(0.1):
            pass
        venue.stop()
        return "signal" if stop.is_set() and venue.stop_reason == "stopped" else venue.stop_reason
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
