"""Packets of one MoldUDP64 session that came past a gap, kept until the gap before them is filled.

Owns their order (by first sequence), the caps on how many packets and bytes are kept, which
packet is next once the expected sequence moves, and where the messages still missing end (the
re-request stops at the first kept packet). Plain data: pickled with the engine and part of its
state hash. Must not know what the packets carry or what the engine does with them.
"""
from __future__ import annotations

import hashlib
from bisect import bisect_right

__all__ = ["GapBuffer", "KEPT", "DUPLICATE", "FULL", "DEFAULT_MAX_PACKETS", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_PACKETS = 10_000
DEFAULT_MAX_BYTES = 16 << 20            # 16 MiB of packet bytes

# what keep() did with a packet
KEPT = "kept"
DUPLICATE = "duplicate"                 # a kept packet already carries all its messages
FULL = "full"                           # over a cap: not kept (its messages are re-requested)


class GapBuffer:
    """Kept packets as (first sequence, one past the last, raw bytes, digest), ordered by first
    sequence; at most one per first sequence (the one reaching furthest)."""

    def __init__(self, max_packets: int = DEFAULT_MAX_PACKETS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.bytes = 0
        self._firsts: list[int] = []        # the kept packets' first sequences, ascending
        self._kept: list[tuple[int, int, bytes, str]] = []

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, first: int, end: int, packet: bytes) -> str:
        """Keep a packet carrying messages first..end-1 (KEPT), unless the kept packet starting
        at or before it already carries them all (DUPLICATE) or it would pass a cap (FULL)."""
        i = bisect_right(self._firsts, first)
        if i and self._kept[i - 1][1] >= end:
            return DUPLICATE
        same = i and self._firsts[i - 1] == first       # reaches further than the kept one: replaces it
        freed = len(self._kept[i - 1][2]) if same else 0
        if len(self._kept) + (not same) > self.max_packets or self.bytes - freed + len(packet) > self.max_bytes:
            return FULL
        entry = (first, end, bytes(packet), hashlib.blake2b(packet, digest_size=16).hexdigest())
        if same:
            self._kept[i - 1] = entry
        else:
            self._firsts.insert(i, first)
            self._kept.insert(i, entry)
        self.bytes += len(packet) - freed
        return KEPT

    def drop_behind(self, expected: int) -> int:
        """Forget the first kept packets whose messages all come before `expected` (another packet
        brought them first); how many."""
        kept, n = self._kept, 0
        while n < len(kept) and kept[n][1] <= expected:
            self.bytes -= len(kept[n][2])
            n += 1
        if n:
            del kept[:n], self._firsts[:n]
        return n

    def due(self, expected: int) -> bool:
        """The first kept packet starts at or before `expected` (after drop_behind: it is next)."""
        return bool(self._firsts) and self._firsts[0] <= expected

    def pop(self) -> bytes:
        """The first kept packet's bytes, no longer kept."""
        self._firsts.pop(0)
        _, _, packet, _ = self._kept.pop(0)
        self.bytes -= len(packet)
        return packet

    def after(self, expected: int) -> int | None:
        """The first sequence of the first kept packet that starts past `expected`: the messages
        missing run from `expected` up to it (None: none kept there)."""
        i = bisect_right(self._firsts, expected)
        return self._firsts[i] if i < len(self._firsts) else None

    def clear(self) -> int:
        """Forget every kept packet (their session was left); how many."""
        n = len(self._kept)
        self._firsts, self._kept, self.bytes = [], [], 0
        return n

    def state_items(self) -> tuple:
        """Everything a decision can depend on, for the engine's state hash."""
        return (self.max_packets, self.max_bytes, self.bytes, [(f, e, d) for f, e, _, d in self._kept])

    def sequences(self) -> list[tuple[int, int]]:
        """(first, end) of each kept packet, in order (for tests and alerts)."""
        return [(f, e) for f, e, _, _ in self._kept]
