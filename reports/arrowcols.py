"""Numpy -> Arrow column builders used by every report: exact decimals from price4 integers,
UTC timestamps with validity, dictionary-encoded codes, trimmed strings from fixed-width bytes.

Owns the vectorised conversions (no per-row Python); knows nothing of record types or regulation.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reports import numtext

NS_PER_DAY = 86_400_000_000_000


def decimal(scaled: np.ndarray, scale: int, precision: int = 18, valid: np.ndarray | None = None) -> pa.Array:
    """Exact decimal128(precision, scale) from integers already multiplied by 10**scale."""
    low = np.ascontiguousarray(scaled, dtype=np.int64)
    words = np.empty((len(low), 2), dtype=np.int64)
    words[:, 0] = low
    words[:, 1] = low >> 63                      # sign-extend into the high 64 bits (little-endian)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(low),
                                 [_validity(valid), pa.py_buffer(words)])


def timestamp_utc(ns: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.Array.from_buffers(pa.timestamp("ns", tz="UTC"), len(ns),
                                 [_validity(valid), pa.py_buffer(np.ascontiguousarray(ns, dtype=np.int64))])


def date32(ns: np.ndarray) -> pa.Array:
    return pa.array((np.asarray(ns, dtype=np.int64) // NS_PER_DAY).astype(np.int32, copy=False), type=pa.date32())


def masked(values: np.ndarray, valid: np.ndarray | None = None, type: pa.DataType | None = None) -> pa.Array:
    """pa.array(values, type, mask=~valid) for a numpy column of numbers or booleans: null where not
    `valid`. The validity bitmap is packed by numpy and the values' buffer taken as it is (booleans
    packed), where pa.array converts the mask element by element (a millisecond per 100k rows)."""
    values = np.ascontiguousarray(values)
    if values.dtype.kind not in "biuf" or not values.dtype.isnative:
        raise TypeError(f"masked takes native numbers or booleans, not {values.dtype}")
    data = np.packbits(values, bitorder="little") if values.dtype == bool else values
    return pa.Array.from_buffers(type or pa.from_numpy_dtype(values.dtype), len(values),
                                 [_validity(valid), pa.py_buffer(data)])


def codes(indices: np.ndarray, names: list[str], valid: np.ndarray | None = None) -> pa.Array:
    """A dictionary-encoded string column: `names[indices[i]]`, null where not valid."""
    idx = np.ascontiguousarray(indices, dtype=np.int32)
    dictionary = _names_array(tuple(names))
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(dictionary)):
        # an index out of range (allowed only on a null row): Arrow checks those of the valid rows
        return pa.DictionaryArray.from_arrays(pa.array(idx, mask=None if valid is None else
                                                       ~np.asarray(valid, dtype=bool)), dictionary)
    # every index in range, checked above: Arrow's own check (half a millisecond per 100k rows) skipped
    return pa.DictionaryArray.from_arrays(masked(idx, valid), dictionary, safe=False)


@lru_cache(maxsize=256)
def _names_array(names: tuple) -> pa.Array:
    """A code column's dictionary, built once per name list (a report asks per chunk)."""
    return pa.array(names, type=pa.string())


def lookup_strings(indices: np.ndarray, values: list[str | None]) -> pa.Array:
    """Dictionary-encoded strings `values[indices[i]]`; index -1 or a None value gives null.
    Nothing is materialised per row, and Parquet stores it dictionary-encoded as it is. The
    dictionary holds each distinct value once (duplicates would make the Parquet bytes vary)."""
    remap, dictionary = _lookup_table(tuple(values))
    if dictionary is None:
        return pa.nulls(len(indices), pa.dictionary(pa.int32(), pa.string()))
    idx = np.asarray(indices)
    # the indices given to Arrow are in the dictionary's range by construction: its check is skipped
    if remap is _IDENTITY and len(idx) and 0 <= int(idx.min()) and int(idx.max()) < len(dictionary):
        # values distinct, already in order: the indices are the dictionary's as they are
        return pa.DictionaryArray.from_arrays(masked(idx.astype(np.int32, copy=False)), dictionary, safe=False)
    if remap is _IDENTITY:
        remap = np.arange(-1, len(values), dtype=np.int32)
    mapped = remap.take(idx + 1, mode="clip")         # index -1 (or below) picks the leading -1
    if len(mapped) and int(mapped.min()) < 0:
        valid = mapped >= 0
        indices = masked(np.where(valid, mapped, 0), valid)
    else:
        indices = masked(mapped)
    return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)


@lru_cache(maxsize=256)
def _lookup_table(values: tuple) -> tuple[np.ndarray, pa.Array | None]:
    """(int32 position in the sorted distinct values of each entry of `values`, after a leading -1
    for index -1; the dictionary of those values, None when there are none)."""
    distinct = sorted({v for v in values if v is not None})
    if not distinct:
        return np.zeros(0, np.int32), None
    slot = {v: i for i, v in enumerate(distinct)}
    remap = np.array([-1] + [slot.get(v, -1) if v is not None else -1 for v in values], dtype=np.int32)
    if list(values) == distinct:         # each value once, sorted: index i is dictionary entry i
        remap = _IDENTITY
    return remap, pa.array(distinct, pa.string())


_IDENTITY = np.zeros(0, np.int32)        # _lookup_table's remap when it would map i to i


