"""cffi builds (API mode, out of line) of the reports' compiled kernels, one module each:
reports._orderjoin_cffi (token hash index, remaining quantities, OUCH fields, CAT timestamps;
orderjoin.h) and reports._numtext_cffi (decimal and token text; numtext.h).

Each cdef, numeric constants included, is read from the kernel's header with the journal build's
header stripper, so a binding never drifts from its header.
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


def kernel_builder(name: str, constants: str) -> FFI:
    """reports._<name>_cffi from reports/_<name>.c, declared in reports/<name>.h (its #defines
    starting with `constants` become lib attributes)."""
    ffi = FFI()
    ffi.cdef(_journal_build().cdef_from_header((HERE / f"{name}.h").read_text(), constants))
    ffi.set_source(
        f"reports._{name}_cffi",
        f'#include "{name}.h"',
        sources=[str((HERE / f"_{name}.c").relative_to(ROOT))],   # relative: setuptools runs from the root
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
    )
    return ffi


orderjoin_ffi = kernel_builder("orderjoin", "OJ_")
numtext_ffi = kernel_builder("numtext", "NT_")

if __name__ == "__main__":
    for builder in (orderjoin_ffi, numtext_ffi):
        builder.compile(tmpdir=str(ROOT), verbose=True)
