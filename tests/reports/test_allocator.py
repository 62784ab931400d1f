"""reports.allocator: the report run's glibc thresholds are really raised (mallopt accepted them),
so freed column memory stays in the heap for the next chunk."""
from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from reports import allocator


def _is_glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version
    except AttributeError:
        return False
    return True


@pytest.mark.skipif(not _is_glibc(), reason="mallopt is glibc's; this C library has its own allocator policy")
def test_the_thresholds_are_raised_once_per_process():
    code = ("from reports import allocator\n"
            "first = allocator.keep_freed_memory()\n"
            "print(first, allocator.keep_freed_memory())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


def test_a_refused_mmap_threshold_falls_back_to_the_largest_every_glibc_accepts(monkeypatch):
    calls = []

    def mallopt(param, value):
        calls.append((param, value))
        return 0 if (param, value) == (allocator.M_MMAP_THRESHOLD, allocator.KEEP_BYTES) else 1

    class Libc:
        pass

    libc = Libc()
    libc.mallopt = mallopt
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda _name: libc)
    assert allocator.keep_freed_memory() is True
    assert calls == [(allocator.M_MMAP_THRESHOLD, allocator.KEEP_BYTES),
                     (allocator.M_MMAP_THRESHOLD, allocator.MMAP_FALLBACK),
                     (allocator.M_TRIM_THRESHOLD, allocator.KEEP_BYTES)]
