"""The proof for the compiled signal kernel: seeded sessions run through an engine on the C kernel
(one fsig_on_packet call per common market-data packet, the Python path on the kernel's state for
the rest) and one on the Python reference classes, in lockstep, must give identical actions after
every event (every order's bytes, every journal note) and identical state_hash() — with guard trips,
Broken Trades (known and unknown), trading halts, feed gaps and their retransmission, fills, micro-price
calibration, lead followers and hedging, operator kills and enables, safe mode and limits
replacements. After every event the kernel engine's C mirrors of the Python-owned inputs of the
per-packet reaction (stage 2) must equal the Python values. A pickled compiled engine must carry on
identically."""
import io
import pickle
import random

import pytest

from mm_core.config import EngineConfig, FairValueParams
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, OperatorCommand, SendOrder, Timer
from mm_core.guard import GuardParams
from mm_core.hedger import HedgeParams
from mm_core.protocol import itch
from mm_core.types import Purpose
from recovery.snapshot import _Pickler
from tests.mm_core.test_determinism import fingerprint
from tests.mm_core.wire import (
    ACME, BOLT, CHIP, LIMITS_TEXT, MS, NAMES, SYMBOLS, Feed, S, Venue, gateway, make_engine, md, run,
    simulate,
)

TOXIC = GuardParams(prints_window=6, aggression_threshold=0.6, aggression_min_volume=200,
                    fill_window_ns=500 * MS, fill_spike_count=2, vpin_bucket_volume=300,
                    vpin_buckets=3, vpin_threshold=0.5, markout_window=2, markout_threshold=0.0,
                    cooldown_ns=200 * MS)
CONFIGS = {
    "default": EngineConfig(),
    "toxic-guard": EngineConfig(guard=TOXIC),
    "calibrating-hedging": EngineConfig(
        fair_value=FairValueParams(calibrate_every=40, w_flow=0.5, lead_alpha=0.2),
        # small lots: the sessions' positions move the target by more than the band now and then
        hedge=HedgeParams(trigger=200, keep=100, hold_ns=10 * MS, band=20, lot=20, min_samples=3),
        quote_size=300, guard=GuardParams(markout_window=3, markout_threshold=0.5)),
}


def started(config: EngineConfig, compiled: bool) -> Engine:
    engine = Engine(config, SYMBOLS, gateway(), compiled=compiled)
    for event in (JournalHealth(S, True), ClockSample(S, True), Timer(S)):
        engine.on_event(event)
    return engine


class Lockstep:
    """Feeds every event to both engines and requires the same actions from each."""

    def __init__(self, config: EngineConfig) -> None:
        self.kernel = started(config, True)
        self.reference = started(config, False)
        self.events = 0
        self.hedges = 0             # hedge IOCs sent
        self.held = 0               # events after which a hedge hold kept a quote side off

    def on_event(self, event) -> list:
        out = self.kernel.on_event(event)
        expected = self.reference.on_event(event)
        self.events += 1
        assert fingerprint(out) == fingerprint(expected), f"actions differ at event {self.events}: {event}"
        assert not self.kernel.mirrors_stale(), f"stale mirrors at event {self.events}: {event}"
        # what the C reaction skips must be what the Python path found nothing to do for: the
        # risk feeds last told and the quote memos (not in state_hash) agree after every event
        assert self.kernel.risk_sent == self.reference.risk_sent, f"risk feed differs at event {self.events}"
        assert self.kernel.quote_memo == self.reference.quote_memo, f"quote memo differs at event {self.events}"
        self.hedges += sum(1 for a in out if type(a) is SendOrder and a.intent.purpose is Purpose.HEDGE)
        self.held += any(self.kernel.hedge_hold)
        return out

    def replace_limits(self, version: int, fair_bps: int, max_qty: int) -> None:
        """The same new limits document on both gateways (between events, as an operator would)."""
        text = LIMITS_TEXT.replace("version = 1", f"version = {version}", 1).replace(
            "fair_bps = 200", f"fair_bps = {fair_bps}", 1).replace(
            "max_order_qty = 5000", f"max_order_qty = {max_qty}", 1)
        for engine in (self.kernel, self.reference):
            engine.risk.replace_limits(text)


