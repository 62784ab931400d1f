"""The compiled order-event decode (events.FUSED: orderjoin.merge_events, the creators gathered
straight into the book, JoinedCols.gather_all in one pass) against the numpy passes it replaced,
on random journals: every column of every chunk equal, in every mode of collect_chunks."""
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from journal.catalogue import PAYLOAD_DTYPES, RecordType, TsSource, pack
from mm_core.protocol import ouch, soupbintcp
from reports import events, orderjoin
from reports.errors import KernelInputError, ReportError
from reports.events import JOINED, JoinedCols
from reports.source import Selection, open_slice
from tests.reports.journal_builder import DayBuilder

_OPS = ("enter", "replace", "cancel", "accept", "replaced", "execute", "canceled", "aiq", "rejected",
        "unknown", "system", "not_sequenced", "truncated", "raw_len_past", "clock", "reuse", "state",
        "cut_accept", "cut_enter")


def _numpy_gather_all(self, names=None):
    for name in (JOINED if names is None else names):
        self[name]        # noqa: B018  (numpy gather by __missing__, column by column)


def _day(ops: list[tuple[str, int, int]]) -> DayBuilder:
    """A random day: orders, replace chains, venue replies (some for tokens never sent), system
    events, non-sequenced packets, cut OUCH messages, clock samples; tokens reused at times."""
    b = DayBuilder()
    b.clock_sample()
    live: list[str] = []
    counter = 0

    def token() -> str:
        nonlocal counter
        counter += 1
        return f"T{counter:05d}" + (" " * (counter % 3))      # some padded with OUCH's spaces

    for op, x, y in ops:
        b.advance(1_000 + x)
        pick = live[x % len(live)] if live else None
        if op == "enter" or (pick is None and op not in ("unknown", "system", "not_sequenced", "clock", "state")):
            new = token().strip()
            b.enter(new, 1 + x % 4, "BSTE"[y % 4], 1_000_000 + x, 100 + y)
            live.append(new)
        elif op == "reuse":
            b.enter(pick, 1 + y % 4, "BS"[x % 2], 2_000_000 + y, 50 + x)
        elif op == "replace":
            new = token().strip()
            b.replace(pick, new, 1_000_100 + y, 80 + x)
            live.append(new)
        elif op == "cancel":
            b.cancel(pick, y % 3 * 10)
        elif op == "accept":
            b.accept(pick, TsSource.HW_PHC if y % 2 else TsSource.USER)
        elif op == "replaced":
            new = live[y % len(live)]
            b.replaced(pick, new)
        elif op == "execute":
            b.execute(pick, 1 + y % 90, None if x % 2 else 999_900)
        elif op == "canceled":
            b.canceled(pick, y % 70)
        elif op == "aiq":
            b._venue(ouch.AiqCanceled(timestamp=b._venue_ts(), token=pick, decrement_shares=y % 40,
                                      reason="Q", quantity_prevented=1, execution_price=1, liquidity_flag="A"))
        elif op == "rejected":
            b.rejected(pick)
        elif op == "unknown":
            b._venue(ouch.Executed(timestamp=b._venue_ts(), token=f"NOPE{x:04d}", executed_shares=y + 1,
                                   execution_price=100, liquidity_flag="R", match_number=x))
        elif op == "system":
            b._venue(ouch.SystemEvent(timestamp=b._venue_ts(), event_code="S"))
        elif op in ("not_sequenced", "truncated", "raw_len_past"):
            body = ouch.encode(ouch.Executed(timestamp=b._venue_ts(), token=pick or "GONE", executed_shares=5,
                                             execution_price=7, liquidity_flag="A", match_number=3))
            raw = soupbintcp.encode(soupbintcp.SequencedData(payload=body))
            fields = dict(soup_seq=len(b.records) + 1, packet_type=ord("S"), msg_type=body[0])
            if op == "not_sequenced":
                fields["packet_type"] = ord("U" if y % 2 else "H")
            elif op == "truncated":
                raw = raw[:max(1, y % len(raw))]          # a message cut short (zeros past it)
            b._add(RecordType.VENUE_MSG, pack(RecordType.VENUE_MSG, **fields, raw=raw,
                                              **({"raw_len": 400} if op == "raw_len_past" else {})),
                   source=TsSource.HW_PHC)
        elif op in ("cut_accept", "cut_enter"):     # a quantity or creating message cut at a random byte
            if op == "cut_accept":
                b.accept(pick)
            else:
                new = token().strip()
                b.enter(new, 1 + x % 4, "BSTE"[y % 4], 1_000_000 + x, 100 + y)
                live.append(new)
            last = b.records[-1]
            rtype = last.rtype
            rec = np.frombuffer(last.payload, PAYLOAD_DTYPES[rtype], count=1).copy()
            rec["raw_len"] = min(int(rec["raw_len"][0]), y % 50)
            rec["raw"][0, int(rec["raw_len"][0]):] = 0
            b.records[-1] = type(last)(rtype, rec.tobytes(), last.ts_ns, last.ts_source, last.clock_state)
        elif op == "clock":
            b.clock_sample(offset_ns=x, error_bound_ns=500 + y)
        elif op == "state":
            b.state_change(1, 2, "test")
    return b


