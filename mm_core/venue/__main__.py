"""`python3 -m mm_core.venue`: run the embedded venue as a process (see process.py).

Prints the bound ports as one JSON line on stdout when ready; exits 0 when the venue stopped by
itself or on SIGTERM/SIGINT, 1 when it stopped on a failure (its logs could not be written or
fsynced, an internal error), 2 on a bad config.
"""
from __future__ import annotations

import argparse
import logging
import sys

from mm_core.venue.errors import VenueError
from mm_core.venue.process import build_config, parse_seconds, run
from mm_core.venue.server import FAILED_STOPS


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as exc:          # argparse names the option and exits 2
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m mm_core.venue", description=__doc__)
    parser.add_argument("--config", help="venue TOML (default: the shipped default.toml)")
    parser.add_argument("--duration", help="run time, e.g. 60s, 2m (default: from the config)")
    parser.add_argument("--seed", type=int, help="background flow seed")
    parser.add_argument("--port", type=int, dest="ouch_port", help="SoupBinTCP port (0 = any)")
    parser.add_argument("--itch-port", type=int, help="MoldUDP64 destination port")
    parser.add_argument("--rerequest-port", type=int, help="MoldUDP64 re-request port (0 = any)")
    parser.add_argument("--log-dir", help="session log directory")
    parser.add_argument("--session", help="session name (<= 10 letters and digits)")
    parser.add_argument("--heartbeat-timeout", type=_seconds, metavar="SECONDS",
                        help="seconds of client silence before the link is dead (> 0; default: "
                             "the config's [venue] heartbeat_timeout)")
    parser.add_argument("--login-timeout", type=_seconds, metavar="SECONDS",
                        help="seconds from connecting to a LoginRequest before the connection "
                             "is closed (> 0; default: the config's [venue] login_timeout)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = build_config(args.config, args.duration, args.seed, ouch_port=args.ouch_port,
                              itch_port=args.itch_port, rerequest_port=args.rerequest_port,
                              log_dir=args.log_dir, session=args.session,
                              heartbeat_timeout=args.heartbeat_timeout,
                              login_timeout=args.login_timeout)
        reason = run(config, lambda line: print(line, flush=True))
    except VenueError as exc:
        print(f"venue: {exc}", file=sys.stderr)
        return 2
    print(f"venue stopped: {reason}", file=sys.stderr)
    return 1 if reason in FAILED_STOPS else 0


if __name__ == "__main__":
    sys.exit(main())
