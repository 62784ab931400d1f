"""Text columns for reports: decimal text of integers (ids, counts, price4 amounts) and order
tokens from fixed-width bytes, written by compiled loops straight into Arrow's string buffers
(reports/_numtext.c); no per-row Python, no Arrow cast kernels.

Owns the text forms report fields take from integers: plain decimals ('0', '18446744073709551615'),
fixed-scale decimals ('150.0000', '-0.0005', as Arrow's decimal-to-string cast writes them; the
tests hold the kernels to those casts) and zero-padded fixed widths. Knows nothing of reports;
callers pass values and validity.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reports._numtext_cffi import ffi, lib

MAX_SCALE = lib.NT_MAX_SCALE
NOT_ASCII = lib.NT_NOT_ASCII
_ROW_ROOM = 23                 # bytes a row may need beyond its scale: sign, 20 digits, point, spare


def _ptr(ctype: str, arr: np.ndarray | None):
    return ffi.cast(ctype, ffi.from_buffer(arr)) if arr is not None and len(arr) else ffi.NULL


def _magnitude(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(|v| as uint64, v < 0 as uint8 or None for unsigned input); |INT64_MIN| wraps to 2**63, as it should."""
    v = np.asarray(values)
    if v.dtype.kind == "u":
        return np.ascontiguousarray(v, dtype=np.uint64), None
    v = v.astype(np.int64, copy=False)
    neg = v < 0
    return np.where(neg, -v, v).astype(np.uint64), neg.view(np.uint8)


def integer_text(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Plain decimal text of integers ('-12', '0', '4096'), as Arrow's integer-to-string cast."""
    return scaled_text(values, 0, valid)


def scaled_text(values: np.ndarray, scale: int, valid: np.ndarray | None = None) -> pa.Array:
    """Text of integers already multiplied by 10**scale with exactly `scale` decimals
    ('150.0000', '-0.0005', '0.0000'), as Arrow's decimal128(p, scale)-to-string cast."""
    if not 0 <= scale <= MAX_SCALE:
        raise ValueError(f"numtext.scaled_text: scale {scale} outside 0..{MAX_SCALE}")
    mag, neg = _magnitude(values)
    n = len(mag)
    ok = None if valid is None else np.ascontiguousarray(valid, dtype=bool)
    offsets = np.empty(n + 1, np.int32)
    capacity = n * (scale + _ROW_ROOM)
    data = np.empty(capacity, np.uint8)
    written = lib.nt_scaled_text(_ptr("uint64_t *", mag), _ptr("uint8_t *", neg),
                                 _ptr("uint8_t *", None if ok is None else ok.view(np.uint8)), n, scale,
                                 _ptr("int32_t *", offsets), _ptr("uint8_t *", data), capacity)
    if written < 0:
        raise ValueError("numtext.scaled_text: more text than one string column holds")
    validity = None if ok is None or ok.all() else pa.py_buffer(np.packbits(ok, bitorder="little"))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data[:written]), validity)


def padded_text(values: np.ndarray, width: int, prefix: bytes = b"") -> pa.Array:
    """`prefix` then each non-negative integer zero-padded to `width` digits (width <= 20)."""
    mag, neg = _magnitude(values)
    if neg is not None and neg.any():
        raise ValueError("numtext.padded_text: negative value")
    n, row = len(mag), len(prefix) + width
    if n * row >= 2**31:
        raise ValueError("numtext.padded_text: more text than one string column holds")
    data = np.empty(n * row, np.uint8)
    raw = np.frombuffer(prefix, np.uint8) if prefix else None
    if lib.nt_padded_text(_ptr("uint64_t *", mag), n, width, _ptr("uint8_t *", raw), len(prefix),
                          _ptr("uint8_t *", data)) != 0:
        raise ValueError(f"numtext.padded_text: a value has more than {width} digits (or width outside 1..20)")
    offsets = np.arange(0, (n + 1) * row, row, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def token_text(keys: np.ndarray) -> pa.Array:
    """Strings from an 'S<n>' column of NUL-padded tokens, each up to its first NUL (as Arrow reads
    numpy bytes). ASCII tokens are copied by the kernel; a column with a byte beyond ASCII (venue
    garbage reaches the journal: frames are journaled before they are decoded) has its other rows
    copied the same way and those rows read as UTF-8 with each byte that is not valid UTF-8
    written as a backslash escape ('T\\xff...'), never refused: callers send such rows to rejects
    (non_ascii_tokens) with the bytes shown."""
    width = keys.dtype.itemsize
    raw = np.ascontiguousarray(keys).view(np.uint8)
    n = len(keys)
    offsets = np.empty(n + 1, np.int32)
    data = np.empty(n * width, np.uint8)
    written = lib.nt_token_text(_ptr("uint8_t *", raw), n, width, _ptr("int32_t *", offsets), _ptr("uint8_t *", data))
    if written == NOT_ASCII:
        bad = non_ascii_tokens(keys)
        text = token_text(np.where(bad, b"", keys).astype(keys.dtype))
        escaped = pa.array([token_bytes(k).decode("utf-8", "backslashreplace") for k in keys[bad]], pa.string())
        return pc.replace_with_mask(text, pa.array(bad), escaped)
    if written < 0:
        raise ValueError("numtext.token_text: more text than one string column holds")
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data[:written]))


def token_bytes(key) -> bytes:
    """One token's bytes up to its first NUL (what token_text reads of it)."""
    return bytes(key).split(b"\0", 1)[0]


