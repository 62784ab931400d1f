"""The compiled level-2 book (mm_core/_fastmd.c through cffi) behind the same API as mm_core.book.Book.

Owns the one thin wrapper over fastmd.h: every return code is checked and turned into the same
BookError the Python Book raises, or MemoryError. Knows nothing of wire formats or sequencing:
mm_core.mdpath hands it packets. Book (pure Python) stays the reference it is tested against.
"""
from __future__ import annotations

from mm_core._fastmd_cffi import ffi, lib
from mm_core.book import BookError, Execution, bad_order, bad_symbol, duplicate_ref

__all__ = ["FastBook", "ffi", "lib"]

_OK, _UNKNOWN = lib.FMD_OK, lib.FMD_UNKNOWN_REF


class FastBook:
    """All symbols' books in C. Order refs are day-unique across symbols (ITCH), so one order map."""

    __slots__ = ("n_symbols", "watch", "known", "_b", "dirty", "_top", "_sym", "_buy", "_px", "_done")

    def __init__(self, n_symbols: int, watch_levels: int = 3) -> None:
        if n_symbols <= 0 or watch_levels <= 0:
            raise BookError("a book needs at least one symbol slot and one watched level")
        b = lib.fmd_new(n_symbols, watch_levels)
        if b == ffi.NULL:
            raise MemoryError("fmd_new")
        self._b = ffi.gc(b, lib.fmd_free)
        self.n_symbols = n_symbols
        self.watch = watch_levels
        self.known = [True] * n_symbols
        # dirty[s]: a change reached the top `watch` levels of symbol s since the caller cleared it
        self.dirty = ffi.cast("uint8_t *", lib.fmd_dirty(self._b))
        self._top = ffi.new("int64_t[4]")
        self._sym = ffi.new("uint32_t *")
        self._buy = ffi.new("int *")
        self._px = ffi.new("int64_t *")
        self._done = ffi.new("int64_t *")

    @property
    def handle(self):
        """The fmd_book pointer, for mm_core.mdpath."""
        return self._b

    def set_known(self, symbol_id: int, known: bool) -> None:
        """Whether the packet path applies adds and trades of this symbol (the engine's specs)."""
        lib.fmd_set_known(self._b, symbol_id, known)
        self.known[symbol_id] = bool(known)

    # --- snapshots (recovery pickles the whole engine) -----------------------------------

    def __reduce__(self):
        return (_restore, (self.n_symbols, self.watch, self.known, self.state_items(),
                           [self.dirty[s] for s in range(self.n_symbols)], self.unknown_refs))

    @property
    def unknown_refs(self) -> int:
        return lib.fmd_unknown_refs(self._b)

    # --- order-level events -------------------------------------------------------------

    def _raise_add(self, rc: int, ref: int, symbol_id: int, qty: int, price: int) -> None:
        if rc == lib.FMD_DUPLICATE:
            raise duplicate_ref(ref)
        if rc == lib.FMD_BAD_SYMBOL:
            raise bad_symbol(symbol_id, self.n_symbols)
        if rc == lib.FMD_BAD_ORDER:
            raise bad_order(ref, qty, price)
        raise MemoryError("fastmd book")

    def add(self, ref: int, symbol_id: int, is_buy: bool, qty: int, price: int) -> None:
        rc = lib.fmd_add(self._b, ref, symbol_id, is_buy, qty, price)
        if rc != _OK:
            self._raise_add(rc, ref, symbol_id, qty, price)

    def execute(self, ref: int, qty: int) -> Execution | None:
        """An execution of `qty` shares of a resting order (ITCH E or C)."""
        if lib.fmd_execute(self._b, ref, qty, self._sym, self._buy, self._px, self._done) != _OK:
            return None
        return Execution(self._sym[0], bool(self._buy[0]), self._px[0], self._done[0])

    def cancel(self, ref: int, qty: int) -> int:
        """Partial cancel (ITCH X); returns the symbol id or -1 for an unknown reference."""
        return self._sym[0] if lib.fmd_cancel(self._b, ref, qty, self._sym) == _OK else -1

    def delete(self, ref: int) -> int:
        """Order delete (ITCH D); returns the symbol id or -1 for an unknown reference."""
        return self._sym[0] if lib.fmd_delete(self._b, ref, self._sym) == _OK else -1

    def replace(self, old_ref: int, new_ref: int, qty: int, price: int) -> int:
        """Order replace (ITCH U): delete the original, add the new ref on the same side."""
        rc = lib.fmd_replace(self._b, old_ref, new_ref, qty, price, self._sym)
        if rc == _UNKNOWN:
            return -1
        if rc != _OK:
            try:
                self._raise_add(rc, new_ref, self._sym[0], qty, price)
            except BookError as exc:
                exc.changed = self._sym[0]  # the original is gone all the same (as Book.replace)
                raise
        return self._sym[0]

    # --- queries ------------------------------------------------------------------------

    def _check(self, symbol_id: int) -> None:
        if not 0 <= symbol_id < self.n_symbols:    # Book's lists raise IndexError for these too
            raise IndexError(f"symbol id {symbol_id} outside the book (0..{self.n_symbols - 1})")

    def top(self, symbol_id: int) -> tuple[int, int, int, int]:
        """(bid price, bid qty, ask price, ask qty); zeros on an empty side."""
        self._check(symbol_id)
        t = self._top
        lib.fmd_top(self._b, symbol_id, t)
        return t[0], t[1], t[2], t[3]

    def best_bid(self, symbol_id: int) -> int:
        """Best bid price4, 0 when the side is empty."""
        self._check(symbol_id)
        lib.fmd_top(self._b, symbol_id, self._top)
        return self._top[0]

    def best_ask(self, symbol_id: int) -> int:
        """Best ask price4, 0 when the side is empty."""
        self._check(symbol_id)
        lib.fmd_top(self._b, symbol_id, self._top)
        return self._top[2]

    def _levels(self, symbol_id: int, is_buy: bool, depth: int) -> list[tuple[int, int]]:
        self._check(symbol_id)
        if depth <= 0:
            return []
        prices, qtys = ffi.new("int64_t[]", depth), ffi.new("int64_t[]", depth)
        k = lib.fmd_levels(self._b, symbol_id, is_buy, depth, prices, qtys)
        return [(prices[i], qtys[i]) for i in range(k)]

    def bids(self, symbol_id: int, depth: int) -> list[tuple[int, int]]:
        """Up to `depth` bid levels, best first, as (price, shares)."""
        return self._levels(symbol_id, True, depth)

    def asks(self, symbol_id: int, depth: int) -> list[tuple[int, int]]:
        """Up to `depth` ask levels, best first, as (price, shares)."""
        return self._levels(symbol_id, False, depth)

    def depth_imbalance(self, symbol_id: int, depth: int, decay: float) -> float:
        """Σ w_i (bid_i − ask_i) / Σ w_i (bid_i + ask_i) over the top `depth` levels, w_i = decay^i."""
        self._check(symbol_id)
        return lib.fmd_depth_imbalance(self._b, symbol_id, depth, decay)

    def clear(self) -> None:
        """Forget every order (e.g. before rebuilding from a snapshot)."""
        lib.fmd_clear(self._b)

    @property
    def orders(self) -> dict[int, list]:
        """ref -> [symbol_id, is_buy, price, qty], as Book.orders (a copy, for inspection)."""
        return {ref: [s, b, p, q] for ref, (s, b, p, q) in self.state_items()}

    def state_items(self):
        """Canonical content for state hashing: orders in reference order (as Book.state_items)."""
        n = lib.fmd_order_count(self._b)
        refs, syms = ffi.new("uint64_t[]", n), ffi.new("uint32_t[]", n)
        buys, pxs, qtys = ffi.new("uint8_t[]", n), ffi.new("int64_t[]", n), ffi.new("int64_t[]", n)
        k = lib.fmd_orders(self._b, refs, syms, buys, pxs, qtys, n)
        return sorted((refs[i], (syms[i], bool(buys[i]), pxs[i], qtys[i])) for i in range(k))


def _restore(n_symbols: int, watch: int, known: list[bool], orders, dirty: list[int],
             unknown_refs: int) -> FastBook:
    """A FastBook equal to the pickled one: levels are sums of the live orders, so re-adding
    them in reference order rebuilds every level exactly."""
    book = FastBook(n_symbols, watch)
    for s, k in enumerate(known):
        book.set_known(s, k)
    for ref, (s, is_buy, price, qty) in orders:
        book.add(ref, s, is_buy, qty, price)
    for s, d in enumerate(dirty):
        book.dirty[s] = d
    lib.fmd_set_unknown_refs(book.handle, unknown_refs)
    return book
