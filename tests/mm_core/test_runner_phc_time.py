"""A NIC's PHC stamps are TAI: the engine's clock is UTC, so an input stamped by the PHC reaches
the engine with the UTC offset in force taken off (the last journaled clock sample's valid one,
else TAI - UTC since 2017, 37 s), live and in replay alike (the batch path feeds such packets one
by one); the record keeps the raw stamp."""
from __future__ import annotations

from journal import Journal, Record
from journal.catalogue import RecordType, TsSource, pack
from mm_core.events import MarketData, SendOrder, VenueMessage
from mm_core.runnerrecords import TAI_MINUS_UTC_S, engine_events, engine_time
from recovery.replay import replay_journal
from tests.recovery.journaling import RunnerLike, fresh_engine, session_events

S = 10**9


def test_engine_time_takes_the_utc_offset_off_phc_stamps_only():
    assert TAI_MINUS_UTC_S == 37
    assert engine_time(137 * S, TsSource.HW_PHC, 37) == 100 * S
    assert engine_time(137 * S, TsSource.HW_PHC_BY, 37) == 100 * S
    for source in (TsSource.SW_KERNEL, TsSource.SW_KERNEL_BY, TsSource.USER):
        assert engine_time(137 * S, source, 37) == 137 * S


def sample(offset, valid, ptp_timescale=1, state=1):
    return pack(RecordType.CLOCK_SAMPLE, state=state, compliant_mask=1, utc_offset=offset,
                utc_offset_valid=valid, ptp_timescale=ptp_timescale)


def test_engine_events_use_the_offset_of_the_last_sample_that_carried_one():
    venue = pack(RecordType.VENUE_MSG, packet_type=ord("H"), raw=b"\x00\x01H")
    records = [Record(1, RecordType.MD_PACKET, 1000 * S, int(TsSource.HW_PHC), 0, b"p"),
               Record(2, RecordType.CLOCK_SAMPLE, 1000 * S, int(TsSource.USER), 1, sample(36, 1)),
               Record(3, RecordType.MD_PACKET, 1001 * S, int(TsSource.HW_PHC), 1, b"p"),
               Record(4, RecordType.VENUE_MSG, 1002 * S, int(TsSource.HW_PHC_BY), 1, venue),
               Record(5, RecordType.CLOCK_SAMPLE, 1003 * S, int(TsSource.USER), 1, sample(99, 0)),
               Record(6, RecordType.MD_PACKET, 1004 * S, int(TsSource.SW_KERNEL), 1, b"p"),
               Record(7, RecordType.MD_PACKET, 1005 * S, int(TsSource.HW_PHC), 1, b"p")]
    times = [e.now_ns for e in engine_events(records) if isinstance(e, (MarketData, VenueMessage))]
    assert times == [963 * S, 965 * S, 966 * S, 1004 * S, 969 * S]


class PhcJournal:
    """The journal a runner with hardware stamps writes: market data stamped by the PHC (TAI)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def append(self, rtype, payload, ts_ns, ts_source, **kw):
        if rtype == RecordType.MD_PACKET:
            ts_ns, ts_source = ts_ns + TAI_MINUS_UTC_S * S, int(TsSource.HW_PHC)
        return self.journal.append(rtype, payload, ts_ns=ts_ns, ts_source=ts_source, **kw)


def test_a_phc_stamped_journal_replays_exactly_batched_or_not(tmp_path):
    path = str(tmp_path / "j")
    events = session_events(11, 300)
    with Journal(path) as journal:
        live = RunnerLike(fresh_engine(), PhcJournal(journal))     # the engine saw UTC times
        live.start(events[0].now_ns)
        orders = sum(isinstance(a, SendOrder) for event in events for a in live.feed(event))
    assert orders > 0
    for batch in (True, False):
        result = replay_journal(path, fresh_engine(), batch=batch)
        assert result.deterministic, result.divergences[:3]
        assert result.state_hash == live.engine.state_hash()


def test_a_grandmaster_on_the_arb_timescale_has_its_phc_taken_as_is():
    """ptpTimescale 0 with a valid currentUtcOffset (as the PTP lab's GM announces): the PHC holds
    the GM's time as is, so no 37 s comes off; an UNKNOWN sample (its timescale unread) changes
    nothing, and a PTP-timescale sample with a valid offset brings the offset back."""
    md = [Record(i, RecordType.MD_PACKET, (1000 + i) * S, int(TsSource.HW_PHC), 1, b"p") for i in range(8)]
    records = [md[0],
               Record(1, RecordType.CLOCK_SAMPLE, 0, int(TsSource.USER), 1, sample(37, 1, ptp_timescale=0)),
               md[2],
               Record(3, RecordType.CLOCK_SAMPLE, 0, int(TsSource.USER), 0, sample(0, 0, 0, state=0)),
               md[4],
               Record(5, RecordType.CLOCK_SAMPLE, 0, int(TsSource.USER), 1, sample(37, 0, ptp_timescale=1)),
               md[6],
               Record(7, RecordType.CLOCK_SAMPLE, 0, int(TsSource.USER), 1, sample(37, 1, ptp_timescale=1)),
               Record(8, RecordType.MD_PACKET, 1008 * S, int(TsSource.HW_PHC), 1, b"p")]
    times = [e.now_ns for e in engine_events(records) if isinstance(e, MarketData)]
    assert times == [963 * S, 1002 * S, 1004 * S, 1006 * S, 971 * S]


def test_the_runner_takes_the_offset_by_the_same_rule(tmp_path):
    from journal.catalogue import unpack
    from mm_core.runner import Runner
    from mm_core.runnertypes import RunnerSettings
    from tests.mm_core.fake_venue import new_engine
    from tests.mm_core.test_runner import LockedClock
    from tests.mm_core.test_runner_venue_link import ListJournal
    runner = Runner(new_engine(), ListJournal(), RunnerSettings(), LockedClock())
    assert runner.utc_offset_s == 37
    for payload, expected in ((sample(37, 1, ptp_timescale=0), 0), (sample(0, 0, 0, state=0), 0),
                              (sample(36, 1), 36), (sample(0, 0, 0, state=0), 36)):
        record = unpack(RecordType.CLOCK_SAMPLE, payload).copy()
        runner._clock_record(record, 1000 * S, int(record["state"]))
        assert runner.utc_offset_s == expected
