"""Orders a crash recovery resolved: an Enter or Replace the venue never received (RECON resolution
mark-not-sent) is no route in CAT (its MEOR / MEMR rejected with the reason), its order closed by a
firm-initiated MEOC at the resolution, and its order records say NOT_SENT with no NEWO; an execution
of an order the recovery adopted from the venue is rejected for that reason alone."""
from journal.catalogue import RecordType, TsSource
from recovery.reconcile import AdoptPending, MarkNotSent, ResendCancel, resolution_json
from recovery.replay import RECON_BEGIN, RECON_OUTCOME, RECON_RESOLUTION
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder, accepted_order
from tests.reports.test_controls_cat import _submission_lines


def _recovery(b: DayBuilder, *resolutions) -> int:
    """A restart and a recovery that journals `resolutions`; the sequence of the first resolution
    record (records are numbered from 1 in the order they are written)."""
    b.advance(2_000_000_000)
    b.session_start(session_id=2)
    b.clock_sample()
    b.json_record(RecordType.RECON, {"kind": RECON_BEGIN, "reconciled": False, "requested_sequence": 1})
    first = len(b.records) + 1
    for r in resolutions:
        b.advance(1_000)
        b.json_record(RecordType.RECON, {"kind": RECON_RESOLUTION, "resolution": resolution_json(r)})
    b.json_record(RecordType.RECON, {"kind": RECON_OUTCOME, "reconciled": True})
    return first


def _day_with_an_unsent_enter_and_an_unsent_replace() -> tuple[DayBuilder, int]:
    b = DayBuilder()
    b.session_start(); b.clock_sample()
    b.enter("OK1", 1, "B", 1_499_900, 100); b.advance(10_000); b.accept("OK1")
    b.advance(10_000); b.enter("R1", 1, "S", 1_500_300, 200); b.advance(10_000); b.accept("R1")
    b.advance(10_000); b.enter("N1", 1, "B", 1_499_800, 300)      # journaled; the process dies before it leaves
    b.advance(10_000); b.replace("R1", "R2", 1_500_400, 200)     # and before this one leaves
    b.advance(10_000); b.cancel("N1")                            # a latch pulls the unanswered order too
    resolved = _recovery(b, MarkNotSent("N1"), MarkNotSent("R2"))
    b.clock_sample()
    return b, resolved


def test_an_enter_the_venue_never_received_is_no_route_and_is_closed_at_the_resolution(tmp_path):
    b, resolved = _day_with_an_unsent_enter_and_an_unsent_replace()
    journal = b.write(tmp_path / "j")
    run(["cat", "orders"], journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "cat", "order_events").to_pylist()
    of = {t: [r["type"] for r in rows if r["orderID"] == t] for t in ("OK1", "R1", "N1")}
    assert of["OK1"] == ["MENO", "MEOR"] and of["R1"] == ["MENO", "MEOR"]     # the unsent MEMR is gone
    assert of["N1"] == ["MENO", "MEOC"]                                        # no MEOR, no MECR
    meno, meoc = (next(r for r in rows if r["orderID"] == "N1" and r["type"] == t) for t in ("MENO", "MEOC"))
    assert meoc["seq"] == resolved and meoc["eventTimestamp"] > meno["eventTimestamp"]
    assert meoc["eventTimestamp"] == "20260302 093002.000061000"             # the resolution's own time
    assert (meoc["cancelQty"], meoc["leavesQty"], meoc["initiator"]) == (300, 0, "F")
    assert meoc["orderKeyDate"] == meno["orderKeyDate"] and meoc["symbol"] == "AAPL"
    assert len({r["firmROEID"] for r in rows}) == len(rows)
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    why = {(r["seq"], r["value"]): r["reason"] for r in rejects}
    assert len(rejects) == 3                      # N1's MEOR and MECR, R2's MEMR: nothing else
    assert "no MEOR" in why[(meno["seq"], "N1")] and f"not sent at journal sequence {resolved}" in why[(meno["seq"], "N1")]
    assert any(k[1] == "R2" and v.startswith("no MEMR") for k, v in why.items())
    assert any(k[1] == "N1" and v.startswith("no MECR") for k, v in why.items())
    lines, _ = _submission_lines(tmp_path / "o")
    assert [(x["type"], x["orderID"]) for x in lines if x["orderID"] == "N1"] == [("MENO", "N1"), ("MEOC", "N1")]
    assert not any(x.get("routedOrderID") in ("N1", "R2") for x in lines)

    orders = read(tmp_path / "o", "orders", "order_events").to_pylist()
    status = {(r["event_type"], r["order_id"]): (r["rts24_event"], r["recovery_status"], r["recovery_seq"])
              for r in orders}
    assert status[("SENT_NEW", "N1")] == (None, "NOT_SENT", resolved)      # never submitted: no NEWO
    assert status[("SENT_REPLACE", "R2")] == (None, "NOT_SENT", resolved + 1)
    assert status[("SENT_CANCEL", "N1")] == (None, "NOT_SENT", resolved)
    assert status[("SENT_NEW", "OK1")] == ("NEWO", None, None)
    assert status[("SENT_NEW", "R1")] == ("NEWO", None, None)


