"""The stress drivers' scratch on /dev/shm (journal.stress.scratch_dir) outlives no SIGKILL: a
power-loss run killed mid-way leaves its images in memory, and the next run's scratch sweeps them
(its lock is free), while a live run's scratch is left alone. Real owner processes, killed."""
from __future__ import annotations

import os
import pathlib

import pytest

from journal.stress import SCRATCH_PREFIX, scratch_dir
from tests.journal.test_scratch import owners  # noqa: F401 (the fixture)

SHM = pathlib.Path("/dev/shm")
pytestmark = pytest.mark.skipif(not (SHM.is_dir() and os.access(SHM, os.W_OK)),
                                reason="no writable /dev/shm on this machine: the stress scratch falls back to "
                                       "the caller's directory, which the caller owns")

# a stress run: its scratch made through journal.stress, work put in it, held until killed
STRESS_RUN = """
import sys, time
from journal.stress import scratch_dir
with scratch_dir(sys.argv[2]) as where:
    (where / "work").write_bytes(b"x")
    print(where, flush=True)
    time.sleep(float(sys.argv[3]))
"""


def test_the_scratch_of_a_killed_stress_run_is_swept_by_the_next(tmp_path, owners):  # noqa: F811
    killed, left = owners.start(SCRATCH_PREFIX, SHM, STRESS_RUN)
    running, live = owners.start(SCRATCH_PREFIX, SHM, STRESS_RUN)
    owners.kill(killed)
    assert left.is_dir()                          # a SIGKILLed run cannot remove its own
    with scratch_dir(tmp_path) as mine:
        assert mine.parent == SHM and mine.name.startswith(SCRATCH_PREFIX)
        assert not left.exists()                  # swept: its lock was free
        assert (live / "work").is_file()          # a live run's is left alone
    assert not mine.exists()
    owners.kill(running)                          # and the other one's goes with the next run
    with scratch_dir(tmp_path):
        assert not live.exists()
