"""`mmaudit drill crash | venue-disconnect | feed-gap`: the SRE recovery drills, added to the
`drill` group (cli.drill_cmd) through COMMANDS.

Thin: parse options, call recovery.drills, print the table (or JSON) and where the DRILL_RESULT
record went, and exit 1 when the drill failed; drill errors become a ClickException at the edge.
"""
from __future__ import annotations

import json

import click

from recovery.drills.common import DrillError
from recovery.drills.crash import CrashSettings, run_crash_drill
from recovery.drills.feed_gap import GapSettings, run_feed_gap_drill
from recovery.drills.venue_disconnect import DisconnectSettings, run_venue_disconnect_drill

__all__ = ["COMMANDS", "register", "crash", "venue_disconnect", "feed_gap"]

_SEED = click.option("--seed", default=1, show_default=True, type=click.IntRange(0),
                     help="Makes the drill's schedule and the venue's flow repeatable.")
_JOURNAL = click.option("--journal", "journal_dir", type=click.Path(file_okay=False),
                        help="Engine journal directory, new or empty: the drill starts a new session "
                             "(default: a new temporary one, kept).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _drill(name: str, count: str, default: int, help_text: str, *extra):
    """A drill command: `--<count> N`, --seed, --journal, the `extra` options, --json."""
    options = (click.option(f"--{count}", default=default, show_default=True, type=click.IntRange(1),
                            help=help_text), _SEED, _JOURNAL, *extra, _JSON)

    def wrap(fn):
        for option in reversed(options):
            fn = option(fn)
        return click.command(name=name)(fn)
    return wrap


def _finish(run, settings, as_json: bool, summary) -> None:
    """Run the drill, print its table or JSON, exit 1 unless it passed."""
    # rows number themselves in their first field (run, drop, gap)
    progress = None if as_json else (lambda row: click.echo(
        "  {} {}: {}".format(*next(iter(vars(row).items())), "PASS" if row.passed else "FAIL"), err=True))
    try:
        report = run(settings, progress)
    except DrillError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        click.echo(report.table())
        click.echo("")
        click.echo(summary(report))
        click.echo(f"journal: {report.journal} (DRILL_RESULT record {report.result_seq}); "
                   f"{'PASSED' if report.passed else 'FAILED'} in {report.seconds:.1f} s")
    if not report.passed:
        raise SystemExit(1)


@_drill("crash", "runs", 20, "Kills, each followed by a restart, recovery and resumption.",
        click.option("--cold-start", is_flag=True,
                     help="Restart as a new Python interpreter instead of a warm spare's fork."))
def crash(runs, seed, journal_dir, cold_start, as_json) -> None:
    """SIGKILL the engine process at random moments and hook points; recover, reconcile, resume.

    Kill points: random moments after the first quote; inside a journal append (the record
    written, not yet published) and mid-roll (the next segment created, the current one not
    sealed), where recovery must report the torn tail; right after an append returned (before
    its ack); between an order's append and its send; right after the append that rolled the
    journal to a new segment. Each run reports the recovery time to
    the first quote (RTO), events replayed and discrepancies found and resolved; acknowledged
    records must all survive and positions and order states must equal the venue's. Exits 1
    on any lost record or unreconciled difference, or when no run was killed at a kill point
    the plan used (its hook never reached: the drill did not test it).

    Example: mmaudit drill crash --runs 50 --seed 7
    """
    settings = CrashSettings(runs=runs, seed=seed, journal_dir=journal_dir, cold_start=cold_start)
    _finish(run_crash_drill, settings, as_json, lambda r: (
        f"runs: {len(r.runs)}; lost acknowledged records: {r.lost}; differences: {r.differences}; "
        f"RTO p50 {r.rto_percentile(0.5):.3f} s, p99 {r.rto_percentile(0.99):.3f} s; final "
        f"recovery {'reconciled' if r.final_reconciled else 'NOT reconciled'}\nkilled where planned: "
        + ", ".join(f"{p} {n['hit']}/{n['planned']}" for p, n in r.kill_points.items())
        + (f"; NEVER killed at {', '.join(r.missed_kill_points)}: not tested" if r.missed_kill_points else "")))


@_drill("venue-disconnect", "drops", 3, "Times the venue drops the order-entry session mid-stream.")
def venue_disconnect(drops, seed, journal_dir, as_json) -> None:
    """Drop the venue session mid-stream; the engine reconnects from its last sequence + 1.

    Every venue message must reach the journal exactly once and byte for byte, and the engine's
    final positions and orders must equal the venue's. Exits 1 otherwise.

    Example: mmaudit drill venue-disconnect --drops 5
    """
    settings = DisconnectSettings(drops=drops, seed=seed, journal_dir=journal_dir)
    _finish(run_venue_disconnect_drill, settings, as_json, lambda r: (
        f"venue messages: {r.venue_messages}; repeated: {len(r.repeated)}; missing: {len(r.missing)}; "
        f"different: {len(r.different)}; state differences: {len(r.differences)}; orders lost with a "
        f"dropped connection (held unanswered by the engine): {len(r.lost_in_drops)}"))


@_drill("feed-gap", "gaps", 3, "Market-data gaps opened (MoldUDP64 packets withheld).",
        click.option("--hold", "hold_s", default=0.6, show_default=True, type=click.FloatRange(0.05, 10.0),
                     help="Seconds each gap is held open (re-requests dropped meanwhile)."))
def feed_gap(gaps, seed, journal_dir, hold_s, as_json) -> None:
    """Drop market-data packets; quotes must be pulled until the gap is re-requested and filled.

    Judged from the venue: none of our orders live or accepted while a gap is open, at least one
    re-request, and quoting resumed by itself after the fill (no latch). Exits 1 otherwise.

    Example: mmaudit drill feed-gap --gaps 5 --hold 1.0
    """
    settings = GapSettings(gaps=gaps, seed=seed, journal_dir=journal_dir, hold_s=hold_s)
    _finish(run_feed_gap_drill, settings, as_json, lambda r: (
        f"trading state at the end: {r.trading_state}; state differences: {len(r.differences)}"))


COMMANDS = (crash, venue_disconnect, feed_gap)


def register(group: click.Group) -> None:
    """Add the recovery drills to the `drill` group (called once by cli.drill_cmd)."""
    for drill in COMMANDS:
        group.add_command(drill)
