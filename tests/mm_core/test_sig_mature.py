"""fsig_mature (the markouts a run of packets matures in C, mm_core/sigmature.py) against
Engine._mature_markouts (Metrics.on_time at the kernel's mids, then the guards' on_markout and
evaluate, then the pulls): the same Metrics, guards, mirrors, trips and pulls on generated fills,
mids and times, also while markouts of a symbol with no mid wait at the front of the queues;
nothing changed when it hands the markouts back (a due markout with no mid, a waiting one whose
mid is back or whose last chance passed, a sum past int64_t); and the queues kept current across
Python's own changes."""
import functools
import io
import pickle
import random

import pytest

from mm_core._fastmd_cffi import lib
from mm_core.sigkernel import trip_of
from mm_core.types import Side
from recovery.snapshot import _Pickler
from tests.mm_core.wire import ACME, BOLT, CHIP, MS, S, simulate

SYMBOLS = (ACME, BOLT, CHIP)
_OK, _TRIPPED, _FALLBACK = lib.FSIG_OK, lib.FSIG_TRIPPED, lib.FSIG_FALLBACK


@functools.lru_cache(maxsize=1)
def _session() -> bytes:
    """A compiled engine after a short simulated session (books, quotes, guards), pickled."""
    _, _, engine = simulate(3, 400)
    assert engine.compiled
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(engine)          # as recovery.snapshot writes it
    return buf.getvalue()


def _view(engine) -> tuple:
    m = engine.metrics
    return (engine.state_hash(), m.state_items(), m.next_due_ns, m.blocked, engine.sig.trips(),
            engine.mirrors_stale())


def _mature_in_c(engine, actions: list) -> int:
    """What Engine._packet_run_step does at a due packet: fsig_mature on the current queues,
    Metrics caught up and the pulls of its trips, or Python's _mature_markouts on FALLBACK."""
    m, rx = engine.metrics, engine._rx
    rx.markouts.markouts_for(m)
    rc = lib.fsig_mature(engine._sh, rx.r, engine.now, engine._pkt)
    if rc == _FALLBACK:
        assert rx.r.mk_matured == 0
        engine._mature_markouts(actions)
        return rc
    assert rx.r.mk_matured == 1
    rx.markouts.from_c(m)
    rx.seen_metrics(m)
    pkt = engine._pkt
    for i in range(pkt.n_trips):
        engine._pull_on_trip(trip_of(pkt.trips[i]), actions)
    return rc


