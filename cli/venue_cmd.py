"""`mmaudit venue ...`: run the embedded venue (matching engine, OUCH and ITCH on loopback).

Thin: parses options, calls mm_core.venue.process, prints the ready line; venue errors become a
ClickException here.
"""
from __future__ import annotations

import click

from mm_core.venue.errors import VenueError
from mm_core.venue.process import build_config, parse_seconds, run


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    try:
        return None if value is None else parse_seconds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(name="venue")
def command() -> None:
    """The embedded venue: an exchange on 127.0.0.1 for demos, drills and tests.

    Example: mmaudit venue run --duration 60s --seed 7
    """


@command.command(name="run")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Venue TOML (default: the shipped default.toml).")
@click.option("--duration", help="Run time, e.g. 60s, 2m, 500ms (default: from the config).")
@click.option("--seed", type=int, help="Seed of the background flow.")
@click.option("--port", "ouch_port", type=int, help="SoupBinTCP/OUCH TCP port (0 = any free).")
@click.option("--itch-port", type=int, help="MoldUDP64 destination UDP port on 127.0.0.1.")
@click.option("--rerequest-port", type=int, help="MoldUDP64 re-request UDP port (0 = any free).")
@click.option("--log-dir", help="Directory of the durable session logs.")
@click.option("--session", help="Session name: 1 to 10 letters and digits (default: generated).")
@click.option("--login-timeout", metavar="SECONDS", callback=_seconds,
              help="Seconds from connecting to a LoginRequest before the connection is closed "
                   "(> 0; default: the config's [venue] login_timeout).")
def run_command(config_path, duration, seed, ouch_port, itch_port, rerequest_port, log_dir,
                session, login_timeout) -> None:
    """Run the venue until the duration ends or SIGTERM/SIGINT; prints its ports as JSON.

    Example: mmaudit venue run --duration 30s --itch-port 31001
    """
    try:
        config = build_config(config_path, duration, seed, ouch_port=ouch_port,
                              itch_port=itch_port, rerequest_port=rerequest_port,
                              log_dir=log_dir, session=session,
                              login_timeout=login_timeout)
        reason = run(config, lambda line: click.echo(line))
    except VenueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"venue stopped: {reason}", err=True)
