"""A token a later order of the journal reuses (the same token entered again after the first order
ended: the next trading day, or against a venue that allowed it): each event joins to the order
that held the token when the event was journaled, not to the latest order with it. The join found
the latest, so the first order's events took the second order's side, price, size and remaining
quantity whenever both orders fell in one chunk."""
import pytest

from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order


def _day():
    b = accepted_order("D1", 1, "B", 1_500_000, 100)      # seq 3 entered, 4 accepted
    b.advance(10_000); b.execute("D1", 40)                 # 5: 60 left
    b.advance(10_000); b.cancel("D1")                      # 6
    b.advance(10_000); b.canceled("D1", 60)                # 7: 0 left, the order is done
    b.advance(10_000); b.enter("D1", 1, "S", 1_510_000, 300)   # 8: the token again, a sell
    b.advance(10_000); b.accept("D1")                      # 9
    b.advance(10_000); b.execute("D1", 100)                # 10: 200 left
    return b


@pytest.mark.parametrize("chunk", [None, 3])
def test_each_event_joins_the_order_that_held_its_token_then(tmp_path, monkeypatch, chunk):
    from reports import events
    if chunk:
        monkeypatch.setattr(events, "CHUNK_SEQS", chunk)
    run(["orders", "cat"], _day().write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "orders", "order_events").to_pylist()
    got = [(r["seq"], r["side"], r["leaves_qty"], r["rts24_event"]) for r in rows]
    assert got == [(3, "BUYI", None, "NEWO"), (4, "BUYI", 100, None), (5, "BUYI", 60, "PARF"),
                   (6, "BUYI", None, None), (7, "BUYI", 0, "CAME"),
                   (8, "SELL", None, "NEWO"), (9, "SELL", 300, None), (10, "SELL", 200, "PARF")]
    assert [str(r["exec_price"]) for r in rows if r["exec_qty"]] == ["150.0000", "151.0000"]
    cat = read(tmp_path / "o", "cat", "order_events").to_pylist()
    assert [(r["type"], r["side"], r["price"], r["quantity"], r["cancelQty"]) for r in cat] == [
        ("MENO", "B", "150.0000", 100, None), ("MEOR", "B", "150.0000", 100, None),
        ("MECR", None, None, None, 60), ("MEOC", None, None, None, 60),
        ("MENO", "SL", "151.0000", 300, None), ("MEOR", "SL", "151.0000", 300, None)]


def test_a_journal_with_no_order_sent_at_all_rejects_the_venue_message_not_the_report(tmp_path):
    """No ORDER_SENT anywhere (the book of orders is empty): a venue message about a token the
    firm never sent is a rejected row with its reason, as beside other orders (an empty book once
    made the join index past its end)."""
    from tests.reports.journal_builder import DayBuilder
    b = DayBuilder()
    b.clock_sample()
    b.ledger.orders["ZZ"] = dict(symbol_id=1, side="B", price=1, qty=1, tif=0, algo=1, desk=1, trader=1, client=0)
    b.execute("ZZ", 5, 1_500_000)
    result = run(["orders", "cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rejects = read(tmp_path / "o", "orders", "rejects").to_pylist()
    assert result.rejected >= 1 and any("no ORDER_SENT" in r["reason"] for r in rejects)
