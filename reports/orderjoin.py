"""The order join's compiled kernels (reports/_orderjoin.c) behind numpy-shaped calls: an exact
hash index of 14-byte order tokens that grows with the orders created so far, each event's
remaining quantity computed in one pass in journal order, continuing the totals of earlier chunks,
a chunk's order events merged and decoded in one pass (merge_events), replacements given their
replaced orders' side, stock and capacity (inherit), and column gathers.

Owns buffer handling and table growth only; the rules are the C's (see orderjoin.h), and the
numpy references they are tested against are events.TokenIndex, events.leaves_reference,
events.inherit_reference and the numpy passes of events._decode and JoinedCols.__missing__.
"""
from __future__ import annotations

import numpy as np

from reports import ouch
from reports._orderjoin_cffi import ffi, lib
from reports.errors import KernelInputError
from reports.ouchcols import FieldSet

TOKEN_BYTES = lib.OJ_TOKEN_BYTES          # the OUCH 4.2 order token
MIN_SLOTS = 1 << 12
MAX_ENTRIES = (1 << 31) - 1     # slots hold int32 entry numbers: half the bytes of int64 in cache


def _tokens(keys: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(keys, dtype=f"S{TOKEN_BYTES}")


def _ptr(ctype: str, arr: np.ndarray):
    return ffi.cast(ctype, ffi.from_buffer(arr)) if len(arr) else ffi.NULL


class TokenTable:
    """Exact lookup of order tokens: `extend(keys, first_new)` after `keys` grew (entries from
    `first_new` on are new), `lookup(queries)` gives the latest entry equal to each query or -1.
    The index of every entry keeps at most half its slots used (rebuilt at twice the size when it
    would not). Beside it, a small index of the entries the last `extend` added is probed first:
    a chunk's events mostly belong to orders created in that chunk, and that index stays in cache
    where the whole one (tens of MB over a day) costs a cache miss or two per query."""

    def __init__(self, keys: np.ndarray):
        self.keys = _tokens(keys[:0])
        self.slots = np.full(MIN_SLOTS, -1, np.int32)
        self.recent = np.full(1, -1, np.int32)
        self.extend(keys, 0)

    def extend(self, keys: np.ndarray, first_new: int) -> np.ndarray:
        """Index the entries of `keys` from `first_new` on; for each, the latest earlier entry with
        its token (a reused token), or -1."""
        self.keys = _tokens(keys)
        n = len(self.keys)
        if n > MAX_ENTRIES:
            raise KernelInputError(f"an order index holds at most {MAX_ENTRIES} tokens")
        self.recent = self._index(first_new, n, 1)
        if 2 * n > len(self.slots):         # grow, and insert every entry again, in order
            replaced = np.empty(n, np.int32)
            self.slots = self._index(0, n, len(self.slots), replaced)
            return replaced[first_new:].astype(np.int64)
        replaced = np.empty(n - first_new, np.int32)
        self._insert(self.slots, first_new, n, replaced)
        return replaced.astype(np.int64)

    def _index(self, first: int, end: int, size: int, replaced: np.ndarray | None = None) -> np.ndarray:
        while 2 * (end - first) > size:
            size *= 2
        slots = np.full(size, -1, np.int32)
        self._insert(slots, first, end, replaced)
        return slots

    def _insert(self, slots: np.ndarray, first: int, end: int, replaced: np.ndarray | None = None) -> None:
        if end > first:
            lib.oj_index_insert(_ptr("int32_t *", slots), len(slots) - 1, _ptr("uint8_t *", self.keys), first, end,
                                ffi.NULL if replaced is None else _ptr("int32_t *", replaced))

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        queries = _tokens(queries)
        out = np.empty(len(queries), np.int64)
        if len(queries):
            lib.oj_index_lookup2(_ptr("int32_t *", self.recent), len(self.recent) - 1,
                                 _ptr("int32_t *", self.slots), len(self.slots) - 1,
                                 _ptr("uint8_t *", self.keys), _ptr("uint8_t *", queries), len(queries),
                                 _ptr("int64_t *", out))
        return out


def join_keys(tokens: np.ndarray) -> np.ndarray:
    """Tokens as comparable fixed bytes (S14): OUCH pads with spaces, the journal with NULs."""
    tokens = np.asarray(tokens)
    if tokens.dtype != np.dtype(f"S{TOKEN_BYTES}") or tokens.ndim != 1:
        tokens = np.ascontiguousarray(tokens, dtype=f"S{TOKEN_BYTES}")
    out = np.empty(len(tokens), f"S{TOKEN_BYTES}")
    if len(tokens):
        lib.oj_join_keys(len(tokens), _address(tokens), tokens.strides[0], _ptr("uint8_t *", out))
    return out


CAT_TIMESTAMP_BYTES = lib.OJ_CAT_TIMESTAMP_BYTES     # YYYYMMDD HHMMSS.CCCNNNNNN


def cat_timestamps(local_ns: np.ndarray) -> np.ndarray:
    """(n, 25) uint8 rows of CAT timestamp text for local times in ns since 1970-01-01."""
    local_ns = np.ascontiguousarray(local_ns, dtype=np.int64)
    out = np.empty((len(local_ns), CAT_TIMESTAMP_BYTES), np.uint8)
    if len(local_ns):
        lib.oj_cat_timestamps(len(local_ns), ffi.from_buffer("int64_t[]", local_ns), _ptr("uint8_t *", out))
    return out


def _address(arr: np.ndarray):
    return ffi.cast("uint8_t *", arr.__array_interface__["data"][0])


def leaves(group: np.ndarray, event: np.ndarray, qty: np.ndarray, exec_qty: np.ndarray,
           decrement: np.ndarray, codes: dict[str, int], book_sum: np.ndarray, book_started: np.ndarray,
           n_unknown: int) -> np.ndarray:
    """Remaining quantity after each event (-1 until the venue accepted the order, -2 once a
    truncated quantity message, code `unknown`, made it unknown), orders
    `group` < len(book_sum) continuing from and updating `book_sum`/`book_started` (int64, in
    place), the n_unknown groups past them starting from nothing. `codes`: the event codes of
    ACCEPTED, REPLACED, ORDER_MODIFIED (sets the remaining quantity to its qty), EXECUTED,
    EXECUTED_WITH_REF_PRICE, CANCELED and AIQ_CANCELED."""
    n = len(group)
    out = np.empty(n, np.int64)
    if n == 0:
        return out
    if book_sum.dtype != np.int64 or book_started.dtype != np.int64 or not (
            book_sum.flags.c_contiguous and book_started.flags.c_contiguous):
        raise KernelInputError("running totals must be contiguous int64 arrays (updated in place)")
    group = np.ascontiguousarray(group, np.int64)
    if n and (int(group.min()) < 0 or int(group.max()) >= len(book_sum) + n_unknown):
        raise KernelInputError("group codes must lie in [0, len(book) + n_unknown)")
    spec = ffi.new("oj_event_codes *", codes)
    local_sum, local_started = np.zeros(n_unknown, np.int64), np.zeros(n_unknown, np.int64)
    i64 = "int64_t *"
    lib.oj_leaves(n, _ptr(i64, group), _ptr("int8_t *", np.ascontiguousarray(event, np.int8)),
                  _ptr(i64, np.ascontiguousarray(qty, np.int64)),
                  _ptr(i64, np.ascontiguousarray(exec_qty, np.int64)),
                  _ptr(i64, np.ascontiguousarray(decrement, np.int64)), spec, len(book_sum),
                  _ptr(i64, book_sum), _ptr(i64, book_started), _ptr(i64, local_sum),
                  _ptr(i64, local_started), _ptr(i64, out))
    return out


# The merged columns of merge_events: name -> dtype.
MERGED = {"at": np.int64, "event": np.int8, "origin": np.int8, "msg_type": np.uint8,
          "token": f"S{TOKEN_BYTES}", "token_key": f"S{TOKEN_BYTES}", "prior_token": f"S{TOKEN_BYTES}",
          "prior_token_key": f"S{TOKEN_BYTES}", "wire_side": np.uint8, "price": np.int64, "qty": np.int64,
          "stock": f"S{lib.OJ_STOCK_BYTES}", "msg_len": np.int16}
# Venue OUCH fields (ouch.OUTBOUND_FIELDS) -> merged column; those not merged keep the field's name.
VENUE_INTO = {"token": "token", "previous_token": "prior_token", "side": "wire_side", "price": "price",
              "shares": "qty", "stock": "stock", "executed": "exec_qty", "exec_price": "exec_price",
              "match": "match", "liquidity": "liquidity", "decrement": "decrement", "reason": "reason",
              "order_ref": "order_ref", "venue_ts": "venue_ts"}
_CTYPES = {"at": "int64_t *", "price": "int64_t *", "qty": "int64_t *", "event": "int8_t *", "origin": "int8_t *",
           "msg_len": "int16_t *"}
_SENT_FIELDS = ("token", "orig_token", "msg_type", "side", "price", "qty", "raw_len", "raw")
_VENUE_FIELDS = ("packet_type", "msg_type", "raw_len", "raw")
# what the C reads at each field's offset (orderjoin.h oj_records; raw: a byte array of any length)
_FIELD_DTYPES = {"token": np.dtype(f"S{TOKEN_BYTES}"), "orig_token": np.dtype(f"S{TOKEN_BYTES}"),
                 "msg_type": np.dtype("u1"), "side": np.dtype("u1"), "price": np.dtype("<i8"),
                 "qty": np.dtype("<u4"), "packet_type": np.dtype("u1"), "raw_len": np.dtype("<u2")}


def _records(rows: np.ndarray, at: np.ndarray, names, keep: list, raw_cap: int):
    """oj_records of structured `rows` at chunk positions `at` (the byte offsets of `names`):
    positions strictly increasing (the merge takes them in order) and not negative; `raw_cap`:
    the bytes of the journal record's raw field (rows may hold only its head; 0: the rows')."""
    at = np.ascontiguousarray(at, np.int64)
    if len(at) != len(rows) or (len(rows) and rows.strides[0] != rows.dtype.itemsize):
        raise KernelInputError("rows must be contiguous records, one position each")
    fields = rows.dtype.fields or {}
    for name in names:
        dtype = fields[name][0] if name in fields else None
        if dtype is None or (dtype.base != np.dtype("u1") or dtype.ndim != 1 if name == "raw"
                             else dtype != _FIELD_DTYPES[name]):
            raise KernelInputError(f"record field {name}: {dtype}, where the kernel reads "
                                   f"{'a byte array' if name == 'raw' else _FIELD_DTYPES[name]}")
    if len(at) and (at[0] < 0 or np.any(at[1:] <= at[:-1])):
        raise KernelInputError("record positions must be non-negative and strictly increasing")
    keep.append(at)
    raw_cap = raw_cap or rows.dtype.fields["raw"][0].shape[0]
    spec = {"n": len(rows), "rows": _address(rows) if len(rows) else ffi.NULL,
            "stride": rows.dtype.itemsize, "at": _ptr("int64_t *", at), "raw_cap": raw_cap}
    spec.update({name: rows.dtype.fields[name][1] for name in names})
    return ffi.new("oj_records *", spec)


_CREATED_OWN = {"token_key": "uint8_t *", "parent_key": "uint8_t *", "wire_side": "uint8_t *", "stock": "uint8_t *",
                "ouch_capacity": "uint8_t *", "leaves_sum": "int64_t *", "leaves_started": "int64_t *"}
_CREATED_DTYPES = {"token_key": MERGED["token_key"], "parent_key": MERGED["token_key"], "wire_side": np.uint8,
                   "stock": MERGED["stock"], "ouch_capacity": np.uint8, "leaves_sum": np.int64, "leaves_started": np.int64}


def _created(sent: np.ndarray, rows_read: int, created: dict, creates, head: dict, keep: list):
    """oj_creators writing into the columns of `created` (see merge_events)."""
    if set(_CREATED_OWN) - set(created):
        raise KernelInputError(f"created needs {sorted(_CREATED_OWN)}")
    unknown = [n for n in created if n not in head and n not in _CREATED_OWN and n not in (sent.dtype.fields or {})]
    if unknown:
        raise KernelInputError(f"created columns {unknown}: neither a header nor an ORDER_SENT field")
    m = len(next(iter(created.values())))
    for name, column in created.items():
        source = head[name] if name in head else None if name in _CREATED_OWN else sent.dtype.fields[name][0]
        source_dtype = getattr(source, "dtype", source)
        if len(column) != m or not column.flags.c_contiguous or (
                source is not None and source_dtype != column.dtype) or \
                (name in _CREATED_OWN and column.dtype != np.dtype(_CREATED_DTYPES[name])):
            raise KernelInputError(f"created column {name}: {column.dtype}, {len(column)} rows")
    flags = np.zeros(256, np.uint8)
    flags[list(creates)] = 1
    copy = [n for n in created if n not in head and n not in _CREATED_OWN]
    from_head = [n for n in created if n in head]
    for name in from_head:
        if not head[name].flags.c_contiguous:
            raise KernelInputError(f"header column {name} must be contiguous")
        if rows_read > len(head[name]):      # the C reads head[name][sent_at[i]]
            raise KernelInputError(f"header column {name} has {len(head[name])} rows, "
                                   f"the positions reach row {rows_read - 1}")
    arrays = dict(flags=flags, copy_offset=np.array([sent.dtype.fields[n][1] for n in copy] or [0], np.int32),
                  copy_size=np.array([created[n].dtype.itemsize for n in copy] or [0], np.int32),
                  head_size=np.array([created[n].dtype.itemsize for n in from_head] or [0], np.int32))
    keep.append(arrays)
    pointers = dict(copy_out=ffi.new("uint8_t *[]", [_address(created[n]) for n in copy] or [ffi.NULL]),
                    head_src=ffi.new("const uint8_t *[]", [_address(head[n]) for n in from_head] or [ffi.NULL]),
                    head_out=ffi.new("uint8_t *[]", [_address(created[n]) for n in from_head] or [ffi.NULL]))
    keep.append(pointers)
    spec = {"creates": ffi.from_buffer("uint8_t[]", flags), "ncopy": len(copy),
            "copy_offset": ffi.from_buffer("int32_t[]", arrays["copy_offset"]),
            "copy_size": ffi.from_buffer("int32_t[]", arrays["copy_size"]), "copy_out": pointers["copy_out"],
            "nhead": len(from_head), "head_src": pointers["head_src"],
            "head_size": ffi.from_buffer("int32_t[]", arrays["head_size"]), "head_out": pointers["head_out"],
            "capacity": m, "n": 0}
    spec.update({name: _ptr(ctype, created[name]) for name, ctype in _CREATED_OWN.items()})
    return ffi.new("oj_creators *", spec)


def merge_events(sent: np.ndarray, sent_at: np.ndarray, venue: np.ndarray, venue_at: np.ndarray,
                 sent_lut: np.ndarray, venue_lut: np.ndarray, sequenced: int, system_event: int,
                 created: dict[str, np.ndarray] | None = None, creates=(), head: dict | None = None,
                 raw_caps: tuple[int, int] = (0, 0)) -> dict[str, np.ndarray]:
    """One chunk's order events in journal order (one C pass, oj_merge_events): every ORDER_SENT
    row (whole payloads) and the VENUE_MSG rows (payload heads up to the last OUCH field) that are
    order events (SoupBinTCP packet type `sequenced`, OUCH type not `system_event`, a message past
    the frame), merged by their positions among the chunk's records. Columns: MERGED and the
    other venue fields of VENUE_INTO, and (by ORDER_SENT row, not merged) sent_wire_side and
    sent_stock. The luts give each message type's event code. `raw_caps`: the bytes of the raw
    field of a whole ORDER_SENT and VENUE_MSG record (0: the rows' own raw field): msg_len is the
    OUCH bytes each message holds (ouch.held_bytes less the frame), and fields past them are 0.

    `created`: {column: destination} for the ORDER_SENTs whose type is in `creates` (exactly as
    many rows as there are): token_key and parent_key (join keys of token and orig_token),
    wire_side (as sent_wire_side), stock and ouch_capacity (the inbound OUCH fields), leaves_sum and leaves_started
    (0), a column named as a `head` one ({name: the chunk's header column}) from it, any other
    from the ORDER_SENT field of its name."""
    keep: list = []
    sent_rec = _records(sent, sent_at, _SENT_FIELDS, keep, raw_caps[0])
    venue_rec = _records(venue, venue_at, _VENUE_FIELDS, keep, raw_caps[1])
    lut_s, lut_v = np.ascontiguousarray(sent_lut, np.int8), np.ascontiguousarray(venue_lut, np.int8)
    if lut_s.shape != (256,) or lut_v.shape != (256,):      # the C reads lut[type] for any type byte
        raise KernelInputError("event code tables must have one entry for each of the 256 message types")
    size = len(sent) + len(venue)
    out = {name: np.empty(size, dtype) for name, dtype in MERGED.items()}
    out.update({name: np.empty(size, np.int64) for name in VENUE_INTO.values() if name not in out})
    sent_side, sent_stock = np.empty(len(sent), np.int64), np.empty(len(sent), f"S{lib.OJ_STOCK_BYTES}")
    sent_capacity = np.empty(len(sent), np.uint8)
    out["sent_wire_side"] = np.empty(len(sent), np.uint8)
    raw_bytes = venue.dtype.fields["raw"][0].shape[0]
    outbound = FieldSet(ouch.OUTBOUND_FIELDS, {f: out[c] for f, c in VENUE_INTO.items()}, row_bytes=raw_bytes)
    inbound = FieldSet(ouch.INBOUND_FIELDS, {"side": sent_side, "stock": sent_stock, "capacity": sent_capacity},
                       row_bytes=sent.dtype.fields["raw"][0].shape[0])
    rule = ffi.new("oj_venue_rule *", {"sequenced": sequenced, "system_event": system_event,
                                       "header": ouch.SOUP_HEADER})
    merged = ffi.new("oj_merged *", {name: _ptr(_CTYPES.get(name, "uint8_t *"), out[name])
                                     for name in list(MERGED) + ["sent_wire_side"]})
    rows_read = sent_rec.at[len(sent) - 1] + 1 if len(sent) else 0    # header rows the creators read
    spec = ffi.NULL if created is None else _created(sent, rows_read, created, creates, head or {}, keep)
    n = lib.oj_merge_events(sent_rec, inbound.struct, venue_rec, rule, outbound.struct,
                            ffi.from_buffer("int8_t[]", lut_s), ffi.from_buffer("int8_t[]", lut_v), merged, spec)
    if n == -2:
        raise MemoryError("oj_merge_events")
    if n == -1:
        raise KernelInputError(f"at most {lib.OJ_MAX_FIELDS} OUCH fields per message")
    if n == -3 or (created is not None and spec.n != spec.capacity):
        raise KernelInputError("created must have one row per creating ORDER_SENT")
    cols = {name: out[name][:n] for name in out if name != "sent_wire_side"}
    cols["sent_wire_side"], cols["sent_stock"] = out["sent_wire_side"], sent_stock
    return cols


def inherit(rows: np.ndarray, parent: np.ndarray, wire_side: np.ndarray, stock: np.ndarray,
            capacity: np.ndarray) -> None:
    """Replacement rows[k] (strictly ascending) takes wire_side, stock and capacity (in place) of
    the order it replaces, parent[k], when that is an earlier row (resolved before it, so chains of
    any length resolve), else keeps its side with no stock or capacity (oj_inherit, one pass)."""
    rows = np.ascontiguousarray(rows, np.int64)
    parent = np.ascontiguousarray(parent, np.int64)
    n = len(rows)
    if len(parent) != n:
        raise KernelInputError("one parent per replacement row")
    if n == 0:
        return
    size = len(wire_side)
    if int(rows[0]) < 0 or int(rows[-1]) >= size or np.any(rows[1:] <= rows[:-1]) or int(parent.max()) >= size:
        raise KernelInputError("replacement rows must be ascending rows of the columns, parents within them")
    if wire_side.dtype != np.uint8 or capacity.dtype != np.uint8 or stock.dtype != np.dtype(f"S{lib.OJ_STOCK_BYTES}") \
            or len(stock) != size or len(capacity) != size or not all(
                a.flags.c_contiguous for a in (wire_side, stock, capacity)):
        raise KernelInputError("side, stock and capacity: contiguous uint8, S8, uint8 columns of one length")
    lib.oj_inherit(n, _ptr("int64_t *", rows), _ptr("int64_t *", parent), _ptr("uint8_t *", wire_side),
                   _ptr("uint8_t *", stock), _ptr("uint8_t *", capacity))


def gather(rows: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """For each (source, destination) pair, destination[i] = source[rows[i]] (0 where rows[i] < 0),
    in one C pass over `rows` (oj_gather): sources 1-D (strided: fields of records too), integers
    widened to the destination's integer type (same or wider) as numpy's astype does, else of one dtype."""
    rows = np.ascontiguousarray(rows, np.int64)
    n = len(rows)
    for src, dst in pairs:
        if src.ndim != 1 or dst.ndim != 1 or len(dst) != n or not dst.flags.c_contiguous:
            raise KernelInputError("gather wants 1-D sources and contiguous destinations of len(rows)")
        if src.dtype != dst.dtype and not (src.dtype.kind in "iu" and dst.dtype.kind in "iu"
                                           and dst.dtype.itemsize >= src.dtype.itemsize):
            raise KernelInputError(f"cannot gather {src.dtype} into {dst.dtype}")
        if src.dtype.hasobject or not (src.dtype.isnative and dst.dtype.isnative):
            # the C copies bytes: no references counted, integers read in this machine's order
            raise KernelInputError(f"gather copies plain native values, not {src.dtype} into {dst.dtype}")
    if n == 0 or not pairs:
        return
    shortest = min(len(src) for src, _ in pairs)
    if int(rows.max()) >= shortest:
        raise IndexError("gather rows past the end of a source")
    if shortest == 0:     # every row unknown (-1): zeros, and no source row to read for them
        for _, dst in pairs:
            dst[:] = np.zeros((), dst.dtype)      # (a plain 0 would be the text "0" in bytes columns)
        return
    lib.oj_gather(n, _ptr("int64_t *", rows), len(pairs),
                  ffi.new("uint8_t *[]", [_address(src) for src, _ in pairs]),
                  ffi.new("int64_t[]", [src.strides[0] for src, _ in pairs]),
                  ffi.new("int32_t[]", [src.dtype.itemsize for src, _ in pairs]),
                  ffi.new("uint8_t[]", [src.dtype.kind == "i" for src, _ in pairs]),
                  ffi.new("uint8_t *[]", [_address(dst) for _, dst in pairs]),
                  ffi.new("int32_t[]", [dst.dtype.itemsize for _, dst in pairs]))
