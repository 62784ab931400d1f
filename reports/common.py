"""Pieces every regulatory report shares: clock context and UTC columns of order events (with the
venue's own time for the venue messages a crash recovery journaled, and the column naming which
time a row has), the instrument and party joins against reference data, RTS-style text formats,
and the checks that send rows without a UTC time, instrument or responsible algo to rejects.

Owns no report layout of its own; builders pick the columns they need.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from reports import arrowcols as ac, numtext, ouch, timetext, venuetime
from reports.events import EV, OrderEvents, short_message_reasons, short_messages
from reports.refdata import RefData
from reports.timebase import BASIS_NAMES, CLOCK_STATE_NAMES, TS_SOURCE_NAMES, UtcTimes
from reports.validate import Check, mask_check, value_check
from reports.identifiers import isin_problem, mic_problem, cfi_problem, currency_problem

NS_PER_DAY = ac.NS_PER_DAY
# why an event of an order no journaled ORDER_SENT created (e.g. one recovery adopted from the
# venue after a torn journal tail lost its ORDER_SENT) is rejected: its instrument and parties
# are unknown
NO_CREATOR = "no ORDER_SENT in the journal created this order token"


def adopted_origin(recon_seq) -> str:
    """What an order a crash recovery adopted is (events' order_adopted), with its evidence."""
    return (f"order adopted by a crash recovery from the venue's view (RECON resolution at journal sequence "
            f"{recon_seq}): its ORDER_SENT was lost with the journal's torn tail, so its send time (before the "
            f"venue's acceptance: no more is known) and its algo, desk, trader and client are unknown")


def adopted_reasons(cols, what: str):
    """mask_check reasons for rows of adopted orders: the origin, then `what` the report lacks."""
    return lambda rows: [f"{adopted_origin(s)}; {what}" for s in cols["creator_seq"][rows].tolist()]


def select_trade_date(ev: OrderEvents, trade_date: dt.date | None) -> OrderEvents:
    """Events whose UTC time falls on `trade_date`; events with no UTC time are kept so they can
    be rejected with their reason rather than vanish."""
    if trade_date is None:
        return ev
    day = (trade_date - dt.date(1970, 1, 1)).days
    keep = ~ev.utc.valid | (ev.utc.utc_ns // NS_PER_DAY == day)
    return ev.take(np.flatnonzero(keep))


FROM_VENUE = "time_from_venue"        # event column: the row's time is the venue's own (with_venue_times)
_TS_AT, _TS_WIDTH, _ = ouch.OUTBOUND_FIELDS["venue_ts"][ord("E")]     # the same place in every outbound type
_VENUE_TS_END = _TS_AT + _TS_WIDTH
_EXECUTIONS = (EV["EXECUTED"], EV["EXECUTED_WITH_REF_PRICE"])


def with_venue_times(ev: OrderEvents, timing: venuetime.VenueTiming) -> OrderEvents:
    """`ev` with the venue messages journaled after the events, timed by the venue's own OUCH
    timestamp (its execution time for an Executed, its time of the event for any other answer)
    instead of their receipt, seconds or hours later, and FROM_VENUE marking them: those a crash
    recovery journaled (venuetime: inside a recovery window, stamped USER by the recovery's clock)
    and those a login's replay brought (venuetime.replayed: made before the LoginAccepted before
    them was received). The record's own timestamp stays in ev.cols["ts_ns"]. A message cut
    before its timestamp keeps the record's time (and is rejected as truncated). The trade date
    and --date follow the venue's time. `timing`: venuetime.venue_timing, read once per run."""
    c = ev.cols
    venue = c["origin"] == 1
    if "msg_len" in c:
        venue &= c["msg_len"] >= _VENUE_TS_END
    u = ev.utc
    recovered = np.zeros(len(venue), bool)
    rows = np.flatnonzero(venue)
    if len(rows):
        recovered[rows] = venuetime.venue_timed(c["seq"][rows], c["ts_ns"][rows], c["ts_source"][rows],
                                                u.utc_ns[rows], u.valid[rows], c["venue_ts"][rows], timing)
    c[FROM_VENUE] = recovered
    if recovered.any():
        ev.utc = UtcTimes(venuetime.execution_times(u.utc_ns, recovered & u.valid, c["venue_ts"]), u.valid,
                          u.basis, u.utc_offset_s, u.sample_index)
    return ev


def time_source(ev: OrderEvents, sources: list[str] = venuetime.SOURCES) -> pa.Array:
    """Where each row's time comes from, as codes of `sources` (venuetime.SOURCES or EVENT_SOURCES):
    the journal record's, or the venue's timestamp (with_venue_times): of an execution, or, where
    `sources` names it, of another venue event."""
    from_venue = ev.cols.get(FROM_VENUE)
    if from_venue is None:
        return ac.codes(np.zeros(len(ev), np.int8), sources)
    code = from_venue.astype(np.int8)
    if len(sources) > 2:
        code[from_venue & ~np.isin(ev.cols["event"], _EXECUTIONS)] = 2
    return ac.codes(code, sources)


def trade_date_column(utc_ns: np.ndarray, valid: np.ndarray) -> pa.Array:
    days = (utc_ns // NS_PER_DAY).astype(np.int32, copy=False)
    return pa.array(days, type=pa.date32(), mask=~valid)


def rts_datetime(utc_ns: np.ndarray, valid: np.ndarray) -> pa.Array:
    """RTS 22/24 {DATE_TIME_FORMAT}: YYYY-MM-DDThh:mm:ss.ffffffZ in UTC, microseconds."""
    return timetext.rts_datetime(utc_ns, valid)


def price_text(price4: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Exact decimal text of price4 integers ('150.0000')."""
    return numtext.scaled_text(price4, 4, valid)


def clock_columns(ev: OrderEvents, sample_index: np.ndarray | None = None) -> dict[str, pa.Array]:
    """Timestamp as recorded, its source, the UTC conversion and the clock state in force.
    `sample_index` picks the clock sample whose bound is shown (default: the one preceding the
    event in the journal, which is also the UTC conversion's basis)."""
    u = ev.utc
    samples = ev.samples
    sample_index = u.sample_index if sample_index is None else sample_index
    has_sample = sample_index >= 0
    every = bool(has_sample.all())
    if len(samples):      # index -1 (no sample yet) clips to sample 0: masked null below
        bound = np.ascontiguousarray(samples["error_bound_ns"], dtype=np.int64).take(sample_index, mode="clip")
        sample_seq = np.ascontiguousarray(samples["seq"], dtype=np.uint64).take(sample_index, mode="clip")
    else:
        bound, sample_seq = np.zeros(len(sample_index), np.int64), np.zeros(len(sample_index), np.uint64)
    return {
        "event_time_utc": ac.timestamp_utc(u.utc_ns, u.valid),
        "ts_recorded_ns": pa.array(ev.cols["ts_ns"].astype(np.int64, copy=False)),
        "ts_source": ac.codes(ev.cols["ts_source"], TS_SOURCE_NAMES),
        "utc_basis": ac.codes(u.basis, BASIS_NAMES),
        "utc_offset_s": pa.array(u.utc_offset_s.astype(np.int16, copy=False)),
        "clock_state": ac.codes(ev.cols["clock_state"], CLOCK_STATE_NAMES),
        "clock_error_bound_ns": pa.array(bound, mask=None if every else ~has_sample),
        "clock_sample_seq": pa.array(sample_seq, mask=None if every else ~has_sample),
    }


INSTRUMENT_COLUMNS = {"symbol": "symbol", "isin": "isin", "cfi": "cfi", "segment_mic": "mic", "currency": "currency"}


def instrument_columns(ref: RefData, symbol_ids: np.ndarray, names=tuple(INSTRUMENT_COLUMNS)
                       ) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """(instrument index per row, -1 where unknown; the instrument columns `names`)."""
    idx = ref.instrument_index(symbol_ids)
    inst = ref.sorted_values("instruments")
    return idx, {name: ac.lookup_strings(idx, [getattr(i, INSTRUMENT_COLUMNS[name]) for i in inst]) for name in names}


def party_code(ref: RefData, registry: str, ids: np.ndarray,
               unknown: np.ndarray | None = None) -> tuple[np.ndarray, pa.Array]:
    """(registry index per row, -1 where unknown; the party's code, null there); `unknown`: rows
    whose id the journal does not give (an adopted order's: a zero, not a party)."""
    idx = ref.party_index(registry, ids)
    if unknown is not None and unknown.any():
        idx = np.where(unknown, -1, idx)
    return idx, ac.lookup_strings(idx, [p.code or None for p in ref.sorted_values(registry)])


def event_checks(table: pa.Table, ev: OrderEvents, ref: RefData, inst_idx: np.ndarray,
                 algo_idx: np.ndarray, client_idx: np.ndarray) -> list[Check]:
    """Rejects common to order-event reports: a truncated OUCH message, time, order identity,
    instrument, responsibility. An adopted order's parties are unknown, not ids missing from the
    registries: not checked here (a report that needs them rejects its rows with adopted_reasons)."""
    u = ev.utc
    own = (ev.cols["creator"] >= 0) & ~ev.cols["order_adopted"]     # a journaled ORDER_SENT's order
    no_offset = u.basis == BASIS_NAMES.index("NO_UTC_OFFSET")

    def no_time(rows):
        return np.where(no_offset[rows],
                        "PHC (TAI) timestamp with no preceding CLOCK_SAMPLE carrying a valid UTC offset",
                        "no timestamp was recorded for this event")
    checks = [
        mask_check("ouch_message", short_messages(ev.cols), lambda rows: short_message_reasons(ev.cols, rows)),
        mask_check("event_time_utc", ~u.valid, no_time),
        mask_check("order_id", ev.cols["creator"] < 0, NO_CREATOR),
        token_check(ev.cols),
        mask_check("symbol_id", (ev.cols["creator"] >= 0) & (inst_idx < 0),
                   lambda rows: [f"symbol_id {v} not in instrument reference data"
                                  for v in ev.cols["symbol_id"][rows]]),
        mask_check("algo_id", own & (algo_idx < 0),
                   lambda rows: [f"algo_id {v} not in the algo registry (RTS 6 Art. 12)"
                                  for v in ev.cols["algo_id"][rows]]),
        mask_check("client_id", own & (client_idx < 0),
                   lambda rows: [f"client_id {v} not in the client registry"
                                  for v in ev.cols["client_id"][rows]]),
        stock_check(ev, ref, inst_idx),
    ]
    known = inst_idx >= 0
    active = ref.active_mics
    checks += [
        value_check(table, "isin", isin_problem, when=known),
        value_check(table, "segment_mic", lambda v: mic_problem(v, active), when=known),
    ]
    if "cfi" in table.column_names:
        checks.append(value_check(table, "cfi", cfi_problem, when=known))
    if "currency" in table.column_names:
        checks.append(value_check(table, "currency", currency_problem, when=known))
    return checks


def token_check(cols, rows: np.ndarray | None = None, field: str = "order_id") -> Check:
    """Rows (of `rows`, else all) whose order token, or prior order token where the columns have
    one, holds a byte beyond ASCII: OUCH tokens are printable ASCII, so such a token is bytes the
    venue sent (its frames are journaled before they are decoded), never an order of ours. Rejected
    with the bytes in hex; numtext.token_text shows them escaped in the field."""
    names = [n for n in ("token_key", "prior_token_key") if n in cols]
    # checked over whole columns (one max() pass each when all is ASCII), then picked: no copies
    bad = [numtext.non_ascii_tokens(cols[n]) if rows is None else numtext.non_ascii_tokens(cols[n])[rows]
           for n in names]
    any_bad = np.logical_or.reduce(bad) if bad else np.zeros(0, bool)

    def reasons(at):
        source = at if rows is None else rows[at]
        return ["; ".join(f"{name.removesuffix('_key').replace('_', ' ')} "
                          f"{numtext.token_bytes(cols[name][j]).hex()} is not ASCII text (OUCH order tokens "
                          f"are printable ASCII): bytes from the venue that name no order"
                          for name, b in zip(names, bad) if b[i]) for i, j in zip(at, source)]
    return mask_check(field, any_bad, reasons)


def order_side_check(ev: OrderEvents, applies: np.ndarray | None = None) -> Check:
    """Rows (where `applies`) of an order whose side is unknown: its Enter Order's side byte lies past
    the bytes the journal holds (events.wire_sides gives 0). Rejected, never reported with the
    journaled B/S, which would read a short sale as a plain sell."""
    c = ev.cols
    bad = (c["creator"] >= 0) & (c["order_wire_side"] == 0)
    if applies is not None:
        bad &= applies
    return mask_check("order_side", bad, "the side byte of the order's OUCH Enter Order is past the bytes "
                      "the journal holds (truncated): its side (buy, sell, short sale) is unknown")


OUCH_STOCK_WIDTH = 8     # OUCH 4.2 Stock: 8 alphanumerics, left-justified, space-padded


def _words(stocks: np.ndarray) -> np.ndarray:
    """OUCH stocks (S8, NUL-padded) as one uint64 each (b"" is 0)."""
    return np.ascontiguousarray(stocks, dtype=f"S{OUCH_STOCK_WIDTH}").view(np.uint64)


def stock_check(ev: OrderEvents, ref: RefData, inst_idx: np.ndarray) -> Check:
    """The OUCH stock of the message (Enter, Accepted, Replaced) and of the order's Enter must be
    the symbol reference data gives for the journaled symbol_id: otherwise the row would carry
    another instrument's ISIN."""
    c = ev.cols
    symbols = np.array([i.symbol.ljust(OUCH_STOCK_WIDTH).encode() for i in ref.sorted_values("instruments")]
                       + [b""], dtype=f"S{OUCH_STOCK_WIDTH}")
    expected = symbols[inst_idx]          # inst_idx -1 picks the trailing b"" (unknown instrument)
    known = inst_idx >= 0
    # compared as 8-byte words: equal words are equal NUL-padded strings, four times faster
    want = _words(expected)
    stock, order_stock = _words(c["stock"]), _words(c["order_stock"])
    own_bad = (stock != 0) & (stock != want)
    order_bad = (order_stock != 0) & (order_stock != want)
    bad = known & (own_bad | order_bad)

    def reason(rows):
        wire = np.where(own_bad[rows], c["stock"][rows], c["order_stock"][rows])
        return [f"OUCH stock {w.decode('ascii', 'replace').rstrip()!r} does not match symbol "
                f"{s.decode().rstrip()!r} of symbol_id {i} in instrument reference data"
                for w, s, i in zip(wire, expected[rows], c["symbol_id"][rows])]
    return mask_check("symbol", bad, reason)
