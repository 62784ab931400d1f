"""Two writers creating the same new journal: the one that looked first (no journal yet) but took
the lock last decides again under the lock, and opens the journal the other created and closed
meanwhile, instead of writing a new journal.meta (a new salt) and moving the other's segments to
discarded/. The gap is widened by an LD_PRELOAD shim that delays the open of the LOCK file."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from journal import Journal, Reader, RecordType, verify
from tests.journal.jhelpers import build_preload
from tests.journal.test_tailer_wake import ROOT

DELAY = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* openat(..., "LOCK", ...) first says so on stderr and sleeps $DELAY_LOCK_MS (once). */
static void maybe_delay(const char *path)
{
    static int done;
    const char *ms = getenv("DELAY_LOCK_MS");
    if (ms && !done && strcmp(path, "LOCK") == 0) {
        done = 1;
        write(2, "lock-wait\n", 10);
        usleep((useconds_t)atoi(ms) * 1000);
    }
}

#define WRAP(name)                                                              \
    int name(int dirfd, const char *path, int flags, ...)                      \
    {                                                                           \
        static int (*real)(int, const char *, int, ...);                        \
        if (!real)                                                              \
            real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        va_list ap;                                                             \
        va_start(ap, flags);                                                    \
        int mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, int) : 0;       \
        va_end(ap);                                                             \
        maybe_delay(path);                                                      \
        return real(dirfd, path, flags, mode);                                  \
    }
WRAP(openat)
WRAP(openat64)
"""

LATE = """
    import sys
    from journal import Journal, RecordType
    with Journal(sys.argv[1], segment_size=64 * 1024) as j:
        print("created", j.recovery.created, "discarded_run", j.recovery.discarded_run, flush=True)
        j.append(RecordType.MD_PACKET, b"late")
"""


@pytest.fixture(scope="module")
def delay(tmp_path_factory):
    return build_preload(tmp_path_factory.mktemp("delay"), DELAY)


def test_a_journal_created_while_another_writer_waited_for_the_lock_is_kept(tmp_path, delay):
    d = tmp_path / "j"
    env = dict(os.environ, LD_PRELOAD=str(delay), DELAY_LOCK_MS="1500")
    late = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LATE), str(d)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert late.stderr.readline().strip() == "lock-wait"   # it saw no journal, and waits
        with Journal(d, segment_size=64 * 1024) as j:            # meanwhile: created, written, closed
            salt = j.journal_id
            j.append(RecordType.MD_PACKET, b"first")
        out, err = late.communicate(timeout=60)
    finally:
        if late.poll() is None:
            late.kill()
            late.wait()
    assert late.returncode == 0, err
    assert out.split() == ["created", "False", "discarded_run", "0"]
    assert not (d / "discarded").exists()
    with Journal(d, segment_size=64 * 1024) as j:
        assert j.journal_id == salt                               # the first writer's journal.meta
    with Reader(d) as r:
        assert [rec.payload for rec in r] == [b"first", b"late"]
    assert verify(d).ok
