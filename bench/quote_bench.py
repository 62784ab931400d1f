"""Quote pricing benchmark: Engine._price_quote_py (Python) side by side with the C pricer
(mm_core/quotepricer.py over mm_core/fastquote.h), on the calls a seeded session really makes.

The session is the recovery benchmark's (tests/recovery/journaling.write_long_session, seed 11,
journaled, its engine inputs read back with mm_core.runnerrecords.engine_events). The calls are recorded
while a fresh engine on the reference signal classes (compiled=False, where every memo miss
goes through _price_quote; the compiled kernel prices its misses in C itself) replays it: the
engine's own arguments and the scalars it reads. Competitors, in one process run, on the same
calls: the engine's method on the session's final engine, the C through engine_price_quote (the
replacement body: the same engine reads, one C call), price_reference (the pure Python steps),
QuotePricer.price (the C through the wrapper) and the bare cffi call. Then the whole session is
replayed through a fresh engine with and without the C pricer (events/s). Answers that differ
between the Python and the C are counted and shown (0 expected). Must not assert anything.
"""
from __future__ import annotations

import gc
import os
import platform
import tempfile
import time

from journal import Reader

from mm_core._fastmd_cffi import ffi, lib
from mm_core.engine import Engine
from mm_core.quotepricer import QuotePricer, engine_price_quote, price_reference
from mm_core.runnerrecords import engine_events
from tests.recovery.journaling import fresh_engine, write_long_session


class _Recorder:
    """Stands in for engine.quote_pricer: records the scalars, answers with the reference."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.calls: list[tuple] = []

    def price(self, *args):
        self.calls.append(args)
        return price_reference(self.cfg, *args)


def _session_events(inputs: int) -> list:
    """The engine inputs of the recovery benchmark's seeded session of `inputs` inputs."""
    with tempfile.TemporaryDirectory() as root:
        shell = write_long_session(f"{root}/session", 11, inputs)
        shell.journal.close()
        with Reader(f"{root}/session") as reader:
            return list(engine_events(reader.records()))


def _reference_engine() -> Engine:
    template = fresh_engine()
    return Engine(template.cfg, template.symbols, template.risk, compiled=False)


def _record(events: list):
    """(engine after the replay, the engine's _price_quote arguments, the scalars per call), on
    the reference signal classes, where every memo miss goes through _price_quote."""
    engine = _reference_engine()
    recorder = engine.quote_pricer = _Recorder(engine.cfg)
    calls: list[tuple] = []

    def recording(*call):
        calls.append(call)
        return engine_price_quote(engine, *call)

    engine._price_quote = recording
    for event in events:
        engine.on_event(event)
    del engine._price_quote, engine.quote_pricer
    return engine, calls, recorder.calls


def _best_ns_per_call(fn, items, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for item in items:
            fn(*item)
        best = min(best, (time.perf_counter_ns() - t0) / len(items))
    return best


def _replay_seconds(events, pricer: bool) -> float:
    """The engine on the Python reference signal classes (compiled=False: the compiled kernel
    prices its memo misses in C itself, without _price_quote), with the Python method or the C
    pricer, so the row isolates what the pricer saves."""
    engine = _reference_engine()
    engine._price_quote = (engine_price_quote if pricer else Engine._price_quote_py).__get__(engine)
    on_event = engine.on_event
    t0 = time.perf_counter()
    for event in events:
        on_event(event)
    return time.perf_counter() - t0


def main(quick: bool = False) -> str:
    inputs = 2_000 if quick else 6_000
    repeats = 3 if quick else 7
    events = _session_events(inputs)
    engine, calls, scalars = _record(events)
    cfg = engine.cfg
    pricer = QuotePricer(cfg)
    c, out = pricer._c, ffi.new("fq_quote *")
    bound = [(engine, *call) for call in calls]
    engine.quote_pricer = pricer
    mismatches = sum(pricer.price(*args) != price_reference(cfg, *args) for args in scalars)
    mismatches += sum(Engine._price_quote_py(*b) != engine_price_quote(*b) for b in bound)
    raw = [(c, *args, out) for args in scalars]
    gc.disable()
    try:
        rows = [
            ("Python: Engine._price_quote_py (the engine's Python method)",
             _best_ns_per_call(Engine._price_quote_py, bound, repeats)),
            ("C: engine_price_quote (same reads, one C call)",
             _best_ns_per_call(engine_price_quote, bound, repeats)),
            ("Python: price_reference (scalars in)",
             _best_ns_per_call(lambda *a: price_reference(cfg, *a), scalars, repeats)),
            ("C: QuotePricer.price (scalars in)", _best_ns_per_call(pricer.price, scalars, repeats)),
            ("C: bare lib.fq_price cffi call", _best_ns_per_call(lib.fq_price, raw, repeats)),
        ]
        py_s = c_s = float("inf")
        for _ in range(repeats):
            py_s = min(py_s, _replay_seconds(events, False))
            c_s = min(c_s, _replay_seconds(events, True))
        py_eps, c_eps = len(events) / py_s, len(events) / c_s
    finally:
        gc.enable()
    base = rows[0][1]
    out_lines = [
        "## Quote pricing: Engine._price_quote_py (Python) vs the C pricer",
        "",
        f"{len(calls)} real _price_quote calls recorded while a fresh engine replayed the recovery "
        f"benchmark's session ({len(events)} events, write_long_session seed 11), each competitor "
        f"timed as a batch mean over all of them, best of {repeats}; CPython "
        f"{platform.python_version()}, {os.cpu_count()} CPUs with 1-min load average "
        f"{os.getloadavg()[0]:.1f} at the end, GC off while timing. Answers differing between "
        f"Python and C over all calls: {mismatches}.",
        "",
        "| competitor | ns per call | x Python method |",
        "|---|---:|---:|",
    ]
    for label, ns in rows:
        out_lines.append(f"| {label} | {ns:.0f} | {ns / base:.2f} |")
    out_lines += [
        "",
        f"Whole engine, the same session replayed from memory through fresh engines, alternating, "
        f"best of {repeats} each, on the reference signal classes: the C pricer against the Python "
        "method (the quote memo and the rest unchanged).",
        "",
        "| engine | events/s | x Python |",
        "|---|---:|---:|",
        f"| Python _price_quote_py | {py_eps:,.0f} | 1.00 |",
        f"| C pricer (engine_price_quote) | {c_eps:,.0f} | {c_eps / py_eps:.2f} |",
    ]
    return "\n".join(out_lines)


if __name__ == "__main__":
    print(main())
