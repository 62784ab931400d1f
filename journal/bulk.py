"""Bulk reads into numpy: one C pass over a sequence range fills header columns of every data
record (mmj_reader_scan), and payloads of chosen records are gathered into dense arrays
(mmj_reader_gather), so reports build per-type tables from one scan without a Python loop.

Owns Columns and the array plumbing; must not know record meanings beyond the catalogue's
dtypes. Used by reader.Reader (scan, read_fixed); knows nothing of writers or tailers.
"""
from __future__ import annotations

import dataclasses
import mmap
import threading

import numpy as np

from journal._journal_cffi import ffi, lib
from journal.errors import PayloadSizeError, check, error_for

COLUMN_DTYPES = {"seq": np.uint64, "rtype": np.uint16, "ts_ns": np.int64, "ts_source": np.uint8,
                 "clock_state": np.uint8, "length": np.uint32, "pos": np.uint64}
_C_TYPES = {"seq": "uint64_t *", "rtype": "uint16_t *", "ts_ns": "int64_t *", "ts_source": "uint8_t *",
            "clock_state": "uint8_t *", "length": "uint32_t *", "pos": "uint64_t *"}


def populated_empty(count: int, dtype) -> np.ndarray:
    """An uninitialised array; large ones are pre-faulted in one mmap(MAP_POPULATE) call, which
    costs a fraction of taking one page-fault trap per page while the C scan fills it. While an
    Arena is active on this thread, the array is carved from the arena's buffers instead."""
    dtype = np.dtype(dtype)
    nbytes = count * dtype.itemsize
    arena = getattr(_ACTIVE, "arena", None)
    if arena is not None:
        return np.frombuffer(arena.take(nbytes), dtype=dtype, count=count)
    if nbytes < (1 << 20):
        return np.empty(count, dtype=dtype)
    return np.frombuffer(_populated(nbytes), dtype=dtype, count=count)


def _populated(nbytes: int) -> mmap.mmap:
    return mmap.mmap(-1, max(nbytes, 1),
                     flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0))


_ACTIVE = threading.local()


class Arena:
    """Caller-owned buffers reused by the bulk reads of a loop over chunks. Fresh anonymous memory
    is dear (every page is zeroed and mapped by the kernel, on some hosts backed lazily by the
    hypervisor too), so instead of mapping new memory per chunk, while the arena is active on a
    thread (`with arena:`) the k-th array that scan, gather or read_fixed returns there reuses the
    arena's k-th buffer (grown, with a quarter to spare, when too small). Arrays from one `with`
    block are overwritten in the next: copy what must outlive it."""

    SPARE = 1.25

    def __init__(self):
        self.buffers: list[mmap.mmap] = []
        self.next = 0

    def __enter__(self) -> "Arena":
        if getattr(_ACTIVE, "arena", None) is not None:
            raise RuntimeError("an Arena is already active on this thread")
        _ACTIVE.arena = self
        self.next = 0
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.arena = None

    def take(self, nbytes: int) -> mmap.mmap:
        k = self.next
        self.next += 1
        if k == len(self.buffers):
            self.buffers.append(_populated(int(nbytes * self.SPARE)))
        elif len(self.buffers[k]) < nbytes:
            self.buffers[k] = _populated(int(nbytes * self.SPARE))   # arrays of earlier uses keep the old one
        return self.buffers[k]


@dataclasses.dataclass(frozen=True)
class Columns:
    """Header columns of the data records of a range, in sequence order; a column not asked for
    is None. `pos` is a handle of each payload for `gather` (valid while the reader is open)."""

    seq: np.ndarray | None
    rtype: np.ndarray | None
    ts_ns: np.ndarray | None
    ts_source: np.ndarray | None
    clock_state: np.ndarray | None
    length: np.ndarray | None
    pos: np.ndarray | None

    def __len__(self) -> int:
        return next(len(c) for c in dataclasses.astuple(self) if c is not None)


def scan(handle, first: int, last: int, fields=tuple(COLUMN_DTYPES)) -> Columns:
    """Columns of every data record with first <= seq <= last (bounds inside the snapshot)."""
    unknown = set(fields) - set(COLUMN_DTYPES)
    if unknown or not fields:
        raise ValueError(f"scan fields must be some of {list(COLUMN_DTYPES)}, not {sorted(unknown) or fields}")
    cap = max(0, last - first + 1)   # data sequences have no gaps
    arrays = {name: populated_empty(cap, dtype) if name in fields else None for name, dtype in COLUMN_DTYPES.items()}
    ptrs = [ffi.cast(_C_TYPES[name], ffi.from_buffer(a)) if a is not None and cap else ffi.NULL
            for name, a in arrays.items()]
    rows = ffi.new("uint64_t *")
    if cap:
        check(lib.mmj_reader_scan(handle, first, last, cap, *ptrs, rows), "scan")
    return Columns(**{name: (a[:rows[0]] if a is not None else None) for name, a in arrays.items()})


