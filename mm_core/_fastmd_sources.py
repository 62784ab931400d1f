"""What the compiled module mm_core._fastmd_cffi is built from (headers, C sources, compiler
flags) and its source digest, which the build embeds in the module and mm_core.buildid recomputes
from the files at run time, so that a module built from older C is found out.

Imports nothing but the standard library: the cffi build (mm_core/_build_fastmd.py) loads it by
path, in an isolated build environment without numpy.
"""
from __future__ import annotations

import hashlib
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
HEADERS = ("fastmd.h", "fastsig.h", "fastquote.h", "fastgreeks.h", "fastfeed.h", "fastrisk.h", "fastlane.h")
SOURCES = ("_fastmd.c", "_fastsig.c", "_fastquote.c", "_fastgreeks.c", "_fastfeed.c", "_fastrisk.c",
           "_fastlane.c")
# No -march or -ffast-math, and -ffp-contract=off: the compiled floats must equal the Python
# reference's bit for bit.
FLAGS = ("-O2", "-std=gnu11", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter")
DIGEST_FN = "fmd_source_digest"    # the compiled module's function returning the embedded digest


def source_digest(here: pathlib.Path = HERE) -> str:
    """BLAKE2b-128 (hex) of the headers, the C sources and the flags under `here`."""
    h = hashlib.blake2b(digest_size=16, person=b"mmaudit-fastmd")
    for name in HEADERS + SOURCES:
        data = (here / name).read_bytes()
        h.update(len(name).to_bytes(4, "little") + name.encode() + len(data).to_bytes(8, "little") + data)
    h.update(" ".join(FLAGS).encode())
    return h.hexdigest()
