import pyarrow.compute as pc

from reports import cat
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
    # what the venue did: its Replaced messages, and its user-requested (reason U) cancels
    assert types.count("MEOM") == day.ledger.counts["Replaced"] + day.ledger.counts["OrderModified"]
    assert types.count("MEOC") == day.ledger.cancel_reasons["U"]
    assert "MEOT" not in types            # executions on an exchange are the exchange's to report
    meno = {r["orderID"]: r for r in rows if r["type"] == "MENO"}
    assert meno["Q1"]["eventTimestamp"] == "20260302 093000.001000000"      # Eastern Time
    assert meno["Q4"]["side"] == "SS" and meno["Q4"]["timeInForce"] == "IOC"
    assert meno["Q1"]["timeInForce"] == "DAY=20260302" and meno["Q1"]["accountHolderType"] == "P"
    assert meno["Q5"]["accountHolderType"] == "I" and meno["Q5"]["firmDesignatedID"] == "5493001KJTIIGC8Y1R12"
    meom = [r for r in rows if r["type"] == "MEOM"][0]
    assert (meom["orderID"], meom["priorOrderID"], meom["quantity"]) == ("Q3", "Q2", 150)
    assert meom["priorOrderKeyDate"] == meno["Q2"]["orderKeyDate"] != meom["orderKeyDate"]
    meoc = [r for r in rows if r["type"] == "MEOC"][0]
    assert (meoc["orderID"], meoc["cancelQty"], meoc["leavesQty"]) == ("Q3", 100, 0)
    assert len(set(r["firmROEID"] for r in rows)) == len(rows)


def _cat_with_arca_marked(day_journal, tmp_path, mark, selection=None):
    """The day's CAT report with NYSE ARCA (SPY, IVV) marked `mark` (a mics.toml line): its order
    events, its rejects and the run's result."""
    import shutil
    from reports.run import run
    from reports.source import Selection
    ref = tmp_path / "ref"
    shutil.copytree(FIXTURE_REFDATA, ref)
    text = (ref / "mics.toml").read_text()
    if "cat_member" in mark:        # a broker-dealer or ATS, not the exchange the fixture makes it
        text = text.replace('cat_destination = "ARCA"\n', "")
    (ref / "mics.toml").write_text(text.replace('name = "NYSE ARCA"', f'name = "NYSE ARCA"\n{mark}'))
    result = run(["cat"], day_journal, tmp_path / "o", selection or Selection(), refdata_dir=ref)
    from reports.validate import REJECTS_SCHEMA
    rejected = (tmp_path / "o" / "cat" / "rejects").exists()        # written only when a row is rejected
    return (read(tmp_path / "o", "cat", "order_events"),
            read(tmp_path / "o", "cat", "rejects") if rejected else REJECTS_SCHEMA.empty_table(), result)


def _cat_with_arca_off_cat(day_journal, tmp_path, selection=None):
    """The day's CAT report with NYSE ARCA taken as a venue that does not report to CAT (so not an
    exchange: an Industry Member the routes name by CRD:IMID)."""
    return _cat_with_arca_marked(day_journal, tmp_path,
                                 'cat_reporter = false\ncat_member = "104031:ARCB"\ncat_affiliate = false',
                                 selection)


def _built_meot(journal, ref_dir, selection=None):
    """The MEOT rows as the CAT table builder makes them for a venue that does not report to CAT,
    before the checks (which reject every one of them; see cat.UNKNOWN_MEOT)."""
    import pyarrow as pa
    from reports import cat, events
    from reports.refdata import load
    from reports.source import Selection, open_slice
    src, ref = open_slice(journal, selection or Selection()), load(ref_dir)
    t = pa.concat_tables([cat.build_table(c, ref, None)[0] for c in events.collect_chunks(src, gather_joined=False)])
    return t.filter(pc.equal(t["type"].cast(pa.string()), "MEOT")).to_pylist()


def _submission_lines(out):
    import json
    from reports import cat_json
    files = sorted((out / "cat" / cat_json.DIRECTORY).iterdir())
    return ([json.loads(line) for p in files if not p.name.endswith(".meta.json") for line in p.read_text().splitlines()],
            [json.loads(p.read_text()) for p in files if p.name.endswith(".meta.json")])


