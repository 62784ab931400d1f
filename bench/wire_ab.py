"""Alternated A/B of live wire-to-wire latency between source trees (not part of bench.run).

Each round runs one busy-poll session per tree, the embedded venue in its own process, exactly as
bench/engine_bench.py's "busy-poll, venue process" row does (_wire_session), each in a fresh
interpreter with PYTHONPATH set to that tree (the venue process inherits it, so it runs that
tree's venue too); the tree order flips every round so machine load hits all alike. Printed per
session: the p50 of wire-to-wire and of each stage (RX -> read, read -> journaled, the engine,
decision -> sent; ORDER_SENT stamp -> TX stamp), the p99 of wire-to-wire; then per tree the median
over sessions of each p50 and the pooled wire-to-wire p50 / p99. Timings on a shared machine are
noisy: run several rounds. A tree named with `@N` runs its sessions with the loop alone on CPU N
(`mmaudit run --cpu N`), so one tree can be compared with itself pinned and not.

    python3 bench/wire_ab.py --trees /work/main /work/wt-x [--rounds 4] [--seconds 8]
    python3 bench/wire_ab.py --trees /work/main /work/main@1
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.replay_ab import run_child  # noqa: E402  (run as a script from the tree's root)

_CHILD = r"""
import json, sys, tempfile
import mm_core
from bench.engine_bench import _wire_session
with tempfile.TemporaryDirectory() as d:
    lat, rep = _wire_session(float(sys.argv[1]), True, d, True, *([int(sys.argv[2])] if sys.argv[2] else []))
print(json.dumps({"lat": lat, "rep": rep, "mm_core": mm_core.__file__}))
"""
KEYS = ("w2w", "rx->read", "read->journaled", "journaled->decided", "decided->sent", "append+send")


def pct(values: list[int], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trees", nargs="+", required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    trees = [os.path.abspath(path) + at + cpu for path, at, cpu in (t.partition("@") for t in args.trees)]
    res: dict[str, list[dict]] = {t: [] for t in trees}
    for r in range(args.rounds):
        for tree in trees if r % 2 == 0 else trees[::-1]:
            path, _, cpu = tree.partition("@")
            doc = run_child(_CHILD, path, str(args.seconds), cpu)
            if not doc["mm_core"].startswith(path):
                raise SystemExit(f"{tree}: imported {doc['mm_core']}")
            res[tree].append(doc)
            lat = doc["lat"]
            print(f"round {r + 1} {tree}: " + "  ".join(f"{k} {pct(lat[k], .5):.1f}" for k in KEYS if lat[k])
                  + f"  w2w p99 {pct(lat['w2w'], .99):.1f} (n={len(lat['w2w'])}, {doc['rep']['orders']} sent)",
                  flush=True)
    print("\nmedian over sessions of each p50 (us); pooled wire-to-wire")
    for tree in trees:
        docs = res[tree]
        row = "  ".join(f"{k} {statistics.median(pct(d['lat'][k], .5) for d in docs if d['lat'][k]):.1f}"
                        for k in KEYS)
        pooled = [x for d in docs for x in d["lat"]["w2w"]]
        print(f"{tree}: {row}  w2w pooled p50 {pct(pooled, .5):.1f} p99 {pct(pooled, .99):.1f} (n={len(pooled)})")


if __name__ == "__main__":
    main()
