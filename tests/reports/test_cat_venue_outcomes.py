"""CAT MEOM / MEOC and the order records' REME / CAME come from what the venue did (its Replaced,
Order Modified and user-requested Canceled), not from the requests the firm sent: a request the
venue overtook (the order filled first) leaves no modification or cancellation behind."""
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order


def _reports(b, tmp_path, kinds=("cat", "orders")):
    result = run(list(kinds), b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    return result, {k: read(tmp_path / "o", k, "order_events").to_pylist() for k in kinds}


def test_a_cancel_the_fill_overtook_is_no_meoc_and_no_came(tmp_path):
    b = accepted_order("C1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.cancel("C1")
    b.advance(10_000); b.execute("C1", 200)              # filled before the cancel arrived: no Canceled
    result, got = _reports(b, tmp_path)
    assert result.rejected == 0
    assert [r["type"] for r in got["cat"]] == ["MENO", "MEOR", "MECR"]     # the route cancel was sent: no MEOC
    assert [(r["event_type"], r["rts24_event"]) for r in got["orders"]] == [
        ("SENT_NEW", "NEWO"), ("ACCEPTED", None), ("SENT_CANCEL", None), ("EXECUTED", "FILL")]


def test_a_cancel_after_a_partial_fill_cancels_what_the_venue_cancelled(tmp_path):
    b = accepted_order("C2", 1, "S", 1_500_000, 200)
    b.advance(10_000); b.cancel("C2")
    b.advance(10_000); b.execute("C2", 100)
    b.advance(10_000); b.canceled("C2", 100)
    _, got = _reports(b, tmp_path)
    meoc = [r for r in got["cat"] if r["type"] == "MEOC"]
    assert [(r["orderID"], r["cancelQty"], r["leavesQty"], r["initiator"]) for r in meoc] == [("C2", 100, 0, "F")]
    assert [r["seq"] for r in meoc] == [r["seq"] for r in got["orders"] if r["event_type"] == "CANCELED"]
    assert [(r["event_type"], r["rts24_event"]) for r in got["orders"]][-2:] == [("EXECUTED", "PARF"),
                                                                               ("CANCELED", "CAME")]


def test_a_reduce_the_venue_confirmed_is_a_meoc_with_leaves_and_a_reme(tmp_path):
    b = accepted_order("C3", 1, "B", 1_500_000, 500)
    b.advance(10_000); b.cancel("C3", new_qty=200)
    b.advance(10_000); b.canceled("C3", 300)
    _, got = _reports(b, tmp_path)
    assert [(r["cancelQty"], r["leavesQty"]) for r in got["cat"] if r["type"] == "MEOC"] == [(300, 200)]
    assert [r["rts24_event"] for r in got["orders"] if r["event_type"] == "CANCELED"] == ["REME"]


def test_a_replace_the_fill_overtook_creates_no_order_in_cat(tmp_path):
    b = accepted_order("R1", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.replace("R1", "R2", 1_499_700, 200)
    b.advance(10_000); b.execute("R1", 200)              # the venue never answers the replace
    result, got = _reports(b, tmp_path)
    assert [r["type"] for r in got["cat"]] == ["MENO", "MEOR", "MEMR"]     # the re-route was sent: no MEOM
    assert "R2" not in {r["orderID"] for r in got["cat"]}
    assert [r["rts24_event"] for r in got["orders"] if r["event_type"] == "SENT_REPLACE"] == [None]


def test_a_replace_is_an_meom_when_the_venue_replaced_it_with_the_prior_key_date(tmp_path):
    b = accepted_order("R3", 1, "B", 1_500_000, 200)
    b.advance(10_000); b.replace("R3", "R4", 1_499_700, 150)
    b.advance(10_000); b.replaced("R3", "R4")
    b.advance(10_000); b.replace("R4", "R5", 1_499_600, 100)
    b.advance(10_000); b.replaced("R4", "R5")
    result, got = _reports(b, tmp_path)
    assert result.rejected == 0
    cat = got["cat"]
    meno = [r for r in cat if r["type"] == "MENO"][0]
    meom = [r for r in cat if r["type"] == "MEOM"]
    venue = [r["seq"] for r in got["orders"] if r["event_type"] == "REPLACED"]
    assert [(r["seq"], r["orderID"], r["priorOrderID"], r["price"], r["quantity"]) for r in meom] == [
        (venue[0], "R4", "R3", "149.9700", 150), (venue[1], "R5", "R4", "149.9600", 100)]
    # the prior order's own key date: R3's MENO, then R4's (the key date of the first MEOM)
    assert meom[0]["priorOrderKeyDate"] == meno["orderKeyDate"]
    assert meom[1]["priorOrderKeyDate"] == meom[0]["orderKeyDate"] != meom[1]["orderKeyDate"]
    assert [r["rts24_event"] for r in got["orders"] if r["event_type"] in ("SENT_REPLACE", "REPLACED")] == [
        None, "REME", None, "REME"]
