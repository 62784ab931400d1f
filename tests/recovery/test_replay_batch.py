"""Replay's batch path (runs of MD_PACKET records through Engine.on_packet_run, one C call per
run of quiet packets) against feeding every packet by itself: the same decisions, checks and
final engine, on the recovery benchmark's sessions."""
from __future__ import annotations

import pytest

from mm_core.config import EngineConfig
from mm_core.engine import Engine
from recovery.replay import replay_journal
from tests.recovery.journaling import fresh_engine, write_long_session


_SYMBOL_FIELDS = ("fair", "reference", "md_ns", "book_stale", "position", "notional", "fair_band",
                  "reference_band", "drift_band", "headroom", "fair_lo", "fair_hi", "reference_lo",
                  "reference_hi")


def _gateway_view(risk) -> dict:
    """The risk gateway's market-fed state (what on_market writes), which the state hash leaves out."""
    return {"symbols": {s: [getattr(sym, f) for f in _SYMBOL_FIELDS] for s, sym in sorted(risk._symbols.items())},
            "marks": (risk._gross, risk._net, risk._pnl_peak, risk._faults, sorted(risk._stale_books))}


def _engine_view(engine) -> dict:
    """What a replay leaves in the engine, beyond the state hash."""
    return {"hash": engine.state_hash(), "risk": _gateway_view(engine.risk),
            "summary": engine.summary(), "counts": dict(engine.counts),
            "quiet": engine.quiet_packets, "memo": engine.quote_memo, "sent": engine.risk_sent,
            "now": engine.now, "next_expected": engine.tracker.next_expected,
            "fast": engine.md.fast_packets, "stale": engine.mirrors_stale()}


def _result_view(result) -> dict:
    final = dict(result.final)
    final.pop("seconds")
    return {"final": final, "records": result.records, "events": result.events,
            "orders": result.orders_checked, "divergences": result.divergences,
            "unsent": [a.intent.token for a in result.unsent], "seqs": result.journaled_venue_seqs}


@pytest.fixture(scope="module")
def long_session(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("long") / "j")
    shell = write_long_session(path, 3, 6_000)
    shell.journal.close()
    return path, shell.engine.state_hash()


def test_batch_replay_equals_the_one_by_one_replay(long_session, monkeypatch):
    path, live_hash = long_session
    runs: list[int] = []
    original = Engine.on_packet_run

    def counting(self, run, start):
        taken, actions = original(self, run, start)
        runs.append(taken)
        return taken, actions
    monkeypatch.setattr(Engine, "on_packet_run", counting)
    one = replay_journal(path, fresh_engine(), batch=False)
    assert runs == []
    batched = replay_journal(path, fresh_engine())
    assert one.deterministic and batched.deterministic and one.orders_checked > 50
    assert batched.state_hash == one.state_hash == live_hash
    assert _result_view(batched) == _result_view(one)
    assert _engine_view(batched.engine) == _engine_view(one.engine)
    assert _engine_view(batched.engine)["stale"] == []
    # the runs were real: several packets per C call
    assert max(runs) >= 4 and sum(runs) > len(runs)


def test_a_diverging_engine_diverges_the_same_in_both(long_session):
    path, _ = long_session

    def wrong():
        base = fresh_engine()
        return Engine(EngineConfig(quote_size=300), base.symbols, type(base.risk)(base.risk.limits))
    one = replay_journal(path, wrong(), batch=False)
    batched = replay_journal(path, wrong())
    assert one.divergence_count >= 1
    assert _result_view(batched) == _result_view(one)
    assert _engine_view(batched.engine) == _engine_view(one.engine)


