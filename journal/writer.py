"""The Python face of the single journal writer: a thin wrapper over mmj_writer_* / mmj_append.

Owns argument conversion (bytes, numpy arrays) and the recovery report; every C status is
checked and raised as a typed JournalError. Must not know record meanings beyond the payload
sizes the catalogue registers; must not add per-record Python work to the append path.
"""
from __future__ import annotations

import dataclasses
import operator
import os
import weakref

import numpy as np

from journal._fastappend import Appender, AppendSend
from journal._journal_cffi import ffi, lib
from journal.catalogue import PAYLOAD_DTYPES
from journal.errors import InvalidArgument, JournalClosed, JournalError, PayloadSizeError, check, error_for, open_context, reason_text

DURABILITY = {"pagecache": lib.MMJ_DUR_PAGECACHE, "group": lib.MMJ_DUR_GROUP, "sync": lib.MMJ_DUR_SYNC}
DEFAULT_SEGMENT_SIZE = 64 << 20

_append = lib.mmj_append
_append_reserve = lib.mmj_append_reserve
# each blocking entry point and its non-blocking variant, tried first while the GIL is kept
_NOWAIT = {_append: lib.mmj_append_nowait, _append_reserve: lib.mmj_append_reserve_nowait}
_ADDRESS = {fn: int(ffi.cast("uintptr_t", ffi.addressof(lib, fn.__name__))) for fn in (*_NOWAIT, *_NOWAIT.values())}
_OPEN_WRITERS: "weakref.WeakSet[Journal]" = weakref.WeakSet()


def _drop_inherited_writers() -> None:
    """In a forked child: a copied writer would be a second writer of the same journal (and its
    lock descriptor would outlive the parent). Free every copy without touching the journal."""
    for journal in list(_OPEN_WRITERS):
        w, journal._w = journal._w, ffi.NULL
        journal._detach_appenders()
        if w != ffi.NULL:
            lib.mmj_writer_abandon(w)
    _OPEN_WRITERS.clear()


os.register_at_fork(after_in_child=_drop_inherited_writers)


@dataclasses.dataclass(frozen=True)
class RecoveryReport:
    """What a writer's open found and discarded. `clean` is True when nothing was discarded."""

    reason: str                 # "none" when nothing was wrong
    reason_code: int
    segment: int                # where the first invalid item was
    offset: int
    seq: int                    # the sequence expected there
    bytes_discarded: int
    segments_removed: int
    records_discarded: int      # valid-looking records zeroed after the first invalid one or removed
    sealed_segment: int | None  # the crashed segment that recovery sealed, if any
    previous_pid: int           # the previous writer's pid from the lock file, 0 if none
    previous_clean: bool        # whether the previous writer closed cleanly
    created: bool               # whether this open created the journal
    continued_segment: int | None = None  # the crashed segment the writer appends on in, if any
    segments_kept: int = 0                # of segments_removed, moved to discarded/ (not blank)
    discarded_run: int = 0                # N of discarded/r<N> holding what recovery kept, 0: nothing

    @property
    def clean(self) -> bool:
        return self.reason_code == lib.MMJ_R_NONE and self.segments_removed == 0

    @classmethod
    def from_c(cls, rep) -> "RecoveryReport":
        return cls(
            reason=reason_text(rep.reason) if rep.reason else "none", reason_code=rep.reason,
            segment=rep.segment, offset=rep.offset, seq=rep.seq,
            bytes_discarded=rep.bytes_discarded, segments_removed=rep.segments_removed,
            records_discarded=rep.records_discarded,
            sealed_segment=rep.sealed_segment - 1 if rep.sealed_segment else None,
            previous_pid=rep.previous_pid, previous_clean=bool(rep.previous_clean), created=bool(rep.created),
            continued_segment=rep.continued_segment - 1 if rep.continued_segment else None,
            segments_kept=rep.segments_kept, discarded_run=rep.discarded_run,
        )


_INT_RANGES = {"rtype": (0, 0xFFFF), "ts_ns": (-(1 << 63), (1 << 63) - 1), "ts_source": (0, 0xFF),
               "clock_state": (0, 0xFF)}


def _checked_ints(**values) -> dict:
    """The integer arguments of an append, each checked for type and range (InvalidArgument)."""
    for name, value in values.items():
        if type(value) is not int:
            try:
                values[name] = value = operator.index(value)
            except TypeError:
                raise InvalidArgument(f"{name} must be an integer, not {type(value).__name__}") from None
        low, high = _INT_RANGES[name]
        if not low <= value <= high:
            raise InvalidArgument(f"{name} {value} is outside {low}..{high}")
    return values


