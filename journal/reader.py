"""Readers and tailers: Python wrappers over mmj_reader_* and mmj_tailer_*.

Owns Record, bulk numpy reads (one C scan fills the array; no per-record Python loop), and the
tailer's blocking wait (the C call releases the GIL). Must not repair a journal, and must not
know record meanings beyond the catalogue's dtypes.
"""
from __future__ import annotations

import operator
import os
import re
import threading
import time
from contextlib import contextmanager
from typing import Iterator, NamedTuple

import numpy as np

from journal import bulk
from journal._journal_cffi import ffi, lib
from journal.catalogue import EARLIER_SIZES, HEADER_DTYPE, PAYLOAD_DTYPES
from journal.errors import (InvalidArgument, JournalClosed, JournalCorrupt, PayloadSizeError, check, error_for,
                            open_context, reason_text)


_WAIT_SLICE_S = 0.1
# Records Reader.records() reads per hold of the handle: the hold's two lock round trips spread
# over many records, while a reader closed meanwhile waits for at most this many.
_RECORDS_PER_CALL_RUN = 64


_SEQ_MAX = 2**64 - 1     # sequences are uint64 in the C core


def _seq_error(name: str, value) -> InvalidArgument:
    return InvalidArgument(f"{name} must be a sequence number: an integer in 0..2**64-1, not {value!r}")


def _seq_arg(name: str, value) -> int | None:
    """value (None passes) as a sequence for the C core: an integer in 0..2**64-1, else
    InvalidArgument naming the argument (cffi would raise an untyped OverflowError or TypeError)."""
    if value is None:
        return None
    try:
        seq = operator.index(value)
    except TypeError:
        raise _seq_error(name, value) from None
    if not 0 <= seq <= _SEQ_MAX:
        raise _seq_error(name, value)
    return seq


class Record(NamedTuple):
    seq: int
    rtype: int
    ts_ns: int
    ts_source: int
    clock_state: int
    payload: bytes


def _record(rec) -> Record:
    return Record(rec.seq, rec.rtype, rec.ts_ns, rec.ts_source, rec.clock_state,
                  ffi.unpack(ffi.cast("char *", rec.payload), rec.length))


def row_dtype(rtype: int) -> np.dtype:
    """HEADER_DTYPE's fields followed by the type's payload fields, packed as C writes rows."""
    payload = PAYLOAD_DTYPES.get(rtype)
    if payload is None:
        raise InvalidArgument(f"record type {rtype} has no fixed layout; use read_blobs")
    clash = set(HEADER_DTYPE.names) & set(payload.names)
    if clash:
        raise InvalidArgument(f"payload fields {sorted(clash)} collide with header fields")
    names, formats, offsets = [], [], []
    for base, dtype in ((0, HEADER_DTYPE), (HEADER_DTYPE.itemsize, payload)):
        for name in dtype.names:
            fmt, off = dtype.fields[name][:2]
            names.append(name)
            formats.append(fmt)
            offsets.append(base + off)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": HEADER_DTYPE.itemsize + payload.itemsize})


def damage_behind_summary(path: str, stop: dict, found_by: str, then: str) -> str:
    """The message for an invalid record a writer's open trusted past (`stop` as Reader.stopped):
    in group and sync modes a sealed segment's durable summary is believed without reading the
    segment, so bit rot or tampering inside it is found only by a reader, and a writer would go
    on appending records no reader reaches. Names the place and the way on: verify, then move
    that segment's summary aside so the next writer open reads the segment and keeps what follows
    the damage in discarded/. `found_by` says who found it, `then` what to run again."""
    segment = f"seg-{stop['segment']:016d}"
    return (f"{path}: {found_by} stopped before seq {stop['seq']} ({stop['reason']} at segment "
            f"{stop['segment']} offset {stop['offset']}), behind a sealed segment the writer trusted "
            f"from its summary. Run `mmaudit journal verify {path}`; to have the writer keep what "
            f"follows the damage in discarded/ and continue from the valid prefix, move {segment}.sum "
            f"out of the journal directory and remove its DAMAGED file if a writer left one (the writer "
            f"then reads that segment) and {then}")


