"""The compiled market-data path against the pure-Python reference (mm_core.book.Book, the ITCH
codec, the MoldUDP64 tracker and mdpath.apply_messages), on random order-level streams."""
import pytest
from hypothesis import given, settings, strategies as st

from mm_core.book import Book, BookError
from mm_core.fastbook import FastBook
from mm_core.mdpath import MarketDataPath, apply_messages
from mm_core.protocol import ProtocolError, UnknownMessageType, itch, moldudp64

N = 3
KNOWN = [True, False, True]      # symbol 1 has no spec; 3 and 4 are outside the book


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except BookError as exc:
        return ("BookError", str(exc))


def _book_state(b):
    return (b.state_items(), [bool(b.dirty[s]) for s in range(b.n_symbols)], b.unknown_refs,
            [b.top(s) for s in range(b.n_symbols)],
            [(b.bids(s, 4), b.asks(s, 4), b.depth_imbalance(s, 3, 0.5)) for s in range(b.n_symbols)])


def _ex(e):
    return None if e is None else (e.symbol_id, e.resting_is_buy, e.price, e.qty)


book_ops = st.lists(st.tuples(st.sampled_from("AECXDU"), st.integers(1, 10), st.integers(-1, 3),
                              st.booleans(), st.integers(-1, 300), st.sampled_from([0, 9_900, 10_000, 10_100, 10_200])),
                    max_size=150)


@settings(max_examples=200, deadline=None)
@given(book_ops)
def test_fast_book_equals_the_python_book_call_by_call(ops):
    ref_book, fast = Book(N), FastBook(N)
    for op, ref, sym, is_buy, qty, px in ops:
        if op == "A":
            calls = [(b.add, ref, sym, is_buy, qty, px) for b in (ref_book, fast)]
        elif op == "E":
            calls = [(lambda b=b: _ex(b.execute(ref, qty)),) for b in (ref_book, fast)]
        elif op == "C":
            calls = [(b.cancel, ref, qty) for b in (ref_book, fast)]
        elif op == "X":
            calls = [(b.cancel, ref, qty) for b in (ref_book, fast)]
        elif op == "D":
            calls = [(b.delete, ref) for b in (ref_book, fast)]
        else:
            calls = [(b.replace, ref, ref + qty % 3, qty, px) for b in (ref_book, fast)]
        want, got = (_outcome(*c) for c in calls)
        assert got == want, (op, ref, sym, qty, px)
        assert _book_state(fast) == _book_state(ref_book)
        for s in range(N):          # the engine clears flags as it reads them
            ref_book.dirty[s] = fast.dirty[s] = 0
    fast.clear()
    ref_book.clear()
    assert fast.state_items() == ref_book.state_items() == []


def test_fast_book_rejects_bad_setup():
    with pytest.raises(BookError):
        FastBook(0)
    with pytest.raises(BookError):
        FastBook(2, 0)


# --- whole packets: C path vs the codec + tracker + apply_messages on a Python Book ------------

def _message(kind, ref, sym, is_buy, qty, px, flag):
    side = "B" if is_buy else "S"
    if kind == "A":
        return itch.AddOrder(sym, 0, 5, ref, side, qty, "ACME", px)
    if kind == "F":
        return itch.AddOrderMpid(sym, 0, 5, ref, side, qty, "BOLT", px, "MPID")
    if kind == "E":
        return itch.OrderExecuted(sym, 0, 5, ref, qty, 7)
    if kind == "C":
        return itch.OrderExecutedWithPrice(sym, 0, 5, ref, qty, 7, "Y" if flag else "N", px)
    if kind == "X":
        return itch.OrderCancel(sym, 0, 5, ref, qty)
    if kind == "D":
        return itch.OrderDelete(sym, 0, 5, ref)
    if kind == "U":
        return itch.OrderReplace(sym, 0, 5, ref, ref + 1 + qty % 4, qty, px)
    if kind == "P":
        return itch.Trade(sym, 0, 5, ref, side, qty, "CHIP", px, 9)
    if kind == "H":
        return itch.StockTradingAction(sym, 0, 5, "ACME", "T" if flag else "H", " ", "")
    if kind == "S":
        return itch.SystemEvent(sym, 0, 5, "Q")
    return itch.BrokenTrade(sym, 0, 5, 9)


