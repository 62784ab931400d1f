"""The venue's OUCH Broken Trades (and Trade / Price Corrections) a report range needs: those journaled in the range and after its
end, up to a bounded horizon (HORIZON_NS past the UTC time of the range's last record) or the
journal's end, whichever comes first, so that an execution of the range broken after the range
still reads as broken (or corrected); and what was read, for the report to say.

Owns the look-ahead and the matching of a break to the execution it takes back (same order token
and match number, journaled after it). Knows no report layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reports import events
from reports.source import JournalSlice
from reports.timebase import read_ahead

NS = 1_000_000_000
# How long after a range a venue may still break one of its trades. [M] A clearly erroneous
# execution (e.g. Nasdaq Rule 11890) is normally ruled on the same day, in some cases by the next
# trading day's open: four calendar days cover a weekend and a holiday. A module constant to adjust.
HORIZON_NS = 4 * 86_400 * NS


@dataclass
class BreaksRead:
    """The Broken Trades from the range start through `through_seq` (venue_messages columns);
    `horizon_reached`: the journal reaches the horizon (False: it ends first, or the range's last
    record has no UTC time to count the horizon from, and later breaks are unseen)."""

    got: dict
    through_seq: int
    horizon_reached: bool

    def _following(self, types: bytes, token_key: np.ndarray, match: np.ndarray, seq: np.ndarray):
        """(execution row, the messages of `types` of its order token and match number after it, in
        journal order) for each execution that has any: a loop over the few candidates."""
        b = self.got
        of_type = np.flatnonzero(np.isin(b["msg_type"], np.frombuffer(types, np.uint8)))
        for i in np.flatnonzero(np.isin(match, b["match"][of_type])):
            yield i, of_type[(b["match"][of_type] == match[i]) & (b["token_key"][of_type] == token_key[i])
                             & (b["seq"][of_type] > seq[i])]

    def taken_back(self, token_key: np.ndarray, match: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Whether a Broken Trade of the same order token and match number follows each execution."""
        broken = np.zeros(len(seq), bool)
        for i, after in self._following(b"B", token_key, match, seq):
            broken[i] = len(after) > 0
        return broken

    def corrected(self, token_key: np.ndarray, match: np.ndarray, seq: np.ndarray, qty: np.ndarray,
                  price: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each execution's shares and price after the venue's Trade Corrections (F: both) and
        Price Corrections (K: the price) that follow it, in journal order, and which were corrected."""
        qty, price = qty.copy(), price.copy()
        changed = np.zeros(len(seq), bool)
        b = self.got
        for i, after in self._following(b"FK", token_key, match, seq):
            for r in after.tolist():
                if b["msg_type"][r] == ord("F"):
                    qty[i] = b["executed"][r]
                price[i], changed[i] = b["exec_price"][r], True
        return qty, price, changed


def read(src: JournalSlice, horizon_ns: int = HORIZON_NS) -> BreaksRead:
    """The range's Broken Trades and those up to `horizon_ns` past its last record (see the module)."""
    samples = events.clock_samples(src)
    through, reached = src.last_seq, False
    for b, cols, utc, until, samples in read_ahead(src, samples, horizon_ns):
        beyond = np.flatnonzero(utc.valid & (utc.utc_ns > until))
        through, reached = (int(cols.seq[beyond[0]]) - 1, True) if len(beyond) else (b, False)
        if reached:
            break
    return BreaksRead(events.venue_messages(src, src.first_seq, through, b"BFK", ("token", "match", "executed",
                                                                                "exec_price")), through, reached)
