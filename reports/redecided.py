"""Cancels replay decided again whose ORDER_SENT a torn journal tail lost, that the venue acted on: a
row of their own among the order events, which the journal otherwise shows only by the venue's
answer.

A crash recovery's records closing the crashed session list the tokens of the orders its replay
decided again with no ORDER_SENT journaled (recovery_marks.Listings); such a Cancel is never sent
again and recovery adopts nothing for it. The venue's answer proves it received it: the first
user-requested Canceled (reason U) or Cancel Reject of that token after the record, with no Cancel
of the firm's journaled in between (one the recovery sent itself, which that answer may be for:
then no row is made). The row is that record's statement: a firm's Cancel (SENT_CANCEL) of the
order at the RECON record's sequence and time (when recovery recorded it; the Cancel left before
the crash, its own send time was lost with its ORDER_SENT), joined to the order as its answer is;
its intended size is unknown. Reports mark it adopted (`redecided` column).

Owns finding those answers chunk by chunk (the state carried across chunks in journal order, so
the rows do not depend on where chunks end) and inserting the rows; not the reports' columns.
"""
from __future__ import annotations

import numpy as np

from reports import events, recovery_marks
from reports.events import EV
from reports.timebase import UtcTimes, to_utc

USER_REQUESTED = ord("U")
_CANCEL = ord("X")
# the venue fields a firm's row does not carry, zeroed on the rows made (the reports mask them)
_VENUE_ONLY = ("qty", "price", "decrement", "reason", "order_ref", "venue_ts", "exec_qty", "exec_price", "match",
               "wire_side")


class RedecidedCancels:
    """The listings of one journal, and which are still waiting for the answer or Cancel that
    settles them; `add_rows` each chunk of the range [first_seq, last_seq] in journal order."""

    def __init__(self, listings: recovery_marks.Listings | None, first_seq: int, last_seq: int):
        self.listings = listings
        self.first_seq, self.last_seq = first_seq, last_seq
        self.waiting = np.ones(len(listings) if listings is not None else 0, bool)
        self.by_token: dict[bytes, list[int]] = {}
        for i, key in enumerate(listings.token_key.tolist() if listings is not None else ()):
            self.by_token.setdefault(key, []).append(i)

    def add_rows(self, ev: events.OrderEvents) -> events.OrderEvents:
        """`ev` with a row for each re-decided Cancel its events show the venue acted on (and a
        `redecided` column marking those rows); `ev` itself when there is none."""
        if not self.by_token or not len(ev):
            return ev
        c = ev.cols
        listing_seq = self.listings.seq
        made = []                                   # (event row, listing index)
        for row in np.flatnonzero(np.isin(c["token_key"], self.listings.token_key)).tolist():
            seq = int(c["seq"][row])
            before = [i for i in self.by_token[c["token_key"][row]] if listing_seq[i] < seq]
            if not before or not self.waiting[before[-1]]:
                continue
            event = c["event"][row]
            answer = (event == EV["CANCEL_REJECT"]) or (event == EV["CANCELED"] and c["reason"][row] == USER_REQUESTED)
            if answer or event == EV["SENT_CANCEL"]:
                self.waiting[before[-1]] = False
                if answer and self.first_seq <= listing_seq[before[-1]] <= self.last_seq:
                    made.append((row, before[-1]))
        return _with_rows(ev, made, self.listings) if made else ev


def _with_rows(ev: events.OrderEvents, made: list, listings: recovery_marks.Listings) -> events.OrderEvents:
    """`ev` with a firm's Cancel row per (answer row, listing) of `made`, placed by its sequence."""
    answer = np.array([r for r, _ in made], np.int64)
    listing = np.array([i for _, i in made], np.int64)
    seq = listings.seq[listing]
    at = np.searchsorted(np.asarray(ev.cols["seq"], np.int64), seq, side="left")
    order = np.argsort(at, kind="stable")
    answer, listing, seq, at = answer[order], listing[order], seq[order], at[order]
    taken = ev.take(np.insert(np.arange(len(ev)), at, answer))
    new = at + np.arange(len(at))                   # where the inserted rows land
    c = taken.cols
    for name in _VENUE_ONLY:
        c[name][new] = 0
    c["event"][new] = EV["SENT_CANCEL"]
    c["origin"][new] = 0
    c["msg_type"][new] = _CANCEL
    c["msg_len"][new] = np.iinfo(c["msg_len"].dtype).max     # no message journaled: none cut short
    for name in ("seq", "ts_ns", "ts_source", "clock_state"):
        c[name][new] = getattr(listings, name)[listing]
    c["redecided"] = np.zeros(len(taken), bool)
    c["redecided"][new] = True
    utc = to_utc(seq, listings.ts_ns[listing], listings.ts_source[listing], taken.samples)
    u = taken.utc
    for name in ("utc_ns", "valid", "basis", "utc_offset_s", "sample_index"):
        getattr(u, name)[new] = getattr(utc, name)
    return events.OrderEvents(cols=c, utc=UtcTimes(u.utc_ns, u.valid, u.basis, u.utc_offset_s, u.sample_index),
                              samples=taken.samples)
