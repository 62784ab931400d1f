"""The end-of-run summary's desk-metrics rows (`mmaudit run`, `mmaudit demo`): quote fills and
fill rates per side, adverse selection, inventory turnover and hedging shown and labelled;
sub-millisecond horizons printed as such; an unrealized P&L that leaves out positions with no mid
says so (and a stale book); the progress line's P&L says it is marked to fair."""
from journal.catalogue import Side
from cli.metrics_rows import horizon_text, metrics_rows
from cli.run_cmd import progress_line
from mm_core.metrics import Metrics
from mm_core.sessionconfig import Progress

NAMES = {"1": "ACME", "2": "BOLT", "3": "CHIP"}


def _doc(stale: bool = False) -> dict:
    m = Metrics(4, (500_000, 100_000_000, 1_000_000_000), adverse_horizon=1)
    m.on_quote_sent(Side.BUY, 400)
    m.on_quote_sent(Side.SELL, 200)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_010, 0)          # 5 (price4) under the mid
    m.on_fill(2, Side.SELL, 100, 5_010, 10_010, 0)
    m.on_hedge_fill(3, Side.SELL, 100, 4_990, 10_000)      # crossed: 10 under the mid
    m.on_adopted_fill(1, Side.BUY, 50, 10_000)
    m.sample_position([0, 150, -100, -100])
    m.on_time(100_000_000, [0, 19_000, 10_000, 10_000])
    doc = m.summary([0, 19_000, 0 if stale else 10_000, 10_000])
    doc["book_stale"] = stale
    return doc


def test_every_figure_the_issue_names_is_a_labelled_row():
    rows = dict(metrics_rows(_doc(), NAMES))
    assert rows["quote fills"] == "1 bid, 1 ask"
    assert rows["quote fill rate"] == ("bid 25.0% (100 of 400 shares quoted), "
                                       "ask 50.0% (100 of 200 shares quoted)")
    assert rows["adverse selection"] == "50.0% of 2 quote fills marked at 100 ms"
    assert rows["inventory turnover"] == "1.00 (shares traded / mean |position|)"
    assert rows["hedging"] == "1 fills, 100 shares, cost 0.10 (+0.0010 per share against the mid)"
    assert rows["adopted fills"].startswith("1 fills, 50 shares (orders recovery adopted")
    assert rows["markout per share"] == "500 µs -0.0245, 100 ms -0.0245, 1,000 ms n/a"
    assert rows["P&L unrealized at mid"] == "-7.50"
    assert "fills" not in rows                  # never an unlabelled count


def test_an_unrealized_total_without_some_positions_says_so():
    rows = dict(metrics_rows(_doc(stale=True), NAMES))
    assert rows["P&L unrealized at mid"] == "partial: -7.60 (BOLT -100 unpriced) (book stale)"
    only = _doc()
    only["unpriced"] = {"1": 150}
    only["symbols"] = {"1": {"position": 150, "unrealized_x2": None}}
    assert dict(metrics_rows(only, NAMES))["P&L unrealized at mid"] == "n/a (ACME +150 unpriced)"


def test_unmarked_markouts_and_stale_fills_are_shown():
    m = Metrics(2, (500_000,), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0, stale=True)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    m.on_time(600_000, [0, 20_000], stale=True)
    rows = dict(metrics_rows(m.summary([0, 20_000]), NAMES))
    assert rows["markouts unmarked"] == "500 µs 2 (2 book stale) (no mid at the horizon: out of the means)"
    assert rows["spread captured"] == "0.00 (100 shares filled while the book was stale not valued)"
    assert rows["markout per share"] == "500 µs n/a"


def test_horizons_print_exactly():
    assert [horizon_text(h) for h in (100_000_000, "5000000000", 500_000, 1_500_000, 250)] == \
        ["100 ms", "5,000 ms", "500 µs", "1,500 µs", "250 ns"]


def test_the_progress_lines_pnl_is_labelled_as_marked_to_fair():
    line = progress_line(Progress(1.0, 10, 2, 1, {"ACME": 100, "CHIP": -100}, 12_345, "ACTIVE", "LOCKED", True))
    assert "quote fills    1" in line and "P&L at fair 1.23" in line and "pos ACME +100 CHIP -100" in line


def test_markouts_pending_at_session_end_are_shown():
    m = Metrics(3, (500_000, 100_000_000), adverse_horizon=0)
    m.on_fill(1, Side.BUY, 100, 10_000, 20_000, 0)
    m.on_fill(2, Side.SELL, 100, 10_010, 20_000, 0)
    m.on_time(500_000, [0, 20_010, 20_000])              # both marked at 500 µs
    rows = dict(metrics_rows(m.summary([0, 20_010, 0], session_end=(600_000, False)), NAMES))
    assert rows["markouts at session end"] == ("100 ms 1 valued at the last mid +0.0005 and 1 unmarked "
                                               "(horizon not run out: out of the means)")
    rows = dict(metrics_rows(m.summary([0, 20_010, 20_000], session_end=(600_000, True)), NAMES))
    assert rows["markouts at session end"] == ("100 ms 2 unmarked (2 book stale) "
                                               "(horizon not run out: out of the means)")
    assert "markouts at session end" not in dict(metrics_rows(m.summary([0, 20_010, 0]), NAMES))
