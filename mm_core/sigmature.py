"""Metrics' markout queues in the compiled reaction's struct (fsig_react.mk_*), for fsig_mature:
replay's batch path (fsig_on_packets) matures the markouts due in a run of packets in C instead of
stopping the run for Python at each.

Owns the C copy of Metrics.pending (one region of rows per horizon) and of the counts on_time
moves, kept current with Metrics between C calls (markouts_for: loaded whole, or caught up with
what on_time popped and on_fill appended), and the way back (from_c: on_time's pops and counts
into Metrics after a call that matured some). Metrics (mm_core.metrics) stays the reference and
the owner: the C copy is a cache, so nothing decided depends on whether or when it is loaded.
Must not know about packets, orders or the guard.
"""
from __future__ import annotations

from itertools import islice

from mm_core._fastmd_cffi import ffi, lib
from mm_core.metrics import _GRACE_DIV, _NEVER

__all__ = ["MarkoutQueues"]

_MAX_H, _W = lib.FSIG_MK_MAX_H, lib.FSIG_MK_W


def _sums(m) -> list[int]:
    """Metrics' markout_x2, markout_n and markout_qty of each horizon, as fsig_react.mk_sum."""
    return [v for h in range(len(m.pending)) for v in (m.markout_x2[h], m.markout_n[h], m.markout_qty[h])]


