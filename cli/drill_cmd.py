"""`mmaudit drill ...`: live drills against the embedded venue (one click group, one command each).

Thin: parse options, call the drill in recovery.drills, print its table or JSON, set the exit
status. Each subcommand is its own click command added to the group with `command.add_command`
(more drills register the same way); drill errors become a ClickException here at the edge.
"""
from __future__ import annotations

import json

import click

from recovery.drills.risk import DrillError, DrillSettings, run_risk_drill


@click.group(name="drill")
def command() -> None:
    """Run live drills (faults injected into a running engine) and journal their results.

    Example: mmaudit drill risk --seed 7 --combinations 4
    """


@click.command(name="risk")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0),
              help="Chooses the fault combinations and seeds the venue's flow.")
@click.option("--combinations", default=4, show_default=True, type=click.IntRange(0, 57),
              help="Fault pairs (each with at least one input fault) injected together after "
                   "every fault on its own.")
@click.option("--journal", "journal_dir", type=click.Path(file_okay=False),
              help="Journal directory for the run and its DRILL_RESULT, new or empty: the drill "
                   "starts new sessions (default: a temporary one).")
@click.option("--clock", type=click.Choice(["auto", "lab", "drill"]), default="auto", show_default=True,
              help="auto: the PTP lab's clock monitor when network namespaces work, else the "
                   "labelled drill clock; lab: require the PTP lab; drill: the drill clock.")
@click.option("--fault", "faults", multiple=True,
              help="Run only this fault (repeatable); combinations are drawn among them.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def risk(seed, combinations, journal_dir, clock, faults, as_json) -> None:
    """Inject every fail-closed fault and limit breach into a live engine and judge it by the venue.

    The engine, runner and journal are real and trade with the embedded venue on loopback. Each
    row counts, from the venue's own session log, the orders that reached it while the fault was
    active, the cancels it carried out, and our orders still live when quotes had to be pulled.
    Exits 1 when any row fails (an order passed, a pull or cancel did not happen, the state or
    the resumption was not as the latch policy says). The result is journaled as DRILL_RESULT.

    Example: mmaudit drill risk --seed 3 --combinations 2 --json
    """
    settings = DrillSettings(seed=seed, combinations=combinations, journal_dir=journal_dir,
                             clock=clock, only=tuple(faults))
    progress = None if as_json else (lambda row: click.echo(
        f"  {row.name}: {'PASS' if row.passed else 'FAIL'}", err=True))
    try:
        report = run_risk_drill(settings, progress)
    except DrillError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        click.echo(report.table())
        click.echo(f"\nclock: {report.clock}")
        click.echo(f"journal: {report.journal} (DRILL_RESULT record)")
        click.echo(f"orders at the venue during faults: {report.orders_during_faults}; rows with "
                   f"quotes left live when a pull was due: {report.cancels_blocked}; "
                   f"{sum(r.passed for r in report.rows)}/{len(report.rows)} rows passed in "
                   f"{report.seconds:.1f} s")
    if not report.passed:
        raise SystemExit(1)


command.add_command(risk)
from cli.drill_recovery_cmd import register as _recovery_drills; _recovery_drills(command)  # crash, venue-disconnect, feed-gap