_MODES = ("default", "lazy_take", "no_leaves", "only", "no_join")


def _collect(src, mode: str, chunk: int, rows_seed: int, fused: bool, monkeypatch) -> list:
    monkeypatch.setattr(events, "FUSED", fused)
    monkeypatch.setattr(JoinedCols, "gather_all", JoinedCols.gather_all if fused else _numpy_gather_all)
    kw = {"chunk_seqs": chunk}
    if mode == "lazy_take":
        kw["gather_joined"] = False
    elif mode == "no_leaves":
        kw["leaves"] = False
    elif mode == "only":
        kw.update(only=(events.EV["EXECUTED"], events.EV["ACCEPTED"], events.EV["SENT_NEW"]), leaves=False)
    elif mode == "no_join":
        kw["join_orders"] = False
    out = []
    rng = np.random.default_rng(rows_seed)
    for chunk_events in events.collect_chunks(src, **kw):
        if mode == "lazy_take":      # as CAT: take some rows and some JOINED columns, then read more
            rows = np.flatnonzero(rng.random(len(chunk_events)) < 0.6)
            names = ["seq", "event", "leaves", "creator_seq", "order_wire_side", "symbol_id", "order_stock"]
            chunk_events = chunk_events.take(rows, names)
            chunk_events.cols["order_qty"]       # noqa: B018  (a column not taken: gathered on read)
        out.append({**chunk_events.cols, "utc_ns": chunk_events.utc.utc_ns,
                    "sample_index": chunk_events.utc.sample_index})
    monkeypatch.undo()
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(_OPS), st.integers(0, 10_000), st.integers(0, 10_000)),
                    min_size=1, max_size=120),
       chunk=st.integers(1, 40), first=st.integers(0, 60), mode=st.sampled_from(_MODES),
       rows_seed=st.integers(0, 2**32 - 1))
def test_the_compiled_decode_equals_the_numpy_passes(ops, chunk, first, mode, rows_seed, monkeypatch):
    day = _day(ops)
    with tempfile.TemporaryDirectory() as tmp:
        day.write(tmp)
        selection = Selection(first_seq=min(first, len(day.records))) if first > 1 else Selection()
        src = open_slice(tmp, selection)
        got = _collect(src, mode, chunk, rows_seed, True, monkeypatch)
        want = _collect(open_slice(tmp, selection), mode, chunk, rows_seed, False, monkeypatch)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert list(g) == list(w)
        for name in w:
            assert g[name].dtype == w[name].dtype, name
            assert np.array_equal(g[name], w[name]), name


def test_a_chunk_of_every_case_goes_through_the_compiled_pass(tmp_path, monkeypatch):
    """The fixed day of every op above (so no example depends on hypothesis drawing it): the
    compiled columns equal the reference, and the merge kept exactly the order events."""
    ops = [(op, 7 * i + 3, 11 * i + 5) for i, op in enumerate(_OPS * 3)]
    _day(ops).write(tmp_path)
    called = []
    merge = orderjoin.merge_events
    monkeypatch.setattr(orderjoin, "merge_events", lambda *a, **k: called.append(1) or merge(*a, **k))
    got = _collect(open_slice(tmp_path), "default", 16, 0, True, monkeypatch)
    assert called
    want = _collect(open_slice(tmp_path), "default", 16, 0, False, monkeypatch)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for name in w:
            assert np.array_equal(g[name], w[name]), name
    whole = {k: np.concatenate([c[k] for c in got]) for k in got[0]}
    assert (whole["creator"] < 0).any() and (whole["creator"] >= 0).any()     # unknown tokens kept
    assert (whole["origin"] == 1).any() and (whole["origin"] == 0).any()
    assert not np.isin(whole["msg_type"][whole["origin"] == 1], [ord("S")]).any()   # system events out
    short = events.short_messages(whole)          # cut messages of both origins, quantities lost
    assert short[whole["origin"] == 0].any() and short[whole["origin"] == 1].any()
    assert (whole["leaves"] == events.LEAVES_UNKNOWN).any() and (whole["leaves"] == events.LEAVES_PENDING).any()