def operate(rng: random.Random, engines: Lockstep, venue: Venue, now: int, seen: dict) -> None:
    """Now and then an operator: a kill (symbol or all), an enable, safe mode on or off, new limits."""
    r = rng.random()
    if r < 0.004:
        seen["kills"] += 1
        scope, scope_id = ("symbol", rng.choice((ACME, BOLT, CHIP))) if rng.random() < 0.5 else ("all", 0)
        run(engines, venue, OperatorCommand(now, "kill", "ops", "drill", scope, scope_id), now)
    elif r < 0.012:
        run(engines, venue, OperatorCommand(now, "enable", "ops", "drill"), now)
    elif r < 0.016:
        seen["safe"] += 1
        cmd = "safe-mode-on" if rng.random() < 0.5 else "safe-mode-off"
        run(engines, venue, OperatorCommand(now, cmd, "ops", "drill"), now)
    elif r < 0.02:
        seen["limits"] += 1
        # max_order_qty 100: below the quote size, so both sides are sized down to it (to no
        # quote in safe mode, which halves it), priced in the C reaction's memo misses too
        engines.replace_limits(seen["limits"] + 1, rng.choice((150, 200, 300)), rng.choice((100, 5000)))


def drive(seed: int, steps: int, config: EngineConfig, engines, operator: bool = False) -> dict:
    """A seeded session with order-level flow, executions and non-book trades, Broken Trades,
    gaps filled by retransmission, venue fills of our quotes, timers and clock samples (and with
    `operator`, kills, enables, safe mode and limits replacements)."""
    rng = random.Random(seed)
    venue, feed = Venue(), Feed()
    centre = {ACME: (1_000_000, 100), BOLT: (505_000, 50), CHIP: (8_500, 1)}
    live: dict[int, list[int]] = {s: [] for s in centre}
    info: dict[int, tuple] = {}
    matches: list[int] = []
    seen = {"breaks": 0, "gaps": 0, "trades": 0, "halts": 0, "kills": 0, "safe": 0, "limits": 0}
    halted = {s: False for s in centre}
    now, next_timer, next_clock = 2 * S, 2 * S, 2 * S
    for _ in range(steps):
        now += rng.randrange(100_000, 3_000_000)
        msgs = []
        for _ in range(rng.randrange(1, 5)):
            s = rng.choice(list(centre))
            mid, tick = centre[s]
            if rng.random() < 0.03:
                centre[s] = (mid + tick * rng.choice((-1, 1)), tick)
            r, refs = rng.random(), live[s]
            if r < 0.45 or len(refs) < 6:
                side = rng.choice("BS")
                price = mid + (-1 if side == "B" else 1) * tick * rng.randrange(1, 5)
                # never crossing the other side's best: the book stays priceable as the centre drifts
                other = [info[x][2] for x in refs if info[x][1] != side]
                if other and side == "B":
                    price = min(price, min(other) - tick)
                elif other:
                    price = max(price, max(other) + tick)
                m = feed.add(s, side, 100 * rng.randrange(1, 6), price)
                refs.append(m.order_ref)
                info[m.order_ref] = (s, side, price, m.shares)
            elif r < 0.6:
                ref = refs.pop(rng.randrange(len(refs)))
                del info[ref]
                m = Feed.delete(ref)
            elif r < 0.85:
                ref = refs[rng.randrange(len(refs))]
                sym, side, price, qty = info[ref]
                take = min(qty, 100 * rng.randrange(1, 4))
                match = rng.randrange(1, 10**12)
                matches.append(match)
                m = Feed.execute(ref, take, match)
                if take == qty:
                    refs.remove(ref)
                    del info[ref]
                else:
                    info[ref] = (sym, side, price, qty - take)
            elif r < 0.95:
                match = rng.randrange(1, 10**12)
                matches.append(match)
                seen["trades"] += 1
                m = itch.Trade(s, 0, 0, 0, rng.choice("BS"), 100 * rng.randrange(1, 8), NAMES[s], mid, match)
            elif r < 0.96:
                seen["halts"] += 1             # a trading action: halted for a while, then trading
                halted[s] = not halted[s] if rng.random() < 0.5 else False
                m = itch.StockTradingAction(s, 0, 0, NAMES[s], "H" if halted[s] else "T", " ", "")
            else:
                seen["breaks"] += 1
                known = matches and rng.random() < 0.8
                m = itch.BrokenTrade(s, 0, 0, matches[-rng.randrange(1, min(len(matches), 30) + 1)]
                                     if known else rng.randrange(1, 10**12))
            msgs.append(m)
        if rng.random() < 0.02 and len(msgs) > 1:
            # a gap: the second half arrives first, then the first half, then the second resent
            cut = len(msgs) // 2
            first, second = feed.packet(*msgs[:cut]), feed.packet(*msgs[cut:])
            seen["gaps"] += 1
            for pkt in (second, first, second):
                run(engines, venue, md(pkt, now), now)
        else:
            run(engines, venue, md(feed.packet(*msgs), now), now)
        if venue.orders and rng.random() < 0.08:
            token = sorted(venue.orders)[rng.randrange(len(venue.orders))]
            qty = min(venue.orders[token]["qty"], 100 * rng.randrange(1, 3))
            run(engines, venue, venue.fill(token, qty, now), now)
        if operator:
            operate(rng, engines, venue, now, seen)
        if now >= next_clock:
            engines.on_event(ClockSample(now, True))
            next_clock += S
        if now >= next_timer:
            run(engines, venue, Timer(now), now)
            next_timer += 100 * MS
    return seen


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_and_reference_engines_decide_identically(name, seed):
    engines = Lockstep(CONFIGS[name])
    seen = drive(seed, 900, CONFIGS[name], engines)
    k, ref = engines.kernel, engines.reference
    assert seen["breaks"] > 5 and seen["trades"] > 20 and seen["gaps"] >= 1 and seen["halts"] >= 1
    assert k.counts["gaps"] >= 1 and k.counts["md_packets"] > 900
    assert k.md.fast_packets > k.counts["md_packets"] // 2        # most went through fsig_on_packet
    assert k.state_hash() == ref.state_hash()
    assert k.summary() == ref.summary()
    assert k.fv.state_items() == ref.fv.state_items()
    assert [g.state_items() for g in k.guards] == [g.state_items() for g in ref.guards]
    assert k.tape.state_items() == ref.tape.state_items()
    if name == "toxic-guard":
        assert k.counts["guard_trips"] > 3


