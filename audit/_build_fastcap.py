"""cffi build (API mode, out of line) of the busy-poll datagram reader (audit/_fastcap.c) and the
write-ahead send for C callers (audit/_fastsend.c) into audit._fastcap_cffi; the cdef, numeric
constants included, is read from audit/fastcap.h and fastsend.h with the journal build's header
stripper, so the binding never drifts from the headers.
"""
from __future__ import annotations

import importlib.util
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
HEADERS = ("fastcap.h", "fastsend.h")
SOURCES = ("_fastcap.c", "_fastsend.c")


def _cdef_from_header(text: str) -> str:
    """journal/_build.py's stripper, loaded by path (importing the journal package would need
    numpy, which the isolated build environment does not have)."""
    spec = importlib.util.spec_from_file_location("_journal_build", ROOT / "journal" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cdef_from_header(text, "FCAP_")


def make_builder() -> FFI:
    ffi = FFI()
    ffi.cdef("\n".join(_cdef_from_header((HERE / h).read_text()) for h in HEADERS))
    ffi.set_source(
        "audit._fastcap_cffi",
        "\n".join(f'#include "{h}"' for h in HEADERS),
        sources=[str((HERE / c).relative_to(ROOT)) for c in SOURCES],   # relative: setuptools runs from the root
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
