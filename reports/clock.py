"""RTS 25 clock evidence: every clock sample with its compliance per profile, the clock state and
error bound in force at each order event, intervals out of tolerance per profile, and a summary.

Owns the tolerance profiles (EU RTS 25 HFT 100 us, EU other algorithmic 1 ms, US CAT / FINRA 4590
50 ms) and the rule that a sample is within tolerance only when the clock is LOCKED or HOLDOVER, both
|offset| and the error bound are inside it and the GM is traceable to UTC; UNKNOWN and FREERUN
never are.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.health import MIN_TAI_UTC_S, HealthConfig
from journal.catalogue import ClockState
from reports import arrowcols as ac
from reports import common, events
from reports.output import ReportOutput, TableCollector
from reports.refdata import RefData
from reports.source import JournalSlice
from reports.timebase import CLOCK_STATE_NAMES, TS_SOURCE_NAMES, to_utc
from reports.validate import REJECTS_SCHEMA, mask_check, split

KIND = "clock"
SCHEMA_VERSION = "clock-1"

PROFILES = (("eu_hft", 100_000), ("eu_algo", 1_000_000), ("us_cat", 50_000_000))   # (name, ns)
MONITOR_BITS = {"eu_hft": 1, "eu_algo": 2, "us_cat": 4}     # CLOCK_SAMPLE.compliant_mask bits
STALE_SAMPLE_NS = 2_000_000_000   # a 1 Hz monitor: older evidence does not cover an event
TRACEABLE_CLOCK_CLASSES = tuple(sorted(HealthConfig().allowed_clock_classes))   # 6, 7


def within(samples: np.ndarray, tolerance_ns: int) -> np.ndarray:
    healthy = np.isin(samples["state"], (ClockState.LOCKED, ClockState.HOLDOVER))
    bound = samples["error_bound_ns"]
    return healthy & (bound >= 0) & (bound <= tolerance_ns) & (np.abs(samples["offset_ns"]) <= tolerance_ns) \
        & traceable(samples)


def traceable(samples: np.ndarray) -> np.ndarray:
    """The GM's time is traceable to UTC, as audit.health.judge requires: clockClass 6/7,
    timeTraceable, and on the PTP (TAI) timescale a valid, plausible UTC offset."""
    utc_ok = (samples["utc_offset_valid"] != 0) & (samples["utc_offset"] >= MIN_TAI_UTC_S)
    return np.isin(samples["gm_clock_class"], TRACEABLE_CLOCK_CLASSES) & (samples["time_traceable"] != 0) \
        & ((samples["ptp_timescale"] == 0) | utc_ok)


def _samples_table(samples: np.ndarray, utc) -> pa.Table:
    cols = {
        "seq": pa.array(samples["seq"].astype(np.uint64, copy=False)),
        "sample_time_utc": ac.timestamp_utc(utc.utc_ns, utc.valid),
        "ts_source": ac.codes(samples["ts_source"], TS_SOURCE_NAMES),
        "state": ac.codes(samples["state"], CLOCK_STATE_NAMES),
        "offset_ns": pa.array(samples["offset_ns"]),
        "path_delay_ns": pa.array(samples["path_delay_ns"]),
        "error_bound_ns": pa.array(samples["error_bound_ns"]),
        "last_sync_age_ns": pa.array(samples["last_sync_age_ns"], mask=samples["last_sync_age_ns"] < 0),
        "gm_identity": ac.hex_u64(samples["gm_identity"]),
        "port_state": pa.array(samples["port_state"]),
        "gm_clock_class": pa.array(samples["gm_clock_class"]),
        "gm_clock_accuracy": pa.array(samples["gm_clock_accuracy"]),
        "utc_offset_s": pa.array(samples["utc_offset"]),
        "utc_offset_valid": pa.array(samples["utc_offset_valid"] != 0),
        "leap61": pa.array(samples["leap61"] != 0),
        "leap59": pa.array(samples["leap59"] != 0),
        "time_traceable": pa.array(samples["time_traceable"] != 0),
        "ptp_timescale": pa.array(samples["ptp_timescale"] != 0),
        "steps_removed": pa.array(samples["steps_removed"]),
    }
    for name, tol in PROFILES:
        cols[f"within_{name}"] = pa.array(within(samples, tol))
        cols[f"monitor_said_{name}"] = pa.array((samples["compliant_mask"] & MONITOR_BITS[name]) != 0)
    cols["trade_date"] = common.trade_date_column(utc.utc_ns, utc.valid)
    return pa.table(cols)


def sample_in_force(sample_utc_ns: np.ndarray, sample_valid: np.ndarray, sample_seq: np.ndarray,
                    event_utc_ns: np.ndarray, event_valid: np.ndarray, event_seq: np.ndarray) -> np.ndarray:
    """Index of the latest sample taken at or before each event's time (-1 if none).

    By time, not journal order: a venue message's receive stamp is taken before the clock sample
    that the monitor may journal ahead of it, and that later sample is not evidence for it. At an
    equal time, journal order decides (a sample journaled after the event does not cover it)."""
    usable = np.flatnonzero(sample_valid)
    order = np.lexsort((sample_seq[usable], sample_utc_ns[usable]))    # by time, then sequence
    rows = usable[order]
    times, seqs = sample_utc_ns[rows], sample_seq[rows]
    pos = np.searchsorted(times, event_utc_ns, side="left")
    # exact ns ties only (a sample at the event's very time): decided by sequence
    tied = np.flatnonzero(times[np.minimum(pos, len(times) - 1)] == event_utc_ns) if len(times) else pos[:0]
    if len(tied):
        first = pos[tied]
        count = np.searchsorted(times, event_utc_ns[tied], side="right") - first
        before = np.zeros(len(tied), np.int64)
        for k in range(int(count.max())):      # one step per sample sharing a time (rarely > 1)
            inside = k < count
            before += inside & (seqs[np.where(inside, first + k, 0)] < event_seq[tied])
        pos[tied] = first + before
    pos -= 1
    found = (pos >= 0) & event_valid
    return np.where(found, rows[np.clip(pos, 0, None)] if len(rows) else -1, -1)


def _event_table(ev: events.OrderEvents, sample_utc) -> tuple[pa.Table, dict, int]:
    u = ev.utc
    s = ev.samples
    in_force = sample_in_force(sample_utc.utc_ns, sample_utc.valid, s["seq"], u.utc_ns, u.valid,
                               ev.cols["seq"])
    has = in_force >= 0
    idx = np.where(has, in_force, 0)
    if len(s) == 0:
        s = np.zeros(1, dtype=s.dtype)
        sample_time = np.zeros(1, np.int64)
    else:
        sample_time = sample_utc.utc_ns
    age = u.utc_ns - sample_time[idx]
    fresh = has & (age <= STALE_SAMPLE_NS)
    cols = {
        "seq": pa.array(ev.cols["seq"].astype(np.uint64, copy=False)),
        "event_type": ac.codes(ev.cols["event"], events.EVENT_NAMES),
        "order_id": ac.token_strings(ev.cols["token_key"]),
        **common.clock_columns(ev, in_force),
        "sample_state": ac.codes(s["state"][idx], CLOCK_STATE_NAMES, has),
        "sample_offset_ns": pa.array(s["offset_ns"][idx], mask=~has),
        "sample_age_ns": pa.array(age, mask=~has),
        "timestamp_granularity_ns": pa.array(np.ones(len(ev), np.int64), mask=~u.valid),
    }
    within_by_profile = {}
    for name, tol in PROFILES:
        ok = fresh & within(s, tol)[idx]
        within_by_profile[name] = ok
        cols[f"within_{name}"] = pa.array(ok)
    cols["trade_date"] = common.trade_date_column(u.utc_ns, u.valid)
    return pa.table(cols), within_by_profile, int((~has).sum())


def _intervals(samples: np.ndarray, utc, event_seq: np.ndarray) -> pa.Table:
    """Intervals out of tolerance per profile; `event_seq` (sorted) are the order events' sequences."""
    rows = []
    seqs = samples["seq"].astype(np.int64, copy=False)
    for name, tol in PROFILES:
        bad = ~within(samples, tol)
        if not bad.any():
            continue
        edges = np.diff(np.r_[0, bad.astype(np.int8, copy=False), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)   # ends: first good after
        for a, b in zip(starts, ends):      # one iteration per interval, not per sample
            closed = b < len(samples)
            end_seq = int(seqs[b]) if closed else None
            inside = np.searchsorted(event_seq, seqs[a], "right"), \
                (np.searchsorted(event_seq, end_seq, "left") if closed else len(event_seq))
            rows.append({
                "profile": name, "tolerance_ns": tol, "start_seq": int(seqs[a]), "end_seq": end_seq,
                "start_utc": int(utc.utc_ns[a]), "end_utc": int(utc.utc_ns[b]) if closed else None,
                "duration_ns": int(utc.utc_ns[b] - utc.utc_ns[a]) if closed else None,
                "open_at_range_end": not closed,
                "worst_error_bound_ns": int(samples["error_bound_ns"][a:b].max()),
                "worst_abs_offset_ns": int(np.abs(samples["offset_ns"][a:b]).max()),
                "states": ",".join(sorted({CLOCK_STATE_NAMES[s] for s in samples["state"][a:b]})),
                "order_events_inside": int(inside[1] - inside[0]),
                "trade_date": dt.date(1970, 1, 1) + dt.timedelta(days=int(utc.utc_ns[a] // ac.NS_PER_DAY)),
            })
    schema = pa.schema([
        ("profile", pa.string()), ("tolerance_ns", pa.int64()), ("start_seq", pa.uint64()),
        ("end_seq", pa.uint64()), ("start_utc", pa.timestamp("ns", tz="UTC")),
        ("end_utc", pa.timestamp("ns", tz="UTC")), ("duration_ns", pa.int64()),
        ("open_at_range_end", pa.bool_()), ("worst_error_bound_ns", pa.int64()),
        ("worst_abs_offset_ns", pa.int64()), ("states", pa.string()), ("order_events_inside", pa.int64()),
        ("trade_date", pa.date32()),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def _summary(samples: np.ndarray, intervals: pa.Table, within_events: dict[str, int], n_events: int,
             events_without_sample: int) -> pa.Table:
    rows = []
    for name, tol in PROFILES:
        ok = within(samples, tol)
        mine = intervals.filter(pc.equal(intervals["profile"], name)) if intervals.num_rows else intervals
        outside = int(n_events - within_events[name])
        if len(samples) == 0:
            verdict = "NO_EVIDENCE"
        elif ok.all() and outside == 0:
            verdict = "COMPLIANT"
        else:
            verdict = "NOT_COMPLIANT"
        rows.append({
            "profile": name, "tolerance_ns": tol, "samples": len(samples), "samples_within": int(ok.sum()),
            "share_within": float(ok.mean()) if len(samples) else None,
            "intervals_out_of_tolerance": mine.num_rows,
            "out_of_tolerance_ns": int(np.nansum(mine["duration_ns"].to_numpy(zero_copy_only=False).astype(float)))
            if mine.num_rows else 0,
            "max_error_bound_ns": int(samples["error_bound_ns"].max()) if len(samples) else None,
            "max_abs_offset_ns": int(np.abs(samples["offset_ns"]).max()) if len(samples) else None,
            "order_events": n_events, "order_events_not_demonstrably_within": outside,
            "order_events_without_sample": events_without_sample, "verdict": verdict,
        })
    return pa.Table.from_pylist(rows)


def stream(src: JournalSlice, ref: RefData, sink) -> ReportOutput:
    """Clock evidence with the per-event table built chunk by chunk (`sink.add("event_clock", t)`);
    samples, intervals and summary are small and returned whole."""
    samples_all = events.clock_samples(src)
    sample_utc_all = to_utc(samples_all["seq"], samples_all["ts_ns"], samples_all["ts_source"], samples_all)
    in_range = (samples_all["seq"] >= src.first_seq) & (samples_all["seq"] <= src.last_seq)
    if src.selection.trade_date is not None:
        day = (src.selection.trade_date - dt.date(1970, 1, 1)).days
        in_range &= sample_utc_all.utc_ns // ac.NS_PER_DAY == day
    rows = np.flatnonzero(in_range)
    samples = samples_all[rows]
    sample_utc = to_utc(samples["seq"], samples["ts_ns"], samples["ts_source"], samples_all)
    within_events = {name: 0 for name, _ in PROFILES}
    n_events = no_sample = 0
    event_seqs, event_rejects = [], []
    for chunk in events.collect_chunks(src, join_orders=False):
        ev = common.select_trade_date(chunk, src.selection.trade_date)
        event_table, within_chunk, no_sample_chunk = _event_table(ev, sample_utc_all)
        for name, ok in within_chunk.items():
            within_events[name] += int(ok.sum())
        n_events += len(ev)
        no_sample += no_sample_chunk
        event_seqs.append(ev.cols["seq"].astype(np.int64, copy=False))   # 8 bytes per event
        kept, rejected = split(event_table, KIND, "event_clock", [
            mask_check("event_time_utc", ~ev.utc.valid, "order event without a UTC time")])
        sink.add("event_clock", kept)
        if rejected.num_rows:
            event_rejects.append(rejected)
    all_event_seqs = np.concatenate(event_seqs) if event_seqs else np.zeros(0, np.int64)
    intervals = _intervals(samples, sample_utc, all_event_seqs)
    summary = _summary(samples, intervals, within_events, n_events, no_sample)
    samples_kept, sample_rejects = split(_samples_table(samples, sample_utc), KIND, "samples", [
        mask_check("sample_time_utc", ~sample_utc.valid, "clock sample without a UTC time")])
    parts = [r for r in [sample_rejects] + event_rejects if r.num_rows]
    rejects = pa.concat_tables(parts) if parts else REJECTS_SCHEMA.empty_table()
    return ReportOutput(kind=KIND, schema_version=SCHEMA_VERSION, tables={
        "samples": samples_kept, "intervals": intervals, "summary": summary,
    }, rejects=rejects)


def build(src: JournalSlice, ref: RefData) -> ReportOutput:
    """The whole report in memory (tests, benchmarks); `run` streams it to disk instead."""
    collector = TableCollector()
    report = stream(src, ref, collector)
    report.tables.update(collector.tables())
    return report
