"""Across a leap second the engine's time of a PHC-stamped input is the UTC the reports give it:
the sample in force's leap61/leap59 applied to the UTC offset (audit.phc.leap_utc_ns, the reports'
rule), live in the runner and in replay (engine_events), and carried through a resume. The
journal keeps the raw PHC stamp; nothing is relabelled."""
from __future__ import annotations

import calendar

import numpy as np
import pytest

from journal import Record
from journal.catalogue import RecordType, TsSource, pack, unpack
from mm_core.events import MarketData
from mm_core.runner import Runner
from mm_core.runnerrecords import engine_events
from mm_core.runnertypes import RunnerError, RunnerSettings
from reports.timebase import to_utc
from tests.mm_core.fake_venue import new_engine
from tests.mm_core.test_runner import LockedClock
from tests.mm_core.test_runner_venue_link import ListJournal
from tests.reports.test_timebase_timescale import SAMPLE_DTYPE

S = 10**9
# 2016-12-31 23:59:60 was inserted (TAI - UTC 36 -> 37); a deleted second is only hypothetical:
# 2030-06-30 23:59:59 with TAI - UTC 40 -> 39
INSERTED = calendar.timegm((2017, 1, 1, 0, 0, 0)) * S
DELETED = calendar.timegm((2030, 7, 1, 0, 0, 0)) * S
CASES = {
    "leap61": (INSERTED, dict(leap61=1), 36, 37),
    "leap59": (DELETED, dict(leap59=1), 40, 39),
}
# PHC (TAI) stamps around the leap, as UTC by the announcing sample's offset
AROUND = [-3_600 * S, -1_500_000_000, -S, -1, 0, 1, 500_000_000, S, 3 * 3_600 * S]


def sample(offset: int, **flags) -> bytes:
    return pack(RecordType.CLOCK_SAMPLE, state=1, compliant_mask=1, utc_offset=offset,
                utc_offset_valid=1, ptp_timescale=1, **flags)


def journal(case: str) -> tuple[list[Record], list[int]]:
    """A session across the leap: the GM announces it, stamps around midnight, the GM's late
    sample with the new offset and no flag, one more stamp. Also the PHC stamps, in order."""
    midnight, flags, before, after = CASES[case]
    stamps = [midnight + before * S + d for d in AROUND]
    records = [Record(1, RecordType.CLOCK_SAMPLE, midnight - 7_200 * S, int(TsSource.USER), 1,
                      sample(before, **flags))]
    for ts in stamps:
        records.append(Record(len(records) + 1, RecordType.MD_PACKET, ts, int(TsSource.HW_PHC), 1, b"p"))
    late = midnight + 4 * 3_600 * S
    records.append(Record(len(records) + 1, RecordType.CLOCK_SAMPLE, late, int(TsSource.USER), 1, sample(after)))
    stamps.append(late + after * S)
    records.append(Record(len(records) + 1, RecordType.MD_PACKET, stamps[-1], int(TsSource.HW_PHC), 1, b"p"))
    return records, stamps


def report_times(records: list[Record]) -> list[int]:
    """What reports.timebase.to_utc makes of the PHC-stamped records."""
    clocks = [r for r in records if r.rtype == RecordType.CLOCK_SAMPLE]
    samples = np.zeros(len(clocks), SAMPLE_DTYPE)
    for i, r in enumerate(clocks):
        row = unpack(RecordType.CLOCK_SAMPLE, r.payload)
        samples[i]["seq"], samples[i]["ts_ns"] = r.seq, r.ts_ns
        for name in row.dtype.names:
            samples[i][name] = row[name]
    md = [r for r in records if r.rtype == RecordType.MD_PACKET]
    u = to_utc(np.array([r.seq for r in md], np.uint64), np.array([r.ts_ns for r in md], np.int64),
               np.array([r.ts_source for r in md]), samples)
    assert u.valid.all()
    return [int(t) for t in u.utc_ns]


@pytest.mark.parametrize("case", CASES)
def test_replay_stamps_the_leap_as_the_reports_do(case):
    records, stamps = journal(case)
    midnight, _, before, after = CASES[case]
    times = [e.now_ns for e in engine_events(records) if isinstance(e, MarketData)]
    assert times == report_times(records)
    # before midnight the announcing offset; past it (leap59: from 23:59:59) the second applied
    step = -S if case == "leap61" else S
    edge = midnight if case == "leap61" else midnight - S
    assert times[:-1] == [ts - before * S + (step if ts - before * S >= edge else 0) for ts in stamps[:-1]]
    assert times[-1] == stamps[-1] - after * S


@pytest.mark.parametrize("case", CASES)
def test_the_runner_stamps_the_leap_as_replay_and_the_reports_do(case):
    records, _ = journal(case)
    engine = new_engine()
    seen: list[int] = []
    engine.on_event = lambda event: seen.append(event.now_ns) or []
    runner = Runner(engine, ListJournal(), RunnerSettings(), LockedClock())
    runner._md_from = frozenset({"127.0.0.1"})
    for rec in records:
        if rec.rtype == RecordType.CLOCK_SAMPLE:
            record = unpack(RecordType.CLOCK_SAMPLE, rec.payload).copy()
            runner._clock_record(record, rec.ts_ns, 1)
        else:
            runner._md_packet(rec.payload, ("127.0.0.1", 1), rec.ts_ns, TsSource.HW_PHC)
    clocks = {rec.seq for rec in records if rec.rtype == RecordType.CLOCK_SAMPLE}
    md_times = [t for rec, t in zip(records, seen) if rec.seq not in clocks]
    assert md_times == report_times(records)
    assert runner.utc_offset_s == CASES[case][3] and runner.utc_leap == 0


@pytest.mark.parametrize("case", CASES)
def test_a_resumed_session_goes_on_with_the_leap_flag_in_force(case):
    """A resume between the announcement and the GM's next sample: the flag the journal last
    recorded is in force, as it is for replay resumed from a snapshot there."""
    records, _ = journal(case)
    _, _, before, _ = CASES[case]
    leap = 61 if case == "leap61" else 59
    head, tail = records[:1], records[1:]
    replayed = [e.now_ns for e in engine_events(tail, resumed=True, utc_offset_s=before, utc_leap=leap)
                if isinstance(e, MarketData)]
    assert replayed == report_times(records)
    runner = Runner(new_engine(), ListJournal(), RunnerSettings(fresh_session=False, utc_offset_s=before,
                                                                 utc_leap=leap), LockedClock())
    assert (runner.utc_offset_s, runner.utc_leap) == (before, leap)
    assert head[0].rtype == RecordType.CLOCK_SAMPLE


@pytest.mark.parametrize("leap", [1, 60, True, "61", None])
def test_a_leap_flag_that_is_not_one_is_refused(leap):
    with pytest.raises(RunnerError, match="utc_leap must be 0, 61 .leap61. or 59 .leap59."):
        Runner(new_engine(), ListJournal(), RunnerSettings(utc_leap=leap), LockedClock())