messages = st.tuples(st.sampled_from("AAAFEECXDUPHSB"), st.integers(1, 12), st.integers(0, 4),
                     st.booleans(), st.integers(0, 300), st.sampled_from([0, 9_900, 10_000, 10_100]),
                     st.booleans())
# a packet: its messages, then what happens to it on the way
packets = st.lists(st.tuples(st.lists(messages, min_size=1, max_size=5),
                             st.sampled_from(["send"] * 6 + ["gap", "dup", "heartbeat", "corrupt",
                                                            "truncate", "trailing", "session"]),
                             st.integers(0, 400), st.integers(0, 255)),
                   max_size=40)


class _Reference:
    """The Python pipeline the engine used before the C path, on the pure-Python Book."""

    def __init__(self):
        self.book = Book(N)
        self.tracker = moldudp64.SequenceTracker()

    def on_packet(self, packet):
        framed = moldudp64.decode(packet)           # bad framing raises
        verdict = self.tracker.on_packet(framed)
        if verdict.gap is not None:
            return verdict.gap
        if not verdict.new:
            return None
        # the new messages one by one: an unknown type skipped, a malformed one ends the packet
        msgs, skipped, malformed = [], [], None
        raw = verdict.select(framed.messages)
        for seq, data in enumerate(raw, verdict.first_sequence):
            try:
                msgs.append(itch.decode(data))
            except UnknownMessageType as exc:
                skipped.append(f"sequence {seq}: {exc}")
            except ProtocolError as exc:
                malformed = (seq, str(exc))
                self.tracker.next_expected = seq
                break
        update = apply_messages(self.book, msgs, KNOWN)
        update.skipped, update.malformed = skipped, malformed
        kept = []
        for s in update.touched:
            if self.book.dirty[s] or s in update.printed:
                self.book.dirty[s] = False
                kept.append(s)
        update.touched = kept
        return update


def _feed(path, packet):
    try:
        return ("ok", path.on_packet(packet))
    except ProtocolError as exc:
        return (type(exc).__name__, str(exc))


def _wire(spec, seq, session="SESSION001"):
    raw = tuple(itch.encode(_message(*m)) for m in spec)
    return moldudp64.encode(moldudp64.Packet(session, seq, raw)), len(raw)


@settings(max_examples=300, deadline=None)
@given(packets)
def test_packet_path_equals_the_python_reference(stream):
    ref, fast = _Reference(), MarketDataPath(N, KNOWN)
    seq, last = 1, None
    for spec, fate, where, byte in stream:
        packet, count = _wire(spec, seq)
        if fate == "gap":
            packet, count = _wire(spec, seq + 1 + where % 3)
        elif fate == "dup" and last is not None:
            packet = last
        elif fate == "heartbeat":
            packet = moldudp64.encode(moldudp64.Heartbeat("SESSION001", seq))
        elif fate == "corrupt":
            packet = packet[:where % len(packet)] + bytes([byte]) + packet[where % len(packet) + 1:]
        elif fate == "truncate":
            packet = packet[:where % len(packet)]
        elif fate == "trailing":
            packet += bytes([byte])
        elif fate == "session":
            packet, count = _wire(spec, seq, "OTHER00001")
        want, got = _feed(ref, packet), _feed(fast, packet)
        assert got == want, (fate, spec)
        assert (fast.tracker.next_expected, fast.tracker.highest_announced, fast.tracker.session) == \
            (ref.tracker.next_expected, ref.tracker.highest_announced, ref.tracker.session)
        assert _book_state(fast.book) == _book_state(ref.book)
        seq = ref.tracker.next_expected
        last = packet


def test_order_level_packets_take_the_c_path():
    path = MarketDataPath(N, KNOWN)
    first, _ = _wire([("S", 0, 0, True, 0, 0, True)], 1)
    path.on_packet(first)                   # the session is learnt on the Python path
    packet, _ = _wire([("A", 1, 0, True, 100, 10_000, False), ("A", 2, 2, False, 50, 10_100, False),
                       ("E", 1, 0, True, 40, 0, False), ("P", 9, 2, True, 10, 10_100, False),
                       ("A", 2, 0, True, 5, 9_900, False)], 2)
    update = path.on_packet(packet)
    assert path.fast_packets == 1
    assert update.n_messages == 5 and update.touched == [0, 2] and update.printed == [0, 2]
    assert update.prints == [(0, False, 40, 7), (2, False, 10, 9)]
    assert update.errors == ["duplicate order reference 2"]
    assert path.book.top(0) == (10_000, 60, 0, 0) and path.tracker.next_expected == 7


