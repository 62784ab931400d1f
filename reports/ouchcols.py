"""OUCH fields of journaled messages decoded by the compiled kernel (reports/_orderjoin.c): the
same columns as ouch.decode, its numpy reference, every field in one C pass over the rows.

Owns the per-field lookup tables (offset and width by message type) built from ouch.py's field
layouts; knows nothing of reports.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from reports import ouch
from reports._orderjoin_cffi import ffi, lib
from reports.errors import KernelInputError


@lru_cache(maxsize=None)
def _table(layout: tuple, header: int) -> tuple[np.ndarray, np.ndarray, int, str]:
    """(offset by type incl. the framing header, -1 where absent; width by type; width; kind)."""
    offset = np.full(256, -1, np.int32)
    width = np.zeros(256, np.int32)
    widths, kinds = set(), set()
    for mtype, (at, w, kind) in layout:
        offset[mtype], width[mtype] = header + at, w
        widths.add(w)
        kinds.add(kind)
    if len(kinds) != 1 or (kinds == {"s"} and len(widths) != 1) or max(widths) > 8 and kinds == {"u"}:
        raise KernelInputError(f"a field must have one kind, and one width if it is bytes: {layout}")
    return offset, width, max(widths), kinds.pop()


def _address(arr: np.ndarray, ctype: str):
    return ffi.cast(ctype, arr.__array_interface__["data"][0])


class FieldSet:
    """OUCH `names` of `fields` (message bodies after a `header`-byte frame) as the C kernels'
    oj_field_set, writing into `out` ({name: array}, int64 or S<width>; a uint8 array takes an
    integer field as one byte); `row_bytes`: the message bytes a row holds, which every field must
    fit in. Holds the tables and buffers the struct points to."""

    def __init__(self, fields: dict, out: dict[str, np.ndarray], header: int = ouch.SOUP_HEADER,
                 row_bytes: int | None = None, types: np.ndarray | None = None):
        """`types` (bool[256]): only the message types that occur must fit in `row_bytes`."""
        offsets, widths, out_widths = [], [], []
        for name, column in out.items():
            offset, width, w, kind = _table(tuple(sorted(fields[name].items())), header)
            ends = offset + width if types is None else (offset + width)[types]
            if row_bytes is not None and int(ends.max(initial=0)) > row_bytes:
                raise KernelInputError(f"{name} runs past the {row_bytes} bytes of the rows")
            if kind == "u":
                if column.dtype != np.int64 and not (column.dtype == np.uint8 and w == 1):
                    raise KernelInputError(f"{name}: a {w}-byte integer field goes to int64"
                                           f"{' or uint8' if w == 1 else ''}, not {column.dtype}")
                out_widths.append(0 if column.dtype == np.int64 else -1)
            elif column.dtype != np.dtype(f"S{w}"):
                raise KernelInputError(f"{name}: {w} bytes go to S{w}, not {column.dtype}")
            else:
                out_widths.append(w)
            offsets.append(offset)
            widths.append(width)
        self.out = out
        self._keep = [np.concatenate(offsets) if offsets else np.zeros(0, np.int32),
                      np.concatenate(widths) if widths else np.zeros(0, np.int32),
                      ffi.new("int64_t[]", out_widths or [0]),
                      ffi.new("uint8_t *[]", [_address(a, "uint8_t *") for a in out.values()] or [ffi.NULL])]
        self.struct = ffi.new("oj_field_set *", {
            "nfields": len(out), "offset": ffi.from_buffer("int32_t[]", self._keep[0]),
            "width": ffi.from_buffer("int32_t[]", self._keep[1]), "out_width": self._keep[2], "out": self._keep[3]})


def decode(raw: np.ndarray, msg_type: np.ndarray, fields: dict, names: list[str] | None = None,
           header: int = ouch.SOUP_HEADER, at: np.ndarray | None = None, size: int | None = None,
           held: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """As ouch.decode: columns for `names` (default all) of `fields`, int64 or S<width>, 0 / b''
    for rows whose type lacks the field; with `at`, message i lands at row at[i] of `size` rows;
    with `held` (ouch.held_bytes), 0 / b'' for a field ending past the bytes its message holds."""
    n = len(msg_type)
    if raw.ndim != 2 or raw.dtype != np.uint8 or (n and raw.strides[1] != 1) or len(raw) != n:
        raise KernelInputError("raw must be (rows, width) uint8 with contiguous bytes per row, one row per message")
    types = np.ascontiguousarray(msg_type, np.uint8)
    dest = None if at is None else np.ascontiguousarray(at, np.int64)
    if dest is not None and len(dest) != n:
        raise KernelInputError("at must give one row per message")
    if dest is not None and n and (size is None or int(dest.min()) < 0 or int(dest.max()) >= size):
        raise KernelInputError("at must lie in [0, size)")
    room = None if held is None else np.ascontiguousarray(held, np.int32)
    if room is not None and len(room) != n:
        raise KernelInputError("held must give one byte count per message")
    out = {}
    for name in names or list(fields):
        _, _, w, kind = _table(tuple(sorted(fields[name].items())), header)
        out[name] = np.zeros(n if at is None else size, dtype=np.int64 if kind == "u" else f"S{w}")
    field_set = FieldSet(fields, out, header, row_bytes=raw.shape[1],
                         types=np.bincount(types, minlength=256) > 0)
    if n and out:          # every field in one pass over the rows
        rc = lib.oj_fields(n, _address(raw, "uint8_t *"), raw.strides[0], ffi.from_buffer("uint8_t[]", types),
                           ffi.NULL if dest is None else ffi.from_buffer("int64_t[]", dest),
                           ffi.NULL if room is None else ffi.from_buffer("int32_t[]", room), field_set.struct)
        if rc:
            raise KernelInputError(f"cannot decode {len(out)} fields at once (code {rc})")
    return out