def _batch_payloads(rtype: int, payloads):
    """(count, size, buf, offsets, objects to keep alive during the call) for append_batch:
    fixed-size rows from a 1-D array of structured or void rows, else boundaries of a list of
    bytes-like payloads."""
    if isinstance(payloads, np.ndarray):
        if payloads.ndim != 1 or payloads.dtype.kind != "V" or payloads.dtype.hasobject:
            raise InvalidArgument(
                f"a batch array must be one-dimensional with structured or void rows (one record per "
                f"row), not shape {payloads.shape} of {payloads.dtype}; view raw bytes as "
                f"np.dtype((np.void, size)) rows or pass a list of bytes")
        arr = np.ascontiguousarray(payloads)
        expected = PAYLOAD_DTYPES.get(rtype)
        if expected is not None and arr.dtype.itemsize != expected.itemsize:
            raise PayloadSizeError(f"type {rtype} rows are {arr.dtype.itemsize} bytes, layout needs "
                                   f"{expected.itemsize}", status=lib.MMJ_E_PAYLOAD_SIZE)
        if expected is not None and arr.dtype.names is not None and arr.dtype != expected:
            # same size, other fields (order, byte order, types): the bytes would be read back
            # under the catalogue's layout as other values
            raise InvalidArgument(f"type {rtype} rows have fields {arr.dtype.descr}, its layout is "
                                  f"{expected.descr}; build them with that dtype (or pass void rows)")
        buf = ffi.from_buffer("char[]", arr) if len(arr) else ffi.NULL
        return len(arr), arr.dtype.itemsize, buf, ffi.NULL, arr
    if isinstance(payloads, (bytes, bytearray, memoryview, str)):
        raise InvalidArgument(f"a batch is a list of payloads, not one {type(payloads).__name__} (whose "
                              f"items would each become a record)")
    try:
        parts = [memoryview(p).cast("B") for p in payloads]
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"every payload of a batch must be bytes-like: {exc}") from None
    count = len(parts)
    lengths = np.fromiter((len(p) for p in parts), dtype=np.uint64, count=count)
    bounds = np.zeros(count + 1, dtype=np.uint64)
    np.cumsum(lengths, out=bounds[1:])
    blob = b"".join(parts)
    buf = ffi.from_buffer("char[]", blob) if blob else ffi.new("char[1]")
    return count, 0, buf, ffi.cast("uint64_t *", ffi.from_buffer(bounds)), (blob, bounds)


def _batch_stamps(ts_ns, count: int):
    """(array pointer or NULL, scalar, object to keep alive) for append_batch's timestamps."""
    if type(ts_ns) is int or np.ndim(ts_ns) == 0:
        return ffi.NULL, _checked_ints(ts_ns=ts_ns)["ts_ns"], None
    stamps = np.asarray(ts_ns)
    if stamps.ndim != 1 or stamps.dtype.kind not in "iu":
        raise InvalidArgument(f"ts_ns must be an integer or a one-dimensional integer array, not shape "
                              f"{stamps.shape} of {stamps.dtype}")
    if len(stamps) != count:
        raise InvalidArgument(f"{len(stamps)} timestamps for {count} records")
    if stamps.dtype.kind == "u" and len(stamps) and stamps.max() > np.iinfo(np.int64).max:
        raise InvalidArgument("ts_ns values must fit in int64")
    stamps = np.ascontiguousarray(stamps, dtype=np.int64)
    return ffi.cast("int64_t *", ffi.from_buffer(stamps)), 0, stamps


