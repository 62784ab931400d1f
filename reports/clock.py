"""RTS 25 clock evidence: every clock sample with its compliance per profile, the clock state and
error bound in force at each order event, intervals out of tolerance or unmonitored per profile,
and a summary.

Owns the tolerance profiles (EU RTS 25 HFT 100 us, EU other algorithmic 1 ms, US CAT / FINRA 4590
50 ms), the rule that a sample is within tolerance only when the clock is LOCKED, DEGRADED
(bounded by what it measured) or HOLDOVER, both |offset| and the error bound are inside it and the GM is traceable to UTC (UNKNOWN and
FREERUN never are), the rule that a stretch of the range with no sample for longer than
GAP_NS is unmonitored, and the rule that samples of a session whose clock was the PTP lab's
(its session-start record says so: reports.clocksource) show the monitoring path, not
traceability to UTC: the lab's grandmaster is the host's own clock, however it announces itself,
so such a verdict is LAB_CLOCK_NOT_TRACEABLE, never COMPLIANT, and the manifest says so.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.health import BOUNDED_STATES, MIN_TAI_UTC_S, HealthConfig
from reports import arrowcols as ac
from reports import clocksource, common, events
from reports.output import ReportOutput, TableCollector
from reports.refdata import RefData
from reports.source import JournalSlice
from reports.timebase import CLOCK_STATE_NAMES, TS_SOURCE_NAMES, to_utc
from reports.validate import REJECTS_SCHEMA, mask_check, split

KIND = "clock"
SCHEMA_VERSION = "clock-3"   # clock-3: an open interval's duration counted, as a lower bound

PROFILES = (("eu_hft", 100_000), ("eu_algo", 1_000_000), ("us_cat", 50_000_000))   # (name, ns)
MONITOR_BITS = {"eu_hft": 1, "eu_algo": 2, "us_cat": 4}     # CLOCK_SAMPLE.compliant_mask bits
STALE_SAMPLE_NS = 2_000_000_000   # a 1 Hz monitor: older evidence does not cover an event
TRACEABLE_CLOCK_CLASSES = tuple(sorted(HealthConfig().allowed_clock_classes))   # 6, 7
# Samples further apart than this (a 1 Hz monitor that missed a tick, with slack for its
# scheduling), or the range's first/last record that far from the nearest sample: unmonitored.
GAP_NS = STALE_SAMPLE_NS
STATUS_OUT, STATUS_UNMONITORED = "OUT_OF_TOLERANCE", "UNMONITORED"
VERDICT_LAB = "LAB_CLOCK_NOT_TRACEABLE"   # would pass, but on the PTP lab's clock: not UTC evidence


def within(samples: np.ndarray, tolerance_ns: int) -> np.ndarray:
    healthy = np.isin(samples["state"], [int(s) for s in BOUNDED_STATES])
    bound = samples["error_bound_ns"]
    return healthy & (bound >= 0) & (bound <= tolerance_ns) & (np.abs(samples["offset_ns"]) <= tolerance_ns) \
        & traceable(samples)


def traceable(samples: np.ndarray) -> np.ndarray:
    """The GM's time is traceable to UTC, as audit.health.judge requires: clockClass 6/7,
    timeTraceable, and on the PTP (TAI) timescale a valid, plausible UTC offset."""
    utc_ok = (samples["utc_offset_valid"] != 0) & (samples["utc_offset"] >= MIN_TAI_UTC_S)
    return np.isin(samples["gm_clock_class"], TRACEABLE_CLOCK_CLASSES) & (samples["time_traceable"] != 0) \
        & ((samples["ptp_timescale"] == 0) | utc_ok)


def _samples_table(samples: np.ndarray, utc, sources: np.ndarray) -> pa.Table:
    cols = {
        "seq": pa.array(samples["seq"].astype(np.uint64, copy=False)),
        "clock_source": pa.array(sources, pa.string()),     # its session's (clocksource)
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


def unmonitored(sample_utc_ns: np.ndarray, sample_seq: np.ndarray, edges: tuple) -> list[dict]:
    """Stretches with no clock sample for longer than GAP_NS, from the samples' UTC times (valid
    ones, any order) and the range's first and last records `edges` ((seq, utc_ns) each):
    between two samples, from the range's first record to the first sample, and from the last
    sample to the range's last record (open at the range end). Each: start/end seq and UTC time."""
    order = np.lexsort((sample_seq, sample_utc_ns))
    times, seqs = sample_utc_ns[order].astype(np.int64), sample_seq[order].astype(np.int64)
    (first_seq, first_utc), (last_seq, last_utc) = edges
    # the points monitoring is known at: the range's start (when no sample precedes it), the
    # samples, and the range's end (when no sample follows it)
    lead = int(not len(times) or first_utc < times[0])
    trail = int(not len(times) or last_utc > times[-1])
    times = np.r_[[first_utc] * lead, times, [last_utc] * trail].astype(np.int64)
    seqs = np.r_[[first_seq] * lead, seqs, [last_seq] * trail].astype(np.int64)
    at = np.flatnonzero(np.diff(times) > GAP_NS)
    at = at[(times[at + 1] > first_utc) & (times[at] < last_utc)]     # inside the range only
    return [{"start_seq": int(seqs[i]), "start_utc": int(times[i]), "end_seq": int(seqs[i + 1]),
             "end_utc": int(times[i + 1]), "open_at_range_end": bool(trail and i + 2 == len(times))}
            for i in at]        # one entry per gap (few)


