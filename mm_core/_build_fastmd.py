"""cffi build of the compiled market-data path (API mode, out of line) into mm_core._fastmd_cffi.

The cdef is read from mm_core/fastmd.h with the journal build's header stripper, so the binding
never drifts from the header and no declaration is copied by hand.
"""
from __future__ import annotations

import importlib.util
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


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
    ffi.cdef(cdef_from_header((HERE / "fastmd.h").read_text()))
    ffi.set_source(
        "mm_core._fastmd_cffi",
        '#include "fastmd.h"',
        sources=[str((HERE / "_fastmd.c").relative_to(ROOT))],
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
