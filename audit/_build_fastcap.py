"""cffi build (API mode, out of line) of the busy-poll datagram reader into audit._fastcap_cffi,
from audit/_fastcap.c; the cdef, numeric constants included, is read from audit/fastcap.h with
the journal build's header stripper, so the binding never drifts from the header.
"""
from __future__ import annotations

import importlib.util
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def _cdef_from_header(text: str) -> str:
    """journal/_build.py's stripper, loaded by path (importing the journal package would need
    numpy, which the isolated build environment does not have)."""
    spec = importlib.util.spec_from_file_location("_journal_build", ROOT / "journal" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cdef_from_header(text, "FCAP_")


def make_builder() -> FFI:
    ffi = FFI()
    ffi.cdef(_cdef_from_header((HERE / "fastcap.h").read_text()))
    ffi.set_source(
        "audit._fastcap_cffi",
        '#include "fastcap.h"',
        sources=[str((HERE / "_fastcap.c").relative_to(ROOT))],   # relative: setuptools runs from the root
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
