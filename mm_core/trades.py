"""The tape of recent trade prints, by ITCH match number, and the reversal of a Broken Trade.

Owns which prints feed the quote guard and the trade-flow signal, in order, and what a Broken
Trade ('B', naming a match number) takes back out: the print's term in the flow EWMAs, its place
in the guard's aggression window while it is still there, and its volume in VPIN's open bucket
(closed buckets are history and stay). Must not know about wire formats, books or orders.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

__all__ = ["TradeTape", "Reversal", "TAPE_MAX", "tape_digest"]

TAPE_MAX = 16_384       # prints a Broken Trade can still reverse (older ones count as unknown)


# the tape's log as columns, each hashed as little-endian values of this width (tape_digest)
_LOG_COLUMNS = ("<u8", "<u4", "u1", "<i8", "<i8", "<i8")     # match, symbol, aggressor buys, qty, index, bucket


def tape_digest(seq, columns) -> str:
    """SHA-256 of a tape's state: its per-symbol print counts and its log as the six columns of
    _LOG_COLUMNS, oldest first. The engine's state hash takes this in place of the log's repr:
    a full tape holds 16,384 prints, whose tuples took ~30 ms to build and repr per hash."""
    h = hashlib.sha256(repr(list(seq)).encode())
    for column, dtype in zip(columns, _LOG_COLUMNS):
        h.update(np.asarray(column).astype(dtype, copy=False).tobytes())
    return h.hexdigest()


class Reversal(NamedTuple):
    """What a Broken Trade took back out."""

    symbol_id: int
    aggressor_buys: bool
    qty: int
    window: bool        # removed from the guard's aggression window
    vpin: bool          # removed from VPIN's open bucket


class TradeTape:
    """Per symbol print counts and the last TAPE_MAX prints by match number."""

    def __init__(self, n_symbols: int) -> None:
        self.seq = [0] * n_symbols
        # match -> (symbol, aggressor buys, qty, its index in seq, the VPIN bucket it sits in whole or -1)
        self.log: OrderedDict[int, tuple] = OrderedDict()

    def on_prints(self, prints, guards, fv) -> None:
        """(symbol, aggressor_buys, qty, match) prints, in order, into the guards and trade flow."""
        seq, log = self.seq, self.log
        for s, aggressor_buys, qty, match in prints:
            g = guards[s]
            before = g.vpin.completed
            g.on_print(aggressor_buys, qty)
            fv.on_trade(s, aggressor_buys, qty)
            k = seq[s]
            seq[s] = k + 1
            log[match] = (s, aggressor_buys, qty, k, before if g.vpin.completed == before else -1)
            if len(log) > TAPE_MAX:
                log.popitem(last=False)

    def break_trade(self, match: int, guards, fv) -> Reversal | None:
        """Take the print with this match number back out; None when it is not on the tape."""
        entry = self.log.pop(match, None)
        if entry is None:
            return None
        s, aggressor_buys, qty, k, bucket = entry
        later = self.seq[s] - 1 - k          # prints on this symbol since
        fv.reverse_trade(s, aggressor_buys, qty, later)
        g = guards[s]
        window, vpin = g.reverse_print(aggressor_buys, qty, later, bucket >= 0 and bucket == g.vpin.completed)
        return Reversal(s, aggressor_buys, qty, window, vpin)

    def state_items(self):
        return self.seq, list(self.log.items())

    def state_digest(self) -> str:
        """tape_digest of this tape (equal to the compiled tape's for the same state)."""
        n = len(self.log)
        entries = list(self.log.values())
        columns = [np.fromiter(self.log.keys(), dtype="<u8", count=n)]
        columns += [np.fromiter((e[i] for e in entries), dtype=dtype, count=n)
                    for i, dtype in enumerate(_LOG_COLUMNS[1:])]
        return tape_digest(self.seq, columns)
