"""recovery.blocks.Blocks, replay's record source read a block at a time, against the journal's
own record iterator: the same records in the same order over any range and block size, packet
runs whose C view holds exactly their records' bytes and times, and replays (batched or not,
fresh or resumed from a snapshot) that end in the same engine."""
from __future__ import annotations

import random

import pytest

from journal import Journal, Reader, Record
from journal.catalogue import PAYLOAD_DTYPES, RecordType, TsSource
from mm_core.engine import ffi
from mm_core.events import MarketData
from mm_core.runnerrecords import market_data_event
from recovery.blocks import Blocks
from recovery.replay import replay, replay_journal
from tests.journal.jhelpers import flip_byte, record_offsets, segment_files, write_journal
from tests.recovery.journaling import fresh_engine, write_long_session
from tests.recovery.test_replay_batch import _engine_view, _result_view


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A journal of runs of MD_PACKET records between other types, small segments (rolls)."""
    path = str(tmp_path_factory.mktemp("blocks") / "j")
    rng = random.Random(7)
    with Journal(path, segment_size=64 << 10, checkpoint_every=16) as j:
        for i in range(3_000):
            md = rng.random() < 0.8
            rtype = RecordType.MD_PACKET if md else rng.choice(
                [RecordType.TIMER, RecordType.METRICS, RecordType.CLOCK_SAMPLE])
            fixed = PAYLOAD_DTYPES.get(rtype)
            size = fixed.itemsize if fixed is not None else rng.randrange(0, 300)
            payload = bytes(rng.randrange(256) for _ in range(size))
            source = rng.choice([TsSource.USER, TsSource.HW_PHC, TsSource.SW_KERNEL])
            j.append(rtype, payload, ts_ns=1_000 + i * 7 - rng.randrange(50), ts_source=int(source),
                     clock_state=rng.randrange(3))
    return path


@pytest.mark.parametrize("block", [1, 2, 7, 64, 8192])
@pytest.mark.parametrize("first, last", [(None, None), (1, 1), (500, 1_800), (2_999, None), (4_000, None)])
def test_records_equal_the_readers(mixed, block, first, last):
    with Reader(mixed) as r:
        want = list(r.records(first_seq=first, last_seq=last))
        got = list(Blocks(r, first, last, block_records=block))
        assert got == want and {type(rec) for rec in got} <= {Record}
        assert [rec._asdict() for rec in got] == [rec._asdict() for rec in want]


def _run_view(run) -> list:
    """Each packet of a PacketRun as C sees it: (bytes, receive time)."""
    off, ts = run.off, run.ts
    return [(bytes(ffi.buffer(run.buf + off[i], off[i + 1] - off[i])), ts[i]) for i in range(len(run.events))]


@pytest.mark.parametrize("block", [3, 50, 8192])
def test_packet_runs_hold_their_records(mixed, block):
    """Taking runs the way replay does: each run's C view and events match the records, which the
    walk reads back by index; nothing is skipped or taken twice. PHC-stamped packets (TAI: the
    engine's time needs the UTC offset in force) are in no run."""
    with Reader(mixed) as r:
        want = [tuple(rec) for rec in r.records()]
        src, got, runs = Blocks(r, block_records=block), [], 0
        for rec in src:
            got.append(tuple(rec))
            if (rec.rtype != RecordType.MD_PACKET or rec.ts_source == TsSource.HW_PHC
                    or not src.next_is(RecordType.MD_PACKET)):
                continue
            event = market_data_event(rec)
            run, recs = src.packet_run(event, 40)
            n = len(run.events)
            assert 1 <= n <= 40
            taken = [tuple(recs.record(i)) for i in range(1, n)]
            assert [recs.seq(i) for i in range(1, n)] == [t[0] for t in taken]
            records = [rec, *(r.get(t[0]) for t in taken)]
            assert all(x.ts_source != TsSource.HW_PHC for x in records)
            assert _run_view(run) == [(x.payload, x.ts_ns) for x in records]
            assert [run.events[i] for i in range(n)] == [event, *map(market_data_event, records[1:])]
            assert all(type(run.events[i]) is MarketData for i in range(n))
            with pytest.raises(IndexError):
                run.events[n]
            got.extend(taken)
            runs += 1
        assert got == want and runs > 20


def test_a_block_source_replays_as_the_record_iterator(tmp_path):
    """replay() over Blocks of any block size (runs cut at every block's end) and over the
    reader's record iterator: the same checks and the same engine; fresh, and resumed from a
    snapshot up to a last sequence."""
    path = str(tmp_path / "j")
    shell = write_long_session(path, 5, 2_500)
    shell.journal.close()
    with Reader(path) as r:
        want = replay(r.records(), fresh_engine())
        assert want.deterministic and want.orders_checked > 20
        for block in (5, 97, 8192):
            got = replay(Blocks(r, block_records=block), fresh_engine())
            assert _result_view(got) == _result_view(want)
            assert _engine_view(got.engine) == _engine_view(want.engine)
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    replay_journal(path, fresh_engine(), snapshots=str(snaps), snapshot_every=700)
    with Reader(path) as r:
        last = r.last_seq - 100
    resumed = replay_journal(path, fresh_engine(), snapshots=str(snaps), last_seq=last)
    assert resumed.snapshot and resumed.last_seq == last
    from recovery.snapshot import latest_snapshot
    with Reader(path) as r:
        snap, _ = latest_snapshot(str(snaps), r, last)
        listed = replay(r.records(first_seq=snap.seq + 1, last_seq=last), None, resume=snap)
    assert _result_view(resumed) == _result_view(listed)
    assert _engine_view(resumed.engine) == _engine_view(listed.engine)


def test_bad_block_size_is_refused(mixed):
    with Reader(mixed) as r, pytest.raises(ValueError):
        Blocks(r, block_records=0)


@pytest.mark.parametrize("block", [1, 64, 8192])
def test_a_damaged_journal_gives_the_same_records_as_the_readers_and_stops_at_the_damage(tmp_path, block):
    """A record of a sealed segment altered after the journal closed (a flipped payload byte):
    Blocks hands out exactly the records the reader's own iterator does, every one ahead of the
    damaged record and none after it, and the reader says where and why it stopped."""
    path = tmp_path / "j"
    write_journal(path, 3_000, segment_size=64 << 10)
    segment = segment_files(path)[0]
    offset = record_offsets(segment)[200][0]
    flip_byte(segment, offset + 40)
    with Reader(str(path)) as r:
        want = [tuple(rec) for rec in r.records()]
    with Reader(str(path)) as r:
        got = [tuple(rec) for rec in Blocks(r, block_records=block)]
        stopped = r.stopped
    assert 150 < len(want) < 200 and got == want
    assert stopped["reason"] == "bad crc" and stopped["seq"] == want[-1][0] + 1
