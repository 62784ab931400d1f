"""`mmaudit recover`: crash recovery of one engine session from its journal, with the venue.

Thin: reads and checks the parameter files (each with its own parser, then the engine built from
them, before the journal is touched), calls recovery.recover, prints progress and a summary.
Recovery errors become a ClickException; an unreconciled outcome exits 1 after its summary.
"""
from __future__ import annotations

import json
import pathlib

import click

from mm_core.config import ConfigError, EngineConfig, symbols_from_toml
from mm_core.risk import LimitsError
from mm_core.risk.limits import EXAMPLE_TOML, Limits
from mm_core.venue.config import DEFAULT_PATH as DEFAULT_SYMBOLS
from recovery.errors import RecoveryError, RecoverySetupError
from recovery.recover import RecoverySettings, build_engine, recover


def _venue(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r} is not HOST:PORT", param_hint="--venue")
    return host, int(port)


def _read(path: str | None, default: str, what: str) -> str:
    if path is None:
        return default
    try:
        return pathlib.Path(path).read_text()
    except OSError as exc:
        raise click.ClickException(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise click.ClickException(f"the {what} file {path} is not UTF-8 text") from None


def _parse(parse, path: str | None, default: str, what: str):
    """A parameter file read and parsed; a ConfigError or LimitsError names the file and the field."""
    try:
        return parse(_read(path, default, what))
    except (ConfigError, LimitsError) as exc:
        raise click.ClickException(f"{what} {path or '(default)'}: {exc}") from None


def _limits_text(text: str) -> str:
    """The limits document, once its parser took it (recovery parses it again for its engine)."""
    Limits.from_toml(text)
    return text


def _checked_inputs(config_path, symbols_path, limits_path):
    """(config, symbols, limits text), each file parsed by its own parser and the engine built
    from them once, as `mmaudit run` checks its inputs: a bad file is a clean error (exit 1)
    before the journal is opened, let alone written."""
    config = _parse(EngineConfig.from_toml, config_path, "", "engine config")
    symbols = _parse(symbols_from_toml, symbols_path, DEFAULT_SYMBOLS.read_text(), "symbols")
    limits_text = _parse(_limits_text, limits_path, EXAMPLE_TOML, "limits")
    try:
        build_engine(config, symbols, limits_text)
    except RecoverySetupError as exc:
        files = ", ".join(f"{what} {path or '(default)'}" for what, path in
                          (("engine config", config_path), ("symbols", symbols_path), ("limits", limits_path)))
        raise click.ClickException(f"{exc} (from {files})") from None
    return config, symbols, limits_text


@click.command(name="recover")
@click.option("--journal", "journal", required=True, type=click.Path(file_okay=False),
              help="Journal directory of the crashed session.")
@click.option("--venue", help="The venue's SoupBinTCP address, HOST:PORT (without it nothing is "
                              "reconciled and the engine stays HALTED).")
@click.option("--username", default="MM01", show_default=True, help="SoupBinTCP username.")
@click.option("--password", default="mmaudit", show_default=True, help="SoupBinTCP password.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Engine parameters TOML the session ran with (default: built-in defaults).")
@click.option("--symbols", "symbols_path", type=click.Path(dir_okay=False),
              help="Symbols TOML (default: the embedded venue's default.toml).")
@click.option("--limits", "limits_path", type=click.Path(dir_okay=False),
              help="Risk limits TOML the session ran with (default: the example limits).")
@click.option("--snapshots", type=click.Path(file_okay=False),
              help="Directory of engine snapshots of this journal: replay resumes from the newest.")
@click.option("--restarted-session", is_flag=True,
              help="The crashed runner was itself started after a recovery (not a fresh session).")
@click.option("--dry-run", is_flag=True, help="Reconcile and report only: no journal writes, no cancels.")
@click.option("--accept-code-change", is_flag=True,
              help="Recover even though other (or unknown) code wrote the journal: replay may then "
                   "decide differently; the change is journaled and other code's snapshots are not used.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 120),
              help="Seconds any one wait for the venue may take.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def command(journal, venue, username, password, config_path, symbols_path, limits_path,
            snapshots, restarted_session, dry_run, accept_code_change, timeout, as_json) -> None:
    """Recover a crashed session: replay its journal, reconcile with the venue, journal RECON records.

    Example: mmaudit recover --journal /var/mm/journal --venue 127.0.0.1:15000 --dry-run
    """
    config, symbols, limits_text = _checked_inputs(config_path, symbols_path, limits_path)
    settings = RecoverySettings(
        journal=journal, config=config, symbols=symbols, limits_text=limits_text,
        fresh_session=not restarted_session, venue=_venue(venue), username=username,
        password=password, dry_run=dry_run, timeout=timeout, snapshots=snapshots,
        accept_code_change=accept_code_change)
    progress = (lambda stage, text: None) if as_json else (
        lambda stage, text: click.echo(f"[{stage}] {text}", err=True))
    try:
        result = recover(settings, progress=progress)
    except RecoveryError as exc:
        raise click.ClickException(str(exc)) from exc
    summary = result.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
    else:
        _print_summary(summary)
    if not result.reconciled:
        raise SystemExit(1)


def _print_summary(s: dict) -> None:
    replay, tail = s["replay"], s["tail"]
    verdict = "RECONCILED" if s["reconciled"] else "NOT RECONCILED"
    click.echo(f"{verdict}{' (dry run: nothing written, nothing sent)' if s['dry_run'] else ''}")
    if tail.get("bytes_discarded") or tail.get("would_discard_from") or tail.get("segments_removed"):
        click.echo(f"  journal tail: {tail}")
    if tail.get("kept_in"):
        click.echo(f"  DAMAGED JOURNAL: the records after the first invalid one are kept in {tail['kept_in']} "
                   f"(no longer part of the journal): keep them for the audit")
    if replay.get("stopped"):
        stop = replay["stopped"]
        click.echo(f"  replay stopped before seq {stop['seq']}: {stop['reason']} at segment {stop['segment']} "
                   f"offset {stop['offset']} (nothing after it is replayed)")
    code = s.get("code") or {}
    if code.get("journal"):
        click.echo(f"  CODE CHANGE (accepted): this code {code['running'][:16]}; the journal's "
                   + ", ".join(f"session {c['session_id'] or '?'} (seq {c['seq']}) {c['fingerprint'][:16]}"
                               for c in code["journal"]))
    click.echo(f"  replay: {replay['events']} events, {replay['orders_checked']} orders checked, "
               f"{replay['divergences']} divergences, last venue sequence {replay['last_venue_seq']}, "
               f"state {replay['state_hash'][:16]}")
    for n, counts in enumerate(s["rounds"], 1):
        found = ", ".join(f"{k} {v}" for k, v in counts.items()) or "clean"
        click.echo(f"  reconciliation round {n}: {found}")
    click.echo(f"  venue messages applied {s['delivered']}, cancels sent {s['orders_sent']}"
               + (f", would cancel {', '.join(s['would_send'])}" if s["would_send"] else ""))
    close = s.get("close_out")
    if close:
        kill = f"kill of everything at seq {close['kill_seq']} by {close['actor']!r} ({close['reason']})"
        if close["released"]:
            click.echo(f"  {kill}: the session's close-out before its SESSION_STOP (seq {close['stop_seq']}, "
                       f"{close['stop_reason']}), " + ("would be released by recovery" if s["dry_run"]
                                                       else "released by recovery (RECON close-out-release)"))
        else:
            click.echo(f"  {kill}: NOT released: {close['why_not']}")
    click.echo(f"  trading state {s['trading_state']}; faults: {', '.join(s['faults']) or 'none'}")
    for reason in s["reasons"]:
        click.echo(f"  reason: {reason}")
