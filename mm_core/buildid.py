"""The code fingerprint: one BLAKE2b-256 digest over the source files that decide what the engine
does with a journal and the interpreter and numpy that run them, so a journal can say which code
wrote it and recovery can refuse other code; and the check that the compiled module was built from
those sources (a module left from older C would make the fingerprint lie).

Owns which files count (SOURCES, below) and the digest's layout. Reads the package's own files once
per process (a few ms); part of the I/O edge, not of the sans-io core, which never imports it.
Must not know journals or recovery: SESSION_START carries the digest, recovery.codecheck compares.
"""
from __future__ import annotations

import functools
import hashlib
import pathlib
import platform

import numpy

from mm_core import _fastmd_sources

__all__ = ["UNKNOWN", "BuildIdError", "StaleBuild", "check_compiled", "digest", "fingerprint", "runtime",
           "short", "source_files"]

UNKNOWN = "unknown"          # what a journal that carries no fingerprint says
_PERSON = b"mmaudit-code-2"  # the layout of the digest (changing it changes every fingerprint)

# What counts, relative to the directory holding the packages (a checkout's root, or site-packages
# for an installed copy: both hold these same files, the wheel ships them as package data):
#   mm_core/**/*.py, *.c, *.h   the engine and everything under it (book, pricing, guard, hedger,
#                               OMS, the risk gateway, config defaults, the codecs, the C kernels)
#                               and its shells (runnerrecords.engine_events maps records back to events)
#   journal/catalogue.py        the record layouts replay decodes
#   recovery/replay.py, reconcile.py, blocks.py
#                               how a journal is fed back (RECON resolutions are re-applied)
# Not counted: the embedded venue (mm_core/venue/: it reaches the engine only as journaled bytes),
# generated C (*_cffi.c, written by a build), compiled objects (built from the .c counted here),
# this module (it decides nothing), and the rest of journal/, audit/, reports/, cli/ (they write
# or read records, they do not decide what the engine does with them).
# Also counted (runtime()): the Python implementation and version, and numpy's version: float
# formatting, hashing and numpy's reductions could change a decision between them. The compiled
# module's compiler flags are in the C source digest it embeds, which check_compiled() requires to
# equal the sources' (so the .c files counted here are what runs).
_TREES = (("mm_core", ("*.py", "*.c", "*.h")),)
_FILES = ("journal/catalogue.py", "recovery/replay.py", "recovery/reconcile.py", "recovery/blocks.py")
_EXCLUDED_DIRS = ("mm_core/venue/",)
_EXCLUDED_FILES = ("mm_core/buildid.py",)
_GENERATED = "_cffi.c"


class BuildIdError(RuntimeError):
    """A source file the fingerprint covers is missing or unreadable: the code cannot be named."""


class StaleBuild(BuildIdError):
    """The compiled module was built from other C sources (or flags) than the ones beside it."""


def _root() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parent.parent


def source_files(root: pathlib.Path | None = None) -> list[str]:
    """The files the fingerprint covers, as sorted posix paths relative to `root`."""
    root = _root() if root is None else pathlib.Path(root)
    found = set()
    for top, patterns in _TREES:
        for pattern in patterns:
            for path in (root / top).rglob(pattern):
                rel = path.relative_to(root).as_posix()
                if ("__pycache__" in rel or rel.startswith(_EXCLUDED_DIRS) or rel in _EXCLUDED_FILES
                        or rel.endswith(_GENERATED)):
                    continue
                found.add(rel)
    return sorted(found | set(_FILES))


def compute(root: pathlib.Path | None = None) -> bytes:
    """The digest of the files under `root` (default: where this package is), read now."""
    root = _root() if root is None else pathlib.Path(root)
    h = hashlib.blake2b(digest_size=32, person=_PERSON)
    for rel in source_files(root):
        try:
            data = (root / rel).read_bytes()
        except OSError as exc:
            raise BuildIdError(f"cannot read {rel} under {root} for the code fingerprint: "
                               f"{exc.strerror or exc}") from None
        name = rel.encode()
        h.update(len(name).to_bytes(4, "little") + name + len(data).to_bytes(8, "little"))
        h.update(data)
    h.update(runtime().encode())
    return h.digest()


def runtime() -> str:
    """The interpreter and numpy this process runs, as the fingerprint counts them."""
    return f"{platform.python_implementation()} {platform.python_version()}; numpy {numpy.__version__}"


def check_compiled(root: pathlib.Path | None = None) -> None:
    """Raise StaleBuild unless mm_core's compiled module embeds the digest of the C sources and
    flags under `root` (default: beside this package), i.e. was built from them."""
    here = (_root() if root is None else pathlib.Path(root)) / "mm_core"
    try:
        from mm_core._fastmd_cffi import ffi, lib
        built = ffi.string(getattr(lib, _fastmd_sources.DIGEST_FN)()).decode()
    except (ImportError, AttributeError) as exc:
        raise StaleBuild(f"mm_core's compiled module does not say what it was built from ({exc}): "
                         "rebuild it (pip install ., or python3 setup.py build_ext --inplace)") from None
    try:
        now = _fastmd_sources.source_digest(here)
    except OSError as exc:
        raise BuildIdError(f"cannot read mm_core's C sources under {here}: {exc.strerror or exc}") from None
    if built != now:
        raise StaleBuild(f"mm_core's compiled module was built from other C sources (digest {built}; the "
                         f"sources under {here} give {now}): rebuild it (pip install ., or python3 setup.py "
                         "build_ext --inplace)")


@functools.cache
def digest() -> bytes:
    """The running code's fingerprint (32 bytes), computed once per process. StaleBuild when the
    compiled module was not built from the sources the fingerprint counts."""
    check_compiled()
    return compute()


def fingerprint() -> str:
    """The running code's fingerprint as hex (64 characters)."""
    return digest().hex()


def short(value: str) -> str:
    """A fingerprint as people read it: its first 16 hex digits (UNKNOWN as it is)."""
    return value if value == UNKNOWN else value[:16]