def gather(handle, pos: np.ndarray, dtype, with_header: bool = False, header_size: int = 0) -> np.ndarray:
    """Rows of `dtype` filled from the payloads at `pos` (a scan's handles); with_header puts the
    read_fixed row header (header_size bytes) before each payload."""
    dtype = np.dtype(dtype)
    pos = np.ascontiguousarray(pos, dtype=np.uint64)
    out = populated_empty(len(pos), dtype)
    size = dtype.itemsize - (header_size if with_header else 0)
    if len(pos):
        check(lib.mmj_reader_gather(handle, ffi.cast("uint64_t *", ffi.from_buffer(pos)), len(pos), size,
                                    ffi.from_buffer("char[]", out), dtype.itemsize, 1 if with_header else 0),
              "gather")
    return out


class TypeCounts:
    """How many data records of each type the last range asked for holds, from one scan of the
    type column, so read_fixed of several types over one range allocates exactly and fills each
    type in one pass (instead of a counting pass per type)."""

    def __init__(self):
        # ((first, last), counts) as one value: threads sharing a reader (a report reads its
        # venue session beside a chunk's decode) never see one range's key with another's counts
        self.cached = None

    def clear(self) -> None:
        self.cached = None

    def count(self, handle, rtype: int, first: int, last: int) -> int:
        cached = self.cached
        if cached is None or cached[0] != (first, last):
            types = scan(handle, first, last, fields=("rtype",)).rtype
            cached = self.cached = ((first, last), np.bincount(types, minlength=1 << 16))
        return int(cached[1][rtype])


def read_fixed(handle, counts: TypeCounts, rtypes, dtypes, first: int, last: int) -> dict:
    """{rtype: rows} with rows (20-byte header + payload, as that type's dtype) of every record of
    each type in [first, last]: counts come from `counts`, one C pass fills every type."""
    rtypes = [int(t) for t in rtypes]
    outs = {t: populated_empty(counts.count(handle, t, first, last), dtype) for t, dtype in zip(rtypes, dtypes)}
    n = len(rtypes)
    keep = [ffi.from_buffer("char[]", outs[t]) if len(outs[t]) else ffi.NULL for t in rtypes]
    rows = ffi.new("uint64_t[]", max(n, 1))
    check(lib.mmj_reader_read_fixed_many(handle, n, ffi.new("uint32_t[]", rtypes),
                                         ffi.new("uint64_t[]", [d.itemsize - 20 for d in dtypes]), first, last,
                                         ffi.new("char *[]", keep), ffi.new("uint64_t[]", [len(outs[t]) for t in rtypes]),
                                         rows), "read_fixed")
    return {t: outs[t][:rows[k]] for k, t in enumerate(rtypes)}


def read_fixed_sized(handle, rtype: int, dtype, earlier: tuple[int, ...], first: int, last: int,
                     header_size: int) -> np.ndarray:
    """Rows of `dtype` (header_size bytes of row header, then the current payload) of every record
    of `rtype` in [first, last], whose payloads have the current size or one of the `earlier`
    (shorter) sizes: those rows hold their bytes and zeros after them. The path read_fixed takes
    when a range holds records of an earlier layout (one scan, one gather per size)."""
    dtype = np.dtype(dtype)
    cols = scan(handle, first, last, fields=("rtype", "length", "pos"))
    mine = cols.rtype == rtype
    lengths, pos = cols.length[mine], cols.pos[mine]
    sizes = (dtype.itemsize - header_size, *earlier)
    odd = ~np.isin(lengths, sizes)
    if odd.any():
        raise error_for(lib.MMJ_E_PAYLOAD_SIZE, f"read_fixed: a record of type {rtype} has "
                                                f"{int(lengths[odd][0])} payload bytes")
    out = np.zeros(len(pos), dtype)
    as_bytes = out.view(np.uint8).reshape(len(pos), dtype.itemsize)
    for size in sizes:
        sel = np.flatnonzero(lengths == size)
        if len(sel):
            part = gather(handle, pos[sel], np.dtype((np.void, header_size + size)), with_header=True,
                          header_size=header_size)
            as_bytes[sel, :header_size + size] = part.view(np.uint8).reshape(len(sel), header_size + size)
    return out
