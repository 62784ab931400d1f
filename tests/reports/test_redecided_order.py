"""The orders table stays in journal order whatever the chunking when a re-decided Cancel's row (at
the RECON record that lists it) is made with the venue's answer in a later chunk: the rows after
that record are held back until the answer's chunk, then handed on sorted. The same table, row for
row, comes out of every chunk size; a listing settled by the firm's own Cancel, or never answered,
holds nothing back."""
import pyarrow as pa
import pytest

from journal.catalogue import RecordType
from recovery.replay import RECON_BEGIN, RECON_OUTCOME
from reports import events
from reports.redecided import JournalOrder
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order


def crashed_cancel_then_trading(tmp_path, answer: str):
    """A1's Cancel lost with the crash, listed at the restart's BEGIN; B1 trades three times; then
    `answer`: "venue" (the venue's Canceled of A1), "firm" (a firm's Cancel of A1 first, then the
    venue's Canceled) or "none"."""
    b = accepted_order("A1", 1, "B", 1_499_900, 500)
    b.advance(10_000)
    b.enter("B1", 1, "S", 1_500_300, 200)
    b.advance(10_000)
    b.accept("B1")
    b.advance(1_000_000_000)
    b.session_start(session_id=2)
    b.clock_sample()
    b.json_record(RecordType.RECON, {"kind": RECON_BEGIN, "reconciled": False, "requested_sequence": 1,
                                     "unsent_orders": ["A1"]})
    b.json_record(RecordType.RECON, {"kind": RECON_OUTCOME, "reconciled": True})
    for _ in range(3):
        b.advance(10_000)
        b.cancel("B1", new_qty=150)
        b.advance(10_000)
        b.canceled("B1", 50)
        b.advance(10_000)
        b.clock_sample()
    if answer == "firm":
        b.advance(10_000)
        b.cancel("A1")
    if answer != "none":
        b.advance(10_000)
        b.canceled("A1", 500)
    b.clock_sample()
    return b.write(tmp_path / "journal")


def orders_rows(journal, out, monkeypatch, chunk: int | None) -> list[dict]:
    if chunk is not None:
        monkeypatch.setattr(events, "CHUNK_SEQS", chunk)
    run(["orders"], journal, out, refdata_dir=FIXTURE_REFDATA, text=False)
    return read(out, "orders", "order_events").to_pylist()


@pytest.mark.parametrize("answer", ["venue", "firm", "none"])
def test_the_orders_table_is_in_journal_order_whatever_the_chunking(tmp_path, monkeypatch, answer):
    journal = crashed_cancel_then_trading(tmp_path, answer)
    whole = orders_rows(journal, tmp_path / "whole", monkeypatch, None)
    redecided = [r for r in whole if r["event_type"] == "SENT_CANCEL" and r["recovery_status"] == "ADOPTED"]
    assert len(redecided) == (answer == "venue")            # only the venue's own answer makes the row
    for chunk in (1, 2, 3, 5):
        rows = orders_rows(journal, tmp_path / f"chunk{chunk}", monkeypatch, chunk)
        seqs = [r["seq"] for r in rows]
        assert seqs == sorted(seqs), (chunk, seqs)
        assert rows == whole, chunk


def test_rows_are_held_from_a_listing_to_its_answer_and_no_further():
    def table(*seqs):
        return pa.table({"seq": pa.array(seqs, pa.uint64())})

    order = JournalOrder([(9, 20)])
    assert order.release(table(3, 4), 5).column("seq").to_pylist() == [3, 4]
    assert order.release(table(6, 11), 11).column("seq").to_pylist() == [6]       # 11 after the listing: held
    assert order.release(table(12, 15), 15) is None
    out = order.release(table(9, 18, 20), 20)                                   # the answer's chunk, its row at 9
    assert out.column("seq").to_pylist() == [9, 11, 12, 15, 18, 20]
    assert order.release(table(21), 21).column("seq").to_pylist() == [21] and order.finish() is None
    cut_short = JournalOrder([(9, 20)])
    assert cut_short.release(table(8, 10), 10).column("seq").to_pylist() == [8]
    assert cut_short.finish().column("seq").to_pylist() == [10]