class Reader:
    """A read-only snapshot of a journal (refresh() to see newer records). Never repairs: it
    stops at the first invalid record, or where segments are missing (see `.stopped`).

    Sealed segments with a believed summary (journal.h SEGMENT SUMMARY) are opened without a
    scan and checked when first read; `full_scan=True` scans every segment at open instead."""

    def __init__(self, path, *, full_scan: bool = False):
        self.path = os.fspath(path)
        # The C calls release the GIL: close() must not free the mapping under a call another
        # thread is inside. It marks the reader closed (new calls raise JournalClosed) and frees
        # it when the last call in progress has returned.
        self._calls = 0
        self._idle = threading.Condition(threading.Lock())
        handle = ffi.new("mmj_reader **")
        err = ffi.new("int *")
        flags = lib.MMJ_READER_FULL_SCAN if full_scan else 0
        status = lib.mmj_reader_open_ex(os.fsencode(self.path), flags, handle, err)
        check(status, open_context(self.path, err[0]), err[0])
        self._r = handle[0]
        self._types = bulk.TypeCounts()
        salt = ffi.new("uint8_t[16]")
        lib.mmj_reader_salt(self._r, salt)
        self.journal_id = bytes(ffi.buffer(salt)).hex()

    def _enter(self):
        """The C handle, counted as in use until the matching _leave()."""
        with self._idle:
            if self._r == ffi.NULL:
                raise JournalClosed("reader is closed", status=lib.MMJ_E_CLOSED)
            self._calls += 1
            return self._r

    def _leave(self) -> None:
        with self._idle:
            self._calls -= 1
            if not self._calls:
                self._idle.notify_all()

    @contextmanager
    def _using(self):
        handle = self._enter()
        try:
            yield handle
        finally:
            self._leave()

    def _call(self, fn, *args):
        """fn(handle, *args) with the handle held in use."""
        with self._using() as handle:
            return fn(handle, *args)

    def refresh(self) -> None:
        check(self._call(lib.mmj_reader_refresh), "refresh")
        self._types.clear()

    @property
    def first_seq(self) -> int:
        first, _ = self._range()
        return first

    @property
    def last_seq(self) -> int:
        """The last readable data sequence (first_seq - 1 when empty)."""
        _, last = self._range()
        return last

    def __len__(self) -> int:
        first, last = self._range()
        return max(0, last - first + 1)

    def _range(self) -> tuple[int, int]:
        first = ffi.new("uint64_t *")
        last = ffi.new("uint64_t *")
        self._call(lib.mmj_reader_range, first, last)
        return first[0], last[0]

    @property
    def unchecked_segments(self) -> int:
        """Segments opened from their summary whose records have not been read (so not checked) yet."""
        return self._call(lib.mmj_reader_unchecked)

    @property
    def stopped(self) -> dict | None:
        """Where the snapshot ended early, or None: an invalid record or segment header, or
        ("missing segment", offset 0) a last segment that is sealed where the journal does not end
        (a segment file after a gap, or LOCK naming another end: journal.h THE END OF THE JOURNAL)."""
        reason = ffi.new("int32_t *")
        seg = ffi.new("uint64_t *")
        off = ffi.new("uint64_t *")
        self._call(lib.mmj_reader_stop, reason, seg, off)
        if not reason[0]:
            return None
        return {"reason": reason_text(reason[0]), "segment": seg[0], "offset": off[0], "seq": self.last_seq + 1}

    def segments(self) -> list[dict]:
        out = []
        vals = ffi.new("uint64_t[4]")
        sealed = ffi.new("int32_t *")
        with self._using() as handle:
            for slot in range(lib.mmj_reader_segments(handle)):
                check(lib.mmj_reader_segment_info(handle, slot, vals, vals + 1, vals + 2, sealed, vals + 3),
                      "segment")
                out.append({"index": vals[0], "first_seq": vals[1], "records": vals[2],
                            "sealed": bool(sealed[0]), "size": vals[3]})
        return out

    def get(self, seq: int) -> Record:
        rec = ffi.new("mmj_record *")
        with self._using() as handle:      # the payload is copied out before the handle is let go
            try:
                status = lib.mmj_reader_get(handle, seq, rec)
            except (OverflowError, TypeError):     # checked only when cffi refuses it: get stays cheap
                raise _seq_error("seq", seq) from None
            if status < 0:
                raise error_for(status, f"get seq {seq}")
            return _record(rec)

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def records(self, first_seq: int | None = None, last_seq: int | None = None, rtypes=None,
                include_control: bool = False) -> Iterator[Record]:
        """Records in sequence order; CHECKPOINT/SEAL only with include_control."""
        first_seq, last_seq = _seq_arg("first_seq", first_seq), _seq_arg("last_seq", last_seq)
        wanted = None if rtypes is None else frozenset(int(t) for t in rtypes)
        pos = ffi.new("mmj_pos *")
        rec = ffi.new("mmj_record *")
        check(self._call(lib.mmj_reader_seek, first_seq or 0, pos), "seek")
        stop = last_seq if last_seq is not None else self.last_seq
        nxt = lib.mmj_reader_next
        control = 1 if include_control else 0
        while True:
            # in use for a run of records at a time, never across a yield (the consumer may close
            # the reader); the records are copied out first, and any error is raised only after
            # the records before it were yielded
            batch, done, error = [], False, None
            handle = self._enter()
            try:
                for _ in range(_RECORDS_PER_CALL_RUN):
                    status = nxt(handle, pos, control, rec)
                    if status == lib.MMJ_END:
                        done = True
                        break
                    check(status, "next")
                    if rec.seq > stop and (not rec.flags or last_seq is not None):
                        done = True    # (trailing CHECKPOINT/SEAL records carry the next sequence)
                        break
                    if (first_seq is not None and rec.seq < first_seq) or \
                            (wanted is not None and rec.rtype not in wanted):
                        continue
                    batch.append(_record(rec))
            except Exception as exc:      # noqa: BLE001 (re-raised below, after the batch)
                error, done = exc, True
            finally:
                self._leave()
            yield from batch
            if error is not None:
                raise error
            if done:
                return

    def _bounds(self, first_seq, last_seq) -> tuple[int, int]:
        first, last = self._range()
        return (first if first_seq is None else first_seq), (last if last_seq is None else last_seq)

    def _clamped(self, first_seq, last_seq) -> tuple[int, int]:
        """The range asked (each bound checked as records() checks it: InvalidArgument, not
        cffi's untyped errors), clamped to the journal's: bulk reads of a range past either end
        read what there is, as records() does."""
        lo, hi = self._range()
        first, last = self._bounds(_seq_arg("first_seq", first_seq), _seq_arg("last_seq", last_seq))
        return max(first, lo), min(last, hi)

    def scan(self, first_seq: int | None = None, last_seq: int | None = None,
             fields=tuple(bulk.COLUMN_DTYPES)) -> bulk.Columns:
        """Header columns (seq, rtype, ts_ns, ts_source, clock_state, length, pos) of every data
        record in [first_seq, last_seq], all types, filled by one C pass; `gather` turns the pos
        handles of chosen rows into payload arrays."""
        first, last = self._clamped(first_seq, last_seq)
        with self._using() as handle:
            return bulk.scan(handle, first, last, fields)

    def gather(self, pos: np.ndarray, dtype) -> np.ndarray:
        """The payloads at `pos` (from scan) as rows of `dtype` (dtype.itemsize bytes of each)."""
        with self._using() as handle:
            return bulk.gather(handle, pos, dtype)

    def read_fixed(self, rtype: int, first_seq: int | None = None, last_seq: int | None = None) -> np.ndarray:
        """Every data record of a fixed-size type in [first_seq, last_seq] as one structured array
        (HEADER_DTYPE fields + the type's payload fields): the per-type counts of the range come
        from one scan (kept for the next type asked over the same range), then one C pass fills
        the rows."""
        return self.read_fixed_many([rtype], first_seq, last_seq)[int(rtype)]

    def read_fixed_many(self, rtypes, first_seq: int | None = None, last_seq: int | None = None) -> dict:
        """{rtype: read_fixed(rtype, ...)} for several fixed-size types, filled in one C pass over
        the range (what report builders want: every type of one range)."""
        first, last = self._clamped(first_seq, last_seq)
        rtypes = list(dict.fromkeys(int(t) for t in rtypes))
        with self._using() as handle:
            try:
                return bulk.read_fixed(handle, self._types, rtypes, [row_dtype(t) for t in rtypes], first, last)
            except PayloadSizeError:
                # records of an earlier, shorter layout (catalogue.EARLIER_SIZES): widened to the
                # current one, read by themselves; any other size is still an error
                widened = [t for t in rtypes if t in EARLIER_SIZES]
                if not widened:
                    raise
                rest = [t for t in rtypes if t not in EARLIER_SIZES]
                out = bulk.read_fixed(handle, self._types, rest, [row_dtype(t) for t in rest], first, last)
                for t in widened:
                    out[t] = bulk.read_fixed_sized(handle, t, row_dtype(t), EARLIER_SIZES[t], first, last,
                                                   HEADER_DTYPE.itemsize)
                return {t: out[t] for t in rtypes}

    def read_blobs(self, rtype: int | None, first_seq: int | None = None,
                   last_seq: int | None = None) -> tuple[np.ndarray, bytes, np.ndarray]:
        """(headers[HEADER_DTYPE], payload bytes concatenated, offsets[rows+1]) for one type, or
        for every data record in sequence order with rtype None."""
        first, last = self._bounds(_seq_arg("first_seq", first_seq), _seq_arg("last_seq", last_seq))
        rtype = lib.MMJ_RTYPE_ANY if rtype is None else rtype
        rows = ffi.new("uint64_t *")
        nbytes = ffi.new("uint64_t *")
        with self._using() as handle:
            check(lib.mmj_reader_read_blobs(handle, rtype, first, last, ffi.NULL, ffi.NULL, ffi.NULL, 0, 0,
                                            rows, nbytes), "read_blobs")
            headers = bulk.populated_empty(rows[0], HEADER_DTYPE)
            blob = bytearray(nbytes[0])
            offsets = np.zeros(rows[0] + 1, dtype=np.uint64)
            if rows[0]:
                check(lib.mmj_reader_read_blobs(
                    handle, rtype, first, last, ffi.from_buffer("char[]", headers),
                    ffi.from_buffer("char[]", blob) if blob else ffi.NULL,
                    ffi.cast("uint64_t *", ffi.from_buffer(offsets)), rows[0], nbytes[0], rows, nbytes),
                    "read_blobs")
        return headers, bytes(blob), offsets

    def close(self) -> None:
        """Close the snapshot: calls from now on raise JournalClosed; calls other threads are
        inside finish first (close waits for them), then the mapping is freed."""
        with self._idle:
            if self._r == ffi.NULL:
                return
            r, self._r = self._r, ffi.NULL
            while self._calls:
                self._idle.wait()
        self._types.clear()
        lib.mmj_reader_close(r)

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_r", ffi.NULL) != ffi.NULL:
            self.close()


