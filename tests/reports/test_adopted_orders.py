"""Orders a crash recovery adopted from the venue (RECON resolution adopt, or cancel with adopt):
the reports join their venue messages to the RECON record's terms from that record on, in a range
that starts after it too; an ORDER_SENT the journal kept stays the origin."""
from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from journal.catalogue import TsSource
from recovery.reconcile import AdoptPending, CancelAtVenue
from reports.run import run
from reports.source import Selection
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder
from tests.reports.test_recovered_orders import _recovery


def _terms(b: DayBuilder, token: str, side: str, price: int, qty: int) -> None:
    # (the ids are those the recovery's own Cancel of it carries, not the adopted order's)
    b.ledger.orders[token] = dict(symbol_id=1, side=side, price=price, qty=qty, tif=99999, stock="AAPL",
                                  algo=1, desk=1, trader=1, client=0)


def _rows(out, kind: str, table: str, columns: list[str]) -> list[dict]:
    return read(out, kind, table).select(columns).to_pylist()


def _day(start_hms: tuple = (14, 30, 0)) -> tuple[DayBuilder, int, int]:
    """An order whose Replace was lost (adopted as a replacement) and a short sale the venue held
    that recovery adopted to cancel; each executed after its RECON record. Their RECON sequences."""
    b = DayBuilder(start_hms=start_hms)
    b.session_start(); b.clock_sample()
    b.enter("E1", 1, "B", 1_499_900, 300); b.advance(10_000); b.accept("E1")
    replaced = _recovery(b, AdoptPending("R1", 1, "B", 1_500_000, 300, orig_token="E1"),
                         CancelAtVenue("C1", 1, "T", 1_500_100, 200, ref=77, adopt=True))
    _terms(b, "R1", "B", 1_500_000, 300); _terms(b, "C1", "T", 1_500_100, 200)
    b.replaced("E1", "R1"); b.execute("R1", 100, source=TsSource.USER)
    b.execute("C1", 50, source=TsSource.USER); b.cancel("C1"); b.canceled("C1", 150)
    return b, replaced, replaced + 1


def test_adopted_orders_are_reported_from_their_recon_record_also_in_a_range_after_it(tmp_path):
    b, r1, c1 = _day()
    journal = b.write(tmp_path / "j")
    first_venue = c1 + 2                          # the Replaced, after the recovery's outcome record
    for name, selection in (("all", Selection()), ("after", Selection(first_seq=first_venue))):
        out = tmp_path / name
        run(["orders", "execution-quality", "rts22"], journal, out, selection=selection,
            refdata_dir=FIXTURE_REFDATA)
        orders = _rows(out, "orders", "order_events", ["order_id", "event_type", "side", "limit_price", "exec_qty",
                                                       "recovery_status", "recovery_seq", "algo_id", "trader_code",
                                                       "risk_verdict"])
        adopted = [r for r in orders if r["order_id"] in ("R1", "C1")]
        assert [(r["order_id"], r["event_type"], r["exec_qty"]) for r in adopted] == [
            ("R1", "REPLACED", None), ("R1", "EXECUTED", 100), ("C1", "EXECUTED", 50), ("C1", "SENT_CANCEL", None),
            ("C1", "CANCELED", None)]
        # the recovery's Cancel: no gateway verdict of the lost order is claimed
        assert [r["risk_verdict"] for r in adopted if r["event_type"] == "SENT_CANCEL"] == [None]
        assert {(r["order_id"], r["recovery_status"], r["recovery_seq"], r["side"]) for r in adopted} == {
            ("R1", "ADOPTED", r1, "BUYI"), ("C1", "ADOPTED", c1, "SELL")}
        assert [r["limit_price"] for r in adopted if r["event_type"] == "REPLACED"] == [Decimal("150.0000")]
        assert all(r["algo_id"] is None and r["trader_code"] is None for r in adopted)
        # the journaled order keeps its ORDER_SENT origin and its parties
        assert all(r["recovery_status"] is None and r["algo_id"] is not None
                   for r in orders if r["order_id"] == "E1")
        fills = _rows(out, "execution-quality", "fills", ["order_id", "exec_qty", "order_origin", "origin_recon_seq"])
        assert fills == [{"order_id": token, "exec_qty": qty, "order_origin": "RECOVERY_ADOPTED", "origin_recon_seq": seq}
                         for token, qty, seq in (("R1", 100, r1), ("C1", 50, c1))]
        rts22 = read(out, "rts22", "rejects").to_pylist()
        assert [(r["field"], f"journal sequence {s})" in r["reason"]) for r, s in zip(rts22, (r1, c1))] == \
            [("f57_investment_decision_within_firm", True)] * 2
    schema = pa.parquet.read_schema(next((tmp_path / "all" / "orders" / "order_events").rglob("*.parquet")))
    assert schema.field("algo_id").nullable and not schema.field("side").nullable


def test_cat_rejects_an_adopted_orders_events_for_their_lost_origin_alone(tmp_path):
    """Its time in force was in the lost ORDER_SENT too: no tradingSession is made of it, so at
    21:00 ET (outside any session an IOC could have) its MEOM is not also rejected as sessionless."""
    b, _, _ = _day(start_hms=(2, 0, 0))                 # 21:00 ET the evening before (EST)
    run(["cat"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    assert [r["reason"][:8] for r in rejects] == ["no MEOM:", "no MECR:", "no MEOC:"]
    assert {r["field"] for r in rejects} == {"orderKeyDate"}


def test_a_journaled_order_sent_stays_the_origin_and_events_before_an_adoption_have_none(tmp_path):
    b = DayBuilder()
    b.session_start(); b.clock_sample()
    b.enter("K1", 1, "B", 1_499_900, 300); b.advance(10_000); b.accept("K1")
    _terms(b, "L1", "S", 1_500_200, 100)
    b.canceled("L1", 100)                         # a venue message of a token no record created yet
    _recovery(b, CancelAtVenue("K1", 1, "B", 1_499_900, 300, ref=5001, adopt=True),
              AdoptPending("L1", 1, "S", 1_500_200, 100))
    b.execute("K1", 10); b.execute("L1", 100, source=TsSource.USER)
    run(["orders"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = _rows(tmp_path / "o", "orders", "order_events", ["seq", "order_id", "event_type", "recovery_status"])
    assert [(r["order_id"], r["event_type"], r["recovery_status"]) for r in rows] == [
        ("K1", "SENT_NEW", None), ("K1", "ACCEPTED", None), ("K1", "EXECUTED", None), ("L1", "EXECUTED", "ADOPTED")]
    rejected = read(tmp_path / "o", "orders", "rejects").to_pylist()
    assert [(r["field"], r["reason"]) for r in rejected] == [("order_id", "no ORDER_SENT in the journal created "
                                                                         "this order token")]


def test_order_terms_are_required_in_parquet_unless_the_journal_holds_an_adoption(tmp_path):
    b = DayBuilder()
    b.session_start(); b.clock_sample()
    b.enter("K1", 1, "B", 1_499_900, 300); b.advance(10_000); b.accept("K1")
    run(["orders"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    schema = pa.parquet.read_schema(next((tmp_path / "o" / "orders" / "order_events").rglob("*.parquet")))
    assert not any(schema.field(name).nullable for name in ("algo_id", "client_id", "validity_period"))