def _notes(out):
    import pyarrow.parquet as pq
    return pq.read_schema(next((out / "cat" / "order_events").rglob("*.parquet"))).metadata[b"cat.notes"].decode()


def test_cat_no_meot_for_executions_on_a_venue_that_reports_to_cat(day_journal, tmp_path):
    """An ATS or broker-dealer venue (not an exchange) reports the executions of the orders routed
    to it, as an exchange does: CAT FAQ E15, the routing firm submits no Trade event (nor Order
    Fulfillment) for them. No MEOT is written or rejected for ARCA marked as such a venue."""
    t, rejects, result = _cat_with_arca_marked(day_journal, tmp_path, "cat_reporter = true")
    assert "MEOT" not in t.column("type").cast("string").to_pylist()
    lines, _ = _submission_lines(tmp_path / "o")
    assert "MEOT" not in {e["type"] for e in lines} and len(lines) == t.num_rows
    assert rejects.num_rows == 0 and result.rejected == 0


def test_cat_meot_off_cat_is_rejected_with_its_reasons_not_written(day_journal, tmp_path):
    """An execution on a venue that does not report to CAT is the firm's to report (FAQ E15), but
    its MEOT lacks tapeTradeID / reportingExceptionCode (not in the journal) and sideDetailsInd
    (code set unconfirmed): each execution is rejected for both, with the reason, and is neither in
    the Parquet nor in the submission files."""
    t, rejects, result = _cat_with_arca_off_cat(day_journal, tmp_path)
    assert "MEOT" not in t.column("type").cast("string").to_pylist()
    lines, metas = _submission_lines(tmp_path / "o")
    assert "MEOT" not in {e["type"] for e in lines}
    rows = rejects.to_pylist()
    executions = sorted({r["seq"] for r in rows})
    assert len(executions) == 2                                          # Q4 and Q7 on ARCA
    assert sorted((r["seq"], r["field"]) for r in rows) == \
        sorted((s, f) for s in executions for f in ("tapeTradeID", "sideDetailsInd"))
    reasons = {r["field"]: r["reason"] for r in rows}
    assert "reportingExceptionCode" in reasons["tapeTradeID"] and "TRF/ORF/ADF" in reasons["tapeTradeID"]
    assert "sideDetailsIndCodeSet" in reasons["sideDetailsInd"] and "no value is guessed" in reasons["sideDetailsInd"]
    assert all(r["value"] is None for r in rows) and result.rejected == len(rows)
    for said in ("E15", "cat_reporter = false", "executing broker", "no value is given"):
        assert said in _notes(tmp_path / "o") and all(said in m["notes"] for m in metas), said


def test_cat_meot_of_a_trade_the_venue_breaks_keeps_cancel_flag_false(tmp_path):
    """A venue's Broken Trade, in the range, after it, or past any look-ahead, changes nothing CAT
    wants from the firm (Tech Specs 4.0.0-r18 cancelFlagCodeSet, CAT FAQ E25): every MEOT is built
    with cancelFlag false and no cancelTimestamp, and the notes say why and that no COR or DEL
    follows."""
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
        journal = b.write(out / "j")
        _, rejects, _ = _cat_with_arca_off_cat(journal, out, selection)
        meot = _built_meot(journal, out / "ref", selection)
        assert [(r["tradeID"], r["cancelFlag"], r["cancelTimestamp"]) for r in meot] == \
            [("1001", False, None), ("1002", False, None)]
        assert {r["field"] for r in rejects.to_pylist()} == set(cat.UNKNOWN_MEOT)     # no other problem
        _, metas = _submission_lines(out / "o")
        for said in ("cancelFlagCodeSet", "E25", "no COR or DEL of the MEOT in a later file"):
            assert said in _notes(out / "o") and all(said in m["notes"] for m in metas), said


