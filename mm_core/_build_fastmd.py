"""cffi build of the compiled market-data path, signal kernel, quote pricer and the risk gateway's
option revaluation, market-data feeds and order-path windows (API mode, out of line) into
mm_core._fastmd_cffi.

The cdef is read from mm_core/fastmd.h, fastsig.h, fastquote.h, fastgreeks.h, fastfeed.h and
fastrisk.h with the journal build's header stripper, so the binding never drifts from the headers and no declaration is copied
by hand. One module, so the signal kernel reads a packet's fmd_summary directly. The files and
flags it is built from, and the source digest it embeds, are mm_core/_fastmd_sources.py's.
"""
from __future__ import annotations

import importlib.util
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def _load(path: pathlib.Path, name: str):
    """A module loaded by path: importing its package would need numpy, which the isolated build
    environment does not have."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdef_from_header = _load(ROOT / "journal" / "_build.py", "_journal_build").cdef_from_header
built_from = _load(HERE / "_fastmd_sources.py", "_fastmd_sources")
HEADERS, SOURCES = built_from.HEADERS, built_from.SOURCES


def make_builder() -> FFI:
    ffi = FFI()
    ffi.cdef("\n".join(cdef_from_header((HERE / h).read_text()) for h in HEADERS)
             + f"\nconst char *{built_from.DIGEST_FN}(void);")
    ffi.set_source(
        "mm_core._fastmd_cffi",
        "\n".join(f'#include "{h}"' for h in HEADERS)
        + f'\nconst char *{built_from.DIGEST_FN}(void) {{ return "{built_from.source_digest()}"; }}\n',
        sources=[str((HERE / c).relative_to(ROOT)) for c in SOURCES],
        include_dirs=[str(HERE)],
        libraries=["m"],
        extra_compile_args=list(built_from.FLAGS),
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
