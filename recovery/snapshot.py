"""Engine snapshots: a replayed engine's whole state at a journal sequence, so recovery replays only
the journal after it (recovery time then depends on the snapshot interval, not the session length).

Owns the file format — one JSON header line (format version, journal id, sequence covered, state
hash, venue sequences journaled so far, SHA-256 of the body) then a pickle of the engine — atomic
writes, and verified loads: a snapshot whose body, journal or state hash does not match is skipped.
Snapshots are written by a replayer (recovery.replay with snapshot_every, or a standby that tails the
live journal), never by the trading engine. Pickles are only read from the operator's own directory.
"""
from __future__ import annotations

import copyreg
import hashlib
import io
import json
import os
import pathlib
import pickle
import types
from dataclasses import dataclass

from recovery.errors import RecoveryError

__all__ = ["Snapshot", "engine_setup", "write_snapshot", "latest_snapshot", "SnapshotError"]

FORMAT = 1
_SUFFIX = ".snap"
KEEP = 3                           # snapshots kept per directory (newest first)


class SnapshotError(RecoveryError):
    """A snapshot cannot be written."""


def read_only(mapping: dict) -> types.MappingProxyType:
    """Rebuilds a read-only mapping when a snapshot is loaded."""
    return types.MappingProxyType(mapping)


class _Pickler(pickle.Pickler):
    # the risk limits hold a read-only mapping; pickled as a dict and re-wrapped (no global copyreg)
    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[types.MappingProxyType] = lambda m: (read_only, (dict(m),))


@dataclass(frozen=True)
class Snapshot:
    engine: object
    seq: int                       # last journal sequence the engine has seen
    state_hash: str
    journal_id: str
    last_venue_seq: int
    venue_ranges: tuple[tuple[int, int], ...]    # journaled SoupBinTCP sequences, as ranges
    path: str

    def venue_seqs(self) -> set[int]:
        return {s for a, b in self.venue_ranges for s in range(a, b + 1)}


def _ranges(seqs) -> list[list[int]]:
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def engine_setup(engine) -> str:
    """A digest of what an engine was built with (config, symbols, limits document): a snapshot
    resumes only an engine built the same way, or recovery would go on with the snapshot's
    settings instead of the ones it was given."""
    return hashlib.sha256(repr((engine.cfg, engine.symbols, engine.risk.limits.digest)).encode()).hexdigest()


def write_snapshot(directory, engine, seq: int, journal_id: str, venue_seqs, last_venue_seq: int,
                   keep: int = KEEP) -> str:
    """Write the engine's state at journal sequence `seq`; returns the file's path. Only the
    newest `keep` snapshots stay (older ones are only a fallback for a newer one that fails to
    load): a standby writing one every few thousand events keeps the directory small."""
    buf = io.BytesIO()
    try:
        _Pickler(buf, protocol=5).dump(engine)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"the engine cannot be snapshotted: {exc}") from exc
    body = buf.getvalue()
    header = {"format": FORMAT, "seq": seq, "state_hash": engine.state_hash(), "journal_id": journal_id,
              "last_venue_seq": last_venue_seq, "venue_ranges": _ranges(venue_seqs),
              "setup": engine_setup(engine), "sha256": hashlib.sha256(body).hexdigest()}
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"engine-{seq:020d}{_SUFFIX}"
    tmp = final.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(header, sort_keys=True).encode() + b"\n")
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    for old in sorted(directory.glob(f"engine-*{_SUFFIX}"), reverse=True)[max(keep, 1):]:
        old.unlink(missing_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return str(final)


def latest_snapshot(directory, journal_id: str, max_seq: int,
                    setup: str | None = None) -> tuple[Snapshot | None, list[str]]:
    """The newest valid snapshot of this journal covering at most max_seq (and, given `setup`,
    of an engine built as engine_setup says), and why any newer ones were skipped. None when
    there is none (recovery then replays from the start)."""
    skipped: list[str] = []
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return None, skipped
    for path in sorted(directory.glob(f"engine-*{_SUFFIX}"), reverse=True):
        try:
            data = path.read_bytes()
            line, _, body = data.partition(b"\n")
            header = json.loads(line)
        except (OSError, ValueError) as exc:
            skipped.append(f"{path.name}: unreadable ({exc})")
            continue
        if header.get("format") != FORMAT or header.get("journal_id") != journal_id:
            skipped.append(f"{path.name}: another journal or format")
            continue
        if setup is not None and header.get("setup") != setup:
            skipped.append(f"{path.name}: an engine built with another config, symbols or limits")
            continue
        if header["seq"] > max_seq:
            skipped.append(f"{path.name}: beyond the journal's last sequence {max_seq}")
            continue
        if hashlib.sha256(body).hexdigest() != header["sha256"]:
            skipped.append(f"{path.name}: body does not match its checksum")
            continue
        try:
            engine = pickle.loads(body)
        except Exception as exc:  # a snapshot of an older code version: replay from further back
            skipped.append(f"{path.name}: cannot be loaded ({type(exc).__name__}: {exc})")
            continue
        if engine.state_hash() != header["state_hash"]:
            skipped.append(f"{path.name}: state hash differs after loading")
            continue
        return Snapshot(engine, header["seq"], header["state_hash"], journal_id,
                        header["last_venue_seq"], tuple(map(tuple, header["venue_ranges"])),
                        str(path)), skipped
    return None, skipped
