"""Directories the journal creates are made durable in their parent, as its files are: the
journal directory created by a writer's open (fsync of the parent after the mkdir) and tailers/
created by the first commit of a named tailer (fsync of the journal directory after it)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.journal.jhelpers import build_preload
from tests.journal.test_ahead_wait import FS_LOG, log_lines
from tests.journal.test_tailer_wake import ROOT

SCRIPT = """
    import sys
    from journal import Journal, Tailer
    with Journal(sys.argv[1], segment_size=64 * 1024) as j:
        j.append(100, b"x" * 40)
    with Tailer(sys.argv[1], name="reports") as t:
        t.next(timeout_s=0)
        t.commit()
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return build_preload(tmp_path_factory.mktemp("fs_log"), FS_LOG.read_text())


def test_created_directories_are_fsynced_in_their_parent(tmp_path, shim):
    parent = tmp_path / "parent"
    parent.mkdir()
    d = parent / "journal"
    log = tmp_path / "fs.log"
    env = dict(os.environ, LD_PRELOAD=str(shim), MMJ_FS_LOG=str(log))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(d)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = [(call, name) for call, name, _ in log_lines(log)]
    made = calls.index(("mkdir", "journal"))
    assert ("fsync", "parent") in calls[made + 1:]
    made = calls.index(("mkdir", "tailers"))
    assert calls[made + 1] == ("fsync", "journal")
