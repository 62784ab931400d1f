"""OUCH messages the journal holds shorter than their type's fixed length: no field past the bytes
held is decoded (numpy and compiled paths alike, under random truncations), and the reports reject
such an event with its reason (counted in rejects) instead of writing it with invented zeros; the
remaining quantity of its order is unknown from then on."""
import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings, strategies as st

from journal.catalogue import RAW_ORDER_MAX, RAW_VENUE_MAX, RecordType, TsSource, pack
from mm_core.protocol import ouch as wire, soupbintcp
from reports import events, ouch, ouchcols
from reports.run import run
from reports.source import open_slice
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder, accepted_order


def test_the_fixed_lengths_are_the_codecs():
    """The reports' length tables (reports may not import mm_core) equal the OUCH codec's sizes."""
    for mine, codec in ((ouch.OUTBOUND_LENGTHS, wire.OUTBOUND_SIZES), (ouch.INBOUND_LENGTHS, wire.INBOUND_SIZES)):
        for mtype, length in mine.items():
            if chr(mtype) in codec:
                assert codec[chr(mtype)] == length, chr(mtype)
        assert {chr(t) for t in mine} >= set(codec) - {"K"}


_DIRECTIONS = {   # OUCH lengths and fields, raw capacity and SoupBinTCP packet type of each direction
    "venue": (ouch.OUTBOUND_LENGTHS, ouch.OUTBOUND_FIELDS, RAW_VENUE_MAX, ord("S")),
    "sent": (ouch.INBOUND_LENGTHS, ouch.INBOUND_FIELDS, RAW_ORDER_MAX, ord("U")),
}


def _messages(rng, n, direction="venue"):
    """n framed messages of every type with fields in `direction`, as the journal keeps them."""
    lengths, _, capacity, packet = _DIRECTIONS[direction]
    types = sorted(lengths)
    raw = np.zeros((n, capacity), np.uint8)
    msg = rng.choice(types, n).astype(np.uint8)
    for i, t in enumerate(msg):
        length = lengths[int(t)]
        raw[i, 0:2] = divmod(length + 1, 256)
        raw[i, 2] = packet
        raw[i, 3] = t
        raw[i, 4:3 + length] = rng.integers(0, 256, length - 1)
    return raw, msg


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 200), st.sampled_from(["raw_len", "soup", "both"]),
       st.sampled_from(sorted(_DIRECTIONS)))
def test_random_truncations_decode_no_field_past_the_bytes_held_in_both_paths(seed, n, how, direction):
    lengths, fields, capacity, _ = _DIRECTIONS[direction]
    rng = np.random.default_rng(seed)
    raw, msg = _messages(rng, n, direction)
    full = 3 + np.array([lengths[int(t)] for t in msg], np.int32)
    cut = np.where(rng.random(n) < 0.6, rng.integers(0, full + 1), full).astype(np.int32)
    raw_len = full.copy()
    if how in ("raw_len", "both"):
        raw_len = cut.copy()
        for i in range(n):                      # as pack() leaves it: zeros past what was written
            raw[i, cut[i]:] = 0
    if how in ("soup", "both"):                 # a length prefix that frames fewer bytes
        prefix = np.maximum(cut - 2, 0)
        raw[:, 0], raw[:, 1] = prefix >> 8, prefix & 0xFF
    held = ouch.held_bytes(raw, raw_len, capacity)
    framed = np.maximum(cut, 2) if how != "raw_len" else full     # a prefix frames at least itself
    assert held.tolist() == np.minimum(framed, raw_len).tolist()
    want_whole = ouch.decode(raw, msg, fields)
    numpy_cut = ouch.decode(raw, msg, fields, held=held)
    compiled_cut = ouchcols.decode(raw, msg, fields, held=held)
    for name, layout in fields.items():
        assert np.array_equal(numpy_cut[name], compiled_cut[name]), name
        ends = np.array([3 + layout[int(t)][0] + layout[int(t)][1] if int(t) in layout else 0 for t in msg])
        inside = held >= ends
        zero = np.zeros((), want_whole[name].dtype)
        assert np.array_equal(numpy_cut[name][inside], want_whole[name][inside]), name
        assert (numpy_cut[name][~inside] == zero).all(), name
    if direction == "sent":      # the side of a sent message: its OUCH byte when held, never the journaled one
        journaled = rng.choice(np.array([ord("B"), ord("S")], np.uint8), n)
        side = events.wire_sides(compiled_cut["side"], msg, journaled)
        carries = np.isin(msg, list(fields["side"]))
        held_side = held >= 3 + np.array([fields["side"].get(int(t), (0, 0))[0] + 1 for t in msg])
        assert np.array_equal(side[carries & held_side], want_whole["side"][carries & held_side])
        assert (side[carries & ~held_side] == 0).all()
        assert np.array_equal(side[~carries], journaled[~carries])


