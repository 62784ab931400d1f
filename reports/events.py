"""The firm's order events as numpy columns: ORDER_SENT and VENUE_MSG (OUCH inside SoupBinTCP 'S')
merged in journal order, venue messages joined to the order that created their token, remaining
quantity after each execution, and the UTC time and clock context of every event, chunk by chunk
with the join and remaining quantities carried across chunks (memory bounded by the chunk).

An order a crash recovery adopted from the venue (its ORDER_SENT lost with a torn journal tail) is
joined to the adoption's RECON record instead (adoptions.py: the venue's terms, the record's
sequence and time), for its events after that record, and marked (`order_adopted`): what only the
lost ORDER_SENT held (parties, time in force, send time) is not in that origin, and each report says
what it does with such an order.

Owns event classification (EVENT_NAMES) and the token join: a chunk's merge, OUCH fields, new
orders and joined columns in compiled passes (orderjoin), with the numpy passes they replaced kept
as their reference (FUSED). The regulatory code mappings (RTS 24, CAT, RTS 22) live in the report
modules, not here.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from journal.catalogue import HEADER_DTYPE, PAYLOAD_DTYPES, RAW_ORDER_MAX, RAW_VENUE_MAX, RecordType
from journal import bulk, row_dtype
from reports import adoptions, orderjoin, ouch, ouchcols
from reports.source import JournalSlice, payload_head
from reports.timebase import UtcTimes, to_utc

EVENT_NAMES = [
    "SENT_NEW", "SENT_REPLACE", "SENT_CANCEL", "SENT_MODIFY",          # firm -> venue (ORDER_SENT)
    "ACCEPTED", "REPLACED", "CANCELED", "EXECUTED", "REJECTED",          # venue -> firm (VENUE_MSG)
    "AIQ_CANCELED", "BROKEN_TRADE", "CANCEL_PENDING", "CANCEL_REJECT", "PRIORITY_UPDATE",
    "ORDER_MODIFIED", "EXECUTED_WITH_REF_PRICE", "TRADE_CORRECTION", "PRICE_CORRECTION", "OTHER_VENUE_MSG",
]
EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_SENT = {ord("O"): EV["SENT_NEW"], ord("U"): EV["SENT_REPLACE"], ord("X"): EV["SENT_CANCEL"],
         ord("M"): EV["SENT_MODIFY"]}
_VENUE = {ord("A"): EV["ACCEPTED"], ord("U"): EV["REPLACED"], ord("C"): EV["CANCELED"],
          ord("E"): EV["EXECUTED"], ord("J"): EV["REJECTED"], ord("D"): EV["AIQ_CANCELED"],
          ord("B"): EV["BROKEN_TRADE"], ord("P"): EV["CANCEL_PENDING"], ord("I"): EV["CANCEL_REJECT"],
          ord("T"): EV["PRIORITY_UPDATE"], ord("M"): EV["ORDER_MODIFIED"],
          ord("G"): EV["EXECUTED_WITH_REF_PRICE"], ord("F"): EV["TRADE_CORRECTION"],
          ord("K"): EV["PRICE_CORRECTION"]}
SOUP_SEQUENCED = ord("S")
OUCH_SYSTEM_EVENT = ord("S")
# The fixed OUCH length of each event's message type, by origin (0 sent, 1 venue): 512 entries.
_NEED = np.concatenate([ouch.length_table(ouch.INBOUND_LENGTHS), ouch.length_table(ouch.OUTBOUND_LENGTHS)])
_RAW_CAPS = (RAW_ORDER_MAX, RAW_VENUE_MAX)      # bytes of the raw field of ORDER_SENT, VENUE_MSG


def short_messages(cols) -> np.ndarray:
    """Events whose OUCH message the journal holds shorter than its type's fixed length (msg_len,
    ouch.INBOUND_LENGTHS / OUTBOUND_LENGTHS): truncated, so its fields past the bytes held were
    not decoded. Reports reject them (never a row with invented zeros)."""
    return cols["msg_len"] < _NEED[(cols["origin"].astype(np.int64) << 8) | cols["msg_type"]]


def short_message_reasons(cols, rows: np.ndarray) -> list[str]:
    """Why each of `rows` (short_messages) is rejected."""
    kind = ("sent", "venue")
    return [f"{kind[o]} OUCH {chr(t)!r} message holds {n} bytes of the {_NEED[(o << 8) | t]} its type has: "
            f"truncated in the journal, its fields past them are unknown"
            for o, t, n in zip(cols["origin"][rows].tolist(), cols["msg_type"][rows].tolist(),
                               cols["msg_len"][rows].tolist())]


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

    def take(self, rows: np.ndarray, names=None) -> "OrderEvents":
        """The events at `rows`, with every column or just those `names` (join columns not yet
        gathered stay so: taken, they are gathered for `rows` only)."""
        u = self.utc
        c = self.cols
        return OrderEvents(
            cols=c.take(rows, names) if isinstance(c, JoinedCols) else {k: c[k][rows] for k in (c if names is None else names)},
            utc=UtcTimes(u.utc_ns[rows], u.valid[rows], u.basis[rows], u.utc_offset_s[rows], u.sample_index[rows]),
            samples=self.samples)


_join_key = orderjoin.join_keys     # tokens as comparable fixed bytes (space padding -> NUL)


def clock_samples(src: JournalSlice) -> np.ndarray:
    samples = src.fixed_before(RecordType.CLOCK_SAMPLE)
    order = np.argsort(samples["seq"], kind="stable")
    return samples[order]


# Journal sequences per chunk of a streamed build: bounds memory. 128k keeps a chunk's columns
# (1 MB per int64 column) in cache across the many vectorised passes over them: against 512k, a
# sixth less CPU decoding and building tables, and a shorter first chunk before work overlaps.
CHUNK_SEQS = 1 << 17


def collect_chunks(src: JournalSlice, join_orders: bool = True, chunk_seqs: int | None = None,
                   only: tuple[int, ...] | None = None, leaves: bool = True, gather_joined: bool = True):
    """The slice's order events as a sequence of OrderEvents, one per range of at most
    `chunk_seqs` journal sequences, in journal order: memory is bounded by the chunk, not the
    journal. Orders are joined across chunks (the creating ORDER_SENTs seen so far, including those
    before a mid-journal range, are kept in a compact index, with each order's remaining quantity
    carried over), so the rows do not depend on the chunk size.

    `only`: keep just the events of these EV codes (e.g. executions), dropped before their OUCH
    decode and the join; every Enter/Replace still joins the order index. `leaves=False` skips the
    remaining quantities (the `leaves` column), which need every event of an order, so `only`
    requires it. `gather_joined=False`: the columns copied from each event's creating order
    (JOINED) are gathered when the caller first reads them (JoinedCols), on its thread, and for
    just the rows it keeps when it takes some first (CAT keeps about 3 events in 5).

    Reading, decoding and joining a chunk (the C bulk read releases the GIL, and so do most numpy
    kernels) runs on a helper thread one chunk ahead of the caller's work on the previous chunk;
    while the generator runs, that thread is the only one decoding from `src.reader` and the only
    user of the order index (beside it, check_segments has the reader check segments ahead).

    With the join, each chunk's clock samples come from that chunk's own header scan (SampleHistory),
    so no separate pass over the whole journal runs before the first chunk; without it (clock
    evidence, which reads every sample anyway) the samples are read whole first."""
    if only is not None and leaves:
        raise ValueError("remaining quantities need every event of an order: pass leaves=False with only")
    step = chunk_seqs or CHUNK_SEQS
    samples = SampleHistory(src) if join_orders else clock_samples(src)
    book = Creators(reserve_rows(src.last_seq) if join_orders else 0)
    if join_orders:
        carry_prefix(src, book, step, leaves)
    starts = list(range(src.first_seq, src.last_seq + 1, step))
    arena = bulk.Arena()       # the bulk reads' buffers, reused chunk after chunk by `decode`

    def decode(a: int) -> OrderEvents:
        # a slice per chunk, dropped after decoding: its cache of raw records must not outlive it
        part = JournalSlice(reader=src.reader, journal_id=src.journal_id, first_seq=a,
                            last_seq=min(a + step - 1, src.last_seq), selection=src.selection)
        with arena:            # nothing read here outlives the call: _decode copies what it keeps
            decoded = _decode(part, join_orders, samples, only, book if join_orders else None)
        # chunks are decoded one after another on one thread, in journal order, so the join (and
        # the remaining quantities in `book`) runs here too, off the thread that builds tables
        return _join(decoded, book, leaves, gather_joined) if join_orders else decoded.events

    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=2) as ahead:
        checked = ahead.submit(check_segments, src, stop)
        pending = ahead.submit(decode, starts[0]) if starts else None
        try:
            for i in range(len(starts)):
                events = pending.result()
                pending = ahead.submit(decode, starts[i + 1]) if i + 1 < len(starts) else None
                yield events
            checked.result()
        finally:
            stop.set()


def carry_prefix(src: JournalSlice, book: "Creators", step: int, leaves: bool) -> None:
    """Bring `book` to the start of a mid-journal range: the orders created before it and, with
    `leaves`, the remaining quantity each has there (an order accepted before the range and
    executed or cancelled inside it needs its history). With `leaves` the prefix's order events
    go through the same decode and join as the range's, chunk by chunk, and only the book is
    kept; without, just the creating ORDER_SENTs are read."""
    for a in range(1, src.first_seq, step):
        last = min(a + step - 1, src.first_seq - 1)
        if not leaves:
            book.add(src.reader.read_fixed(RecordType.ORDER_SENT, first_seq=a, last_seq=last))
            adopted = adoptions.read(src.reader, a, last)
            if adopted is not None:
                book.adopt(adopted)
            continue
        part = JournalSlice(reader=src.reader, journal_id=src.journal_id, first_seq=a, last_seq=last,
                            selection=src.selection)
        _join(_decode(part, True, _NO_SAMPLES, None, book), book, leaves=True, gather_joined=False)


_NO_SAMPLES = np.zeros(0, row_dtype(RecordType.CLOCK_SAMPLE))    # prefix events: their times unused


def check_segments(src: JournalSlice, stop: threading.Event | None = None) -> None:
    """Have the reader check the records of each journal segment the range touches (their CRCs,
    which a reader does once, on a segment's first read), in journal order, until `stop` is set.
    Run on a thread of its own beside the decoding one, it takes that work (a few percent of a
    report's CPU on a journal in the page cache, far more when its pages come from disk) off the
    decoding thread, which finds each segment checked when it gets there;
    damage found stops the reader's snapshot there exactly as the decoding thread's own first
    read would have (JournalSlice.confirm_complete reports it)."""
    for seg in src.reader.segments():
        if stop is not None and stop.is_set():
            return
        first = max(int(seg["first_seq"]), src.first_seq)
        if seg["records"] and first <= min(int(seg["first_seq"]) + int(seg["records"]) - 1, src.last_seq):
            src.reader.scan(first, first, fields=("rtype",))


@dataclass
class _Decoded:
    """One chunk's events decoded and merged in journal order, before the join to the orders
    created so far (which needs the chunks before it)."""

    events: OrderEvents
    creators: dict | None = None     # this chunk's Enter/Replace ORDER_SENTs as Creators columns
    #                                  (None: none, or already added to the book by _decode)
    adopted: dict | None = None      # the orders a recovery adopted in this chunk (adoptions.read)


def _adoptions(src: JournalSlice, head) -> dict | None:
    """The chunk's adoption RECON records (adoptions.read), read only where its header scan shows
    a RECON record (a recovery's few: most chunks have none)."""
    at = np.flatnonzero(head.rtype == RecordType.RECON)
    if len(at) == 0:
        return None
    return adoptions.read(src.reader, int(head.seq[at[0]]), int(head.seq[at[-1]]))


def _order_event_venue(venue: np.ndarray) -> np.ndarray:
    """Which VENUE_MSG rows are order events: sequenced OUCH messages other than System Event."""
    return (venue["packet_type"] == SOUP_SEQUENCED) & (venue["msg_type"] != OUCH_SYSTEM_EVENT) \
        & (venue["raw_len"] > ouch.SOUP_HEADER)


def _merger(is_sent: np.ndarray):
    """merged(sent_values, venue_values, dtype): one column over both record types, in journal
    order (boolean-mask stores run in order: 2-3x faster than scattering by index positions)."""
    is_venue = ~is_sent

    def merged(sent_values, venue_values, dtype) -> np.ndarray:
        out = np.zeros(len(is_sent), dtype=dtype)
        if sent_values is not None:
            out[is_sent] = sent_values
        if venue_values is not None:
            out[is_venue] = venue_values
        return out
    return merged


def _venue_bytes(fields: dict, names) -> np.dtype:
    """VENUE_MSG payload up to the end of the last of OUCH `names` (not the whole raw packet)."""
    end = ouch.SOUP_HEADER + max(o + w for name in names for o, w, _ in fields[name].values())
    return payload_head(RecordType.VENUE_MSG, PAYLOAD_DTYPES[RecordType.VENUE_MSG].fields["raw"][1] + end)


_VENUE_HEAD = payload_head(RecordType.VENUE_MSG, PAYLOAD_DTYPES[RecordType.VENUE_MSG].fields["raw"][1])


def venue_messages(src: JournalSlice, first_seq: int, last_seq: int, types: bytes, names) -> dict[str, np.ndarray]:
    """The sequenced OUCH messages of `types` (e.g. b"B") among the VENUE_MSG records in
    [first_seq, last_seq]: their seq, ts_ns and ts_source, the OUCH type and the fields `names`
    (with token_key for a token), in journal order. Chunk by chunk: a header scan, the first
    bytes of each venue record, and only the matching records' OUCH fields; a message too short
    to hold the fields asked for is left out (it is not an order event of that type)."""
    fields = ("seq", "ts_ns", "ts_source")
    dtype = _venue_bytes(ouch.OUTBOUND_FIELDS, names)
    need = np.full(256, 1 << 30, np.int64)
    for t in types:
        layout = [ouch.OUTBOUND_FIELDS[name][t] for name in names if t in ouch.OUTBOUND_FIELDS[name]]
        need[t] = ouch.SOUP_HEADER + max(o + w for o, w, _ in layout)
    parts = []
    for a in range(first_seq, last_seq + 1, CHUNK_SEQS):
        cols = src.reader.scan(a, min(a + CHUNK_SEQS - 1, last_seq), fields=fields + ("rtype", "pos"))
        venue = np.flatnonzero(cols.rtype == RecordType.VENUE_MSG)
        head = src.reader.gather(cols.pos[venue], _VENUE_HEAD)
        hit = venue[(head["packet_type"] == SOUP_SEQUENCED) & (head["raw_len"] >= need[head["msg_type"]])]
        if len(hit) or not parts:          # (an empty first part gives the columns their types)
            raw = src.reader.gather(cols.pos[hit], dtype)
            got = ouchcols.decode(raw["raw"], raw["msg_type"], ouch.OUTBOUND_FIELDS, names=list(names))
            got.update({name: getattr(cols, name)[hit] for name in fields}, msg_type=raw["msg_type"])
            parts.append(got)
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if "token" in out:
        out["token_key"] = _join_key(out["token"])
    return out


# Payload bytes copied per record: without the order join (clock evidence) only up to the
# tokens and message types; with it, the whole ORDER_SENT and the OUCH fields decoded.
_HEADS = {
    False: {RecordType.ORDER_SENT: payload_head(
                RecordType.ORDER_SENT, PAYLOAD_DTYPES[RecordType.ORDER_SENT].fields["msg_type"][1] + 1),
            RecordType.VENUE_MSG: _venue_bytes(ouch.OUTBOUND_FIELDS, ["token"])},
    True: {RecordType.ORDER_SENT: PAYLOAD_DTYPES[RecordType.ORDER_SENT],
           RecordType.VENUE_MSG: _venue_bytes(ouch.OUTBOUND_FIELDS, ouch.OUTBOUND_FIELDS)},
}
_HEADER_FIELDS = ("seq", "ts_ns", "ts_source", "clock_state")
_CREATES = (ord("O"), ord("U"))     # OUCH Enter Order and Replace Order create an order token
_ENTER_FIELDS = ["side", "stock", "capacity", "iso"]     # inbound OUCH fields an order keeps (Creators)
CARRIES_SIDE = np.zeros(256, bool)               # inbound OUCH types with a side byte (O, M)
CARRIES_SIDE[list(ouch.INBOUND_FIELDS["side"])] = True


def wire_sides(ouch_side: np.ndarray, msg_type: np.ndarray, journaled: np.ndarray) -> np.ndarray:
    """The side of ORDER_SENT messages: the OUCH side byte where the message type carries one (0,
    unknown, where it lies past the bytes the journal holds: never the journaled B/S, which would
    read a short sale as a plain sell), else the journaled side (a Replace inherits its Enter's)."""
    return np.where(CARRIES_SIDE[msg_type], ouch_side, journaled)


class SampleHistory:
    """The CLOCK_SAMPLE records from the journal start to the end of the chunks decoded so far
    (sorted by sequence), grown chunk by chunk from each chunk's own header scan: for a chunk's
    events (and the orders they join, all created before its end) the samples preceding them are
    the same as in the whole journal's, and at the same indices, since each is a prefix of it."""

    WANTED = {RecordType.CLOCK_SAMPLE: PAYLOAD_DTYPES[RecordType.CLOCK_SAMPLE]}

    def __init__(self, src: JournalSlice):
        self.samples = np.zeros(0, row_dtype(RecordType.CLOCK_SAMPLE))
        if src.first_seq > 1:                       # samples before a mid-journal range
            self.samples = src.reader.read_fixed(RecordType.CLOCK_SAMPLE, first_seq=None,
                                                 last_seq=src.first_seq - 1)

    def extend(self, head, got: dict) -> np.ndarray:
        """Add the samples of one chunk (`heads` output with WANTED asked for); the samples so far."""
        at, payload = got[RecordType.CLOCK_SAMPLE]
        if len(at):
            rows = np.zeros(len(at), self.samples.dtype)
            for name in HEADER_DTYPE.names:
                rows[name] = getattr(head, name)[at]
            for name in payload.dtype.names:
                rows[name] = payload[name]
            self.samples = np.concatenate([self.samples, rows])
        return self.samples


def _decode(src: JournalSlice, join_orders: bool, samples: "np.ndarray | SampleHistory",
            only: tuple[int, ...] | None = None, book: "Creators | None" = None) -> _Decoded:
    """One chunk's order events in journal order. Header columns come from one scan of the range
    (already in journal order: no merge of the two record types), and only the payload bytes
    the events need are copied (_HEADS), not whole records. `only`: just the events of these EV
    codes are decoded (the chunk's Enter/Replace orders still all become creators). `book`: the
    orders created so far, which the chunk's creators join here (written straight into its
    columns by the compiled decode, FUSED) rather than in _join."""
    # with `only`, the short heads pick the rows first and just their payloads are copied whole
    wanted = _HEADS[join_orders and only is None]
    if isinstance(samples, SampleHistory):
        head, got = src.heads({**wanted, **SampleHistory.WANTED})
        samples = samples.extend(head, got)
    else:
        head, got = src.heads(wanted)
    all_sent_at, all_sent = got[RecordType.ORDER_SENT]
    venue_at, venue = got[RecordType.VENUE_MSG]
    adopted = _adoptions(src, head) if join_orders else None
    if FUSED and join_orders and only is None and book is not None:
        decoded = _decode_fused(head, all_sent_at, all_sent, venue_at, venue, samples, book)
        decoded.adopted = adopted
        return decoded
    keep = _order_event_venue(venue)
    sent_event, venue_event = _classify(all_sent["msg_type"], _SENT), _classify(venue["msg_type"], _VENUE)
    events_sent = slice(None)
    if only is not None:
        keep &= np.isin(venue_event, only)
        events_sent = np.isin(sent_event, only)
        if join_orders:       # the rows the events and the order index need, read whole
            needed = events_sent | np.isin(all_sent["msg_type"], _CREATES)
            all_sent_at, sent_event, events_sent = all_sent_at[needed], sent_event[needed], events_sent[needed]
            all_sent = src.reader.gather(head.pos[all_sent_at], _HEADS[True][RecordType.ORDER_SENT])
            venue_at, venue_event = venue_at[keep], venue_event[keep]
            venue = src.reader.gather(head.pos[venue_at], _HEADS[True][RecordType.VENUE_MSG])
            keep = np.ones(len(venue_at), bool)
    sent_at, sent, sent_event = all_sent_at[events_sent], all_sent[events_sent], sent_event[events_sent]
    if not keep.all():
        venue_at, venue, venue_event = venue_at[keep], venue[keep], venue_event[keep]
    if len(sent_at) + len(venue_at) == len(head.seq):
        rows = np.ones(len(head.seq), bool)      # every record is an order event (a mask: copies)
        is_sent = head.rtype == RecordType.ORDER_SENT
    else:
        rows = np.zeros(len(head.seq), bool)     # a mask: compressing beats gathering by index
        rows[sent_at] = True
        rows[venue_at] = True
        is_sent = head.rtype[rows] == RecordType.ORDER_SENT
    n = len(is_sent)
    is_venue = ~is_sent
    merged = _merger(is_sent)

    def onto(sent_values, placed, dtype) -> np.ndarray:
        # venue fields decoded straight into their merged rows: only the ORDER_SENT rows to fill
        out = placed.astype(dtype, copy=False)
        out[is_sent] = sent_values
        return out

    venue_held = ouch.held_bytes(venue["raw"], venue["raw_len"], RAW_VENUE_MAX)
    vcols = ouchcols.decode(venue["raw"], venue["msg_type"], ouch.OUTBOUND_FIELDS,
                            names=None if join_orders else ["token"], at=np.flatnonzero(is_venue), size=n,
                            held=venue_held)
    cols: dict[str, np.ndarray] = {name: getattr(head, name)[rows] for name in _HEADER_FIELDS}
    cols.update({
        "event": merged(sent_event, venue_event, np.int8),
        "token": onto(sent["token"], vcols["token"], "S14"),
    })
    cols["token_key"] = _join_key(cols["token"])
    utc = to_utc(cols["seq"], cols["ts_ns"], cols["ts_source"], samples)
    if not join_orders:
        return _Decoded(OrderEvents(cols=cols, utc=utc, samples=samples))
    sent_held = ouch.held_bytes(all_sent["raw"], all_sent["raw_len"], RAW_ORDER_MAX)
    scols = ouchcols.decode(all_sent["raw"], all_sent["msg_type"], ouch.INBOUND_FIELDS, names=_ENTER_FIELDS,
                            held=sent_held)
    all_wire_side = wire_sides(scols["side"], all_sent["msg_type"], all_sent["side"])
    wire_side, stock = all_wire_side[events_sent], scols["stock"][events_sent]
    cols.update({
        "origin": is_venue.astype(np.int8),
        "msg_type": merged(sent["msg_type"], venue["msg_type"], np.uint8),
        "prior_token": onto(sent["orig_token"], vcols["previous_token"], "S14"),
        # OUCH side on the wire (B, S, T short, E short exempt) where the message carries one
        "wire_side": onto(wire_side, vcols["side"], np.uint8),
        "price": onto(sent["price"], vcols["price"], np.int64),
        "qty": onto(sent["qty"], vcols["shares"], np.int64),
        # OUCH stock where the message carries one (Enter, Accepted, Replaced); b"" elsewhere
        "stock": onto(stock, vcols["stock"], "S8"),
    })
    for name, source in (("exec_qty", "executed"), ("exec_price", "exec_price"), ("match", "match"),
                         ("liquidity", "liquidity"), ("decrement", "decrement"), ("reason", "reason"),
                         ("order_ref", "order_ref"), ("venue_ts", "venue_ts")):
        cols[name] = vcols[source]
    cols["prior_token_key"] = _join_key(cols["prior_token"])
    header = ouch.SOUP_HEADER
    cols["msg_len"] = merged(np.maximum(sent_held[events_sent] - header, 0), np.maximum(venue_held - header, 0),
                             np.int16)
    creates = np.flatnonzero(np.isin(all_sent["msg_type"], _CREATES))
    # field by field: gathering the whole records (with their raw packets) first copies twice the bytes
    created = {name: all_sent[name][creates] for name in Creators.FIELDS + ("token", "orig_token")
               if name not in _HEADER_FIELDS}
    created.update({name: getattr(head, name)[all_sent_at[creates]] for name in _HEADER_FIELDS})
    return _Decoded(OrderEvents(cols=cols, utc=utc, samples=samples),
                    Creators.columns(created, all_wire_side[creates], scols["stock"][creates],
                                     scols["capacity"][creates], scols["iso"][creates]), adopted)


# The compiled decode (one C pass per chunk, orderjoin.merge_events) for the joined stream of
# every event; False: the numpy passes of _decode, the reference it is tested against.
FUSED = True


def _lut(table: dict[int, int]) -> np.ndarray:
    return _classify(np.arange(256, dtype=np.uint8), table)


def _decode_fused(head, sent_at: np.ndarray, sent: np.ndarray, venue_at: np.ndarray, venue: np.ndarray,
                  samples: np.ndarray, book: "Creators") -> _Decoded:
    """_decode of every event with the join, its columns and the chunk's creators (straight into
    the book's columns) written by one compiled pass."""
    merged = {}
    creates = np.isin(sent["msg_type"], _CREATES)

    def fill(rows: dict[str, np.ndarray]) -> None:     # the creators straight into the book
        iso = rows.pop("ouch_iso")               # the kernel writes the others
        merged.update(orderjoin.merge_events(
            sent, sent_at, venue, venue_at, _SENT_LUT, _VENUE_LUT, SOUP_SEQUENCED, OUCH_SYSTEM_EVENT,
            created=rows, creates=_CREATES, head={name: getattr(head, name) for name in _HEADER_FIELDS
                                                  if name in Creators.FIELDS}, raw_caps=_RAW_CAPS))
        iso[...] = _sent_isos(sent)[creates]
    book.add_rows(int(creates.sum()), fill)
    cols: dict[str, np.ndarray] = {name: getattr(head, name).take(merged["at"]) for name in _HEADER_FIELDS}
    for name in _MERGED_ORDER:
        cols[name] = merged[name]
    utc = to_utc(cols["seq"], cols["ts_ns"], cols["ts_source"], samples)
    return _Decoded(OrderEvents(cols=cols, utc=utc, samples=samples))


def _sent_isos(sent: np.ndarray) -> np.ndarray:
    """The OUCH intermarket sweep eligibility byte of each ORDER_SENT (Enter and Replace carry one;
    0 for other types and where the journal holds the message short of it)."""
    held = ouch.held_bytes(sent["raw"], sent["raw_len"], RAW_ORDER_MAX)
    return ouchcols.decode(sent["raw"], sent["msg_type"], ouch.INBOUND_FIELDS, names=["iso"], held=held)["iso"]


def _join(decoded: _Decoded, book: "Creators", leaves: bool = True, gather_joined: bool = True) -> OrderEvents:
    """Join every event to the ORDER_SENT that created its token (O, or U for the replacement):
    this chunk's creators join the running index first, and the JOINED columns are gathered now
    (or, without `gather_joined`, when first read). `leaves`: add each event's remaining quantity
    (carried in `book` across chunks)."""
    ev = decoded.events
    if decoded.creators is not None:
        book.add_columns(decoded.creators)
    if decoded.adopted is not None:
        book.adopt(decoded.adopted)
    keys_events = ev.cols["token_key"]
    creator = held_then(book, keys_events, ev.cols["seq"], book.index.lookup(keys_events))
    adopted = book.adopted(creator)
    if adopted.any():        # an adopted origin is the order's from its RECON record on, not before
        early = adopted & (ev.cols["seq"] < book.cols["seq"][np.where(adopted, creator, 0)])
        creator[early] = -1
        adopted &= ~early
    known = creator >= 0
    # the creators' columns as they are now: later chunks only append rows past these views'
    ev.cols = cols = JoinedCols(ev.cols, book.cols, creator)
    cols["prior_creator"] = prior_creators(cols, book)
    cols["order_adopted"] = adopted
    if gather_joined:
        cols.gather_all()
    if not leaves:
        return ev
    # group key per order: the creator's index, or for tokens no ORDER_SENT created, a code local
    # to this chunk (their rows are rejected, so their remaining quantity is not carried over)
    group = creator.copy()
    n_unknown = 0
    if not known.all():
        _, unknown_code = np.unique(keys_events[~known], return_inverse=True)
        group[~known] = len(book) + unknown_code
        n_unknown = int(unknown_code.max()) + 1
    cols["leaves"] = orderjoin.leaves(group, leaves_events(cols), cols["qty"], cols["exec_qty"], cols["decrement"],
                                      LEAVES_CODES, book.leaves_sum, book.leaves_started, n_unknown)
    return ev


def prior_creators(cols, book: "Creators") -> np.ndarray:
    """For each venue Replaced message and each Replace sent, the book row of the ORDER_SENT that
    created the order it replaces (its previous token; -1 if none did); -1 on every other row. Only
    those rows are looked up: CAT's priorOrderKeyDate (MEOM) and a re-route's orderKeyDate (MEMR)
    are the replaced order's key date."""
    out = np.full(len(cols["event"]), -1, np.int64)
    rows = np.flatnonzero((cols["event"] == EV["REPLACED"]) | (cols["event"] == EV["SENT_REPLACE"]))
    if len(rows):
        keys = cols["prior_token_key"][rows]
        out[rows] = held_then(book, keys, cols["seq"][rows], book.index.lookup(keys))
    return out


def held_then(book: "Creators", keys: np.ndarray, seqs: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """`latest` (the index's answer: the book row of the latest ORDER_SENT with each key, or -1)
    made the row of the order that held the key at each event's journal sequence: where a later
    order reused the token, the latest one before the event (-1 if none). A token is reused only
    across days or where a venue allowed it, so the index's answer almost always stands."""
    made_at = book.cols["seq"]
    if len(made_at) == 0:            # no ORDER_SENT yet: every answer is -1 already
        return latest
    late = np.flatnonzero((latest >= 0) & (made_at[np.maximum(latest, 0)] > seqs))
    if len(late):
        latest = latest.copy()
        latest[late] = latest_made_before(book.cols["token_key"], made_at, keys[late], seqs[late])
    return latest


def latest_made_before(keys: np.ndarray, made_at: np.ndarray, queries: np.ndarray,
                       seqs: np.ndarray) -> np.ndarray:
    """For each query, the index of the entry of `keys` equal to it made last at or before seqs[i]
    (by `made_at`, which need not ascend: adopted orders join the book after their chunk's; an
    ORDER_SENT's own row is made at its sequence), or -1."""
    held = np.flatnonzero(np.isin(keys, queries))
    by_seq = held[np.argsort(made_at[held], kind="stable")]
    pos = latest_before(keys[by_seq], queries, np.searchsorted(made_at[by_seq], seqs, side="right"))
    return np.where(pos >= 0, by_seq[np.maximum(pos, 0)], -1)


# Columns copied onto each event from the ORDER_SENT that created its order: name -> (Creators
# column, dtype, None: the column's own); 0 where no ORDER_SENT created the event's token.
JOINED = {**{name: (name, None) for name in ORDER_FIELDS},
          "side": ("side", np.uint8), "order_wire_side": ("wire_side", np.uint8), "order_stock": ("stock", None),
          "order_capacity": ("ouch_capacity", np.uint8), "order_iso": ("ouch_iso", np.uint8),
          "creator_seq": ("seq", np.int64), "creator_ts_ns": ("ts_ns", np.int64),
          "creator_ts_source": ("ts_source", np.int64), "order_qty": ("qty", np.int64),
          "order_price": ("price", np.int64), "order_earlier_token": ("earlier_token", None)}


class JoinedCols(dict):
    """An event chunk's columns (a dict), those of JOINED gathered from the creators' columns
    `book` by each event's `creator` row when first read (then kept); `take` gathers the JOINED
    columns it is given for the rows taken only, and leaves the others pending."""

    def __init__(self, cols: dict, book: dict, creator: np.ndarray):
        super().__init__(cols)
        self["creator"] = creator
        self.book = book
        self._known = None

    def __missing__(self, name: str) -> np.ndarray:
        if name not in JOINED:
            raise KeyError(name)
        field, dtype = JOINED[name]
        values = self.book[field]
        creator = self["creator"]
        if self._known is None:          # rows whose creator is known, or None for all of them
            known = np.flatnonzero(creator >= 0)
            self._known = (None if len(known) == len(creator) else known,)
        known, = self._known
        if known is None:                # every event's order known: one gather
            column = np.take(values, creator).astype(dtype or values.dtype, copy=False)
        else:
            column = np.zeros(len(creator), dtype=dtype or values.dtype)
            column[known] = np.take(values, creator[known])
        self[name] = column
        return column

    def take(self, rows: np.ndarray, names=None) -> "JoinedCols":
        """The columns `names` (default: all) at `rows`, with the creator rows; those of JOINED
        named but not gathered yet are gathered for `rows` only (one compiled pass), those not
        named stay pending."""
        names = list(self) if names is None else names
        taken = {k: self[k][rows] for k in names if k in self or k not in JOINED}
        taken.setdefault("creator", self["creator"][rows])
        out = JoinedCols(taken, self.book, taken["creator"])
        out.gather_all([k for k in names if k in JOINED])
        return out

    def gather_all(self, names=None) -> None:
        """Gather the JOINED columns `names` (default: all) not gathered yet, in one compiled pass
        over the creator rows (what __missing__ does column by column)."""
        pending = {name: JOINED[name] for name in (JOINED if names is None else names) if name not in self}
        if not pending:
            return
        creator = self["creator"]
        got = {name: np.empty(len(creator), dtype or self.book[field].dtype)
               for name, (field, dtype) in pending.items()}
        orderjoin.gather(creator, [(self.book[field], got[name]) for name, (field, _) in pending.items()])
        self.update(got)


# `leaves` where it is not a quantity: the venue has not accepted the order yet (pending new), or
# a truncated message left its quantity unknown (leaves_events).
LEAVES_PENDING, LEAVES_UNKNOWN = -1, -2
# The event codes the remaining-quantity kernel tells apart (orderjoin.h oj_event_codes); `unknown`:
# a message of one of the others cut short in the journal (leaves_events), whose quantity is unknown.
UNKNOWN_QTY = -1
LEAVES_CODES = {"accepted": EV["ACCEPTED"], "replaced": EV["REPLACED"], "modified": EV["ORDER_MODIFIED"],
                "executed": EV["EXECUTED"],
                "executed_ref": EV["EXECUTED_WITH_REF_PRICE"], "canceled": EV["CANCELED"],
                "aiq_canceled": EV["AIQ_CANCELED"], "unknown": UNKNOWN_QTY}
_QTY_EVENTS = [code for name, code in LEAVES_CODES.items() if name != "unknown"]


def leaves_events(cols) -> np.ndarray:
    """The event codes the remaining quantities are computed from: each event's own, but
    UNKNOWN_QTY for a quantity message (Accepted, Replaced, Order Modified, executions, cancels) the journal holds
    truncated, so that its order's remaining quantity is unknown from then on, not computed from
    a quantity it does not hold."""
    short = short_messages(cols)
    if not short.any():
        return cols["event"]
    return np.where(short & np.isin(cols["event"], _QTY_EVENTS), np.int8(UNKNOWN_QTY), cols["event"]).astype(np.int8)


CREATOR_BYTES = 128          # the Creators columns of one order, rounded up


def reserve_rows(last_seq: int) -> int:
    """Rows to reserve for the orders created up to sequence `last_seq`: one per sequence at most
    (each order takes one record), within an eighth of the machine's memory as address space."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):      # no figure for it: grow as needed
        return 0
    return max(0, min(int(last_seq), memory // 8 // CREATOR_BYTES))


class Creators:
    """The orders created so far (ORDER_SENT Enter and Replace), as compact columns that grow
    chunk by chunk (capacity doubling: appending a chunk copies only the chunk, amortised), a
    token index over them that merges each chunk in, and each order's running remaining quantity.

    `reserve`: rows of address space the columns take at once (an upper bound of the orders to
    come, see reserve_rows), so they never grow: no copy of the columns (on a 10M-event journal
    a third of the join's CPU went to copying them as they grew), and a page gets its memory only
    when a row on it is written."""

    FIELDS = ORDER_FIELDS + ("side", "seq", "ts_ns", "ts_source", "qty", "price", "msg_type")
    # every column: FIELDS as journaled, the join keys, the OUCH side, stock and capacity, running totals
    DTYPES = {**{name: (HEADER_DTYPE if name in HEADER_DTYPE.names else PAYLOAD_DTYPES[RecordType.ORDER_SENT])
                 .fields[name][0] for name in FIELDS},
              "token_key": np.dtype("S14"), "parent_key": np.dtype("S14"), "wire_side": np.dtype(np.uint8),
              "stock": np.dtype("S8"), "ouch_capacity": np.dtype(np.uint8), "leaves_sum": np.dtype(np.int64),
              "leaves_started": np.dtype(np.int64)}
    # the OUCH intermarket sweep byte of the Enter or Replace (CAT isoInd), 0 where unknown (a
    # Replace carries its own, so nothing is inherited). Written beside the compiled pass that
    # writes DTYPES (_decode_fused), which knows only those.
    EXTRA = {"ouch_iso": np.dtype(np.uint8)}
    # what the token index tells as it takes each order in: the latest earlier order with its
    # token, or -1 (a token reused: CAT dupROIDCond)
    INDEXED = {"earlier_token": np.dtype(np.int64)}

    def __init__(self, reserve: int = 0):
        self.reserve = reserve
        self._store: dict[str, np.ndarray] = {}
        self.n = 0
        self.index = orderjoin.TokenTable(np.zeros(0, "S14"))
        self.adopted_rows = np.zeros(0, np.int64)     # rows a recovery's adoption made (ascending)

    def __len__(self) -> int:
        return self.n

    @property
    def cols(self) -> dict[str, np.ndarray]:
        return {k: v[:self.n] for k, v in self._store.items()}

    @property
    def leaves_sum(self) -> np.ndarray:         # Σ(start - reductions) per order so far, from its last M
        return self._store["leaves_sum"][:self.n]

    @property
    def leaves_started(self) -> np.ndarray:     # venue A/U/M messages per order so far
        return self._store["leaves_started"][:self.n]

    def _reserve(self, m: int, dtypes: dict[str, np.dtype]) -> dict[str, np.ndarray]:
        """Room for `m` more rows of columns `dtypes`: the rows past self.n, to be written."""
        need = self.n + m
        capacity = len(next(iter(self._store.values()))) if self._store else 0
        if need > capacity or not self._store:
            # grown fourfold: fewer copies of the columns, and the rows not yet written cost
            # address space only (np.empty: the kernel gives a page its memory when first written)
            capacity = max(need, 4 * capacity, self.reserve, 1024)
            for k, dtype in dtypes.items():
                grown = np.empty(capacity, dtype)      # rows past self.n are written before read
                if k in self._store:
                    grown[:self.n] = self._store[k][:self.n]
                self._store[k] = grown
        return {k: self._store[k][self.n:need] for k in dtypes}

    @classmethod
    def columns(cls, sent: np.ndarray, wire_side: np.ndarray, stock: np.ndarray,
                capacity: np.ndarray, iso: np.ndarray) -> dict[str, np.ndarray]:
        """Creators columns of Enter/Replace ORDER_SENT rows (records or a dict of their columns,
        header fields included) whose OUCH side, stock and capacity (b"" / 0 for a Replace) and
        intermarket sweep byte are already decoded."""
        new = {name: sent[name] for name in cls.FIELDS}
        new["token_key"] = _join_key(sent["token"])
        new["parent_key"] = _join_key(sent["orig_token"])
        new["wire_side"] = wire_side.astype(np.uint8)
        new["stock"] = stock.astype("S8")
        new["ouch_capacity"] = capacity.astype(np.uint8)
        new["ouch_iso"] = iso.astype(np.uint8)
        new["leaves_sum"] = np.zeros(len(sent["seq"]), np.int64)
        new["leaves_started"] = np.zeros(len(sent["seq"]), np.int64)
        return new

    def add(self, sent: np.ndarray) -> None:
        """Index the Enter and Replace orders among `sent` (ORDER_SENT rows)."""
        sent = sent[np.isin(sent["msg_type"], _CREATES)]
        enter = ouchcols.decode(sent["raw"], sent["msg_type"], ouch.INBOUND_FIELDS, names=_ENTER_FIELDS,
                                held=ouch.held_bytes(sent["raw"], sent["raw_len"], RAW_ORDER_MAX))
        self.add_columns(self.columns(sent, wire_sides(enter["side"], sent["msg_type"], sent["side"]),
                                      enter["stock"], enter["capacity"], enter["iso"]))

    def add_columns(self, new: dict[str, np.ndarray]) -> None:
        """Add the orders of `new` (Creators.columns)."""
        def copy(rows: dict[str, np.ndarray]) -> None:
            for k, v in new.items():
                rows[k][...] = v
        self.add_rows(len(new["seq"]), copy, {k: v.dtype for k, v in new.items()})

    def add_rows(self, m: int, fill, dtypes: dict[str, np.dtype] | None = None) -> None:
        """Add `m` orders: fill(rows) writes every column of `dtypes` (default DTYPES and EXTRA)
        into `rows` ({name: the m rows past the current ones}, written straight into the book's
        columns); the INDEXED columns are written here."""
        known = bool(self._store)
        first_new = len(self)
        rows = self._reserve(m, {**(dtypes or {**self.DTYPES, **self.EXTRA}), **self.INDEXED})
        indexed = {name: rows.pop(name) for name in self.INDEXED}
        fill(rows)                      # called even for none: it may do more
        if m == 0 and known:
            return
        self.n += m
        indexed["earlier_token"][...] = self.index.extend(self._store["token_key"][:self.n], first_new)
        self._inherit_from_enter(first_new)

    def adopt(self, adopted: dict[str, np.ndarray]) -> None:
        """Index the orders a recovery adopted (adoptions.read columns) whose token no order so far
        has (where the journal kept its ORDER_SENT, that stays the origin), each token's first
        adoption only: the venue's terms, the RECON record's sequence and time, zeros for what the
        lost ORDER_SENT alone held (parties, time in force: reports mark the rows, see adopted)."""
        keys = adopted["token_key"]
        first = np.sort(np.unique(keys, return_index=True)[1])
        take = first[self.index.lookup(keys[first]) < 0]
        if len(take) == 0:
            return
        parent = adopted["parent_key"][take]

        def fill(rows: dict[str, np.ndarray]) -> None:
            for name, column in rows.items():
                unknown = b"" if column.dtype.kind == "S" else 0
                column[...] = adopted[name][take] if name in adopted else unknown
            rows["side"][...] = np.where(rows["wire_side"] == ord("B"), ord("B"), ord("S"))
            # a replacement inherits its chain's OUCH stock and capacity as a journaled Replace does
            rows["msg_type"][...] = np.where(parent != b"", ord("U"), ord("O"))
        first_new = self.n
        self.add_rows(len(take), fill)
        self.adopted_rows = np.concatenate([self.adopted_rows, np.arange(first_new, self.n, dtype=np.int64)])

    def adopted(self, creator: np.ndarray) -> np.ndarray:
        """Which of the book rows `creator` (-1: none) a recovery's adoption made."""
        if len(self.adopted_rows) == 0:
            return np.zeros(len(creator), bool)
        at = np.clip(np.searchsorted(self.adopted_rows, creator), 0, len(self.adopted_rows) - 1)
        return self.adopted_rows[at] == creator

    def _inherit_from_enter(self, first_new: int) -> None:
        """A Replace carries no side, stock or capacity: each new replacement takes those of the
        order it replaces, already resolved (rows resolve in journal order, those of earlier chunks
        when they were added), so a replace chain of any length gets its Enter's. The replaced
        order is the latest one before the replacement with its token (a token reused later in
        the chunk, which the index gives, is looked for before it: latest_before, for that
        anomaly only).
        Where the chain leaves the journal (no earlier order has the replaced token), the
        journaled side, no stock; so do its replacements. One lookup of the replaced tokens and
        one pass in order (compiled, orderjoin.inherit; inherit_reference without FUSED)."""
        c = self.cols
        rows = first_new + np.flatnonzero(c["msg_type"][first_new:] != ord("O"))
        if len(rows) == 0:
            return
        parent = self.index.lookup(c["parent_key"][rows])
        late = np.flatnonzero(parent >= rows)        # the token reused since: the index gives that
        if len(late):
            parent[late] = latest_before(c["token_key"], c["parent_key"][rows[late]], rows[late])
        (orderjoin.inherit if FUSED else inherit_reference)(rows, parent, c["wire_side"], c["stock"],
                                                           c["ouch_capacity"])


def latest_before(keys: np.ndarray, queries: np.ndarray, before: np.ndarray) -> np.ndarray:
    """For each query, the index of the last entry of `keys` equal to it below before[i], or -1
    (one sort of the entries holding a queried key: O(n log n), not a scan per query)."""
    upto = int(before.max())
    held = np.flatnonzero(np.isin(keys[:upto], queries))
    order = np.lexsort((held, keys[held]))           # by key, then entry
    at, key = held[order], keys[held][order]
    if len(at) == 0:
        return np.full(len(queries), -1, np.int64)
    span = np.int64(upto + 1)     # one key's entries, then the next key's: one ascending scale
    group = np.searchsorted(key, key, side="left").astype(np.int64)
    scale = group * span + at
    start = np.searchsorted(key, queries, side="left").astype(np.int64)
    pos = np.searchsorted(scale, start * span + before, side="left") - 1
    found = (pos >= start) & (key[np.clip(pos, 0, None)] == queries)
    return np.where(found, at[np.clip(pos, 0, None)], -1)


def inherit_reference(rows: np.ndarray, parent: np.ndarray, wire_side: np.ndarray, stock: np.ndarray,
                      capacity: np.ndarray) -> None:
    """orderjoin.inherit in numpy (its reference): replacement rows[k] (ascending) takes wire_side,
    stock and capacity of its replaced order parent[k] when that is an earlier row, as that row
    has them once resolved; otherwise it keeps its side, with no stock or capacity. Chains within
    `rows` are followed by pointer doubling (log2 of the longest chain passes), not generation by
    generation."""
    linked = (parent >= 0) & (parent < rows)
    stock[rows[~linked]] = b""
    capacity[rows[~linked]] = 0
    source = np.where(linked, parent, rows)      # itself: an end of its chain, resolved as it is
    last = len(rows) - 1
    while True:
        at = np.minimum(np.searchsorted(rows, source), last)
        onward = source[at]
        hop = (rows[at] == source) & (onward != source)   # the source is itself a linked replacement here
        if not hop.any():
            break
        source = np.where(hop, onward, source)
    copy = source != rows
    wire_side[rows[copy]] = wire_side[source[copy]]
    stock[rows[copy]] = stock[source[copy]]
    capacity[rows[copy]] = capacity[source[copy]]


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _token_hash(keys: np.ndarray) -> np.ndarray:
    """A 64-bit mix of a 14-byte token's two big-endian words (equality only, not order)."""
    words = np.zeros((len(keys), 16), np.uint8)
    words[:, :14] = np.ascontiguousarray(keys, dtype="S14").view(np.uint8).reshape(len(keys), 14)
    pair = words.view(">u8").astype(np.uint64, copy=False)
    return (pair[:, 0] * _MIX) ^ pair[:, 1]


class TokenIndex:
    """Exact lookup of order tokens, in numpy: integer hashes sorted once, one binary search per
    query and a full-token equality check. The reference the compiled orderjoin.TokenTable (what
    the join uses) is tested against; the same extend/lookup calls."""

    def __init__(self, keys: np.ndarray):
        self.keys = keys
        hashes = _token_hash(keys)
        self.order = np.argsort(hashes, kind="stable")
        self.sorted_hash = hashes[self.order]

    def extend(self, keys: np.ndarray, first_new: int) -> np.ndarray:
        """`keys` (all entries; those from `first_new` on are new) now indexed: the new hashes are
        sorted and merged in after equal older ones, so the latest entry stays last. Returns, for
        each new entry, the latest earlier entry with its token, or -1 (a dictionary: reference only)."""
        latest: dict[bytes, int] = {k: i for i, k in enumerate(keys[:first_new].tolist())}
        earlier = np.empty(len(keys) - first_new, np.int64)
        for i, k in enumerate(keys[first_new:].tolist()):
            earlier[i] = latest.get(k, -1)
            latest[k] = first_new + i
        self._merge(keys, first_new)
        return earlier

    def _merge(self, keys: np.ndarray, first_new: int) -> None:
        self.keys = keys
        hashes = _token_hash(keys[first_new:])
        order = np.argsort(hashes, kind="stable")
        new_hash, new_order = hashes[order], order.astype(np.int64) + first_new
        at = np.searchsorted(self.sorted_hash, new_hash, side="right") + np.arange(len(new_hash))
        old = np.ones(len(self.sorted_hash) + len(new_hash), bool)
        old[at] = False
        merged_hash = np.empty(len(old), np.uint64)
        merged_order = np.empty(len(old), np.int64)
        merged_hash[at], merged_hash[old] = new_hash, self.sorted_hash
        merged_order[at], merged_order[old] = new_order, self.order
        self.sorted_hash, self.order = merged_hash, merged_order

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


_SENT_LUT, _VENUE_LUT = _lut(_SENT), _lut(_VENUE)
# the order of _decode's columns after the header ones
_MERGED_ORDER = ("event", "token", "token_key", "origin", "msg_type", "prior_token", "wire_side", "price",
                 "qty", "stock", "exec_qty", "exec_price", "match", "liquidity", "decrement", "reason",
                 "order_ref", "venue_ts", "prior_token_key", "msg_len")


def leaves_reference(cols: dict[str, np.ndarray], group: np.ndarray, book: Creators, n_unknown: int) -> np.ndarray:
    """Venue-confirmed remaining quantity of the event's order after the event (LEAVES_PENDING
    before the venue accepted it, LEAVES_UNKNOWN after a truncated quantity message),
    in numpy: the reference orderjoin.leaves (what the join uses, one C pass) is tested against.

    Starts from the quantity the venue accepted (A) or restated (U) and subtracts executions and
    cancel decrements, per order, in journal order; an Order Modified (M) sets it to the open shares
    it restates. One sort and one cumsum, continuing from the running totals `book` carries from
    earlier chunks (and updating them)."""
    ev = cols["event"]
    if len(ev) == 0:
        return np.zeros(0, np.int64)
    unknown = ev == UNKNOWN_QTY               # from here on the order's quantity is unknown
    start = np.where((ev == EV["ACCEPTED"]) | (ev == EV["REPLACED"]), cols["qty"], 0)
    reduce = np.where((ev == EV["EXECUTED"]) | (ev == EV["EXECUTED_WITH_REF_PRICE"]), cols["exec_qty"], 0) \
        + np.where((ev == EV["CANCELED"]) | (ev == EV["AIQ_CANCELED"]), cols["decrement"], 0)
    order = np.argsort(group, kind="stable")             # rows are in journal order already
    modified = (ev == EV["ORDER_MODIFIED"])[order]
    delta = np.where(modified, 0, (start - reduce)[order])
    codes = group[order]
    running = np.cumsum(delta)
    group_start = np.r_[True, codes[1:] != codes[:-1]]
    base = np.maximum.accumulate(np.where(group_start, np.arange(len(codes)), 0))
    # the running total restarts at each group's first row (from the book's) and at each Order
    # Modified (from its qty): the latest such row at or before each row
    restart = np.maximum.accumulate(np.where(group_start | modified, np.arange(len(codes)), 0))
    started_flag = (start[order] > 0) | modified
    started = np.cumsum(started_flag)                     # A/U/M messages so far, over all groups
    started_within = started - (started[base] - started_flag[base])
    if n_unknown:       # orders no ORDER_SENT created start from nothing (codes past the book)
        in_book = codes < len(book)
        prior_sum, prior_started = np.zeros(len(codes), np.int64), np.zeros(len(codes), np.int64)
        prior_sum[in_book] = book.leaves_sum[codes[in_book]]
        prior_started[in_book] = book.leaves_started[codes[in_book]]
    else:               # gather from the running totals, without copying them whole per chunk
        prior_sum, prior_started = book.leaves_sum[codes], book.leaves_started[codes]
    restarted_at = np.where(modified, cols["qty"][order], prior_sum + delta)[restart]
    total = restarted_at + (running - running[restart])
    unknown_so_far = np.cumsum(unknown[order])
    lost = (prior_started < 0) | (unknown_so_far - (unknown_so_far[base] - unknown[order][base]) > 0)
    total_started = np.where(lost, -1, prior_started + started_within)
    last = np.r_[codes[1:] != codes[:-1], True] & (codes < len(book))
    book.leaves_sum[codes[last]] = total[last]
    book.leaves_started[codes[last]] = total_started[last]
    out = np.empty(len(group), dtype=np.int64)
    out[order] = np.where(total_started > 0, total, np.where(total_started < 0, LEAVES_UNKNOWN, LEAVES_PENDING))
    return out
