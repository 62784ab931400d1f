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
the rows do not depend on where chunks end) and inserting the rows; not the reports' columns. A
row is made in the chunk of its answer, and its sequence is the earlier RECON record's: when the
two fall in different chunks, a report that must keep journal order holds the rows after the
record back until the answer's chunk (JournalOrder), knowing from a light scan ahead
(answered_ahead: the venue's Canceled and Cancel Reject messages and the firm's Cancels of the
listed tokens, by the same rule) which records an answer in range will settle. It holds only the
rows between such a record and its answer (the venue's answer comes with the replay at the
re-login, right after the records that list it).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from journal.catalogue import RecordType
from reports import events, orderjoin, recovery_marks
from reports.events import EV
from reports.source import JournalSlice
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
        event = c["event"]
        answer = (event == EV["CANCEL_REJECT"]) | ((event == EV["CANCELED"]) & (c["reason"] == USER_REQUESTED))
        made = self._settle(c["token_key"], c["seq"], answer, event == EV["SENT_CANCEL"])
        return _with_rows(ev, made, self.listings) if made else ev

    def _settle(self, token_key: np.ndarray, seq: np.ndarray, answer: np.ndarray, cancel: np.ndarray) -> list:
        """Events in journal order (their tokens, sequences, and which are the venue's answer to a
        Cancel or a firm's Cancel): each listing still waiting is settled by the first such event
        of its token after it; (event row, listing index) of those an answer settled in range."""
        listing_seq = self.listings.seq
        made = []
        for row in np.flatnonzero(np.isin(token_key, self.listings.token_key) & (answer | cancel)).tolist():
            at = int(seq[row])
            before = [i for i in self.by_token[token_key[row]] if listing_seq[i] < at]
            if not before or not self.waiting[before[-1]]:
                continue
            self.waiting[before[-1]] = False
            if answer[row] and self.first_seq <= listing_seq[before[-1]] <= self.last_seq:
                made.append((row, before[-1]))
        return made

    def answered_ahead(self, src: JournalSlice) -> list[tuple[int, int]]:
        """(RECON record's sequence, its answer's sequence) of every listing in range an answer in
        range will settle, as add_rows will find them: the same rule on a light scan of the range
        from the first listing (the venue's Canceled and Cancel Reject, the firm's Cancels).
        Leaves this object as it was."""
        if not self.by_token:
            return []
        ahead = RedecidedCancels(self.listings, self.first_seq, self.last_seq)
        first = max(self.first_seq, int(self.listings.seq.min()) + 1)
        if first > self.last_seq:
            return []
        venue = events.venue_messages(src, first, self.last_seq, b"CI", ("token", "reason"))
        sent = _firm_cancels(src, first, self.last_seq)
        token_key = np.concatenate([venue.get("token_key", np.zeros(0, "S14")), sent["token_key"]])
        seq = np.concatenate([venue.get("seq", np.zeros(0, np.int64)).astype(np.int64), sent["seq"]])
        msg_type = venue.get("msg_type", np.zeros(0, np.uint8))
        reason = venue.get("reason", np.zeros(len(msg_type), np.uint8))
        answer = np.concatenate([(msg_type == ord("I")) | ((msg_type == ord("C")) & (reason == USER_REQUESTED)),
                                 np.zeros(len(sent["seq"]), bool)])
        cancel = np.concatenate([np.zeros(len(msg_type), bool), np.ones(len(sent["seq"]), bool)])
        order = np.argsort(seq, kind="stable")
        made = ahead._settle(token_key[order], seq[order], answer[order], cancel[order])
        seq = seq[order]
        return sorted((int(self.listings.seq[i]), int(seq[row])) for row, i in made)


def _firm_cancels(src: JournalSlice, first_seq: int, last_seq: int) -> dict[str, np.ndarray]:
    """The firm's Cancels (ORDER_SENT of OUCH Cancel Order) in [first_seq, last_seq]: their
    sequences and token keys, read chunk by chunk."""
    keys, seqs = [np.zeros(0, "S14")], [np.zeros(0, np.int64)]
    for a in range(first_seq, last_seq + 1, events.CHUNK_SEQS):
        sent = src.reader.read_fixed(RecordType.ORDER_SENT, first_seq=a, last_seq=min(a + events.CHUNK_SEQS - 1, last_seq))
        sent = sent[sent["msg_type"] == _CANCEL]
        keys.append(orderjoin.join_keys(sent["token"]))
        seqs.append(sent["seq"].astype(np.int64))
    return {"token_key": np.concatenate(keys), "seq": np.concatenate(seqs)}


class JournalOrder:
    """Hands a report's tables on in journal order although a re-decided Cancel's row (at its RECON
    record's sequence) is made in the later chunk of its answer: the rows after such a record are
    held back until the chunk that holds its answer (answered_ahead), then handed on with it,
    sorted by sequence. `release(table, upto)` per chunk in journal order (`upto`: the last
    sequence of the chunk's events before any selection), `finish()` at the end."""

    def __init__(self, answered: list[tuple[int, int]]):
        self.answered = answered
        self.held: list[pa.Table] = []

    def release(self, table: pa.Table, upto: int | None) -> pa.Table | None:
        """The rows that may go now (None: none), the rest held."""
        if not self.answered and not self.held:
            return table
        if upto is not None:
            self.answered = [(listing, answer) for listing, answer in self.answered if answer > upto]
        parts = self.held + [table]
        whole = pa.concat_tables(parts) if len(parts) > 1 else table
        if len(parts) > 1:
            whole = whole.sort_by("seq")
        cut = min((listing for listing, _ in self.answered if upto is None or listing <= upto), default=None)
        if cut is None:
            self.held = []
            return whole
        seq = whole.column("seq").to_numpy()
        go = int(np.searchsorted(seq, cut, side="right"))
        self.held = [whole.slice(go)]
        return whole.slice(0, go) if go else None

    def finish(self) -> pa.Table | None:
        """What is still held (only when an answer's chunk did not come: a range cut short)."""
        held, self.held = self.held, []
        return pa.concat_tables(held).sort_by("seq") if held else None


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
