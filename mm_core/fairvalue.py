"""Fair value per symbol: mid, weighted mid, Stoikov's micro-price, multi-level imbalance,
trade-flow and a cross-asset lead through an online beta.

Owns: the signal state (micro-price table and its online calibration counts, flow EWMAs, lead
betas) and the arithmetic combining them into one float price4. Deterministic floats only.
Must not know about wire formats, orders, risk or time sources: the book and trades come in.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

__all__ = [
    "FairValueError", "MicroPriceTable", "MicroPriceEstimator", "EwmaBeta", "FairValueModel",
    "mid", "weighted_mid", "imbalance", "multi_level_imbalance", "without_own", "imbalance_position",
    "table_value",
]


class FairValueError(ValueError):
    """A model parameter or table of the wrong shape or range."""


def mid(bid: int, ask: int) -> float:
    return (bid + ask) * 0.5


def imbalance(bid_qty: int, ask_qty: int) -> float:
    """Stoikov's I = Qb / (Qb + Qa); 0.5 for an empty top."""
    total = bid_qty + ask_qty
    return bid_qty / total if total > 0 else 0.5


def weighted_mid(bid: int, bid_qty: int, ask: int, ask_qty: int) -> float:
    """W = I·Pa + (1 − I)·Pb: leans toward the side with less size (noisy, not a martingale)."""
    i = imbalance(bid_qty, ask_qty)
    return i * ask + (1.0 - i) * bid


def multi_level_imbalance(bids: list[tuple[int, int]], asks: list[tuple[int, int]], decay: float,
                          levels: int | None = None) -> float:
    """Depth imbalance in [-1, 1] over the given levels (the first `levels` of them when given),
    level i weighted by decay**i."""
    num = 0.0
    den = 0.0
    w = 1.0
    nb, na = len(bids), len(asks)
    n = nb if nb > na else na
    if levels is not None and levels < n:
        n = levels
    for i in range(n):
        b = bids[i][1] if i < nb else 0
        a = asks[i][1] if i < na else 0
        num += w * (b - a)
        den += w * (b + a)
        w *= decay
    return num / den if den > 0 else 0.0


def without_own(levels: Iterable[tuple[int, int]], own: dict[int, int]) -> list[tuple[int, int]]:
    """Book levels (best first) with our own resting shares taken out of their price levels;
    a level left with nothing of anyone else's is dropped. Fair value priced off a book that
    holds our own quote follows that quote, and the quote follows fair value: a ratchet."""
    out = []
    for price, qty in levels:
        rest = qty - own.get(price, 0)
        if rest > 0:
            out.append((price, rest))
    return out


class MicroPriceTable:
    """G*(imbalance bucket, spread in ticks) in ticks: micro-price = mid + G·tick.

    Imbalance buckets are equal-width on [0, 1] (n_imb of them); spreads 1..n_spread ticks,
    wider spreads use the last row. The bucket edges are symmetric about 1/2, so the mirror of a
    book (bid and ask sizes swapped) always falls in the mirror bucket n_imb − 1 − b, as Stoikov's
    symmetrisation needs: an edge k/n_imb belongs to the bucket on the side of 1/2 (below 1/2,
    [k/n, (k+1)/n); above it, (k/n, (k+1)/n]). With an odd n_imb an exact balance sits in the
    centre bucket; with an even n_imb it sits on the edge between the two centre buckets and
    counts half in each (it is its own mirror), priced at the mean of the two. Buckets are found
    from the integer sizes, so an exact k/n_imb is never decided by float rounding.
    """

    __slots__ = ("n_imb", "n_spread", "g")

    def __init__(self, n_imb: int = 4, n_spread: int = 4, g: list[list[float]] | None = None) -> None:
        if n_imb < 2 or n_spread < 1:
            raise FairValueError("micro-price table needs n_imb >= 2 and n_spread >= 1")
        self.n_imb = n_imb
        self.n_spread = n_spread
        if g is None:
            g = [[0.0] * n_imb for _ in range(n_spread)]
        if len(g) != n_spread or any(len(row) != n_imb for row in g):
            raise FairValueError(f"micro-price table must be {n_spread} rows of {n_imb}")
        self.g = [[float(x) for x in row] for row in g]

    def position(self, bid_qty: int, ask_qty: int) -> int:
        """Twice the imbalance bucket of a top with these (non-negative) sizes: 2·b in bucket b,
        or the odd n_imb − 1 for an exact balance on the edge between the centre buckets. The
        mirror of position p is 2·(n_imb − 1) − p."""
        return imbalance_position(self.n_imb, bid_qty, ask_qty)

    def spread_row(self, spread_ticks: int) -> int:
        if spread_ticks < 1:
            return 0
        return spread_ticks - 1 if spread_ticks <= self.n_spread else self.n_spread - 1

    def adjustment_ticks(self, bid_qty: int, ask_qty: int, spread_ticks: int) -> float:
        return table_value(self.g[self.spread_row(spread_ticks)], self.position(bid_qty, ask_qty))


