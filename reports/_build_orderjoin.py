"""cffi build of the reports' compiled order-join kernels (API mode, out of line) into
reports._orderjoin_cffi: the token hash index and the running remaining quantities (orderjoin.h).

The cdef is read from reports/orderjoin.h with the journal build's header stripper, so the
binding never drifts from the header.
"""
from __future__ import annotations

import importlib.util
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def _journal_build():
    """journal/_build.py loaded by path (importing the journal package would need numpy, which
    the isolated build environment does not have)."""
    spec = importlib.util.spec_from_file_location("_journal_build", ROOT / "journal" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_builder() -> FFI:
    ffi = FFI()
    ffi.cdef(_journal_build().cdef_from_header((HERE / "orderjoin.h").read_text()))
    ffi.set_source(
        "reports._orderjoin_cffi",
        '#include "orderjoin.h"',
        sources=[str((HERE / "_orderjoin.c").relative_to(ROOT))],
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
