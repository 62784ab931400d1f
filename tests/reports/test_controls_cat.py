import pyarrow.compute as pc

from reports.cat import CAT_TYPES
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA


def test_control_evidence_tables(all_reports):
    denials = read(all_reports, "controls", "denials").to_pylist()
    assert [(d["order_id"], d["check_id"], d["value"], d["limit"], d["detail"]) for d in denials] == \
        [("Q6", 3, 9000, 5000, "max order qty")]
    states = read(all_reports, "controls", "state_changes").to_pylist()
    assert [(s["from_state"], s["to_state"], s["actor"]) for s in states] == [(1, 2, "gateway"), (2, 1, "operator")]
    kills = read(all_reports, "controls", "kills").to_pylist()
    assert kills[0]["scope"] == "ALL" and kills[0]["orders_cancelled"] == 3
    limits = read(all_reports, "controls", "limits").to_pylist()
    assert limits[0]["version"] == "L1" and '"max_order_qty":5000' in limits[0]["document"]
    drills = read(all_reports, "controls", "drills").to_pylist()
    assert drills[0]["drill"] == "kill-mid-session" and drills[0]["passed"] is True
    summary = {r["measure"]: r["count"] for r in read(all_reports, "controls", "summary").to_pylist()}
    assert summary["risk_denials"] == 1 and summary["kill_activations"] == 1 and summary["drills_failed"] == 0


def test_cat_events_with_cat_field_names(all_reports, day):
    t = read(all_reports, "cat", "order_events")
    for name in ("type", "actionType", "firmROEID", "CATReporterIMID", "orderKeyDate", "orderID", "symbol",
                 "eventTimestamp", "manualFlag", "side", "price", "quantity", "orderType", "timeInForce",
                 "tradingSession", "firmDesignatedID", "accountHolderType",
                 "destination", "routedOrderID", "priorOrderID", "cancelQty", "leavesQty"):
        assert name in t.column_names, name
    rows = t.to_pylist()
    types = [r["type"] for r in rows]
    assert set(types) <= set(CAT_TYPES)
    assert types.count("MENO") == types.count("MEOR") == day.ledger.counts["SENT_NEW"]
    assert types.count("MEOM") == day.ledger.counts["SENT_REPLACE"] + day.ledger.counts["SENT_MODIFY"]
    assert types.count("MEOC") == day.ledger.counts["SENT_CANCEL"]
    assert "MEOT" not in types            # executions on an exchange are the exchange's to report
    meno = {r["orderID"]: r for r in rows if r["type"] == "MENO"}
    assert meno["Q1"]["eventTimestamp"] == "20260302 093000.001000000"      # Eastern Time
    assert meno["Q4"]["side"] == "SS" and meno["Q4"]["timeInForce"] == "IOC"
    assert meno["Q1"]["timeInForce"] == "DAY=20260302" and meno["Q1"]["accountHolderType"] == "P"
    assert meno["Q5"]["accountHolderType"] == "I" and meno["Q5"]["firmDesignatedID"] == "5493001KJTIIGC8Y1R12"
    meom = [r for r in rows if r["type"] == "MEOM"][0]
    assert (meom["orderID"], meom["priorOrderID"], meom["quantity"]) == ("Q3", "Q2", 150)
    meoc = [r for r in rows if r["type"] == "MEOC"][0]
    assert (meoc["orderID"], meoc["cancelQty"], meoc["leavesQty"]) == ("Q3", 100, 0)
    assert len(set(r["firmROEID"] for r in rows)) == len(rows)


def _cat_with_arca_off_exchange(day_journal, tmp_path, selection=None):
    """The day's CAT report with NYSE ARCA (SPY, IVV) taken as a venue that is not an exchange."""
    import shutil
    from reports.run import run
    from reports.source import Selection
    ref = tmp_path / "ref"
    shutil.copytree(FIXTURE_REFDATA, ref)
    text = (ref / "mics.toml").read_text()
    (ref / "mics.toml").write_text(text.replace('name = "NYSE ARCA"', 'name = "NYSE ARCA"\ncat_exchange = false'))
    run(["cat"], day_journal, tmp_path / "o", selection or Selection(), refdata_dir=ref)
    return read(tmp_path / "o", "cat", "order_events")


