"""CAT route events: each Replace or Modify sent is a Route Modified (MEMR), each Cancel sent a Route
Cancelled (MECR), with the routedOrderID the venue knows, the prior one when a Replace changes it,
and routeRejectedFlag where the venue refused the route or its change."""
from mm_core.protocol import ouch
from reports.run import run
from tests.reports.conftest import read
from tests.reports.test_controls_cat import _submission_lines
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order


def _cat(b, tmp_path):
    result = run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    lines, _ = _submission_lines(tmp_path / "o")
    return result, read(tmp_path / "o", "cat", "order_events").to_pylist(), lines


def test_one_replace_gives_a_memr_with_its_prior_routed_order_id_and_the_venues_meom(tmp_path):
    b = accepted_order("R1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.replace("R1", "R2", 1_499_900, 150)
    b.advance(10_000); b.replaced("R1", "R2")
    result, rows, lines = _cat(b, tmp_path)
    assert result.rejected == 0
    assert [r["type"] for r in rows] == ["MENO", "MEOR", "MEMR", "MEOM"]
    meor, memr, meom = rows[1], rows[2], rows[3]
    assert (memr["orderID"], memr["orderKeyDate"]) == ("R1", meor["orderKeyDate"])   # the route it changes
    assert (memr["routedOrderID"], memr["priorRoutedOrderID"], memr["price"], memr["quantity"]) == \
        ("R2", "R1", "149.9900", 150)
    assert (memr["destination"], memr["senderIMID"], memr["routeRejectedFlag"]) == \
        (meor["destination"], meor["senderIMID"], False)
    assert memr["eventTimestamp"] < meom["eventTimestamp"]        # sent, then done by the venue
    assert [line["type"] for line in lines] == ["MENO", "MEOR", "MEMR", "MEOM"]
    assert lines[2]["priorRoutedOrderID"] == "R1" and lines[2]["routeRejectedFlag"] is False


def test_a_venue_reject_flags_the_route_and_a_cancel_reject_the_route_cancel(tmp_path):
    b = accepted_order("C1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.cancel("C1")
    b.advance(10_000); b._venue(ouch.CancelReject(timestamp=b._venue_ts(), token="C1"))
    b.enter("J1", 1, "S", 1_500_100, 100)
    b.advance(10_000); b.rejected("J1")
    result, rows, lines = _cat(b, tmp_path)
    flags = [(r["type"], r["routedOrderID"], r["routeRejectedFlag"]) for r in rows
             if r["type"] in ("MEOR", "MECR")]
    assert flags == [("MEOR", "C1", False), ("MECR", "C1", True), ("MEOR", "J1", True)]
    mecr = [r for r in rows if r["type"] == "MECR"][0]
    assert (mecr["leavesQty"], mecr["cancelQty"], mecr["orderID"]) == (None, 200, "C1")   # all 200 open
    assert [line.get("routeRejectedFlag") for line in lines if line["type"] in ("MEOR", "MECR")] == [False, True, True]


def test_a_modify_is_a_memr_keeping_its_routed_order_id_and_the_venues_order_modified_a_meom(tmp_path):
    b = accepted_order("M1", 1, "S", 1_500_000, 300)
    b.advance(10_000); b.modify("M1", "T", 200)            # a sell turned short sale, reduced to 200
    b.advance(10_000); b.modified("M1", "T", 200)
    result, rows, _ = _cat(b, tmp_path)
    assert result.rejected == 0
    got = [(r["type"], r["orderID"], r["routedOrderID"], r["priorRoutedOrderID"], r["dupROIDCond"], r["side"],
            r["price"], r["quantity"]) for r in rows[2:]]
    assert got == [("MEMR", "M1", "M1", None, True, "SS", "150.0000", 200),
                   ("MEOM", "M1", None, None, None, "SS", "150.0000", 200)]


def _rows_in_chunks(b, tmp_path, monkeypatch, chunk_seqs: int | None):
    """The CAT rows when the report reads the journal `chunk_seqs` sequences at a time (None: as it does)."""
    from reports import events
    if chunk_seqs is not None:
        monkeypatch.setattr(events, "CHUNK_SEQS", chunk_seqs)
    out = tmp_path / f"o{chunk_seqs}"
    journal = tmp_path / "j"               # one journal (one id, in every firmROEID) for every run
    if not journal.exists():
        b.write(journal)
    run(["cat"], journal, out, refdata_dir=FIXTURE_REFDATA, text=False)
    monkeypatch.undo()
    return read(out, "cat", "order_events").to_pylist()


def test_rejections_and_order_key_dates_do_not_depend_on_where_chunks_end(tmp_path, monkeypatch):
    # rejections read from the decoded chunks: one in the chunk after its request's still flags the
    # route (each chunk is built once the next is decoded); orderKeyDate of a later event is its
    # MENO's, whether the order was created in its chunk or in an earlier one
    b = accepted_order("C1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.cancel("C1")
    b.advance(10_000); b._venue(ouch.CancelReject(timestamp=b._venue_ts(), token="C1"))
    b.advance(10_000); b.canceled("C1", 200)
    for i in range(6):
        b.advance(10_000); b.enter(f"J{i}", 1, "S", 1_500_100 + i, 100)
        b.advance(10_000)
        if i % 2:
            b.rejected(f"J{i}")
        else:
            b.accept(f"J{i}"); b.advance(10_000); b.cancel(f"J{i}"); b.advance(10_000); b.canceled(f"J{i}", 100)
    whole = _rows_in_chunks(b, tmp_path, monkeypatch, None)
    flags = [(r["type"], r["routedOrderID"], r["routeRejectedFlag"]) for r in whole
             if r["routeRejectedFlag"] is not None]
    assert ("MECR", "C1", True) in flags and ("MEOR", "J1", True) in flags and ("MEOR", "J0", False) in flags
    keys = {}
    for r in whole:
        if r["type"] == "MENO":
            keys[r["orderID"]] = r["orderKeyDate"]
    assert all(r["orderKeyDate"] == keys[r["orderID"]] for r in whole if r["type"] in ("MEOC", "MECR"))
    for chunk_seqs in (1, 2, 3, 5):
        assert _rows_in_chunks(b, tmp_path, monkeypatch, chunk_seqs) == whole, chunk_seqs


def test_a_cancel_reject_flags_only_the_cancel_it_answers(tmp_path):
    # the first Cancel (down to 200) was honoured; the second (all) was refused: only it is flagged
    b = accepted_order("A1", 1, "B", 1_499_900, 500)
    b.advance(10_000); b.cancel("A1", new_qty=200)
    b.advance(10_000); b.canceled("A1", 300)
    b.advance(10_000); b.cancel("A1")
    b.advance(10_000); b._venue(ouch.CancelReject(timestamp=b._venue_ts(), token="A1"))
    b.advance(10_000); b.cancel("A1")                      # a third, honoured
    b.advance(10_000); b.canceled("A1", 200)
    result, rows, lines = _cat(b, tmp_path)
    mecr = [(r["seq"], r["cancelQty"], r["routeRejectedFlag"]) for r in rows if r["type"] == "MECR"]
    assert mecr == [(5, 300, False), (7, 200, True), (9, 200, False)]     # 500 open less 200 left; then all
    assert [x["routeRejectedFlag"] for x in lines if x["type"] == "MECR"] == [False, True, False]


def test_a_cancel_reject_after_a_chunk_boundary_flags_only_the_cancel_it_answers(tmp_path, monkeypatch):
    b = accepted_order("A1", 1, "B", 1_499_900, 500)
    b.advance(10_000); b.cancel("A1", new_qty=200)
    b.advance(10_000); b.canceled("A1", 300)
    b.advance(10_000); b.cancel("A1")
    b.advance(10_000); b._venue(ouch.CancelReject(timestamp=b._venue_ts(), token="A1"))
    for chunk_seqs in (None, 1, 2, 3):
        flags = [r["routeRejectedFlag"] for r in _rows_in_chunks(b, tmp_path, monkeypatch, chunk_seqs)
                 if r["type"] == "MECR"]
        assert flags == [False, True], chunk_seqs
