"""The `mmaudit` command: one click group; each area's commands live in their own module.

Commands stay thin: parse arguments, call the library, print. Library errors are turned into
click.ClickException here at the edge so users see one clear line and a non-zero exit status.
"""
from __future__ import annotations

import os

# Before numpy is first imported: OpenBLAS would otherwise start a worker thread per core that
# spins at import (about 0.1 CPU-s per command) and after each parallel call, beside the engine's
# and the reports' own threads. Nothing here multiplies matrices larger than a few rows.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Before pyarrow is first imported (Arrow reads it once): Arrow's buffers from glibc, whose freed
# memory a report run keeps for the next chunk (reports.allocator), not from Arrow's bundled
# mimalloc, which hands freed pages back to the kernel so that each chunk's Parquet encoding faults
# in and zeroes fresh ones (on the CAT bench journal a quarter of the run's system CPU time).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import click  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmaudit")
def cli() -> None:
    """mmaudit: write-ahead journal, clock evidence, recovery and compliance reports.

    Example: mmaudit journal verify ./journal-dir
    """


def _register() -> None:
    # One line per area; each module exposes a click command or group named `command`.
    from cli import journal_cmd
    cli.add_command(journal_cmd.command)
    from cli import clock_cmd
    cli.add_command(clock_cmd.command)
    from cli import report_cmd
    cli.add_command(report_cmd.command)
    from cli import venue_cmd
    cli.add_command(venue_cmd.command)
    from cli import run_cmd
    cli.add_command(run_cmd.command)
    from cli import demo_cmd
    cli.add_command(demo_cmd.command)
    from cli import recover_cmd
    cli.add_command(recover_cmd.command)
    from cli import drill_cmd
    cli.add_command(drill_cmd.command)
    from cli import operator_cmd
    cli.add_command(operator_cmd.command)


_register()