def imbalance_position(n_imb: int, bid_qty: int, ask_qty: int) -> int:
    """MicroPriceTable.position: below 1/2, 2·floor(n·I); above it, the mirror of the ask side's;
    an exact balance (or an empty top) n_imb − 1 (even: the centre bucket of an odd n_imb)."""
    if bid_qty < ask_qty:
        return 2 * (n_imb * bid_qty // (bid_qty + ask_qty))
    if bid_qty > ask_qty:
        return 2 * (n_imb - 1 - n_imb * ask_qty // (bid_qty + ask_qty))
    return n_imb - 1


def table_value(row: list[float], pos: int) -> float:
    """G of one spread row at an imbalance position: the bucket's, or on the centre edge the
    mean of the two buckets either side."""
    b = pos >> 1
    return (row[b] + row[b + 1]) * 0.5 if pos & 1 else row[b]


class MicroPriceEstimator:
    """Online calibration of the micro-price table (Stoikov 2018, symmetrised).

    Each book observation is a state X = (spread row, imbalance bucket). Between consecutive
    observations the mid either stays (Q: X -> X') or moves by dM in half ticks clipped to
    {-2,-1,+1,+2} (R1: X -> dM, R2: X -> X'). Every observation is also added mirrored (imbalance
    bucket flipped, dM negated) so the limit is a martingale. An exact balance with an even n_imb
    is half in each centre bucket (MicroPriceTable), so a transition from or to it counts 1/2 (1/4
    between two of them) in each pair of states; every count stays a sum of exact binary
    fractions, so its value does not depend on the order of addition. `calibrate()` computes
    g1 = (I − Q)^-1 R1 K, B = (I − Q)^-1 R2 and G = Σ_{i=0..5} B^i g1 (in ticks).
    """

    DM_TICKS = np.array([-1.0, -0.5, 0.5, 1.0])   # K in ticks, index by dM half-ticks -2,-1,1,2

    def __init__(self, table: MicroPriceTable) -> None:
        self.table = table
        n = table.n_imb * table.n_spread
        self.n_states = n
        # counts as plain lists: one CPython list store per observation beats numpy item access
        self.q = [[0.0] * n for _ in range(n)]
        self.r1 = [[0.0] * 4 for _ in range(n)]
        self.r2 = [[0.0] * n for _ in range(n)]
        self.observations = 0
        self._prev_state = -1     # previous observation: spread row * (2 n_imb − 1) + position
        self._prev_mid2 = 0       # previous mid doubled (bid + ask), integer price4

    def _states(self, row: int, pos: int) -> tuple:
        """The (state, weight) pairs of an observation at (spread row, imbalance position)."""
        base = row * self.table.n_imb + (pos >> 1)
        return ((base, 0.5), (base + 1, 0.5)) if pos & 1 else ((base, 1.0),)

    def observe(self, bid: int, bid_qty: int, ask: int, ask_qty: int, tick: int) -> None:
        t = self.table
        row = t.spread_row((ask - bid) // tick)
        pos = imbalance_position(t.n_imb, bid_qty, ask_qty)
        width = 2 * t.n_imb - 1
        mid2 = bid + ask
        if self._prev_state >= 0:
            prev_row, prev_pos = divmod(self._prev_state, width)
            edge = width - 1                          # position p mirrors to edge − p
            pairs = ((self._states(prev_row, prev_pos), self._states(row, pos), 0),
                     (self._states(prev_row, edge - prev_pos), self._states(row, edge - pos), 1))
            dm_half = round((mid2 - self._prev_mid2) / tick)   # (mid change) / (tick / 2)
            if dm_half == 0:
                q = self.q
                for prevs, states, _ in pairs:
                    for p, wp in prevs:
                        for x, wx in states:
                            q[p][x] += wp * wx
            else:
                dm_half = max(-2, min(2, dm_half))
                k = dm_half + 2 if dm_half < 0 else dm_half + 1
                r1, r2 = self.r1, self.r2
                for prevs, states, mirrored in pairs:
                    kk = 3 - k if mirrored else k
                    for p, wp in prevs:
                        r1[p][kk] += wp
                        for x, wx in states:
                            r2[p][x] += wp * wx
            self.observations += 1
        self._prev_state = row * width + pos
        self._prev_mid2 = mid2

    def state_items(self):
        """The counts and the previous observation: what the next observe() and calibrate() read."""
        return self.q, self.r1, self.r2, self.observations, self._prev_state, self._prev_mid2

    def digest_into(self, h) -> None:
        """state_items into the hash `h`, the count tables as little-endian doubles (their
        repr was most of the engine's state hash; the bits are as strict: -0.0 is not 0.0)."""
        for counts in (self.q, self.r1, self.r2):
            h.update(np.asarray(counts, dtype="<f8").tobytes())
        h.update(repr((self.observations, self._prev_state, self._prev_mid2)).encode())

    def calibrate(self, min_observations: int = 100) -> bool:
        """Recompute the table from the counts; False (table untouched) when not estimable."""
        if self.observations < min_observations:
            return False
        q_counts, r1_counts, r2_counts = np.array(self.q), np.array(self.r1), np.array(self.r2)
        totals = q_counts.sum(axis=1) + r1_counts.sum(axis=1)
        seen = totals > 0
        if not seen.any():
            return False
        denom = np.where(seen, totals, 1.0)[:, None]
        q = q_counts / denom
        r1 = r1_counts / denom
        r2 = r2_counts / denom
        a = np.eye(self.n_states) - q
        try:
            g1 = np.linalg.solve(a, r1 @ self.DM_TICKS)
            b = np.linalg.solve(a, r2)
        except np.linalg.LinAlgError:
            return False
        g = g1.copy()
        term = g1
        for _ in range(5):
            term = b @ term
            g += term
        if not np.all(np.isfinite(g)):
            return False
        t = self.table
        t.g = [[float(g[row * t.n_imb + i]) for i in range(t.n_imb)] for row in range(t.n_spread)]
        return True


class EwmaBeta:
    """Online zero-mean regression slope y ~ beta·x with exponentially weighted moments."""

    __slots__ = ("alpha", "sxy", "sxx", "n", "prior")

    def __init__(self, alpha: float, prior: float = 0.0) -> None:
        if not 0.0 < alpha <= 1.0:
            raise FairValueError(f"EWMA alpha {alpha} outside (0, 1]")
        self.alpha = alpha
        self.prior = prior
        self.sxy = 0.0
        self.sxx = 0.0
        self.n = 0

    def update(self, x: float, y: float) -> None:
        a = self.alpha
        self.sxy += a * (x * y - self.sxy)
        self.sxx += a * (x * x - self.sxx)
        self.n += 1

    @property
    def beta(self) -> float:
        return self.sxy / self.sxx if self.sxx > 1e-18 else self.prior


class FairValueModel:
    """Per-symbol fair value. Arrays are indexed by symbol id; prices are float price4."""

    def __init__(self, n_symbols: int, *, ticks: list[int], n_imb: int = 4, n_spread: int = 4,
                 tables: dict[int, list[list[float]]] | None = None, imbalance_levels: int = 3,
                 level_decay: float = 0.5, w_imbalance: float = 0.0, w_flow: float = 0.0,
                 flow_alpha: float = 0.1, leaders: dict[int, int] | None = None,
                 lead_alpha: float = 0.05, lead_prior: float = 0.0, lead_min_samples: int = 20,
                 calibrate_every: int = 0, base: str = "micro") -> None:
        if len(ticks) != n_symbols:
            raise FairValueError("one tick size per symbol slot is needed")
        if base not in ("micro", "mid", "weighted"):
            raise FairValueError(f"fair value base {base!r} is not micro, mid or weighted")
        self.base = base           # the starting point the other signals adjust
        self._base_micro, self._base_mid = base == "micro", base == "mid"
        self.n = n_symbols
        self.ticks = list(ticks)
        self.tables = [MicroPriceTable(n_imb, n_spread, (tables or {}).get(s)) for s in range(n_symbols)]
        self.estimators = [MicroPriceEstimator(t) for t in self.tables] if calibrate_every else None
        self.calibrate_every = calibrate_every
        self.levels = imbalance_levels
        self.decay = level_decay
        self.w_imbalance = w_imbalance
        self.w_flow = w_flow
        self.flow_alpha = flow_alpha
        self.flow_signed = [0.0] * n_symbols
        self.flow_abs = [0.0] * n_symbols
        self.leaders = dict(sorted((leaders or {}).items()))     # follower -> leader
        self.lead_beta = {f: EwmaBeta(lead_alpha, lead_prior) for f in self.leaders}
        self.lead_ref = {f: 0.0 for f in self.leaders}           # leader mid at follower's last move
        self.lead_min_samples = lead_min_samples
        self.last_top: list[tuple] = [()] * n_symbols
        self.mids = [0.0] * n_symbols
        self.micro = [0.0] * n_symbols
        self.fair = [0.0] * n_symbols

    def on_trade(self, symbol_id: int, aggressor_buys: bool, qty: int) -> None:
        a = self.flow_alpha
        signed = qty if aggressor_buys else -qty
        self.flow_signed[symbol_id] += a * (signed - self.flow_signed[symbol_id])
        self.flow_abs[symbol_id] += a * (qty - self.flow_abs[symbol_id])

    def reverse_trade(self, symbol_id: int, aggressor_buys: bool, qty: int, later: int) -> None:
        """Take a broken trade back out of the flow EWMAs: its term, decayed by the `later`
        trades on this symbol since, is removed (the EWMAs are linear in each trade)."""
        a = self.flow_alpha
        w = a * (1.0 - a) ** later
        self.flow_signed[symbol_id] -= w * (qty if aggressor_buys else -qty)
        self.flow_abs[symbol_id] -= w * qty

    def flow(self, symbol_id: int) -> float:
        """Recent aggressor flow in [-1, 1]: +1 all buyers lifting offers."""
        d = self.flow_abs[symbol_id]
        return self.flow_signed[symbol_id] / d if d > 0 else 0.0

    def update(self, symbol_id: int, bid: int, bid_qty: int, ask: int, ask_qty: int,
               depth_imbalance: float = 0.0) -> float:
        """Recompute fair value from the top of book and the multi-level depth imbalance
        (see multi_level_imbalance); 0.0 when a side is empty or the book is locked/crossed."""
        if bid <= 0 or ask <= 0 or ask <= bid:
            self.fair[symbol_id] = 0.0
            return 0.0
        tick = self.ticks[symbol_id]
        m = (bid + ask) * 0.5
        mids = self.mids
        old_mid = mids[symbol_id]
        mids[symbol_id] = m
        est = self.estimators
        if est is not None:
            top = (bid, bid_qty, ask, ask_qty)
            if top != self.last_top[symbol_id]:
                # the estimator's states are top-of-book states: deeper changes are not observations
                self.last_top[symbol_id] = top
                e = est[symbol_id]
                e.observe(bid, bid_qty, ask, ask_qty, tick)
                if e.observations % self.calibrate_every == 0 and e.observations:
                    e.calibrate()
        total = bid_qty + ask_qty
        imb = bid_qty / total if total > 0 else 0.5
        table = self.tables[symbol_id]          # table.adjustment_ticks(), inlined
        n_imb, n_spread = table.n_imb, table.n_spread
        spread_ticks = (ask - bid) // tick
        row = 0 if spread_ticks < 1 else spread_ticks - 1 if spread_ticks <= n_spread else n_spread - 1
        g_row = table.g[row]
        if bid_qty < ask_qty:
            g = g_row[n_imb * bid_qty // total]
        elif bid_qty > ask_qty:
            g = g_row[n_imb - 1 - n_imb * ask_qty // total]
        else:
            g = table_value(g_row, n_imb - 1)
        micro = m + g * tick
        self.micro[symbol_id] = micro
        half = (ask - bid) * 0.5
        fv = micro if self._base_micro else m if self._base_mid else imb * ask + (1.0 - imb) * bid
        if self.w_imbalance:
            fv += self.w_imbalance * depth_imbalance * half
        if self.w_flow:
            fv += self.w_flow * self.flow(symbol_id) * half
        if symbol_id in self.leaders:
            fv += self._lead(symbol_id, m, old_mid)
        self.fair[symbol_id] = fv
        return fv

    def _lead(self, follower: int, f_mid: float, f_old: float) -> float:
        """Shift by beta × the leader's return since the follower last moved."""
        leader_mid = self.mids[self.leaders[follower]]
        ref = self.lead_ref[follower]
        if leader_mid <= 0:
            return 0.0
        if ref <= 0:
            self.lead_ref[follower] = leader_mid
            return 0.0
        beta = self.lead_beta[follower]
        if f_mid != f_old and f_old > 0:
            beta.update(leader_mid / ref - 1.0, f_mid / f_old - 1.0)
            self.lead_ref[follower] = leader_mid
            return 0.0
        # the prior until the regression has its samples: one early co-move sets beta to y/x
        b = beta.beta if beta.n >= self.lead_min_samples else beta.prior
        return b * (leader_mid / ref - 1.0) * f_mid

    def last_tops(self) -> list[tuple]:
        """Per symbol the top the estimator last observed, () before the first."""
        return list(self.last_top)

    def state_items(self):
        est = self.estimators
        return self._state(None if est is None else [e.state_items() for e in est])

    def state_digest(self):
        """state_items with the estimators' counts entered as one SHA-256 (for the state hash)."""
        est = self.estimators
        if est is None:
            return self._state(None)
        h = hashlib.sha256()
        for e in est:
            e.digest_into(h)
        return self._state(h.hexdigest())

    def _state(self, estimators):
        return (self.mids, self.micro, self.fair, self.flow_signed, self.flow_abs,
                [t.g for t in self.tables],
                [(f, b.sxy, b.sxx, b.n, self.lead_ref[f]) for f, b in self.lead_beta.items()],
                estimators, self.last_tops())
