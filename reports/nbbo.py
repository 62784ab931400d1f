"""The market quote at any point of a journal, rebuilt from the raw ITCH 5.0 in MD_PACKET records
(MoldUDP64 packets): top of book per symbol after each packet that touched it, all in numpy.

Owns the vectorised order-level book: messages are found by walking every packet at once (one
step per message position, not per message), orders are joined to their adds by reference, a
replace chain inherits its root's stock locate and side by pointer jumping, remaining shares are
a clipped cumulative sum, and the best bid/ask after each packet is the highest/lowest price level
alive then (levels tried best first, only for the packets not yet answered). One venue's book
stands in for the NBBO (the embedded venue is the only market). Assumes order references are not
reused within the journal, as ITCH guarantees within a day; a zero-share add opens no level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journal.catalogue import RecordType
from reports.source import JournalSlice
from reports.timebase import read_ahead, to_utc

MOLD_HEADER = 20
_MIN_LEN = {ord("A"): 36, ord("F"): 36, ord("R"): 19, ord("E"): 23, ord("C"): 23, ord("X"): 23, ord("D"): 19,
            ord("U"): 35}


@dataclass(frozen=True)
class QuoteTimeline:
    """Top-of-book changes sorted by journal sequence: bid/ask price4 (0 = no side)."""

    seq: np.ndarray
    ts_ns: np.ndarray
    ts_source: np.ndarray
    symbol_id: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    # the newest MD_PACKET replayed (seq 0: none): the market data is known up to its time
    through_seq: int = 0
    through_ts_ns: int = 0
    through_ts_source: int = 0

    def __len__(self) -> int:
        return len(self.seq)

    def at_seq(self, symbol_id: np.ndarray, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bid, ask, found) in force just before each journal sequence, per symbol."""
        return self._lookup(symbol_id, seq, self.seq)

    def at_time(self, symbol_id: np.ndarray, utc_ns: np.ndarray, quote_utc_ns: np.ndarray):
        """(bid, ask, found) in force at each UTC time, given the quotes' own UTC times."""
        return self._lookup(symbol_id, utc_ns, quote_utc_ns, side="right")

    def _lookup(self, symbol_id, keys, quote_keys, side="left"):
        bid = np.zeros(len(keys), np.int64)
        ask = np.zeros(len(keys), np.int64)
        found = np.zeros(len(keys), bool)
        if len(self.seq) == 0 or len(keys) == 0:
            return bid, ask, found
        low, high = int(symbol_id.min()), int(symbol_id.max())
        symbols = [low] if low == high else np.unique(symbol_id)      # one symbol: no hashing
        for sym in symbols:                               # a loop over symbols, not rows
            q = np.flatnonzero(self.symbol_id == sym)
            rows = np.flatnonzero(symbol_id == sym)
            if len(q) == 0:
                continue
            order = np.argsort(quote_keys[q], kind="stable")
            q = q[order]
            pos = np.searchsorted(quote_keys[q], keys[rows], side=side) - 1
            ok = pos >= 0
            bid[rows[ok]] = self.bid[q[pos[ok]]]
            ask[rows[ok]] = self.ask[q[pos[ok]]]
            found[rows[ok]] = True
        return bid, ask, found


