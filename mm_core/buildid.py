"""The code fingerprint: one BLAKE2b-256 digest over the source files that decide what the engine
does with a journal, so a journal can say which code wrote it and recovery can refuse other code.

Owns which files count (SOURCES, below) and the digest's layout. Reads the package's own files once
per process (a few ms); part of the I/O edge, not of the sans-io core, which never imports it.
Must not know journals or recovery: SESSION_START carries the digest, recovery.codecheck compares.
"""
from __future__ import annotations

import functools
import hashlib
import pathlib

__all__ = ["UNKNOWN", "BuildIdError", "digest", "fingerprint", "short", "source_files"]

UNKNOWN = "unknown"          # what a journal that carries no fingerprint says
_PERSON = b"mmaudit-code-1"  # the layout of the digest (changing it changes every fingerprint)

# What counts, relative to the directory holding the packages (a checkout's root, or site-packages
# for an installed copy: both hold these same files, the wheel ships them as package data):
#   mm_core/**/*.py, *.c, *.h   the engine and everything under it (book, pricing, guard, hedger,
#                               OMS, the risk gateway, config defaults, the codecs, the C kernels)
#                               and its shells (runner.engine_events maps records back to events)
#   journal/catalogue.py        the record layouts replay decodes
#   recovery/replay.py, reconcile.py, blocks.py
#                               how a journal is fed back (RECON resolutions are re-applied)
# Not counted: the embedded venue (mm_core/venue/: it reaches the engine only as journaled bytes),
# generated C (*_cffi.c, written by a build), compiled objects (built from the .c counted here),
# this module (it decides nothing), and the rest of journal/, audit/, reports/, cli/ (they write
# or read records, they do not decide what the engine does with them).
_TREES = (("mm_core", ("*.py", "*.c", "*.h")),)
_FILES = ("journal/catalogue.py", "recovery/replay.py", "recovery/reconcile.py", "recovery/blocks.py")
_EXCLUDED_DIRS = ("mm_core/venue/",)
_EXCLUDED_FILES = ("mm_core/buildid.py",)
_GENERATED = "_cffi.c"


class BuildIdError(RuntimeError):
    """A source file the fingerprint covers is missing or unreadable: the code cannot be named."""


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
    return h.digest()


@functools.cache
def digest() -> bytes:
    """The running code's fingerprint (32 bytes), computed once per process."""
    return compute()


def fingerprint() -> str:
    """The running code's fingerprint as hex (64 characters)."""
    return digest().hex()


def short(value: str) -> str:
    """A fingerprint as people read it: its first 16 hex digits (UNKNOWN as it is)."""
    return value if value == UNKNOWN else value[:16]
