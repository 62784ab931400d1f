"""The RECON documents of a journal range, read in one bulk pass (Reader.read_blobs): what the
code check (accepted code changes) and the mid-session reconcile (corrections already reported)
look up in what earlier recoveries journaled.

Owns reading them; a record that is not a JSON object is no document of these kinds and is
passed over (replay, which must apply every one, refuses such a record instead).
"""
from __future__ import annotations

from collections.abc import Iterator

from journal import Reader
from journal.catalogue import RecordType, unpack_json

__all__ = ["recon_documents"]


def recon_documents(reader: Reader, first_seq: int | None = None,
                    last_seq: int | None = None) -> Iterator[tuple[int, dict]]:
    """(seq, document) of every RECON record from first_seq to last_seq that holds a JSON object."""
    headers, blob, offsets = reader.read_blobs(RecordType.RECON, first_seq, last_seq)
    for seq, lo, hi in zip(headers["seq"].tolist(), offsets[:-1].tolist(), offsets[1:].tolist()):
        try:
            doc = unpack_json(blob[lo:hi])
        except ValueError:
            continue
        if isinstance(doc, dict):
            yield seq, doc
