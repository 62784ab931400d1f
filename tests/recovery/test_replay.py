"""Replay of a journal through a fresh engine: the same orders byte for byte and the same state
hash; a wrong setup shows as divergences; a torn tail (a process SIGKILLed, then its last record cut
mid-way or garbage written after it) is repaired, reported, and the surviving prefix replays."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest

from journal import Journal, Reader, RecordType
from journal._journal_cffi import lib
from journal.catalogue import pack, pack_json
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.events import JournalHealth, Reconciled
from recovery.errors import BadRecoveryRecord, JournalUnavailable
from recovery.replay import replay, replay_journal
from mm_core.risk import Limits
from recovery.snapshot import KEEP, journal_witness, latest_snapshot, write_snapshot
from tests.journal.jhelpers import record_offsets, segment_files
from tests.mm_core.wire import LIMITS_TEXT
from tests.recovery.journaling import fresh_engine, rewrite_snapshot_header, session_events, tear, write_session

ROOT = pathlib.Path(__file__).resolve().parents[2]
INPUTS = {RecordType.MD_PACKET, RecordType.VENUE_MSG, RecordType.TIMER, RecordType.CLOCK_SAMPLE}


@pytest.fixture(scope="module")
def events():
    return session_events(7, 500)


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, events):
    """Journals written by a process that SIGKILLed itself after its last record (no close)."""
    def make(name: str) -> str:
        path = str(tmp_path_factory.mktemp(name) / "j")
        code = ("import os, signal\n"
                "from tests.recovery.journaling import session_events, write_session\n"
                f"write_session({path!r}, session_events(7, 500))\n"
                "os.kill(os.getpid(), signal.SIGKILL)\n")
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
        assert proc.returncode == -9, proc.stderr[-2000:]
        return path
    return make


def test_replay_reproduces_every_order_and_the_state_hash(tmp_path, events):
    shell = write_session(str(tmp_path / "j"), events)
    shell.journal.close()
    result = replay_journal(str(tmp_path / "j"), fresh_engine())
    assert result.deterministic and result.divergences == []
    assert result.orders_checked > 20 and result.unsent == []
    assert result.events == len(events) + 2            # + journal healthy, fresh session
    assert result.state_hash == shell.engine.state_hash()
    assert result.last_venue_seq == shell.soup_seq > 0
    assert result.journaled_venue_seqs == set(range(1, shell.soup_seq + 1))
    assert result.summary()["positions"] == {
        s.name: p for s in shell.engine.symbols.symbols if (p := shell.engine.inventory.position[s.id])}


def test_a_different_engine_setup_diverges(tmp_path, events):
    write_session(str(tmp_path / "j"), events).journal.close()
    base = fresh_engine()
    wrong = Engine(EngineConfig(quote_size=300), base.symbols, type(base.risk)(base.risk.limits))
    result = replay_journal(str(tmp_path / "j"), wrong)
    assert not result.deterministic and result.divergence_count >= 1
    assert "journal" in result.divergences[0].detail


def test_orders_decided_after_the_last_record_are_reported_unsent(tmp_path, events):
    path = str(tmp_path / "j")
    shell = write_session(path, events)
    shell.journal.close()
    with Reader(path) as reader:
        records = list(reader.records())
    last_order = max(i for i, r in enumerate(records) if r.rtype == RecordType.ORDER_SENT)
    first = next(i for i in range(last_order, -1, -1) if records[i].rtype in INPUTS)
    cut = records[:first + 1]          # the crash came after the input, before its ORDER_SENT
    result = replay(cut, fresh_engine())
    assert result.deterministic
    assert result.unsent and all(a.packet for a in result.unsent)
    tokens = {a.intent.token for a in result.unsent}
    assert tokens <= set(result.engine.oms.orders)


def _survivors_engine(path: str, events: list):
    """A fresh engine fed exactly the inputs whose records survived (what replay must equal)."""
    with Reader(path) as reader:
        k = sum(1 for r in reader.records() if r.rtype in INPUTS)
    engine = fresh_engine()
    engine.on_event(JournalHealth(events[0].now_ns, True))
    engine.on_event(Reconciled(events[0].now_ns, True))
    for event in events[:k]:
        engine.on_event(event)
    return engine, k


def _last_data_record(path: str):
    seg = segment_files(path)[-1]
    recs = [r for r in record_offsets(seg) if not r[2] & (lib.MMJ_FLAG_CONTROL | lib.MMJ_FLAG_EOS)]
    return seg, recs[-1]


def test_torn_tail_cut_mid_record_is_repaired_reported_and_replayed(crashed, events):
    path = crashed("cut")
    with Reader(path) as reader:
        before = reader.last_seq
    seg, (offset, size, _) = _last_data_record(path)
    with open(seg, "r+b") as f:               # the record's second half never reached the disk
        f.seek(offset + size // 2)
        f.write(bytes(size - size // 2))
    with Journal(path, create=False) as journal:
        rep = journal.recovery
    assert not rep.clean and rep.seq == before and rep.bytes_discarded > 0
    result = replay_journal(path, fresh_engine())
    assert result.deterministic and result.last_seq == before - 1
    expected, k = _survivors_engine(path, events)
    assert 0 < k < len(events)
    assert result.state_hash == expected.state_hash()


def test_garbage_after_the_last_record_is_discarded_and_nothing_else(crashed, events):
    path = crashed("garbage")
    with Reader(path) as reader:
        before = reader.last_seq
    seg, (offset, size, _) = _last_data_record(path)
    with open(seg, "r+b") as f:
        f.seek(offset + size)
        f.write(os.urandom(200).replace(b"\0", b"\x5a"))
    with Journal(path, create=False) as journal:
        rep = journal.recovery
    assert not rep.clean and rep.seq == before + 1 and rep.bytes_discarded >= 200
    result = replay_journal(path, fresh_engine())
    assert result.deterministic and result.last_seq == before
    expected, _ = _survivors_engine(path, events)
    assert result.state_hash == expected.state_hash()


def test_a_recon_record_naming_no_resolution_is_a_typed_error(tmp_path, events):
    path = str(tmp_path / "j")
    shell = write_session(path, events[:50])
    shell.journal.append(RecordType.RECON, pack_json({"kind": "resolution", "resolution": {"action": "teleport"}}))
    shell.journal.close()
    with pytest.raises(BadRecoveryRecord, match="teleport"):
        replay_journal(path, fresh_engine())


def test_a_missing_journal_is_a_typed_error(tmp_path):
    with pytest.raises(JournalUnavailable):
        replay_journal(str(tmp_path / "nothing"), fresh_engine())


def test_snapshots_let_replay_resume_and_reach_the_same_state(tmp_path, events):
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    shell = write_session(path, events)
    shell.journal.close()
    written = replay_journal(path, fresh_engine(), snapshot_every=150, snapshots=str(snaps))
    assert written.snapshots_written >= 3 and written.state_hash == shell.engine.state_hash()
    files = sorted(snaps.glob("engine-*.snap"))
    assert len(files) == min(written.snapshots_written, KEEP)     # only the newest are kept
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    assert resumed.snapshot == str(files[-1]) and resumed.deterministic
    assert 0 < resumed.events < 150 + 50
    assert resumed.state_hash == shell.engine.state_hash()
    assert resumed.journaled_venue_seqs == written.journaled_venue_seqs
    # a damaged newest snapshot is skipped with its reason; the one before it serves
    data = bytearray(files[-1].read_bytes())
    data[-10] ^= 0xFF
    files[-1].write_bytes(bytes(data))
    older = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    assert older.snapshot == str(files[-2]) and "checksum" in older.snapshots_skipped[0]
    assert older.state_hash == shell.engine.state_hash()


def test_a_snapshot_of_another_journal_is_never_used(tmp_path, events):
    a, b, snaps = str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "snaps")
    write_session(a, events[:200]).journal.close()
    shell = write_session(b, events[:200])
    shell.journal.close()
    replay_journal(a, fresh_engine(), snapshot_every=50, snapshots=snaps)
    result = replay_journal(b, fresh_engine(), snapshots=snaps)
    assert result.snapshot == "" and all("another journal" in s for s in result.snapshots_skipped)
    assert result.state_hash == shell.engine.state_hash()


def test_a_snapshot_of_an_engine_built_otherwise_is_never_used(tmp_path, events):
    """Resuming takes the snapshot's whole engine: one built with other limits (or config) would
    put them in force in place of the ones recovery was given."""
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    write_session(path, events[:200]).journal.close()
    replay_journal(path, fresh_engine(), snapshot_every=50, snapshots=snaps)
    other = fresh_engine()
    looser = Engine(other.cfg, other.symbols, type(other.risk)(
        Limits.from_toml(LIMITS_TEXT.replace("max_market_age_ms = 2000", "max_market_age_ms = 5000"))))
    result = replay_journal(path, looser, snapshots=snaps)
    assert result.snapshot == "" and result.snapshots_skipped
    assert all("another config, symbols or limits" in s for s in result.snapshots_skipped)
    assert replay_journal(path, fresh_engine(), snapshots=snaps).snapshot     # the same build resumes


def test_no_snapshot_is_written_after_a_divergence(tmp_path, events):
    """A replay resumed from a snapshot reports only the divergences after it: one written after
    the journal and the replay parted would hide that they did."""
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    write_session(path, events[:300]).journal.close()
    other = fresh_engine()
    bigger = Engine(dataclasses.replace(other.cfg, quote_size=other.cfg.quote_size + 100), other.symbols,
                    other.risk)
    result = replay_journal(path, bigger, snapshot_every=20, snapshots=str(snaps))
    assert result.divergence_count and result.events > 100
    first = min(d.seq for d in result.divergences)
    assert all(int(p.name[7:27]) < first for p in snaps.glob("engine-*.snap"))


def _snapshot_seqs(snaps: pathlib.Path) -> dict[str, int]:
    """File name -> the sequence its header records."""
    return {p.name: json.loads(p.read_bytes().partition(b"\n")[0])["seq"] for p in snaps.glob("engine-*.snap")}


def test_a_snapshot_of_records_the_journal_lost_and_rewrote_is_skipped(crashed, events, tmp_path):
    """A power cut in pagecache mode takes the journal's tail back to sequence `cut`; the next
    writer appends other records under the same sequences. Snapshots taken at or after `cut`
    describe records the journal no longer holds: each is skipped with that reason, and the
    replay resumes from an older one (or the start) to the state a full replay reaches."""
    path, snaps = crashed("rewritten"), tmp_path / "snaps"
    replay_journal(path, fresh_engine(), snapshot_every=40, snapshots=str(snaps), batch=False)
    seqs = _snapshot_seqs(snaps)
    assert len(seqs) == KEEP
    cut = sorted(seqs.values())[1] - 5          # the two newest snapshots cover lost records
    assert tear(path, cut, power_loss=True) == cut
    with Journal(path, create=False) as journal:
        assert journal.recovery.seq == cut
        now = events[-1].now_ns
        while journal.next_seq <= max(seqs.values()) + 10:       # other records, same sequences
            now += 1_000_000
            journal.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=1, now_ns=now), ts_ns=now,
                           ts_source=1)
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    stale = sorted(name for name, seq in seqs.items() if seq >= cut)
    assert len(stale) == 2
    assert [s.split(":")[0] for s in resumed.snapshots_skipped] == stale[::-1]
    assert all("no longer holds the records it was taken at" in s for s in resumed.snapshots_skipped)
    kept = min(seqs, key=seqs.get)
    assert resumed.snapshot == str(snaps / kept)
    assert resumed.state_hash == replay_journal(path, fresh_engine()).state_hash


def test_snapshots_are_chosen_and_pruned_by_the_sequence_they_record_not_their_names(tmp_path, events):
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    write_session(path, events[:300]).journal.close()
    replay_journal(path, fresh_engine(), snapshot_every=40, snapshots=str(snaps))
    seqs = _snapshot_seqs(snaps)
    by_seq = sorted(seqs, key=seqs.get)                  # oldest, middle, newest
    # names that lie: the oldest one named as if it were the newest, and the other way round
    (snaps / by_seq[0]).rename(snaps / "engine-99999999999999999999.snap")
    (snaps / by_seq[2]).rename(snaps / "engine-00000000000000000001.snap")
    (snaps / "engine-5.snap").write_bytes(b"not a snapshot header\n")
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    assert resumed.snapshot == str(snaps / "engine-00000000000000000001.snap")     # the highest seq
    assert resumed.snapshots_skipped == []
    # the next snapshot written prunes the lowest recorded sequences (the unreadable file first)
    assert resumed.last_seq > seqs[by_seq[2]]
    with Reader(path) as reader:
        write_snapshot(snaps, resumed.engine, resumed.last_seq, reader.journal_id,
                       resumed.journaled_venue_seqs, resumed.last_venue_seq,
                       witness=journal_witness(reader, resumed.last_seq))
    assert not (snaps / "engine-5.snap").exists()
    assert _snapshot_seqs(snaps) == {"engine-00000000000000000001.snap": seqs[by_seq[2]],
                                     by_seq[1]: seqs[by_seq[1]],
                                     f"engine-{resumed.last_seq:020d}.snap": resumed.last_seq}


_DETERMINISTIC_WRITER = """
import os, signal, sys
from journal import Journal, RecordType
from journal.catalogue import pack
with_odd = sys.argv[2] == "odd"
journal = Journal(sys.argv[1], create=with_odd, checkpoint_every=16)
start, stop = int(sys.argv[3]), int(sys.argv[4])
for seq in range(start, stop + 1):       # the same record for a sequence every time, but one
    now = 999 if with_odd and seq == 100 else seq
    assert journal.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=1, now_ns=now), ts_ns=seq) == seq
