"""Stage 2 of the compiled signal kernel: the C mirrors (fsig_react) of the engine's Python-owned inputs.

Owns the fsig_react struct and its arrays: the configuration the per-packet reaction reads
(quoted symbols, reference ticks, hedge lists), and the mirrors of values the Python code owns
(positions, hedge holds, halted symbols, the quote sides backing off after a denial, the risk
feed last told, the quote memo, our working quotes, the hedger's pairs, the adverse-horizon
markout count and due time, and what a memo miss prices with: each symbol's recent markout and
adverse rate, the gateway's multipliers, collar and each symbol's max_position and order
caps). `values()`
computes every mirror from the engine's Python state in one place: `pull()` writes them all
(setup and restore) and `stale()` names the ones that differ (the lockstep tests call it after
every event). Between those, each owner writes its mirror where its value changes
(mm_core/engine.py, sigfair.KernelHedger). Must not know about wire formats or clocks.
"""
from __future__ import annotations

from mm_core._fastmd_cffi import ffi, lib
from mm_core.oms import OrderState
from mm_core.risk import TradingState
from mm_core.sigmature import MarkoutQueues
from mm_core.types import Purpose, Side

__all__ = ["RISK_CAPS", "ReactMirror", "memo_words", "work_words"]

_ANSWERED = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)
_ACCEPTED, _PARTIAL = _ANSWERED
_SIDES = (Side.BUY, Side.SELL)
_QUOTE_VALUE = Purpose.QUOTE.value
_MIRRORS = ("position", "hold", "halted", "sent", "memo", "work", "pair", "blocked", "denied")
_SCALARS = ("markout_n", "next_due_ns")
RISK_CAPS = ("max_position", "max_order_qty", "max_order_value")     # set_risk's mirrors
_FLOATS = ("markout", "adverse")
_NO_WORK = [0] * lib.FSIG_W_N
_NO_PAIR = [0] * lib.FSIG_P_N
_M_N, _W_N = lib.FSIG_M_N, lib.FSIG_W_N       # plain ints for the per-call code
_FLOG_CAP = 1024        # risk feeds a run of packets may defer before it stops for Python
_BEYOND_C = 2**53       # a limit fq_price does not take (FQ_RANGE): Python prices the quote


def _flat(lists: list[list[int]]) -> tuple[list[int], list[int]]:
    """Lists as one array and the offsets of each (off[s] .. off[s+1])."""
    flat, off = [], [0]
    for items in lists:
        flat.extend(items)
        off.append(len(flat))
    return flat, off


def _risk_caps(risk, n: int) -> dict[str, list[int]]:
    """The gateway's position and order caps per symbol as the C reaction reads them (a limit
    past _BEYOND_C is written as it, which fq_price refuses: Python prices that quote)."""
    caps = [risk.order_caps(s) for s in range(n)]
    positions = [min(risk.limits.for_symbol(s).max_position, _BEYOND_C) for s in range(n)]
    return dict(zip(RISK_CAPS, (positions, [min(qty, _BEYOND_C) for qty, _ in caps],
                                [min(value, _BEYOND_C) for _, value in caps])))


def _blocked(m, n: int) -> list[int]:
    """Metrics.blocked as one flag per symbol."""
    flags = [0] * n
    for s in m.blocked:
        flags[s] = 1
    return flags


def _denied(engine) -> list[int]:
    """Engine.denied_until of each symbol's buy then sell quotes (0: none)."""
    until = engine.denied_until
    return [until.get((s, int(side), _QUOTE_VALUE), 0) for s in range(engine.n) for side in _SIDES]


def memo_words(memo) -> list[int]:
    """Engine.quote_memo[s] as FSIG_M_N words: valid, the key, the quote."""
    if memo is None:
        return [0] * lib.FSIG_M_N
    key, quote = memo
    return [1, *(int(k) for k in key), *quote]


def work_words(oms, slot) -> list[int]:
    """The working order of one quote slot as FSIG_W_N words: present, price, leaves, answered,
    sent time."""
    token = oms.working.get(slot)
    if token is None:
        return [0, 0, 0, 0, 0]
    order = oms.orders[token]
    return [1, order.price, order.leaves, int(order.fsm.state in _ANSWERED), order.sent_ns]


