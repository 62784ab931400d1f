"""A session's temporary venue directory is named after its process, so the one a SIGKILLed
session left behind is removed by the next session; a live owner's, another prefix's and a plain
file are left alone."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from mm_core.ownedtmp import VENUE_PREFIX, owned_tempdir, sweep

_HOLDER = """
import contextlib, sys, time
from mm_core.ownedtmp import owned_tempdir
with contextlib.ExitStack() as stack:
    path = owned_tempdir(stack, root=sys.argv[1])
    open(path + "/venue.log", "w").write("logs")
    print(path, flush=True)
    time.sleep(60)
"""


def test_the_directory_of_a_session_killed_with_sigkill_is_swept_by_the_next(tmp_path):
    root = str(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, root], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        left = holder.stdout.readline().strip()
        assert os.path.basename(left).startswith(f"{VENUE_PREFIX}{holder.pid}-")
        assert sweep(root=root) == [] and os.path.isdir(left)          # its owner is alive
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        holder.stdout.close()
    assert os.path.isdir(left)                                         # SIGKILL: no clean-up ran
    with contextlib.ExitStack() as stack:
        mine = owned_tempdir(stack, root=root)
        assert not os.path.exists(left) and os.path.isdir(mine)
    assert not os.path.exists(mine)                                    # removed with its session


def test_only_dead_owners_directories_of_the_prefix_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f"{VENUE_PREFIX}{dead}-abc"
    live = tmp_path / f"{VENUE_PREFIX}{os.getpid()}-abc"
    other = tmp_path / f"mmaudit-venue-{dead}-abc"                     # the standalone venue's: kept
    plain = tmp_path / f"{VENUE_PREFIX}{dead}-file"
    for d in (stale, live, other):
        d.mkdir()
    plain.write_text("not a directory")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists(f"/proc/{dead}"):    # reaped by now
        time.sleep(0.05)
    assert sweep(root=str(tmp_path)) == [str(stale)]
    assert live.is_dir() and other.is_dir() and plain.is_file() and not stale.exists()
