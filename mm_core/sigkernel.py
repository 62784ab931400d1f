"""The compiled signal kernel (mm_core/fastsig.h) behind the API of the reference classes.

Owns the thin wrappers the engine uses in place of TradeTape, SymbolGuard, FairValueModel (its
arrays, tables, estimator counts and lead betas), VolEstimator and the Hedger's regressions when
it runs compiled: the state lives in one C struct, `state_items()` equals the
reference's in value and structure, and a pickle carries the C state as one byte blob. The
Python classes (trades.py, guard.py, fairvalue.py) stay the reference the kernel is tested against
(tests/mm_core/test_sig*.py). Must not know about orders, wire formats or clocks.
"""
from __future__ import annotations

import numpy as np

from mm_core._fastmd_cffi import ffi, lib
from mm_core.fairvalue import EwmaBeta, FairValueModel, MicroPriceEstimator, MicroPriceTable
from mm_core.guard import GuardParams, Trip
from mm_core.hedger import Hedger, HedgeParams, _Pair
from mm_core.spread import VolEstimator
from mm_core.trades import TAPE_MAX, Reversal

__all__ = ["SignalKernel", "KernelGuard", "KernelTape", "KernelFairValue", "KernelVol", "KernelHedger",
           "fv_setup", "trip_of"]

assert TAPE_MAX == lib.FSIG_TAPE_MAX, "trades.TAPE_MAX and fastsig.h disagree"

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
        scalars = (i.buy_vol, i.sell_vol, i.vpin_buy, i.vpin_sell, i.vpin_completed,
                   i.bid_until, i.ask_until, i.trips)
        prints, _, imb, net, fills, marks = self._arrays()
        return (prints, *scalars[:5], imb, net, fills, marks, *scalars[5:])


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

    def state_items(self):
        k = self.kernel
        cap = lib.FSIG_TAPE_MAX
        match, sym = ffi.new("uint64_t[]", cap), ffi.new("uint32_t[]", cap)
        buys, qty = ffi.new("uint8_t[]", cap), ffi.new("int64_t[]", cap)
        index, bucket = ffi.new("int64_t[]", cap), ffi.new("int64_t[]", cap)
        n = lib.fsig_tape_entries(k.handle, match, sym, buys, qty, index, bucket, cap)
        log = [(match[i], (sym[i], bool(buys[i]), qty[i], index[i], bucket[i])) for i in range(n)]
        return list(k.seq[0:k.n]), log


class _Slot:
    """A property over element `index` of one kernel array (the view's `_k`, `_s` give kernel and
    symbol); `ints` picks fsig_fv_ints over fsig_fv_array."""

    def __init__(self, which: int, ints: bool = False) -> None:
        self.which, self.ints = which, ints

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        k = obj._k
        return (k.iarray if self.ints else k.darray)(self.which)[obj._s]

    def __set__(self, obj, value) -> None:
        k = obj._k
        (k.iarray if self.ints else k.darray)(self.which)[obj._s] = value


class KernelBeta(EwmaBeta):
    """EwmaBeta over a kernel symbol's (sxy, sxx, n) slots: the lead beta of a follower or the
    hedge ratio regression of a hedged symbol."""

    __slots__ = ("_k", "_s", "_kind")
    _ARRAYS = {"lead": (lib.FSIG_D_LEAD_SXY, lib.FSIG_D_LEAD_SXX, lib.FSIG_I_LEAD_N),
               "hedge": (lib.FSIG_D_HEDGE_SXY, lib.FSIG_D_HEDGE_SXX, lib.FSIG_I_HEDGE_N)}

    def __init__(self, kernel: SignalKernel, kind: str, symbol_id: int, alpha: float, prior: float) -> None:
        self._k, self._s, self._kind = kernel, symbol_id, kind
        self.alpha, self.prior = alpha, prior

    def __reduce__(self):
        return (KernelBeta, (self._k, self._kind, self._s, self.alpha, self.prior))

    def _a(self, i: int):
        which = self._ARRAYS[self._kind][i]
        return (self._k.iarray if i == 2 else self._k.darray)(which)

    sxy = property(lambda self: self._a(0)[self._s], lambda self, v: self._a(0).__setitem__(self._s, v))
    sxx = property(lambda self: self._a(1)[self._s], lambda self, v: self._a(1).__setitem__(self._s, v))
    n = property(lambda self: self._a(2)[self._s], lambda self, v: self._a(2).__setitem__(self._s, v))