class MarkoutQueues:
    """The mk_* part of one fsig_react `r`; `markout` is its recent-markout mirror (double[n])."""

    def __init__(self, r, markout, n: int, enabled: bool = True) -> None:
        self.r = r
        self.markout = markout
        self.enabled = enabled      # False: nothing loaded, runs stop for Python at due markouts
        self._keep = []
        for name, ctype, size in (("mk_horizon", "int64_t", _MAX_H), ("mk_sum", "int64_t", 3 * _MAX_H),
                                  ("mk_marked_by", "int64_t", n), ("mk_adverse_by", "int64_t", n),
                                  ("mk_qoff", "uint32_t", _MAX_H), ("mk_head", "uint32_t", _MAX_H),
                                  ("mk_len", "uint32_t", _MAX_H), ("mk_wait", "uint32_t", _MAX_H)):
            a = ffi.new(f"{ctype}[]", size)
            self._keep.append(a)
            setattr(r, name, a)
        r.mk_h = 0
        r.mk_grace_div = _GRACE_DIV
        self._cap = 0               # rows of room per horizon in _q
        self._q = None
        self._fills = 0             # Metrics' quote fills when the queues were last made current
        self._loaded = (None, 0)    # the Metrics and its change count they were made current with

    def markouts_for(self, m) -> None:
        """The queues made Metrics `m`'s as they stand: unchanged, caught up (on_time popped
        some, on_fill appended some), or loaded whole."""
        loaded, changes = self._loaded
        if loaded is m and changes == m.changes:
            return
        if loaded is not m or not self.r.mk_h or not self._catch_up(m):
            self.load(m)
        self._loaded = (m, m.changes)

    def load(self, m) -> None:
        """Metrics `m`'s queues (with how many at the front of each wait for a mid) and the counts
        on_time moves into the struct; none loaded (mk_h 0) when disabled or when a value does not
        fit the C words. Each queue gets room for as many again at the back (_catch_up appends
        fills there)."""
        r = self.r
        r.mk_h = 0
        h_n = len(m.horizons)
        if not self.enabled or h_n > _MAX_H or len(m.pending) != h_n or len(m.waiting) != h_n:
            return
        longest = max(len(q) for q in m.pending)
        if 2 * longest + 16 > self._cap:
            self._cap = 2 * longest + 64
            self._q = r.mk_q = ffi.new("int64_t[]", h_n * self._cap * _W)
        cap, q_c = self._cap, self._q
        try:
            for h, q in enumerate(m.pending):
                at = h * cap * _W
                q_c[at:at + len(q) * _W] = [x for entry in q for x in entry]
                r.mk_qoff[h], r.mk_len[h], r.mk_head[h] = h * cap, len(q), 0
            r.mk_horizon[0:h_n] = m.horizons
            r.mk_wait[0:h_n] = m.waiting
            r.mk_sum[0:3 * h_n] = _sums(m)
            self._adverse_in(m)
            r.mk_alpha = m.markout_alpha
        except (OverflowError, TypeError):
            return
        self._fills = m.fills[0] + m.fills[1]
        r.mk_adverse, r.mk_never, r.mk_matured = m.adverse_horizon, _NEVER, 0
        r.mk_h = h_n

    def _catch_up(self, m) -> bool:
        """The loaded queues moved to m's by what changed them since: each lost entries at the
        front (on_time), those of them that wait for a mid back in front (m.waiting), and gained
        the fills since at the back (on_fill appends each fill to every queue). False when they
        cannot be (load then): the queues do not match that account of them, a fill since is
        already waiting, or a queue outgrows its room."""
        r = self.r
        fills = m.fills[0] + m.fills[1]
        added, cap = fills - self._fills, self._cap
        if added < 0:
            return False
        qoff, qlen, q_c = r.mk_qoff, r.mk_len, self._q
        new = None
        for h, q in enumerate(m.pending):
            waiting = m.waiting[h]
            kept = len(q) - waiting - added     # the loaded entries still queued behind them
            processed = qlen[h] - kept          # (head is 0) the ones on_time took off the front
            if kept < 0 or processed < waiting:
                return False
            at = qoff[h] + processed
            if kept and tuple(q_c[at * _W:(at + 1) * _W]) != q[waiting]:
                return False
            if added:
                if new is None:
                    new = [x for entry in list(q)[len(q) - added:] for x in entry]
                if (at - h * cap) + kept + added > cap:
                    return False
                end = (at + kept) * _W
                try:
                    q_c[end:end + len(new)] = new
                except (OverflowError, TypeError):
                    return False
            if waiting:                         # in front of the kept ones, where C reads them
                try:
                    q_c[(at - waiting) * _W:at * _W] = [x for entry in islice(q, waiting) for x in entry]
                except (OverflowError, TypeError):
                    return False
            qoff[h], qlen[h] = at - waiting, waiting + kept + added
        adverse = m.adverse_horizon
        marked = r.mk_sum[3 * adverse + 1] != m.markout_n[adverse]
        r.mk_sum[0:3 * len(m.pending)] = _sums(m)   # on_time moved them where it popped
        r.mk_wait[0:len(m.pending)] = m.waiting
        if marked:      # on_time marked some at the adverse horizon: their per-symbol figures
            self._adverse_in(m)
        self._fills = fills
        return True

    def _adverse_in(self, m) -> None:
        """Metrics' adverse-horizon figures (adverse count; per symbol marked and adverse counts
        and the recent markout) into the struct."""
        r = self.r
        r.mk_adverse_n = m.adverse
        n = len(m.marked_by)
        r.mk_marked_by[0:n] = m.marked_by
        r.mk_adverse_by[0:n] = m.adverse_by
        self.markout[0:n] = m.recent_markout

    def from_c(self, m) -> None:
        """What fsig_mature did to the queues and counts, into Metrics `m` (the one they were
        made current with): on_time's pops, sums, per-symbol figures, next due time and the
        markouts waiting for a mid (C wrote the react mirrors, blocked flags included). Each queue
        loses what C matured from its front; the waiting ones, those that waited and any that
        started to, are back in front in fill order (C's rows of them), as on_time leaves them,
        and m.blocked names their symbols as on_time would. The queues are rebased past the
        popped entries, so they stay m's."""
        r = self.r
        r.mk_matured = 0
        head, qoff, qlen, wait_c, q_c = r.mk_head, r.mk_qoff, r.mk_len, r.mk_wait, self._q
        waits = m.waiting
        moved = False
        for h, q in enumerate(m.pending):
            k, waiting = head[h], wait_c[h]
            if not k and waiting == waits[h]:
                continue
            for _ in range(k + waiting):    # the matured ones, and every waiting one (put back)
                q.popleft()
            if waiting:
                at = (qoff[h] + k) * _W
                rows = ffi.unpack(q_c + at, waiting * _W)
                q.extendleft([tuple(rows[i:i + _W]) for i in range((waiting - 1) * _W, -1, -_W)])
            moved = moved or waiting != waits[h]
            waits[h] = waiting
            qoff[h] += k
            qlen[h] -= k
            head[h] = 0
        if moved:
            m.blocked = m.blocked_of_waiting()
        sums = ffi.unpack(r.mk_sum, 3 * r.mk_h)
        marked = sums[3 * m.adverse_horizon + 1] != m.markout_n[m.adverse_horizon]
        m.markout_x2[:], m.markout_n[:], m.markout_qty[:] = sums[0::3], sums[1::3], sums[2::3]
        if marked:      # the per-symbol figures move only with a markout at the adverse horizon
            m.adverse = r.mk_adverse_n
            n = len(m.marked_by)
            m.marked_by[:] = ffi.unpack(r.mk_marked_by, n)
            m.adverse_by[:] = ffi.unpack(r.mk_adverse_by, n)
            m.recent_markout[:] = ffi.unpack(self.markout, n)
        m.next_due_ns = r.next_due_ns