def _tailer_stop(handle) -> tuple[int, int, int]:
    """(reason, segment, offset) of where a failed mmj_tailer_next stopped (mmj_tailer_stop)."""
    reason = ffi.new("int32_t *")
    seg = ffi.new("uint64_t *")
    off = ffi.new("uint64_t *")
    lib.mmj_tailer_stop(handle, reason, seg, off)
    return reason[0], seg[0], off[0]


def _stop_text(stop: tuple[int, int, int] | None) -> str:
    """What a tailer's stop says: the segment, and why nothing past it is handed out."""
    reason, seg, off = stop or (0, 0, 0)
    if reason == lib.MMJ_R_MISSING_SEGMENT:
        return (f": segment {seg} is missing (a later segment exists, or LOCK names another end), so the "
                f"records after the gap are not handed out; `mmaudit journal verify` names it")
    if reason == lib.MMJ_R_NO_EOS:
        return (f": segment {seg} ends at offset {off} without SEAL and EOS while later segments hold "
                f"records, so they are not handed out; `mmaudit journal verify` names it")
    if reason:
        return f": {reason_text(reason)} at segment {seg} offset {off}"
    return ""


def _tail_context(path: str, position: int, status: int, stop: tuple[int, int, int] | None = None) -> str:
    if status != lib.MMJ_E_POSITION_LOST:
        return f"tail {path} at seq {position}{_stop_text(stop)}"
    return (f"tail {path}: the journal no longer holds seq {position - 1}, the record this tailer read last, as "
            f"it read it: a recovery cut the journal back (power loss or damage; `mmaudit journal verify "
            f"{path}` and discarded/ say what was cut), and the records now numbered from there are new. "
            f"Choose where to resume (from_seq / --from-seq)")