def _cut(b: DayBuilder, rtype: RecordType, keep: int, **fields) -> None:
    """Journal the last record `b` scripted again, its raw message cut to `keep` OUCH bytes."""
    last = b.records.pop()
    from journal.catalogue import raw_bytes, unpack
    rec = unpack(rtype, last.payload)
    raw = raw_bytes(rec)[:3 + keep]
    values = {name: rec[name] for name in rec.dtype.names if name not in ("raw", "raw_len")}
    values.update(fields)
    b._add(rtype, pack(rtype, **{k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}, raw=raw),
           source=last.ts_source, ts=last.ts_ns)


def _day() -> DayBuilder:
    b = accepted_order("T1", 1, "B", 1_500_000, 300)
    b.advance(10_000); b.execute("T1", 100)
    _cut(b, RecordType.VENUE_MSG, 26)            # Executed cut inside its shares: 40 bytes, 26 held
    b.advance(10_000); b.execute("T1", 50)
    b.advance(10_000); b.cancel("T1")
    b.enter("T2", 2, "S", 4_100_000, 200)
    _cut(b, RecordType.ORDER_SENT, 30)           # Enter Order cut inside its stock and price
    b.advance(10_000); b.accept("T2")
    b.advance(10_000); b.execute("T2", 20)
    b.advance(10_000); b.canceled("T1", 150)       # the venue's answer to T1's cancel
    return b