def test_the_sessions_exercise_fills_trips_and_hedges():
    """The lockstep sessions are not idle: orders, fills, trips, broken-trade notes and hedges."""
    engines = Lockstep(CONFIGS["calibrating-hedging"])
    drive(5, 1200, CONFIGS["calibrating-hedging"], engines)
    k = engines.kernel
    assert k.counts["orders_sent"] > 30 and k.counts["fills"] > 10
    assert k.fv.estimators[ACME].observations > 120              # calibrated (>= 100) at least once
    assert any(x != 0.0 for row in k.fv.tables[ACME].g for x in row)
    assert k.hedger.pairs[BOLT].beta.n > 3
    assert engines.hedges >= 2 and engines.held > 10        # hedges, and self-trade holds on quotes
    engines = Lockstep(CONFIGS["toxic-guard"])
    drive(6, 600, CONFIGS["toxic-guard"], engines)
    assert engines.kernel.counts["guard_trips"] > 3


def test_the_wire_simulation_gives_the_same_orders_and_hash_on_both(monkeypatch):
    import tests.mm_core.wire as wire

    _, kernel_actions, kernel = simulate(7, 800)
    monkeypatch.setattr(wire, "Engine", lambda *a, **kw: Engine(*a, compiled=False, **kw))
    _, ref_actions, ref = simulate(7, 800)
    assert not ref.compiled and kernel.compiled
    assert fingerprint(kernel_actions) == fingerprint(ref_actions)
    assert kernel.state_hash() == ref.state_hash()


