"""The firm's journaled Cancels that never reached the venue: those of an order a crash recovery
sent a Cancel for again (RECON resend-cancel, recovery_marks) journaled before that resolution and
answered by neither a Canceled nor a Cancel Reject of the venue before it. CAT reports no Route
Cancelled for one and the order records mark it NOT_SENT: both reports take it from here, so they
agree.

Owns that test: the venue's answers are read from the journal itself between the Cancel and the
resolution (a header scan of that stretch only, and only for a chunk holding such a Cancel), so
the result depends neither on where chunks end nor on the range or date selected; not the
reports' columns.
"""
from __future__ import annotations

import numpy as np

from reports import cat_routes, events, recovery_marks
from reports.events import EV
from reports.source import JournalSlice

_ANSWERS = bytes((cat_routes.CANCELED, cat_routes.CANCEL_REJECT))


def lost_seqs(src: JournalSlice, cols, resent: recovery_marks.Marks) -> np.ndarray:
    """The journal sequences of the Cancels among the events `cols` (a chunk's columns) that never
    reached the venue; empty when the journal holds no resend-cancel (no read at all)."""
    if not len(resent):
        return np.zeros(0, np.int64)
    rows = np.flatnonzero(cols["event"] == EV["SENT_CANCEL"])
    if len(rows):
        rows = rows[resent.before(cols["token_key"][rows], cols["seq"][rows])]
    if not len(rows):
        return np.zeros(0, np.int64)
    token, seq = cols["token_key"][rows], np.asarray(cols["seq"][rows], np.int64)
    resolved = resent.seq[resent.find(token)]
    got = events.venue_messages(src, int(seq.min()) + 1, int(resolved.max()), _ANSWERS, ("token",))
    if got:
        answered = cat_routes.first_after(got["token_key"], got["seq"].astype(np.int64), token, seq)
    else:
        answered = np.full(len(rows), np.iinfo(np.int64).max, np.int64)
    return seq[answered > resolved]