def test_gather_matches_take_and_astype_and_rejects_what_it_cannot_widen():
    rng = np.random.default_rng(3)
    rec = np.zeros(50, [("a", "u1"), ("b", "<u4"), ("c", "i2"), ("d", "S8"), ("e", "<u8")])
    for name in rec.dtype.names:
        rec[name] = rng.integers(0, 250, 50).astype(rec.dtype[name]) if name != "d" else \
            [b"X%d" % i for i in range(50)]
    rec["c"][::3] *= -1
    rows = rng.integers(-1, 50, 200)
    out = {"a": np.empty(200, np.int64), "b": np.empty(200, np.int64), "c": np.empty(200, np.int64),
           "d": np.empty(200, "S8"), "e": np.empty(200, np.int64)}
    orderjoin.gather(rows, [(rec[k], out[k]) for k in out])
    for k, column in out.items():
        want = np.where(rows >= 0, rec[k][np.clip(rows, 0, None)].astype(column.dtype), np.zeros(1, column.dtype))
        assert np.array_equal(column, want), k
    with pytest.raises(ValueError):
        orderjoin.gather(rows, [(rec["b"], np.empty(200, np.uint8))])
    with pytest.raises(IndexError):
        orderjoin.gather(np.array([50]), [(rec["a"], np.empty(1, np.uint8))])
    # the C copies bytes: no object references, no foreign byte order
    with pytest.raises(KernelInputError, match="plain native"):
        orderjoin.gather(rows, [(np.array([None] * 50, object), np.empty(200, object))])
    with pytest.raises(KernelInputError, match="plain native"):
        orderjoin.gather(rows, [(rec["b"].astype(">u4"), np.empty(200, np.int64))])
    # the widening paths byte by byte (1 -> 2, 2 -> 4 bytes) and a 14-byte copy
    tokens = np.array([b"T%013d" % i for i in range(50)], "S14")
    wide = {"a": np.empty(200, np.uint16), "c": np.empty(200, np.int32)}
    copied = np.empty(200, "S14")
    orderjoin.gather(rows, [(rec[k], wide[k]) for k in wide] + [(tokens, copied)])
    for k, column in wide.items():
        want = np.where(rows >= 0, rec[k][np.clip(rows, 0, None)].astype(column.dtype), 0)
        assert np.array_equal(column, want), k
    assert np.array_equal(copied, np.where(rows >= 0, tokens[np.clip(rows, 0, None)], b""))
    # an empty source (no order known yet): every row unknown gives zeros, no source row is read
    unknown, text = np.full(4, 7, np.int64), np.full(4, b"X", "S8")
    orderjoin.gather(np.full(4, -1), [(rec["e"][:0], unknown), (rec["d"][:0], text)])
    assert unknown.tolist() == [0, 0, 0, 0] and text.tolist() == [b""] * 4


def _merge_inputs(tmp_path):
    """(merge_events' positional arguments, the header columns, the header) of a three-event day."""
    day = _day([("enter", 1, 2), ("accept", 0, 0), ("enter", 3, 4)])
    day.write(tmp_path)
    head, got = open_slice(tmp_path).heads(events._HEADS[True])
    (sent_at, sent), (venue_at, venue) = got[RecordType.ORDER_SENT], got[RecordType.VENUE_MSG]
    args = (sent, sent_at, venue, venue_at, events._SENT_LUT, events._VENUE_LUT,
            events.SOUP_SEQUENCED, events.OUCH_SYSTEM_EVENT)
    return args, {name: getattr(head, name) for name in ("seq", "ts_ns", "ts_source")}, head


def test_merge_events_refuses_creator_columns_that_do_not_fit(tmp_path):
    """created must have exactly one row per creating ORDER_SENT, of the book's dtypes."""
    args, heads, head = _merge_inputs(tmp_path)
    for rows, bad in ((1, None), (3, None), (2, ("qty", np.int64))):
        created = {name: np.zeros(rows, dtype) for name, dtype in events.Creators.DTYPES.items()}
        if bad:
            created[bad[0]] = np.zeros(rows, bad[1])
        with pytest.raises(ValueError, match="created"):
            orderjoin.merge_events(*args, created=created, creates=events._CREATES, head=heads)
    created = {name: np.zeros(2, dtype) for name, dtype in events.Creators.DTYPES.items()}
    cols = orderjoin.merge_events(*args, created=created, creates=events._CREATES, head=heads)
    assert created["seq"].tolist() == head.seq[cols["at"][cols["origin"] == 0]].tolist()
    assert created["token_key"].tolist() == cols["token_key"][cols["origin"] == 0].tolist()
    assert len(cols["at"]) == 3


def test_merge_events_refuses_records_the_kernel_would_misread(tmp_path):
    """The C trusts field dtypes, position order and range: each is checked first, with a typed error."""
    args, heads, _ = _merge_inputs(tmp_path)
    sent, sent_at, venue, venue_at = args[:4]
    created = {name: np.zeros(2, dtype) for name, dtype in events.Creators.DTYPES.items()}
    narrow = np.dtype([(n, "u1" if n == "raw_len" else venue.dtype.fields[n][0]) for n in venue.dtype.names])
    wrong = ((sent, sent_at, venue.astype(narrow), venue_at),                  # raw_len read as u2
             (sent, sent_at[::-1].copy(), venue, venue_at),                       # positions out of order
             (sent, sent_at, venue, venue_at - venue_at.max() - 1))              # negative positions
    for bad in wrong:
        with pytest.raises(KernelInputError, match="record"):
            orderjoin.merge_events(*bad, *args[4:])
    with pytest.raises(KernelInputError, match="256 message types"):
        orderjoin.merge_events(*args[:4], args[4][:100], *args[5:])              # a short code table
    short = {name: column[:1] for name, column in heads.items()}                  # fewer rows than read
    with pytest.raises(KernelInputError, match="header column"):
        orderjoin.merge_events(*args, created=created, creates=events._CREATES, head=short)
    assert issubclass(KernelInputError, ReportError)
