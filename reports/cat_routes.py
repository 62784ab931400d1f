"""CAT route events of the firm's orders sent to the venue: the Order Route's (MEOR) and each Route
Modified (MEMR: an OUCH Replace or Modify sent) and Route Cancelled (MECR: an OUCH Cancel sent)
with its routedOrderID, priorRoutedOrderID and routeRejectedFlag.

What the Tech Specs 4.0.0-r18 say (orchimate.org, RouteModified, RouteCancelled, OrderRoute
Supplement): "Industry Members must report a Route Modified event ... when the Material Terms of a
route have been changed ... or when a route is cancel/replaced"; "if the routedOrderID changed
when the route was modified, the routedOrderID of the Order Route event being modified must be
populated in the priorRoutedOrderID field"; if it did not change, dupROIDCond is 'true'; "if a
route modification request is rejected by the destination venue, the Route Modified event must be
reported with a routeRejectedFlag of true", and likewise a Route Cancelled event for a rejected
cancellation; a route the venue rejects carries routeRejectedFlag (MEORS text). A route event is
the firm's: it is reported when the request is sent, whatever the venue then does (the venue
reports what it received under the same routedOrderID). The destination and destinationType are
the venue's (RefData.cat_route: a CAT Exchange ID, E, or an Industry Member's CRD:IMID, F); the
other fields the CAT JSON schema for Tech Specs 4.1.0 r15 marks Required of MEOR, MEMR and MECR
(affiliateFlag, isoInd, multiLegInd, MECR's cancelQty) are cat.py's.

Owns the venue rejections a route event needs (OUCH Rejected J of a token, Cancel Reject I of an
order) and the route columns; cat.py lays out the rows.
"""
from __future__ import annotations

import numpy as np

from reports import events, ouch
from reports.events import EV
from reports.source import JournalSlice

# Rejections arrive just after their request: a route row looks for its rejection this many
# sequences past the end of its chunk at most (the next chunk's, and past the range's end).
LOOKAHEAD_SEQS = events.CHUNK_SEQS
REJECT, CANCEL_REJECT, CANCELED = ord("J"), ord("I"), ord("C")
CANCEL = ord("X")           # the firm's OUCH Cancel Order: a Cancel Reject answers the latest one before it
# Venue message bytes a rejection needs to name its token (OUCH token field's end)
_TOKEN_END = np.zeros(256, np.int64)
for _t in (REJECT, CANCEL_REJECT, CANCELED):
    _TOKEN_END[_t] = sum(ouch.OUTBOUND_FIELDS["token"][_t][:2])


def venue_rejections(src: JournalSlice, first_seq: int | None = None) -> dict[str, np.ndarray]:
    """The venue's Rejected (J: an Enter's or a Replace's token refused) and Cancel Reject (I) messages
    from `first_seq` (default: the range start) to a little past the range's end (LOOKAHEAD_SEQS, or
    the journal's end): their token keys, sequences and types, in journal order. A header scan and
    these messages only; a streamed build reads just what lies past its range this way, and takes
    the range's own from its chunks (chunk_rejections)."""
    first = src.first_seq if first_seq is None else first_seq
    last = min(int(src.reader.last_seq), src.last_seq + LOOKAHEAD_SEQS)
    if first > last:
        return venue_rejections_none()
    got = events.venue_messages(src, first, last, bytes((REJECT, CANCEL_REJECT, CANCELED)), ("token",))
    if not got:
        return venue_rejections_none()
    none = venue_rejections_none()
    return {"token_key": got["token_key"], "seq": got["seq"].astype(np.int64), "msg_type": got["msg_type"],
            "cancel_key": none["cancel_key"], "cancel_seq": none["cancel_seq"]}


def chunk_rejections(ev: events.OrderEvents) -> dict[str, np.ndarray]:
    """The venue's Rejected (J) and Cancel Reject (I) messages among a chunk's order events (the
    join decoded them already): those venue_rejections would find there, no second read; and the
    firm's Cancels (their tokens and sequences), which tell which Cancel a Cancel Reject answers."""
    c = ev.cols
    mine = (c["origin"] == 1) & ((c["msg_type"] == REJECT) | (c["msg_type"] == CANCEL_REJECT)
                                 | (c["msg_type"] == CANCELED))
    rows = np.flatnonzero(mine)
    rows = rows[c["msg_len"][rows] >= _TOKEN_END[c["msg_type"][rows]]]
    cancels = np.flatnonzero(c["event"] == EV["SENT_CANCEL"])
    return {"token_key": c["token_key"][rows], "seq": c["seq"][rows].astype(np.int64),
            "msg_type": c["msg_type"][rows], "cancel_key": c["token_key"][cancels],
            "cancel_seq": c["seq"][cancels].astype(np.int64)}


