"""Our live quotes as the C arrays the book-top and packet kernels read, rewritten in place.

One flat pair of arrays (prices, shares) holds every symbol's own quotes, bid prices then ask
prices, symbols in id order; per symbol its offset and the counts of bid and ask prices (the
fsig_packet own-quote table), and a view of its slice as fmd_top_depth_without takes it. The
arrays are allocated once (grown, never freed while the engine lives: a C pointer into them may
still be held by the packet struct) so a rebuild after an order moved allocates no C memory.
Must not know about wire formats or clocks.
"""
from __future__ import annotations

from mm_core._fastmd_cffi import ffi
from mm_core.types import Purpose, Side

__all__ = ["OwnQuotes"]

_QUOTE, _BUY = Purpose.QUOTE, Side.BUY
_new = ffi.new


class OwnQuotes:
    """The own-quote table of `n` symbols. `rebuild(live)` returns symbol -> (prices, shares,
    n bid prices, n ask prices) with prices and shares pointing into the flat arrays."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.off, self.nb, self.na = (_new("uint32_t[]", n) for _ in range(3))
        self.cap = 0
        self.px = self.qty = ffi.NULL
        self.total = 0              # prices written by the last rebuild (0: none of ours live)
        self._grown: list = []      # every array ever handed out: kept alive for the C side
        self._written: list[int] = []

    def _grow(self, need: int) -> None:
        cap = max(16, 2 * need)
        self.px, self.qty = _new("int64_t[]", cap), _new("int64_t[]", cap)
        self._grown.append((self.px, self.qty))
        self.cap = cap

    def rebuild(self, live) -> dict:
        """The quotes among `live` (the OMS's live orders) written into the arrays, each price
        level's shares summed, in the order the orders come (Engine._own_quotes' layout)."""
        sides: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
        for order in live:
            if order.purpose is not _QUOTE:
                continue
            pair = sides.get(order.symbol_id)
            if pair is None:
                pair = sides[order.symbol_id] = ({}, {})
            at = pair[0] if order.side == _BUY else pair[1]
            at[order.price] = at.get(order.price, 0) + order.leaves
        nb, na, off, n = self.nb, self.na, self.off, self.n
        for s in self._written:
            nb[s] = na[s] = off[s] = 0
        written = self._written = []
        total = 0
        for bids, asks in sides.values():
            total += len(bids) + len(asks)
        if total > self.cap:
            self._grow(total)
        px, qty = self.px, self.qty
        own = {}
        k = 0
        for s in sorted(sides):             # the symbols with quotes of ours, in id order
            bids, asks = sides[s]
            m = len(bids) + len(asks)
            px[k:k + m] = [*bids, *asks]
            qty[k:k + m] = [*bids.values(), *asks.values()]
            own[s] = (px + k, qty + k, len(bids), len(asks))
            if s < n:
                off[s], nb[s], na[s] = k, len(bids), len(asks)
                written.append(s)
            k += m
        self.total = total
        return own
