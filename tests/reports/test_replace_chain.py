"""A Replace carries no side byte: each replacement takes the side, stock and capacity of the
order it replaces, resolved in journal order across chunks, so a short sale stays a short sale
however long its replace chain (no depth limit), in the compiled pass (events.FUSED,
orderjoin.inherit) and its numpy reference (events.inherit_reference) alike."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reports import events, orderjoin
from reports.errors import KernelInputError
from reports.events import Creators
from reports.rts22 import COLUMNS
from reports.run import run
from reports.source import open_slice
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def _sent(script: list[tuple[str, str, str, str]]) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Creators.columns inputs of (kind O/U, token, replaced token, wire side of an O) rows; every
    row journaled as 'S' (what the engine journals for any sell)."""
    n = len(script)
    sent = {name: np.zeros(n, Creators.DTYPES[name]) for name in Creators.FIELDS}
    sent["token"] = np.array([t.encode() for _, t, _, _ in script], "S14")
    sent["orig_token"] = np.array([p.encode() for _, _, p, _ in script], "S14")
    sent["msg_type"][:] = [ord(k) for k, _, _, _ in script]
    sent["side"][:] = ord("S")
    sent["seq"][:] = np.arange(1, n + 1)
    wire = np.array([ord(s) if k == "O" else ord("S") for k, _, _, s in script], np.uint8)
    stock = np.array([f"K{t}".encode() if k == "O" else b"" for k, t, _, _ in script], "S8")
    capacity = np.array([ord("P") if k == "O" else 0 for k, _, _, _ in script], np.uint8)
    return sent, wire, stock, capacity


def _book(script, cuts: list[int], fused: bool, monkeypatch) -> Creators:
    """The Creators of `script` added chunk by chunk (a chunk ends before each row in `cuts`)."""
    monkeypatch.setattr(events, "FUSED", fused)
    sent, wire, stock, capacity = _sent(script)
    book = Creators()
    edges = [0] + sorted(set(c for c in cuts if 0 < c < len(script))) + [len(script)]
    for a, b in zip(edges[:-1], edges[1:]):
        book.add_columns(Creators.columns({k: v[a:b] for k, v in sent.items()}, wire[a:b], stock[a:b],
                                          capacity[a:b], np.full(b - a, ord("N"), np.uint8)))
    monkeypatch.undo()
    return book


def _chain(n: int) -> list:
    return [("O", "E0", "", "T")] + [("U", f"E{i}", f"E{i - 1}", "") for i in range(1, n + 1)]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("per_row", [False, True])
def test_every_replacement_of_a_long_chain_keeps_its_enters_short_sale(fused, per_row, monkeypatch):
    """An Enter marked T and 200 chained Replaces: the 65th and later too stay T with the Enter's
    stock and capacity (they came out 'S', the journaled side, with no stock), in one chunk and
    one row per chunk."""
    script = _chain(200)
    c = _book(script, list(range(len(script))) if per_row else [], fused, monkeypatch).cols
    assert set(c["wire_side"].tolist()) == {ord("T")}
    assert set(c["stock"].tolist()) == {b"KE0"}
    assert set(c["ouch_capacity"].tolist()) == {ord("P")}


def _oracle(script) -> list[tuple[int, bytes, int]]:
    """Row by row in journal order: a Replace takes the latest earlier order of its replaced
    token as resolved; none there: its own journaled side, no stock."""
    latest, out = {}, []
    for i, (kind, token, parent, side) in enumerate(script):
        if kind == "O":
            out.append((ord(side), f"K{token}".encode(), ord("P")))
        elif parent in latest:
            out.append(out[latest[parent]])
        else:
            out.append((ord("S"), b"", 0))
        latest[token] = i
    return out


@st.composite
def _scripts(draw, reuse: bool):
    """Enters and long replace chains interleaved (chains from any live order, some from tokens
    never entered); with `reuse`, some tokens entered again."""
    script, live, counter = [], [], 0
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["enter", "chain", "chain", "orphan"] + (["reuse"] if reuse else [])))
        counter += 1
        if op == "enter" or not live:
            script.append(("O", f"N{counter}", "", draw(st.sampled_from("BSTE"))))
            live.append(f"N{counter}")
        elif op == "reuse":
            script.append(("O", draw(st.sampled_from(live)), "", draw(st.sampled_from("BSTE"))))
        else:
            parent = draw(st.sampled_from(live)) if op == "chain" else f"GONE{counter}"
            for g in range(draw(st.integers(1, 150))):
                script.append(("U", f"R{counter}.{g}", parent, ""))
                parent = f"R{counter}.{g}"
            live.append(parent)
    cuts = draw(st.lists(st.integers(1, max(1, len(script) - 1)), max_size=8))
    return script, cuts