def joined(*parts: dict) -> dict[str, np.ndarray]:
    """Rejections of consecutive stretches of the journal, in journal order, as one."""
    return {k: np.concatenate([p[k] for p in parts]) for k in venue_rejections_none()}


def venue_rejections_none() -> dict[str, np.ndarray]:
    """No rejections known (a table built without the range's pre-pass)."""
    return {"token_key": np.zeros(0, "S14"), "seq": np.zeros(0, np.int64), "msg_type": np.zeros(0, np.uint8),
            "cancel_key": np.zeros(0, "S14"), "cancel_seq": np.zeros(0, np.int64)}


_NEVER = np.iinfo(np.int64).max


def first_after(keys: np.ndarray, seqs: np.ndarray, token_key: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """For each row (its token and sequence), the sequence of the first of (`keys`, `seqs`) of its
    token after its own, or _NEVER: one sort and a binary search per row, no per-row loop."""
    seq = np.asarray(seq, np.int64)
    if len(keys) == 0 or len(seq) == 0:
        return np.full(len(seq), _NEVER, np.int64)
    order = np.lexsort((seqs, keys))
    keys, seqs = keys[order], np.asarray(seqs, np.int64)[order]
    # each token's block of sequences lifted above the previous block's, so that one sorted array
    # answers "the first of this token after s" (sequences stay far below 2^63 / tokens)
    block = np.cumsum(np.r_[True, keys[1:] != keys[:-1]]) - 1
    span = int(max(seqs.max(), seq.max())) + 1
    lifted = block * span + seqs
    lo = np.searchsorted(keys, token_key, side="left")
    hi = np.searchsorted(keys, token_key, side="right")
    pos = np.searchsorted(lifted, block[np.clip(lo, 0, len(keys) - 1)] * span + seq, side="right")
    found = (lo < hi) & (pos < hi)          # a token with none: its empty block [lo, hi)
    return np.where(found, seqs[np.clip(pos, 0, len(keys) - 1)], _NEVER)


def rejected_after(rejections: dict, kind: int, token_key: np.ndarray, seq: np.ndarray,
                   requests: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Whether the venue refused each row's request: the first venue message of `kind` for its
    token after the row's sequence, if it comes before the next request of the same kind on that
    token (`requests`: their tokens and sequences; None: a token has one such request, as an
    Enter's or Replace's new token). A rejection answers the latest request before it, never an
    earlier one the venue honoured."""
    pick = rejections["msg_type"] == kind
    rejected = first_after(rejections["token_key"][pick], rejections["seq"][pick], token_key, seq)
    found = rejected != _NEVER
    if requests is not None and found.any():
        found &= rejected < first_after(requests[0], requests[1], token_key, seq)
    return found


def route_flags(c, types: np.ndarray, names: list[str], rejections: dict,
                lost_seqs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """For rows of CAT types `types` (names: the CAT type names) with event columns `c`: which are
    route events (MEOR, MEMR, MECR), which MEMR replaces the route's token (priorRoutedOrderID) or
    keeps it (a Modify: dupROIDCond), and which the venue rejected (routeRejectedFlag): an Enter's
    or Replace's new token refused (J), a Cancel answered by a Cancel Reject (I); and which Cancel
    never reached the venue (`lost`): those at the journal sequences `lost_seqs`
    (resent_cancels.lost_seqs: a recovery sent a Cancel for the order again)."""
    route, modified, cancelled = (types == names.index(k) for k in ("MEOR", "MEMR", "MECR"))
    replace = modified & (c["event"] == EV["SENT_REPLACE"])
    rejected = np.zeros(len(types), bool)
    by_token = route | replace
    if by_token.any():
        rows = np.flatnonzero(by_token)
        rejected[rows] = rejected_after(rejections, REJECT, c["token_key"][rows], c["seq"][rows])
    if cancelled.any():
        rows = np.flatnonzero(cancelled)
        # the Cancels known: this table's and those of the rejections' stretch (the next chunk's)
        requests = (np.concatenate([c["token_key"][rows], rejections["cancel_key"]]),
                    np.concatenate([np.asarray(c["seq"][rows], np.int64), rejections["cancel_seq"]]))
        rejected[rows] = rejected_after(rejections, CANCEL_REJECT, c["token_key"][rows], c["seq"][rows], requests)
    lost = np.zeros(len(types), bool)
    if lost_seqs is not None and len(lost_seqs) and cancelled.any():
        rows = np.flatnonzero(cancelled)
        lost[rows] = np.isin(c["seq"][rows], lost_seqs)
    return {"any": route | modified | cancelled, "replace": replace, "same_id": modified & ~replace,
            "modified": modified, "cancelled": cancelled, "rejected": rejected & ~lost, "lost": lost}