class ReactMirror:
    """One engine's fsig_react; `r` is the struct fsig_packet.react points at."""

    price_misses = True     # False: memo misses return to Python (the tests' stage 2 reference)
    mature_in_c = True      # False: a run of packets stops for Python at due markouts (the reference)
    _metrics_seen = None    # (Metrics, its adverse-horizon markout count) set_metrics last wrote
    priced = 0              # memo misses the C reaction priced (benchmark figure)

    def __init__(self, engine) -> None:
        n = engine.n
        self.n = n
        r = self.r = ffi.new("fsig_react *")
        self._keep: list = []

        def arr(name: str, ctype: str, values):
            a = ffi.new(f"{ctype}[]", values)
            self._keep.append(a)
            setattr(r, name, a)
            return a
        arr("quoted", "uint8_t", [int(q) for q in engine.is_quoted])
        arr("ref_tick", "int64_t", engine.ref_ticks)
        for name, lists in (("held_of", engine.hedge_of), ("targets", engine.hedge_targets)):
            flat, off = _flat(lists)
            arr(name, "uint32_t", flat or [0])
            arr("held_off" if name == "held_of" else "targets_off", "uint32_t", off)
        hedge_id = [-1] * n
        for s, pair in engine.hedger.pairs.items():
            hedge_id[s] = pair.hedge_id
        arr("hedge_id", "int64_t", hedge_id)
        arr("half_penny", "uint8_t", [int(t.half_penny) for t in engine.ticks])
        self.max_position = arr("max_position", "int64_t", n)     # set_risk writes these
        self.max_order_qty = arr("max_order_qty", "int64_t", n)
        self.max_order_value = arr("max_order_value", "int64_t", n)
        r.qc = engine.quote_pricer.config if self.price_misses else ffi.NULL
        r.reducing_state = int(TradingState.REDUCING)
        r.refresh_ns = engine.risk_refresh_ns
        r.rest_ns = engine.cfg.requote_rest_ns
        hp = engine.hedger.p
        r.trigger, r.hedge_keep, r.hedge_lot, r.hedge_band = hp.trigger, hp.keep, hp.lot, hp.band
        r.hedge_min_samples, r.hedge_prior, r.hedge_max_beta = hp.min_samples, hp.beta_prior, hp.max_beta
        r.hedge_hold_ns = hp.hold_ns
        r.halted_state = int(TradingState.HALTED)
        sizes = {"position": n, "hold": n, "halted": n, "sent": n * lib.FSIG_S_N,
                 "memo": n * lib.FSIG_M_N, "work": n * 2 * lib.FSIG_W_N, "pair": n * lib.FSIG_P_N,
                 "blocked": n, "denied": 2 * n}
        for name in _MIRRORS:
            setattr(self, name, arr(name, "int64_t", sizes[name]))
        arr("feed", "uint32_t", n)
        arr("memo_new", "uint32_t", n)
        # fsig_on_packets' deferred feeds (replay's batch path; Engine._settle_feeds applies them)
        r.flog_cap = _FLOG_CAP
        self.flog = (arr("flog_sym", "uint32_t", _FLOG_CAP), arr("flog_fair", "double", _FLOG_CAP),
                     arr("flog_ns", "int64_t", _FLOG_CAP))
        for name in _FLOATS:
            setattr(self, name, arr(name, "double", n))
        # Metrics' markout queues, for the markouts a run of packets matures in C
        self.markouts = MarkoutQueues(r, self.markout, n, self.mature_in_c)
        # the work mirror's offset of each quote slot (OMS working key)
        self._slot_at = {slot: (2 * s + i) * lib.FSIG_W_N for s, slots in enumerate(engine.quote_slots)
                         for i, slot in enumerate(slots)}
        self.pull(engine)

    @staticmethod
    def values(engine) -> dict[str, list[int]]:
        """Every mirror as the engine's Python state gives it now."""
        oms, hedger, m = engine.oms, engine.hedger, engine.metrics
        pairs = []
        for s in range(engine.n):
            p = hedger.pairs.get(s)
            pairs.extend(_NO_PAIR if p is None else [int(p.active), p.in_flight, p.over_since, p.hedged, p.goal])
        return {
            "position": list(engine.inventory.position),
            "hold": list(engine.hedge_hold),
            "halted": [int(h) for h in engine.halted_symbols],
            "sent": [int(x) for sent in engine.risk_sent for x in sent],
            "memo": [w for memo in engine.quote_memo for w in memo_words(memo)],
            "work": [w for slots in engine.quote_slots for slot in slots for w in work_words(oms, slot)],
            "pair": pairs,
            "markout_n": [m.markout_n[m.adverse_horizon]],
            "next_due_ns": [m.next_due_ns],
            "blocked": _blocked(m, engine.n),
            "denied": _denied(engine),
            "markout": list(m.recent_markout),
            "adverse": [m.adverse_rate(s) for s in range(engine.n)],
            **_risk_caps(engine.risk, engine.n),
        }

    def _current(self, name: str) -> list[int]:
        if name in _SCALARS:
            return [getattr(self.r, name)]
        return list(getattr(self, name))

    def pull(self, engine) -> None:
        """Write every mirror from the engine's Python state."""
        for name, words in self.values(engine).items():
            if name in _SCALARS:
                setattr(self.r, name, words[0])
            else:
                getattr(self, name)[0:len(words)] = words
        self._blocked_set = set(engine.metrics.blocked)
        at = self._slot_at
        self._work_written = [at[slot] for slot in engine.oms.working if slot in at]
        self._metrics_seen = None           # set_metrics writes markout and adverse next time

    def stale(self, engine) -> list[str]:
        """The mirrors that differ from the engine's Python state (empty: none)."""
        return [name for name, words in self.values(engine).items() if self._current(name) != words]

    def set_risk(self, risk) -> None:
        """The gateway's state, limits version, multipliers, collar, position caps and order
        caps (read per packet: the engine calls this when the state or the limits version moved,
        and after its own work; the order caps follow from those two for the stocks quoted)."""
        r = self.r
        r.risk_state = risk.state
        r.limits_version = risk.limits_version
        r.spread_mult = risk.spread_multiplier
        r.size_mult = risk.size_multiplier
        limits = risk.limits
        r.collar_bps = limits.collar_fair_bps
        for name, words in _risk_caps(risk, self.n).items():
            getattr(self, name)[0:self.n] = words

    def memos_from_c(self, quote_memo: list, states) -> None:
        """The memos fsig_react_from priced into Engine.quote_memo, as _quote would store them."""
        r, memo, w = self.r, self.memo, _M_N
        n = r.n_memo
        self.priced += n
        for s in ffi.unpack(r.memo_new, n):
            k = ffi.unpack(memo + s * w + 1, w - 1)
            quote_memo[s] = ((k[0], k[1], k[2], states(k[3]), k[4], k[5], k[6], k[7] != 0,
                              k[8] != 0, k[9], k[10], k[11]), (k[12], k[13], k[14], k[15]))
        r.n_memo = 0

    def set_work(self, engine) -> None:
        """Our working quotes after the OMS moved (Engine._own_table calls it): the slots written
        last time cleared, then the working ones written (the rest of the mirror stays zero)."""
        oms, work, w, at = engine.oms, self.work, _W_N, self._slot_at
        orders = oms.orders
        for b in self._work_written:
            work[b:b + w] = _NO_WORK
        written = self._work_written = []
        for slot, token in oms.working.items():     # work_words of each quote slot, inlined
            b = at.get(slot)
            if b is not None:
                order = orders[token]
                state = order.fsm.state
                work[b:b + w] = [1, order.price, order.leaves, state is _ACCEPTED or state is _PARTIAL,
                                 order.sent_ns]
                written.append(b)

    def seen_metrics(self, m) -> None:
        """The markout mirrors are m's as they stand (fsig_mature wrote them, as set_metrics would,
        blocked flags of markouts that started waiting included)."""
        self._metrics_seen = (m, m.markout_n[m.adverse_horizon])
        if self._blocked_set or m.blocked:
            self._blocked_set = set(m.blocked)

    def set_metrics(self, m, matured=None) -> None:
        """The markout inputs after Metrics.on_fill / on_time (`matured`: what that on_time
        returned, so only the symbols it marked at the adverse horizon are written again)."""
        r = self.r
        r.markout_n = m.markout_n[m.adverse_horizon]
        r.next_due_ns = m.next_due_ns
        n = self.n
        # Metrics changes recent markouts, adverse and marked counts only where it counts a
        # markout at the adverse horizon (Metrics.on_time): the count names what was written
        marked = m.markout_n[m.adverse_horizon]
        seen = self._metrics_seen
        if seen is not None and seen[0] is m and seen[1] != marked and matured:
            adverse = m.adverse_horizon
            for s in {s for s, _, h, _ in matured if h == adverse}:
                self.markout[s] = m.recent_markout[s]
                k = m.marked_by[s]
                self.adverse[s] = m.adverse_by[s] / k if k else 0.0     # Metrics.adverse_rate(s)
            self._metrics_seen = (m, marked)
        elif seen is None or seen[0] is not m or seen[1] != marked:
            self.markout[0:n] = m.recent_markout
            # Metrics.adverse_rate(s) of every symbol, without a method call per symbol
            self.adverse[0:n] = [a / k if k else 0.0 for a, k in zip(m.adverse_by, m.marked_by)]
            self._metrics_seen = (m, marked)
        was = self._blocked_set
        if not was and not m.blocked:       # the common case: no markout waits for a mid
            return
        blocked = set(m.blocked)
        if blocked != was:
            for s in was - blocked:
                self.blocked[s] = 0
            for s in blocked - was:
                self.blocked[s] = 1
            self._blocked_set = blocked
