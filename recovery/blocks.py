"""Journal records for replay, read a block at a time: one C pass per block copies the header
and payload of every record in it (Reader.read_blobs of every type), so a run of market-data
packets reaches the engine's batch path as a view of the block's buffer (no Record or
MarketData object per packet), while every other record is handed out as a journal.Record.

Owns Blocks, the record source recovery.replay walks (iteration, next_is, packet_run). Knows
record types only to find the runs of MD_PACKET records. Must not interpret payloads.
"""
from __future__ import annotations

from bisect import bisect_left

import numpy as np

from journal import Reader, Record
from journal.catalogue import RecordType, TsSource
from mm_core.engine import PacketRun, ffi
from mm_core.events import MarketData
from mm_core.runnerrecords import market_data_event

__all__ = ["BLOCK_RECORDS", "Blocks", "ListedRecords", "listed_run"]

BLOCK_RECORDS = 8192     # records per C pass: ~0.5 MB of a session journal, a few ms of replay
_MD = int(RecordType.MD_PACKET)
_PHC = int(TsSource.HW_PHC)  # a TAI stamp: the engine's time needs the UTC offset in force, so no batch
_new_record = tuple.__new__  # Record(...) without the NamedTuple's Python-level __new__ (one per record)


class _Block:
    """The records of one sequence range: header fields as lists, payloads in one buffer."""

    __slots__ = ("seqs", "rtypes", "ts", "sources", "states", "offs", "blob", "n",
                 "buf_c", "off_c", "ts_c", "_arrays", "stops")

    def __init__(self, headers: np.ndarray, blob: bytes, offsets: np.ndarray) -> None:
        self.n = len(headers)
        self.seqs = headers["seq"].tolist()
        rtypes, sources = headers["rtype"], headers["ts_source"]
        self.rtypes = rtypes.tolist()
        stamps = np.ascontiguousarray(headers["ts_ns"], dtype=np.int64)
        self.ts = stamps.tolist()
        self.sources = sources.tolist()
        # where each run of batchable packets ends: every record that is not an MD_PACKET, or is
        # PHC-stamped (fed one by one: runnerrecords.engine_time), in order
        self.stops = np.flatnonzero((rtypes != _MD) | (sources == _PHC)).tolist()
        self.states = headers["clock_state"].tolist()
        self.offs = offsets.tolist()
        self.blob = blob
        self._arrays = (stamps, offsets)          # what the C pointers below point into
        self.buf_c = ffi.from_buffer("uint8_t[]", blob)
        self.off_c = ffi.cast("uint64_t *", ffi.from_buffer(offsets))
        self.ts_c = ffi.cast("int64_t *", ffi.from_buffer(stamps))

    def record(self, k: int) -> Record:
        offs = self.offs
        return _new_record(Record, (self.seqs[k], self.rtypes[k], self.ts[k], self.sources[k], self.states[k],
                                    self.blob[offs[k]:offs[k + 1]]))


class ListedRecords:
    """The records of a packet run as a list (item 0, the run's first record, is not asked for)."""

    __slots__ = ("recs",)

    def __init__(self, recs: list) -> None:
        self.recs = recs

    def seq(self, i: int) -> int:
        return self.recs[i].seq

    def record(self, i: int) -> Record:
        return self.recs[i]


def listed_run(event: MarketData, recs: list) -> tuple[PacketRun, ListedRecords]:
    """The packet run of `event` and the MD_PACKET records recs[1:] after it, copied into a
    buffer of its own (the record-iterator path, and a run that starts on a block's last record)."""
    return PacketRun([event, *map(market_data_event, recs[1:])]), ListedRecords(recs)


class _BlockRecords:
    """The records of a packet run that starts at index k0 of a block."""

    __slots__ = ("block", "k0")

    def __init__(self, block: _Block, k0: int) -> None:
        self.block, self.k0 = block, k0

    def seq(self, i: int) -> int:
        return self.block.seqs[self.k0 + i]

    def record(self, i: int) -> Record:
        return self.block.record(self.k0 + i)


class _BlockPackets:
    """PacketRun.events of a run in a block: each MarketData built only if the engine asks."""

    __slots__ = ("block", "k0", "n", "first")

    def __init__(self, block: _Block, k0: int, n: int, first: MarketData) -> None:
        self.block, self.k0, self.n, self.first = block, k0, n, first

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> MarketData:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.first if i == 0 else market_data_event(self.block.record(self.k0 + i))


class Blocks:
    """Records of [first_seq, last_seq] (the reader's range by default) in sequence order, read
    BLOCK_RECORDS at a time. A read error is raised when the block holding it is read, before
    the records of that block ahead of it are handed out."""

    def __init__(self, reader: Reader, first_seq: int | None = None, last_seq: int | None = None,
                 block_records: int = BLOCK_RECORDS) -> None:
        if block_records < 1:
            raise ValueError("block_records must be at least 1")
        self._reader = reader
        self._next_seq = max(reader.first_seq, first_seq or 0)
        self._last_seq = reader.last_seq if last_seq is None else min(last_seq, reader.last_seq)
        self._size = block_records
        self._block: _Block | None = None
        self._k = 0                 # index of the next record of the block
        self._from_block = False    # the record handed out last is at self._k - 1 of the block

    def _ready(self) -> bool:
        """Whether a record of the journal is next, reading the next block if needed."""
        block = self._block
        if block is not None and self._k < block.n:
            return True
        self._block, self._k, self._from_block = None, 0, False
        while self._next_seq <= self._last_seq:
            last = min(self._next_seq + self._size - 1, self._last_seq)
            headers, blob, offsets = self._reader.read_blobs(None, self._next_seq, last)
            self._next_seq = last + 1
            if len(headers):
                self._block = _Block(headers, blob, offsets)
                return True
        return False

    def __iter__(self) -> "Blocks":
        return self

    def __next__(self) -> Record:
        if not self._ready():
            raise StopIteration
        k = self._k
        self._k, self._from_block = k + 1, True
        return self._block.record(k)

    def next_is(self, rtype) -> bool:
        return self._ready() and self._block.rtypes[self._k] == rtype

    def packet_run(self, event: MarketData, limit: int):
        """(PacketRun, its records) of `event` — the MarketData of the MD_PACKET record handed
        out last — and the MD_PACKET records right after it in the same block, `limit` at most."""
        if not self._ready():
            return listed_run(event, [None])
        block, k = self._block, self._k
        end = min(block.n, k + limit - 1)
        stops = block.stops
        at = bisect_left(stops, k)      # the first record from k on that ends the run
        j = min(stops[at], end) if at < len(stops) else end
        adjacent = self._from_block   # else the event's record was the last of the block before
        self._k, self._from_block = j, j > k or adjacent
        if not adjacent:
            return listed_run(event, [None, *map(block.record, range(k, j))])
        k0, n = k - 1, j - k + 1
        run = PacketRun.over(_BlockPackets(block, k0, n, event), block.buf_c, block.off_c + k0,
                             block.ts_c + k0, block)
        return run, _BlockRecords(block, k0)
