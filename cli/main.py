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

import importlib  # noqa: E402

import click  # noqa: E402


# Each area's module exposes a click command or group named `command`, imported only when that
# command runs (or help lists them all): `mmaudit report` need not load the engine, the venue and
# recovery, which cost about a second of start-up on this machine.
_AREAS = {"journal": "journal_cmd", "clock": "clock_cmd", "report": "report_cmd", "venue": "venue_cmd",
          "run": "run_cmd", "demo": "demo_cmd", "recover": "recover_cmd", "drill": "drill_cmd",
          "operator": "operator_cmd"}


class _AreaGroup(click.Group):
    """A click group whose subcommands are the areas' modules, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_AREAS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = _AREAS.get(name)
        return None if module is None else importlib.import_module(f"cli.{module}").command


@click.group(cls=_AreaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmaudit")
def cli() -> None:
    """mmaudit: write-ahead journal, clock evidence, recovery and compliance reports.

    Example: mmaudit journal verify ./journal-dir
    """