def test_a_truncated_message_is_a_counted_reject_not_a_row_of_zeros(tmp_path):
    journal = _day().write(tmp_path / "j")
    result = run(["orders", "cat"], journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    orders = read(tmp_path / "o", "orders", "order_events")
    rejects = read(tmp_path / "o", "orders", "rejects").to_pylist()
    short = [r for r in rejects if r["field"] == "ouch_message"]
    assert [(r["seq"], "E" in r["reason"] or "O" in r["reason"]) for r in short] == [(5, True), (8, True)]
    assert "venue OUCH 'E' message holds 26 bytes of the 40" in short[0]["reason"]
    assert "sent OUCH 'O' message holds 30 bytes of the 49" in short[1]["reason"]
    assert 5 not in orders["seq"].to_pylist() and 8 not in orders["seq"].to_pylist()
    execs = orders.filter(pc.equal(orders["event_type"].cast("string"), "EXECUTED")).to_pylist()
    # no execution of 0 shares; after the cut one, T1's remaining quantity is unknown, not 200 - 50
    assert [(r["order_id"], r["exec_qty"], r["leaves_qty"], r["rts24_event"]) for r in execs] == \
        [("T1", 50, None, None), ("T2", 20, 180, "PARF")]          # neither PARF nor FILL claimed
    kinds = {k.kind: k.rejected for k in result.results}
    assert kinds["orders"] >= 2 and kinds["cat"] >= 1
    cat_rejects = read(tmp_path / "o", "cat", "rejects").to_pylist()
    assert {r["seq"] for r in cat_rejects if r["field"] == "ouch_message"} == {8}
    # T1's cancel: what remains of it is unknown after the cut execution, so its MEOC is not reported
    assert [(r["seq"], r["reason"]) for r in cat_rejects if r["field"] == "leavesQty"] == [(11, "MEOC requires leavesQty")]
    cat = read(tmp_path / "o", "cat", "order_events").to_pylist()
    assert "T2" not in {r["orderID"] for r in cat if r["type"] in ("MENO", "MEOR")}


def test_a_whole_message_with_trailing_bytes_is_not_short(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    b.enter("T1", 1, "B", 1_500_000, 300)
    body = wire.encode(wire.Executed(timestamp=1, token="T1", executed_shares=5, execution_price=1_500_000,
                                     liquidity_flag="A", match_number=9))
    raw = soupbintcp.encode(soupbintcp.SequencedData(payload=body)) + b"\x00" * 7   # longer raw_len
    b._add(RecordType.VENUE_MSG, pack(RecordType.VENUE_MSG, soup_seq=1, packet_type=ord("S"), msg_type=body[0],
                                      raw=raw), source=TsSource.USER)
    result = run(["orders"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    assert result.rejected == 0
    execs = read(tmp_path / "o", "orders", "order_events").filter(pc.field("seq") == 3).to_pylist()
    assert execs[0]["exec_qty"] == 5 and execs[0]["tvtic"] == 9
    assert RAW_ORDER_MAX >= 3 + ouch.INBOUND_LENGTHS[ord("O")]



def test_execution_quality_rejects_a_truncated_execution_instead_of_counting_it(tmp_path):
    journal = _day().write(tmp_path / "j")
    run(["execution-quality"], journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    fills = read(tmp_path / "o", "execution-quality", "fills")
    rejects = read(tmp_path / "o", "execution-quality", "rejects").to_pylist()
    short = [r for r in rejects if r["field"] == "ouch_message"]
    # the cut execution leaves the fills (and the Rule 605 statistics); the cut Enter Order the
    # Rule 612 / 610 checks of the orders sent
    assert [(r["table"], r["seq"]) for r in short] == [("fills", 5), ("rule612", 8), ("rule610", 8)]
    assert "venue OUCH 'E' message holds 26 bytes of the 40" in short[0]["reason"]
    assert fills["seq"].to_pylist() == [6, 10]


# -- the side byte of an Enter Order past the bytes held -----------------------------------------
SIDE_END = 3 + ouch.INBOUND_FIELDS["side"][ord("O")][0] + 1     # framed bytes up to the side byte


def _short_sale_cut_before_its_side() -> DayBuilder:
    """A short sale (OUCH side 'T', journaled side 'S') whose Enter Order the journal holds only up
    to its token, then its acceptance, an execution, a replace and its execution; and a whole
    short sale beside it."""
    b = DayBuilder()
    b.clock_sample()
    b.enter("S1", 3, "T", 5_120_000, 300)
    _cut(b, RecordType.ORDER_SENT, SIDE_END - 4)   # token held, side byte not
    b.advance(10_000); b.accept("S1")
    b.advance(10_000); b.execute("S1", 100)
    b.advance(10_000); b.replace("S1", "S2", 5_119_000, 200)
    b.advance(10_000); b.replaced("S1", "S2")
    b.advance(10_000); b.execute("S2", 50)
    b.enter("W1", 3, "T", 5_120_000, 300)
    b.advance(10_000); b.accept("W1")
    b.advance(10_000); b.execute("W1", 70)
    return b


@pytest.mark.parametrize("fused", [True, False])
def test_an_enter_order_cut_before_its_side_has_an_unknown_side_not_the_journaled_one(tmp_path, monkeypatch, fused):
    """Compiled (events.FUSED) and numpy paths: every event of the cut order, and of the order that
    replaced it, carries side 0 (unknown), never the ORDER_SENT record's 'S'."""
    monkeypatch.setattr(events, "FUSED", fused)
    b = _short_sale_cut_before_its_side()
    src = open_slice(b.write(tmp_path / "j"))
    cols = [c.cols for c in events.collect_chunks(src, chunk_seqs=4)]
    token = np.concatenate([c["token_key"] for c in cols])
    side = np.concatenate([c["order_wire_side"] for c in cols])
    assert set(side[np.isin(token, [b"S1", b"S2"])].tolist()) == {0}
    assert set(side[token == b"W1"].tolist()) == {ord("T")}


def test_reports_reject_the_events_of_an_order_whose_side_was_cut_with_their_reason(tmp_path):
    """RTS 22 would report the short sale's executions as SELL (field 62) and CAT as SL: each is
    rejected instead, counted, with its reason; the whole short sale is reported as one."""
    from tests.reports.test_controls_cat import _cat_with_arca_off_cat
    from reports.rts22 import COLUMNS
    b = _short_sale_cut_before_its_side()
    journal = b.write(tmp_path / "j")
    result = run(["rts22"], journal, tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    rows = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    assert [(r[COLUMNS[1]], r[COLUMNS[62]]) for r in rows] == [("NEWT", "SESH")]       # W1 only
    rejects = read(tmp_path / "o", "rts22", "rejects").to_pylist()
    side_rejects = sorted(r["seq"] for r in rejects if r["field"] == "order_side")
    assert len(side_rejects) == 2 and result.rejected == len(rejects)
    assert all("side byte" in r["reason"] for r in rejects if r["field"] == "order_side")
    t, cat_rejects, _ = _cat_with_arca_off_cat(journal, tmp_path)
    cat = t.to_pylist()
    assert not [r for r in cat if r["orderID"] in ("S1", "S2") and r["type"] in ("MEOR", "MEOM")]
    cat_rejects = cat_rejects.to_pylist()
    # every MEOT (the cut order's two, W1's one) is rejected for what the journal lacks (cat.UNKNOWN_MEOT)
    assert len({r["seq"] for r in cat_rejects if r["field"] == "tapeTradeID"}) == 3
    # the cut Enter (MENO, MEOR; short too), both executions' MEOTs, the Replace sent (MEMR) and the
    # venue's Replaced (MEOM)
    assert {r["seq"] for r in cat_rejects if r["field"] == "order_side"} == {2, 4, 5, 6, 7}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("BSTE"), st.integers(0, 60)), min_size=1, max_size=30))
def test_random_cuts_of_enter_orders_give_their_side_or_unknown_in_both_paths(orders):
    """Enter Orders cut at random bytes: each order's side is its OUCH side byte when held, else 0,
    in the compiled and the numpy decode alike."""
    import tempfile
    b = DayBuilder()
    b.clock_sample()
    want = {}
    for i, (side, keep) in enumerate(orders):
        token = f"R{i}"
        b.enter(token, 1, side, 1_500_000, 100)
        if keep < ouch.INBOUND_LENGTHS[ord("O")]:
            _cut(b, RecordType.ORDER_SENT, keep)
        want[token.encode()] = ord(side) if min(keep, ouch.INBOUND_LENGTHS[ord("O")]) + 3 >= SIDE_END else 0
        b.advance(1_000); b.accept(token)
    got = {}
    with tempfile.TemporaryDirectory() as tmp:
        b.write(tmp)
        for fused in (True, False):
            events.FUSED = fused
            try:
                cols = [c.cols for c in events.collect_chunks(open_slice(tmp), chunk_seqs=7)]
            finally:
                events.FUSED = True
            got[fused] = dict(zip(np.concatenate([c["token_key"] for c in cols]).tolist(),
                                  np.concatenate([c["order_wire_side"] for c in cols]).tolist()))
    assert got[True] == got[False] == want
