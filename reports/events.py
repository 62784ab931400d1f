"""The firm's order events as numpy columns: ORDER_SENT and VENUE_MSG (OUCH inside SoupBinTCP 'S')
merged in journal order, venue messages joined to the order that created their token, remaining
quantity after each execution, and the UTC time and clock context of every event.

Owns event classification (EVENT_NAMES) and the token join; all vectorised. The regulatory code
mappings (RTS 24, CAT, RTS 22) live in the report modules, not here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journal.catalogue import RecordType
from reports import ouch
from reports.source import JournalSlice
from reports.timebase import UtcTimes, to_utc

EVENT_NAMES = [
    "SENT_NEW", "SENT_REPLACE", "SENT_CANCEL", "SENT_MODIFY",          # firm -> venue (ORDER_SENT)
    "ACCEPTED", "REPLACED", "CANCELED", "EXECUTED", "REJECTED",          # venue -> firm (VENUE_MSG)
    "AIQ_CANCELED", "BROKEN_TRADE", "CANCEL_PENDING", "CANCEL_REJECT", "PRIORITY_UPDATE",
    "ORDER_MODIFIED", "EXECUTED_WITH_REF_PRICE", "TRADE_CORRECTION", "OTHER_VENUE_MSG",
]
EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_SENT = {ord("O"): EV["SENT_NEW"], ord("U"): EV["SENT_REPLACE"], ord("X"): EV["SENT_CANCEL"],
         ord("M"): EV["SENT_MODIFY"]}
_VENUE = {ord("A"): EV["ACCEPTED"], ord("U"): EV["REPLACED"], ord("C"): EV["CANCELED"],
          ord("E"): EV["EXECUTED"], ord("J"): EV["REJECTED"], ord("D"): EV["AIQ_CANCELED"],
          ord("B"): EV["BROKEN_TRADE"], ord("P"): EV["CANCEL_PENDING"], ord("I"): EV["CANCEL_REJECT"],
          ord("T"): EV["PRIORITY_UPDATE"], ord("M"): EV["ORDER_MODIFIED"],
          ord("G"): EV["EXECUTED_WITH_REF_PRICE"], ord("F"): EV["TRADE_CORRECTION"]}
SOUP_SEQUENCED = ord("S")
OUCH_SYSTEM_EVENT = ord("S")

# Columns copied from the ORDER_SENT that created an order onto every event of that order.
ORDER_FIELDS = ("symbol_id", "algo_id", "desk_id", "trader_id", "client_id", "risk_verdict",
                "trading_state", "limits_version", "tif")


@dataclass
class OrderEvents:
    """Column arrays, one entry per order event, sorted by journal sequence."""

    cols: dict[str, np.ndarray]
    utc: UtcTimes
    samples: np.ndarray            # CLOCK_SAMPLE records used for the conversion (sorted by seq)

    def __len__(self) -> int:
        return len(self.cols["seq"])

    def take(self, rows: np.ndarray) -> "OrderEvents":
        u = self.utc
        return OrderEvents(
            cols={k: v[rows] for k, v in self.cols.items()},
            utc=UtcTimes(u.utc_ns[rows], u.valid[rows], u.basis[rows], u.utc_offset_s[rows], u.sample_index[rows]),
            samples=self.samples)


def _join_key(tokens: np.ndarray) -> np.ndarray:
    """Tokens as comparable fixed bytes: OUCH pads with spaces, the journal with NULs."""
    raw = np.ascontiguousarray(tokens, dtype="S14").view(np.uint8).reshape(len(tokens), 14).copy()
    raw[raw == 0x20] = 0
    return raw.view("S14")[:, 0]


def clock_samples(src: JournalSlice) -> np.ndarray:
    samples = src.fixed_before(RecordType.CLOCK_SAMPLE)
    order = np.argsort(samples["seq"], kind="stable")
    return samples[order]


def _merge_positions(a_seq: np.ndarray, b_seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the rows of two sequence-sorted batches land in their merged order (sequences are
    unique across record types, so this is exact and needs no sort)."""
    pos_a = np.arange(len(a_seq)) + np.searchsorted(b_seq, a_seq)
    pos_b = np.arange(len(b_seq)) + np.searchsorted(a_seq, b_seq)
    return pos_a, pos_b


def collect(src: JournalSlice, join_orders: bool = True) -> OrderEvents:
    """All order events in the slice (before any trade-date filter), in journal order. With
    join_orders=False only identity, timing and clock columns are built (what clock evidence
    needs): no OUCH field beyond the token is decoded and no order join is made. Cached on the
    slice, so `report all` decodes the journal once for every kind."""
    return src.memo(("order_events", join_orders), lambda: _collect(src, join_orders))


