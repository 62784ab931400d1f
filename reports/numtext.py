"""Text columns laid out in numpy: decimal text of integers (ids, counts, price4 amounts) and
order tokens from fixed-width bytes, as Arrow string columns with no per-row Python and no Arrow
cast kernels (digits three at a time from a lookup table into a right-aligned byte matrix, which
one boolean mask turns into the column's data buffer).

Owns the text forms report fields take from integers: plain decimals ('0', '18446744073709551615'),
fixed-scale decimals ('150.0000', '-0.0005', as Arrow's decimal-to-string cast writes them) and
zero-padded fixed widths. Knows nothing of reports; callers pass values and validity.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

_POW10 = np.array([10 ** k for k in range(1, 20)], dtype=np.uint64)     # 10 .. 10**19
_THREE = np.array([[48 + d // 100, 48 + d // 10 % 10, 48 + d % 10] for d in range(1000)], np.uint8)
_TRIPLE = np.ascontiguousarray(_THREE).view("V3")[:, 0]                 # '000' .. '999' as 3-byte items
_THOUSAND = np.uint64(1000)


def _magnitude(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(|v| as uint64, v < 0 or None for unsigned input); |INT64_MIN| wraps to 2**63, as it should."""
    v = np.asarray(values)
    if v.dtype.kind == "u":
        return v.astype(np.uint64, copy=False), None
    v = v.astype(np.int64, copy=False)
    neg = v < 0
    return np.where(neg, -v, v).astype(np.uint64), neg


def digit_count(mag: np.ndarray) -> np.ndarray:
    """Decimal digits of each uint64 (0 has one)."""
    return 1 + np.searchsorted(_POW10, mag, side="right")


def digits(mag: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of each uint64, zero-padded on the left (width <= 20).
    Three digits per step, each step written to a contiguous row of triples (a strided write
    into the (n, width) matrix costs twice as much), transposed once at the end."""
    steps = -(-width // 3)
    triples = np.empty((steps, len(mag)), _TRIPLE.dtype)
    q = mag
    for at in range(steps - 1, -1, -1):         # a loop over digit triples, not rows
        d = q // _THOUSAND                      # (q % 1000 would not use the fast constant division)
        np.take(_TRIPLE, q - d * _THOUSAND, out=triples[at])
        q = d
    return np.ascontiguousarray(triples.T).view(np.uint8).reshape(len(mag), 3 * steps)[:, 3 * steps - width:]


def _column(matrix: np.ndarray, lengths: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """A string column of the last `lengths[i]` bytes of each row of `matrix` (null where not valid)."""
    n, width = matrix.shape
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        lengths = np.where(valid, lengths, 0)
    if n and lengths.min() == width:             # every row the full width: the matrix as it is
        data = np.ascontiguousarray(matrix).reshape(-1)
    else:
        data = matrix[np.arange(width) >= (width - lengths)[:, None]]
    validity = None if valid is None or valid.all() else \
        pa.py_buffer(np.packbits(valid, bitorder="little"))
    return _strings(lengths, data, validity)


def _strings(lengths: np.ndarray, data: np.ndarray, validity=None) -> pa.Array:
    """A string column over `data` (the values back to back) cut at `lengths`."""
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("numtext: more text than one string column holds")
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data),
                                       validity)


def integer_text(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Plain decimal text of integers ('-12', '0', '4096'), as Arrow's integer-to-string cast."""
    return scaled_text(values, 0, valid)


def scaled_text(values: np.ndarray, scale: int, valid: np.ndarray | None = None) -> pa.Array:
    """Text of integers already multiplied by 10**scale with exactly `scale` decimals
    ('150.0000', '-0.0005', '0.0000'), as Arrow's decimal128(p, scale)-to-string cast."""
    mag, neg = _magnitude(values)
    n = len(mag)
    ndig = np.maximum(digit_count(mag), scale + 1)       # at least one digit before the point
    width_digits = int(ndig.max()) if n else scale + 1
    d = digits(mag, width_digits)
    point = 1 if scale else 0
    width = 1 + width_digits + point                      # room for a sign
    out = np.empty((n, width), np.uint8)
    out[:, 1:width - scale - point] = d[:, :width_digits - scale]
    if scale:
        out[:, width - scale - 1] = ord(".")
        out[:, width - scale:] = d[:, width_digits - scale:]
    lengths = ndig + point
    if neg is not None and neg.any():
        rows = np.flatnonzero(neg)
        lengths = lengths + neg
        out[rows, width - lengths[rows]] = ord("-")
    return _column(out, lengths, valid)


def padded_text(values: np.ndarray, width: int, prefix: bytes = b"") -> pa.Array:
    """`prefix` then each non-negative integer zero-padded to `width` digits (width <= 20)."""
    mag, neg = _magnitude(values)
    if neg is not None and neg.any():
        raise ValueError("numtext.padded_text: negative value")
    used = int(digit_count(mag).max()) if len(mag) else 0
    if used > width:
        raise ValueError(f"numtext.padded_text: a value has more than {width} digits")
    out = np.empty((len(mag), len(prefix) + width), np.uint8)
    out[:, :len(prefix)] = np.frombuffer(prefix, np.uint8)
    out[:, len(prefix):len(prefix) + width - used] = ord("0")     # leading zeros of every row
    out[:, len(prefix) + width - used:] = digits(mag, used)
    return _column(out, np.full(len(mag), out.shape[1]), None)


def token_text(keys: np.ndarray) -> pa.Array:
    """Strings from an 'S<n>' column of NUL-padded tokens, each up to its first NUL (as Arrow reads
    numpy bytes). Lengths come from numpy's own string length (trailing NULs off); a token with a
    NUL inside or a byte beyond ASCII (one numpy pass finds either) goes through Arrow's own
    reading and validating cast instead, which refuses invalid UTF-8 as before."""
    width = keys.dtype.itemsize
    raw = np.ascontiguousarray(keys).view(np.uint8).reshape(len(keys), width)
    lengths = np.strings.str_len(keys)
    data = raw[np.arange(width) < lengths[:, None]]
    if len(data) and (data.max() >= 0x80 or data.min() == 0):
        return pa.array(keys, type=pa.binary()).cast(pa.string())
    return _strings(lengths, data)
