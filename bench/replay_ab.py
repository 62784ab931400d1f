"""Alternated A/B of replay CPU time between two source trees (not part of bench.run).

Each measurement runs in a fresh subprocess with PYTHONPATH set to one tree, on the same inputs:
`engine` replays the engine bench's seeded session (tests.mm_core.wire.simulate(1, 20000), pickled
once) through replay's batch path (mm_core.engine.feed_batched, as bench/engine_bench.py times it);
`recovery` replays a seeded long session journal (tests.recovery.journaling.write_long_session, seed
11, 30,000 inputs, as bench/recovery_bench.py writes it) through recovery.replay.replay_journal.
Each subprocess replays --repeat times on fresh engines and reports its best. Printed: process CPU
time per event and events/s per tree (of the whole call: recovery's includes opening the journal
and the final state snapshot, which the recovery bench's replay figure, printed as "replay loop
wall", leaves out), the B/A ratio per round and overall, and a fingerprint of the final state
(engine state hash plus every option group's Greeks and scenario P&L, repr'd, so last-bit
differences show) that must be equal across trees when the change is bit-exact.

    python3 bench/replay_ab.py --a /work/main --b /work/wt-x [--rounds 3] [--kind engine|recovery]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import gc, hashlib, json, pickle, sys, time
kind, data, profile, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def fingerprint(engine):
    risk = engine.risk
    groups = []
    for uid, g in sorted(risk._groups.items()):
        syms = [risk._symbols[s] for s in g.members]
        groups.append((uid, g.delta, g.gamma, g.vega, list(g.scenario), g.worst,
                       [(s.symbol_id, None if s.risk is None else (s.risk.delta, s.risk.gamma, s.risk.vega,
                         s.risk.scenario_pnl), s.pnl_lo, s.pnl_hi, s.headroom) for s in syms]))
    text = repr((engine.state_hash(), groups))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

if kind == "engine":
    from mm_core.engine import feed_batched
    from tests.mm_core.wire import make_engine
    with open(data, "rb") as f:
        events = pickle.load(f)
    make = make_engine
    run = lambda engine: feed_batched(engine, events) or len(events)
else:
    from recovery.replay import replay_journal
    from tests.recovery.journaling import fresh_engine
    make = fresh_engine
    def run(engine):
        result = replay_journal(data, engine)
        run.seconds = result.seconds      # the recovery bench's own figure: the replay loop's wall time
        return result.events
best = None
for _ in range(repeat):         # a fresh engine each time, built and hashed untimed; the best counts
    engine = make()
    gc.collect()
    if profile != "-":
        import cProfile
        prof = cProfile.Profile()
        prof.enable(); n = run(engine); prof.disable()
        prof.dump_stats(profile)
        cpu = wall = 0.0
    else:
        wall, cpu = time.perf_counter(), time.process_time()
        n = run(engine)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    got = {"n": n, "cpu": cpu, "wall": wall, "replay_s": getattr(run, "seconds", wall), "fp": fingerprint(engine)}
    if best is None or cpu < best["cpu"]:
        best = got
    assert got["fp"] == best["fp"], "replay is not deterministic"
print(json.dumps(best))
"""


def _prepare(kind: str, tree: str, workdir: str) -> str:
    """The inputs, made once per code of tree `tree` (the session is recorded by that tree's engine:
    inputs another code recorded can make this code halt, e.g. on a venue answer to a token it never
    sent, and then the A/B would time a halted engine)."""
    code = subprocess.run([sys.executable, "-c", "from mm_core import buildid; print(buildid.fingerprint())"],
                          check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": tree},
                          cwd=tree).stdout.strip()[:16]
    path = os.path.join(workdir, f"{kind}-session-{code}" + (".pickle" if kind == "engine" else ""))
    if os.path.exists(path):
        return path
    if kind == "engine":
        code = ("import pickle, sys; from tests.mm_core.wire import simulate; "
                "pickle.dump(simulate(1, 20000)[0], open(sys.argv[1], 'wb'))")
    else:
        code = ("import sys; from tests.recovery.journaling import write_long_session; "
                "write_long_session(sys.argv[1], 11, 30000).journal.close()")
    subprocess.run([sys.executable, "-c", code, path], check=True, env={**os.environ, "PYTHONPATH": tree},
                   cwd=tree)
    return path


def run_child(script: str, tree: str, *args: str) -> dict:
    """The JSON last line `script` prints, run in a fresh interpreter on tree `tree`'s code."""
    out = subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": tree}, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_once(kind: str, tree: str, data: str, profile: str = "-", repeat: int = 1) -> dict:
    return run_child(_CHILD, tree, kind, data, profile, str(repeat))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--kind", default="engine", choices=["engine", "recovery"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="replays per subprocess (fresh engines; the best counts)")
    ap.add_argument("--workdir", default="/tmp/replay-ab")
    ap.add_argument("--profile", default="", help="write cProfile stats of one B run here instead")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    data = _prepare(args.kind, args.a, args.workdir)
    if args.profile:
        print(run_once(args.kind, args.b, data, args.profile))
        return
    res = {"A": [], "B": []}
    for r in range(args.rounds):
        for name, tree in (("A", args.a), ("B", args.b)) if r % 2 == 0 else (("B", args.b), ("A", args.a)):
            res[name].append(run_once(args.kind, tree, data, repeat=args.repeat))
        a, b = res["A"][-1], res["B"][-1]
        print(f"round {r + 1}: A {a['cpu'] / a['n'] * 1e6:.3f} us/ev ({a['n'] / a['cpu']:,.0f} ev/s)  "
              f"B {b['cpu'] / b['n'] * 1e6:.3f} us/ev ({b['n'] / b['cpu']:,.0f} ev/s)  B/A {b['cpu'] / a['cpu']:.3f}",
              flush=True)
    for name in "AB":
        cpus = sorted(x["cpu"] for x in res[name])
        n = res[name][0]["n"]
        loop = min(x["replay_s"] for x in res[name])
        print(f"{name}: n={n:,} CPU best {cpus[0] / n * 1e6:.3f} us/ev ({n / cpus[0]:,.0f} ev/s), median "
              f"{cpus[len(cpus) // 2] / n * 1e6:.3f} us/ev ({n / cpus[len(cpus) // 2]:,.0f} ev/s); replay loop wall "
              f"best {n / loop:,.0f} ev/s; fingerprints {sorted(set(x['fp'] for x in res[name]))}")
    ba = sorted(x["cpu"] for x in res["B"])[0] / sorted(x["cpu"] for x in res["A"])[0]
    med = sorted(x["cpu"] for x in res["B"])[len(res["B"]) // 2] / sorted(x["cpu"] for x in res["A"])[len(res["A"]) // 2]
    print(f"B/A CPU time: best {ba:.3f}, median {med:.3f}")


if __name__ == "__main__":
    main()
