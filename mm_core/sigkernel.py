"""The compiled signal kernel (mm_core/fastsig.h) behind the API of the reference classes.

Owns the C state's handle (SignalKernel) and the thin wrappers the engine uses in place of
TradeTape and SymbolGuard when it runs compiled (mm_core.sigfair has those of FairValueModel,
VolEstimator and the Hedger's regressions): the state lives in one C struct, `state_items()` equals the
reference's in value and structure, and a pickle carries the C state as one byte blob. The
Python classes (trades.py, guard.py, fairvalue.py) stay the reference the kernel is tested against
(tests/mm_core/test_sig*.py). Must not know about orders, wire formats or clocks.
"""
from __future__ import annotations

import numpy as np

from mm_core._fastmd_cffi import ffi, lib
from mm_core.guard import GuardParams, Trip
from mm_core.trades import TAPE_MAX, Reversal, tape_digest

__all__ = ["SignalKernel", "KernelGuard", "KernelTape", "trip_of"]

assert TAPE_MAX == lib.FSIG_TAPE_MAX, "trades.TAPE_MAX and fastsig.h disagree"

_TAPE_DTYPES = (np.uint64, np.uint32, np.uint8, np.int64, np.int64, np.int64)   # as _entries' arrays
_PARAM_FIELDS = ("prints_window", "aggression_threshold", "aggression_min_volume", "fill_window_ns",
                 "fill_spike_count", "vpin_bucket_volume", "vpin_buckets", "vpin_threshold",
                 "markout_window", "markout_threshold", "cooldown_ns")


def _check(rc: int, what: str) -> None:
    if rc == lib.FSIG_NOMEM:
        raise MemoryError(f"fastsig: {what}")
    if rc != lib.FSIG_OK:
        raise ValueError(f"fastsig: {what} failed with code {rc}")


class SignalKernel:
    """The C state of every symbol's tape entries, guard and flow EWMAs."""

    def __init__(self, n_symbols: int, params: GuardParams, flow_alpha: float,
                 fv_setup: dict | None = None) -> None:
        """fv_setup: the fsig_fv_params fields and the per-symbol lists ticks, leader (-1: none),
        prior_sigma and hedge (-1: not hedged) for fsig_fv_init; None: tape and guards only."""
        p = ffi.new("fsig_guard_params *", {f: getattr(params, f) for f in _PARAM_FIELDS})
        h = lib.fsig_new(n_symbols, p, flow_alpha)
        if h == ffi.NULL:
            raise MemoryError("fsig_new")
        self._h = ffi.gc(h, lib.fsig_free)
        self.n = n_symbols
        self.params = params
        self.flow_alpha = flow_alpha
        self.flow_signed = lib.fsig_flow_signed(h)
        self.flow_abs = lib.fsig_flow_abs(h)
        self.seq = lib.fsig_tape_seq(h)
        self.until = lib.fsig_until(h)
        self._trip = ffi.new("fsig_trip *")
        self._info = ffi.new("fsig_guard_info *")
        self.guards = [KernelGuard(self, s) for s in range(n_symbols)]
        self.tape = KernelTape(self)
        self.fv_setup = fv_setup
        if fv_setup is not None:
            lists = {k: fv_setup[k] for k in ("ticks", "leader", "prior_sigma", "hedge", "followers")}
            fp = ffi.new("fsig_fv_params *", {k: v for k, v in fv_setup.items() if k not in lists})
            _check(lib.fsig_fv_init(h, fp, lists["ticks"], lists["leader"], lists["prior_sigma"],
                                    lists["hedge"]), "fair value setup")
            _check(lib.fsig_set_followers(h, *followers_table(fv_setup["followers"])), "followers")

    def darray(self, which: int):
        """One of the fsig_fv_array doubles (a cffi pointer, indexable like a list)."""
        return lib.fsig_fv_array(self._h, which)

    def iarray(self, which: int):
        return lib.fsig_fv_ints(self._h, which)

    @property
    def handle(self):
        return self._h

    def save(self) -> bytes:
        size = lib.fsig_save(self._h, ffi.NULL, 0)
        buf = ffi.new("uint8_t[]", size)
        lib.fsig_save(self._h, buf, size)
        return ffi.buffer(buf, size)[:]

    def __reduce__(self):
        return (_restore, (self.n, self.params, self.flow_alpha, self.save(), self.fv_setup))

    def evaluate(self, symbol_id: int, now_ns: int) -> Trip | None:
        """SymbolGuard.evaluate of one symbol."""
        t = self._trip
        if not lib.fsig_evaluate(self._h, symbol_id, now_ns, t):
            return None
        return trip_of(t)

    def info(self, symbol_id: int):
        lib.fsig_guard_info_get(self._h, symbol_id, self._info)
        return self._info

    def trips(self) -> list[int]:
        """Every symbol's guard trip count (KernelGuard.trips of each, in one C call)."""
        out = ffi.new("int64_t[]", self.n)
        lib.fsig_trips(self._h, out)
        return ffi.unpack(out, self.n)


