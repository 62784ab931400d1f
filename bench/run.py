"""`make bench`: run every side-by-side benchmark and write bench/results/<name>.md.

A `--quick` smoke run writes bench/results/quick/<name>.md instead, marked quick in its header,
so it never stands in for the committed full results.

Each module bench/<name>_bench.py exposes `main(quick: bool) -> str`, which runs its competitors
in one process run and returns a Markdown section (tables with absolute numbers and ratios).
Targets are judged here, in the numbers, never by timed assertions in tests.
"""
from __future__ import annotations

import argparse
import importlib
import pathlib
import platform
import sys
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def discover() -> list[str]:
    here = pathlib.Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("*_bench.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations, for a smoke run")
    args = parser.parse_args(argv)
    names = args.names or discover()
    results = RESULTS / "quick" if args.quick else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            section = module.main(quick=args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            failed.append(name)
            print(f"   FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        header = (f"<!-- {name}{' (QUICK smoke run: fewer iterations, not for the README)' if args.quick else ''}: "
                  f"{platform.machine()}, {platform.python_implementation()} "
                  f"{platform.python_version()}, {time.monotonic() - started:.0f} s -->\n")
        (results / f"{name}.md").write_text(header + section.rstrip() + "\n")
        print(section)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
