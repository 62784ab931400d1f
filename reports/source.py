"""Selecting a journal range for a report run: by sequence, by session or (after UTC conversion) by
trade date; bulk reads of fixed-size record types as numpy structured arrays, cached per type.

Owns the mapping from a user's selection to a sequence range and the provenance that goes into
every output file (journal id, sequence range, chain hash at the last CHECKPOINT/SEAL covered).
Must not know report layouts; builders ask it for arrays and JSON documents.
"""
from __future__ import annotations

import datetime as dt
import pathlib
from dataclasses import dataclass, field

import numpy as np

from journal.catalogue import PAYLOAD_DTYPES, RecordType, unpack_json
from journal.verify import discarded_runs
from reports.errors import JournalIncompleteError, JournalRangeError

CHAIN_HASH_BYTES = 32     # CHECKPOINT / SEAL payload: hash(32) + u64 record count (journal.h)
CHAIN_SCAN_WINDOW = 8192  # records scanned back from the range end for the covering checkpoint


@dataclass(frozen=True)
class Selection:
    """What the user asked for; every part optional (None = unbounded)."""

    first_seq: int | None = None
    last_seq: int | None = None
    session_id: int | None = None
    trade_date: dt.date | None = None


@dataclass
class JournalSlice:
    """One journal range, read in bulk; builders call `fixed()` and `documents()`."""

    reader: object
    journal_id: str
    first_seq: int
    last_seq: int
    selection: Selection
    # what recoveries of this journal kept in discarded/ after damage they found (journal.verify's
    # discarded_runs): the journal read is the valid prefix left, so records may be missing
    discarded: tuple = ()
    _cache: dict = field(default_factory=dict, repr=False)

    def confirm_complete(self) -> None:
        """Raise unless every record of the range was still readable when read: damage found on
        first read (after open believed a segment's summary) shortens the reader's snapshot, and a
        report built over it would miss those records without a word."""
        readable = int(self.reader.last_seq)
        if readable < self.last_seq:
            stop = self.reader.stopped
            raise JournalIncompleteError(
                f"journal records {readable + 1}..{self.last_seq} failed their check when read "
                f"({stop['reason'] if stop else 'no reason recorded'} in segment "
                f"{stop['segment'] if stop else '?'}); the report would miss them, so none was written")

    def fixed(self, rtype: RecordType) -> np.ndarray:
        """Header + payload fields of every `rtype` record in the range (numpy structured array)."""
        rtype = RecordType(rtype)
        if rtype not in self._cache:
            arr = self.reader.read_fixed(rtype, first_seq=self.first_seq, last_seq=self.last_seq)
            self._cache[rtype] = arr
        return self._cache[rtype]

    def heads(self, wanted: dict) -> tuple[object, dict]:
        """(header columns seq, rtype, ts_ns, ts_source, clock_state of every data record in the
        range, in sequence order; {rtype: (row positions in those columns, payload prefixes)}) for
        each rtype of `wanted` ({rtype: payload_head dtype}): one header pass over the range, then
        only the payload bytes asked for are copied (not whole records)."""
        cols = self.reader.scan(self.first_seq, self.last_seq,
                                fields=("seq", "rtype", "ts_ns", "ts_source", "clock_state", "pos"))
        got = {}
        for rtype, dtype in wanted.items():
            at = np.flatnonzero(cols.rtype == RecordType(rtype))
            got[RecordType(rtype)] = (at, self.reader.gather(cols.pos[at], dtype))
        return cols, got

    def fixed_before(self, rtype: RecordType) -> np.ndarray:
        """`rtype` records from the journal start to the end of the range: context such as the clock
        sample in force at the first event of a range that starts mid-journal."""
        if self.first_seq <= 1:
            return self.fixed(rtype)
        key = ("before", RecordType(rtype))
        if key not in self._cache:
            self._cache[key] = self.reader.read_fixed(RecordType(rtype), first_seq=None, last_seq=self.last_seq)
        return self._cache[key]

    def documents(self, rtype: RecordType) -> list[tuple[int, int, int, int, dict]]:
        """(seq, ts_ns, ts_source, clock_state, JSON document) for each JSON record in the range."""
        headers, blob, offsets = self.reader.read_blobs(RecordType(rtype), self.first_seq, self.last_seq)
        return [(int(h["seq"]), int(h["ts_ns"]), int(h["ts_source"]), int(h["clock_state"]),
                 unpack_json(blob[int(offsets[i]):int(offsets[i + 1])]))
                for i, h in enumerate(headers)]    # JSON records are few (limits, drills, recon)

    def chain_evidence(self) -> tuple[int, str]:
        """(sequence, hex hash) of the last CHECKPOINT or SEAL covering the range's end; (0, '')
        when the range holds none. A control record carries the sequence the next data record
        gets, so the one numbered last_seq + 1 covers exactly up to last_seq. Scans backwards
        from the end in doubling windows, so a checkpointed journal costs one short scan."""
        if "chain" in self._cache:
            return self._cache["chain"]
        best = (0, "")
        end = self.last_seq + 1
        window = CHAIN_SCAN_WINDOW
        while True:
            start = max(self.first_seq, end - window)
            for rec in self.reader.records(first_seq=start, last_seq=end, include_control=True,
                                           rtypes=(RecordType.CHECKPOINT, RecordType.SEAL)):
                if rec.seq > self.first_seq and rec.seq >= best[0]:
                    best = (int(rec.seq), bytes(rec.payload)[:CHAIN_HASH_BYTES].hex())
            if best[0] or start <= self.first_seq:
                break
            window *= 4
        self._cache["chain"] = best
        return best

    def provenance(self) -> dict[str, str]:
        chain_seq, chain_hash = self.chain_evidence()
        return {
            "journal_id": self.journal_id,
            "journal_first_seq": str(self.first_seq),
            "journal_last_seq": str(self.last_seq),
            "chain_hash": chain_hash,
            "chain_hash_seq": str(chain_seq),
            # a CHECKPOINT/SEAL numbered s hashes the chain of every record before s
            "chain_hash_covers_through_seq": str(chain_seq - 1 if chain_seq else 0),
            "selection": _describe(self.selection),
            # "" when no recovery ever discarded anything; else each discarded/r<N> kept
            "journal_discarded": "; ".join(describe_discarded(run) for run in self.discarded),
        }


