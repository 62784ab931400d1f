"""Vectorised decoding of OUCH 4.2 messages held in journal `raw` byte arrays (SoupBinTCP framed).

Owns the byte offsets of OUCH fields (big-endian, by message type) and turns an (n, width) uint8
array into numpy columns, one copy of the raw rows per message type — never a per-record Python loop.
Must not know about reports or regulation; the layouts follow the OUCH 4.2 specification.
"""
from __future__ import annotations

import numpy as np

SOUP_HEADER = 3          # SoupBinTCP: length (u16) + packet type, then the OUCH message

# The fixed length of each OUCH 4.2 message type (type byte included), by direction: a journaled
# message shorter than its type's is truncated. Its fields past the bytes held are not decoded
# (left 0 / b''), and the event is rejected by the reports, never reported with invented zeros.
OUTBOUND_LENGTHS = {ord("S"): 10, ord("A"): 66, ord("U"): 80, ord("C"): 28, ord("D"): 37, ord("E"): 40,
                    ord("G"): 45, ord("B"): 32, ord("F"): 41, ord("J"): 24, ord("P"): 23, ord("I"): 23,
                    ord("T"): 36, ord("M"): 28, ord("K"): 36}
INBOUND_LENGTHS = {ord("O"): 49, ord("U"): 47, ord("X"): 19, ord("M"): 20, ord("N"): 15}

# Outbound (venue -> firm) messages: type(1) timestamp(8, ns since midnight US/Eastern) token(14) ...
# name -> {ouch type: (offset inside the OUCH message, width, kind)}; kind 'u' int, 's' bytes.
OUTBOUND_FIELDS: dict[str, dict[bytes, tuple[int, int, str]]] = {
    "venue_ts": {t: (1, 8, "u") for t in b"SAUCEJDGBPITMFK"},
    "token": {t: (9, 14, "s") for t in b"AUCEJDGBPITMFK"},
    "side": {t: (23, 1, "u") for t in b"AUM"},
    "shares": {t: (24, 4, "u") for t in b"AUM"},
    "stock": {t: (28, 8, "s") for t in b"AU"},
    "price": {ord("A"): (36, 4, "u"), ord("U"): (36, 4, "u"), ord("T"): (23, 4, "u")},
    "tif": {t: (40, 4, "u") for t in b"AU"},
    "order_ref": {ord("A"): (49, 8, "u"), ord("U"): (49, 8, "u"), ord("T"): (28, 8, "u")},
    "capacity": {t: (57, 1, "u") for t in b"AU"},
    "order_state": {t: (64, 1, "u") for t in b"AU"},
    "previous_token": {ord("U"): (65, 14, "s")},
    "decrement": {ord("C"): (23, 4, "u"), ord("D"): (23, 4, "u")},
    "reason": {ord("C"): (27, 1, "u"), ord("D"): (27, 1, "u"), ord("J"): (23, 1, "u"),
               ord("B"): (31, 1, "u"), ord("F"): (40, 1, "u"), ord("K"): (35, 1, "u")},
    # F Trade Correction: the corrected execution's shares, price, liquidity and match, as E lays
    # them out, then a reason; K Price Correction: the match and its new execution price
    "executed": {ord("E"): (23, 4, "u"), ord("G"): (23, 4, "u"), ord("F"): (23, 4, "u")},
    "exec_price": {ord("E"): (27, 4, "u"), ord("G"): (27, 4, "u"), ord("D"): (32, 4, "u"), ord("F"): (27, 4, "u"),
                   ord("K"): (31, 4, "u")},
    "liquidity": {ord("E"): (31, 1, "u"), ord("G"): (31, 1, "u"), ord("D"): (36, 1, "u"), ord("F"): (31, 1, "u")},
    "match": {ord("E"): (32, 8, "u"), ord("G"): (32, 8, "u"), ord("B"): (23, 8, "u"), ord("F"): (32, 8, "u"),
              ord("K"): (23, 8, "u")},
}

# Inbound (firm -> venue) messages, as kept in ORDER_SENT.raw.
INBOUND_FIELDS: dict[str, dict[bytes, tuple[int, int, str]]] = {
    "side": {ord("O"): (15, 1, "u"), ord("M"): (15, 1, "u")},
    "stock": {ord("O"): (20, 8, "s")},
    "firm": {ord("O"): (36, 4, "s")},
    "display": {ord("O"): (40, 1, "u"), ord("U"): (41, 1, "u")},
    "capacity": {ord("O"): (41, 1, "u")},
    "iso": {ord("O"): (42, 1, "u"), ord("U"): (42, 1, "u")},
    "min_qty": {ord("O"): (43, 4, "u"), ord("U"): (43, 4, "u")},
}


