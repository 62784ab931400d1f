"""Level-2 order books built from ITCH 5.0 order-level events, one per integer symbol id.

Owns: the order map by ITCH order reference and the aggregated price levels per side, kept in
preallocated lists indexed by symbol id: dicts of levels plus sorted price lists. Numpy arrays by
tick offset measured within ±20% of this (bench/engine_bench.py) but need a fixed price window and
a rescan when the best level empties; these need neither. Must not know about wire formats,
MoldUDP64 sequencing, fair value or our own orders: the engine decodes and calls in here.
"""
from __future__ import annotations

from bisect import bisect_left, insort

__all__ = ["Book", "BookError", "Execution", "duplicate_ref", "bad_order", "bad_symbol"]


class BookError(ValueError):
    """An order-level event that the book cannot apply (duplicate reference, unknown symbol).
    `changed`: the symbol whose book the event had already changed when it was refused (a
    replace's original is removed before its new order is refused), -1 when none."""

    changed = -1


# The errors an add can raise, shared with the compiled book (mm_core.fastbook) so both say the same.
def duplicate_ref(ref: int) -> BookError:
    return BookError(f"duplicate order reference {ref}")


def bad_symbol(symbol_id: int, n_symbols: int) -> BookError:
    return BookError(f"symbol id {symbol_id} outside the book (0..{n_symbols - 1})")


def bad_order(ref: int, qty: int, price: int) -> BookError:
    return BookError(f"order {ref} has qty {qty} price {price}")


class Execution:
    """What an execution removed from the book: enough for trade-flow and toxicity signals."""

    __slots__ = ("symbol_id", "resting_is_buy", "price", "qty")

    def __init__(self, symbol_id: int, resting_is_buy: bool, price: int, qty: int) -> None:
        self.symbol_id = symbol_id
        self.resting_is_buy = resting_is_buy   # a resting bid executed => the aggressor sold
        self.price = price
        self.qty = qty

    def __repr__(self) -> str:
        return (f"Execution(symbol_id={self.symbol_id}, resting_is_buy={self.resting_is_buy}, "
                f"price={self.price}, qty={self.qty})")