def describe_discarded(run: dict) -> str:
    """One discarded/r<N> run (as journal.verify.discarded_runs lists it) in a line."""
    name = pathlib.Path(run["run"]).name
    if "problem" in run:
        return f"discarded/{name}: unreadable ({run['problem']})"
    return f"discarded/{name}: {len(run['files'])} files, {run['bytes']} bytes"


def payload_head(rtype: RecordType, nbytes: int) -> np.dtype:
    """The first `nbytes` of an `rtype` payload as a dtype (for `JournalSlice.heads`): the fields
    that start inside it, with an array field that runs past the end (e.g. `raw`) cut to fit."""
    full = PAYLOAD_DTYPES[RecordType(rtype)]
    names, formats, offsets = [], [], []
    for name in full.names:
        dtype, offset = full.fields[name][:2]
        if offset >= nbytes:
            continue
        if offset + dtype.itemsize > nbytes:
            if dtype.subdtype is None:
                raise ValueError(f"{RecordType(rtype).name}.{name} cannot be cut at byte {nbytes}")
            base = dtype.subdtype[0]
            dtype = np.dtype((base, ((nbytes - offset) // base.itemsize,)))
        names.append(name)
        formats.append(dtype)
        offsets.append(offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": nbytes})


def _describe(sel: Selection) -> str:
    parts = []
    if sel.first_seq is not None or sel.last_seq is not None:
        parts.append(f"seq={sel.first_seq or ''}..{sel.last_seq or ''}")
    if sel.session_id is not None:
        parts.append(f"session={sel.session_id}")
    if sel.trade_date is not None:
        parts.append(f"trade_date={sel.trade_date.isoformat()}")
    return ",".join(parts) or "all"


def _session_bounds(reader, session_id: int) -> tuple[int, int | None]:
    """From the session's first SESSION_START to just before the next start of another session
    (a restarted engine may journal the same session id again)."""
    starts = reader.read_fixed(RecordType.SESSION_START)
    hits = np.flatnonzero(starts["session_id"] == session_id)
    if len(hits) == 0:
        raise JournalRangeError(f"session {session_id} has no SESSION_START in this journal")
    first = int(starts["seq"][hits[0]])
    later = starts["seq"][(starts["seq"] > first) & (starts["session_id"] != session_id)]
    return first, (int(later.min()) - 1 if len(later) else None)


def open_slice(journal_dir: str | pathlib.Path, selection: Selection = Selection(), reader=None) -> JournalSlice:
    """Open the journal at `journal_dir` (or use `reader`) and resolve `selection` to a sequence range."""
    if reader is None:
        from journal import Reader
        path = pathlib.Path(journal_dir)
        if not path.exists():
            raise JournalRangeError(f"{path}: no journal there")
        try:
            reader = Reader(path)
        except Exception as exc:   # the journal's own error tree; translated once, here
            raise JournalRangeError(f"{path}: cannot open journal: {exc}") from exc
    first, last = 1, None            # data records are numbered from 1
    if selection.session_id is not None:
        first, last = _session_bounds(reader, selection.session_id)
    if selection.first_seq is not None:
        first = max(first, selection.first_seq)
    if selection.last_seq is not None:
        last = selection.last_seq if last is None else min(last, selection.last_seq)
    to_end = last is None
    if to_end:
        last = _last_seq(reader)
    _refuse_short(reader, journal_dir, last, to_end)
    if last < first:
        raise JournalRangeError(f"empty journal range: first sequence {first} > last {last}")
    path = getattr(reader, "path", journal_dir)
    return JournalSlice(reader=reader, journal_id=str(_journal_id(reader)), first_seq=first,
                        last_seq=last, selection=selection, discarded=tuple(discarded_runs(path)))


def _refuse_short(reader, journal_dir, last: int, to_end: bool) -> None:
    """Refuse a range that runs to the end of the journal (`to_end`) or past what the reader could
    read, when the journal goes on past that (an invalid record, a bad segment header, segments
    missing): the report would end there as if the journal did, missing every record after it."""
    stop = reader.stopped
    readable = int(reader.last_seq)
    if stop is None or (not to_end and last <= readable):
        return
    path = getattr(reader, "path", journal_dir)
    raise JournalIncompleteError(
        f"{path}: the journal stops before seq {stop['seq']} ({stop['reason']} at segment {stop['segment']} "
        f"offset {stop['offset']}): what follows is not readable, so a report to the end would miss it "
        f"and none was written. Run `mmaudit journal verify {path}` to see what is wrong"
        + (f"; give --last-seq {readable} or less to report only the records before it" if readable else ""))


def _journal_id(reader) -> str:
    jid = getattr(reader, "journal_id")
    return jid.hex() if isinstance(jid, (bytes, bytearray)) else str(jid)


def _last_seq(reader) -> int:
    return int(reader.last_seq)
