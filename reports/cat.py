"""CAT (SEC Rule 613) order events for the firm's own orders, with CAT's field names: MENO (new
order) and MEOR (route to the exchange) for each order entered, MEOM for replaces and modifies,
MEOC for cancels (full, or partial with leavesQty > 0), and MEOT only for executions on venues
that are not exchanges (exchanges report their own; see `cat_exchange` in mics.toml, default true).

Owns the event mapping and CAT text formats: Eastern-Time timestamps `YYYYMMDD HHMMSS.CCCNNNNNN`,
dates as YYYYMMDD. Does not write the CAT JSON/bz2 submission files.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journal.catalogue import RecordType
from reports import arrowcols as ac
from reports import common, events
from reports.events import EV
from reports.output import ReportOutput
from reports.refdata import RefData
from reports.source import JournalSlice
from reports.timebase import to_utc
from reports.validate import split

KIND = "cat"
SCHEMA_VERSION = "cat-4.0.0-r18-subset-1"
CAT_TYPES = ["MENO", "MEOR", "MEOM", "MEOC", "MEOT"]
SIDES = {ord("B"): "B", ord("S"): "SL", ord("T"): "SS", ord("E"): "SX"}


def eastern(utc_ns: np.ndarray, valid: np.ndarray) -> pa.Array:
    ts = ac.timestamp_utc(utc_ns, valid).cast(pa.timestamp("ns", tz="America/New_York"))
    return pc.strftime(ts, format="%Y%m%d %H%M%S")


def _rows_for(ev: events.OrderEvents, ref: RefData) -> tuple[np.ndarray, np.ndarray]:
    """(event row index, CAT type index) pairs; an entered order yields MENO and MEOR."""
    e = ev.cols["event"]
    executed = (e == EV["EXECUTED"]) | (e == EV["EXECUTED_WITH_REF_PRICE"])
    inst_idx = ref.instrument_index(ev.cols["symbol_id"])
    off_exchange = np.array([not ref.mics.get(i.mic, {}).get("cat_exchange", True)
                             for i in ref.sorted_values("instruments")] + [False], dtype=bool)[inst_idx]
    picks = [
        (np.flatnonzero(e == EV["SENT_NEW"]), 0), (np.flatnonzero(e == EV["SENT_NEW"]), 1),
        (np.flatnonzero((e == EV["SENT_REPLACE"]) | (e == EV["SENT_MODIFY"])), 2),
        (np.flatnonzero(e == EV["SENT_CANCEL"]), 3),
        (np.flatnonzero(executed & off_exchange), 4),
    ]
    rows = np.concatenate([p[0] for p in picks])
    types = np.concatenate([np.full(len(p[0]), p[1], np.int8) for p in picks])
    order = np.lexsort((types, rows))       # journal order; MENO before MEOR for the same order
    return rows[order], types[order]


def build_table(ev: events.OrderEvents, ref: RefData, venue_session: str | None) -> tuple[pa.Table, list]:
    rows, types = _rows_for(ev, ref)
    ev = ev.take(rows)
    c = ev.cols
    n = len(ev)
    inst_idx, inst_cols = common.instrument_columns(ref, c["symbol_id"])
    algo_idx, _ = common.party_code(ref, "algos", c["algo_id"])
    client_idx, client_code = common.party_code(ref, "clients", c["client_id"])
    _, desk_code = common.party_code(ref, "desks", c["desk_id"])
    desk_code, client_code = ac.plain(desk_code), ac.plain(client_code)
    clients = ref.sorted_values("clients")
    own = np.array([p.kind == "OWN" for p in clients] + [False], dtype=bool)[client_idx]
    key_utc = to_utc(c["creator_seq"], c["creator_ts_ns"], c["creator_ts_source"], ev.samples)
    event_ts = eastern(ev.utc.utc_ns, ev.utc.valid)
    t = types
    is_new, is_route, is_mod, is_cancel, is_trade = (t == 0), (t == 1), (t == 2), (t == 3), (t == 4)
    side = np.full(n, None, dtype=object)
    for byte, code in SIDES.items():
        side[c["order_wire_side"] == byte] = code
    tif = np.where(c["tif"] == 0, "IOC", None).astype(object)
    day = pc.strftime(ac.timestamp_utc(ev.utc.utc_ns, ev.utc.valid).cast(pa.timestamp("ns", tz="America/New_York")),
                      format="%Y%m%d")
    tif_col = pc.if_else(pa.array(tif == "IOC"), pa.scalar("IOC"),
                         pc.binary_join_element_wise(pa.scalar("DAY="), day, ""))
    fdid = pc.if_else(pa.array(own), pc.binary_join_element_wise(pa.scalar("PROP-"), desk_code, ""), client_code)
    with_terms = is_new | is_mod
    token = ac.token_strings(c["token_key"])
    cols = {
        "seq": pa.array(c["seq"].astype(np.uint64, copy=False)),
        "type": ac.codes(t, CAT_TYPES),
        "actionType": ac.codes(np.zeros(n, np.int8), ["NEW"]),
        "firmROEID": pc.binary_join_element_wise(pc.utf8_slice_codeunits(event_ts, 0, 8),
                                                 pc.cast(pa.array(c["seq"].astype(np.uint64, copy=False)), pa.string()),
                                                 ac.plain(ac.lookup_strings(t, CAT_TYPES)), "_"),
        "CATReporterIMID": ac.codes(np.zeros(n, np.int8), [ref.firm.cat_imid]),
        "orderKeyDate": eastern(key_utc.utc_ns, key_utc.valid),
        "orderID": token,
        "priorOrderID": ac.token_strings(c["prior_token_key"], is_mod & (c["event"] == EV["SENT_REPLACE"])),
        "symbol": inst_cols["symbol"],
        "eventTimestamp": event_ts,
        "manualFlag": pa.array(np.zeros(n, bool)),
        "electronicDupFlag": pa.array(np.zeros(n, bool)),
        "deptType": ac.codes(np.zeros(n, np.int8), ["T"], with_terms),
        "side": pa.array(side, pa.string()),
        "price": common.price_text(np.where(is_trade, c["exec_price"], c["price"]), with_terms | is_trade),
        "quantity": pa.array(np.where(is_trade, c["exec_qty"], c["qty"]), mask=~(with_terms | is_trade)),
        "orderType": ac.codes(np.zeros(n, np.int8), ["LMT"], with_terms),
        "timeInForce": pc.if_else(pa.array(with_terms), tif_col, pa.scalar(None, pa.string())),
        "tradingSession": ac.codes(np.zeros(n, np.int8), ["REG"], with_terms),
        "firmDesignatedID": pc.if_else(pa.array(is_new), fdid, pa.scalar(None, pa.string())),
        "accountHolderType": ac.codes(np.where(own, 0, 1), ["P", "I"], is_new),
        "representativeInd": ac.codes(np.zeros(n, np.int8), ["N"], is_new),
        "senderIMID": ac.codes(np.zeros(n, np.int8), [ref.firm.cat_imid], is_route),
        "destination": pc.if_else(pa.array(is_route), ac.plain(inst_cols["segment_mic"]), pa.scalar(None, pa.string())),
        "destinationType": ac.codes(np.zeros(n, np.int8), ["E"], is_route),
        "routedOrderID": pc.if_else(pa.array(is_route), token, pa.scalar(None, pa.string())),
        "session": pa.array([venue_session] * n if venue_session else [None] * n, pa.string()),
        # OUCH Cancel carries the new intended size: cancelled = open quantity - new size
        "cancelQty": pa.array(c["leaves"] - c["qty"], mask=~(is_cancel & (c["leaves"] >= c["qty"]))),
        "leavesQty": pa.array(c["qty"], mask=~is_cancel),
        "initiator": ac.codes(np.zeros(n, np.int8), ["F"], is_cancel),
        "tradeID": pa.array(c["match"].astype(np.uint64, copy=False), mask=~is_trade).cast(pa.string()),
        "trade_date": common.trade_date_column(ev.utc.utc_ns, ev.utc.valid),
    }
    table = pa.table(cols)
    checks = common.event_checks(table.append_column("isin", inst_cols["isin"])
                                 .append_column("segment_mic", inst_cols["segment_mic"]),
                                 ev, ref, inst_idx, algo_idx, client_idx)
    return table, checks


def _venue_session(src: JournalSlice) -> str | None:
    starts = src.fixed_before(RecordType.SESSION_START)
    if len(starts) == 0:
        return None
    return starts["venue_session"][-1].decode(errors="replace").strip() or None


def build(src: JournalSlice, ref: RefData) -> ReportOutput:
    ev = common.select_trade_date(events.collect(src), src.selection.trade_date)
    table, checks = build_table(ev, ref, _venue_session(src))
    kept, rejects = split(table, KIND, "order_events", checks)
    return ReportOutput(kind=KIND, schema_version=SCHEMA_VERSION, tables={"order_events": kept}, rejects=rejects)
