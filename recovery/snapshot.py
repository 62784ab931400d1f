"""Engine snapshots: a replayed engine's whole state at a journal sequence, so recovery replays only
the journal after it (recovery time then depends on the snapshot interval, not the session length).

Owns the file format — one JSON header line (format version, journal id, sequence covered, the
journal witness at that sequence, state hash, venue sequences journaled so far, trade corrections
reported so far, the code that wrote it and the journal's sessions with their code, the replay
settings it was made under (clock profile, fresh_session: recovery replaying under others would
trust state they did not produce), SHA-256 of the body, and SHA-256 of the header's other fields) then a pickle of the engine — atomic writes, pruning per journal by the
sequence each file records, and verified loads: a snapshot whose body, journal, journal content
or state hash or replay settings do not match, or whose header was altered or is malformed, is
skipped with the reason. The witness (journal_witness) covers the
journal's whole content up to the snapshot's sequence through the journal's hash chain, so a
journal that came back shorter and was written on (a power loss in pagecache mode, then a new
writer) no longer matches a snapshot of records it lost. A snapshot names the code that wrote it
(mm_core.buildid) and only the same code loads it: a pickle of other code's engine is not trusted.
Snapshots are written by a replayer (recovery.replay with snapshot_every, or a standby that tails
the live journal), never by the trading engine. Pickles are only read from the operator's own
directory.
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
import dataclasses
from dataclasses import dataclass

from audit.phc import LEAP59, LEAP61
from journal.catalogue import RecordType
from journal.errors import JournalError
from mm_core.buildid import UNKNOWN
from mm_core.runnerrecords import TAI_MINUS_UTC_S
from recovery.codecheck import SessionCode, running_fingerprint
from recovery.errors import RecoveryError

__all__ = ["Snapshot", "engine_setup", "replay_setup", "DEFAULT_REPLAY", "journal_witness", "write_snapshot", "latest_snapshot",
           "covered_sessions", "SnapshotError"]

FORMAT = 4    # 2: the journal witness; 3: the header's own checksum; 4: replay settings (older: skipped)
_SUFFIX = ".snap"
KEEP = 3                           # snapshots kept per journal (the newest and the highest sequences)
_ANCHOR_FIRST_STEP = 256           # records read first looking back for a hash-chain anchor
_ANCHOR_STEP = 8192                # ... growing to at most this many at a time
_ANCHORS = frozenset({int(RecordType.CHECKPOINT), int(RecordType.SEAL)})


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
    # venue sequence of a trade correction -> the RECON finding record that reported it
    corrections_reported: dict = dataclasses.field(default_factory=dict)
    # the journal's sessions up to seq and their code (None: a snapshot written before they were kept)
    sessions: tuple[SessionCode, ...] | None = None
    utc_offset_s: int = TAI_MINUS_UTC_S          # in force at seq (the last clock sample's before it)
    utc_leap: int = 0                            # the leap flag in force with it (audit.phc.phc_leap)

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


def replay_setup(profile: str, fresh_session: bool) -> dict:
    """The replay parameters a snapshot's state depends on (recovery.replay's profile and
    fresh_session): a replay under others resumes no snapshot made under these."""
    return {"profile": str(profile), "fresh_session": bool(fresh_session)}


DEFAULT_REPLAY = replay_setup("eu-hft", True)     # recovery.replay's defaults


def journal_witness(reader, seq: int) -> str:
    """What identifies the journal's content up to data sequence `seq` (journal.Reader `reader`,
    refreshed when it has not seen `seq` yet), through its hash chain (journal.h HASH CHAIN): the
    last CHECKPOINT or SEAL record at or before `seq` (its hash covers every byte before it, back
    to the journal's genesis through the seal hashes in the segment headers) and every header
    field and payload of the data records from there to `seq`, in one bulk read; SHA-256 of
    both. A journal holding other records anywhere up to `seq` (or fewer) gives another value."""
    if seq and reader.last_seq < seq:
        reader.refresh()
    anchor_seq, anchor = _chain_anchor(reader, seq)
    first = max(reader.first_seq, anchor_seq)
    digest = hashlib.sha256(b"mmaudit-snapshot-witness 2 %d %d\n" % (anchor_seq, seq) + anchor)
    if seq >= first:
        headers, blob, offsets = reader.read_blobs(None, first, seq)
        for part in (headers.tobytes(), offsets.tobytes(), blob):
            digest.update(part)
    return digest.hexdigest()


def _chain_anchor(reader, seq: int) -> tuple[int, bytes]:
    """(sequence, payload) of the last CHECKPOINT or SEAL record that covers no data record after
    `seq` (it carries the sequence of the next data record), or (0, b"") when none does: then the
    journal's start (its genesis hash is its salt's, i.e. its id's) is the anchor. Looked for
    backwards in growing steps (a CHECKPOINT follows every checkpoint_every records, 4096 by
    default), so the cost follows the distance to it."""
    hi, step = seq, _ANCHOR_FIRST_STEP
    while hi >= reader.first_seq:
        lo = max(reader.first_seq, hi - step)
        step = min(step * 4, _ANCHOR_STEP)
        found = None
        # reading from data record lo shows the control records between it and hi
        for rec in reader.records(lo, hi, include_control=True):
            if rec.rtype in _ANCHORS and rec.seq <= seq:
                found = rec
        if found is not None:
            return found.seq, found.payload
        if lo == reader.first_seq:
            break
        hi = lo
    return 0, b""


def write_snapshot(directory, engine, seq: int, journal_id: str, venue_seqs, last_venue_seq: int,
                   keep: int = KEEP, *, witness: str, corrections_reported=None, sessions=None,
                   utc_offset_s: int = TAI_MINUS_UTC_S, utc_leap: int = 0,
                   replay: dict = DEFAULT_REPLAY) -> str:
    """Write the engine's state at journal sequence `seq`, made by a replay under `replay`
    (replay_setup), where the journal's witness is
    `witness` (journal_witness), and the journal's sessions up to it (recovery.codecheck
    SessionCode, as the replay met them: a code check then reads only the journal after it) and
    the UTC offset and leap flag in force there (PHC stamps after it convert with them until a
    clock sample);
    returns the file's path. Of this journal's snapshots only this one and the `keep` - 1 others
    of the highest sequences stay (older ones are only a fallback for a newer one that fails to
    load): a standby writing one every few thousand events keeps the directory small."""
    buf = io.BytesIO()
    try:
        _Pickler(buf, protocol=5).dump(engine)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"the engine cannot be snapshotted: {exc}") from exc
    body = buf.getvalue()
    header = {"format": FORMAT, "seq": seq, "witness": witness, "state_hash": engine.state_hash(),
              "journal_id": journal_id,
              "last_venue_seq": last_venue_seq, "venue_ranges": _ranges(venue_seqs),
              "corrections_reported": sorted((corrections_reported or {}).items()),
              "setup": engine_setup(engine), "code": running_fingerprint(),
              "sessions": None if sessions is None else [[c.seq, c.session_id, c.fingerprint]
                                                         for c in sessions],
              "utc_offset_s": utc_offset_s, "utc_leap": utc_leap, "replay": dict(replay),
              "sha256": hashlib.sha256(body).hexdigest()}
    header["header_sha256"] = _header_digest(header)
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
    for old in _pruned(directory, final, journal_id, keep):
        old.unlink(missing_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return str(final)


def _pruned(directory: pathlib.Path, written: pathlib.Path, journal_id: str, keep: int) -> list[pathlib.Path]:
    """The files a snapshot just `written` for `journal_id` makes redundant: that journal's others
    beyond the `keep` - 1 of the highest recorded sequences (by the sequence each file records, not
    by name: a copied or renamed file sorts anywhere), and files no code of this format can load
    (unreadable header, other format). The file just written always stays (those of higher
    sequences may be of records a power loss took back, which no load accepts), and another
    journal's snapshots are that journal's to prune."""
    pruned, ours = [], []
    for seq, path, header in _by_seq(directory):
        if path == written:
            continue
        if isinstance(header, str) or header.get("format") != FORMAT:
            pruned.append(path)
        elif header.get("journal_id") == journal_id:
            ours.append(path)
    return pruned + ours[max(keep, 1) - 1:]


def _header_digest(header: dict) -> str:
    """SHA-256 of a header's fields but this digest itself, as written (sorted-key JSON): the
    fields recovery trusts without loading the body (venue sequences, reported corrections,
    sessions) are as covered as the body is."""
    fields = {k: v for k, v in header.items() if k != "header_sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _by_seq(directory: pathlib.Path) -> list[tuple[int, pathlib.Path, dict | str]]:
    """(seq, path, header) of every snapshot file, highest recorded sequence first; a file whose
    header line cannot be read comes last, with seq -1 and the reason in place of the header."""
    found = []
    for path in directory.glob(f"engine-*{_SUFFIX}"):
        try:
            with open(path, "rb") as f:
                header = json.loads(f.readline())
            seq = header["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool):
                raise ValueError(f"sequence {seq!r} is not an integer")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            found.append((-1, path, f"unreadable ({type(exc).__name__}: {exc})"))
            continue
        found.append((seq, path, header))
    return sorted(found, key=lambda item: (item[0], item[1].name), reverse=True)


def _matching(directory: pathlib.Path, reader, max_seq: int | None, setup: str | None, skipped: list[str],
              replay: dict | None = None):
    """(seq, path, header) of each snapshot file, highest sequence first, whose header fits: this
    journal and format, written by this code, of an engine built as `setup` says, made by a replay
    under `replay` (replay_setup; None: any), covering at most
    max_seq (default: the journal's last sequence), taken when the journal held what it holds now
    up to that sequence (journal_witness). Why the others were passed over goes to `skipped`."""
    journal_id = reader.journal_id
    max_seq = reader.last_seq if max_seq is None else max_seq
    code = running_fingerprint()
    for seq, path, header in _by_seq(directory):
        if isinstance(header, str):
            skipped.append(f"{path.name}: {header}")
            continue
        if header.get("format") != FORMAT or header.get("journal_id") != journal_id:
            skipped.append(f"{path.name}: another journal or format")
            continue
        if header.get("header_sha256") != _header_digest(header):
            skipped.append(f"{path.name}: header does not match its checksum")
            continue
        if header.get("code") != code or code == UNKNOWN:
            skipped.append(f"{path.name}: written by other code ({str(header.get('code', UNKNOWN))[:16]}, "
                           f"this is {code[:16]})")
            continue
        if setup is not None and header.get("setup") != setup:
            skipped.append(f"{path.name}: an engine built with another config, symbols or limits")
            continue
        if replay is not None and header.get("replay") != replay:
            skipped.append(f"{path.name}: made by a replay under other settings ({header.get('replay')}, "
                           f"this replay {replay})")
            continue
        if seq > max_seq:
            skipped.append(f"{path.name}: beyond the journal's last sequence {max_seq}")
            continue
        try:
            witness = journal_witness(reader, seq)
        except JournalError as exc:
            skipped.append(f"{path.name}: cannot be checked against the journal ({exc})")
            continue
        if witness != header.get("witness"):
            skipped.append(f"{path.name}: the journal no longer holds the records it was taken at "
                           f"(its records up to sequence {seq} differ: rewritten after a lost tail?)")
            continue
        yield seq, path, header


def _sessions(header: dict) -> tuple[SessionCode, ...] | None:
    listed = header.get("sessions")
    if not isinstance(listed, list):
        return None
    try:
        return tuple(SessionCode(int(seq), int(sid), str(fp)) for seq, sid, fp in listed)
    except (TypeError, ValueError):
        return None


def covered_sessions(directory, reader, setup: str | None = None) -> tuple[int, tuple[SessionCode, ...]] | None:
    """(seq, sessions) of the newest snapshot latest_snapshot could resume from (its header checks
    and journal witness; its body is not loaded) that lists the journal's sessions up to seq: what
    a code check needs to read of the journal is then only what follows seq. None when none does."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return None
    for seq, _, header in _matching(directory, reader, None, setup, []):
        sessions = _sessions(header)
        if sessions is not None:
            return seq, sessions
    return None


def latest_snapshot(directory, reader, max_seq: int | None = None, setup: str | None = None,
                    replay: dict | None = None) -> tuple[Snapshot | None, list[str]]:
    """The valid snapshot of the highest sequence of the journal `reader` reads (journal.Reader)
    covering at most max_seq (default: its last sequence), taken when the journal held what it
    holds now up to that sequence (journal_witness), written by this code and, given `setup`, of
    an engine built as engine_setup says and, given `replay`, made under those replay settings; and why any others tried first were skipped. None when
    there is none (recovery then replays from the start)."""
    skipped: list[str] = []
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return None, skipped
    for seq, path, header in _matching(directory, reader, max_seq, setup, skipped, replay):
        try:
            body = path.read_bytes().partition(b"\n")[2]
        except OSError as exc:
            skipped.append(f"{path.name}: unreadable ({exc})")
            continue
        if hashlib.sha256(body).hexdigest() != header.get("sha256"):
            skipped.append(f"{path.name}: body does not match its checksum")
            continue
        try:
            engine = pickle.loads(body)
            loaded_hash = engine.state_hash()
        except Exception as exc:  # a snapshot of an older code version: replay from further back
            # (one may load and still lack state its hash reads: that is the same case)
            skipped.append(f"{path.name}: cannot be loaded ({type(exc).__name__}: {exc})")
            continue
        if loaded_hash != header["state_hash"]:
            skipped.append(f"{path.name}: state hash differs after loading")
            continue
        try:
            return Snapshot(engine, seq, header["state_hash"], reader.journal_id,
                            _int(header["last_venue_seq"]), _pairs(header["venue_ranges"]), str(path),
                            dict(_pairs(header["corrections_reported"])), _sessions(header),
                            _int(header["utc_offset_s"]), _leap(header["utc_leap"])), skipped
        except (KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{path.name}: malformed header ({type(exc).__name__}: {exc})")
    return None, skipped


def _int(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a sequence number")
    return value


def _leap(value) -> int:
    if type(value) is not int or value not in (0, LEAP61, LEAP59):
        raise ValueError(f"{value!r} is not a leap flag")
    return value


def _pairs(listed) -> tuple[tuple[int, int], ...]:
    """[[a, b], ...] of sequence numbers, as written (venue ranges, reported corrections)."""
    if not isinstance(listed, list):
        raise TypeError(f"{type(listed).__name__} where a list of pairs belongs")
    pairs = []
    for pair in listed:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"{pair!r} is not a pair")
        pairs.append((_int(pair[0]), _int(pair[1])))
    return tuple(pairs)
