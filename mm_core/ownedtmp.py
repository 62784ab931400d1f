"""Temporary directories a session owns (the venue's logs under `mmaudit run`): named after the
owning process, so that those a SIGKILLed session could not remove are found and removed by the
next session on the machine.

Owns the naming rule and the sweep. Removes only directories of this user whose owner is no longer
alive; a directory whose pid is alive (its owner, or a process that reused the pid) is left.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile

from audit.childproc import pid_alive

VENUE_PREFIX = "mmaudit-session-venue-"


def owned_tempdir(stack: contextlib.ExitStack, prefix: str = VENUE_PREFIX, root: str | None = None) -> str:
    """A new temporary directory named for this process, removed when `stack` closes; those of
    dead owners are swept first."""
    sweep(prefix, root)
    return stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-", dir=root))


def sweep(prefix: str = VENUE_PREFIX, root: str | None = None) -> list[str]:
    """Remove this user's `prefix<pid>-*` directories under `root` (the temporary directory)
    whose pid is not alive; returns their paths."""
    root = root or tempfile.gettempdir()
    named = re.compile(re.escape(prefix) + r"(\d+)-[^/]+")
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = named.fullmatch(entry.name)
        try:
            mine = entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.geteuid()
        except OSError:
            continue
        if match and mine and not pid_alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