os.kill(os.getpid(), signal.SIGKILL)     # no close: the last segment stays unsealed
"""


def _deterministic(path: str, kind: str, start: int, stop: int) -> None:
    proc = subprocess.run([sys.executable, "-c", _DETERMINISTIC_WRITER, path, kind, str(start), str(stop)],
                          cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]


def test_a_rewrite_that_differs_only_long_before_the_snapshot_is_still_found(tmp_path):
    """The witness covers the journal's whole content up to the snapshot, through the hash chain:
    a writer that continues after a lost tail with records byte-identical to the lost ones but for
    one far before the snapshot's sequence (as a deterministic writer would) still gives another
    witness."""
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    _deterministic(path, "odd", 1, 300)
    with Reader(path) as reader:
        write_snapshot(snaps, fresh_engine(), 250, reader.journal_id, (), 0,
                       witness=journal_witness(reader, 250))
        assert latest_snapshot(snaps, reader)[0].seq == 250
    assert tear(path, 100, power_loss=True) == 100        # the tail from record 100 lost
    _deterministic(path, "plain", 100, 300)               # written again: only record 100 differs
    with Reader(path) as reader:
        assert reader.last_seq == 300 and reader.get(101).payload and reader.get(250).ts_ns == 250
        snap, skipped = latest_snapshot(snaps, reader)
    assert snap is None and "no longer holds the records it was taken at" in skipped[0]


def test_a_snapshot_that_loads_but_cannot_be_hashed_is_skipped(tmp_path, monkeypatch):
    """An engine pickled by an older code version may unpickle and still lack state its hash
    reads: recovery skips that snapshot with the reason and replays from further back."""
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    _deterministic(path, "odd", 1, 300)
    with Reader(path) as reader:
        write_snapshot(snaps, fresh_engine(), 250, reader.journal_id, (), 0,
                       witness=journal_witness(reader, 250))

        def old_layout(engine):
            raise AttributeError("'Engine' object has no attribute 'pair_hold'")
        monkeypatch.setattr(Engine, "state_hash", old_layout)
        snap, skipped = latest_snapshot(snaps, reader)
    assert snap is None and "cannot be loaded (AttributeError" in skipped[0]


def test_a_snapshot_just_written_is_kept_whatever_else_the_directory_holds(tmp_path):
    """Pruning is per journal and never takes the file just written: snapshots of another journal
    at higher sequences, or of this journal's records a power loss took back (they fail the
    witness), used to outrank it and have it deleted as soon as it was written."""
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    _deterministic(path, "odd", 1, 300)
    engine = fresh_engine()
    for seq in (900_000, 950_000, 1_000_000):
        write_snapshot(snaps, engine, seq, "journal-A", (), 0, witness="of journal A")
    with Reader(path) as reader:
        written = write_snapshot(snaps, engine, 250, reader.journal_id, (), 0,
                                 witness=journal_witness(reader, 250))
        assert os.path.exists(written)
        snap, _ = latest_snapshot(snaps, reader)
        assert snap is not None and snap.path == written and snap.seq == 250
        # this journal's snapshots of records it no longer holds (higher sequences, stale witness)
        for seq in (280, 290, 300):
            write_snapshot(snaps, engine, seq, reader.journal_id, (), 0, witness="lost records")
        written = write_snapshot(snaps, engine, 260, reader.journal_id, (), 0,
                                 witness=journal_witness(reader, 260))
        snap, skipped = latest_snapshot(snaps, reader)
    assert snap is not None and snap.path == written and snap.seq == 260
    stale = [s for s in skipped if "another journal" not in s]
    assert len(stale) == 2 and all("no longer holds" in s for s in stale)
    # journal A's snapshots are journal A's: untouched; this journal keeps KEEP
    assert sorted(_snapshot_seqs(snaps).values()) == [260, 290, 300, 900_000, 950_000, 1_000_000]


def _edit_header(path: pathlib.Path, digest: bool, **fields) -> None:
    """Change header fields of a snapshot file; with `digest` its header checksum is made to fit
    again (a header malformed by whoever wrote it, not altered after)."""
    rewrite_snapshot_header(path, lambda header: header.update(fields), reseal=digest)


def test_an_altered_or_malformed_snapshot_header_is_skipped_with_its_reason(tmp_path, events):
    """The header's fields recovery trusts without the body (journaled venue sequences, reported
    corrections, sessions) are under a checksum: an edited one used to load, and replay then
    counted fewer journaled venue sequences (reconciliation would deliver journaled messages
    again); a malformed one raised a raw TypeError out of recovery."""
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    shell = write_session(path, events[:300])
    shell.journal.close()
    written = replay_journal(path, fresh_engine(), snapshot_every=60, snapshots=str(snaps))
    newest, older = sorted(snaps.glob("engine-*.snap"), key=lambda p: _snapshot_seqs(snaps)[p.name])[::-1][:2]
    ranges = json.loads(newest.read_bytes().partition(b"\n")[0])["venue_ranges"]
    assert ranges and ranges[0][1] > ranges[0][0]
    _edit_header(newest, False, venue_ranges=[[ranges[0][0], ranges[0][0]], *ranges[1:]])
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    assert resumed.snapshots_skipped == [f"{newest.name}: header does not match its checksum"]
    assert resumed.snapshot == str(older) and resumed.journaled_venue_seqs == written.journaled_venue_seqs
    for bad in (5, [[1, "2"]], [[1, 2, 3]]):
        _edit_header(newest, True, venue_ranges=bad)
        resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
        assert resumed.snapshot == str(older), bad
        assert resumed.snapshots_skipped[0].startswith(f"{newest.name}: malformed header"), resumed.snapshots_skipped
        assert resumed.state_hash == shell.engine.state_hash()
    _edit_header(newest, True, venue_ranges=ranges, corrections_reported={"7": 9})
    assert "malformed header" in replay_journal(path, fresh_engine(), snapshots=str(snaps)).snapshots_skipped[0]
    # a snapshot of the format before the header checksum: skipped (snapshots are a cache)
    _edit_header(older, False, format=2)
    _edit_header(newest, True, venue_ranges=5)
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    assert f"{older.name}: another journal or format" in resumed.snapshots_skipped
    assert resumed.state_hash == shell.engine.state_hash()


@pytest.mark.parametrize("flags, leap", [({}, 0), ({"leap61": 1}, 61), ({"leap59": 1}, 59)])
def test_a_resume_from_a_snapshot_keeps_the_utc_offset_the_journal_announced(tmp_path, events, flags, leap):
    """PHC (TAI) stamps become engine (UTC) time with the UTC offset of the last clock sample.
    A grandmaster announcing 36 s: a replay resumed from a snapshot taken after that sample used
    to convert the PHC packets after it with 37 s until the next sample, so it reached another
    state than the full replay (and the live engine). The sample's leap flag goes with it."""
    from mm_core.events import ClockSample, MarketData
    from journal.catalogue import TsSource
    from mm_core.runnerrecords import TAI_MINUS_UTC_S, engine_time
    from tests.recovery.journaling import RunnerLike
    path, snaps = str(tmp_path / "j"), tmp_path / "snaps"
    tai = 36 * 1_000_000_000
    in_force = (TAI_MINUS_UTC_S, 0)      # the offset and leap flag the runner converts with
    with Journal(path, checkpoint_every=64) as journal:
        shell = RunnerLike(fresh_engine(), journal)
        shell.start(events[0].now_ns)
        for event in events[:400]:
            if isinstance(event, ClockSample):
                journal.append(RecordType.CLOCK_SAMPLE, pack(
                    RecordType.CLOCK_SAMPLE, state=1, compliant_mask=1 if event.compliant else 0,
                    utc_offset=36, utc_offset_valid=1, ptp_timescale=1, **flags), ts_ns=event.now_ns,
                    ts_source=int(TsSource.USER))
                shell.act(shell.engine.on_event(event), event.now_ns)
                in_force = (36, leap)
            elif isinstance(event, MarketData):         # NIC-stamped: PHC time, TAI
                journal.append(RecordType.MD_PACKET, event.packet, ts_ns=event.now_ns + tai,
                               ts_source=int(TsSource.HW_PHC))
                now = engine_time(event.now_ns + tai, TsSource.HW_PHC, *in_force)
                shell.act(shell.engine.on_event(MarketData(event.packet, now, TsSource.HW_PHC)), now)
            else:
                shell.feed(event)
    samples = sum(isinstance(e, ClockSample) for e in events[:400])
    full = replay_journal(path, fresh_engine())
    assert full.deterministic and full.state_hash == shell.engine.state_hash() and full.utc_offset_s == 36
    assert full.utc_leap == leap
    written = replay_journal(path, fresh_engine(), snapshot_every=100, snapshots=str(snaps))
    assert written.snapshots_written >= 2 and written.state_hash == full.state_hash
    for snap in snaps.glob("engine-*.snap"):
        header = json.loads(snap.read_bytes().partition(b"\n")[0])
        assert (header["utc_offset_s"], header["utc_leap"]) == (36, leap)
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps))
    assert resumed.snapshot and resumed.deterministic, (samples, resumed.divergences[:2])
    assert resumed.state_hash == full.state_hash and (resumed.utc_offset_s, resumed.utc_leap) == (36, leap)
