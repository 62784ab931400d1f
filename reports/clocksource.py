"""Which clock a session's samples came from: the session-start METRICS record each session
journals ({"note": "session-start", "clock_source", "clock_evidence", ...}, mm_core.session).

Owns finding those records and giving each CLOCK_SAMPLE its session's source. A sample before any
such record (a journal written by other code) has source "". Must not know about tolerances or
verdicts (reports.clock decides what a lab clock's samples are worth).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.ptplab import CLOCK_SOURCE as LAB_SOURCE
from journal.catalogue import RecordType, unpack_json

_MARK = b'"note":"session-start"'      # canonical JSON (pack_json): cheap to find before decoding


@dataclass(frozen=True)
class SessionClocks:
    seq: np.ndarray                # int64, ascending: each session-start record's sequence
    source: tuple[str, ...]        # its clock_source ("ptp-lab", "ptp4l at /var/run/ptp4l", ...)
    evidence: tuple[str, ...]      # its clock_evidence note

    def of(self, sample_seq: np.ndarray) -> np.ndarray:
        """The session index of each sample (the last session-start before it), -1 for none."""
        return np.searchsorted(self.seq, np.asarray(sample_seq, np.int64), side="left") - 1

    def sources(self, sample_seq: np.ndarray) -> np.ndarray:
        """Each sample's clock source ("" when no session record precedes it)."""
        names = np.array(("",) + self.source, dtype=object)
        return names[self.of(sample_seq) + 1]

    def lab_evidence(self, sample_seq: np.ndarray) -> str:
        """The lab's clock_evidence note when any of these samples came from the PTP lab, else ""."""
        at = self.of(sample_seq)
        lab = sorted({int(i) for i in at if i >= 0 and self.source[i] == LAB_SOURCE})
        return self.evidence[lab[0]] if lab else ""


def session_clocks(reader, last_seq: int) -> SessionClocks:
    """Every session-start record from the journal's start to `last_seq` (a range that starts
    mid-session still knows its session's clock)."""
    headers, blob, offsets = reader.read_blobs(RecordType.METRICS, 1, int(last_seq))
    seqs, sources, notes = [], [], []
    for i, h in enumerate(headers):
        raw = blob[int(offsets[i]):int(offsets[i + 1])]
        if _MARK not in bytes(raw):
            continue
        doc = unpack_json(raw)
        if isinstance(doc, dict) and doc.get("note") == "session-start":
            seqs.append(int(h["seq"]))
            sources.append(str(doc.get("clock_source", "")))
            notes.append(str(doc.get("clock_evidence", "")))
    return SessionClocks(np.array(seqs, np.int64), tuple(sources), tuple(notes))
