"""The OUCH side each order holds at each of its events: its Enter Order's, until the venue's Order
Modified re-marks it (a sell turned short sale, or back; OUCH Modify never turns a buy into a
sell), carried from chunk to chunk of a streamed build.

RTS 22 field 62 (short selling indicator) is the side in force at the execution, not the Enter's;
CAT takes each Order Modified's side on its own MEOM row. Owns the carry (the latest re-marking per
order, a small sorted table: Order Modified messages are few); not the reports' columns.
"""
from __future__ import annotations

import numpy as np

from reports import events
from reports.events import EV

MODIFIED = (EV["ORDER_MODIFIED"],)       # the events collect_chunks must keep for this (its `only`)


class SideInForce:
    """Feed it every chunk in journal order (with the Order Modified events kept): `apply` gives the
    chunk without them, its `order_wire_side` the side in force at each event."""

    def __init__(self):
        self.keys = np.zeros(0, "S14")         # orders re-marked so far, sorted
        self.sides = np.zeros(0, np.uint8)     # the OUCH side of their latest Order Modified

    def seed(self, src) -> None:
        """The re-markings before a range (a JournalSlice) that starts mid-journal: one scan of the
        venue messages before it."""
        if src.first_seq <= 1:
            return
        got = events.venue_messages(src, 1, src.first_seq - 1, b"M", ("token", "side"))
        if got:
            known = got["side"] != 0
            self._carry(got["token_key"][known], got["side"][known])

    def apply(self, ev: events.OrderEvents) -> events.OrderEvents:
        c = ev.cols
        modified = c["event"] == EV["ORDER_MODIFIED"]
        if not modified.any() and len(self.keys) == 0:
            return ev
        mods = np.flatnonzero(modified & (c["wire_side"] != 0))     # a truncated one re-marks nothing
        rest = np.flatnonzero(~modified)
        keys = c["token_key"]
        side = np.array(c["order_wire_side"], copy=True)
        if len(self.keys) and len(rest):       # re-marked in an earlier chunk
            at = np.clip(np.searchsorted(self.keys, keys[rest]), 0, len(self.keys) - 1)
            hit = self.keys[at] == keys[rest]
            side[rest[hit]] = self.sides[at[hit]]
        if len(mods) and len(rest):            # the latest re-marking of this chunk before each row
            latest = events.latest_before(keys[mods], keys[rest], np.searchsorted(mods, rest))
            hit = latest >= 0
            side[rest[hit]] = c["wire_side"][mods[latest[hit]]]
        if len(mods):
            self._carry(keys[mods], c["wire_side"][mods])
        out = ev.take(rest)
        out.cols["order_wire_side"] = side[rest]
        return out

    def _carry(self, keys: np.ndarray, sides: np.ndarray) -> None:
        """Keep each order's latest re-marking (this chunk's over the earlier ones)."""
        if len(keys) == 0:
            return
        keys = np.concatenate([self.keys, keys])
        sides = np.concatenate([self.sides, sides.astype(np.uint8, copy=False)])
        order = np.lexsort((np.arange(len(keys)), keys))
        keys, sides = keys[order], sides[order]
        last = np.r_[keys[1:] != keys[:-1], True]
        self.keys, self.sides = keys[last], sides[last]
