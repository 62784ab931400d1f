"""The compiled order-join kernels against their numpy references (events.TokenIndex and
events.leaves_reference) on random inputs: token reuse, chunked growth, unknown orders."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reports import events, orderjoin
from reports.events import EV, Creators, TokenIndex, LEAVES_CODES, leaves_reference
from reports.orderjoin import TokenTable


def _keys(values) -> np.ndarray:
    # tokens as the join keys them: NUL-padded, some sharing their first 8 bytes
    return np.array([(b"TOKEN%03d" % (v % 7)) + (b"%d" % v)[:5] for v in values], dtype="S14")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400), max_size=3000), st.lists(st.integers(1, 3000), max_size=6),
       st.lists(st.integers(0, 450), max_size=500))
def test_token_table_equals_the_numpy_index_chunk_by_chunk(tokens, cuts, queries):
    keys = _keys(tokens)
    q = _keys(queries)
    table, reference = TokenTable(keys[:0]), TokenIndex(keys[:0])
    done = 0
    for end in sorted({min(c, len(keys)) for c in cuts} | {len(keys)}):
        # and for each new entry, the latest earlier one with its token (a reused token)
        assert table.extend(keys[:end], done).tolist() == reference.extend(keys[:end], done).tolist()
        done = end
        assert table.lookup(q).tolist() == reference.lookup(q).tolist()
        assert table.lookup(keys[:end]).tolist() == reference.lookup(keys[:end]).tolist()


def test_token_table_grows_past_its_first_size_and_keeps_the_latest_of_a_reused_token():
    keys = _keys(range(20_000))
    table = TokenTable(keys[:10])
    table.extend(keys, 10)
    assert len(table.slots) >= 2 * len(keys)
    assert table.lookup(keys[::997]).tolist() == list(range(0, 20_000, 997))
    again = np.concatenate([keys, keys[5:6]])
    assert table.extend(again, len(keys)).tolist() == [5]
    assert table.lookup(keys[5:7]).tolist() == [20_000, 6]
    assert table.lookup(np.array([b"NOPE"], "S14")).tolist() == [-1]


_EVENTS = [EV[n] for n in ("SENT_NEW", "ACCEPTED", "REPLACED", "ORDER_MODIFIED", "EXECUTED", "EXECUTED_WITH_REF_PRICE",
                           "CANCELED", "AIQ_CANCELED", "SENT_CANCEL", "REJECTED")] + [events.UNKNOWN_QTY]


class _Book:
    """The running totals Creators carries, for n orders."""

    def __init__(self, n, rng):
        self.n = n
        self.leaves_sum = rng.integers(-5, 500, n).astype(np.int64)
        self.leaves_started = rng.integers(0, 2, n).astype(np.int64)

    def __len__(self):
        return self.n


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 60), st.integers(0, 400), st.integers(0, 6), st.integers(1, 4))
def test_compiled_leaves_equal_the_numpy_reference_over_chunks(seed, n_book, n_events, n_unknown, chunks):
    rng = np.random.default_rng(seed)
    if n_book == 0 and n_unknown == 0:
        n_unknown = 1
    ref_book, c_book = _Book(n_book, rng), None
    c_book = _Book(n_book, np.random.default_rng(0))
    c_book.leaves_sum[:], c_book.leaves_started[:] = ref_book.leaves_sum, ref_book.leaves_started
    for part in np.array_split(np.arange(n_events), chunks):
        m = len(part)
        cols = {"event": rng.choice(_EVENTS, m).astype(np.int8),
                "qty": rng.integers(0, 900, m), "exec_qty": rng.integers(0, 300, m),
                "decrement": rng.integers(0, 300, m)}
        group = rng.integers(0, n_book + n_unknown, m).astype(np.int64)
        unknown = group >= n_book
        if unknown.any():     # local codes are 0..k-1 past the book, as the join numbers them
            _, code = np.unique(group[unknown], return_inverse=True)
            group[unknown] = n_book + code
        k = int(group[unknown].max()) - n_book + 1 if unknown.any() else 0
        want = leaves_reference(cols, group, ref_book, k)
        got = orderjoin.leaves(group, cols["event"], cols["qty"], cols["exec_qty"], cols["decrement"],
                               LEAVES_CODES, c_book.leaves_sum, c_book.leaves_started, k)
        assert got.tolist() == want.tolist()
        assert c_book.leaves_sum.tolist() == ref_book.leaves_sum.tolist()
        assert c_book.leaves_started.tolist() == ref_book.leaves_started.tolist()


def test_an_order_modified_sets_the_remaining_quantity_to_the_open_shares_it_restates():
    """Accepted 300, 50 executed, modified to 200 open, 20 executed, the rest cancelled; another
    order modified before any Accepted the journal holds: its shares are known from then on."""
    names = ["ACCEPTED", "EXECUTED", "ORDER_MODIFIED", "EXECUTED", "CANCELED", "ORDER_MODIFIED", "EXECUTED"]
    cols = {"event": np.array([EV[n] for n in names], np.int8), "qty": np.array([300, 0, 200, 0, 0, 90, 0]),
            "exec_qty": np.array([0, 50, 0, 20, 0, 0, 10]), "decrement": np.array([0, 0, 0, 0, 180, 0, 0])}
    group = np.array([0, 0, 0, 0, 0, 1, 1])
    for compiled in (True, False):
        book = _Book(2, np.random.default_rng(0))
        book.leaves_sum[:], book.leaves_started[:] = 0, 0
        got = (orderjoin.leaves(group, cols["event"], cols["qty"], cols["exec_qty"], cols["decrement"],
                                LEAVES_CODES, book.leaves_sum, book.leaves_started, 0) if compiled
               else leaves_reference(cols, group, book, 0))
        assert got.tolist() == [300, 250, 200, 180, 0, 90, 80]
        assert book.leaves_sum.tolist() == [0, 80]


def test_compiled_leaves_refuse_group_codes_outside_the_book():
    book = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="group codes"):
        orderjoin.leaves(np.array([3]), np.array([EV["ACCEPTED"]], np.int8), np.array([1]), np.array([0]),
                         np.array([0]), LEAVES_CODES, book, book.copy(), 0)
    with pytest.raises(ValueError, match="int64"):
        orderjoin.leaves(np.array([0]), np.array([EV["ACCEPTED"]], np.int8), np.array([1]), np.array([0]),
                         np.array([0]), LEAVES_CODES, book.astype(np.int32), book, 0)


def test_the_join_uses_the_compiled_index():
    assert isinstance(Creators().index, TokenTable)
    assert events.LEAVES_CODES["canceled"] == EV["CANCELED"]


def _join_key_reference(tokens):
    raw = np.ascontiguousarray(tokens, dtype="S14").view(np.uint8).reshape(len(tokens), 14).copy()
    raw[raw == 0x20] = 0
    return raw.view("S14")[:, 0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=14), max_size=200), st.integers(0, 2**32 - 1))
def test_join_keys_and_token_strings_equal_their_numpy_and_pyarrow_references(values, seed):
    import pyarrow as pa
    from reports import arrowcols
    rng = np.random.default_rng(seed)
    pool = np.array([b"A", b" ", b"\x00", b"z", b"\xc3\xa9"[:1], b"7"], dtype="S1")
    raw = np.array([v for v in values] + [b"".join(rng.choice(pool, 14)) for _ in range(len(values))], "S14")
    rows = np.zeros(len(raw), [("pad", "u1"), ("token", "S14"), ("more", "u4")])
    rows["token"] = raw                      # a strided field, as the journal's records give them
    assert np.array_equal(orderjoin.join_keys(rows["token"]), _join_key_reference(rows["token"]))
    keys = _join_key_reference(raw)
    valid = rng.random(len(keys)) < 0.7
    for mask in (None, valid, rng.random(len(keys)) < 0.05, np.zeros(len(keys), bool), np.ones(len(keys), bool)):
        try:
            want = pa.array(keys, type=pa.binary(), mask=None if mask is None else ~mask).cast(pa.string())
        except pa.ArrowInvalid:     # venue garbage: each invalid byte escaped (reports reject the row)
            want = pa.array([k.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
                             if mask is None or ok else None for k, ok in
                             zip(keys.tolist(), np.ones(len(keys), bool) if mask is None else mask)], pa.string())
        got = arrowcols.token_strings(keys, mask)
        got.validate(full=True)
        assert got.equals(want)