def range_edges(src: JournalSlice, samples: np.ndarray) -> tuple:
    """((seq, UTC ns) of the range's first record, (seq, UTC ns) of its last); a record with no
    UTC time counts at the nearest known: the first/last sample's (so it opens no interval)."""
    out = []
    for seq in (src.first_seq, src.last_seq):
        head = src.reader.scan(seq, seq, fields=("seq", "ts_ns", "ts_source"))
        utc = to_utc(head.seq, head.ts_ns, head.ts_source, samples)
        out.append((int(head.seq[0]), int(utc.utc_ns[0])) if len(head.seq) and utc.valid[0] else None)
    return tuple(out)


def _gap_rows(gaps: list[dict], inside: list[int], day: int | None) -> list[dict]:
    """One unmonitored row per gap and profile (what every profile lacks evidence for)."""
    rows = []
    for gap, count in zip(gaps, inside):
        start_day = gap["start_utc"] // ac.NS_PER_DAY if day is None else day
        for name, tol in PROFILES:
            rows.append({"profile": name, "tolerance_ns": tol, "status": STATUS_UNMONITORED, **gap,
                         "duration_ns": gap["end_utc"] - gap["start_utc"], "duration_is_lower_bound": False,
                         "worst_error_bound_ns": None, "worst_abs_offset_ns": None, "states": None,
                         "order_events_inside": count,
                         "trade_date": dt.date(1970, 1, 1) + dt.timedelta(days=int(start_day))})
    return rows


INTERVALS_SCHEMA = pa.schema([
    ("profile", pa.string()), ("tolerance_ns", pa.int64()), ("status", pa.string()), ("start_seq", pa.uint64()),
    ("end_seq", pa.uint64()), ("start_utc", pa.timestamp("ns", tz="UTC")),
    ("end_utc", pa.timestamp("ns", tz="UTC")), ("duration_ns", pa.int64()),
    ("open_at_range_end", pa.bool_()), ("duration_is_lower_bound", pa.bool_()), ("worst_error_bound_ns", pa.int64()),
    ("worst_abs_offset_ns", pa.int64()), ("states", pa.string()), ("order_events_inside", pa.int64()),
    ("trade_date", pa.date32()),
])


def _open_end(last_sample_utc: int, range_end_utc: int | None) -> int:
    """Where an interval still out of tolerance at the range's end is counted to: the range's last
    record when the samples reach it (no gap after the last one: that stretch is an unmonitored
    interval of its own), else the last sample. Either way a lower bound: the clock was not seen
    to come back within tolerance at all."""
    if range_end_utc is not None and 0 <= range_end_utc - last_sample_utc <= GAP_NS:
        return range_end_utc
    return last_sample_utc