def non_ascii_tokens(keys: np.ndarray) -> np.ndarray:
    """Which tokens of an 'S<n>' column have a byte beyond ASCII before their first NUL (bool)."""
    width = keys.dtype.itemsize
    raw = np.ascontiguousarray(keys).view(np.uint8)
    if not len(raw) or raw.max() < 0x80:       # the usual case: one pass, no temporaries
        return np.zeros(len(keys), bool)
    raw = raw.reshape(len(keys), width)
    before_nul = np.cumsum(raw == 0, axis=1) == 0
    return ((raw >= 0x80) & before_nul).any(axis=1)


def join_text(parts: list, sep: str = "") -> pa.Array:
    """Each row's parts joined by `sep`, as pyarrow.compute.binary_join_element_wise(*parts, sep):
    a part is a string column or a str (the same on every row); a row with a null part is null.
    One compiled pass straight into the result's buffers (no per-row Python, no compute kernel)."""
    columns = [p for p in parts if not isinstance(p, str)]
    if not columns:
        raise ValueError("numtext.join_text: at least one part must be a column")
    n = len(columns[0])
    if any(len(c) != n or not pa.types.is_string(c.type) for c in columns):
        raise ValueError("numtext.join_text: the columns must be string columns of one length")
    keep, offsets, data, const_len, data_len = [], [], [], [], []
    total = 0
    for part in parts:
        if isinstance(part, str):
            text = part.encode()
            raw = np.frombuffer(text + bytes(lib.NT_PICK_SLACK), np.uint8)     # readable past it: one move a row
            keep.append(raw)
            offsets.append(ffi.NULL)
            data.append(_ptr("uint8_t *", raw))
            const_len.append(len(text))
            data_len.append(len(raw))
            total += n * len(text)
            continue
        _, off_buf, data_buf = part.buffers()
        off = np.frombuffer(off_buf, np.int32)[part.offset:part.offset + n + 1] if n else np.zeros(1, np.int32)
        raw = np.frombuffer(data_buf, np.uint8) if n and data_buf is not None else np.zeros(1, np.uint8)
        keep += [off, raw]
        offsets.append(_ptr("int32_t *", off))
        data.append(_ptr("uint8_t *", raw))
        const_len.append(0)
        data_len.append(len(raw))
        total += int(off[-1]) - int(off[0])
    glue = sep.encode()
    total += n * (len(parts) - 1) * len(glue)
    valid = None
    if any(c.null_count for c in columns):
        valid = np.ones(n, bool)
        for c in columns:
            if c.null_count:
                valid &= c.is_valid().to_numpy(zero_copy_only=False)
    out_offsets = np.empty(n + 1, np.int32)
    out = np.empty(total + lib.NT_PICK_SLACK, np.uint8)
    sep_raw = np.frombuffer(glue, np.uint8) if glue else None
    written = lib.nt_join_text(n, len(parts), ffi.new("int32_t *[]", offsets), ffi.new("uint8_t *[]", data),
                               ffi.new("int64_t[]", const_len), ffi.new("int64_t[]", data_len),
                               _ptr("uint8_t *", sep_raw), len(glue),
                               _ptr("uint8_t *", None if valid is None else valid.view(np.uint8)),
                               _ptr("int32_t *", out_offsets), _ptr("uint8_t *", out), len(out))
    if written < 0:
        raise ValueError("numtext.join_text: more text than one string column holds")
    validity = None if valid is None or valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(n, pa.py_buffer(out_offsets), pa.py_buffer(out[:written]), validity)


def pick_text(indices: np.ndarray, values: tuple) -> pa.Array:
    """A plain string column of `values[indices[i]]` (a tuple of str or None), null where the index
    is -1 or the value None: one compiled copy per row from the table's bytes (no dictionary
    column cast back to strings, no compute kernel)."""
    offsets_table, data_table, present = _pick_table(tuple(values))
    idx = np.asarray(indices)
    if len(idx) and (int(idx.max()) >= len(values) or int(idx.min()) < -1):
        raise ValueError("numtext.pick_text: an index outside the table")
    idx = np.where(present.take(idx + 1), idx, -1).astype(np.int32, copy=False)
    n = len(idx)
    lengths = np.diff(offsets_table)
    capacity = int(lengths.max(initial=0)) * n + lib.NT_PICK_SLACK
    out_offsets = np.empty(n + 1, np.int32)
    out = np.empty(max(capacity, 1), np.uint8)
    written = lib.nt_pick_text(_ptr("int32_t *", idx), n, _ptr("int32_t *", offsets_table),
                               _ptr("uint8_t *", data_table), _ptr("int32_t *", out_offsets), _ptr("uint8_t *", out),
                               len(out))
    if written < 0:
        raise ValueError("numtext.pick_text: more text than one string column holds")
    valid = idx >= 0
    nulls = n - int(np.count_nonzero(valid))
    validity = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.StringArray.from_buffers(n, pa.py_buffer(out_offsets), pa.py_buffer(out[:written]), validity, nulls)


@lru_cache(maxsize=256)
def _pick_table(values: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, bytes) of `values` back to back (None as no bytes; NT_PICK_SLACK zeros after them),
    and which are present after a leading False for index -1."""
    raw = [(v or "").encode() if v is not None else b"" for v in values]
    offsets = np.zeros(len(raw) + 1, np.int32)
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    data = np.frombuffer(b"".join(raw) + bytes(lib.NT_PICK_SLACK), np.uint8).copy()
    return offsets, data, np.array([False] + [v is not None for v in values], bool)
