"""The firm's requests a crash recovery accounted for, in CAT and the order records: the Modify a
recovery adopted from the venue (RECON adopt-modify: its ORDER_SENT lost) has its MEMR rejected with
what the journal proves of it, beside the venue's MEOM; and a Cancel the venue never received (a
recovery sent it again, resend-cancel) is told apart the same way by both reports, wherever the
chunks end."""
from __future__ import annotations

import datetime as dt

import numpy as np

from journal.catalogue import RecordType
from recovery.reconcile import AdoptModify, resolution_json
from recovery.replay import RECON_BEGIN, RECON_OUTCOME, RECON_RESOLUTION
from reports import events, timetext
from reports.run import run
from reports.source import Selection
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


def test_a_cancel_replay_decided_again_that_the_venue_acted_on_has_its_own_row(tmp_path, monkeypatch):
    """A power loss took the ORDER_SENTs of the Cancels the engine sent on an unhealthy clock sample
    (the venue cancelled both orders) but kept that input: replay decides the Cancels again, recovery
    lists them as decided with no ORDER_SENT and sends nothing. Each gets a firm's Cancel row at the
    RECON record that lists it, marked ADOPTED with that record's sequence, before the venue's
    Canceled (CAME); wherever chunks end."""
    from journal import Reader
    from mm_core.events import ClockSample, SendOrder
    from mm_core.types import OrderKind
    from recovery.recover import recover
    from tests.mm_core.wire import MS
    from tests.recovery.bridged import Bridged, quiet_venue
    from tests.recovery.journaling import RunnerLike, recovery_settings, tear
    from tests.recovery.test_adopt_gateway import recon_docs
    from tests.reports.test_adopted_drill import read as read_ns, rejects

    with quiet_venue(tmp_path) as venue:
        path = str(tmp_path / "journal")
        runner = Bridged(path, venue.ports.ouch)
        bid, ask = runner.quoting()
        runner.now += 300 * MS
        with Reader(path) as reader:
            kept = reader.last_seq + 1                # the clock sample the engine pulls its quotes on
        sent = [a.intent for a in RunnerLike.feed(runner, ClockSample(runner.now, False))
                if isinstance(a, SendOrder)]
        assert {(i.kind, i.token) for i in sent} == {(OrderKind.CANCEL, bid.token), (OrderKind.CANCEL, ask.token)}
        assert {m.reason for m in runner.unjournaled_answers()} == {"U"}      # the venue cancelled both
        runner.crash()
        tear(path, kept + 1, power_loss=True)
        result = recover(recovery_settings(path, ("127.0.0.1", venue.ports.ouch)))
        assert result.reconciled and result.orders_sent == 0, result.reasons
    (begin,) = [seq for seq, d in recon_docs(path) if d["kind"] == "begin"]

    def rows(out) -> list[tuple]:
        return [(r["seq"], r["event_type"], r["origin"], r["rts24_event"], r["recovery_status"], r["recovery_seq"],
                 r["order_qty"]) for r in read_ns(out, "orders", "order_events").to_pylist()
                if r["order_id"] == bid.token]

    run(["orders", "cat"], path, tmp_path / "whole")
    got = rows(tmp_path / "whole")
    assert [r[1:] for r in got] == [
        ("SENT_NEW", "FIRM", "NEWO", None, None, bid.leaves), ("ACCEPTED", "VENUE", None, None, None, bid.leaves),
        ("SENT_CANCEL", "FIRM", None, "ADOPTED", begin, None), ("CANCELED", "VENUE", "CAME", None, None, None)]
    assert got[2][0] == begin < got[3][0]
    assert rejects(tmp_path / "whole", "orders") == []
    table = read_ns(tmp_path / "whole", "orders", "order_events").to_pylist()
    cancel = [r for r in table if r["event_type"] == "SENT_CANCEL"]
    assert sorted(r["order_id"] for r in cancel) == sorted((bid.token, ask.token))
    # the order's own journaled origin: its side and parties, as its Enter's row has them
    enters = {r["order_id"]: r for r in table if r["event_type"] == "SENT_NEW"}
    assert all((r["side"], r["algo_id"], r["trader_code"]) == tuple(enters[r["order_id"]][k] for k in
               ("side", "algo_id", "trader_code")) for r in cancel)
    # CAT: the venue's MEOC is reported; the Cancel's MECR is owed but its send time was lost: rejected
    def cat(out) -> tuple[list, list]:
        return ([r["type"] for r in read_ns(out, "cat", "order_events").to_pylist() if r["orderID"] == bid.token],
                [(r["seq"], r["field"], r["reason"]) for r in rejects(out, "cat") if r["value"] == bid.token])
    reported, rejected = cat(tmp_path / "whole")
    assert reported == ["MENO", "MEOC"]           # (its MEOR lacks the test venue's session name)
    assert [(seq, field) for seq, field, _ in rejected] == [(begin, "routedOrderID")]
    assert rejected[0][2].startswith("no MECR: replay decided this Cancel again") and \
        f"journal sequence {begin} lists it" in rejected[0][2] and "no stand-in time" in rejected[0][2]
    monkeypatch.setattr(events, "CHUNK_SEQS", 2)
    run(["orders", "cat"], path, tmp_path / "small")
    assert rows(tmp_path / "small") == got and cat(tmp_path / "small") == (reported, rejected)
    # the recovery's CAT trading day selected: the same reject and MEOC (the Enter was another day's)
    at = next(r["event_time_utc"] for r in table if r["seq"] == begin)
    day = dt.date(1970, 1, 1) + dt.timedelta(days=int(timetext.eastern_days(np.array([at], np.int64))[0]))
    run(["cat"], path, tmp_path / "day", selection=Selection(trade_date=day))
    assert cat(tmp_path / "day") == (["MEOC"], rejected)