_POSITION_LINE = re.compile(rb"mmjpos [12] [1-9][0-9]*( [0-9a-f]{32} [0-9a-f]{16})?\n?")


def _tailer_open_error(path: str, name: str | None, from_seq: int | None, status: int, err: int) -> Exception:
    """The error of a failed mmj_tailer_open, saying what it was about: the name (MMJ_E_ARG: names
    are checked in C), the saved position file (MMJ_E_CORRUPT when it is not one), or the journal."""
    if status == lib.MMJ_E_POSITION_LOST:
        return error_for(status, f"tail {path}: tailer {name}'s saved position was taken in another journal", err)
    if name is not None and status == lib.MMJ_E_ARG:
        return InvalidArgument(f"tail {path}: tailer name {name!r} is not 1 to 99 letters, digits, '-', '_' "
                               f"or '.' (not starting with '.')", status=status)
    if name is not None and status == lib.MMJ_E_CORRUPT and not from_seq:
        saved = os.path.join(path, "tailers", f"{name}.pos")
        try:
            with open(saved, "rb") as f:
                text = f.read(256)
            problem = None if _POSITION_LINE.fullmatch(text) else "is not a saved position"
        except IsADirectoryError:
            problem = "is a directory, not a saved position"
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or exc})"
        if problem:
            return JournalCorrupt(f"tail {path}: tailer {name}'s position file {saved} {problem} (the "
                                  f"journal itself is not affected): remove it to start from the first "
                                  f"record, or give from_seq (--from-seq)", status=status)
    return error_for(status, f"tail {path}", err)


