"""Reports reconcile with an independent per-record reading of the journal (oracle.py). Runs on
the scripted day and on every golden journal directory listed in MMAUDIT_GOLDEN_JOURNALS
(os.pathsep-separated), e.g. journals recorded by the engine on the embedded venue."""
import os
import pathlib
from collections import Counter

import pyarrow.compute as pc
import pytest

from reports.run import run
from tests.reports.conftest import read
from tests.reports.oracle import journal_totals
from tests.reports.journal_builder import FIXTURE_REFDATA

GOLDEN = [pathlib.Path(p) for p in os.environ.get("MMAUDIT_GOLDEN_JOURNALS", "").split(os.pathsep) if p]


@pytest.fixture(params=["scripted-day"] + [str(p) for p in GOLDEN])
def journal_and_reports(request, day_journal, all_reports, tmp_path):
    if request.param == "scripted-day":
        return day_journal, all_reports
    journal = pathlib.Path(request.param)
    run(["orders", "rts22", "cat"], journal, tmp_path, refdata_dir=FIXTURE_REFDATA)
    return journal, tmp_path


def _rejected_seqs(out, kind):
    path = out / kind / "rejects"
    return set(read(out, kind, "rejects")["seq"].to_pylist()) if path.exists() else set()


def test_order_records_reconcile_with_the_journal(journal_and_reports):
    journal, out = journal_and_reports
    oracle = journal_totals(journal)
    t = read(out, "orders", "order_events")
    rejected = _rejected_seqs(out, "orders")
    assert set(t["seq"].to_pylist()) | rejected == oracle.seqs           # nothing silently dropped
    assert not set(t["seq"].to_pylist()) & rejected
    if not rejected:
        assert Counter(t["event_type"].cast("string").to_pylist()) == oracle.events
        executed = t.filter(pc.is_valid(t["exec_qty"]))
        assert pc.sum(executed["exec_qty"]).as_py() == oracle.shares
        notional = sum(q * int(p * 10_000) for q, p in zip(executed["exec_qty"].to_pylist(),
                                                            executed["exec_price"].to_pylist()))
        assert notional == oracle.notional


def test_transaction_reports_and_cat_reconcile_with_the_journal(journal_and_reports):
    journal, out = journal_and_reports
    oracle = journal_totals(journal)
    rts22 = read(out, "rts22", "transactions")
    assert rts22.num_rows + len(_rejected_seqs(out, "rts22")) == len(oracle.matches)
    cat = read(out, "cat", "order_events")
    types = Counter(cat["type"].cast("string").to_pylist())
    if not _rejected_seqs(out, "cat"):
        assert types["MENO"] == types["MEOR"] == oracle.events["SENT_NEW"]
        # what the venue did, not the requests sent (a fill may overtake a replace or cancel): one
        # MEOM per Replaced / Order Modified, one MEOC per user-requested (reason U) Canceled
        assert types["MEOM"] + types["MEOC"] == oracle.events["REPLACED"] + oracle.events["ORDER_MODIFIED"] \
            + oracle.cancel_reasons["U"]