def trip_of(t) -> Trip:
    """A guard.Trip from an fsig_trip."""
    return Trip(t.symbol, bool(t.bid), bool(t.ask), t.reasons, t.aggression, t.vpin)


def followers_table(followers: list[list[int]]) -> tuple:
    """fsig_set_followers' (fol, fol_off) arrays from per-symbol follower lists."""
    flat, off = [], [0]
    for fs in followers:
        flat.extend(fs)
        off.append(len(flat))
    return ffi.new("uint32_t[]", flat or [0]), ffi.new("uint32_t[]", off)


def _restore(n_symbols: int, params: GuardParams, flow_alpha: float, blob: bytes,
             fv_setup: dict | None = None) -> SignalKernel:
    kernel = SignalKernel(n_symbols, params, flow_alpha, fv_setup)
    _check(lib.fsig_load(kernel.handle, blob, len(blob)), "restoring a snapshot")
    return kernel


def _guard_of(kernel: SignalKernel, symbol_id: int) -> "KernelGuard":
    return kernel.guards[symbol_id]


class _KernelVpin:
    """The read side of guard.Vpin for one symbol."""

    __slots__ = ("_g",)

    def __init__(self, guard: "KernelGuard") -> None:
        self._g = guard

    bucket_volume = property(lambda self: self._g.p.vpin_bucket_volume)
    n = property(lambda self: self._g.p.vpin_buckets)
    buy = property(lambda self: self._g._info().vpin_buy)
    sell = property(lambda self: self._g._info().vpin_sell)
    completed = property(lambda self: self._g._info().vpin_completed)
    direction = property(lambda self: self._g._info().vpin_direction)
    value = property(lambda self: self._g._info().vpin_value)
    imbalances = property(lambda self: self._g._arrays()[2])
    net = property(lambda self: self._g._arrays()[3])


class KernelGuard:
    """SymbolGuard's API over the kernel's guard of one symbol."""

    __slots__ = ("kernel", "symbol_id", "p", "vpin", "_h", "_until")

    def __init__(self, kernel: SignalKernel, symbol_id: int) -> None:
        self.kernel = kernel
        self.symbol_id = symbol_id
        self.p = kernel.params
        self.vpin = _KernelVpin(self)
        self._h = kernel.handle
        self._until = kernel.until

    def __reduce__(self):
        return (_guard_of, (self.kernel, self.symbol_id))

    # --- inputs ------------------------------------------------------------------------

    def on_print(self, aggressor_buys: bool, qty: int) -> None:
        lib.fsig_guard_on_print(self._h, self.symbol_id, aggressor_buys, qty)

    def reverse_print(self, aggressor_buys: bool, qty: int, later: int, in_open_bucket: bool) -> tuple[bool, bool]:
        done = lib.fsig_reverse_print(self._h, self.symbol_id, aggressor_buys, qty, later, in_open_bucket)
        return bool(done & 1), bool(done & 2)

    def on_own_fill(self, our_side_is_bid: bool, now_ns: int) -> None:
        _check(lib.fsig_on_own_fill(self._h, self.symbol_id, our_side_is_bid, now_ns), "own fill")

    def on_markout(self, our_side_is_bid: bool, markout_per_share: float) -> None:
        lib.fsig_on_markout(self._h, self.symbol_id, our_side_is_bid, markout_per_share)

    # --- decisions ----------------------------------------------------------------------

    def aggression(self) -> float:
        return lib.fsig_aggression(self._h, self.symbol_id)

    def toxicity(self) -> float:
        return lib.fsig_toxicity(self._h, self.symbol_id)

    def evaluate(self, now_ns: int) -> Trip | None:
        return self.kernel.evaluate(self.symbol_id, now_ns)

    def side_blocked(self, bid_side: bool, now_ns: int) -> bool:
        return self._until[2 * self.symbol_id + (0 if bid_side else 1)] > now_ns

    @property
    def bid_until(self) -> int:
        return self._until[2 * self.symbol_id]

    @property
    def ask_until(self) -> int:
        return self._until[2 * self.symbol_id + 1]

    # --- inspection ---------------------------------------------------------------------

    def _info(self):
        return self.kernel.info(self.symbol_id)

    trips = property(lambda self: self._info().trips)
    buy_vol = property(lambda self: self._info().buy_vol)
    sell_vol = property(lambda self: self._info().sell_vol)
    prints = property(lambda self: self._arrays()[0])
    printed = property(lambda self: self._info().printed)

    @property
    def print_index(self) -> list[int]:
        n = self._info().n_prints
        out = ffi.new("int64_t[]", n + 1)
        lib.fsig_guard_print_index(self._h, self.symbol_id, out)
        return list(out[0:n])
    fills = property(lambda self: self._arrays()[4])
    markouts = property(lambda self: self._arrays()[5])

    def _arrays(self):
        """(prints, _, imbalances, net, fills, markouts) as the reference's lists, oldest first."""
        i = self._info()
        n_p, n_b = i.n_prints, i.n_buckets
        n_f, n_m = (i.n_fills_bid, i.n_fills_ask), (i.n_marks_bid, i.n_marks_ask)
        pb, pq = ffi.new("uint8_t[]", n_p + 1), ffi.new("int64_t[]", n_p + 1)
        imb, net = ffi.new("int64_t[]", n_b + 1), ffi.new("int64_t[]", n_b + 1)
        fb, fa = ffi.new("int64_t[]", n_f[0] + 1), ffi.new("int64_t[]", n_f[1] + 1)
        mb, ma = ffi.new("double[]", n_m[0] + 1), ffi.new("double[]", n_m[1] + 1)
        lib.fsig_guard_arrays(self._h, self.symbol_id, pb, pq, imb, net, fb, fa, mb, ma)
        prints = [(bool(pb[k]), pq[k]) for k in range(n_p)]
        return (prints, None, list(imb[0:n_b]), list(net[0:n_b]),
                [list(fb[0:n_f[0]]), list(fa[0:n_f[1]])], [list(mb[0:n_m[0]]), list(ma[0:n_m[1]])])

    def state_items(self):
        i = self._info()
        scalars = (i.printed, i.buy_vol, i.sell_vol, i.vpin_buy, i.vpin_sell, i.vpin_completed,
                   i.bid_until, i.ask_until, i.trips)
        prints, _, imb, net, fills, marks = self._arrays()
        return (prints, self.print_index, *scalars[:6], imb, net, fills, marks, *scalars[6:])


