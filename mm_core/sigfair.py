"""The compiled signal kernel's fair value, volatility and hedge-regression state behind the API
of the reference classes: FairValueModel (its arrays, micro-price tables, estimator counts and
lead betas), VolEstimator and the Hedger's pairs, as views on the C arrays of a SignalKernel
(mm_core/fastsig.h, stage 1b). The estimator's calibrate() stays the reference's numpy code, run
on views of the C counts. Pickled through the kernel's blob; knows nothing of orders or wires.
"""
from __future__ import annotations

import numpy as np

from mm_core._fastmd_cffi import ffi, lib
from mm_core.fairvalue import EwmaBeta, FairValueModel, MicroPriceEstimator, MicroPriceTable
from mm_core.hedger import MAX_BETA, Hedger, HedgeParams, _Pair
from mm_core.sigkernel import SignalKernel
from mm_core.spread import VolEstimator

__all__ = ["KernelFairValue", "KernelVol", "KernelHedger", "fv_setup"]


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

    def state_items(self):
        return (self.q.tolist(), self.r1.tolist(), self.r2.tolist(), self.observations,
                self._prev_state, self._prev_mid2)

    _prev_state = _Slot(lib.FSIG_I_EST_PREV_STATE, ints=True)
    _prev_mid2 = _Slot(lib.FSIG_I_EST_PREV_MID2, ints=True)


class KernelVol(VolEstimator):
    """VolEstimator over the kernel's volatility state of one symbol."""

    __slots__ = ("_k", "_s")

    def __init__(self, kernel: SignalKernel, symbol_id: int, rate: float) -> None:
        self._k, self._s = kernel, symbol_id
        self.rate = rate
        self.prior_var_s = kernel.darray(lib.FSIG_D_VOL_PRIOR_VAR)[symbol_id]

    def __reduce__(self):
        return (KernelVol, (self._k, self._s, self.rate))

    var_s = _Slot(lib.FSIG_D_VOL_VAR)
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
        self.hedged = self.in_flight = self.goal = 0
        self.over_since = -1
        self.active = False

    def __reduce__(self):
        return (_pair, (self._k, self.symbol_id, self.hedge_id, self.beta.alpha, self.beta.prior,
                        self.hedged, self.in_flight, self.over_since, self.active, self.goal))


def _pair(kernel, symbol_id, hedge_id, alpha, prior, hedged, in_flight, over_since, active, goal) -> KernelPair:
    # only the regression's alpha and prior are read: any prior the config allowed is within MAX_BETA
    pair = KernelPair(kernel, symbol_id, hedge_id,
                      HedgeParams(beta_alpha=alpha, beta_prior=prior, max_beta=MAX_BETA))
    pair.hedged, pair.in_flight, pair.over_since, pair.active, pair.goal = hedged, in_flight, over_since, active, goal
    return pair


_PAIR_N = lib.FSIG_P_N


class KernelHedger(Hedger):
    """Hedger whose pairs' regressions are the kernel's (the engine's reprice observes in C)."""

    def __init__(self, kernel: SignalKernel, pairs: dict[int, int], params: HedgeParams) -> None:
        super().__init__(pairs, params)
        self.sig = kernel
        self.pairs = {s: KernelPair(kernel, s, h, params) for s, h in sorted(pairs.items())}

    # the engine's fsig_react pair mirror (sigreact.ReactMirror.pair), written after every change
    # of a pair's hedged / in_flight / over_since / active / goal; None: no mirror
    mirror = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("mirror", None)
        return state

    def _mirror(self, symbol_id: int) -> None:
        m = self.mirror
        if m is not None:
            p = self.pairs[symbol_id]
            b = symbol_id * _PAIR_N
            m[b:b + _PAIR_N] = [int(p.active), p.in_flight, p.over_since, p.hedged, p.goal]

    def observe(self, symbol_id: int, s_mid: float, h_mid: float) -> None:
        if symbol_id in self.pairs:
            lib.fsig_hedge_observe(self.sig.handle, symbol_id, s_mid, h_mid)

    def idle(self, symbol_id: int, position: int) -> bool:
        timer = self.pairs[symbol_id].over_since
        if super().idle(symbol_id, position):
            if timer != -1:             # the sustain timer was reset
                self._mirror(symbol_id)
            return True
        return False

    def decide(self, symbol_id: int, *args):
        order = super().decide(symbol_id, *args)
        if symbol_id in self.pairs:
            self._mirror(symbol_id)
        return order

    def on_fill(self, symbol_id: int, side, qty: int) -> None:
        super().on_fill(symbol_id, side, qty)
        self._mirror(symbol_id)

    def on_done(self, symbol_id: int) -> None:
        super().on_done(symbol_id)
        self._mirror(symbol_id)


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

    def last_tops(self) -> list[tuple]:
        k = self.sig
        has, top = k.iarray(lib.FSIG_I_HAS_TOP), k.iarray(lib.FSIG_I_LAST_TOP)
        return [tuple(top[4 * s:4 * s + 4]) if has[s] else () for s in range(self.n)]

    def _state(self, estimators):
        items = super()._state(estimators)
        n = self.n
        return tuple(list(x[0:n]) for x in items[:5]) + items[5:]


def fv_setup(n: int, fv, ticks: list[int], leaders: dict[int, int], prior_sigma: list[float],
             hedges: dict[int, int], vol_rate: float, hedge: HedgeParams,
             followers: list[list[int]] | None = None) -> dict:
    """The fsig_fv_init arguments from the engine's config (fv: config.FairValueParams), and the
    follower lists the packet call reprices with each symbol (the engine's order)."""
    return dict(n_imb=fv.n_imb, n_spread=fv.n_spread, base=("micro", "mid", "weighted").index(fv.base),
                w_imbalance=fv.w_imbalance, w_flow=fv.w_flow, lead_alpha=fv.lead_alpha,
                lead_prior=fv.lead_prior, lead_min_samples=fv.lead_min_samples,
                calibrate_every=fv.calibrate_every, vol_rate=vol_rate,
                hedge_alpha=hedge.beta_alpha, hedge_prior=hedge.beta_prior, ticks=list(ticks),
                leader=[leaders.get(s, -1) for s in range(n)], prior_sigma=list(prior_sigma),
                hedge=[hedges.get(s, -1) for s in range(n)],
                followers=[list(f) for f in followers] if followers else [[] for _ in range(n)])