def _bytes_view(payload):
    """A cffi char[] view of any contiguous bytes-like object (its len() is the byte count)."""
    try:
        return ffi.from_buffer("char[]", memoryview(payload).cast("B"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"payload must be bytes-like, not {type(payload).__name__}") from exc


def _damage_of(w):
    """The record writer `w` latched on (a verify.BadRecord; DAMAGE BEHIND A SUMMARY), or None."""
    from journal.verify import BadRecord
    where = ffi.new("uint64_t[3]")
    reason = lib.mmj_writer_damage(w, where, where + 1, where + 2)
    if not reason:
        return None
    return BadRecord(seq=where[2], segment=where[0], offset=where[1], reason=reason_text(reason),
                     reason_code=reason)


class Journal:
    """The single writer of a journal directory (a context manager).

    Example:
        with Journal("/var/mm/journal", durability="group") as j:
            seq = j.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=1, now_ns=5), ts_ns=5)

    `format_version` 0 writes new segments in the current format; 1 in the version-1 format (the
    BLAKE2b chain hash) for readers that are not upgraded yet.
    """

    def __init__(self, path, *, create: bool = True, segment_size: int = DEFAULT_SEGMENT_SIZE,
                 durability: str = "pagecache", group_records: int = 64, group_us: int = 1000,
                 checkpoint_every: int = 4096, format_version: int = 0):
        if durability not in DURABILITY:
            raise InvalidArgument(f"durability must be one of {sorted(DURABILITY)}, not {durability!r}")
        for name, value in (("segment_size", segment_size), ("group_records", group_records),
                            ("group_us", group_us), ("checkpoint_every", checkpoint_every)):
            if not isinstance(value, int) or value <= 0:
                raise InvalidArgument(f"{name} must be a positive integer, not {value!r}")
        if format_version not in (0, *range(lib.MMJ_FORMAT_VERSION_MIN, lib.MMJ_FORMAT_VERSION + 1)):
            raise InvalidArgument(f"format_version must be 0 (the current, {lib.MMJ_FORMAT_VERSION}) or "
                                  f"{lib.MMJ_FORMAT_VERSION_MIN}..{lib.MMJ_FORMAT_VERSION}, not {format_version!r}")
        if segment_size % 4096 or segment_size < lib.MMJ_MIN_SEGMENT_SIZE:
            raise InvalidArgument(f"segment_size must be a multiple of 4096 and >= {lib.MMJ_MIN_SEGMENT_SIZE}")
        self.path = os.fspath(path)
        opts = ffi.new("mmj_options *", {
            "segment_size": segment_size, "durability": DURABILITY[durability],
            "group_records": group_records, "group_us": group_us,
            "checkpoint_every": checkpoint_every, "create": 1 if create else 0,
            "format_version": format_version,
        })
        handle = ffi.new("mmj_writer **")
        report = ffi.new("mmj_recovery *")
        err = ffi.new("int *")
        status = lib.mmj_writer_open(os.fsencode(self.path), opts, handle, report, err)
        context = open_context(self.path, err[0])
        if status in (lib.MMJ_E_SEGMENTS_MISSING, lib.MMJ_E_CORRUPT) and report.reason:
            # what recovery refused to go past: the missing segment, or damage a check found
            context += (f": {reason_text(report.reason)} at segment {report.segment}, offset {report.offset}, "
                        f"sequence {report.seq}")
        check(status, context, err[0])
        self._w = handle[0]
        # the lean entry points of append (journal/_fastappend.c): the GIL is kept across the
        # append only in pagecache mode, where nothing the append can wait for needs it, and only
        # while it does not wait (the non-blocking variant first, else the GIL is released)
        address = int(ffi.cast("uintptr_t", self._w))
        keep = durability == "pagecache"
        self._fast = {fn: Appender(_ADDRESS[fn], address, keep, _ADDRESS[_NOWAIT[fn]])
                      for fn in (_append, _append_reserve)}
        self._fast_append, self._fast_reserve = self._fast[_append], self._fast[_append_reserve]
        # write-ahead in one call (journal/_fastappend.c): append_then_send(rtype, payloads, ts_source,
        # clock_state, reserve, fd, data) appends every payload (each stamped CLOCK_REALTIME as it
        # goes in) and only then sends `data` on the socket descriptor `fd`, as socket.sendall would;
        # it returns (sequences appended, 0 or the refused append's status, 0 or the send's errno)
        # and raises nothing for either (refusal() gives the typed error of a status); nothing is
        # sent unless every payload was appended
        self.append_then_send = self._fast["send"] = AppendSend(
            _ADDRESS[_append], _ADDRESS[_append_reserve], address, keep,
            _ADDRESS[_NOWAIT[_append]], _ADDRESS[_NOWAIT[_append_reserve]])
        _OPEN_WRITERS.add(self)
        self.segment_size = segment_size
        self.durability = durability
        self.recovery = RecoveryReport.from_c(report)
        for rtype, dtype in PAYLOAD_DTYPES.items():
            check(lib.mmj_writer_set_type_size(self._w, int(rtype), dtype.itemsize), "register type")
        salt = ffi.new("uint8_t[16]")
        lib.mmj_writer_salt(self._w, salt)
        self.journal_id = bytes(ffi.buffer(salt)).hex()

    # -- appends --------------------------------------------------------------------------

    def append(self, rtype: int, payload: bytes, ts_ns: int = 0, ts_source: int = 0, clock_state: int = 0,
               reserve: bool = False) -> int:
        """Append one record; returns its sequence once it is published (and synced in sync mode).
        `reserve=True` marks a risk-reducing record (a cancel, a kill): when the disk is full it may
        use the reserve segment, while ordinary appends fail with DiskFull (see `space_low`)."""
        try:
            seq = (self._fast_reserve if reserve else self._fast_append)(rtype, payload, ts_ns, ts_source, clock_state)
        except (TypeError, OverflowError):
            seq = self._append_converted(_append_reserve if reserve else _append, rtype, payload, ts_ns, ts_source,
                                         clock_state)
        if seq > 0:
            return seq
        raise self.refusal(seq, rtype)

    def refusal(self, status: int, rtype: int) -> JournalError:
        """The typed error append() raises for a refused append of `rtype` with this status (a
        negative mmj_status, as append_then_send reports it)."""
        return error_for(status, self._damage_context(status, f"append type {rtype}"), self._errno())

    def _append_converted(self, fn, rtype, payload, ts_ns, ts_source, clock_state) -> int:
        """The slow path: any bytes-like payload, and typed errors for arguments cffi rejects."""
        view = _bytes_view(payload)
        values = _checked_ints(rtype=rtype, ts_ns=ts_ns, ts_source=ts_source, clock_state=clock_state)
        return fn(self._w, values["rtype"], view, len(view), values["ts_ns"], values["ts_source"],
                  values["clock_state"])

    def append_batch(self, rtype: int, payloads, ts_ns=0, ts_source: int = 0, clock_state: int = 0,
                     reserve: bool = False) -> int:
        """Append many records of one type in one C call; returns the first of their consecutive
        sequences. `payloads` is a one-dimensional numpy array of structured or raw (void) rows,
        one record per row (the type's dtype, or its size, for a type with a fixed layout), or a
        list of bytes-like payloads; `ts_ns` is one integer timestamp for all or a one-dimensional
        integer array with one per record; `reserve` as in append. Anything else is refused with
        InvalidArgument (PayloadSizeError for rows of the wrong size) before a record is written.
        Every error raised by the C call carries `written`, the records it published before
        failing (a full disk or a failed roll partway, a failed msync: DurabilityFailed whenever
        the writer latched failed): sequences first .. first + written - 1 are in the journal
        and will be read and replayed."""
        ints = _checked_ints(rtype=rtype, ts_source=ts_source, clock_state=clock_state)
        rtype, ts_source, clock_state = ints["rtype"], ints["ts_source"], ints["clock_state"]
        count, size, buf, offsets, _keep = _batch_payloads(rtype, payloads)
        ts_array, ts_scalar, _keep_ts = _batch_stamps(ts_ns, count)
        first = ffi.new("uint64_t *")
        written = ffi.new("uint64_t *")
        status = lib.mmj_append_batch_ex(self._w, rtype, buf, size, offsets, count, ts_array, ts_scalar,
                                         ts_source, clock_state, first, written, 1 if reserve else 0)
        if status < 0:
            published = written[0]
            context = f"append_batch type {rtype}" + (f" ({published} of {count} records published)" if published
                                                      else "")
            exc = error_for(status, self._damage_context(status, context), self._errno())
            exc.written = published
            raise exc
        return first[0]

    # -- space ------------------------------------------------------------------------------

    @property
    def space_low(self) -> bool:
        """True from the first ordinary append refused for lack of space until `retry_space`
        succeeds; meanwhile only `append(..., reserve=True)` can write."""
        if self.closed:
            raise JournalClosed("journal is closed", status=lib.MMJ_E_CLOSED)
        return bool(lib.mmj_writer_space_low(self._w))

    def retry_space(self) -> bool:
        """Try to leave low-space state (a new reserve, a new ordinary segment if needed); True
        when appends are normal again. Cheap while the disk is still full (1 Hz timer)."""
        status = lib.mmj_writer_retry_space(self._w)
        if status == lib.MMJ_E_DISK_FULL:
            return False
        check(status, "retry space", self._errno())
        return True

    # -- control ----------------------------------------------------------------------------

    def sync(self) -> None:
        """msync everything appended so far, whatever the durability mode."""
        status = lib.mmj_sync(self._w)
        check(status, self._damage_context(status, "sync"), self._errno())

    def on_sync(self, fn) -> None:
        """Call fn(segment, start, stop) after each msync/fsync that made bytes [start, stop) of a
        segment durable (None: stop). It runs inside the append that synced (in group mode also
        on the writer's helper thread, which msyncs records left unsynced when appends pause), with
        the writer's lock held: it must not use this journal. For tracing and power-loss tests."""
        if self.closed:
            raise JournalClosed("journal is closed", status=lib.MMJ_E_CLOSED)
        callback = ffi.NULL if fn is None else ffi.callback(
            "mmj_sync_hook", lambda _ctx, segment, start, stop: fn(segment, start, stop))
        # the hook takes the GIL inside an append (or a sync) holding the writer's lock: an append
        # that kept the GIL while waiting for that lock would deadlock against it, so appends stop
        # keeping it before the hook is installed (and start again only after it is removed)
        if fn is not None:
            for appender in self._fast.values():
                appender.set_keep_gil(False)
        check(lib.mmj_writer_set_sync_hook(self._w, callback, ffi.NULL), "set sync hook")
        self._sync_callback = callback   # keeps the C function pointer alive
        if fn is None:
            for appender in self._fast.values():
                appender.set_keep_gil(self.durability == "pagecache")

    def checkpoint(self) -> None:
        """Write a CHECKPOINT record (the running hash) now."""
        status = lib.mmj_checkpoint(self._w)
        check(status, self._damage_context(status, "checkpoint"), self._errno())

    def close(self) -> None:
        """Finish the check of the segments the open trusted from their summaries (raises
        JournalCorrupt, sealing nothing, for damage no call had reported, or whose DAMAGED marker
        could not be written: DAMAGED then marks it; JournalIOError, sealing nothing, when a trusted
        segment stayed unreadable), seal the current segment, release the lock. Idempotent."""
        if self._w == ffi.NULL:
            return
        w, self._w = self._w, ffi.NULL
        # shut down now, free when this object goes: another thread may be inside a call that
        # read the pointer before this close (it then gets JournalClosed, not freed memory)
        self._shut = w
        self._detach_appenders()
        err = lib.mmj_writer_errno(w)
        status = lib.mmj_writer_shutdown(w)
        # damage no call had reported (the close finished the check after open and found it)
        check(status, self._damage_context(status, "close", w), err)

    def c_reserve_append(self) -> tuple[int, int]:
        """(address of mmj_append_reserve, address of this writer), for C code in this process that
        appends while it holds this Journal: after close() the writer answers MMJ_E_CLOSED, and it
        is freed only with this object. JournalClosed when closed."""
        if self.closed:
            raise JournalClosed("journal is closed", status=lib.MMJ_E_CLOSED)
        return _ADDRESS[_append_reserve], int(ffi.cast("uintptr_t", self._w))

    def _detach_appenders(self) -> None:
        for appender in getattr(self, "_fast", {}).values():
            appender.detach()

    @property
    def damage(self):
        """The record the check after open found damaged behind a trusted segment summary (a
        verify.BadRecord; the writer is then latched: appends raise JournalCorrupt), or None."""
        return None if self.closed else _damage_of(self._w)

    def _damage_context(self, status: int, context: str, w=None) -> str:
        """`context`, naming the damage when status says the writer (`w`: a shut one's) latched on it."""
        w = self._w if w is None else w
        damage = _damage_of(w) if status == lib.MMJ_E_CORRUPT and w != ffi.NULL else None
        return f"{context}: damaged record behind a trusted summary: {damage}" if damage else context

    def _errno(self) -> int:
        return lib.mmj_writer_errno(self._w) if self._w != ffi.NULL else 0

    @property
    def closed(self) -> bool:
        return self._w == ffi.NULL

    @property
    def next_seq(self) -> int:
        if self.closed:
            raise JournalClosed("journal is closed", status=lib.MMJ_E_CLOSED)
        return lib.mmj_writer_next_seq(self._w)

    @property
    def segment(self) -> int:
        """Index of the segment being written."""
        if self.closed:
            raise JournalClosed("journal is closed", status=lib.MMJ_E_CLOSED)
        return lib.mmj_writer_segment(self._w)

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        # release the lock of a forgotten writer; errors cannot be raised from here
        w = getattr(self, "_w", ffi.NULL)
        if w != ffi.NULL:
            self._w = ffi.NULL
            self._detach_appenders()
            lib.mmj_writer_close(w)
        shut = getattr(self, "_shut", ffi.NULL)
        if shut != ffi.NULL:
            self._shut = ffi.NULL
            lib.mmj_writer_free(shut)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"next_seq={self.next_seq}"
        return f"Journal({self.path!r}, {self.durability}, {state})"