def test_a_pickled_path_carries_on_as_the_original():
    """Recovery snapshots pickle the whole engine: the C book is rebuilt from its orders."""
    import pickle
    path = MarketDataPath(N, KNOWN)
    specs = [[("A", r, r % 3, r % 2 == 0, 10 * r, 9_900 + 100 * (r % 3), False)] for r in range(1, 9)]
    seq = 1
    for spec in specs:
        packet, count = _wire(spec, seq)
        path.on_packet(packet)
        seq += count
    path.on_packet(_wire([("D", 99, 0, True, 0, 0, False)], seq)[0])   # an unknown ref, counted
    seq += 1
    copy = pickle.loads(pickle.dumps(path))
    assert _book_state(copy.book) == _book_state(path.book) and copy.book.unknown_refs == 1
    nxt, _ = _wire([("E", 2, 0, True, 5, 0, False), ("A", 20, 0, True, 7, 10_000, False)], seq)
    assert copy.on_packet(nxt) == path.on_packet(nxt)
    assert copy.fast_packets == path.fast_packets
    assert _book_state(copy.book) == _book_state(path.book)


def test_many_orders_grow_and_shrink_the_order_map_like_the_python_book():
    """Thousands of live orders (the C map grows past its first 1024 slots several times) and
    deletions in random order (backward-shift deletion across wrapped probe chains)."""
    import random
    rng = random.Random(5)
    ref_book, fast = Book(N), FastBook(N)
    live: list[int] = []
    for step in range(30_000):
        if not live or rng.random() < 0.6:
            ref = rng.getrandbits(64) if step % 3 else rng.randrange(1 << 20)
            args = (ref, rng.randrange(N), rng.random() < 0.5, rng.randrange(1, 500),
                    rng.randrange(9_000, 11_000))
            assert _outcome(fast.add, *args) == _outcome(ref_book.add, *args)
            if ref in ref_book.orders and ref not in live:
                live.append(ref)
        else:
            ref = live.pop(rng.randrange(len(live)))
            op = rng.randrange(3)
            if op == 0:
                assert fast.delete(ref) == ref_book.delete(ref)
            elif op == 1:
                qty = rng.randrange(1, 600)
                assert _ex(fast.execute(ref, qty)) == _ex(ref_book.execute(ref, qty))
                if ref in ref_book.orders:
                    live.append(ref)
            else:
                new = rng.getrandbits(64)
                args = (ref, new, rng.randrange(1, 500), rng.randrange(9_000, 11_000))
                assert _outcome(fast.replace, *args) == _outcome(ref_book.replace, *args)
                if new in ref_book.orders:
                    live.append(new)
    assert len(ref_book.orders) > 3_000
    assert _book_state(fast) == _book_state(ref_book)


def _home(ref: int, cap: int = 1024) -> int:
    """The C map's first probe slot for `ref` (slot_of in _fastmd.c) at its initial capacity."""
    return ((ref * 0x9E3779B97F4A7C15) % (1 << 64) >> 17) & (cap - 1)


def test_deleting_from_a_probe_chain_that_wraps_round_the_table_keeps_every_order_reachable():
    last = [r for r in range(1, 2_000_000) if _home(r) == 1023][:3]
    first = [r for r in range(1, 2_000_000) if _home(r) == 0][:2]
    ref_book, fast = Book(N), FastBook(N)
    for i, ref in enumerate(last + first):          # slots 1023, 0, 1, then 2, 3
        for b in (ref_book, fast):
            b.add(ref, 0, True, 10 + i, 10_000 + i)
    for gone in (last[0], first[0], last[2]):
        assert fast.delete(gone) == ref_book.delete(gone) == 0
        for ref in last + first:
            assert _ex(fast.execute(ref, 0)) == _ex(ref_book.execute(ref, 0))
        assert _book_state(fast) == _book_state(ref_book)


@pytest.mark.parametrize("query", ["top", "best_bid", "best_ask", "bids", "asks", "depth_imbalance"])
def test_queries_outside_the_book_raise_index_error_like_the_python_book(query):
    args = {"bids": (2,), "asks": (2,), "depth_imbalance": (3, 0.5)}.get(query, ())
    for book in (Book(N), FastBook(N)):
        with pytest.raises(IndexError):
            getattr(book, query)(N, *args)
