"""Shared fixtures: one scripted trading day written through the real journal API, and helpers to
run report kinds on it and read the Parquet back. A golden engine journal can be swapped in by
pointing `day_journal` at its directory (and its ledger at the expected figures)."""
from __future__ import annotations

import pathlib

import pyarrow.parquet as pq
import pytest

from journal import Reader
from reports.run import run
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder, standard_day


@pytest.fixture(scope="session")
def day() -> DayBuilder:
    return standard_day()


@pytest.fixture(scope="session")
def day_journal(day, tmp_path_factory) -> pathlib.Path:
    return day.write(tmp_path_factory.mktemp("journal") / "j")


@pytest.fixture(scope="session")
def all_reports(day_journal, tmp_path_factory) -> pathlib.Path:
    """Every report kind written once for the day (read-only for tests)."""
    out = tmp_path_factory.mktemp("reports")
    run(["orders", "rts22", "clock", "controls", "cat", "execution-quality"], day_journal, out, refdata_dir=FIXTURE_REFDATA)
    return out


def read(out: pathlib.Path, kind: str, table: str):
    return pq.read_table(out / kind / table, partitioning="hive")


def cat_group(journal: pathlib.Path) -> str:
    """The CAT file group of a journal's submission files: the IMID and the journal id's first 12
    hex digits (upper case)."""
    with Reader(journal) as reader:
        return "MMAU" + reader.journal_id[:12].upper()