def _fill(rng, engines, now: int) -> None:
    """One quote fill into each engine's Metrics, often adverse (bought above the mid)."""
    s = rng.choice(SYMBOLS)
    mid2 = engines[0].mid2[s]
    side = rng.choice((Side.BUY, Side.SELL))
    edge = rng.randrange(-40, 200) * (1 if side == Side.BUY else -1)
    price = max(1, (mid2 // 2 if mid2 > 0 else 8_500) + edge)
    qty = rng.randrange(1, 500)
    for e in engines:
        e.metrics.on_fill(s, side, qty, price, mid2, now)


@pytest.mark.parametrize("seed", range(8))
def test_c_maturing_leaves_what_python_maturing_leaves(seed):
    rng = random.Random(seed)
    ref, got = pickle.loads(_session()), pickle.loads(_session())
    assert _view(ref) == _view(got)
    rcs, matured_past_waiting, started_waiting = [], 0, 0
    now = ref.now
    base = {s: ref.mid2[s] for s in SYMBOLS}
    for _ in range(300):
        now += rng.choice((1, 20 * MS, 150 * MS, 700 * MS, 2 * S))
        ref.now = got.now = now
        if rng.random() < 0.5:
            _fill(rng, (ref, got), now)
        if rng.random() < 0.15:         # a symbol's mid goes (a due markout must then wait) or moves
            s = rng.choice(SYMBOLS)
            mid2 = 0 if rng.random() < 0.3 else base[s] + 2 * rng.randrange(-20, 20)
            ref.mid2[s] = got.mid2[s] = mid2
        if now < got.metrics.next_due_ns and not got.metrics.blocked:
            continue                    # fsig_on_packets calls it only at a due packet
        want: list = []
        ref._mature_markouts(want)
        have: list = []
        waiting = list(got.metrics.waiting)
        rcs.append(_mature_in_c(got, have))
        assert [repr(a) for a in have] == [repr(a) for a in want]
        assert _view(got) == _view(ref)
        in_c = rcs[-1] != _FALLBACK
        matured_past_waiting += in_c and any(waiting)
        started_waiting += in_c and sum(got.metrics.waiting) > sum(waiting)
    assert rcs.count(_OK) + rcs.count(_TRIPPED) > 10 and rcs.count(_FALLBACK) > 0
    assert matured_past_waiting > 0 and started_waiting > 0
    assert got.metrics.markout_n[got.metrics.adverse_horizon] > 20


def test_adverse_markouts_trip_the_guard_in_c_as_in_python():
    ref, got = pickle.loads(_session()), pickle.loads(_session())
    now = ref.now
    mid2 = ref.mid2[CHIP]
    for k in range(6):                  # bought well above the mid: adverse at every horizon
        for e in (ref, got):
            e.metrics.on_fill(CHIP, Side.BUY, 100, mid2 // 2 + 50, mid2, now + k)
    ref.now = got.now = now + 2 * S
    want: list = []
    ref._mature_markouts(want)
    have: list = []
    assert _mature_in_c(got, have) == _TRIPPED
    assert got._pkt.n_trips == 1 and got._pkt.trips[0].symbol == CHIP and got._pkt.trips[0].bid
    assert [repr(a) for a in have] == [repr(a) for a in want] and any("guard-trip" in repr(a) for a in want)
    assert _view(got) == _view(ref)


def _bolt_waiting(engine) -> int:
    """A fill of BOLT whose first-horizon markout waits for a mid (BOLT has none when it is due),
    then a fill of CHIP due at that horizon 1 ns later; returns the time of BOLT's fill."""
    m, now = engine.metrics, engine.now
    m.on_fill(BOLT, Side.BUY, 100, 252_000, engine.mid2[BOLT], now)
    engine.mid2[BOLT] = 0
    engine.now = now + m.horizons[0]
    engine._mature_markouts([])
    assert m.blocked == [BOLT] and m.waiting[0] == 1
    m.on_fill(CHIP, Side.BUY, 100, 252_000, engine.mid2[CHIP], now + 1)
    return now


def test_c_matures_behind_a_markout_waiting_for_a_mid_as_python_does():
    """CHIP's markouts mature in C while BOLT's waits at the front of its queue (no mid, its last
    chance not passed), and BOLT's goes on waiting there, as on_time leaves it."""
    ref, got = pickle.loads(_session()), pickle.loads(_session())
    filled = _bolt_waiting(ref)
    assert _bolt_waiting(got) == filled
    h = ref.metrics.horizons[0]
    ref.now = got.now = filled + 1 + h + h // 20           # CHIP's due, BOLT's last chance ahead
    want: list = []
    ref._mature_markouts(want)
    have: list = []
    assert _mature_in_c(got, have) != _FALLBACK
    assert [repr(a) for a in have] == [repr(a) for a in want]
    assert _view(got) == _view(ref)
    m = got.metrics
    assert m.blocked == [BOLT] and m.waiting[0] == 1 and m.pending[0][0][1] == BOLT
    assert all(entry[1] != CHIP for entry in m.pending[0])


@pytest.mark.parametrize("case", ["no-mid", "mid-back", "last-chance", "overflow", "disabled"])
def test_what_c_cannot_mature_is_handed_back_unchanged(case):
    got = pickle.loads(_session())
    m, rx = got.metrics, got._rx
    at = got.now + 10 * S
    if case in ("mid-back", "last-chance"):
        filled = _bolt_waiting(got)
        h = m.horizons[0]
        if case == "mid-back":              # before its last chance: on_time would mark it now
            got.mid2[BOLT] = got.mid2[ACME]
            at = filled + 1 + h + h // 20
        else:                               # a tenth of its horizon past it: counted unmarked
            at = filled + h + h // 10
    else:
        m.on_fill(BOLT, Side.BUY, 100, 252_000, got.mid2[BOLT], got.now)
    if case == "no-mid":
        got.mid2[BOLT] = 0
    elif case == "overflow":
        m.markout_x2[0] = (1 << 63) - 1 - 5
    elif case == "disabled":
        rx.markouts.enabled = False
    rx.markouts.markouts_for(m)
    before = _view(got)
    assert lib.fsig_mature(got._sh, rx.r, at, got._pkt) == _FALLBACK
    assert _view(got) == before and rx.r.mk_matured == 0


def test_the_queues_catch_up_with_python_pops_and_fills():
    """Python's own maturing (timers) and fills between C calls move the loaded queues without
    loading them whole, and they stay exactly Metrics.pending."""
    got = pickle.loads(_session())
    m, q = got.metrics, got._rx.markouts
    loads = []
    original = q.load
    q.load = lambda metrics: loads.append(1) or original(metrics)
    rng = random.Random(1)
    now = got.now
    for i in range(60):
        now += 60 * MS
        got.now = now
        _fill(rng, (got,), now)
        if i % 3 == 0:
            got._mature_markouts([])        # Python pops
        q.markouts_for(m)
        r = q.r
        for h, pend in enumerate(m.pending):
            at, n = r.mk_qoff[h], r.mk_len[h]
            rows = [tuple(q._q[(at + j) * 5:(at + j + 1) * 5]) for j in range(n)]
            assert rows == list(pend) and r.mk_head[h] == 0
        if i % 3 == 1 and now >= m.next_due_ns:
            _mature_in_c(got, [])           # C pops
    assert 1 <= len(loads) <= 3
