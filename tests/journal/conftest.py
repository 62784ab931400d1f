"""Fixtures shared by the journal tests: a small real tmpfs mount for full-disk cases, and a real
device whose writeback fails for failed-msync cases."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.journal.jhelpers import ext4_on_loop, run


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs mounted for the test (needs root and mount)."""
    if shutil.which("mount") is None:
        pytest.skip("needs mount (util-linux)")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.fixture
def failing_disk(tmp_path):
    """An ext4 mount whose block device (a loop over a file on a 12 MiB tmpfs) runs out of backing
    store after ~12 MiB of data: from then on writeback fails and msync/fsync return an error."""
    if shutil.which("mount") is None:
        pytest.skip("needs mount (util-linux)")
    back, mnt = tmp_path / "back", tmp_path / "mnt"
    back.mkdir()
    mnt.mkdir()
    if run("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(back)).returncode != 0:
        pytest.skip("cannot mount tmpfs (needs root)")
    try:
        with ext4_on_loop(back / "disk.img", mnt, 256 << 20):
            yield mnt
    finally:
        run("umount", "-l", str(back))
