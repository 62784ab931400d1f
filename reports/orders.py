"""Order records: every order event of the firm (Delegated Regulation 2017/565 Annex IV, with RTS 24
event codes), with algo, desk, trader and client, UTC times with their source and clock state.

Owns the mapping from journal events to RTS 24 codes (NEWO, REME, CAME, PARF, FILL, EXPI, CAMO)
and the order-records table layout. A modification or cancellation is coded where the venue did
it (its Replaced or Order Modified: REME; its user-requested Canceled: CAME, or REME for a
reduction that leaves shares open), never on the firm's request, which the venue may overtake (a
fill before the cancel arrives leaves nothing cancelled): the firm's Replace, Cancel and Modify
rows keep their event_type and carry no RTS 24 code, as the venue's Accepted carries none (it
confirms the firm's NEWO). An order a crash recovery marked not sent (its Enter or Replace never
reached the venue: recovery_marks) keeps its rows, with recovery_status NOT_SENT on the firm's
messages of that order journaled before the resolution (and no NEWO: nothing reached the venue),
and the resolution's journal sequence in recovery_seq. So does a Cancel a recovery found unanswered
and sent again (resend-cancel): the venue never received that one (resent_cancels, which CAT's
rejected MECR uses too), and recovery_seq names the resolution; the Cancel sent again is an
ordinary row.

An order a crash recovery adopted from the venue (its ORDER_SENT lost with a torn journal tail:
reports/adoptions.py) is reported too: its venue messages (Accepted, Replaced, executions, cancels:
prices, quantities, times and match numbers as the venue sent them) and the recovery's Cancel, with
recovery_status ADOPTED and the adoption's RECON sequence in recovery_seq on every row of it. Its
origin is reconstructed, not the firm's: no NEWO row (the Enter and its send time were lost; the
venue's acceptance time bounds it above), its side, instrument and limit from the venue's terms, and
its algo, desk, trader, client, liquidity flag and validity null (only the lost ORDER_SENT held them),
which is why those columns are nullable in the report of a journal that holds an adoption (schema
orders-3; REQUIRED in Parquet otherwise, as before). A size-down the venue applied whose Modify the
journal lost (recovery_marks: adopt-modify) shows on the venue's Order Modified row (REME, its size
and side the venue's): recovery_status ADOPTED and the adoption's RECON sequence; the order's other
rows keep their journaled origin. A Cancel replay decided again whose ORDER_SENT the torn tail lost,
that the venue acted on (reports/redecided.py), has a firm's SENT_CANCEL row of its own at the RECON
record listing it (that record's sequence and time: its own send time was lost), recovery_status
ADOPTED with that sequence, its intended size null; the venue's answer keeps its code (CAME).

A venue answer a crash recovery journaled (venuetime: its clock, seconds or hours after the venue
acted), or a login's replay brought (made before that login was received), is timed by the venue's own OUCH timestamp: event_time_utc and the trade date are the
venue's time of that execution, acceptance, cancel, etc., and event_time_source names it
(venuetime.EVENT_SOURCES); the receipt stays in ts_recorded_ns (ts_source USER: UTC already).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from reports import arrowcols as ac
from reports import common, events, recovery_marks, resent_cancels, venuetime
from reports.events import EV
from reports.output import ReportOutput, TableCollector
from reports.redecided import JournalOrder, RedecidedCancels
from reports.refdata import RefData
from reports.source import JournalSlice
from reports.validate import REJECTS_SCHEMA, declare_required, split

KIND = "orders"
# 2: recovery_status, recovery_seq; 3: ADOPTED (parties nullable); 4: event_time_source
SCHEMA_VERSION = "orders-4"
RECOVERY_STATUSES = ["NOT_SENT", "ADOPTED"]

RTS24_CODES = ["NEWO", "REME", "CAME", "PARF", "FILL", "EXPI", "CAMO"]
_R = {c: i for i, c in enumerate(RTS24_CODES)}
VALIDITY_CODES = ["DAVY", "IOCV", "GTTV"]
SIDE_CODES = ["BUYI", "SELL"]
# OUCH cancel reasons: U user requested (confirms CAME), I IOC remainder and T timeout expire,
# anything else (supervisory, regulatory, self-match, system) is a cancel by market operations.
_EXPIRY_REASONS = (ord("I"), ord("T"))
# Never null in a kept row: built without nulls, or (time, instrument, side and validity, which
# need the event's UTC time or its creating order) null only in rows the checks reject; ORDER_TERMS
# too, unless the journal holds an adoption (null on an adopted order's rows: ADOPTED). Required
# columns carry no definition levels in Parquet: an orders run of a journal without one costs no more.
NOT_NULL = ("seq", "event_type", "origin", "order_id", "symbol_id", "symbol", "isin", "cfi", "segment_mic",
            "currency", "side", "order_type", "trading_capacity", "executing_entity_lei", "event_time_utc",
            "event_time_source", "ts_recorded_ns", "ts_source", "utc_basis", "utc_offset_s", "clock_state",
            "trade_date")
ORDER_TERMS = ("validity_period", "liquidity_provision", "algo_id", "desk_id", "trader_id", "client_id")


def rts24_event(ev: events.OrderEvents) -> tuple[np.ndarray, np.ndarray]:
    """(code index into RTS24_CODES, valid mask) per event."""
    c = ev.cols
    e = c["event"]
    code = np.zeros(len(e), dtype=np.int8)
    valid = np.zeros(len(e), dtype=bool)

    def put(mask, name):
        code[mask] = _R[name]
        valid[mask] = True

    put(e == EV["SENT_NEW"], "NEWO")
    put((e == EV["REPLACED"]) | (e == EV["ORDER_MODIFIED"]), "REME")
    by_firm = (e == EV["CANCELED"]) & (c["reason"] == ord("U"))
    put(by_firm & (c["leaves"] == 0), "CAME")
    put(by_firm & (c["leaves"] > 0), "REME")           # a reduction; leaves unknown: neither is claimed
    executed = (e == EV["EXECUTED"]) | (e == EV["EXECUTED_WITH_REF_PRICE"])
    put(executed & (c["leaves"] == 0), "FILL")
    put(executed & (c["leaves"] > 0), "PARF")        # leaves unknown (< 0): neither is claimed
    canceled = e == EV["CANCELED"]
    expired = canceled & np.isin(c["reason"], _EXPIRY_REASONS)
    put(expired, "EXPI")
    put((canceled & ~by_firm & ~expired) | (e == EV["AIQ_CANCELED"]), "CAMO")
    return code, valid


def validity(tif: np.ndarray) -> np.ndarray:
    return np.where(tif == 0, 1, np.where(tif >= 99998, 0, 2)).astype(np.int8, copy=False)


def base_table(ev: events.OrderEvents, ref: RefData, marks: recovery_marks.RecoveryMarks | None = None,
               lost: np.ndarray | None = None) -> tuple[pa.Table, list]:
    """The order-records table before validation, plus the checks to run on it (`marks`: the
    journal's recovery resolutions, recovery_marks.read; None: none; `lost`: the sequences of the
    Cancels that never reached the venue, resent_cancels.lost_seqs)."""
    c = ev.cols
    adopted = c["order_adopted"]           # its parties and validity: unknown, null
    inst_idx, inst_cols = common.instrument_columns(ref, c["symbol_id"])
    algo_idx, algo_code = common.party_code(ref, "algos", c["algo_id"], adopted)
    _, desk_code = common.party_code(ref, "desks", c["desk_id"], adopted)
    _, trader_code = common.party_code(ref, "traders", c["trader_id"], adopted)
    client_idx, client_code = common.party_code(ref, "clients", c["client_id"], adopted)
    algos = ref.sorted_values("algos")
    liquidity = np.array([a.liquidity_provision for a in algos] + [False], dtype=bool)[algo_idx]
    unknown = adopted if adopted.any() else None      # the mask of a party column (None: no nulls)

    def ids(name: str) -> pa.Array:
        return pa.array(c[name].astype(np.uint32, copy=False), mask=unknown)
    code, code_valid = rts24_event(ev)
    e = c["event"]
    not_sent = marks.not_sent if marks is not None else recovery_marks.no_marks()
    unsent = np.zeros(len(e), bool)
    if len(not_sent):
        unsent = (c["origin"] == 0) & not_sent.before(c["token_key"], c["seq"])
        code_valid &= ~unsent             # a NEWO never submitted to the venue
    resolved_at = np.zeros(len(e), np.int64)          # the resolution's journal sequence
    if unsent.any():
        resolved_at[unsent] = not_sent.seq[not_sent.find(c["token_key"][unsent])]
    if lost is not None and len(lost):
        # a Cancel a recovery found unanswered and sent again: the venue never received this one
        resent = (e == EV["SENT_CANCEL"]) & np.isin(c["seq"], lost)
        resolved_at[resent] = marks.resent_cancel.seq[marks.resent_cancel.find(c["token_key"][resent])]
        unsent |= resent
    status = np.zeros(len(e), np.int8)
    if unknown is not None:                           # the adoption's RECON record: its origin
        status[adopted] = RECOVERY_STATUSES.index("ADOPTED")
        resolved_at[adopted] = c["creator_seq"][adopted]
    marked = unsent | adopted
    if marks is not None and marks.modifies is not None and len(marks.modifies):
        # a venue's Order Modified whose Modify the journal lost: adopted by the RECON record before it
        modify_at = marks.adopted_modify(c["token_key"], c["seq"])
        modify_adopted = (modify_at > 0) & (e == EV["ORDER_MODIFIED"]) & (c["origin"] == 1)
        status[modify_adopted] = RECOVERY_STATUSES.index("ADOPTED")
        resolved_at[modify_adopted] = modify_at[modify_adopted]
        marked |= modify_adopted
    redecided = c.get("redecided")                    # a Cancel the venue acted on, its ORDER_SENT lost
    if redecided is not None:
        status[redecided] = RECOVERY_STATUSES.index("ADOPTED")
        resolved_at[redecided] = c["seq"][redecided]  # the RECON record that lists it: the row's own
        marked |= redecided
    venue = c["origin"] == 1
    executed = (e == EV["EXECUTED"]) | (e == EV["EXECUTED_WITH_REF_PRICE"])
    has_price = (e == EV["SENT_NEW"]) | (e == EV["SENT_REPLACE"]) | (e == EV["ACCEPTED"]) | (e == EV["REPLACED"])
    known = c["creator"] >= 0
    terms = known & ~adopted                          # the order's validity: its ORDER_SENT's
    firm = (c["origin"] == 0) & ~adopted
    n = len(ev)
    wire_side = np.where(events.CARRIES_SIDE[c["msg_type"]], c["wire_side"], c["order_wire_side"])
    columns = {
        "seq": pa.array(c["seq"].astype(np.uint64, copy=False)),
        "event_type": ac.codes(e, events.EVENT_NAMES),
        "rts24_event": ac.codes(code, RTS24_CODES, code_valid),
        "origin": ac.codes(c["origin"], ["FIRM", "VENUE"]),
        "order_id": ac.token_strings(c["token_key"]),
        "prior_order_id": ac.token_strings(c["prior_token_key"], (e == EV["SENT_REPLACE"]) | (e == EV["REPLACED"])),
        "venue_order_ref": pa.array(c["order_ref"].astype(np.uint64, copy=False), mask=~(c["order_ref"] > 0)),
        "symbol_id": pa.array(c["symbol_id"].astype(np.uint32, copy=False)),
        **inst_cols,
        "side": ac.codes((c["side"] != ord("B")).astype(np.int8, copy=False), SIDE_CODES, known),
        # the firm's messages: their own OUCH side (Enter, Modify), else the order's (a Replace or
        # Cancel carries none: its Enter's), null where unknown (an Enter cut before its side byte)
        "short_sale": pa.array(np.isin(wire_side, (ord("T"), ord("E"))), mask=~((c["origin"] == 0) & (wire_side != 0))),
        "order_type": ac.codes(np.zeros(n, np.int8), ["LMTO"]),
        "validity_period": ac.codes(validity(c["tif"]), VALIDITY_CODES, terms),
        "limit_price": ac.decimal(c["price"], 4, 18, has_price),
        # (a re-decided Cancel's intended size was only in its lost ORDER_SENT)
        "order_qty": pa.array(c["qty"], mask=~(has_price | (e == EV["SENT_CANCEL"]) | (e == EV["SENT_MODIFY"]))
                              | (redecided if redecided is not None else False)),
        "exec_qty": pa.array(c["exec_qty"], mask=~executed),
        "exec_price": ac.decimal(c["exec_price"], 4, 18, executed),
        "leaves_qty": pa.array(c["leaves"], mask=~(venue & (c["leaves"] >= 0))),
        "tvtic": pa.array(c["match"].astype(np.uint64, copy=False), mask=~executed),
        "cancel_decrement": pa.array(c["decrement"], mask=~((e == EV["CANCELED"]) | (e == EV["AIQ_CANCELED"]))),
        "venue_reason": ac.token_strings(c["reason"].astype(np.uint8, copy=False).view("S1"), c["reason"] > 0),
        "venue_ts_ns_since_midnight": pa.array(c["venue_ts"], mask=~venue),
        "trading_capacity": ac.codes(np.zeros(n, np.int8), [ref.firm.trading_capacity]),
        "liquidity_provision": pa.array(liquidity, mask=unknown),
        "executing_entity_lei": ac.codes(np.zeros(n, np.int8), [ref.firm.lei]),
        "algo_id": ids("algo_id"),
        "investment_decision_algo": algo_code,
        "execution_within_firm_algo": algo_code,
        "desk_id": ids("desk_id"),
        "desk_code": desk_code,
        "trader_id": ids("trader_id"),
        "trader_code": trader_code,
        "client_id": ids("client_id"),
        "client_code": client_code,
        # the creating ORDER_SENT's gateway verdict and state: none journaled for an adopted order
        "risk_verdict": pa.array(c["risk_verdict"].astype(np.uint8, copy=False), mask=~firm),
        "trading_state": pa.array(c["trading_state"].astype(np.uint8, copy=False), mask=~firm),
        "limits_version": pa.array(c["limits_version"].astype(np.uint32, copy=False), mask=~firm),
        **common.clock_columns(ev),
        # the record's time, or the venue's OUCH timestamp of an answer a recovery journaled later
        "event_time_source": common.time_source(ev, venuetime.EVENT_SOURCES),
        "recovery_status": ac.codes(status, RECOVERY_STATUSES, marked),
        "recovery_seq": ac.masked(resolved_at.astype(np.uint64, copy=False), marked),
        "trade_date": common.trade_date_column(ev.utc.utc_ns, ev.utc.valid),
    }
    table = pa.table(columns)
    return table, common.event_checks(table, ev, ref, inst_idx, algo_idx, client_idx)


def stream(src: JournalSlice, ref: RefData, sink) -> ReportOutput:
    """Build the order records chunk by chunk (bounded memory), handing each chunk's kept rows to
    `sink.add("order_events", table)`; returns the rejects (and no whole tables)."""
    rejects = []
    with ThreadPoolExecutor(max_workers=1) as aside:      # the RECON records, beside the first decode
        marks = aside.submit(recovery_marks.read, src.reader)
        redecided = in_order = None
        timing = venuetime.venue_timing(src.reader, src.last_seq)

        def add(kept: pa.Table | None) -> None:
            if kept is not None:
                sink.add("order_events", declare_required(kept, NOT_NULL + (() if marks.result().adopted else ORDER_TERMS)))
        for chunk in events.collect_chunks(src):
            if redecided is None:
                redecided = RedecidedCancels(marks.result().redecided, src.first_seq, src.last_seq)
                # a re-decided Cancel's row is made with its answer: journal order holds rows back
                in_order = JournalOrder(redecided.answered_ahead(src))
            upto = int(chunk.cols["seq"][-1]) if len(chunk) else None
            chunk = common.with_venue_times(redecided.add_rows(chunk), timing)
            ev = common.select_trade_date(chunk, src.selection.trade_date)
            table, checks = base_table(ev, ref, marks.result(),
                                       resent_cancels.lost_seqs(src, ev.cols, marks.result().resent_cancel))
            del ev, chunk           # the event arrays are now in the table; free the rest early
            kept, rejected = split(table, KIND, "order_events", checks)
            add(in_order.release(kept, upto))
            if rejected.num_rows:
                rejects.append(rejected)
        if in_order is not None:
            add(in_order.finish())
    return ReportOutput(kind=KIND, schema_version=SCHEMA_VERSION, tables={},
                        rejects=pa.concat_tables(rejects) if rejects else REJECTS_SCHEMA.empty_table())


def build(src: JournalSlice, ref: RefData) -> ReportOutput:
    """The whole report in memory (tests, benchmarks); `run` streams it to disk instead."""
    collector = TableCollector()
    report = stream(src, ref, collector)
    report.tables.update(collector.tables())
    return report