def test_idle_time_prepare_changes_no_decision():
    """Engine.prepare() (the runner calls it before waiting again) rebuilds the own-quote table
    ahead of the next packet: the same orders and state as an engine never prepared, with every
    mirror current afterwards and nothing left for the next packet to rebuild."""
    events, _, _ = simulate(7, 800)
    prepared, plain = make_engine(), make_engine()
    rebuilt_ahead = 0
    for ev in events:
        assert fingerprint(prepared.on_event(ev)) == fingerprint(plain.on_event(ev))
        oms = prepared.oms
        moved = (oms.transitions, oms.counter) != prepared._pkt_own_version
        prepared.prepare()
        if not prepared.stale:
            assert (oms.transitions, oms.counter) == prepared._pkt_own_version
            rebuilt_ahead += moved
        assert not prepared.mirrors_stale()
    assert rebuilt_ahead > 20
    assert prepared.state_hash() == plain.state_hash()


def test_the_reaction_rebuilds_no_own_quote_table():
    """With prepare() between events (as the runner runs), a market-data packet that sends orders
    rebuilds no own-quote table while it decides: the C reaction after an order moved the OMS reads
    the work mirror alone, and the table the C reprice reads waits for the next packet's C call (or
    prepare). Only a guard trip, whose pulls come before the reprice, rebuilds it. The same orders
    and state as an engine never prepared."""
    from mm_core.ownquotes import OwnQuotes
    events, _, _ = simulate(1, 6000)
    prepared, plain = make_engine(), make_engine()
    rebuilds = [0]
    original = OwnQuotes.rebuild

    def counted(table, live):
        rebuilds[0] += table is prepared.__dict__.get("_own_arrays")
        return original(table, live)
    sending = multi = 0
    OwnQuotes.rebuild = counted
    try:
        for ev in events:
            before, trips = rebuilds[0], sum(prepared.sig.trips())
            actions = prepared.on_event(ev)
            assert fingerprint(actions) == fingerprint(plain.on_event(ev))
            sent = [a for a in actions if isinstance(a, SendOrder)]
            if type(ev).__name__ == "MarketData" and sent and sum(prepared.sig.trips()) == trips:
                sending += 1
                multi += len({a.intent.symbol_id for a in sent}) > 1
                assert rebuilds[0] == before, "the own-quote table was rebuilt while deciding"
            prepared.prepare()
            assert not prepared.mirrors_stale()
    finally:
        OwnQuotes.rebuild = original
    assert sending > 20 and multi > 0
    assert prepared.state_hash() == plain.state_hash()


def test_a_pickled_kernel_engine_carries_on_identically():
    engines = Lockstep(CONFIGS["toxic-guard"])
    drive(4, 400, CONFIGS["toxic-guard"], engines)
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(engines.kernel)        # as recovery.snapshot writes it
    copy = pickle.loads(buf.getvalue())
    assert copy.state_hash() == engines.kernel.state_hash()
    assert copy.guards[ACME].kernel is copy.sig and copy.tape.kernel is copy.sig
    assert copy.fv.flow_signed[ACME] == engines.kernel.fv.flow_signed[ACME]
    # the copy and the reference go on together: same actions from here on
    engines.kernel = copy
    drive(9, 300, CONFIGS["toxic-guard"], engines)
    assert copy.state_hash() == engines.reference.state_hash()


def test_a_snapshot_from_before_the_kernel_restores_on_the_reference_classes():
    engines = Lockstep(CONFIGS["default"])
    drive(2, 200, CONFIGS["default"], engines)
    old = engines.reference
    state = old.__getstate__()
    del state["sig"], state["compiled"]             # as an engine pickled before the kernel existed
    copy = Engine.__new__(Engine)
    copy.__setstate__(state)
    assert not copy.compiled and copy.state_hash() == old.state_hash()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_operator_latches_and_limits_changes_in_lockstep(name):
    """Kills latch the gateway (HALTED), enables release it, safe mode and new limits versions move
    the quote memo's key: the C reaction must see every change as the Python path does."""
    engines = Lockstep(CONFIGS[name])
    seen = drive(11, 1500, CONFIGS[name], engines, operator=True)
    k, ref = engines.kernel, engines.reference
    assert seen["kills"] >= 2 and seen["safe"] >= 2 and seen["limits"] >= 2
    assert k.risk.limits_version > 1
    assert k.state_hash() == ref.state_hash()
    assert k.summary() == ref.summary()


