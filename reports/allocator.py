"""Process allocator settings for report runs: freed memory kept for reuse, not returned to the
kernel and mapped fresh for the next chunk.

A streamed report allocates the same few MB of numpy columns chunk after chunk. glibc serves each
large block (above its mmap threshold, which starts at 128 KB) with a fresh mmap and unmaps it on
free, so every chunk pays a page fault and a zeroed page per 4 KB again; with the thresholds
raised, freed blocks stay in the heap and the next chunk's arrays reuse the same, already mapped
pages (on the 2M-event bench journal, a third fewer page faults per run). The cost: memory freed
during the run is returned to the kernel at exit rather than at once, so the resident size stays
at its peak. Only glibc has mallopt; on another C library nothing changes (the reports are the
same, only slower). Arrow's own buffers follow this policy only when Arrow allocates with the C
library (ARROW_DEFAULT_MEMORY_POOL=system, which the mmaudit command sets before pyarrow loads).
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1      # glibc malloc.h: keep up to this much free memory at the heap top
M_MMAP_THRESHOLD = -3      # glibc malloc.h: blocks at least this large get an mmap of their own
KEEP_BYTES = 1 << 30       # above any one chunk's column (at most tens of MB)
MMAP_FALLBACK = 32 << 20   # the largest mmap threshold every 64-bit glibc accepts (older ones
                           # refuse more than half their 64 MiB heap size)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds once for this process; whether they are raised."""
    global _applied
    if _applied is None:
        _applied = False
        try:
            # the process's own symbols (libc's among them): ctypes.util.find_library would
            # spawn ldconfig and compilers, about 40 processes
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):      # not glibc: its allocator keeps its own policy
            return False
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        # the mmap threshold first: a refused one after an accepted trim threshold would leave
        # glibc's adaptive threshold switched off at its 128 KB start
        raised = bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) or bool(mallopt(M_MMAP_THRESHOLD, MMAP_FALLBACK))
        _applied = raised and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))
    return _applied
