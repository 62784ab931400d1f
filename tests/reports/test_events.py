import numpy as np
import pyarrow.compute as pc
import pytest

from reports import events
from reports.events import TokenIndex
from reports.rts22 import COLUMNS
from reports.run import run
from tests.reports.conftest import read
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def _keys(*tokens):
    return np.array([t.encode() for t in tokens], dtype="S14")


def test_token_index_finds_the_latest_creator_and_misses_unknown_tokens():
    index = TokenIndex(_keys("A1", "B2", "A1", "C3"))
    assert index.lookup(_keys("A1", "C3", "ZZ", "B2")).tolist() == [2, 3, -1, 1]
    assert TokenIndex(_keys()).lookup(_keys("A1")).tolist() == [-1]


def test_token_index_extended_chunk_by_chunk_equals_one_built_whole():
    rng = np.random.default_rng(5)
    tokens = _keys(*[f"T{v}" for v in rng.integers(0, 300, 2_000)])       # many reused tokens
    queries = _keys(*[f"T{v}" for v in range(320)])
    index = TokenIndex(tokens[:0])
    for end in (1, 7, 500, 501, 1_300, 2_000):
        index.extend(tokens[:end], first_new=len(index.order))
        assert index.lookup(queries).tolist() == TokenIndex(tokens[:end]).lookup(queries).tolist(), end


def test_token_index_is_exact_when_hashes_collide(monkeypatch):
    monkeypatch.setattr(events, "_token_hash", lambda keys: np.zeros(len(keys), np.uint64))
    index = TokenIndex(_keys("A1", "B2", "A1", "C3"))
    assert index.lookup(_keys("A1", "C3", "ZZ", "B2")).tolist() == [2, 3, -1, 1]


def test_short_sale_side_follows_a_chain_of_replaces(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    b.enter("S1", 3, "T", 5_120_000, 300)          # sell short
    b.accept("S1")
    b.replace("S1", "S2", 5_120_100, 300)
    b.replaced("S1", "S2")
    b.replace("S2", "S3", 5_120_200, 300)
    b.replaced("S2", "S3")
    b.execute("S3", 100)
    b.cancel("S3")
    run(["rts22", "orders"], b.write(tmp_path / "j"), tmp_path / "o", refdata_dir=FIXTURE_REFDATA)
    t = read(tmp_path / "o", "rts22", "transactions").to_pylist()
    assert [r[COLUMNS[62]] for r in t] == ["SESH"]
    orders = read(tmp_path / "o", "orders", "order_events")
    fills = orders.filter(pc.equal(orders["event_type"].cast("string"), "EXECUTED")).to_pylist()
    assert fills[0]["leaves_qty"] == 200 and fills[0]["rts24_event"] == "PARF"
    # the firm's messages of a short-sale order are short sales, the Replace and Cancel (which carry
    # no side on the wire) as well as the Enter: the order's side, not the journaled B/S
    sent = orders.filter(pc.equal(orders["origin"].cast("string"), "FIRM")).to_pylist()
    assert [(r["event_type"], r["order_id"], r["short_sale"]) for r in sent] == \
        [("SENT_NEW", "S1", True), ("SENT_REPLACE", "S2", True), ("SENT_REPLACE", "S3", True), ("SENT_CANCEL", "S3", True)]


def test_a_streamed_read_frees_each_chunks_raw_records(day_journal):
    import gc
    import weakref
    from reports.source import open_slice
    src = open_slice(day_journal)
    read = src.reader.gather
    alive = []

    def tracked(pos, dtype):
        got = read(pos, dtype)
        alive.append(weakref.ref(got))
        return got
    src.reader.gather = tracked
    chunks = 0
    for chunk in events.collect_chunks(src, chunk_seqs=5):
        chunks += 1
        gc.collect()
        # at most this chunk's records and the next chunk's (read ahead) are still held
        assert sum(ref() is not None for ref in alive) <= 4
    assert chunks > 3 and len(alive) >= 2 * chunks


def test_only_some_events_are_joined_as_in_the_full_stream(day_journal):
    """collect_chunks(only=...) gives exactly the rows of the full stream with those event codes,
    every joined column the same (the order index still learns every Enter and Replace)."""
    from reports.source import open_slice
    wanted = (events.EV["EXECUTED"], events.EV["ACCEPTED"])
    with pytest.raises(ValueError, match="leaves=False"):
        list(events.collect_chunks(open_slice(day_journal), only=wanted))
    full = [c for c in events.collect_chunks(open_slice(day_journal), chunk_seqs=7)]
    some = [c for c in events.collect_chunks(open_slice(day_journal), chunk_seqs=7, only=wanted, leaves=False)]
    whole = {k: np.concatenate([c.cols[k] for c in full]) for k in full[0].cols}
    keep = np.isin(whole["event"], wanted)
    assert keep.any() and not keep.all()
    assert all("leaves" not in c.cols for c in some)
    for name in some[0].cols:
        assert np.array_equal(np.concatenate([c.cols[name] for c in some]), whole[name][keep]), name
    assert np.array_equal(np.concatenate([c.utc.utc_ns for c in some]),
                          np.concatenate([c.utc.utc_ns for c in full])[keep])


@pytest.mark.parametrize("first_seq", [None, 9])
def test_each_chunk_carries_the_clock_samples_up_to_its_end_as_a_prefix_of_the_journals(day_journal, first_seq):
    """The samples a chunk's events were converted with come from the chunks' own header scans:
    they are exactly the journal's samples up to the chunk's end (those before a mid-journal range
    included), so the UTC times and sample indices equal a conversion with every sample."""
    from reports.source import Selection, open_slice
    from reports.timebase import to_utc
    src = open_slice(day_journal, Selection(first_seq=first_seq))
    every = events.clock_samples(src)
    assert len(every) > 1
    chunks = list(events.collect_chunks(src, chunk_seqs=4))
    assert len(chunks) > 3
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        k = len(chunk.samples)
        assert np.array_equal(chunk.samples, every[:k])
        assert k == len(every) or every["seq"][k] > chunk.cols["seq"].max()
        full = to_utc(chunk.cols["seq"], chunk.cols["ts_ns"], chunk.cols["ts_source"], every)
        for name in ("utc_ns", "valid", "basis", "utc_offset_s", "sample_index"):
            assert np.array_equal(getattr(chunk.utc, name), getattr(full, name)), name
