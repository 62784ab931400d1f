"""A network namespace of a test's own for the venue's multicast market data: loopback up with
multicast on (and, when asked, a veth pair with an address of its own), Python run inside it as a
bounded subprocess. Named after the test's pid, deleted on the way out whatever happened; the
host's own interfaces are never touched. Skipped only where namespaces cannot be made (not root).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
import subprocess
import sys

import pytest

from audit.childproc import die_with_owner
from audit.ptplab import _ip

ROOT = pathlib.Path(__file__).resolve().parents[2]
GROUP = "239.192.77.1"              # organisation-local scope: never routed off a site
VETH_ADDRESS = "10.231.77.1"        # the veth end the venue publishes from (veth_address=True)
_counter = itertools.count()
_CANNOT = ("Operation not permitted", "Permission denied")


@contextlib.contextmanager
def multicast_namespace(veth: bool = False):
    """The name of a fresh namespace with lo up and multicast on; with `veth`, a veth pair in it
    too, one end holding VETH_ADDRESS/24. Deleted (with everything in it) on the way out."""
    name = f"mmamc{os.getpid()}-{next(_counter)}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode:
        if any(why in made.stderr for why in _CANNOT):
            pytest.skip(f"cannot create network namespaces here: {made.stderr.strip()}")
        raise AssertionError(f"ip netns add {name} failed: {made.stderr.strip()}")
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "set", "lo", "multicast", "on")
        if veth:
            _ip("-n", name, "link", "add", "mca", "type", "veth", "peer", "name", "mcb")
            _ip("-n", name, "address", "add", f"{VETH_ADDRESS}/24", "dev", "mca")
            for end in ("mca", "mcb"):
                _ip("-n", name, "link", "set", end, "up", "multicast", "on")
        yield name
    finally:
        _ip("netns", "delete", name, check=False)    # its veth pair goes with it


def python_in(namespace: str, code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python3 -c code args...` inside the namespace, from this worktree, killed at `timeout`
    (and with the test process, should that die first)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([*die_with_owner("KILL"), "ip", "netns", "exec", namespace, sys.executable, "-c", code,
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
