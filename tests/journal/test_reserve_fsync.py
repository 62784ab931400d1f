"""A failed fsync of the reserve file (or of the directory after its rename) is fatal and latched,
even when it fails with ENOSPC: only posix_fallocate's ENOSPC means low space (the journal opens
low, retry_space tries again later). The fsync failure is injected by an LD_PRELOAD shim compiled
here, which fails fsync() of a file with a given name, as a full thin-provisioned device or a
lost write does for real."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from tests.journal.jhelpers import build_preload
from tests.journal.test_reserve import SEG, fill_disk
from tests.journal.test_tailer_wake import ROOT

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fsync() of a file whose name is $FAIL_FSYNC_OF fails with ENOSPC; others go through. */
int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    const char *want = getenv("FAIL_FSYNC_OF");
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = want && *want ? readlink(link, path, sizeof path - 1) : -1;
    if (n > 0) {
        path[n] = 0;
        const char *base = strrchr(path, '/');
        if (base && strcmp(base + 1, want) == 0) {
            errno = ENOSPC;
            return -1;
        }
    }
    return real(fd);
}
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return build_preload(tmp_path_factory.mktemp("shim"), SHIM)


def run_with_shim(shim, code: str, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, LD_PRELOAD=str(shim))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


OPEN = """
    import os, sys
    from journal import DurabilityFailed, Journal
    os.environ["FAIL_FSYNC_OF"] = "reserve.mmj.tmp"
    try:
        j = Journal(sys.argv[1], segment_size=64 * 1024, durability="group")
    except DurabilityFailed as exc:
        print("failed", exc.errno)
    else:
        print("opened low" if j.space_low else "opened")
"""


def test_a_failed_fsync_of_the_reserve_at_open_is_fatal(tmp_path, shim):
    done = run_with_shim(shim, OPEN, tmp_path / "j")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["failed", str(errno.ENOSPC)]   # not "opened low"


RETRY = """
    import os, sys
    from journal import DiskFull, DurabilityFailed, Journal, RecordType
    j = Journal(sys.argv[1], segment_size=int(sys.argv[3]), durability="group")
    print("low", j.space_low, flush=True)
    os.unlink(sys.argv[2])                       # space is back
    os.environ["FAIL_FSYNC_OF"] = sys.argv[4]
    for attempt in range(2):
        try:
            print("retry", j.retry_space(), flush=True)
        except DurabilityFailed as exc:
            print("retry failed", exc.errno, flush=True)
    try:
        j.append(RecordType.MD_PACKET, b"x")
    except DurabilityFailed:
        print("append refused", flush=True)
    try:
        j.close()
    except DurabilityFailed:
        print("close refused", flush=True)
"""


@pytest.mark.parametrize("name", ["reserve.mmj.tmp", "j"])   # the file; the directory after its rename
def test_a_failed_fsync_of_the_reserve_in_retry_space_is_latched(small_tmpfs, shim, name):
    filler = fill_disk(small_tmpfs, leave=SEG + 64 * 1024)
    d = small_tmpfs / "j"
    done = run_with_shim(shim, RETRY, d, filler, SEG, name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "low True",
        f"retry failed {errno.ENOSPC}",            # not "still low, try again later"
        f"retry failed {errno.ENOSPC}",            # latched: not retried
        "append refused",
        "close refused",
    ]