class KernelTable(MicroPriceTable):
    """MicroPriceTable whose G* rows are the kernel's table of one symbol."""

    __slots__ = ("_k", "_s")

    def __init__(self, kernel: SignalKernel, symbol_id: int, n_imb: int, n_spread: int) -> None:
        self._k, self._s = kernel, symbol_id
        self.n_imb, self.n_spread = n_imb, n_spread

    def __reduce__(self):
        return (KernelTable, (self._k, self._s, self.n_imb, self.n_spread))

    @property
    def g(self) -> list[list[float]]:
        p, base, w = self._k.darray(lib.FSIG_D_TABLES), self._s * self.n_imb * self.n_spread, self.n_imb
        return [list(p[base + r * w: base + (r + 1) * w]) for r in range(self.n_spread)]

    @g.setter
    def g(self, rows: list[list[float]]) -> None:
        p, base, w = self._k.darray(lib.FSIG_D_TABLES), self._s * self.n_imb * self.n_spread, self.n_imb
        for r, row in enumerate(rows):
            for i, x in enumerate(row):
                p[base + r * w + i] = float(x)


class KernelEstimator(MicroPriceEstimator):
    """MicroPriceEstimator over the kernel's counts of one symbol: observe() runs in C inside
    fsig_fv_update; calibrate() is the reference's numpy code, reading the counts through these
    array views and writing the table through KernelTable."""

    def __init__(self, kernel: SignalKernel, symbol_id: int, table: KernelTable) -> None:
        self._k, self._s = kernel, symbol_id
        self.table = table
        self.n_states = table.n_imb * table.n_spread

    def __reduce__(self):
        return (KernelEstimator, (self._k, self._s, self.table))

    def _counts(self, which: int, width: int) -> np.ndarray:
        ns = self.n_states
        p = self._k.darray(which) + self._s * ns * width
        return np.frombuffer(ffi.buffer(p, ns * width * 8), dtype=np.float64).reshape(ns, width)

    q = property(lambda self: self._counts(lib.FSIG_D_EST_Q, self.n_states))
    r1 = property(lambda self: self._counts(lib.FSIG_D_EST_R1, 4))
    r2 = property(lambda self: self._counts(lib.FSIG_D_EST_R2, self.n_states))
    observations = _Slot(lib.FSIG_I_EST_OBS, ints=True)
    _prev_state = _Slot(lib.FSIG_I_EST_PREV_STATE, ints=True)
    _prev_mid2 = _Slot(lib.FSIG_I_EST_PREV_MID2, ints=True)


class KernelVol(VolEstimator):
    """VolEstimator over the kernel's volatility state of one symbol."""

    __slots__ = ("_k", "_s")

    def __init__(self, kernel: SignalKernel, symbol_id: int, alpha: float) -> None:
        self._k, self._s = kernel, symbol_id
        self.alpha = alpha
        self.prior_var_s = kernel.darray(lib.FSIG_D_VOL_PRIOR_VAR)[symbol_id]

    def __reduce__(self):
        return (KernelVol, (self._k, self._s, self.alpha))

    m2 = _Slot(lib.FSIG_D_VOL_M2)
    dt = _Slot(lib.FSIG_D_VOL_DT)
    last_mid = _Slot(lib.FSIG_D_VOL_LAST_MID)
    last_ns = _Slot(lib.FSIG_I_VOL_LAST_NS, ints=True)
    n = _Slot(lib.FSIG_I_VOL_N, ints=True)

    def update(self, mid: float, now_ns: int) -> bool:
        return bool(lib.fsig_vol_update(self._k.handle, self._s, mid, now_ns))

    @property
    def variance_per_s(self) -> float:
        return lib.fsig_variance_per_s(self._k.handle, self._s)


class KernelPair(_Pair):
    """hedger._Pair whose regression state (beta, last mids) is the kernel's."""

    __slots__ = ("_k", "_s")
    last_s = _Slot(lib.FSIG_D_HEDGE_LAST_S)
    last_h = _Slot(lib.FSIG_D_HEDGE_LAST_H)

    def __init__(self, kernel: SignalKernel, symbol_id: int, hedge_id: int, p: HedgeParams) -> None:
        self._k, self._s = kernel, symbol_id
        self.symbol_id, self.hedge_id = symbol_id, hedge_id
        self.beta = KernelBeta(kernel, "hedge", symbol_id, p.beta_alpha, p.beta_prior)
        self.hedged = self.in_flight = 0
        self.over_since = -1
        self.active = False

    def __reduce__(self):
        return (_pair, (self._k, self.symbol_id, self.hedge_id, self.beta.alpha, self.beta.prior,
                        self.hedged, self.in_flight, self.over_since, self.active))


def _pair(kernel, symbol_id, hedge_id, alpha, prior, hedged, in_flight, over_since, active) -> KernelPair:
    pair = KernelPair(kernel, symbol_id, hedge_id, HedgeParams(beta_alpha=alpha, beta_prior=prior))
    pair.hedged, pair.in_flight, pair.over_since, pair.active = hedged, in_flight, over_since, active
    return pair