class Tailer:
    """Follow a live journal (from any process). With a name, `commit()` saves the position and a
    new Tailer with the same name resumes there after a restart."""

    def __init__(self, path, name: str | None = None, from_seq: int | None = None, spin_ns: int | None = None):
        """`spin_ns` lets a wait poll up to that long before it sleeps on the writer's wake-up
        word, while records come at least that often (default: sleep at once; see
        mmj_tailer_set_spin: for a consumer with a CPU of its own)."""
        if spin_ns is not None and (not isinstance(spin_ns, int) or spin_ns < 0):
            raise InvalidArgument(f"spin_ns must be a non-negative integer, not {spin_ns!r}")
        from_seq = _seq_arg("from_seq", from_seq)
        self.path = os.fspath(path)
        self.name = name
        handle = ffi.new("mmj_tailer **")
        err = ffi.new("int *")
        cname = name.encode() if name is not None else ffi.NULL
        status = lib.mmj_tailer_open(os.fsencode(self.path), cname, from_seq or 0, handle, err)
        if status < 0:
            raise _tailer_open_error(self.path, name, from_seq, status, err[0])
        # held around each C call and by close(): a thread waiting in next() while another closes
        # the tailer (how a tailing thread is stopped) gets JournalClosed, not a freed tailer
        self._in_c = threading.Lock()
        self._t = handle[0]
        self._rec = ffi.new("mmj_record *")
        if spin_ns is not None:
            check(lib.mmj_tailer_set_spin(self._t, spin_ns), f"tail {self.path}")

    def next(self, timeout_s: float = 0.0) -> Record | None:
        """The next data record, waiting up to timeout_s; None if none arrived in time."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            # wait in short slices so Ctrl-C, signal handlers and close() run between them
            left = max(0.0, min(deadline - time.monotonic(), _WAIT_SLICE_S))
            with self._in_c:
                if self._t == ffi.NULL:
                    raise JournalClosed("tailer is closed", status=lib.MMJ_E_CLOSED)
                status = lib.mmj_tailer_next(self._t, int(left * 1e9), self._rec)
                if status == lib.MMJ_OK:
                    return _record(self._rec)
                stop = _tailer_stop(self._t) if status != lib.MMJ_AGAIN else None
            if status != lib.MMJ_AGAIN:
                raise error_for(status, _tail_context(self.path, self.position, status, stop))
            if time.monotonic() >= deadline:
                return None

    @property
    def position(self) -> int:
        """The sequence the next call to next() will return."""
        with self._in_c:
            return lib.mmj_tailer_position(self._t) if self._t != ffi.NULL else 0

    def commit(self) -> None:
        """Save the position of a named tailer atomically."""
        if self.name is None:
            raise InvalidArgument("only a named tailer has a position to commit")
        with self._in_c:
            if self._t == ffi.NULL:
                raise JournalClosed("tailer is closed", status=lib.MMJ_E_CLOSED)
            status = lib.mmj_tailer_commit(self._t)
        check(status, f"commit tailer {self.name}: cannot save its position as "
              f"{os.path.join(self.path, 'tailers', self.name + '.pos')}")

    def close(self) -> None:
        """Release the tailer; from another thread too (a next() waiting there ends within one
        wait slice, 0.1 s, with JournalClosed)."""
        with self._in_c:
            t, self._t = self._t, ffi.NULL
        if t != ffi.NULL:
            lib.mmj_tailer_close(t)

    def __enter__(self) -> "Tailer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_t", ffi.NULL) != ffi.NULL:
            self.close()
