"""cffi build of the compiled market-data path, signal kernel, quote pricer and the risk gateway's
option revaluation and market-data feeds (API mode, out of line) into mm_core._fastmd_cffi.

The cdef is read from mm_core/fastmd.h, fastsig.h, fastquote.h and fastgreeks.h with the journal
build's header stripper, so the binding never drifts from the headers and no declaration is copied
by hand. One module, so the signal kernel reads a packet's fmd_summary directly. No -march or
-ffast-math, and -ffp-contract=off: the signal kernel's, the quote pricer's and the revaluation's
floats must equal the Python reference's bit for bit.
"""
from __future__ import annotations

import importlib.util
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
HEADERS = ("fastmd.h", "fastsig.h", "fastquote.h", "fastgreeks.h", "fastfeed.h")
SOURCES = ("_fastmd.c", "_fastsig.c", "_fastquote.c", "_fastgreeks.c", "_fastfeed.c")


def _journal_build():
    """journal/_build.py loaded by path: importing the journal package would need numpy, which
    the isolated build environment does not have."""
    spec = importlib.util.spec_from_file_location("_journal_build", ROOT / "journal" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdef_from_header = _journal_build().cdef_from_header


def make_builder() -> FFI:
    ffi = FFI()
    ffi.cdef("\n".join(cdef_from_header((HERE / h).read_text()) for h in HEADERS))
    ffi.set_source(
        "mm_core._fastmd_cffi",
        "\n".join(f'#include "{h}"' for h in HEADERS),
        sources=[str((HERE / c).relative_to(ROOT)) for c in SOURCES],
        include_dirs=[str(HERE)],
        libraries=["m"],
        extra_compile_args=["-O2", "-std=gnu11", "-ffp-contract=off", "-Wall", "-Wextra",
                            "-Wno-unused-parameter"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