class KernelHedger(Hedger):
    """Hedger whose pairs' regressions are the kernel's (the engine's reprice observes in C)."""

    def __init__(self, kernel: SignalKernel, pairs: dict[int, int], params: HedgeParams) -> None:
        super().__init__(pairs, params)
        self.sig = kernel
        self.pairs = {s: KernelPair(kernel, s, h, params) for s, h in sorted(pairs.items())}

    def observe(self, symbol_id: int, s_mid: float, h_mid: float) -> None:
        if symbol_id in self.pairs:
            lib.fsig_hedge_observe(self.sig.handle, symbol_id, s_mid, h_mid)


_POINTERS = {"flow_signed": None, "flow_abs": None, "mids": lib.FSIG_D_MIDS,
             "micro": lib.FSIG_D_MICRO, "fair": lib.FSIG_D_FAIR, "lead_ref": lib.FSIG_D_LEAD_REF}


class KernelFairValue(FairValueModel):
    """FairValueModel on the kernel: every array is a view of the C state, update() is
    fsig_fv_update (calibrating through the reference's numpy code when it asks)."""

    def __init__(self, kernel: SignalKernel, n_symbols: int, **kwargs) -> None:
        super().__init__(n_symbols, flow_alpha=kernel.flow_alpha, **kwargs)
        self.sig = kernel
        initial = [t.g for t in self.tables]
        self.tables = [KernelTable(kernel, s, t.n_imb, t.n_spread) for s, t in enumerate(self.tables)]
        for table, rows in zip(self.tables, initial):
            table.g = rows
        if self.estimators is not None:
            self.estimators = [KernelEstimator(kernel, s, t) for s, t in enumerate(self.tables)]
        alpha_prior = [(b.alpha, b.prior) for b in self.lead_beta.values()]
        self.lead_beta = {f: KernelBeta(kernel, "lead", f, a, p)
                          for f, (a, p) in zip(self.lead_beta, alpha_prior)}
        del self.last_top                      # the kernel keeps the estimator's last top
        self._fair_out = None
        self._bind()

    def _bind(self) -> None:
        k = self.sig
        self.flow_signed, self.flow_abs = k.flow_signed, k.flow_abs
        for name, which in _POINTERS.items():
            if which is not None:
                setattr(self, name, k.darray(which))
        self._fair_out = ffi.new("double *")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in (*_POINTERS, "_fair_out"):
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    def update(self, symbol_id: int, bid: int, bid_qty: int, ask: int, ask_qty: int,
               depth_imbalance: float = 0.0) -> float:
        out, h = self._fair_out, self.sig.handle
        rc = lib.fsig_fv_update(h, symbol_id, bid, bid_qty, ask, ask_qty, depth_imbalance, out)
        if rc == lib.FSIG_CALIBRATE:
            self.estimators[symbol_id].calibrate()
            lib.fsig_fv_finish(h, out)
        elif rc:
            raise IndexError(f"symbol id {symbol_id} outside the fair value model (0..{self.n - 1})")
        return out[0]

    def calibrate_and_finish_reprice(self, symbol_id: int) -> float:
        """After fsig_reprice asked for it: the reference's calibrate(), then the rest in C."""
        self.estimators[symbol_id].calibrate()
        lib.fsig_reprice_finish(self.sig.handle, self._fair_out)
        return self._fair_out[0]

    def state_items(self):
        items = super().state_items()
        n = self.n
        return tuple(list(x[0:n]) for x in items[:5]) + items[5:]


def fv_setup(n: int, fv, ticks: list[int], leaders: dict[int, int], prior_sigma: list[float],
             hedges: dict[int, int], vol_alpha: float, hedge: HedgeParams,
             followers: list[list[int]] | None = None) -> dict:
    """The fsig_fv_init arguments from the engine's config (fv: config.FairValueParams), and the
    follower lists the packet call reprices with each symbol (the engine's order)."""
    return dict(n_imb=fv.n_imb, n_spread=fv.n_spread, base=("micro", "mid", "weighted").index(fv.base),
                w_imbalance=fv.w_imbalance, w_flow=fv.w_flow, lead_alpha=fv.lead_alpha,
                lead_prior=fv.lead_prior, calibrate_every=fv.calibrate_every, vol_alpha=vol_alpha,
                hedge_alpha=hedge.beta_alpha, hedge_prior=hedge.beta_prior, ticks=list(ticks),
                leader=[leaders.get(s, -1) for s in range(n)], prior_sigma=list(prior_sigma),
                hedge=[hedges.get(s, -1) for s in range(n)],
                followers=[list(f) for f in followers] if followers else [[] for _ in range(n)])
