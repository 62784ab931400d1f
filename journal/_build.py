"""cffi build of the journal's C core (API mode, out of line) into journal._journal_cffi.

The cdef is read from journal.h itself: comments, include guards, `extern "C"` wrappers and
non-numeric preprocessor lines are stripped mechanically, so the binding can never drift from
the header. Must not contain a hand-written copy of any declaration.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = ["crc32c.c", "blake2b.c", "chain.c", "journal_common.c", "journal_footer.c", "journal_writer.c",
           "journal_discard.c", "journal_ahead.c", "journal_notify.c", "journal_reader.c", "journal_tail.c",
           "journal_verify.c", "journal_salvage.c", "journal_lock.c",
           "journal_recheck.c", "journal_end.c", "journal_testhook.c"]


def cdef_from_header(text: str, constants: str = "MMJ_") -> str:
    """The declarations of a header (journal.h by default) in a form cffi's parser accepts, with
    its plain numeric #defines whose names start with `constants`."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)   # extern "C" wrappers
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):   # keep plain numeric constants, drop guards and includes
            define = re.fullmatch(rf"#define\s+({re.escape(constants)}\w+)\s+(\d+|\(-?\d+\))", stripped)
            if define:          # cffi takes a bare number; "..." lets the compiler give e.g. (-1)
                name, value = define.groups()
                kept.append(f"#define {name} {value if value.isdigit() else '...'}")
            continue
        kept.append(line)
    return "\n".join(kept)


def make_builder() -> FFI:
    ffi = FFI()
    header = (HERE / "journal.h").read_text()
    ffi.cdef(cdef_from_header(header))
    # paths relative to the project root, as setuptools runs this from there
    root = HERE.parent
    ffi.set_source(
        "journal._journal_cffi",
        '#include "journal.h"',
        sources=[str((HERE / s).relative_to(root)) if (HERE / s).is_relative_to(root) else str(HERE / s)
                 for s in SOURCES],
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent), verbose=True)
