"""Journals of other code for the code-fingerprint tests: a session whose SESSION_START names
another fingerprint, one of layout 1 (written before SESSION_START carried a fingerprint: the
writer registers the 90-byte layout, as the code of then did), and a digest of a journal's files
(to show a refusal wrote nothing)."""
from __future__ import annotations

import hashlib
import pathlib

import numpy as np

import journal.writer
from journal import Reader
from journal.catalogue import EARLIER_SIZES, PAYLOAD_DTYPES, RecordType, pack
from tests.recovery import journaling

OTHER = bytes(range(100, 132))          # a fingerprint no code has
LAYOUT_1 = EARLIER_SIZES[RecordType.SESSION_START][0]


def other_code_session(path: str, events: list, monkeypatch):
    """write_session whose SESSION_START says other code wrote it."""
    with monkeypatch.context() as m:
        m.setattr(journaling, "session_start", lambda: pack(
            RecordType.SESSION_START, session_id=1, code_version=b"0.1.0", code_fingerprint=OTHER))
        return journaling.write_session(path, events)


def layout_1_session(path: str, events: list, monkeypatch):
    """write_session by a writer of the code before: SESSION_START in its 90-byte layout 1."""
    with monkeypatch.context() as m:
        sizes = dict(PAYLOAD_DTYPES)
        sizes[RecordType.SESSION_START] = np.dtype((np.void, LAYOUT_1))
        m.setattr(journal.writer, "PAYLOAD_DTYPES", sizes)
        m.setattr(journaling, "session_start", lambda: pack(
            RecordType.SESSION_START, session_id=1, code_version=b"0.1.0", profile=b"eu-hft")[:LAYOUT_1])
        return journaling.write_session(path, events)


def files_digest(path: str) -> str:
    """SHA-256 over every file of a journal directory (names and bytes)."""
    h = hashlib.sha256()
    for f in sorted(pathlib.Path(path).rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def recon_docs(path: str) -> list[dict]:
    import json
    with Reader(path) as reader:
        return [json.loads(r.payload) for r in reader.records(rtypes=[RecordType.RECON])]
