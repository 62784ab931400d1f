"""Alternated A/B of the engine's decision latency between two source trees (not part of bench.run).

Each round replays the engine bench's seeded session (tests.mm_core.wire.simulate(1, 20000),
recorded once per tree's code, as bench/replay_ab.py records it) through a fresh engine one event
at a time in a fresh subprocess per tree, A and B in alternating order, timing each on_event as
bench/engine_bench.py does (perf_counter_ns around the call), with the engine's idle upkeep
(Engine.prepare, as the runner calls it between events) untimed before each event, or none
(--upkeep none). Printed per round and as the median over rounds of each round's percentiles:
market-data packets p50 / p90 / p99 / p99.9 and every event pooled, in microseconds.

    python3 bench/latency_ab.py --a /work/main --b /work/wt-x [--rounds 8] [--upkeep prepare|none]
"""
from __future__ import annotations

import argparse
import os
import statistics

from bench.replay_ab import _prepare, run_child

_CHILD = r"""
import gc, json, pickle, sys, time
from mm_core.events import MarketData
from tests.mm_core.wire import make_engine
data, upkeep = sys.argv[1], sys.argv[2]
with open(data, "rb") as f:
    events = pickle.load(f)
clock = time.perf_counter_ns
engine = make_engine()
on_event, prepare = engine.on_event, engine.prepare
md, every = [], []
gc.collect()
for ev in events:
    if upkeep == "prepare":
        prepare()
    t0 = clock()
    on_event(ev)
    t1 = clock()
    every.append(t1 - t0)
    if type(ev) is MarketData:
        md.append(t1 - t0)

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] / 1e3

print(json.dumps({name: [pct(v, q) for q in (0.5, 0.9, 0.99, 0.999)] for name, v in (("md", md), ("all", every))}))
"""

_QS = ("p50", "p90", "p99", "p99.9")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--upkeep", default="prepare", choices=["prepare", "none"])
    ap.add_argument("--workdir", default="/tmp/replay-ab")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    os.makedirs(args.workdir, exist_ok=True)
    data = _prepare("engine", args.a, args.workdir)
    res = {"A": [], "B": []}
    for r in range(args.rounds):
        for name, tree in (("A", args.a), ("B", args.b)) if r % 2 == 0 else (("B", args.b), ("A", args.a)):
            res[name].append(run_child(_CHILD, tree, data, args.upkeep))
        line = "  ".join(f"{name} md " + "/".join(f"{x:.1f}" for x in res[name][-1]["md"]) for name in "AB")
        print(f"round {r + 1} ({' / '.join(_QS)} us): {line}", flush=True)
    for kind, label in (("md", "market-data packets"), ("all", "every event pooled")):
        print(f"{label}, median of the rounds' percentiles (upkeep: {args.upkeep}):")
        for name in "AB":
            cols = zip(*(run[kind] for run in res[name]))
            print(f"  {name}: " + "  ".join(f"{q} {statistics.median(c):.1f}" for q, c in zip(_QS, cols)) + " us")


if __name__ == "__main__":
    main()
