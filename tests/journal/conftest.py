"""Fixtures shared by the journal tests: a small real tmpfs mount for full-disk cases."""
from __future__ import annotations

import shutil
import subprocess

import pytest


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