def test_snapshots_keep_the_one_by_one_path_and_resumes_batch(long_session, tmp_path):
    """Snapshots count single events, so a replay that writes them feeds packets one by one;
    resuming from one batches the records after it and ends as the one-by-one resume does."""
    path, live_hash = long_session
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    first = replay_journal(path, fresh_engine(), snapshots=str(snaps), snapshot_every=1_000)
    assert first.snapshots_written >= 2 and first.state_hash == live_hash
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    assert resumed.snapshot and resumed.state_hash == live_hash
    one = replay_journal(path, fresh_engine(), snapshots=str(snaps), batch=False)
    assert one.snapshot == resumed.snapshot
    assert _result_view(resumed) == _result_view(one)
    assert _engine_view(resumed.engine) == _engine_view(one.engine)


@pytest.mark.parametrize("jitter, flog_cap", [(0, None), (300_000, None), (0, 1), (0, 0)])
def test_packet_runs_equal_on_event_one_by_one(jitter, flog_cap, monkeypatch):
    """Engine.on_packet_run against on_event on the same inputs, with receive times that may run
    backwards by up to `jitter` ns (the engine's clock never does): the same actions for each
    event and the same engine at the end. The risk feeds a run defers (fsig_on_packets' log,
    applied by Engine._settle_feeds) are deferred for real, also with a log that fills after one
    feed (flog_cap 1) or is off (0)."""
    import random

    from mm_core.engine import PacketRun
    from mm_core.events import JournalHealth, MarketData, Reconciled
    from tests.recovery.journaling import session_events
    rng = random.Random(5)
    events = []
    for ev in session_events(4, 1_500):
        if type(ev) is MarketData and jitter:
            ev = MarketData(ev.packet, ev.now_ns - rng.randrange(jitter), ev.ts_source)
        events.append(ev)
    one, runs = fresh_engine(), fresh_engine()
    if flog_cap is not None:
        runs._rx.r.flog_cap = flog_cap
    deferred: list[int] = []
    original = Engine._settle_feeds
    matured: list[int] = []             # markouts the runs matured in C (fsig_mature)
    mature_back = runs._rx.markouts.from_c
    monkeypatch.setattr(runs._rx.markouts, "from_c", lambda m: matured.append(1) or mature_back(m))

    def logged(self):
        if self is runs and self._rx.r.n_flog:
            deferred.append(self._rx.r.n_flog)
        original(self)
    monkeypatch.setattr(Engine, "_settle_feeds", logged)
    for engine in (one, runs):
        engine.on_event(JournalHealth(events[0].now_ns, True))
        engine.on_event(Reconciled(events[0].now_ns, True))
    want = [one.on_event(ev) for ev in events]
    got: list = []
    i, batched = 0, 0
    while i < len(events):
        j = i
        while j < len(events) and type(events[j]) is MarketData:
            j += 1
        if j - i < 2:
            got.append(runs.on_event(events[i]))
            i += 1
            continue
        run, k = PacketRun(events[i:j]), 0
        while k < j - i:
            taken, actions = runs.on_packet_run(run, k)
            got.extend([[]] * (taken - 1) + [actions])
            batched += taken > 1
            k += taken
        i = j
    assert [repr(a) for a in got] == [repr(a) for a in want]
    assert _engine_view(runs) == _engine_view(one) and batched > 10 and len(matured) > 10
    if flog_cap == 0:
        assert deferred == []
    else:
        assert len(deferred) > 10 and max(deferred) <= (flog_cap or 1 << 30)
        assert flog_cap == 1 or max(deferred) > 1


def test_feed_batched_equals_on_event_one_by_one():
    """mm_core.engine.feed_batched (the benchmarks' batch path over decoded events) leaves the
    engine on_event leaves, on a session with orders, fills, timers and guard trips."""
    from mm_core.engine import feed_batched
    from tests.mm_core.wire import make_engine, simulate
    events, _, recorded = simulate(2, 3_000)
    one, batched = make_engine(), make_engine()
    for ev in events:
        one.on_event(ev)
    feed_batched(batched, events)
    assert _engine_view(batched) == _engine_view(one)
    assert one.state_hash() == recorded.state_hash() and recorded.counts["orders_sent"] > 20