def _collect(src: JournalSlice, join_orders: bool) -> OrderEvents:
    sent = src.fixed(RecordType.ORDER_SENT)
    venue_all = src.fixed(RecordType.VENUE_MSG)
    keep = (venue_all["packet_type"] == SOUP_SEQUENCED) & (venue_all["msg_type"] != OUCH_SYSTEM_EVENT) \
        & (venue_all["raw_len"] > ouch.SOUP_HEADER)
    venue = venue_all if keep.all() else venue_all[keep]
    n = len(sent) + len(venue)
    at_sent, at_venue = _merge_positions(sent["seq"], venue["seq"])

    def merged(sent_values, venue_values, dtype) -> np.ndarray:
        out = np.zeros(n, dtype=dtype)
        if sent_values is not None:
            out[at_sent] = sent_values
        if venue_values is not None:
            out[at_venue] = venue_values
        return out

    vcols = ouch.decode(venue["raw"], venue["msg_type"], ouch.OUTBOUND_FIELDS,
                        names=None if join_orders else ["token"])
    cols: dict[str, np.ndarray] = {
        "seq": merged(sent["seq"], venue["seq"], np.uint64),
        "ts_ns": merged(sent["ts_ns"], venue["ts_ns"], np.int64),
        "ts_source": merged(sent["ts_source"], venue["ts_source"], np.uint8),
        "clock_state": merged(sent["clock_state"], venue["clock_state"], np.uint8),
        "event": merged(_classify(sent["msg_type"], _SENT), _classify(venue["msg_type"], _VENUE), np.int8),
        "token": merged(sent["token"], vcols["token"], "S14"),
    }
    samples = clock_samples(src)
    if not join_orders:
        cols["token_key"] = _join_key(cols["token"])
        return OrderEvents(cols=cols, utc=to_utc(cols["seq"], cols["ts_ns"], cols["ts_source"], samples),
                           samples=samples)
    scols = ouch.decode(sent["raw"], sent["msg_type"], ouch.INBOUND_FIELDS, names=["side", "stock"])
    cols.update({
        "origin": merged(None, 1, np.int8),
        "msg_type": merged(sent["msg_type"], venue["msg_type"], np.uint8),
        "prior_token": merged(sent["orig_token"], vcols["previous_token"], "S14"),
        # OUCH side on the wire (B, S, T short, E short exempt) where the message carries one
        "wire_side": merged(np.where(scols["side"] > 0, scols["side"], sent["side"]), vcols["side"], np.uint8),
        "price": merged(sent["price"], vcols["price"], np.int64),
        "qty": merged(sent["qty"], vcols["shares"], np.int64),
        # OUCH stock where the message carries one (Enter, Accepted, Replaced); b"" elsewhere
        "stock": merged(scols["stock"], vcols["stock"], "S8"),
    })
    for name, source in (("exec_qty", "executed"), ("exec_price", "exec_price"), ("match", "match"),
                         ("liquidity", "liquidity"), ("decrement", "decrement"), ("reason", "reason"),
                         ("order_ref", "order_ref"), ("venue_ts", "venue_ts")):
        cols[name] = merged(None, vcols[source], np.int64)

    # Join every event to the ORDER_SENT that created its token (O, or U for the replacement).
    creators = src.fixed_before(RecordType.ORDER_SENT)
    creators = creators[np.isin(creators["msg_type"], [ord("O"), ord("U")])]
    index = TokenIndex(_join_key(creators["token"]))
    keys_events = _join_key(cols["token"])
    cols["token_key"] = keys_events
    cols["prior_token_key"] = _join_key(cols["prior_token"])
    creator = index.lookup(keys_events)
    found = creator >= 0
    cols["creator"] = creator
    known = found

    at_known = np.flatnonzero(known)
    from_creator = creator[at_known]

    def joined(values, dtype=None) -> np.ndarray:
        out = np.zeros(n, dtype=dtype or values.dtype)
        out[at_known] = np.take(values, from_creator)
        return out

    for name in ORDER_FIELDS:
        cols[name] = joined(creators[name])
    cols["side"] = joined(creators["side"], np.uint8)
    creator_side, creator_stock = _creator_side_and_stock(creators, index)
    cols["order_wire_side"] = joined(creator_side, np.uint8)
    cols["order_stock"] = joined(creator_stock)
    for name, field in (("creator_seq", "seq"), ("creator_ts_ns", "ts_ns"), ("creator_ts_source", "ts_source"),
                        ("order_qty", "qty"), ("order_price", "price")):
        cols[name] = joined(creators[field], np.int64)
    # group key per order: the creator's index, or for tokens no ORDER_SENT created, a fresh code
    group = creator.copy()
    if not known.all():
        _, unknown_code = np.unique(keys_events[~known], return_inverse=True)
        group[~known] = len(creators) + unknown_code
    cols["leaves"] = _leaves(cols, group)

    utc = to_utc(cols["seq"], cols["ts_ns"], cols["ts_source"], samples)
    return OrderEvents(cols=cols, utc=utc, samples=samples)


MAX_REPLACE_CHAIN = 64   # bounded walk back through replaces to the entering order's side


