"""The firm's requests a crash recovery accounted for, in CAT and the order records: the Modify a
recovery adopted from the venue (RECON adopt-modify: its ORDER_SENT lost) has its MEMR rejected with
what the journal proves of it, beside the venue's MEOM; and a Cancel the venue never received (a
recovery sent it again, resend-cancel) is told apart the same way by both reports, wherever the
chunks end."""
from __future__ import annotations

from journal.catalogue import RecordType
from recovery.reconcile import AdoptModify, resolution_json
from recovery.replay import RECON_BEGIN, RECON_OUTCOME, RECON_RESOLUTION
from reports import events
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order
from tests.reports.test_recovered_orders import resent_cancel_day


def test_the_memr_of_a_modify_a_recovery_adopted_is_rejected_with_what_the_journal_proves(tmp_path):
    b = accepted_order("M1", 1, "S", 1_500_100, 500)
    b.advance(10_000); b.modify("M1", "S", 400); b.advance(10_000); b.modified("M1", "S", 400)   # journaled
    # a restart: the next Modify's ORDER_SENT was lost with the torn tail; the venue applied it
    b.advance(2_000_000_000)
    b.session_start(session_id=2); b.clock_sample()
    b.json_record(RecordType.RECON, {"kind": RECON_BEGIN, "reconciled": False, "requested_sequence": 1})
    b.advance(1_000)
    adoption = len(b.records) + 1
    b.json_record(RecordType.RECON, {"kind": RECON_RESOLUTION, "resolution": resolution_json(
        AdoptModify("M1", 1, "T", 1_500_100, 400, 300))})
    b.advance(1_000); b.modified("M1", "T", 300)           # the venue's answer, just after it
    b.json_record(RecordType.RECON, {"kind": RECON_OUTCOME, "reconciled": True})
    b.clock_sample()
    run(["cat", "orders"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)

    rows = [r for r in read(tmp_path / "o", "cat", "order_events").to_pylist() if r["orderID"] == "M1"]
    # the journaled Modify's route and both modifications the venue made are reported
    assert [(r["type"], r["seq"], r["quantity"]) for r in rows if r["type"] in ("MEMR", "MEOM")] == [
        ("MEMR", 5, 400), ("MEOM", 6, 400), ("MEOM", adoption + 1, 300)]
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    # the adopted Modify's route: owed, not reportable without its send time; one reject, its own
    assert [(r["seq"], r["field"], r["value"]) for r in rejects] == [(adoption + 1, "routedOrderID", "M1")]
    reason = rejects[0]["reason"]
    assert reason.startswith("no MEMR: the firm's Modify of this order was lost")
    assert f"adopt-modify at journal sequence {adoption})" in reason and "300 shares, side T" in reason
    assert "eventTimestamp" in reason and "no stand-in time" in reason


def _cancels(out) -> tuple[list, list, list]:
    cat = [(r["seq"], r["type"]) for r in read(out, "cat", "order_events").to_pylist() if r["type"] == "MECR"]
    cat_rejects = [(r["seq"], r["field"]) for r in read(out, "cat", "rejects").to_pylist()]
    orders = [(r["seq"], r["recovery_status"], r["recovery_seq"]) for r in read(out, "orders", "order_events")
              .to_pylist() if r["event_type"] == "SENT_CANCEL"]
    return cat, cat_rejects, orders


def test_a_cancel_the_venue_never_received_is_told_apart_alike_in_cat_and_the_order_records(tmp_path, monkeypatch):
    b, resolved = resent_cancel_day(records_between=5)      # its answer six records on
    journal = b.write(tmp_path / "j")
    lost, again = 12, resolved + 2
    expected = ([(5, "MECR"), (again, "MECR")], [(lost, "routedOrderID")],
                [(5, None, None), (lost, "NOT_SENT", resolved), (again, None, None)])
    run(["cat", "orders"], journal, tmp_path / "whole", refdata_dir=FIXTURE_REFDATA, text=False)
    assert _cancels(tmp_path / "whole") == expected
    # chunks smaller than the gap between the first Cancel and its answer: the same
    monkeypatch.setattr(events, "CHUNK_SEQS", 2)
    run(["cat", "orders"], journal, tmp_path / "small", refdata_dir=FIXTURE_REFDATA, text=False)
    assert _cancels(tmp_path / "small") == expected