def test_cat_meot_carries_the_trade_details_the_journal_gives_and_no_guess(day_journal, tmp_path):
    """MEOT (CAT IM Tech Specs 4.0.0-r18 Trade event) as built: tradeKeyDate, tradeID, quantity,
    price, capacity (the OUCH Enter Order's), cancelFlag and the firm's side details (orderKeyDate,
    orderID, side), with no order-event fields of its own (orderID, side, electronicDupFlag) and no
    sideDetailsInd (its code set is unconfirmed: null, never BUY / SELL); the JSON line such a row
    would give carries the side details as a one-element array."""
    import json
    import pyarrow as pa
    from reports import cat_json
    t, _, _ = _cat_with_arca_off_cat(day_journal, tmp_path)
    meno = {r["orderID"]: r for r in t.to_pylist() if r["type"] == "MENO"}
    meot = _built_meot(day_journal, tmp_path / "ref")
    q4 = meot[0]
    assert (q4["tradeKeyDate"], q4["tradeID"], q4["quantity"], q4["price"], q4["capacity"], q4["cancelFlag"]) == \
        (q4["eventTimestamp"], "1004", 120, "512.0000", "P", False)
    assert [r["sideDetailsInd"] for r in meot] == [None, None]
    assert q4["sellDetails"] == {"orderKeyDate": meno["Q4"]["eventTimestamp"], "orderID": "Q4", "side": "SS"}
    assert q4["buyDetails"] is None and q4["orderID"] is None and q4["orderKeyDate"] is None
    assert q4["side"] is None and q4["electronicDupFlag"] is None
    assert [(r["sellDetails"]["orderID"], r["sellDetails"]["side"], r["quantity"], r["price"]) for r in meot] == \
        [("Q4", "SS", 120, "512.0000"), ("Q7", "SL", 100, "500.0000")]
    table = pa.Table.from_pylist(meot[:1])
    line = json.loads(cat_json.lines(table.select(["type"] + list(cat_json.ORDER))).to_pylist()[0])
    assert line["sellDetails"] == [{"orderKeyDate": meno["Q4"]["eventTimestamp"], "orderID": "Q4", "side": "SS"}]
    assert line["capacity"] == "P" and line["tradeKeyDate"] == q4["eventTimestamp"]
    assert line["cancelFlag"] is False and line["price"] == 512.0 and line["quantity"] == 120
    assert not {"orderID", "orderKeyDate", "side", "buyDetails", "electronicDupFlag", "sideDetailsInd"} & set(line)
    for name in cat.REQUIRED["MEOT"] + ("type", "actionType", "firmROEID", "symbol", "eventTimestamp"):
        assert name in line, name
    for unknown in ("tapeTradeID", "marketCenterID", "reportingExceptionCode", "contra"):
        assert unknown in _notes(tmp_path / "o")


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
    b.canceled("P1", 200)
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = [r for r in read(tmp_path / "o", "cat", "order_events").to_pylist() if r["type"] == "MEOC"]
    assert [(r["cancelQty"], r["leavesQty"]) for r in rows] == [(300, 200), (200, 0)]


def test_cat_cancel_before_the_order_was_accepted_cancels_its_whole_quantity(tmp_path):
    """A cancel sent while the order is pending new (no Accepted yet): the MEOC is the venue's
    Canceled once it came, with its whole quantity; a reduce the venue never answered is no MEOC.
    The Cancels' MECRs take off what the firm sent less what each asks to leave (nothing of a
    pending order had executed as far as the firm knew): 500, and 400 − 100."""
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
    assert [(r["orderID"], r["cancelQty"], r["leavesQty"]) for r in rows] == [("N1", 500, 0)]
    mecr = [r for r in read(tmp_path / "o", "cat", "order_events").to_pylist() if r["type"] == "MECR"]
    assert [(r["orderID"], r["cancelQty"]) for r in mecr] == [("N1", 500), ("N2", 300)]
    assert result.rejected == 0


def test_cat_notes_record_what_of_the_meot_side_details_the_spec_confirmed_and_what_not(day_journal, tmp_path):
    """The MEOT side-details shape as checked against the CAT IM Technical Specifications: what was
    confirmed (required for the subject order's side, its fields) and what could not be
    (Table 51's own field list, what sideDetailsInd's codes mean), in the Parquet and submission notes."""
    _cat_with_arca_off_cat(day_journal, tmp_path)
    notes, (_, metas) = _notes(tmp_path / "o"), _submission_lines(tmp_path / "o")
    for said in ("4.0.0-r18", "Table 51", "required for the side of the subject order",
                 "orderKeyDate (required with orderID)",
                 "Table 51's own field list could not be read", "sideDetailsInd is a MEOT field",
                 "BUY, SELL and NA the schema lists without their meaning: no value is given and the MEOT is "
                 "rejected for it"):
        assert said in notes and all(said in m["notes"] for m in metas), said
