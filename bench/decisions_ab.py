"""Decision equality of two source trees on seeded sessions (not part of bench.run).

For each seed, each tree records tests.mm_core.wire.simulate(seed, steps) with its own engine (the
scripted venue answers the engine's orders, so the events themselves depend on its decisions), then
replays those events through fresh engines: one by one, one by one with Engine.prepare() between
events (the runner's idle upkeep), and through replay's batch path (mm_core.engine.feed_batched).
Printed per seed and tree: digests of the recorded events, of every action (an order's intent,
bytes, risk verdict and trading state; a journal note's type, payload and summary text; a
retransmit request's bytes) and the final state hashes. A change that must not move any decision
shows the same digests on both trees and every replay's state hash equal to the recorded one.

    python3 bench/decisions_ab.py --a /work/main --b /work/wt-x [--seeds 1-5] [--steps 20000]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.replay_ab import run_child  # noqa: E402  (run as a script from the tree's root)

_CHILD = r"""
import hashlib, json, sys
from mm_core.engine import feed_batched
from mm_core.events import JournalNote, SendOrder
from tests.mm_core.wire import make_engine, simulate

seed, steps = int(sys.argv[1]), int(sys.argv[2])

def digest(actions):
    h = hashlib.sha256()
    for a in actions:
        if type(a) is SendOrder:
            h.update(repr(("send", a.packet, a.intent, a.decision, a.trading_state)).encode())
        elif type(a) is JournalNote:
            h.update(repr(("note", int(a.rtype), a.payload, a.summary)).encode())
        else:
            h.update(repr(("other", type(a).__name__, a.packet)).encode())
    return h.hexdigest()[:16]

events, actions, engine = simulate(seed, steps)
out = {"events": hashlib.sha256(repr(events).encode()).hexdigest()[:16], "n_events": len(events),
       "actions": digest(actions), "n_orders": sum(type(a) is SendOrder for a in actions),
       "state": engine.state_hash()[:16]}
for name, prepare in (("replay", False), ("replay+prepare", True)):
    fresh, got = make_engine(), []
    for ev in events:
        got.extend(fresh.on_event(ev))
        if prepare:
            fresh.prepare()
    out[name] = [digest(got), fresh.state_hash()[:16]]
batch = make_engine()
feed_batched(batch, events)
out["batch"] = batch.state_hash()[:16]
print(json.dumps(out))
"""


def run(tree: str, seed: int, steps: int) -> dict:
    return run_child(_CHILD, tree, str(seed), str(steps))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--seeds", default="1-5", help="first-last")
    ap.add_argument("--steps", type=int, default=20000)
    args = ap.parse_args()
    first, _, last = args.seeds.partition("-")
    differ = 0
    for seed in range(int(first), int(last or first) + 1):
        a, b = run(args.a, seed, args.steps), run(args.b, seed, args.steps)
        same = a == b
        replays = all(x[name][1] == x["state"] for x in (a, b) for name in ("replay", "replay+prepare")) and \
            all(x["batch"] == x["state"] and x["replay"][0] == x["actions"] == x["replay+prepare"][0] for x in (a, b))
        differ += not (same and replays)
        print(f"seed {seed}: {a['n_events']:,} events, {a['n_orders']:,} orders; events {a['events']} / {b['events']}, "
              f"actions {a['actions']} / {b['actions']}, state {a['state']} / {b['state']}: "
              f"{'identical' if same else 'DIFFERENT'}; replays (one by one, with prepare, batch) "
              f"{'match the recording' if replays else 'DIFFER'}", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