def test_cat_meot_of_a_trade_the_venue_breaks_keeps_cancel_flag_false(tmp_path):
    """A venue's Broken Trade, in the range, after it, or past any look-ahead, changes nothing CAT
    wants from the firm (Tech Specs 4.0.0-r18 cancelFlagCodeSet, CAT FAQ E25): every MEOT keeps
    cancelFlag false with no cancelTimestamp, and the notes say why and that no COR or DEL follows."""
    import json
    import pyarrow.parquet as pq
    from reports import cat_json
    from reports.source import Selection
    from tests.reports.journal_builder import NS, accepted_order
    b = accepted_order("K1", 3, "B", 5_120_000, 300)
    b.advance(10_000); b.execute("K1", 100)
    b.advance(10_000); b.execute("K1", 200)
    b.advance(2 * NS); b.broken("K1", b.match)                       # in the range
    end = len(b.records)
    b.advance(30 * 60 * NS); b.broken("K1", b.match - 1)            # 30 min after the range
    for selection in (Selection(), Selection(last_seq=end)):
        out = tmp_path / str(selection.last_seq)
        out.mkdir()
        rows = _cat_with_arca_off_exchange(b.write(out / "j"), out, selection).to_pylist()
        meot = [r for r in rows if r["type"] == "MEOT"]
        assert [(r["tradeID"], r["cancelFlag"], r["cancelTimestamp"]) for r in meot] == \
            [("1001", False, None), ("1002", False, None)]
        files = sorted((out / "o" / "cat" / cat_json.DIRECTORY).iterdir())
        lines = [json.loads(line) for p in files if not p.name.endswith(".meta.json")
                 for line in p.read_text().splitlines()]
        assert [(e["cancelFlag"], "cancelTimestamp" in e) for e in lines if e["type"] == "MEOT"] == [(False, False)] * 2
        notes = pq.read_schema(next((out / "o" / "cat" / "order_events").rglob("*.parquet"))).metadata[b"cat.notes"]
        meta = json.loads(next(p for p in files if p.name.endswith(".meta.json")).read_text())
        for said in ("cancelFlagCodeSet", "E25", "no COR or DEL of the MEOT in a later file"):
            assert said in notes.decode() and said in meta["notes"], said


def test_cat_meot_for_executions_off_exchange(day_journal, tmp_path):
    t = _cat_with_arca_off_exchange(day_journal, tmp_path)
    meot = t.filter(pc.equal(t["type"].cast("string"), "MEOT")).to_pylist()
    assert [(r["sellDetails"]["orderID"], r["quantity"], r["price"]) for r in meot] == [("Q4", 120, "512.0000"),
                                                                                        ("Q7", 100, "500.0000")]


def test_cat_meot_carries_the_trade_details_the_spec_requires(day_journal, tmp_path):
    """MEOT (CAT IM Tech Specs 4.0.0-r18 Trade event): tradeKeyDate, tradeID, quantity, price,
    capacity (the OUCH Enter Order's), cancelFlag, sideDetailsInd and the firm's side details
    (orderKeyDate, orderID, side), with no order-event fields of its own (orderID, side,
    electronicDupFlag); what the journal cannot know is named in the report's notes."""
    import json
    import pyarrow.parquet as pq
    from reports import cat, cat_json
    rows = _cat_with_arca_off_exchange(day_journal, tmp_path).to_pylist()
    meno = {r["orderID"]: r for r in rows if r["type"] == "MENO"}
    meot = [r for r in rows if r["type"] == "MEOT"]
    q4 = meot[0]
    assert (q4["tradeKeyDate"], q4["tradeID"], q4["quantity"], q4["price"], q4["capacity"], q4["cancelFlag"],
            q4["sideDetailsInd"]) == (q4["eventTimestamp"], "1004", 120, "512.0000", "P", False, "SELL")
    assert q4["sellDetails"] == {"orderKeyDate": meno["Q4"]["eventTimestamp"], "orderID": "Q4", "side": "SS"}
    assert q4["buyDetails"] is None and q4["orderID"] is None and q4["orderKeyDate"] is None
    assert q4["side"] is None and q4["electronicDupFlag"] is None
    assert [r["sellDetails"]["side"] for r in meot] == ["SS", "SL"]
    files = sorted((tmp_path / "o" / "cat" / cat_json.DIRECTORY).iterdir())
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    line = next(e for e in lines if e["type"] == "MEOT")
    assert line["sellDetails"] == [{"orderKeyDate": meno["Q4"]["eventTimestamp"], "orderID": "Q4", "side": "SS"}]
    assert line["capacity"] == "P" and line["sideDetailsInd"] == "SELL" and line["tradeKeyDate"] == q4["eventTimestamp"]
    assert line["cancelFlag"] is False and line["price"] == 512.0 and line["quantity"] == 120
    assert not {"orderID", "orderKeyDate", "side", "buyDetails", "electronicDupFlag"} & set(line)
    for name in cat.REQUIRED["MEOT"] + ("type", "actionType", "firmROEID", "symbol", "eventTimestamp"):
        assert name in line, name
    meta = json.loads(files[1].read_text())
    path = next((tmp_path / "o" / "cat" / "order_events").rglob("*.parquet"))
    notes = pq.read_schema(path).metadata[b"cat.notes"].decode()
    for unknown in ("tapeTradeID", "marketCenterID", "reportingExceptionCode", "contra"):
        assert unknown in notes and unknown in meta["notes"]


