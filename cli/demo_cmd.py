"""`mmaudit demo`: the whole loop on the embedded venue — trade with a PTP lab clock, verify the
journal, write every compliance report — and one summary of what happened and where it is.

Thin: mm_core.session runs the session, journal.verify checks it, reports.run writes the reports;
this module only orders the steps and prints. Must not judge the clock or trading itself.
"""
from __future__ import annotations

import collections
import pathlib
import tempfile
import time

import click
import pyarrow.parquet as pq

from journal import JournalError, verify
from mm_core.sessionconfig import (
    ClockSpec,
    SessionError,
    SessionSettings,
    VenueSpec,
    lab_available,
    load_inputs,
)
from reports.errors import ReportError
from reports.refdata import load as load_refdata
from reports.run import KINDS, run as run_reports
from cli.run_cmd import clock_notice, echo_table, exit_status, run_session, say, seconds, summary_rows


def _reject_reasons(reports_dir: pathlib.Path, top: int = 3) -> list[str]:
    """The commonest reasons rows went to rejects, with their counts (read back with pyarrow)."""
    counts: collections.Counter = collections.Counter()
    for path in sorted(reports_dir.glob("*/rejects/**/*.parquet")):
        table = pq.read_table(path, columns=["report", "reason"])
        counts.update(zip(table.column("report").to_pylist(), table.column("reason").to_pylist()))
    return [f"{n} x {kind}: {reason}" for (kind, reason), n in counts.most_common(top)]


def _clock_verdict(reports_dir: pathlib.Path, profile: str) -> str:
    """The RTS 25 clock report's own verdict for the session's profile (read back with pyarrow)."""
    name = profile.replace("-", "_")
    rows = [r for path in sorted((reports_dir / "clock" / "summary").rglob("*.parquet"))
            for r in pq.read_table(path).to_pylist() if r["profile"] == name]
    if not rows:
        return "no clock summary written"
    r = rows[0]
    lab = (f"; {r['lab_clock_samples']} samples from the PTP lab's clock: the monitoring path, not "
           "traceability to UTC") if r.get("lab_clock_samples") else ""
    return (f"{r['verdict']} for {profile}: {r['samples_within']}/{r['samples']} samples within, "
            f"{r['order_events_not_demonstrably_within']} of {r['order_events']} order events "
            f"not demonstrably within{lab}")


def _out_dir(out: str | None) -> pathlib.Path:
    try:
        if out is None:
            return pathlib.Path(tempfile.mkdtemp(prefix="mmaudit-demo-"))
        path = pathlib.Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise click.ClickException(f"{path} exists and is not an empty directory; give a new --out")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot make the demo directory {out or tempfile.gettempdir()}: "
                                   f"{exc.strerror or exc}") from None
    return path


@click.command("demo")
@click.option("--duration", default="20s", show_default=True, help="Trading time, e.g. 20s, 1m.")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="New or empty output directory (default: a new one under the system temp dir).")
@click.option("--seed", type=int, default=None, help="Seed of the venue's background flow.")
@click.option("--refdata", "refdata_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Reference-data directory for the reports (default: the bundled examples).")
def command(duration, out, seed, refdata_dir) -> None:
    """The whole loop on the embedded venue: trade, verify the journal, write every report.

    Runs the engine against the embedded venue with a loopback PTP lab clock (as root), then
    verifies the journal and writes all compliance reports into OUT/reports.

    Example: mmaudit demo --duration 20s --out ./demo

    \b
    Exit status as `mmaudit run`'s: 0 clean; 3 the session ended failed (the
    clock never compliant included: without the lab nothing trades); 4 orders
    still open at the venue after the close-out; 1 a step failed.
    """
    started = time.monotonic()
    trading_s = seconds(duration)
    try:
        inputs = load_inputs()
        load_refdata(refdata_dir)      # a bad --refdata is refused before trading, not after it
    except (SessionError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    root = _out_dir(out)
    journal_dir, reports_dir = root / "journal", root / "reports"
    why_no_lab = lab_available()
    if why_no_lab:
        say(f"PTP lab unavailable: {why_no_lab}. The demo runs without it: the monitor finds no "
            "ptp4l, the clock is UNKNOWN and the engine does not trade (fail closed): it exits 3.")
    try:
        settings = SessionSettings(str(journal_dir), trading_s, VenueSpec("embedded"), ClockSpec("auto"),
                                   seed=seed, venue_log_dir=str(root / "venue"))
    except SessionError as exc:
        raise click.ClickException(str(exc)) from None
    say(f"demo: trading {trading_s:g} s on the embedded venue; output in {root}")
    summary = run_session(settings, inputs, quiet=False)

    say("verifying the journal ...")
    try:
        check = verify(journal_dir)
    except JournalError as exc:
        raise click.ClickException(f"journal verification could not run: {exc}") from None
    say("writing compliance reports ...")
    try:
        result = run_reports(list(KINDS), journal_dir, reports_dir, refdata_dir=refdata_dir)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None

    rows = summary_rows(summary)
    rows.append(("journal verify", ("OK" if check.ok else f"FAILED: {check.first_bad}")
                 + f" ({check.records} records, {check.segments} segment(s), {check.checkpoints} "
                   f"checkpoint(s), sealed {'yes' if check.last_sealed else 'no'})"))
    for kind in result.results:
        tables = ", ".join(f"{name} {n}" for name, n in kind.rows.items())
        rows.append((f"report {kind.kind}", f"{tables}; rejected {kind.rejected}"))
    rows.append(("clock report", _clock_verdict(reports_dir, summary.clock.profile)))
    written = [f.path for kind in result.results for f in kind.files]
    rows.append(("files written", f"{len(written)} under {reports_dir} (and a _manifest.json per kind)"))
    rows.append(("venue session logs", str(root / "venue")))
    say(f"demo summary ({time.monotonic() - started:.1f} s):")
    echo_table(rows)
    if result.rejected:
        say(f"{result.rejected} report row(s) went to rejects (OUT/reports/<kind>/rejects/); commonest:")
        for line in _reject_reasons(reports_dir):
            say(f"  - {line}")
    say(clock_notice(summary.clock.source, summary.clock.note))
    if not check.ok:
        raise click.ClickException(f"the journal did not verify: {check.first_bad}")
    code = exit_status(summary)[0]
    if code:
        raise click.exceptions.Exit(code)
