"""A golden engine journal for the report tests: one short real session (embedded venue, engine,
runner, PTP lab clock — mm_core.session) journaled once per test session, with what it holds read
record by record by tests.reports.oracle. Reports on it use the bundled reference data, which
describes the embedded venue's instruments and the engine's default parties."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from mm_core.session import Session
from mm_core.sessionconfig import ClockSpec, ClockUnavailable, SessionSettings, lab_available, load_inputs
from tests.reports.oracle import Totals, journal_totals

GOLDEN_SECONDS = 5.0
GOLDEN_SEED = 11


@dataclass(frozen=True)
class Golden:
    journal: str
    summary: object
    oracle: Totals


@pytest.fixture(scope="session")
def golden(tmp_path_factory) -> Golden:
    """One real trading session on the embedded venue with the PTP lab clock (needs root and
    network namespaces: without a compliant clock the engine rightly sends no order)."""
    why = lab_available()
    if why:
        pytest.skip(f"the golden journal needs the PTP lab clock: {why}")
    root = tmp_path_factory.mktemp("golden")
    settings = SessionSettings(str(root / "journal"), GOLDEN_SECONDS, clock=ClockSpec("lab"), seed=GOLDEN_SEED)
    try:
        summary = Session(settings, load_inputs()).run()
    except ClockUnavailable as exc:
        pytest.skip(f"the golden journal needs the PTP lab clock: {exc}")
    assert summary.runner.orders_sent > 0, summary.not_trading_reason
    return Golden(settings.journal_dir, summary, journal_totals(settings.journal_dir))
