"""Replaying the same events through fresh engines gives the same actions and state, bit for bit,
whatever the process's hash seed (no dict/set-order or hash() dependence)."""
import os
import subprocess
import sys

from mm_core.events import JournalNote, SendOrder
from tests.mm_core.wire import ROOT, make_engine, simulate

STEPS = 1500


def fingerprint(actions) -> list:
    out = []
    for a in actions:
        if isinstance(a, SendOrder):
            out.append(("send", a.packet, a.intent, a.decision, a.trading_state))
        elif isinstance(a, JournalNote):
            out.append(("note", int(a.rtype), a.payload))
        else:
            out.append(("retransmit", a.packet))
    return out


def test_two_fresh_engines_make_identical_decisions():
    events, actions, engine = simulate(7, STEPS)
    assert len([a for a in actions if isinstance(a, SendOrder)]) > 20     # a session that trades
    assert engine.counts["fills"] > 5
    replay = make_engine()
    replayed = []
    for event in events:                # make_engine fed both the same three start-up events
        replayed.extend(replay.on_event(event))
    assert fingerprint(replayed) == fingerprint(actions)
    assert replay.state_hash() == engine.state_hash()
    assert replay.summary() == engine.summary()


def test_different_input_gives_a_different_hash():
    _, _, a = simulate(7, 300)
    _, _, b = simulate(8, 300)
    assert a.state_hash() != b.state_hash()


def test_state_hash_does_not_depend_on_the_hash_seed():
    code = ("from tests.mm_core.wire import simulate; "
            f"print(simulate(11, 600)[2].state_hash())")
    hashes = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        hashes.add(out.stdout.strip())
    _, _, here = simulate(11, 600)
    assert hashes == {here.state_hash()}
