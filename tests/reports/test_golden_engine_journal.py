"""Every report kind on a real engine journal (tests.reports.golden) with the bundled reference
data: rows exist, counts and share sums reconcile with the journal's ORDER_SENT / VENUE_MSG records
read one by one, nothing is rejected, instruments carry the venue's symbols, the LOCKED lab clock
is within tolerance but, being the lab's, judged not traceable to UTC (verdict and manifest), and
the same journal always gives the same bytes."""
from __future__ import annotations

import collections
import hashlib
import json
import pathlib

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from journal import Reader
from journal.catalogue import RecordType, raw_bytes, token_tag, unpack, unpack_json
from mm_core.events import SendOrder
from mm_core.runnerrecords import engine_events
from mm_core.sessionconfig import load_inputs
from reports.output import read_metadata
from reports.run import KINDS, run
from tests.reports.golden import golden  # noqa: F401  (the session-scoped fixture)

pytestmark = pytest.mark.netns


def table(out: pathlib.Path, kind: str, name: str):
    return ds.dataset(out / kind / name, format="parquet", partitioning="hive").to_table()


@pytest.fixture(scope="module")
def reported(golden, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("golden-reports") / "out"
    result = run(list(KINDS), golden.journal, out)
    return out, result


def test_every_kind_writes_rows_and_rejects_none(golden, reported):  # noqa: F811
    out, result = reported
    assert [r.kind for r in result.results] == list(KINDS)
    assert result.rejected == 0, [(r.kind, r.rejected) for r in result.results]
    main = {"orders": "order_events", "rts22": "transactions", "clock": "samples", "controls": "limits",
            "cat": "order_events", "execution-quality": "fills"}
    for kind, name in main.items():
        assert table(out, kind, name).num_rows > 0, f"{kind}/{name} is empty"
    for r in result.results:
        for f in r.files:
            assert f.path.exists()


def test_order_records_are_exactly_the_journaled_order_events(golden, reported):  # noqa: F811
    out, _ = reported
    oracle = golden.oracle
    orders = table(out, "orders", "order_events").sort_by("seq")
    assert orders["seq"].to_pylist() == oracle.order_event_seqs
    kinds = collections.Counter(orders["event_type"].to_pylist())
    assert kinds == oracle.events and kinds["SENT_NEW"] > 0
    assert kinds["EXECUTED"] + kinds["EXECUTED_WITH_REF_PRICE"] == len(oracle.executions)
    assert orders.num_rows == golden.summary.journal["by_type"]["ORDER_SENT"] + len(oracle.venue_seqs)
    # every row names the instrument the venue lists under its symbol id, with the bundled ISIN
    listings = {s.id: s.name for s in load_inputs().venue_config.symbols}
    listings |= {o.id: o.name for o in load_inputs().venue_config.options}
    for symbol_id, symbol in set(zip(orders["symbol_id"].to_pylist(), orders["symbol"].to_pylist())):
        assert listings[symbol_id] == symbol
    assert all(isin.startswith("XX") for isin in orders["isin"].to_pylist())


def test_executed_shares_reconcile_across_reports_journal_and_engine(golden, reported):  # noqa: F811
    out, _ = reported
    executions = golden.oracle.executions
    assert executions, "the golden session traded nothing"
    shares = sum(e[2] for e in executions)
    orders = table(out, "orders", "order_events")
    executed = orders.filter(pc.equal(orders["event_type"], "EXECUTED")).sort_by("seq")
    assert executed["seq"].to_pylist() == [e[0] for e in executions]
    assert executed["exec_qty"].to_pylist() == [e[2] for e in executions]
    assert [int(p.scaleb(4)) for p in executed["exec_price"].to_pylist()] == [e[3] for e in executions]
    fills = table(out, "execution-quality", "fills").sort_by("seq")
    assert fills["seq"].to_pylist() == [e[0] for e in executions]
    assert pc.sum(fills["exec_qty"]).as_py() == shares
    rts22 = table(out, "rts22", "transactions")
    assert rts22.num_rows == len(executions)
    assert sum(int(q) for q in rts22["f30_quantity"].to_pylist()) == shares
    assert len(set(rts22["f02_transaction_reference_number"].to_pylist())) == rts22.num_rows
    engine = golden.summary.engine
    assert engine["fills"]["bid"] + engine["fills"]["ask"] == len(executions)
    per_symbol = sum(s["traded"] for s in engine["symbols"].values())
    assert per_symbol == shares


def test_cat_events_and_clock_evidence_reconcile(golden, reported):  # noqa: F811
    out, _ = reported
    oracle = golden.oracle
    cat = collections.Counter(table(out, "cat", "order_events")["type"].to_pylist())
    # MEOM and MEOC are what the venue did: its Replaced / Order Modified, its user-requested cancels
    assert cat["MENO"] == oracle.events["SENT_NEW"]
    assert cat["MEOM"] == oracle.events["REPLACED"] + oracle.events["ORDER_MODIFIED"]
    assert cat["MEOC"] == oracle.cancel_reasons["U"]
    samples = table(out, "clock", "samples")
    assert samples.num_rows == oracle.clock_samples == golden.summary.journal["by_type"]["CLOCK_SAMPLE"]
    # every sample the engine traded on was LOCKED and within eu-hft (the lab's verdict, journaled)
    assert set(samples["state"].to_pylist()) == {"LOCKED"}
    summary = {r["profile"]: r for r in table(out, "clock", "summary").to_pylist()}
    assert set(summary) == {"eu_hft", "eu_algo", "us_cat"}
    for row in summary.values():
        assert row["samples"] == row["samples_within"] == samples.num_rows
        assert row["order_events"] == len(oracle.seqs)
        assert row["order_events_without_sample"] == 0
        # a LOCKED lab session: every order event is covered by a sample at or before its time
        assert row["order_events_not_demonstrably_within"] == 0, row
        # the monitoring path works, but the lab's grandmaster is this host's own clock: its
        # clockClass 6 / timeTraceable announce is no traceability to UTC
        assert row["verdict"] == "LAB_CLOCK_NOT_TRACEABLE", row
        assert row["lab_clock_samples"] == samples.num_rows
    assert set(samples["clock_source"].to_pylist()) == {"ptp-lab"}
    provenance = json.loads((out / "clock" / "_manifest.json").read_text())["provenance"]
    assert provenance["clock_sources"] == "ptp-lab"
    assert provenance["clock_traceable_to_utc"].startswith("no")
    assert "not traceability to UTC" in provenance["clock_evidence"]
    for name in ("summary", "event_clock"):       # and every file's own metadata
        meta = read_metadata(next((out / "clock" / name).rglob("*.parquet")))
        assert meta["clock_traceable_to_utc"].startswith("no"), name
    events = table(out, "clock", "event_clock")
    assert sorted(events["seq"].to_pylist()) == oracle.order_event_seqs
    assert all(all(events[f"within_{name}"].to_pylist()) for name in summary)
    assert min(events["sample_age_ns"].to_pylist()) >= 0
    limits = table(out, "controls", "limits").select(["version", "document"]).to_pylist()
    assert len(limits) == 1 and limits[0]["version"] == str(load_inputs().limits.version)
    assert '"document"' in limits[0]["document"]


def test_the_same_journal_gives_identical_bytes(golden, reported, tmp_path):  # noqa: F811
    out, _ = reported
    again = tmp_path / "again"
    run(list(KINDS), golden.journal, again)

    def digests(root: pathlib.Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}
    first, second = digests(out), digests(again)
    assert first and first == second


def test_the_golden_journal_replays_exactly(golden):  # noqa: F811
    """It is a real engine journal: a fresh engine from the same inputs decides the same orders."""
    inputs = load_inputs()
    engine = inputs.build_engine()
    with Reader(golden.journal) as reader:
        records = list(reader.records())
    start = next(r for r in records if r.rtype == RecordType.SESSION_START)
    tag = token_tag(unpack(RecordType.SESSION_START, start.payload))
    assert len(tag) == 5                  # the session's tokens carry its tag, as recovery's replay sets it
    engine.oms.start_session(tag)
    replayed = []
    for event in engine_events(records, inputs.limits.clock_profile):
        replayed.extend(a.packet for a in engine.on_event(event) if isinstance(a, SendOrder))
    journaled = [raw_bytes(unpack(RecordType.ORDER_SENT, r.payload)) for r in records
                 if r.rtype == RecordType.ORDER_SENT]
    assert replayed == journaled and journaled
    note = next(unpack_json(r.payload) for r in records if r.rtype == RecordType.METRICS)
    assert unpack(RecordType.SESSION_START, start.payload)["profile"] == b"eu-hft"
    assert note["clock_source"] == "ptp-lab" and "grandmaster is this host's own clock" in note["clock_evidence"]