class Book:
    """All symbols' books. Order refs are day-unique across symbols (ITCH), so one order map."""

    __slots__ = ("n_symbols", "bid_qty", "ask_qty", "bid_px", "ask_px", "orders", "unknown_refs",
                 "watch", "dirty")

    def __init__(self, n_symbols: int, watch_levels: int = 3) -> None:
        if n_symbols <= 0 or watch_levels <= 0:
            raise BookError("a book needs at least one symbol slot and one watched level")
        self.n_symbols = n_symbols
        self.watch = watch_levels
        # dirty[s]: a change reached the top `watch` levels of symbol s since the caller cleared it
        # (changes deeper in the book cannot move fair value, so the engine skips repricing)
        self.dirty = [False] * n_symbols
        self.bid_qty: list[dict[int, int]] = [{} for _ in range(n_symbols)]   # price -> shares
        self.ask_qty: list[dict[int, int]] = [{} for _ in range(n_symbols)]
        self.bid_px: list[list[int]] = [[] for _ in range(n_symbols)]         # ascending prices
        self.ask_px: list[list[int]] = [[] for _ in range(n_symbols)]
        self.orders: dict[int, list] = {}   # ref -> [symbol_id, is_buy, price, qty]
        self.unknown_refs = 0               # events naming orders we never saw (counted, reported)

    # --- order-level events -------------------------------------------------------------

    def add(self, ref: int, symbol_id: int, is_buy: bool, qty: int, price: int) -> None:
        if ref in self.orders:
            raise duplicate_ref(ref)
        if not 0 <= symbol_id < self.n_symbols:
            raise bad_symbol(symbol_id, self.n_symbols)
        if qty <= 0 or price <= 0:
            raise bad_order(ref, qty, price)
        self.orders[ref] = [symbol_id, is_buy, price, qty]
        if is_buy:
            levels, prices = self.bid_qty[symbol_id], self.bid_px[symbol_id]
        else:
            levels, prices = self.ask_qty[symbol_id], self.ask_px[symbol_id]
        old = levels.get(price)
        if old is None:
            levels[price] = qty
            insort(prices, price)
        else:
            levels[price] = old + qty
        self._mark(symbol_id, is_buy, price, prices)

    def _mark(self, symbol_id: int, is_buy: bool, price: int, prices: list[int]) -> None:
        """Flag the symbol when `price` is within the watched top levels of its side."""
        w = self.watch
        if len(prices) <= w or (price >= prices[-w] if is_buy else price <= prices[w - 1]):
            self.dirty[symbol_id] = True

    def execute(self, ref: int, qty: int) -> Execution | None:
        """An execution of `qty` shares of a resting order (ITCH E or C)."""
        order = self.orders.get(ref)
        if order is None:
            self.unknown_refs += 1
            return None
        symbol_id, is_buy, price, _ = order
        done = self._reduce(ref, order, qty)
        return Execution(symbol_id, is_buy, price, done)

    def cancel(self, ref: int, qty: int) -> int:
        """Partial cancel (ITCH X); returns the symbol id or -1 for an unknown reference."""
        order = self.orders.get(ref)
        if order is None:
            self.unknown_refs += 1
            return -1
        self._reduce(ref, order, qty)
        return order[0]

    def delete(self, ref: int) -> int:
        """Order delete (ITCH D); returns the symbol id or -1 for an unknown reference."""
        order = self.orders.get(ref)
        if order is None:
            self.unknown_refs += 1
            return -1
        self._reduce(ref, order, order[3])
        return order[0]

    def replace(self, old_ref: int, new_ref: int, qty: int, price: int) -> int:
        """Order replace (ITCH U): delete the original, add the new ref on the same side."""
        order = self.orders.get(old_ref)
        if order is None:
            self.unknown_refs += 1
            return -1
        symbol_id, is_buy = order[0], order[1]
        self._reduce(old_ref, order, order[3])
        try:
            self.add(new_ref, symbol_id, is_buy, qty, price)
        except BookError as exc:
            exc.changed = symbol_id     # the original is gone all the same: the top may have moved
            raise
        return symbol_id

    def _reduce(self, ref: int, order: list, qty: int) -> int:
        symbol_id, is_buy, price, left = order
        done = qty if qty < left else left
        if is_buy:
            levels, prices = self.bid_qty[symbol_id], self.bid_px[symbol_id]
        else:
            levels, prices = self.ask_qty[symbol_id], self.ask_px[symbol_id]
        self._mark(symbol_id, is_buy, price, prices)
        rest = levels[price] - done
        if rest > 0:
            levels[price] = rest
        else:
            del levels[price]
            del prices[bisect_left(prices, price)]
        if done == left:
            del self.orders[ref]
        else:
            order[3] = left - done
        return done

    # --- queries ------------------------------------------------------------------------

    def best_bid(self, symbol_id: int) -> int:
        """Best bid price4, 0 when the side is empty."""
        prices = self.bid_px[symbol_id]
        return prices[-1] if prices else 0

    def best_ask(self, symbol_id: int) -> int:
        """Best ask price4, 0 when the side is empty."""
        prices = self.ask_px[symbol_id]
        return prices[0] if prices else 0

    def top(self, symbol_id: int) -> tuple[int, int, int, int]:
        """(bid price, bid qty, ask price, ask qty); zeros on an empty side."""
        bp, ap = self.bid_px[symbol_id], self.ask_px[symbol_id]
        b = bp[-1] if bp else 0
        a = ap[0] if ap else 0
        return (b, self.bid_qty[symbol_id][b] if b else 0, a, self.ask_qty[symbol_id][a] if a else 0)

    def bids(self, symbol_id: int, depth: int) -> list[tuple[int, int]]:
        """Up to `depth` bid levels, best first, as (price, shares)."""
        prices, levels = self.bid_px[symbol_id], self.bid_qty[symbol_id]
        return [(p, levels[p]) for p in prices[: -depth - 1: -1]]

    def asks(self, symbol_id: int, depth: int) -> list[tuple[int, int]]:
        """Up to `depth` ask levels, best first, as (price, shares)."""
        levels = self.ask_qty[symbol_id]
        return [(p, levels[p]) for p in self.ask_px[symbol_id][:depth]]

    def depth_imbalance(self, symbol_id: int, depth: int, decay: float) -> float:
        """Σ w_i (bid_i − ask_i) / Σ w_i (bid_i + ask_i) over the top `depth` levels, w_i = decay^i;
        the same number as fairvalue.multi_level_imbalance without building level lists."""
        bp, ap = self.bid_px[symbol_id], self.ask_px[symbol_id]
        bq, aq = self.bid_qty[symbol_id], self.ask_qty[symbol_id]
        nb, na = len(bp), len(ap)
        num = den = 0.0
        w = 1.0
        for i in range(depth if depth < max(nb, na) else max(nb, na)):
            b = bq[bp[nb - 1 - i]] if i < nb else 0
            a = aq[ap[i]] if i < na else 0
            num += w * (b - a)
            den += w * (b + a)
            w *= decay
        return num / den if den > 0 else 0.0

    def clear(self) -> None:
        """Forget every order (e.g. before rebuilding from a snapshot)."""
        for i in range(self.n_symbols):
            self.bid_qty[i].clear()
            self.ask_qty[i].clear()
            self.bid_px[i].clear()
            self.ask_px[i].clear()
        self.orders.clear()

    def state_items(self):
        """Canonical content for state hashing: orders in reference order."""
        return sorted((ref, tuple(o)) for ref, o in self.orders.items())