def test_cat_partial_cancel_is_meoc_with_leaves(tmp_path):
    from reports.run import run
    from tests.reports.journal_builder import DayBuilder
    b = DayBuilder()
    b.clock_sample()
    b.enter("P1", 1, "B", 1_500_000, 500)
    b.accept("P1")
    b.cancel("P1", new_qty=200)                       # reduce 500 -> 200
    b.canceled("P1", 300)
    b.cancel("P1")                                    # cancel the rest
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = [r for r in read(tmp_path / "o", "cat", "order_events").to_pylist() if r["type"] == "MEOC"]
    assert [(r["cancelQty"], r["leavesQty"]) for r in rows] == [(300, 200), (200, 0)]


def test_cat_cancel_before_the_order_was_accepted_cancels_its_whole_quantity(tmp_path):
    """A cancel sent while the order is pending new (no Accepted yet): cancelQty is the order's
    full quantity less the size it is reduced to, not missing (and the row not rejected for it)."""
    from reports.run import run
    from tests.reports.journal_builder import DayBuilder
    b = DayBuilder()
    b.session_start()
    b.clock_sample()
    b.enter("N1", 1, "B", 1_500_000, 500)
    b.advance(1_000); b.cancel("N1")                 # cancel all before any venue answer
    b.advance(1_000); b.accept("N1")
    b.advance(1_000); b.canceled("N1", 500)
    b.enter("N2", 1, "S", 1_500_100, 400)
    b.advance(1_000); b.cancel("N2", new_qty=100)    # reduce to 100 while pending new
    result = run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = [r for r in read(tmp_path / "o", "cat", "order_events").to_pylist() if r["type"] == "MEOC"]
    assert [(r["orderID"], r["cancelQty"], r["leavesQty"]) for r in rows] == [("N1", 500, 0), ("N2", 300, 100)]
    assert result.rejected == 0


def test_cat_notes_record_what_of_the_meot_side_details_the_spec_confirmed_and_what_not(day_journal, tmp_path):
    """The MEOT side-details shape as checked against the CAT IM Technical Specifications: what was
    confirmed (required for the subject order's side, its fields) and what could not be
    (Table 51's own field list, sideDetailsInd's code set), in the Parquet and submission notes."""
    import json
    import pyarrow.parquet as pq
    from reports import cat_json
    _cat_with_arca_off_exchange(day_journal, tmp_path)
    path = next((tmp_path / "o" / "cat" / "order_events").rglob("*.parquet"))
    notes = pq.read_schema(path).metadata[b"cat.notes"].decode()
    meta = json.loads(next(p for p in (tmp_path / "o" / "cat" / cat_json.DIRECTORY).iterdir()
                           if p.name.endswith(".meta.json")).read_text())
    for said in ("4.0.0-r18", "Table 51", "required for the side of the subject order",
                 "orderKeyDate (required with orderID)",
                 "Table 51's own field list could not be read", "sideDetailsInd is a MEOT field",
                 "its code set could not be read: the values BUY / SELL given here are not confirmed"):
        assert said in notes and said in meta["notes"], said