def _intervals(samples: np.ndarray, utc, event_seq: np.ndarray, unmonitored_rows: list[dict],
               range_end_utc: int | None = None) -> pa.Table:
    """Intervals out of tolerance per profile, and the unmonitored ones (`unmonitored_rows`), in
    profile order then by start; `event_seq` (sorted) are the order events' sequences; an
    interval open at the range's end lasts until `range_end_utc` (see _open_end)."""
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
            until = int(utc.utc_ns[b]) if closed else _open_end(int(utc.utc_ns[b - 1]), range_end_utc)
            inside = np.searchsorted(event_seq, seqs[a], "right"), \
                (np.searchsorted(event_seq, end_seq, "left") if closed else len(event_seq))
            rows.append({
                "profile": name, "tolerance_ns": tol, "status": STATUS_OUT, "start_seq": int(seqs[a]), "end_seq": end_seq,
                "start_utc": int(utc.utc_ns[a]), "end_utc": int(utc.utc_ns[b]) if closed else None,
                "duration_ns": until - int(utc.utc_ns[a]),
                "open_at_range_end": not closed, "duration_is_lower_bound": not closed,
                "worst_error_bound_ns": int(samples["error_bound_ns"][a:b].max()),
                "worst_abs_offset_ns": int(np.abs(samples["offset_ns"][a:b]).max()),
                "states": ",".join(sorted({CLOCK_STATE_NAMES[s] for s in samples["state"][a:b]})),
                "order_events_inside": int(inside[1] - inside[0]),
                "trade_date": dt.date(1970, 1, 1) + dt.timedelta(days=int(utc.utc_ns[a] // ac.NS_PER_DAY)),
            })
    rank = {name: i for i, (name, _) in enumerate(PROFILES)}
    rows = sorted(rows + unmonitored_rows, key=lambda r: (rank[r["profile"]], r["start_utc"], r["status"]))
    return pa.Table.from_pylist(rows, schema=INTERVALS_SCHEMA)


def _summary(samples: np.ndarray, intervals: pa.Table, within_events: dict[str, int], n_events: int,
             events_without_sample: int, lab: np.ndarray | None = None) -> pa.Table:
    """One row per profile; `lab`: which samples came from the PTP lab's clock."""
    lab_samples = int(lab.sum()) if lab is not None else 0
    rows = []
    for name, tol in PROFILES:
        ok = within(samples, tol)
        mine = intervals.filter(pc.equal(intervals["profile"], name)) if intervals.num_rows else intervals
        gaps = mine.filter(pc.equal(mine["status"], STATUS_UNMONITORED)) if mine.num_rows else mine
        mine = mine.filter(pc.equal(mine["status"], STATUS_OUT)) if mine.num_rows else mine
        outside = int(n_events - within_events[name])
        if len(samples) == 0:
            verdict = "NO_EVIDENCE"
        elif not (ok.all() and outside == 0):
            verdict = "NOT_COMPLIANT"
        elif gaps.num_rows:
            verdict = "INCOMPLETE_EVIDENCE"     # nothing seen outside, but not seen throughout
        else:
            verdict = "COMPLIANT"
        if lab_samples and verdict in ("COMPLIANT", "INCOMPLETE_EVIDENCE"):
            verdict = VERDICT_LAB
        rows.append({
            "profile": name, "tolerance_ns": tol, "samples": len(samples), "samples_within": int(ok.sum()),
            "share_within": float(ok.mean()) if len(samples) else None,
            "intervals_out_of_tolerance": mine.num_rows,
            "out_of_tolerance_ns": int(pc.sum(mine["duration_ns"]).as_py() or 0) if mine.num_rows else 0,
            # an interval still open at the range's end is counted only as far as it was seen
            "out_of_tolerance_ns_is_lower_bound": bool(mine.num_rows and pc.any(mine["open_at_range_end"]).as_py()),
            "max_error_bound_ns": int(samples["error_bound_ns"].max()) if len(samples) else None,
            "max_abs_offset_ns": int(np.abs(samples["offset_ns"]).max()) if len(samples) else None,
            "unmonitored_intervals": gaps.num_rows,
            "unmonitored_ns": int(pc.sum(gaps["duration_ns"]).as_py() or 0) if gaps.num_rows else 0,
            "order_events": n_events, "order_events_not_demonstrably_within": outside,
            "order_events_without_sample": events_without_sample,
            "lab_clock_samples": lab_samples, "verdict": verdict,
        })
    return pa.Table.from_pylist(rows)


def _gaps(edges: tuple, samples_all: np.ndarray, utc, day: int | None) -> list[dict]:
    """The unmonitored stretches of the range (all its samples, and its first and last records:
    `edges`, from range_edges), those touching trade date `day` when one is selected."""
    first, last = edges
    valid = np.flatnonzero(utc.valid)
    times, seqs = utc.utc_ns[valid], samples_all["seq"][valid].astype(np.int64)
    if first is None:
        first = (int(seqs[0]), int(times.min())) if len(times) else None
    if last is None:
        last = (int(seqs[-1]), int(times.max())) if len(times) else None
    if first is None or last is None:
        return []
    gaps = unmonitored(times, seqs, (first, last))
    if day is not None:
        lo, hi = day * ac.NS_PER_DAY, (day + 1) * ac.NS_PER_DAY
        gaps = [g for g in gaps if g["start_utc"] < hi and g["end_utc"] > lo]
    return gaps


def _clock_provenance(sources: np.ndarray, lab_note: str) -> dict[str, str]:
    """What the manifest (and every file's metadata) says of the clocks behind the samples."""
    out = {"clock_sources": ",".join(sorted(set(sources.tolist()) - {""}))}
    if lab_note:
        out.update(clock_traceable_to_utc="no: samples from the PTP lab's clock", clock_evidence=lab_note)
    return out


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
    clocks = clocksource.session_clocks(src.reader, src.last_seq)
    sources = clocks.sources(samples["seq"])
    sink.annotate(_clock_provenance(sources, clocks.lab_evidence(samples["seq"])))
    sample_utc = to_utc(samples["seq"], samples["ts_ns"], samples["ts_source"], samples_all)
    day = None if src.selection.trade_date is None else (src.selection.trade_date - dt.date(1970, 1, 1)).days
    edges = range_edges(src, samples_all)
    gaps = _gaps(edges, samples_all, sample_utc_all, day)
    # a trade date's samples end where its day does, not at the range's last record
    range_end_utc = edges[1][1] if edges[1] is not None and day is None else None
    gap_start = np.array([g["start_utc"] for g in gaps], np.int64)
    gap_end = np.array([g["end_utc"] for g in gaps], np.int64)
    inside = np.zeros(len(gaps), np.int64)
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
        if len(gaps):                    # events strictly inside each gap (a loop over gaps)
            t = np.sort(ev.utc.utc_ns[ev.utc.valid])
            inside += np.searchsorted(t, gap_end, "left") - np.searchsorted(t, gap_start, "right")
        event_seqs.append(ev.cols["seq"].astype(np.int64, copy=False))   # 8 bytes per event
        kept, rejected = split(event_table, KIND, "event_clock", [
            mask_check("event_time_utc", ~ev.utc.valid, "order event without a UTC time"),
            common.token_check(ev.cols)])
        sink.add("event_clock", kept)
        if rejected.num_rows:
            event_rejects.append(rejected)
    all_event_seqs = np.concatenate(event_seqs) if event_seqs else np.zeros(0, np.int64)
    intervals = _intervals(samples, sample_utc, all_event_seqs, _gap_rows(gaps, inside.tolist(), day),
                           range_end_utc)
    summary = _summary(samples, intervals, within_events, n_events, no_sample,
                       sources == clocksource.LAB_SOURCE)
    samples_kept, sample_rejects = split(_samples_table(samples, sample_utc, sources), KIND, "samples", [
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
