"""A market-data packet whose only work is telling the risk gateway fair values leaves those feeds
in the C log (fsig_defer_feeds) and returns; the gateway hears them when anything next reads it
(Engine.risk and Engine.risk_sent, read through _SettledOnRead), in idle upkeep (prepare) or before a snapshot. An
engine that never defers (flog_cap 0) is the reference: every decision and, wherever the state
is read, every piece of it must match."""
from __future__ import annotations

import io
import pickle

import pytest

from recovery.snapshot import _Pickler

from tests.mm_core.wire import make_engine, simulate
from tests.recovery.test_replay_batch import _gateway_view


@pytest.fixture(scope="module")
def session_events():
    events, _, _ = simulate(3, 4_000)
    return events


def _pair():
    eager, lazy = make_engine(), make_engine()
    eager._rx.r.flog_cap = 0            # its packets tell the gateway at once, as before deferring
    return eager, lazy


def _pending(engine) -> int:
    """Feeds waiting in the C log, read without settling them."""
    return engine._rx.r.n_flog if "risk" not in engine.__dict__ else 0


def _view(engine) -> tuple:
    return (engine.state_hash(), _gateway_view(engine.risk), list(engine.risk_sent), engine.summary(),
            engine.quiet_packets, engine.mirrors_stale())


def test_deferred_feeds_decide_and_end_as_feeds_told_at_once(session_events):
    eager, lazy = _pair()
    waited, longest = 0, 0
    for i, ev in enumerate(session_events):
        assert repr(lazy.on_event(ev)) == repr(eager.on_event(ev)), f"event {i}"
        pending = _pending(lazy)
        waited += pending > 0
        longest = max(longest, pending)
        if i % 97 == 0:                 # reading the state settles the feeds: compared there
            assert _view(lazy) == _view(eager), f"event {i}"
            assert _pending(lazy) == 0
    assert _view(lazy) == _view(eager)
    # the deferral was real: many events ended with feeds waiting, several packets' at once
    assert waited > len(session_events) // 20 and longest > 3
    assert lazy.fed_in_c > len(session_events) // 40 and eager.fed_in_c == 0
    assert eager._rx.r.n_flog == 0


def test_a_reader_of_the_gateway_sees_every_feed(session_events):
    eager, lazy = _pair()
    seen = 0
    for ev in session_events:
        eager.on_event(ev)
        lazy.on_event(ev)
        if _pending(lazy) and seen < 25:
            seen += 1
            risk = lazy.risk            # the first read settles them, before it returns
            assert _pending(lazy) == 0 and lazy._rx.r.n_flog == 0
            assert _gateway_view(risk) == _gateway_view(eager.risk)
            assert lazy.risk_sent == eager.risk_sent
    assert seen == 25


def test_idle_upkeep_settles_and_the_guard_verdict_does_not_wait(session_events):
    _, lazy = _pair()
    checked = 0
    for ev in session_events:
        lazy.on_event(ev)
        if _pending(lazy):
            n = _pending(lazy)
            verdict = lazy.risk_verdict()       # the armed pulls' check: read past the log
            assert _pending(lazy) == n
            lazy.prepare()
            assert _pending(lazy) == 0 and "risk_sent" in lazy.__dict__
            assert verdict == (int(lazy.risk.state), lazy.risk.limits_version)
            checked += 1
    assert checked > 20


def test_a_snapshot_taken_with_feeds_waiting_holds_them(session_events):
    eager, lazy = _pair()
    cut = None
    for i, ev in enumerate(session_events):
        eager.on_event(ev)
        lazy.on_event(ev)
        if i > len(session_events) // 2 and _pending(lazy):
            cut = i
            break
    assert cut is not None
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(lazy)        # as recovery's snapshots pickle an engine
    restored = pickle.loads(buf.getvalue())
    assert _pending(lazy) == 0 and restored._rx.r.n_flog == 0
    for ev in session_events[cut + 1:]:
        assert repr(restored.on_event(ev)) == repr(eager.on_event(ev))
    assert _view(restored) == _view(eager)


def test_the_reference_engine_has_nothing_to_settle(session_events):
    engine = make_engine()
    reference = type(engine)(engine.cfg, engine.symbols, type(engine.risk)(engine.risk.limits), compiled=False)
    for ev in session_events[:500]:
        reference.on_event(ev)
    reference.prepare()
    assert "risk" in reference.__dict__ and "risk_sent" in reference.__dict__
    assert reference.fed_in_c == 0