def plain(arr: pa.Array) -> pa.Array:
    """The values of a dictionary-encoded column as a plain array (for compute kernels)."""
    return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr


def token_strings(keys: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Strings from 'S<n>' order tokens whose padding is already NUL (no spaces inside tokens),
    null where not `valid`: numtext's compiled token text of the valid rows only (so only their
    bytes are read and checked), spread over the column by its offsets."""
    if valid is None:
        return numtext.token_text(keys)
    valid = np.asarray(valid, dtype=bool)
    at = np.flatnonzero(valid)
    n = len(valid)
    if len(at) == n:
        return numtext.token_text(keys)
    if len(at) == 0:
        return pa.nulls(n, pa.string())
    text = numtext.token_text(keys[at])
    lengths = np.zeros(n, np.int32)
    lengths[at] = np.diff(np.frombuffer(text.buffers()[1], np.int32)[text.offset:text.offset + len(at) + 1])
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    start = int(np.frombuffer(text.buffers()[1], np.int32)[text.offset])
    data = text.buffers()[2] or pa.py_buffer(b"")
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), data[start:] if start else data,
                                       _validity(valid), n - len(at))


def row_text(rows: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """A string column of the first `width` bytes (ASCII) of each row of `rows` ((n, w) uint8),
    null where not `valid` (a null keeps its bytes, which Arrow ignores): the bytes become the data
    buffer with fixed-step offsets, with no per-row work or UTF-8 validation pass."""
    n = len(rows)
    if n * width >= 2**31:
        raise ValueError("arrowcols.row_text: more text than one string column holds")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(rows[:, :width]).reshape(-1)
    nulls = 0 if valid is None else n - int(np.count_nonzero(valid))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data),
                                       _validity(valid) if nulls else None, nulls)


def fixed_bytes(column: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Trimmed strings from an 'S<n>' or (n, w) uint8 column (OUCH alpha fields are space-padded)."""
    if column.dtype.kind == "u":
        width = column.shape[1]
        column = np.ascontiguousarray(column).view(f"S{width}")[:, 0]
    arr = pa.array(column, type=pa.binary(), mask=None if valid is None else ~np.asarray(valid, bool))
    return pc.utf8_rtrim(arr.cast(pa.string()), characters=" \x00")


def concat_text(arr: pa.Array) -> memoryview:
    """The values of a string column with no nulls, concatenated: a view of its data buffer
    (no copy, no per-row objects)."""
    if len(arr) == 0:
        return memoryview(b"")
    if arr.null_count:
        raise ValueError("concat_text: the column has nulls")
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], width)[arr.offset:arr.offset + len(arr) + 1]
    return memoryview(arr.buffers()[2])[int(offsets[0]):int(offsets[-1])]


def _value_bytes(arr: pa.Array) -> memoryview | None:
    """The bytes of a string column's values (a dictionary column: its dictionary's), bytes
    behind nulls included; None when there are none."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary
    if len(arr) == 0 or arr.buffers()[2] is None:
        return None
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], width)[arr.offset:arr.offset + len(arr) + 1]
    return memoryview(arr.buffers()[2])[int(offsets[0]):int(offsets[-1])]


def has_any_byte(arr: pa.Array, chars: bytes) -> bool:
    """Whether some value of a string column (a dictionary column: its dictionary) may contain one
    of `chars`: one numpy scan of the data buffer, instead of a regex kernel per value. Bytes
    behind nulls count too, so True can be a false alarm, never False a miss."""
    view = _value_bytes(arr)
    if view is None:
        return False
    data = view.tobytes()
    return any(bytes([c]) in data for c in chars)      # memchr per character


def has_control_byte(arr: pa.Array) -> bool:
    """Whether some value of a string column may hold a byte below 0x20 (a control character):
    one numpy pass; like has_any_byte, a false alarm is possible, a miss is not."""
    view = _value_bytes(arr)
    return view is not None and len(view) > 0 and int(np.frombuffer(view, np.uint8).min()) < 0x20


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype="S1")


def hex_u64(values: np.ndarray) -> pa.Array:
    """16 lowercase hex digits per u64 (e.g. a PTP clock identity), big-endian as printed."""
    raw = np.ascontiguousarray(np.asarray(values, dtype=np.uint64).astype(">u8", copy=False)).view(np.uint8).reshape(-1, 8)
    out = np.empty((len(raw), 16), dtype="S1")
    out[:, 0::2] = _HEX_DIGITS[raw >> 4]
    out[:, 1::2] = _HEX_DIGITS[raw & 15]
    return pa.array(out.view("S16")[:, 0], pa.binary()).cast(pa.string())


def valid_mask(column) -> np.ndarray:
    """Whether each value of an Arrow array or chunked array is not null, as a numpy bool array:
    the validity bitmaps unpacked by numpy (is_valid().to_numpy() builds an Arrow boolean array
    first and converts it, several times slower)."""
    parts = []
    for arr in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]):
        bitmap = arr.buffers()[0] if arr.null_count else None
        if bitmap is None or pa.types.is_null(arr.type):
            parts.append(np.full(len(arr), arr.null_count == 0))
            continue
        bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), count=arr.offset + len(arr), bitorder="little")
        parts.append(bits[arr.offset:].view(bool))
    return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, bool)


def _validity(valid: np.ndarray | None):
    if valid is None:
        return None
    return pa.py_buffer(np.packbits(np.asarray(valid, dtype=bool), bitorder="little"))