def length_table(lengths: dict[int, int]) -> np.ndarray:
    """int16[256]: each message type's fixed length, 0 for a type of unknown length (not checked)."""
    table = np.zeros(256, np.int16)
    for mtype, length in lengths.items():
        table[mtype] = length
    return table


def held_bytes(raw: np.ndarray, raw_len: np.ndarray, capacity: int) -> np.ndarray:
    """int32 bytes of each framed message the journal holds: its raw_len, cut to the `capacity` of
    the record's raw field and to the SoupBinTCP length prefix (+ its 2 bytes), whichever is least.
    Fields ending past it are not decoded (decode's `held`)."""
    soup = (raw[:, 0].astype(np.int32) << 8 | raw[:, 1]) + 2 if raw.shape[1] >= 2 else np.zeros(len(raw), np.int32)
    return np.minimum(np.minimum(raw_len.astype(np.int32), capacity), soup).astype(np.int32, copy=False)


def be_uint(raw: np.ndarray, rows: np.ndarray, start: int, width: int) -> np.ndarray:
    """Big-endian unsigned integers of `width` bytes at column `start` for the selected rows."""
    block = np.ascontiguousarray(raw[rows, start:start + width])
    if width == 1:
        return block[:, 0].astype(np.int64, copy=False)
    if width in (2, 4, 8):
        return block.view(f">u{width}")[:, 0].astype(np.int64, copy=False)
    out = np.zeros(len(block), dtype=np.int64)
    for i in range(width):                       # odd widths: a loop over bytes, not rows
        out = (out << 8) | block[:, i]
    return out


def decode(raw: np.ndarray, msg_type: np.ndarray, fields: dict, names: list[str] | None = None,
           header: int = SOUP_HEADER, at: np.ndarray | None = None, size: int | None = None,
           held: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Columns for `names` (default all) from framed messages; rows of other types get 0 / b''.
    Per message type, the bytes its fields span are copied out of the wide raw rows once, and
    each field is then read through a big-endian view of that block (one pass over the journal
    rows per type, not per field). With `at`, message i lands at row at[i] of columns `size`
    long (e.g. its place among other records), 0 / b'' elsewhere. `held` (held_bytes): a field
    that does not end within the bytes of its row's framed message is left 0 / b''."""
    n = len(msg_type)
    out_rows = n if at is None else size
    names = names or list(fields)
    out: dict[str, np.ndarray] = {}
    for name in names:
        _, width, kind = next(iter(fields[name].values()))
        out[name] = np.zeros(out_rows, dtype=np.int64) if kind == "u" else np.zeros(out_rows, dtype=f"S{width}")
    if n == 0:
        return out
    counts = np.bincount(msg_type, minlength=256)
    types = sorted({t for name in names for t in fields[name] if counts[t]})
    for mtype in types:
        wanted = [(name, fields[name][mtype]) for name in names if mtype in fields[name]]
        span = max(offset + w for _, (offset, w, _) in wanted)
        rows = slice(None) if counts[mtype] == n else np.flatnonzero(msg_type == mtype)
        dest = rows if at is None else at[rows]
        block = np.ascontiguousarray(raw[rows, header:header + span])
        room = None if held is None else held[rows]
        if room is not None and int(room.min(initial=header + span)) >= header + span:
            room = None                           # every message holds every field: no masks
        for name, (offset, w, kind) in wanted:
            if kind == "s":
                values = block[:, offset:offset + w].view(f"S{w}")[:, 0]
            elif w in (1, 2, 4, 8):
                values = block[:, offset:offset + w].view(f">u{w}")[:, 0]
            else:
                values = be_uint(block, slice(None), offset, w)
            if room is not None:
                values = np.where(room >= header + offset + w, values, np.zeros((), values.dtype))
            out[name][dest] = values
    return out


def message_type(raw: np.ndarray, header: int = SOUP_HEADER) -> np.ndarray:
    """The OUCH message type byte of each framed message."""
    return raw[:, header].astype(np.uint8, copy=False)