def _be(buf: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """Big-endian unsigned integers of `width` bytes at byte offsets `at`."""
    out = np.zeros(len(at), np.int64)
    for k in range(width):                       # a loop over bytes, not rows
        out = (out << 8) | buf[at + k]
    return out


def _walk(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(packet index, message offset, message length) of every ITCH message, in packet order."""
    ok = (ends - starts) >= MOLD_HEADER
    count = np.zeros(len(starts), np.int64)
    count[ok] = _be(buf, starts[ok] + 18, 2)
    live = np.flatnonzero(ok & (count != 0) & (count != 0xFFFF))
    pos = starts[live] + MOLD_HEADER
    left = count[live]
    pkts, offs, lens, steps = [], [], [], []
    step = 0
    while len(live):
        room = pos + 2 <= ends[live]
        live, pos, left = live[room], pos[room], left[room]
        if not len(live):
            break
        length = _be(buf, pos, 2)
        body = pos + 2
        pkts.append(live)
        offs.append(body)
        lens.append(np.minimum(length, ends[live] - body))
        steps.append(np.full(len(live), step))
        pos = body + length
        left = left - 1
        keep = left > 0
        live, pos, left = live[keep], pos[keep], left[keep]
        step += 1
    if not pkts:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    pkt, off, length, stp = (np.concatenate(x) for x in (pkts, offs, lens, steps))
    order = np.lexsort((stp, pkt))
    return pkt[order], off[order], length[order]


def _symbols_of(buf: np.ndarray, at: np.ndarray, symbol_ids: dict[str, int]) -> np.ndarray:
    """Symbol id of the 8-byte ITCH stock at each offset (-1 if not in reference data)."""
    if len(at) == 0:
        return np.zeros(0, np.int64)
    stocks = np.ascontiguousarray(buf[at[:, None] + np.arange(8)]).view("S8")[:, 0]
    names, inverse = np.unique(stocks, return_inverse=True)
    ids = np.array([symbol_ids.get(n.decode("ascii", "replace").strip(), -1) for n in names], np.int64)
    return ids[inverse]


def _latest_before(keys_sorted_rank: np.ndarray, idx_sorted: np.ndarray, rank: np.ndarray, idx: np.ndarray,
                   scale: int) -> np.ndarray:
    """Position (into the sorted arrays) of the latest entry with the same rank and an index
    strictly below `idx`; -1 where none."""
    combined = keys_sorted_rank * scale + idx_sorted
    pos = np.searchsorted(combined, rank * scale + idx, side="left") - 1
    ok = (pos >= 0) & (rank >= 0)
    ok[ok] &= keys_sorted_rank[pos[ok]] == rank[ok]
    return np.where(ok, pos, -1)


def build_timeline(src: JournalSlice, symbol_ids: dict[str, int], last_seq: int | None = None) -> QuoteTimeline:
    """Replay every MD_PACKET up to the range end, or `last_seq` (the book needs the day's
    earlier adds)."""
    headers, blob, offsets = src.reader.read_blobs(RecordType.MD_PACKET, None,
                                                   src.last_seq if last_seq is None else last_seq)
    buf = np.frombuffer(blob, np.uint8)
    offsets = offsets.astype(np.int64)
    pkt, off, length = _walk(buf, offsets[:-1], offsets[1:])
    kind = np.zeros(len(off), np.uint8)
    has_head = length >= 11
    kind[has_head] = buf[off[has_head]]
    need = np.zeros(256, np.int64) + (1 << 40)
    for k, n in _MIN_LEN.items():
        need[k] = n
    usable = has_head & (length >= need[kind])
    m = np.flatnonzero(usable)                 # message index = position in (pkt, off) order
    pkt, off, kind = pkt[m], off[m], kind[m]
    n_msg = len(m)
    locate = _be(buf, off + 1, 2)
    is_add = (kind == ord("A")) | (kind == ord("F"))
    is_red = np.isin(kind, (ord("E"), ord("C"), ord("X")))
    is_del = kind == ord("D")
    is_rep = kind == ord("U")
    is_dir = kind == ord("R")
    msg = np.arange(n_msg, dtype=np.int64)

    # locate -> symbol, as the adds and the stock directory set it, in message order
    setters = np.flatnonzero(is_add | is_dir)
    set_sym = _symbols_of(buf, off[setters] + np.where(is_dir[setters], 11, 24), symbol_ids)
    setters, set_sym = setters[set_sym >= 0], set_sym[set_sym >= 0]

    # creations: adds, and the new order of each replace
    a = np.flatnonzero(is_add)
    u = np.flatnonzero(is_rep)
    c_msg = np.r_[a, u]
    c_ref = np.r_[_be(buf, off[a] + 11, 8), _be(buf, off[u] + 19, 8)]
    c_bid = np.r_[buf[off[a] + 19] == ord("B"), np.zeros(len(u), bool)]
    c_loc = np.r_[locate[a], np.zeros(len(u), np.int64)]
    c_shares = np.r_[_be(buf, off[a] + 20, 4), _be(buf, off[u] + 27, 4)]
    c_price = np.r_[_be(buf, off[a] + 32, 4), _be(buf, off[u] + 31, 4)]
    c_is_add = np.r_[np.ones(len(a), bool), np.zeros(len(u), bool)]
    # reductions: executions and cancels (shares), deletes and the old order of a replace (all)
    r_src = np.flatnonzero(is_red | is_del | is_rep)
    r_ref = _be(buf, off[r_src] + 11, 8)
    r_req = np.full(len(r_src), -1, np.int64)          # -1: all that is left (delete, replace)
    partial = is_red[r_src]
    r_req[partial] = _be(buf, off[r_src[partial]] + 19, 4)

    # each reduction applies to the latest creation of its reference before it
    refs = np.unique(c_ref)
    c_rank = np.searchsorted(refs, c_ref)
    r_rank = np.searchsorted(refs, r_ref)
    r_rank = np.where((r_rank < len(refs)) & (refs[np.minimum(r_rank, len(refs) - 1)] == r_ref), r_rank, -1) \
        if len(refs) else np.full(len(r_ref), -1)
    c_order = np.lexsort((c_msg, c_rank))
    scale = n_msg + 1
    pos = _latest_before(c_rank[c_order], c_msg[c_order], r_rank, r_src, scale)
    r_inst = np.where(pos >= 0, c_order[np.maximum(pos, 0)], -1)

    # remaining shares: per instance, S - Σ requests so far, clipped at 0
    found = r_inst >= 0
    r_order = np.flatnonzero(found)[np.lexsort((r_src[found], r_inst[found]))]
    inst = r_inst[r_order]
    shares = c_shares[inst]
    req = np.where(r_req[r_order] < 0, shares, r_req[r_order])
    cum = np.cumsum(req)
    first = np.r_[True, inst[1:] != inst[:-1]] if len(inst) else np.zeros(0, bool)
    base = np.maximum.accumulate(np.where(first, np.arange(len(inst)), 0)) if len(inst) else inst
    within = cum - (cum[base] - req[base]) if len(inst) else cum
    left_after = np.maximum(shares - within, 0)
    left_before = np.maximum(shares - (within - req), 0)
    alive = np.zeros(len(r_src), bool)
    alive[r_order] = (left_before > 0) | (first & (shares == 0))
    take = np.zeros(len(r_src), np.int64)
    take[r_order] = left_before - left_after

    # a replace's new order exists iff its old order did; it inherits the chain root's locate/side
    n_c = len(c_msg)
    red_of_msg = np.full(n_msg, -1, np.int64)
    red_of_msg[r_src] = np.arange(len(r_src))
    parent_red = red_of_msg[c_msg[~c_is_add]]          # the replace's own reduction (old order)
    ptr = np.arange(n_c)
    ok = np.ones(n_c, bool)
    ptr[~c_is_add] = r_inst[parent_red]
    ok[~c_is_add] = alive[parent_red] & (r_inst[parent_red] >= 0)
    ptr = np.where(ptr < 0, np.arange(n_c), ptr)
    while True:                                        # pointer jumping: log2(longest chain) rounds
        nxt = ptr[ptr]
        ok = ok & ok[ptr]
        if np.array_equal(nxt, ptr):
            break
        ptr = nxt
    exists = ok & c_is_add[ptr]
    c_loc = c_loc[ptr]
    c_bid = c_bid[ptr]
    eff = alive & (r_inst >= 0)
    eff[r_inst >= 0] &= exists[r_inst[r_inst >= 0]]

    # level changes: (locate, side, price, message, sub-step, delta); reductions before adds
    ci = np.flatnonzero(exists & (c_shares > 0))
    ri = np.flatnonzero(eff & (take > 0))
    li = r_inst[ri]
    lv_loc = np.r_[c_loc[ci], c_loc[li]]
    lv_bid = np.r_[c_bid[ci], c_bid[li]]
    lv_price = np.r_[c_price[ci], c_price[li]]
    lv_msg = np.r_[c_msg[ci], r_src[ri]]
    lv_sub = np.r_[np.ones(len(ci), np.int8), np.zeros(len(ri), np.int8)]
    lv_delta = np.r_[c_shares[ci], -take[ri]]

    # packets and locates touched: every add, every effective reduction (and so replace)
    touched_msg = np.r_[a, r_src[eff]]
    q_key = np.unique(pkt[touched_msg] * 65_536 + locate[touched_msg])     # locate is a u16
    q_pkt, q_loc = q_key // 65_536, q_key % 65_536
    last_msg_of_pkt = np.full(len(offsets), -1, np.int64)
    last_msg_of_pkt[pkt] = msg                         # messages are in packet order: the last wins
    q_time = last_msg_of_pkt[q_pkt] * 2 + 1            # after every message of the packet

    q_sym = _symbol_at(setters, locate[setters], set_sym, q_loc, last_msg_of_pkt[q_pkt], scale)
    known = q_sym >= 0
    q_pkt, q_loc, q_time, q_sym = q_pkt[known], q_loc[known], q_time[known], q_sym[known]
    bid = _best(lv_loc[lv_bid], lv_price[lv_bid], lv_msg[lv_bid] * 2 + lv_sub[lv_bid], lv_delta[lv_bid],
                q_loc, q_time, highest=True)
    ask = _best(lv_loc[~lv_bid], lv_price[~lv_bid], lv_msg[~lv_bid] * 2 + lv_sub[~lv_bid],
                lv_delta[~lv_bid], q_loc, q_time, highest=False)
    through = (int(headers["seq"][-1]), int(headers["ts_ns"][-1]), int(headers["ts_source"][-1])) \
        if len(headers) else (0, 0, 0)
    return QuoteTimeline(headers["seq"][q_pkt].astype(np.int64), headers["ts_ns"][q_pkt].astype(np.int64),
                         headers["ts_source"][q_pkt].astype(np.uint8), q_sym.astype(np.int64), bid, ask, *through)


_NO_GAPS = np.zeros((0, 2), np.int64)


@dataclass(frozen=True)
class TimedQuotes:
    """A quote timeline with its quotes' UTC times and the UTC time up to which the journal's
    market data is known (`known_until_ns`, -1 when it holds none): a quote asked for at a
    later time is not known, whatever the last quote was. Nor is one inside a `gap`: the UTC
    times (exclusive) between the last MD_PACKET journaled before a crash recovery and the first
    one after it, while the engine was down and the market data it missed went unjournaled."""

    timeline: QuoteTimeline
    quote_utc_ns: np.ndarray
    known_until_ns: int
    gaps: np.ndarray                    # (from, to) UTC ns, one row per crash recovery

    def at_time(self, symbol_id: np.ndarray, utc_ns: np.ndarray):
        """(bid, ask, found, known) at each UTC time: found as QuoteTimeline.at_time, `known`
        where the market data reaches that time and is not in a gap."""
        bid, ask, found = self.timeline.at_time(symbol_id, utc_ns, self.quote_utc_ns)
        known = utc_ns <= self.known_until_ns
        for start, end in self.gaps.tolist():       # a loop over crash recoveries, not rows
            known &= ~((utc_ns > start) & (utc_ns < end))
        return bid, ask, found, known


_SCAN_SEQS = 4096           # journal sequences scanned at a time for the MD_PACKET next to a recovery


def _packet_next_to(reader, seq: int, forward: bool, last: int):
    """(seq, ts_ns, ts_source) of the MD_PACKET nearest `seq` after it (`forward`, up to `last`)
    or before it; None where there is none."""
    while 1 <= seq <= last:
        lo, hi = (seq, min(seq + _SCAN_SEQS - 1, last)) if forward else (max(seq - _SCAN_SEQS + 1, 1), seq)
        cols = reader.scan(lo, hi, fields=("seq", "rtype", "ts_ns", "ts_source"))
        md = np.flatnonzero(cols.rtype == RecordType.MD_PACKET)
        if len(md):
            i = md[0] if forward else md[-1]
            return int(cols.seq[i]), int(cols.ts_ns[i]), int(cols.ts_source[i])
        seq = hi + 1 if forward else lo - 1
    return None


def downtime_gaps(src: JournalSlice, recoveries: np.ndarray, through_seq: int, samples: np.ndarray) -> np.ndarray:
    """(from, to) UTC ns of the journal's market data around each crash recovery (`recoveries`:
    venuetime.recovery_windows) that begins before `through_seq` (the newest packet read): the
    last MD_PACKET before it (none: the journal's start) and the first after it. A recovery after
    the newest packet needs none: known_until_ns stops short of it already."""
    def utc(packet, otherwise: int) -> int:          # its UTC time; `otherwise` where there is none
        if packet is None:
            return otherwise
        t = to_utc(*(np.array([v], np.int64) for v in packet), samples)
        return int(t.utc_ns[0]) if t.valid[0] else otherwise
    lowest, highest = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    rows = [(utc(_packet_next_to(src.reader, begin - 1, False, through_seq), lowest),
             utc(_packet_next_to(src.reader, begin + 1, True, through_seq), highest))
            for begin in (recoveries[:, 0].tolist() if len(recoveries) else ()) if begin < through_seq]
    return np.array(rows, np.int64).reshape(-1, 2)


def timeline_through(src: JournalSlice, symbol_ids: dict[str, int], samples: np.ndarray, after_ns: int,
                     recoveries: np.ndarray = _NO_GAPS) -> TimedQuotes:
    """The quotes up to `after_ns` past the UTC time of the range's last record (e.g. the longest
    realized-spread horizon): MD_PACKETs are read past the range end up to the first one at or
    after that time, or the journal's end. `samples`: the CLOCK_SAMPLEs up to the range end
    (sorted by seq), extended here by those read past it, for the UTC times. `recoveries`
    (venuetime.recovery_windows) give the gaps in the market data (downtime_gaps)."""
    through = src.last_seq
    for b, cols, utc, until, samples in read_ahead(src, samples, after_ns, ("seq", "rtype", "ts_ns", "ts_source")):
        md = np.flatnonzero((cols.rtype == RecordType.MD_PACKET) & utc.valid & (utc.utc_ns >= until))
        through = int(cols.seq[md[0]]) if len(md) else b
        if len(md):
            break
    timeline = build_timeline(src, symbol_ids, last_seq=through)
    quote_utc = to_utc(timeline.seq, timeline.ts_ns, timeline.ts_source, samples).utc_ns
    last_packet = to_utc(np.array([timeline.through_seq]), np.array([timeline.through_ts_ns]),
                         np.array([timeline.through_ts_source]), samples)
    known = int(last_packet.utc_ns[0]) if timeline.through_seq and last_packet.valid[0] else -1
    return TimedQuotes(timeline, quote_utc, known, downtime_gaps(src, recoveries, timeline.through_seq, samples))


def _symbol_at(set_msg, set_loc, set_sym, q_loc, q_msg, scale) -> np.ndarray:
    """Symbol mapped to each query's locate by the latest setter at or before its message."""
    if len(set_msg) == 0:
        return np.full(len(q_loc), -1, np.int64)
    order = np.lexsort((set_msg, set_loc))
    pos = _latest_before(set_loc[order], set_msg[order], q_loc, q_msg + 1, scale)
    return np.where(pos >= 0, set_sym[order][np.maximum(pos, 0)], -1)


def _best(loc, price, time, delta, q_loc, q_time, highest: bool) -> np.ndarray:
    """Best price level alive (quantity > 0) at each query's time on its locate, 0 if none.
    Levels of a locate are tried best first, each only for the queries still unanswered."""
    out = np.zeros(len(q_loc), np.int64)
    if len(loc) == 0 or len(q_loc) == 0:
        return out
    order = np.lexsort((time, price, loc))
    loc, price, time, delta = loc[order], price[order], time[order], delta[order]
    qty = np.cumsum(delta)
    level_start = np.r_[True, (loc[1:] != loc[:-1]) | (price[1:] != price[:-1])]
    base = np.maximum.accumulate(np.where(level_start, np.arange(len(loc)), 0))
    qty = qty - (qty[base] - delta[base])
    before = np.r_[0, qty[:-1]]
    before[level_start] = 0
    toggle = (before > 0) != (qty > 0)                 # a level is born or dies here
    loc, price, time = loc[toggle], price[toggle], time[toggle]
    level_start = np.r_[True, (loc[1:] != loc[:-1]) | (price[1:] != price[:-1])] if len(loc) else level_start[:0]
    starts = np.flatnonzero(level_start)
    ends = np.r_[starts[1:], len(loc)]
    for lc in np.unique(loc[starts]):                  # a loop over locates and their levels
        mine = np.flatnonzero(loc[starts] == lc)
        levels = mine[np.argsort(price[starts[mine]], kind="stable")]
        if highest:
            levels = levels[::-1]
        pending = np.flatnonzero(q_loc == lc)
        pending = pending[np.argsort(q_time[pending], kind="stable")]
        for lv in levels:
            if not len(pending):
                break
            toggles = time[starts[lv]:ends[lv]]
            on = np.searchsorted(toggles, q_time[pending], side="right") % 2 == 1
            out[pending[on]] = price[starts[lv]]
            pending = pending[~on]
    return out