class KernelTape:
    """TradeTape's API over the kernel (the guards and flow EWMAs it feeds are the kernel's own,
    so the `guards` and `fv` arguments are accepted for the same signature and not read)."""

    def __init__(self, kernel: SignalKernel) -> None:
        self.kernel = kernel
        self._rev = ffi.new("fsig_reversal *")

    def __reduce__(self):
        return (getattr, (self.kernel, "tape"))

    def on_prints(self, prints, guards=None, fv=None) -> None:
        h, on_print = self.kernel.handle, lib.fsig_on_print
        for s, aggressor_buys, qty, match in prints:
            if on_print(h, s, aggressor_buys, qty, match):
                raise IndexError(f"symbol id {s} outside the signal kernel (0..{self.kernel.n - 1})")

    def on_summary(self, summary) -> None:
        """Every print of a packet's fmd_summary (the C packet path's output), in order."""
        lib.fsig_on_summary(self.kernel.handle, summary)

    def break_trade(self, match: int, guards=None, fv=None) -> Reversal | None:
        r = self._rev
        if lib.fsig_break_trade(self.kernel.handle, match, r) != lib.FSIG_OK:
            return None
        return Reversal(r.symbol, bool(r.aggressor_buys), r.qty, bool(r.window), bool(r.vpin))

    def _entries(self) -> tuple[int, tuple]:
        """(n, the log's six columns as C arrays: match, symbol, buys, qty, index, bucket)."""
        cap = lib.FSIG_TAPE_MAX
        cols = (ffi.new("uint64_t[]", cap), ffi.new("uint32_t[]", cap), ffi.new("uint8_t[]", cap),
                ffi.new("int64_t[]", cap), ffi.new("int64_t[]", cap), ffi.new("int64_t[]", cap))
        return lib.fsig_tape_entries(self.kernel.handle, *cols, cap), cols

    def state_items(self):
        k = self.kernel
        n, (match, sym, buys, qty, index, bucket) = self._entries()
        log = [(match[i], (sym[i], bool(buys[i]), qty[i], index[i], bucket[i])) for i in range(n)]
        return list(k.seq[0:k.n]), log

    def state_digest(self) -> str:
        """tape_digest of the C tape, read as arrays (no per-print Python objects)."""
        k = self.kernel
        n, cols = self._entries()
        columns = [np.frombuffer(ffi.buffer(c, n * np.dtype(dtype).itemsize), dtype=dtype)
                   for c, dtype in zip(cols, _TAPE_DTYPES)]
        return tape_digest(k.seq[0:k.n], columns)