def test_the_closing_meoc_does_not_depend_on_where_chunks_end(tmp_path, monkeypatch):
    from reports import events
    b, _ = _day_with_an_unsent_enter_and_an_unsent_replace()
    journal = b.write(tmp_path / "j")
    run(["cat"], journal, tmp_path / "whole", refdata_dir=FIXTURE_REFDATA, text=False)
    monkeypatch.setattr(events, "CHUNK_SEQS", 2)
    run(["cat"], journal, tmp_path / "small", refdata_dir=FIXTURE_REFDATA, text=False)
    key = lambda r: (r["seq"], r["type"])
    small = sorted(read(tmp_path / "small", "cat", "order_events").to_pylist(), key=key)
    assert small == sorted(read(tmp_path / "whole", "cat", "order_events").to_pylist(), key=key)
    assert [r["type"] for r in small if r["orderID"] == "N1"] == ["MENO", "MEOC"]


def resent_cancel_day(records_between: int = 0) -> tuple[DayBuilder, int]:
    """A Cancel the venue honoured (a Canceled of 200, `records_between` clock samples after it), then
    one it never got, which a recovery sent again; the venue answered the second send. The
    resolution's sequence."""
    b = accepted_order("C1", 1, "B", 1_499_900, 500)
    b.advance(10_000); b.cancel("C1", new_qty=300)        # honoured
    for _ in range(records_between):
        b.advance(10_000); b.clock_sample()
    b.advance(10_000); b.canceled("C1", 200)
    b.advance(10_000); b.cancel("C1")                     # journaled; the venue never gets it
    resolved = _recovery(b, ResendCancel("C1"))
    b.advance(10_000); b.cancel("C1")                     # sent again by the recovery
    b.advance(10_000); b.canceled("C1", 300)
    b.clock_sample()
    return b, resolved


def test_a_cancel_the_recovery_sent_again_is_one_route_cancel_not_two(tmp_path):
    b, resolved = resent_cancel_day()
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "cat", "order_events").to_pylist()
    assert [(r["type"], r["seq"], r["routeRejectedFlag"]) for r in rows if r["type"] in ("MECR", "MEOC")] == \
        [("MECR", 5, False), ("MEOC", 6, None), ("MECR", resolved + 2, False), ("MEOC", resolved + 3, None)]
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    assert [(r["seq"], r["field"]) for r in rejects] == [(7, "routedOrderID")]
    assert rejects[0]["reason"].startswith("no MECR: the venue never received this Cancel") and \
        f"journal sequence {resolved}" in rejects[0]["reason"]


def test_the_events_of_an_adopted_order_are_rejected_for_its_unknown_origin_not_for_meot_fields(tmp_path):
    b = DayBuilder()
    b.session_start(); b.clock_sample()
    adopted = _recovery(b, AdoptPending("P1", 1, "B", 1_499_900, 300))
    b.ledger.orders["P1"] = dict(symbol_id=1, side="B", price=1_499_900, qty=300, tif=99999, stock="AAPL")
    b.accept("P1", source=TsSource.USER); b.execute("P1", 100, source=TsSource.USER)
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    assert not (tmp_path / "o" / "cat" / "order_events").exists()         # no event of it reported
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    # MENO and MEOR at the venue's Accepted, each for the lost origin alone (no required-field
    # rejects); its execution on a venue that reports to CAT is no MEOT of the firm's (FAQ E15)
    accepted = adopted + 2                    # after the recovery's outcome record
    assert sorted((r["seq"], r["field"], r["reason"][:7]) for r in rejects) == [
        (accepted, "orderKeyDate", "no MENO"), (accepted, "orderKeyDate", "no MEOR")]
    assert all(f"RECON resolution at journal sequence {adopted})" in r["reason"] for r in rejects)


def test_a_closing_meoc_after_midnight_belongs_to_the_resolutions_trading_day(tmp_path):
    import datetime as dt
    from reports.source import Selection
    b = DayBuilder(start_hms=(23, 59, 0))                  # 18:59 ET on 2026-03-02
    b.session_start(); b.clock_sample()
    b.enter("D1", 1, "B", 1_499_900, 100)                  # never sent: the process dies
    b.advance(5 * 3600 * 10**9 + 60 * 10**9)              # 00:00 ET
    resolved = _recovery(b, MarkNotSent("D1"))             # restarted, resolved at 00:00:02 ET: 2026-03-03
    b.clock_sample()
    journal = b.write(tmp_path / "j")
    got = {}
    for day in (dt.date(2026, 3, 2), dt.date(2026, 3, 3)):
        out = tmp_path / day.isoformat()
        run(["cat"], journal, out, selection=Selection(trade_date=day), refdata_dir=FIXTURE_REFDATA)
        got[day.day] = [(r["type"], r["seq"], r["trade_date"]) for r in read(out, "cat", "order_events").to_pylist()]
    assert got[2] == [("MENO", 3, "2026-03-02")]           # the hive partition's value
    assert got[3] == [("MEOC", resolved, "2026-03-03")]
    run(["cat"], journal, tmp_path / "all", refdata_dir=FIXTURE_REFDATA)
    assert sorted((r["type"], r["trade_date"]) for r in read(tmp_path / "all", "cat", "order_events").to_pylist()) \
        == [("MENO", "2026-03-02"), ("MEOC", "2026-03-03")]