def test_most_packets_end_in_the_c_reaction():
    """The point of stage 2: a packet that changes no quote, feed, markout or hedge ends in C
    (the wire simulation: a steady market, most packets deeper in the book or off our quotes)."""
    _, actions, k = simulate(1, 3000)
    assert k.compiled and k.counts["orders_sent"] > 10
    assert k.quiet_packets > k.counts["md_packets"] // 2
    engines = Lockstep(CONFIGS["calibrating-hedging"])       # busy lockstep sessions use it too
    drive(3, 300, CONFIGS["calibrating-hedging"], engines)
    assert engines.kernel.quiet_packets > 10


def test_memo_misses_are_priced_in_the_c_reaction(monkeypatch):
    """Stage 3: a memo miss is priced in fsig_react_from (fq_price on the mirrors) and copied into
    Engine.quote_memo; the lockstep sessions (memos compared after every event, safe mode and
    new limits moving the multipliers and collar) see the kernel do it many times."""
    from mm_core.sigreact import ReactMirror
    copied: list[int] = []
    original = ReactMirror.memos_from_c

    def counting(self, quote_memo, states):
        copied.append(self.r.n_memo)
        original(self, quote_memo, states)
    monkeypatch.setattr(ReactMirror, "memos_from_c", counting)
    engines = Lockstep(CONFIGS["calibrating-hedging"])
    drive(8, 900, CONFIGS["calibrating-hedging"], engines, operator=True)
    assert sum(copied) > 50
    assert engines.kernel.state_hash() == engines.reference.state_hash()
    _, _, k = simulate(2, 3000)
    assert sum(copied) > 200 and k.quiet_packets > k.counts["md_packets"] // 2


def test_priced_symbols_and_trip_counts_come_from_one_c_call_each():
    """fsig_priced (the timer's symbols to refresh at the gateway) lists exactly the slots with a
    fair value above zero, ascending, NaN excluded; fsig_trips equals every guard's own count."""
    engine = make_engine()
    for ev in simulate(3, 400)[0]:
        engine.on_event(ev)
    fair = engine.fv.fair
    assert engine._priced() == [s for s, f in enumerate(fair[0:engine.n]) if f > 0] != []
    fair[5], fair[7], fair[engine.n - 1] = float("nan"), 0.25, -1.0
    assert 5 not in engine._priced() and 7 in engine._priced() and engine.n - 1 not in engine._priced()
    assert engine.sig.trips() == [engine.sig.guards[s].trips for s in range(engine.n)]
    reference = Engine(EngineConfig(), SYMBOLS, gateway(), compiled=False)
    reference.fv.fair[2] = 3.0
    assert reference._priced() == [2]


def test_most_venue_answers_need_no_python_requote(monkeypatch):
    """A venue answer (accept, replace, cancel, fill) requotes its symbol through the C may-act
    check the timer uses: one that leaves the quote as it is runs no Python requote, and the
    lockstep sessions (actions, memos and mirrors compared after every event) decide as the
    reference engine does, which requotes every one in Python."""
    from mm_core.events import VenueMessage
    calls = {"kernel": 0, "reference": 0}
    original = Engine._requote

    def counting(self, symbol_id, actions):
        if venue_answer[0]:
            calls["kernel" if self.compiled else "reference"] += 1
        original(self, symbol_id, actions)
    monkeypatch.setattr(Engine, "_requote", counting)
    venue_answer = [False]

    class Watched(Lockstep):
        def on_event(self, event):
            venue_answer[0] = type(event) is VenueMessage
            try:
                return super().on_event(event)
            finally:
                venue_answer[0] = False
    engines = Watched(CONFIGS["calibrating-hedging"])
    drive(4, 900, CONFIGS["calibrating-hedging"], engines, operator=True)
    assert engines.kernel.state_hash() == engines.reference.state_hash()
    assert calls["reference"] > 50
    assert calls["kernel"] < calls["reference"] // 2
