"""The guard's markout mean is the plain left-to-right float sum in the Python reference as in the
compiled kernel, on every Python: sum() of floats is compensated from Python 3.12 on, and the
markouts below (found by a reviewer) sit where the two sums fall either side of the threshold."""
import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from mm_core.guard import MARKOUT, GuardParams, SymbolGuard
from mm_core.sigkernel import SignalKernel

ROOT = pathlib.Path(__file__).resolve().parents[2]
PARAMS = dict(markout_window=5, markout_threshold=1.0)
# each: the plain sum's mean is -1.0000000000000002 (trips), the exact (fsum) mean is -1.0 (does not)
WINDOWS = [
    [-4.335, 0.07571428571428572, -0.5557142857142857, -1.2075, 1.0225],
    [-0.12666666666666668, -1.8883333333333334, -2.08, 0.7983333333333333, -1.7033333333333334],
    [0.31, -4.53, -0.32785714285714285, -0.26785714285714285, -0.18428571428571427],
]
# the reference guard alone (mm_core.guard needs the standard library only), printing its trips
SCRIPT = """
import json, sys
from mm_core.guard import GuardParams, SymbolGuard
out = []
for marks in json.loads(sys.argv[1]):
    g = SymbolGuard(0, GuardParams(**json.loads(sys.argv[2])))
    for x in marks:
        g.on_markout(True, x)
    t = g.evaluate(0)
    out.append(None if t is None else [t.bid, t.ask, t.reasons])
print(json.dumps(out))
"""


def kernel_trips() -> list:
    out = []
    for marks in WINDOWS:
        g = SignalKernel(1, GuardParams(**PARAMS), 0.1).guards[0]
        for x in marks:
            g.on_markout(True, x)
        t = g.evaluate(0)
        out.append(None if t is None else [t.bid, t.ask, t.reasons])
    return out


def test_the_reviewers_windows_trip_the_bid_in_both_engines():
    want = [[True, False, MARKOUT]] * len(WINDOWS)
    assert kernel_trips() == want
    for marks in WINDOWS:
        g = SymbolGuard(0, GuardParams(**PARAMS))
        for x in marks:
            g.on_markout(True, x)
        t = g.evaluate(0)
        assert (t.bid, t.ask, t.reasons) == (True, False, MARKOUT)


def other_pythons() -> dict[tuple[int, int], str]:
    """Interpreters of Python >= 3.12 on this machine other than this one, one per version: on
    PATH, or installed by pyenv."""
    found: dict[tuple[int, int], str] = {}
    candidates = [shutil.which(f"python3.{m}") for m in range(12, 16)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    for exe in filter(None, candidates):
        try:
            r = subprocess.run([exe, "-c", "import sys; print(*sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            version = tuple(int(x) for x in r.stdout.split())
            if version >= (3, 12) and version != sys.version_info[:2]:
                found.setdefault(version, exe)
    return found


def test_the_reference_on_python_3_12_and_later_decides_as_the_kernel():
    pythons = other_pythons()
    if sys.version_info < (3, 12) and not pythons:
        pytest.skip("no Python >= 3.12 interpreter on this machine to run the reference under")
    if sys.version_info >= (3, 12):
        pythons[sys.version_info[:2]] = sys.executable
    want = kernel_trips()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for version, exe in sorted(pythons.items()):
        r = subprocess.run([exe, "-c", SCRIPT, json.dumps(WINDOWS), json.dumps(PARAMS)], env=env,
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == want, f"Python {version} ({exe})"
