"""`mmaudit report KIND`: turn a journal range into compliance reports (Parquet, auth.016 XML).

Thin: parse options, call reports.run, print what was written and how many rows were rejected.
Exit status 0 when every row passed validation, 3 when rows went to a rejects table, 4 when the
journal lost records to damage a recovery found (its discarded/ runs: the reports hold only the
valid prefix left, and their provenance says so), 1 on errors (a journal that stops early among them).
"""
from __future__ import annotations

import datetime as dt
import pathlib
import time

import click

from cli.params import SEQUENCE, SESSION_ID
from reports import allocator
from reports.errors import ReportError
from reports.run import KINDS, run
from reports.source import Selection, describe_discarded

EXIT_REJECTED = 3
EXIT_DISCARDED = 4

_HELP = {
    "orders": "Order records: every order event (2017/565 Annex IV, RTS 24 event codes).",
    "rts22": "MiFIR RTS 22 transaction reports (65 fields) and ISO 20022 auth.016 XML.",
    "clock": "RTS 25 clock evidence: samples, clock state per event, intervals, summary.",
    "controls": "RTS 6 control evidence: risk denials, state changes, kills, limits, drills.",
    "cat": "CAT order events (MENO, MEOR, MEOM, MEOC, MEMR, MECR, MEOT) with CAT field names, and JSON submission files.",
    "execution-quality": "Rule 605-style execution quality and Rule 612/610 checks of our quotes.",
}


def _options(fn):
    fn = click.option("--no-text", "no_text", is_flag=True,
                      help="Write the Parquet tables only, without the text exports beside them (rts22: "
                      "auth.016 XML; cat: JSON submission files); the manifest records that they were "
                      "omitted. Default: write them.")(fn)
    fn = click.option("--force", is_flag=True, help="Overwrite existing reports of this kind.")(fn)
    fn = click.option("--refdata", "refdata_dir", type=click.Path(file_okay=False, path_type=pathlib.Path),
                      default=None, help="Reference-data directory (default: the bundled data, which "
                      "describes the embedded venue with fictitious identifiers).")(fn)
    fn = click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=pathlib.Path),
                      help="Output directory; each kind writes OUT/<kind>/.")(fn)
    fn = click.option("--last-seq", type=SEQUENCE, default=None, help="Last journal sequence to include.")(fn)
    fn = click.option("--first-seq", type=SEQUENCE, default=None, help="First journal sequence to include.")(fn)
    fn = click.option("--session", "session_id", type=SESSION_ID, default=None, help="Only this engine session.")(fn)
    fn = click.option("--date", "trade_date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                      help="Only events on this trade date (YYYY-MM-DD): the UTC day, for cat the US/Eastern trading day.")(fn)
    fn = click.option("--journal", "journal_dir", required=True,
                      type=click.Path(exists=True, file_okay=False, path_type=pathlib.Path),
                      help="Journal directory to read.")(fn)
    return fn


def _execute(kinds: list[str], journal_dir, trade_date, session_id, first_seq, last_seq, out_dir,
             refdata_dir, force, no_text) -> None:
    selection = Selection(first_seq=first_seq, last_seq=last_seq, session_id=session_id,
                          trade_date=trade_date.date() if isinstance(trade_date, dt.datetime) else None)
    started = time.monotonic()

    def progress(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:7.1f}s] {message}", err=True)

    try:
        # this process exists for the run: chunk after chunk reuses the same pages (a library
        # caller of run() keeps its own allocator settings)
        allocator.keep_freed_memory()
        result = run(kinds, journal_dir, out_dir, selection, refdata_dir, force=force, progress=progress,
                     text=not no_text)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:                # e.g. the disk filled while the reports were written
        raise click.ClickException(f"cannot write the reports in {out_dir}: "
                                   f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}") from exc
    for kind in result.results:
        for f in kind.files:
            click.echo(f"wrote {f.path}" + (f" ({f.rows} rows)" if f.path.suffix == ".parquet" else ""))
        tables = ", ".join(f"{name}={rows}" for name, rows in kind.rows.items())
        click.echo(f"{kind.kind}: {tables}; rejected={kind.rejected}")
    if result.rejected:
        click.echo(f"{result.rejected} row(s) rejected: see OUT/<kind>/rejects/", err=True)
    for kept in result.discarded:
        click.echo(f"incomplete journal: {describe_discarded(kept)} holds records a recovery cut off after "
                   f"damage; the reports cover only what is left (provenance journal_discarded; run "
                   f"`mmaudit journal verify {journal_dir}`)", err=True)
    if result.discarded:
        raise SystemExit(EXIT_DISCARDED)
    if result.rejected:
        raise SystemExit(EXIT_REJECTED)


@click.group("report")
def command() -> None:
    """Compliance reports from a journal: Parquet by trade date, tied to the journal range.

    Example: mmaudit report orders --journal ./journal --out ./reports --date 2026-03-02
    """


def _make(kind: str) -> click.Command:
    def cmd(**kw):
        _execute([kind], **kw)
    cmd.__doc__ = f"{_HELP[kind]}\n\nExample: mmaudit report {kind} --journal ./journal --out ./reports"
    return command.command(kind, help=cmd.__doc__)(_options(cmd))


for _kind in KINDS:
    _make(_kind)


@command.command("all")
@_options
def all_reports(**kw) -> None:
    """Every report kind from one read of the journal range.

    Example: mmaudit report all --journal ./journal --out ./reports --force
    """
    _execute(list(KINDS), **kw)
