"""cffi build of the decimal-text and token-text kernels (reports/_numtext.c, declared in reports/numtext.h)
into reports._numtext_cffi, for reports/numtext.py."""
from __future__ import annotations

import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

CDEF = """
int64_t nt_scaled_text(const uint64_t *mag, const uint8_t *neg, const uint8_t *valid, int64_t n,
                       int scale, int32_t *offsets, uint8_t *data, int64_t capacity);
int nt_padded_text(const uint64_t *mag, int64_t n, int width, const uint8_t *prefix, int prefix_len,
                   uint8_t *data);
int64_t nt_token_text(const uint8_t *keys, int64_t n, int width, int32_t *offsets, uint8_t *data);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "reports._numtext_cffi",
    '#include "numtext.h"',
    sources=[str((HERE / "_numtext.c").relative_to(ROOT))],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
