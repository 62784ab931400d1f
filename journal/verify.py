"""verify() and info(): whole-journal integrity check and a summary, as plain Python values.

Owns the VerifyReport shape that audit and the CLI consume. Must not repair anything.
"""
from __future__ import annotations

import dataclasses
import os
import struct

from journal._journal_cffi import ffi, lib
from journal.errors import check, reason_text
from journal.reader import Reader


@dataclasses.dataclass(frozen=True)
class BadRecord:
    """The first record (or segment position) that was altered or is missing."""

    seq: int          # the record's sequence (the expected one when a record is missing)
    segment: int
    offset: int
    reason: str
    reason_code: int
    chain_from_seq: int | None = None   # for a chain mismatch: first sequence the failed link covers

    def __str__(self) -> str:
        where = f"segment {self.segment} offset {self.offset} seq {self.seq}"
        if self.chain_from_seq is not None:
            where += f" (hash link covering seq {self.chain_from_seq}..{max(self.chain_from_seq, self.seq - 1)})"
        return f"{self.reason} at {where}"


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    segments: int
    checkpoints: int
    last_seq: int
    last_sealed: bool
    writer_live: bool
    unanchored: int           # records after the last CHECKPOINT/SEAL, not yet under the hash chain
    first_bad: BadRecord | None
    # what recoveries kept in discarded/r<N> (damage found then): the journal is the valid prefix
    # left, which `ok` judges; these runs say that records left it and where they are
    discarded: tuple = ()


def verify(path) -> VerifyReport:
    """Check every header, record, checkpoint and seal of the journal at path."""
    rep = ffi.new("mmj_verify_report *")
    err = ffi.new("int *")
    check(lib.mmj_verify(os.fsencode(os.fspath(path)), rep, err), f"verify {path}", err[0])
    bad = None
    if not rep.ok:
        bad = BadRecord(seq=rep.bad_seq, segment=rep.bad_segment, offset=rep.bad_offset,
                        reason=reason_text(rep.reason), reason_code=rep.reason,
                        chain_from_seq=rep.chain_from_seq if rep.reason == lib.MMJ_R_CHAIN else None)
    return VerifyReport(ok=bool(rep.ok), records=rep.records, segments=rep.segments, checkpoints=rep.checkpoints,
                        last_seq=rep.last_seq, last_sealed=bool(rep.last_sealed), writer_live=bool(rep.writer_live),
                        unanchored=rep.unanchored, first_bad=bad, discarded=tuple(discarded_runs(path)))


def discarded_runs(path) -> list[dict]:
    """Each discarded/r<N> a recovery left (journal.h DISCARDED DATA), in order: its directory,
    files and bytes."""
    root = os.path.join(os.fspath(path), "discarded")
    try:
        names = [n for n in os.listdir(root) if n[:1] == "r" and n[1:].isdigit()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        # discarded/ itself is not a readable directory (a file by that name, no permission): a
        # problem entry, so verify and info say it instead of failing
        return [_problem_run(root, exc)]
    runs = []
    for name in sorted(names, key=lambda n: int(n[1:])):
        run = os.path.join(root, name)
        try:
            files = sorted(os.listdir(run))
            runs.append({"run": run, "files": files,
                         "bytes": sum(os.path.getsize(os.path.join(run, f)) for f in files)})
        except OSError as exc:
            # a run entry no recovery made (a file, unreadable): still listed, never a crash
            runs.append(_problem_run(run, exc))
    return runs


def _problem_run(path: str, exc: OSError) -> dict:
    return {"run": path, "files": [], "bytes": 0, "problem": f"{type(exc).__name__}: {exc.strerror or exc}"}


def lock_state(path) -> dict:
    """Whether a live writer holds the lock, and what the lock file says about the last one."""
    live = ffi.new("int32_t *")
    pid = ffi.new("int32_t *")
    clean = ffi.new("int32_t *")
    check(lib.mmj_lock_probe(os.fsencode(os.fspath(path)), live, pid, clean), f"lock {path}")
    return {"writer_live": bool(live[0]), "pid": pid[0], "closed_cleanly": bool(clean[0])}


def _reserve_bytes(path) -> int:
    """Size of the reserve segment file (journal.h RESERVE SEGMENT), 0 when there is none: a
    writer without one is in low-space state, or used it on a full disk."""
    try:
        return os.stat(os.path.join(os.fspath(path), "reserve.mmj")).st_size
    except FileNotFoundError:
        return 0


def _segment_versions(path, segments) -> list[int]:
    """The format version in each readable segment's header (journal.h: u32 at offset 8)."""
    out = []
    for seg in segments:
        with open(os.path.join(os.fspath(path), f"seg-{seg['index']:016d}.mmj"), "rb") as f:
            out.append(struct.unpack("<I", f.read(12)[8:12])[0])
    return out


def info(path) -> dict:
    """A summary: id, segments, sequence range, writer lock state, where reading stopped.

    Scans every segment (no summaries): "readable to the end" is said only of checked records."""
    with Reader(path, full_scan=True) as reader:
        segments = reader.segments()
        versions = _segment_versions(path, segments)
        return {
            "path": os.fspath(path),
            "journal_id": reader.journal_id,
            # the newest format among the segments (a version-1 journal continued by a current
            # writer has version-2 segments after its version-1 ones), and each segment's
            "format_version": max(versions, default=lib.MMJ_FORMAT_VERSION),
            "segment_versions": versions,
            "segments": len(segments),
            "segment_list": segments,
            "first_seq": reader.first_seq,
            "last_seq": reader.last_seq,
            "records": len(reader),
            "bytes": sum(s["size"] for s in segments),
            "stopped": reader.stopped,
            "discarded": discarded_runs(path),
            "reserve_bytes": _reserve_bytes(path),
            **lock_state(path),
        }
