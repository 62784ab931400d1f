"""Journal records and engine inputs, both ways: the ORDER_SENT payload the runner packs for
each order (in one struct call), the engine time of a stamp (PHC stamps are TAI), and
engine_events(), which turns a journal's records back into the inputs the runner fed, in
order, for replay and recovery. Must not read or write a journal itself: callers hand records in.
"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator

from audit.health import PROFILES
from audit.phc import leap_utc_ns, phc_leap, phc_offset
from journal.catalogue import (
    PAYLOAD_DTYPES, RAW_ORDER_MAX, RecordType, TsSource, layout_struct, pack, unpack, unpack_json,
    venue_fields,
)
from mm_core.events import (
    ClockSample, JournalHealth, MarketData, OperatorCommand, Reconciled, SendOrder, Timer,
    market_data_of, timer_of, venue_message_of,
)

__all__ = ["TAI_MINUS_UTC_S", "engine_time", "order_sent_payload", "market_data_event", "engine_events"]

_HEALTH = "journal-health"           # METRICS {"input": ...}: a JournalHealth fed to the engine
# METRICS {"input": ...} records the engine hears as they are journaled (engine_events):
_RUN_START = "run-start"             # a run began: JournalHealth(ok) and, fresh, Reconciled(True)
_LINK_LOST = "order-entry-dead"      # closed, reset, mis-framed, silent or a send failed: Reconciled(False)
TAI_MINUS_UTC_S = 37      # TAI - UTC in force since 2017-01-01 (IERS), until a clock sample says it
_PHC_SOURCES = frozenset({TsSource.HW_PHC, TsSource.HW_PHC_BY})


def engine_time(ts_ns: int, source: int, utc_offset_s: int, utc_leap: int = 0) -> int:
    """The engine's (UTC) time of an input its record stamps ts_ns by `source`: a NIC's PHC stamp
    is TAI, so the UTC offset in force — that of the last journaled clock sample that set one
    (audit.phc.phc_offset: 0 when the GM is on the ARB timescale, whose PHC is taken as is), else
    TAI_MINUS_UTC_S — is taken off, and that sample's leap flag (audit.phc.phc_leap) applied as
    the reports apply it (audit.phc.leap_utc_ns); every other stamp is CLOCK_REALTIME (UTC)
    already. The record keeps the raw stamp; the runner and engine_events convert alike, so
    replay is exact."""
    if source not in _PHC_SOURCES:
        return ts_ns
    utc_ns = ts_ns - utc_offset_s * 1_000_000_000
    return leap_utc_ns(utc_ns, utc_leap) if utc_leap else utc_ns


_ORDER_SENT_FIELDS = ("token", "orig_token", "msg_type", "side", "tif", "symbol_id", "price", "qty",
                      "algo_id", "desk_id", "trader_id", "client_id", "risk_verdict", "trading_state",
                      "limits_version", "tskey", "raw_len", "raw")


def _positional(rtype: RecordType, names: tuple[str, ...]):
    """The one-call packer of a layout whose fields the caller passes in this order."""
    if PAYLOAD_DTYPES[rtype].names != names:
        raise ImportError(f"the {rtype.name} layout changed: update mm_core.runner's packing of it")
    return layout_struct(rtype).pack


_ORDER_SENT_PACK = _positional(RecordType.ORDER_SENT, _ORDER_SENT_FIELDS)
_TX_TS_PACK = _positional(RecordType.TX_TS, ("order_seq", "tskey", "status", "source", "tx_ts_ns"))


def order_sent_payload(action: SendOrder, tskey: int) -> bytes:
    """The ORDER_SENT payload of an order, byte for byte what pack(RecordType.ORDER_SENT, ...)
    gives, in one positional struct call (the send path packs one per order); pack() itself for
    what it alone handles (a raw packet longer than its field: its error; a value struct refuses)."""
    intent, packet = action.intent, action.packet
    fields = (intent.token.encode(), intent.orig_token.encode(), packet[3], int(intent.side), intent.tif,
              intent.symbol_id, intent.price, intent.qty, intent.algo_id, intent.desk_id,
              intent.trader_id, intent.client_id, 1, action.trading_state,
              getattr(action.decision, "limits_version", 0), tskey, len(packet), packet)
    if len(packet) <= RAW_ORDER_MAX:
        try:
            return _ORDER_SENT_PACK(*fields)
        except struct.error:
            pass
    return pack(RecordType.ORDER_SENT, **dict(zip(_ORDER_SENT_FIELDS[:-2], fields[:-2])), raw=packet)


_TS_SOURCES = {int(s): s for s in TsSource}     # TsSource(x) without the enum call per record
_positional(RecordType.TIMER, ("timer_id", "now_ns"))    # engine_events reads TIMER in this order
_TIMER = layout_struct(RecordType.TIMER)
_TIMER_SIZE = PAYLOAD_DTYPES[RecordType.TIMER].itemsize


def _ts_source(value: int) -> TsSource:
    source = _TS_SOURCES.get(value)
    return source if source is not None else TsSource(value)


def market_data_event(rec, utc_offset_s: int = TAI_MINUS_UTC_S, utc_leap: int = 0) -> MarketData:
    """The engine input of an MD_PACKET record (engine_events' mapping; replay's batch path, which
    batches no PHC-stamped packet); `utc_offset_s` and `utc_leap` as engine_time takes them."""
    source = _ts_source(rec.ts_source)
    return market_data_of(rec.payload, engine_time(rec.ts_ns, source, utc_offset_s, utc_leap), source)


# record types as plain ints: engine_events compares every record's type (an enum member's
# attribute lookup costs more than the compare)
_MD_T, _VENUE_T, _VENUE_LONG_T, _TIMER_T, _CLOCK_T, _OPERATOR_T, _METRICS_T = map(int, (
    RecordType.MD_PACKET, RecordType.VENUE_MSG, RecordType.VENUE_MSG_LONG, RecordType.TIMER,
    RecordType.CLOCK_SAMPLE, RecordType.OPERATOR_CMD, RecordType.METRICS))
_INPUT_TEXT = b'"input": '                  # in every METRICS input record (json.dumps' spacing)
_FED_TYPES = frozenset((_MD_T, _VENUE_T, _VENUE_LONG_T, _TIMER_T, _CLOCK_T, _OPERATOR_T))
_RECON_T = int(RecordType.RECON)


def _metrics_input(payload: bytes) -> str:
    """The "input" of a METRICS record the engine hears ("" for notes and alerts)."""
    if _INPUT_TEXT not in payload:
        return ""
    doc = unpack_json(payload)
    return doc.get("input", "") if isinstance(doc, dict) else ""


def engine_events(records: Iterable, profile: str = "eu-hft", fresh_session: bool = True,
                  utc_offset_s: int = TAI_MINUS_UTC_S, resumed: bool = False, utc_leap: int = 0) -> Iterator:
    """The engine inputs a journal holds, in journal order, for replay through a fresh engine.

    records: journal.Reader records (seq, rtype, ts_ns, ts_source, clock_state, payload). Facts
    the runner feeds are METRICS records {"input": ...} it wrote: "run-start" (the journal is
    healthy and, for a fresh session, nothing needs reconciling), "journal-health" (a change of
    it), "order-entry-dead" (the link died: not reconciled). A journal whose first input comes
    before any "run-start" (written before runners journaled their start) gets the start facts
    at its first record's time, `fresh_session` saying whether Reconciled(True) is one of them;
    none when a RECON record comes first (a recovery took over a session that never ran: its
    engine, built from the records before, had none). `resumed`: the records go on from a
    snapshot, which holds the facts before them.
    `utc_offset_s`, `utc_leap`: the UTC offset and leap flag in force before the first record (a
    resumed replay's snapshot's).
    """
    bit = 1 << PROFILES[profile].bit
    offset = utc_offset_s              # the UTC offset in force (engine_time), as the runner had it
    leap = utc_leap                    # and its leap flag
    owed = not resumed                 # the start facts, until the first input or run-start record
    first_ts = None
    for rec in records:
        rtype = rec.rtype
        if owed:
            if first_ts is None:
                first_ts = rec.ts_ns
            kind = _metrics_input(rec.payload) if rtype == _METRICS_T else ""
            if kind or rtype in _FED_TYPES or rtype == _RECON_T:
                owed = False
                if kind != _RUN_START and rtype != _RECON_T:
                    yield JournalHealth(first_ts, True)
                    if fresh_session:
                        yield Reconciled(first_ts, True)
        if rtype == _MD_T:
            yield market_data_event(rec, offset, leap)
        elif rtype == _VENUE_T or rtype == _VENUE_LONG_T:
            source = _ts_source(rec.ts_source)
            yield venue_message_of(venue_fields(rtype, rec.payload)[3],
                                   engine_time(rec.ts_ns, source, offset, leap), source)
        elif rtype == _TIMER_T:
            payload = rec.payload
            if len(payload) == _TIMER_SIZE:     # one struct call, not a numpy record per timer
                timer_id, now_ns = _TIMER.unpack(payload)
                yield timer_of(now_ns, timer_id)
            else:
                timer = unpack(RecordType.TIMER, payload)      # its error
                yield Timer(int(timer["now_ns"]), int(timer["timer_id"]))
        elif rtype == _CLOCK_T:
            sample = unpack(RecordType.CLOCK_SAMPLE, rec.payload)
            sets, value = phc_offset(sample)
            if sets:
                offset = int(value)
                leap = int(phc_leap(sample))
            yield ClockSample(rec.ts_ns, bool(int(sample["compliant_mask"]) & bit))
        elif rtype == _OPERATOR_T:
            doc = unpack_json(rec.payload)
            yield OperatorCommand(rec.ts_ns, doc["command"], doc["actor"], doc["reason"],
                                  doc.get("scope", "all"), doc.get("scope_id", 0))
        elif rtype == _METRICS_T and _INPUT_TEXT in rec.payload:
            doc = unpack_json(rec.payload)
            kind = doc.get("input") if isinstance(doc, dict) else None
            if kind == _HEALTH:
                yield JournalHealth(rec.ts_ns, bool(doc["ok"]), tuple(doc.get("unsent") or ()))
            elif kind == _RUN_START:
                yield JournalHealth(rec.ts_ns, bool(doc["journal_ok"]))
                if doc["reconciled"]:
                    yield Reconciled(rec.ts_ns, True)
            elif kind == _LINK_LOST:
                yield Reconciled(rec.ts_ns, False)