@settings(max_examples=80, deadline=None)
@given(case=st.booleans().flatmap(_scripts))
def test_long_chains_across_chunks_resolve_as_in_journal_order_in_both_paths(case):
    """Also with tokens entered again later (an anomaly): a Replace is of the latest order with
    its token before it, though the index gives the latest of the whole chunk."""
    script, cuts = case
    want = _oracle(script)
    with pytest.MonkeyPatch.context() as mp:
        for fused in (True, False):
            c = _book(script, cuts, fused, mp).cols
            got = list(zip(c["wire_side"].tolist(), c["stock"].tolist(), c["ouch_capacity"].tolist()))
            assert got == want, fused


def test_a_replace_of_a_token_entered_again_later_in_the_chunk_takes_the_earlier_order():
    script = [("O", "A", "", "T"), ("U", "B", "A", ""), ("O", "A", "", "B"), ("U", "C", "A", ""),
              ("U", "D", "D", "")]          # D replaces itself: no earlier order of that token
    with pytest.MonkeyPatch.context() as mp:
        for fused in (True, False):
            c = _book(script, [], fused, mp).cols
            assert [chr(x) for x in c["wire_side"]] == ["T", "T", "B", "B", "S"], fused
            assert c["stock"].tolist() == [b"KA", b"KA", b"KA", b"KA", b""]


def test_latest_before_is_the_last_equal_entry_below_each_bound():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, m = rng.integers(1, 40), rng.integers(1, 10)
        keys = np.array([b"K%d" % x for x in rng.integers(0, 6, n)], "S14")
        queries = np.array([b"K%d" % x for x in rng.integers(0, 8, m)], "S14")
        before = rng.integers(0, n + 1, m)
        want = [max([j for j in range(b) if keys[j] == q], default=-1) for q, b in zip(queries, before)]
        assert events.latest_before(keys, queries, before).tolist() == want


def test_inherit_rejects_rows_out_of_order_or_outside_the_columns():
    side, stock, cap = np.zeros(4, np.uint8), np.zeros(4, "S8"), np.zeros(4, np.uint8)
    with pytest.raises(KernelInputError):
        orderjoin.inherit(np.array([2, 1]), np.array([0, 0]), side, stock, cap)
    with pytest.raises(KernelInputError):
        orderjoin.inherit(np.array([4]), np.array([0]), side, stock, cap)
    with pytest.raises(KernelInputError):
        orderjoin.inherit(np.array([1]), np.array([0]), side, np.zeros(4, "S4"), cap)


def _short_sale_replaced(times: int) -> DayBuilder:
    """A short sale (OUCH 'T', journaled 'S' as the engine does) accepted, replaced `times` times
    (each replacement journaled 'S'), the last replacement accepted and executed."""
    b = DayBuilder()
    b.clock_sample()
    b.enter("Q0", 3, "T", 5_120_000, 300)
    b.ledger.orders["Q0"]["side"] = "S"           # the replaces' journaled side: the engine's sell
    b.advance(10_000); b.accept("Q0")
    for g in range(1, times + 1):
        b.advance(10_000); b.replace(f"Q{g - 1}", f"Q{g}", 5_120_000 - g, 300)
    b.advance(10_000); b.replaced(f"Q{times - 1}", f"Q{times}")
    b.ledger.orders[f"Q{times}"]["side"] = "T"    # the venue's Replaced and fill say T
    b.advance(10_000); b.execute(f"Q{times}", 100)
    return b


@pytest.mark.parametrize("fused", [True, False])
def test_a_journal_with_a_long_replace_chain_joins_every_event_to_the_short_side(tmp_path, monkeypatch, fused):
    monkeypatch.setattr(events, "FUSED", fused)
    src = open_slice(_short_sale_replaced(80).write(tmp_path / "j"))
    cols = [c.cols for c in events.collect_chunks(src, chunk_seqs=7)]
    side = np.concatenate([c["order_wire_side"] for c in cols])
    stock = np.concatenate([c["order_stock"] for c in cols])
    assert set(side.tolist()) == {ord("T")} and set(stock.tolist()) == {b"SPY     "}


def test_rts22_reports_the_execution_of_the_80th_replacement_as_a_short_sale(tmp_path):
    """It was SELL (field 62 blank of SESH), the journaled side, past 64 replaces."""
    journal = _short_sale_replaced(80).write(tmp_path / "j")
    run(["rts22"], journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    assert [r[COLUMNS[62]] for r in rows] == ["SESH"]
