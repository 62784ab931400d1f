"""Fixtures shared by the journal tests: a small real tmpfs mount for full-disk cases, and a real
device whose writeback fails for failed-msync cases."""
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


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


@pytest.fixture
def failing_disk(tmp_path):
    """An ext4 mount whose block device (a loop over a file on a 12 MiB tmpfs) runs out of backing
    store after ~12 MiB of data: from then on writeback fails and msync/fsync return an error."""
    missing = [tool for tool in ("mount", "umount", "losetup", "mkfs.ext4") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (util-linux, e2fsprogs)")
    back, mnt = tmp_path / "back", tmp_path / "mnt"
    back.mkdir()
    mnt.mkdir()
    if run("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(back)).returncode != 0:
        pytest.skip("cannot mount tmpfs (needs root)")
    loop = None
    try:
        image = back / "disk.img"
        with open(image, "wb") as f:
            f.truncate(256 << 20)
        made = run("losetup", "-f", "--show", str(image))
        if made.returncode != 0:
            pytest.skip(f"no loop device available: {made.stderr.strip()}")
        loop = made.stdout.strip()
        mkfs = run("mkfs.ext4", "-q", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-O", "^has_journal", loop)
        assert mkfs.returncode == 0, mkfs.stderr
        mounted = run("mount", loop, str(mnt))
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount ext4 on a loop device: {mounted.stderr.strip()}")
        try:
            yield mnt
        finally:
            run("umount", "-l", str(mnt))
    finally:
        if loop:
            run("losetup", "-d", loop)
        run("umount", "-l", str(back))
