"""Scratch directories and who owns them (recovery drills, journal stress runs, tests): each holds
a lock file on which its process keeps an advisory lock (flock LOCK_EX) for as long as the
directory is in use, so a later user of the same prefix tells a dead owner's leftovers (lock free)
from a live one's (lock held) by asking the kernel, whatever pid namespace either runs in and
however pids were reused since. Here in journal/ (which imports nothing else of the project) so
that every package may use it.

Must not know what is put in a scratch, nor touch a directory that has no lock file.
"""
from __future__ import annotations

import fcntl
import os
import pathlib
import shutil
import tempfile
import weakref

__all__ = ["LOCK_NAME", "scratch_dir"]

LOCK_NAME = "drill-scratch.lock"      # the name drills always used: their old leftovers are swept too
_PENDING_NAME = LOCK_NAME + ".new"


def scratch_dir(prefix: str, dir: str | os.PathLike | None = None) -> tempfile.TemporaryDirectory:
    """A scratch directory in `dir` (the temp directory by default), removed at cleanup() and held
    by this process's lock until then. A process killed from outside (SIGKILL, the OOM killer, a
    CI timeout) cannot remove its own, so this first removes the scratch directories of `prefix`
    whose lock is free: their process is gone. One whose lock is held (a live user, in any process
    sharing the directory) or that has no lock file (a kept journal) stays."""
    root = pathlib.Path(dir) if dir is not None else pathlib.Path(tempfile.gettempdir())
    _remove_abandoned(root, prefix)
    return _LockedScratch(prefix, str(root))


class _LockedScratch(tempfile.TemporaryDirectory):
    """A TemporaryDirectory whose lock is held from before anything else is in it until
    cleanup() has removed it (a sweep meanwhile finds the lock busy or the file gone)."""

    def __init__(self, prefix: str, root: str) -> None:
        super().__init__(prefix=prefix, dir=root)
        try:
            fd = _take_lock(pathlib.Path(self.name))
        except BaseException:
            super().cleanup()
            raise
        # released at cleanup(), or when the object is collected without one
        self._release = weakref.finalize(self, _release, fd)

    def cleanup(self) -> None:
        try:
            super().cleanup()
        finally:
            self._release()


def _take_lock(directory: pathlib.Path) -> int:
    """Create and lock the lock file of a new scratch directory; returns its descriptor.

    The file is locked under a pending name and only then renamed to LOCK_NAME: a file of that
    name is held from the instant it exists, so a sweep that wins its lock knows the owner is gone,
    never that the owner has created it and not yet locked it. Until the rename the directory has
    no lock file and sweeps leave it alone; an owner killed in that instant leaves an empty
    directory behind, the price of never removing a live owner's."""
    pending = directory / _PENDING_NAME
    fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(pending, directory / LOCK_NAME)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _release(fd: int) -> None:
    # unlock explicitly: a process forked meanwhile shares the lock until it closes its copy
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _remove_abandoned(root: pathlib.Path, prefix: str) -> None:
    """Remove the directories of `prefix` in `root` whose lock file nobody holds."""
    for old in root.glob(prefix + "*"):
        lock = old / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue        # no lock file (a kept journal, someone else's) or not ours to open
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue    # its owner is alive
            # still the file at that path: its owner may have removed the directory (and a new
            # owner taken the name) between our open and our lock
            if _same_file(fd, lock):
                shutil.rmtree(old, ignore_errors=True)
        finally:
            os.close(fd)


def _same_file(fd: int, path: pathlib.Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except OSError:
        return False