def _enter_of(creators: np.ndarray, index: "TokenIndex") -> np.ndarray:
    """Index of the Enter Order at the root of each creating order's replace chain (itself for an
    Enter), or -1 where the chain leaves the journal or is longer than MAX_REPLACE_CHAIN."""
    enter = creators["msg_type"] == ord("O")
    root = np.where(enter, np.arange(len(creators)), -1)
    pending = np.flatnonzero(~enter)
    parent_key = _join_key(creators["orig_token"])
    current = pending
    for _ in range(MAX_REPLACE_CHAIN):   # one vectorised step per replace generation
        if len(pending) == 0:
            break
        parent = index.lookup(parent_key[current])
        found = parent >= 0
        resolved = found & (creators["msg_type"][np.where(found, parent, 0)] == ord("O"))
        root[pending[resolved]] = parent[resolved]
        keep = found & ~resolved
        pending, current = pending[keep], parent[keep]
    return root


def _creator_side_and_stock(creators: np.ndarray, index: "TokenIndex") -> tuple[np.ndarray, np.ndarray]:
    """OUCH side (B, S, T, E) and stock of each creating order, from the Enter bytes at the root of
    its replace chain (Replace carries neither); where no Enter is found, the journaled side and no
    stock (b"")."""
    enter_fields = ouch.decode(creators["raw"], creators["msg_type"], ouch.INBOUND_FIELDS,
                               names=["side", "stock"])
    enter_side = np.where(enter_fields["side"] > 0, enter_fields["side"], creators["side"])
    root = _enter_of(creators, index)
    has_root = root >= 0
    at_root = np.where(has_root, root, 0)
    side = np.where(has_root, enter_side[at_root] if len(creators) else 0, creators["side"])
    stock = np.where(has_root, enter_fields["stock"][at_root] if len(creators) else b"", b"").astype("S8")
    return side.astype(np.uint8, copy=False), stock


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _token_hash(keys: np.ndarray) -> np.ndarray:
    """A 64-bit mix of a 14-byte token's two big-endian words (equality only, not order)."""
    words = np.zeros((len(keys), 16), np.uint8)
    words[:, :14] = np.ascontiguousarray(keys, dtype="S14").view(np.uint8).reshape(len(keys), 14)
    pair = words.view(">u8").astype(np.uint64, copy=False)
    return (pair[:, 0] * _MIX) ^ pair[:, 1]


class TokenIndex:
    """Exact lookup of order tokens: integer hashes sorted once, one binary search per query and
    a full-token equality check (a sort of 14-byte strings is several times slower)."""

    def __init__(self, keys: np.ndarray):
        self.keys = keys
        hashes = _token_hash(keys)
        self.order = np.argsort(hashes, kind="stable")
        self.sorted_hash = hashes[self.order]

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        """Index of the latest entry equal to each query (a reused token: the last one), or -1."""
        if len(self.keys) == 0 or len(queries) == 0:
            return np.full(len(queries), -1, dtype=np.int64)
        hashes = _token_hash(queries)
        pos = np.searchsorted(self.sorted_hash, hashes, side="right") - 1
        pos_ok = np.clip(pos, 0, None)
        candidate = self.order[pos_ok].astype(np.int64, copy=False)
        hit = (pos >= 0) & (self.sorted_hash[pos_ok] == hashes)
        exact = hit & (self.keys[candidate] == queries)
        clash = np.flatnonzero(hit & ~exact)
        if len(clash):          # two tokens sharing a hash: resolve just those rows exactly
            latest = {k: i for i, k in enumerate(self.keys.tolist())}
            for row in clash:
                candidate[row] = latest.get(queries[row], -1)
            exact[clash] = candidate[clash] >= 0
        return np.where(exact, candidate, -1)


def _classify(msg_type: np.ndarray, table: dict[int, int]) -> np.ndarray:
    lut = np.full(256, EV["OTHER_VENUE_MSG"], dtype=np.int8)
    for byte, code in table.items():
        lut[byte] = code
    return lut[np.asarray(msg_type, dtype=np.uint8)]


def _leaves(cols: dict[str, np.ndarray], token_code: np.ndarray) -> np.ndarray:
    """Venue-confirmed remaining quantity of the event's order after the event (-1 where unknown).

    Starts from the quantity the venue accepted (A) or restated (U) and subtracts executions and
    cancel decrements, per token, in journal order: one lexsort and one cumsum."""
    ev = cols["event"]
    start = np.where((ev == EV["ACCEPTED"]) | (ev == EV["REPLACED"]), cols["qty"], 0)
    reduce = np.where((ev == EV["EXECUTED"]) | (ev == EV["EXECUTED_WITH_REF_PRICE"]), cols["exec_qty"], 0) \
        + np.where((ev == EV["CANCELED"]) | (ev == EV["AIQ_CANCELED"]), cols["decrement"], 0)
    order = np.argsort(token_code, kind="stable")        # rows are in journal order already
    delta = (start - reduce)[order]
    codes = token_code[order]
    running = np.cumsum(delta)
    group_start = np.r_[True, codes[1:] != codes[:-1]]
    base = np.maximum.accumulate(np.where(group_start, np.arange(len(codes)), 0))
    offset = running[base] - delta[base]
    leaves_sorted = running - offset
    started = np.cumsum(start[order] > 0)             # A/U messages so far, over all groups
    started_in_group = started - (started[base] - (start[order][base] > 0))
    leaves_sorted = np.where(started_in_group > 0, leaves_sorted, -1)
    out = np.empty_like(leaves_sorted)
    out[order] = leaves_sorted
    return out
