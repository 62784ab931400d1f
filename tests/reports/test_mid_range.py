"""A report over a range that starts mid-journal: the orders entered before it keep their remaining
quantity and state (their history before the range is read), so its rows equal those of the whole
journal's report inside the range."""
import pytest

from reports.run import run
from reports.source import Selection
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder, accepted_order


def _day() -> DayBuilder:
    b = accepted_order("A1", 1, "B", 1_500_000, 500)   # seq 3 entered, 4 accepted
    b.advance(10_000); b.execute("A1", 100)         # 5
    b.enter("A2", 2, "S", 4_100_000, 300)          # 6, accepted before the range
    b.advance(10_000); b.accept("A2")               # 7
    b.advance(10_000); b.execute("A1", 150)         # 8: first seq of the range
    b.advance(10_000); b.cancel("A1", 100)          # 9: reduce to 100
    b.advance(10_000); b.canceled("A1", 150)        # 10
    b.advance(10_000); b.execute("A2", 300)         # 11: fills A2
    b.advance(10_000); b.cancel("A1")               # 12
    b.advance(10_000); b.canceled("A1", 100)        # 13
    return b


@pytest.mark.parametrize("chunk", [None, 2])
def test_orders_entered_before_the_range_keep_their_remaining_quantity(tmp_path, monkeypatch, chunk):
    from reports import events
    if chunk:
        monkeypatch.setattr(events, "CHUNK_SEQS", chunk)
    journal = _day().write(tmp_path / "j")
    run(["orders", "cat"], journal, tmp_path / "whole", refdata_dir=FIXTURE_REFDATA)
    run(["orders", "cat"], journal, tmp_path / "part", selection=Selection(first_seq=8), refdata_dir=FIXTURE_REFDATA)
    whole = [r for r in read(tmp_path / "whole", "orders", "order_events").to_pylist() if r["seq"] >= 8]
    part = read(tmp_path / "part", "orders", "order_events").to_pylist()
    assert [(r["seq"], r["leaves_qty"], r["rts24_event"]) for r in part] == \
        [(8, 250, "PARF"), (9, None, None), (10, 100, "REME"), (11, 0, "FILL"), (12, None, None), (13, 0, "CAME")]
    assert part == whole
    cat_whole = [r for r in read(tmp_path / "whole", "cat", "order_events").to_pylist() if r["seq"] >= 8]
    cat_part = read(tmp_path / "part", "cat", "order_events").to_pylist()
    meoc = [(r["cancelQty"], r["leavesQty"]) for r in cat_part if r["type"] == "MEOC"]
    assert meoc == [(150, 100), (100, 0)]
    assert cat_part == cat_whole


@pytest.mark.parametrize("chunk", [None, 2])
def test_an_order_the_venue_modified_before_the_range_keeps_the_open_shares_it_restated(tmp_path, monkeypatch,
                                                                                         chunk):
    """An Order Modified restates the order's open shares: 500 accepted, 100 executed, modified to
    300 open; the 300 then executed fill the order (FILL, nothing left), where subtracting from the
    accepted 500 would leave 100 open (PARF). Over the whole journal and over a range after the
    Order Modified alike."""
    from reports import events
    if chunk:
        monkeypatch.setattr(events, "CHUNK_SEQS", chunk)
    b = accepted_order("M1", 1, "B", 1_500_000, 500)   # seq 3 entered, 4 accepted
    b.advance(10_000); b.execute("M1", 100)         # 5
    b.advance(10_000); b.modify("M1", "B", 300)     # 6
    b.advance(10_000); b.modified("M1", "B", 300)   # 7
    b.advance(10_000); b.execute("M1", 300)         # 8
    journal = b.write(tmp_path / "j")
    run(["orders"], journal, tmp_path / "whole", refdata_dir=FIXTURE_REFDATA)
    run(["orders"], journal, tmp_path / "part", selection=Selection(first_seq=8), refdata_dir=FIXTURE_REFDATA)
    whole = read(tmp_path / "whole", "orders", "order_events").to_pylist()
    assert [(r["seq"], r["leaves_qty"], r["rts24_event"]) for r in whole if r["seq"] >= 5] == \
        [(5, 400, "PARF"), (6, None, None), (7, 300, "REME"), (8, 0, "FILL")]
    assert read(tmp_path / "part", "orders", "order_events").to_pylist() == [r for r in whole if r["seq"] >= 8]
