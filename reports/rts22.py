"""MiFIR RTS 22 (Delegated Regulation 2017/590) transaction reports: one row per execution of the
firm (report status NEWT) and one per execution the venue breaks (OUCH Broken Trade: status CANC
with the original TRN; rejected when that execution's NEWT was, as nothing was reported); a venue
Trade or Price Correction (OUCH F, K) cancels the report in force and restates the corrected
transaction (corrections.py); all 65 Annex I Table 2 fields as columns (null where not
applicable) in the text formats RTS 22 sets, and the ISO 20022 auth.016.001.01 XML export of the
same rows. Field 28 of an execution a crash recovery journaled (or a login's replay brought) is the
venue's own execution time (venuetime.py), and a column beside the fields (f28_trading_date_time_source) says which it is.

An execution of an order a crash recovery adopted from the venue (its ORDER_SENT lost with a torn
journal tail: reports/adoptions.py) is built like any other: TVTIC, quantity, price and field 28
from the venue's Executed, instrument, side and short-selling indicator (62) from the venue's terms
the RECON record holds, with order_origin RECOVERY_ADOPTED and order_origin_recon_seq (the RECON
record, the evidence) beside the fields. Fields 57 and 59 name the algo that took the investment
decision and executed it: only the lost ORDER_SENT said which, and nothing else in the journal does,
so such a row is rejected for field 57 with that reason (fields 57 and 59 are mandatory), never
reported with a guessed algo; the rejects row carries its sequence for a person to complete it.

Owns the field list and how each field is filled for a firm dealing on own account on a venue.
Fields 42-56 are filled only for instruments not in FIRDS, as ESMA's validation rules ask.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journal.catalogue import PAYLOAD_DTYPES, RecordType
from reports import arrowcols as ac
from reports import auth016, common, corrections, events, numtext, ouch, side_in_force, venuetime
from reports.events import EV
from reports.identifiers import currency_problem, isin_problem, lei_problem, mic_problem, cfi_problem
from reports.output import ReportOutput, TableCollector
from reports.refdata import RefData
from reports.source import JournalSlice, Selection
from reports.timebase import UtcTimes, to_utc
from reports.validate import REJECTS_SCHEMA, mask_check, required_check, split, value_check, xml_text_checks

KIND = "rts22"
# 2: f28_trading_date_time_source, corrections; 3: order_origin, order_origin_recon_seq
SCHEMA_VERSION = "rts22-2017/590-auth.016.001.01-3"
ORIGINS = ["ORDER_SENT", "RECOVERY_ADOPTED"]        # order_origin: not an RTS 22 field

# (field number, column suffix) for the 65 fields of RTS 22 Annex I Table 2.
FIELDS: tuple[tuple[int, str], ...] = (
    (1, "report_status"), (2, "transaction_reference_number"),
    (3, "trading_venue_transaction_id"), (4, "executing_entity_id"),
    (5, "investment_firm_covered"), (6, "submitting_entity_id"),
    (7, "buyer_id"), (8, "buyer_branch_country"), (9, "buyer_first_names"), (10, "buyer_surnames"),
    (11, "buyer_birth_date"), (12, "buyer_decision_maker_id"), (13, "buyer_decision_maker_first_names"),
    (14, "buyer_decision_maker_surnames"), (15, "buyer_decision_maker_birth_date"),
    (16, "seller_id"), (17, "seller_branch_country"), (18, "seller_first_names"), (19, "seller_surnames"),
    (20, "seller_birth_date"), (21, "seller_decision_maker_id"), (22, "seller_decision_maker_first_names"),
    (23, "seller_decision_maker_surnames"), (24, "seller_decision_maker_birth_date"),
    (25, "transmission_of_order_indicator"), (26, "transmitting_firm_id_buyer"),
    (27, "transmitting_firm_id_seller"), (28, "trading_date_time"), (29, "trading_capacity"),
    (30, "quantity"), (31, "quantity_currency"), (32, "derivative_notional_change"), (33, "price"),
    (34, "price_currency"), (35, "net_amount"), (36, "venue"), (37, "branch_membership_country"),
    (38, "up_front_payment"), (39, "up_front_payment_currency"), (40, "complex_trade_component_id"),
    (41, "instrument_id"), (42, "instrument_full_name"), (43, "instrument_classification"),
    (44, "notional_currency_1"), (45, "notional_currency_2"), (46, "price_multiplier"),
    (47, "underlying_instrument_code"), (48, "underlying_index_name"), (49, "underlying_index_term"),
    (50, "option_type"), (51, "strike_price"), (52, "strike_price_currency"), (53, "option_exercise_style"),
    (54, "maturity_date"), (55, "expiry_date"), (56, "delivery_type"),
    (57, "investment_decision_within_firm"), (58, "investment_decision_branch_country"),
    (59, "execution_within_firm"), (60, "execution_branch_country"), (61, "waiver_indicator"),
    (62, "short_selling_indicator"), (63, "otc_post_trade_indicator"),
    (64, "commodity_derivative_indicator"), (65, "securities_financing_transaction_indicator"),
)
COLUMNS = {num: f"f{num:02d}_{name}" for num, name in FIELDS}
BOOLEAN_FIELDS = frozenset({5, 25, 64, 65})
REQUIRED = (2, 3, 4, 6, 7, 16, 28, 29, 30, 33, 34, 36, 41, 57, 59)

_SHORT = {ord("T"): "SESH", ord("E"): "SSEX", ord("S"): "SELL"}


_NO_ALGO = ("fields 57 (investment decision within firm) and 59 (execution within firm) name the algo that "
            "decided and executed it, which only that ORDER_SENT held: none is guessed, so this transaction is not "
            "reported until they are known")
_TEXT_CODES = pa.dictionary(pa.int32(), pa.string())     # the type ac.codes and ac.lookup_strings give


def _constant(value, n: int) -> pa.Array:
    """The same value on every row: booleans as such, text as a one-entry dictionary (no string
    per row to build, and the Parquet writer stores the dictionary as it is, with no hashing)."""
    if isinstance(value, bool):
        return pa.repeat(pa.scalar(value, pa.bool_()), n)
    if value is None:
        return pa.nulls(n, _TEXT_CODES)
    return ac.codes(np.zeros(n, np.int8), [value])


def build_table(ev: events.OrderEvents, ref: RefData, journal_id: str) -> tuple[pa.Table, list]:
    """The chunk's transactions (one row per execution) and the checks its rows must pass. Text
    fields with few distinct values (codes, identifiers, reference data) are dictionary columns
    whose dictionaries come from reference data, the same for every chunk; per-row text (TRN,
    match id, quantity, price, time) is laid out in numpy."""
    c = ev.cols
    n = len(ev)
    firm = ref.firm
    instruments = ref.sorted_values("instruments")
    inst_idx = ref.instrument_index(c["symbol_id"])

    def instrument(field, rows=inst_idx):        # a reference-data field per row, as a dictionary column
        return ac.lookup_strings(rows, [field(i) for i in instruments])
    inst_cols = {"isin": instrument(lambda i: i.isin), "segment_mic": instrument(lambda i: i.mic),
                 "currency": instrument(lambda i: i.currency)}
    adopted = c["order_adopted"]                 # its algo is unknown: fields 57, 59 null, rejected
    algo_idx, algo_code = common.party_code(ref, "algos", c["algo_id"], adopted)
    client_idx = ref.party_index("clients", c["client_id"])
    off_firds = np.array([not i.in_firds for i in instruments] + [False], dtype=bool)[inst_idx]
    buy = c["side"] == ord("B")
    mic = inst_cols["segment_mic"]
    # buyer / seller: the firm's LEI on its own side, the segment MIC (anonymous venue) on the other
    firm_slot = len(instruments)
    parties = [i.mic for i in instruments] + [firm.lei]
    # TRN {ALPHANUM-52}, uppercase alphanumerics: the journal id (32 hex) + 20-digit sequence.
    trn = numtext.padded_text(c["seq"].astype(np.uint64, copy=False), 20, journal_id[:32].upper().encode("ascii"))
    short = np.zeros(n, np.int8)
    has_short = np.zeros(n, bool)
    for k, byte in enumerate(_SHORT):            # loop over the 3 codes, not rows
        rows = (~buy) & (c["order_wire_side"] == byte)
        short[rows] = k
        has_short |= rows
    off_idx = np.where(off_firds, inst_idx, -1)

    def off(field):                              # fields 42-56: only for instruments not in FIRDS
        return instrument(field, off_idx)

    values: dict[int, pa.Array] = {
        1: _constant("NEWT", n), 2: trn,
        3: numtext.integer_text(c["match"].astype(np.uint64, copy=False)),
        4: _constant(firm.lei, n), 5: _constant(firm.investment_firm, n), 6: _constant(firm.submitting_lei, n),
        7: ac.lookup_strings(np.where(buy, firm_slot, inst_idx), parties),
        16: ac.lookup_strings(np.where(buy, inst_idx, firm_slot), parties),
        25: _constant(False, n),
        28: common.rts_datetime(ev.utc.utc_ns, ev.utc.valid),
        29: _constant(firm.trading_capacity, n),
        30: numtext.integer_text(c["exec_qty"]),
        33: numtext.scaled_text(c["exec_price"], 4),
        34: inst_cols["currency"], 36: mic, 37: _constant(firm.branch_country, n), 41: inst_cols["isin"],
        42: off(lambda i: i.full_name), 43: off(lambda i: i.cfi), 44: off(lambda i: i.currency),
        46: off(lambda i: str(i.price_multiplier)),
        57: algo_code, 59: algo_code,
        62: ac.codes(short, list(_SHORT.values()), valid=has_short),
        64: _constant(False, n), 65: _constant(False, n),
    }
    cols = {"seq": pa.array(c["seq"].astype(np.uint64, copy=False))}
    for num, _ in FIELDS:
        cols[COLUMNS[num]] = values.get(num, pa.nulls(n, pa.bool_() if num in BOOLEAN_FIELDS else pa.string()))
    cols["trade_date"] = common.trade_date_column(ev.utc.utc_ns, ev.utc.valid)
    # where field 28 comes from: the record's own time, or (a recovery journaled the message
    # later, at its own clock) the venue's execution timestamp (common.with_venue_times): RTS 22
    # field 28 is "the date and time when the transaction was executed" (Annex I Table 2)
    cols[TIME_SOURCE] = common.time_source(ev)
    cols["order_origin"] = ac.codes(adopted.astype(np.int8), ORIGINS)
    cols["order_origin_recon_seq"] = ac.masked(c["creator_seq"].astype(np.uint64, copy=False), adopted)
    table = pa.table(cols)

    known = inst_idx >= 0
    checks = common.event_checks(table.append_column("isin", inst_cols["isin"])
                                 .append_column("segment_mic", mic), ev, ref, inst_idx, algo_idx, client_idx)
    checks = [ck for ck in checks if ck[0] not in ("isin", "segment_mic")]   # re-checked as fields below
    checks += [required_check(table, COLUMNS[num], when=known if num in (34, 36, 41) else ~adopted if num in (57, 59)
                              else None) for num in REQUIRED]
    checks.append(mask_check(COLUMNS[57], adopted, common.adopted_reasons(c, _NO_ALGO)))
    active = ref.active_mics
    checks += [
        value_check(table, COLUMNS[4], lei_problem), value_check(table, COLUMNS[6], lei_problem),
        value_check(table, COLUMNS[7], lambda v: _party_problem(v, active), when=known),
        value_check(table, COLUMNS[16], lambda v: _party_problem(v, active), when=known),
        value_check(table, COLUMNS[36], lambda v: mic_problem(v, active), when=known),
        value_check(table, COLUMNS[41], isin_problem, when=known),
        value_check(table, COLUMNS[34], currency_problem, when=known),
        value_check(table, COLUMNS[43], cfi_problem, when=known & off_firds),
    ]
    checks.append(common.order_side_check(ev))    # buyer/seller and field 62 need the order's side
    checks += xml_text_checks(table)         # the auth.016 export carries every text field
    return table, checks


def corrected_rows(changes: events.OrderEvents, ref: RefData, journal_id: str, ex: dict) -> tuple[pa.Table, list]:
    """NEWT rows for the venue's Trade and Price Corrections `changes` (`ex`: corrections.chains of
    these rows): the corrected transaction, with the correction's own TRN, the corrected quantity
    and price (a Price Correction keeps the shares of the report it corrects), and the execution's
    trading time (its trade date too): the trade was executed then, and corrected later. One whose
    report the journal does not hold, or whose execution was broken, is rejected."""
    ev = changes.take(np.arange(len(changes)))
    ev.cols["exec_qty"], ev.cols["exec_price"] = ex["qty"], ex["price"]
    ev.cols[FROM_VENUE] = ex["from_venue"]
    u = ev.utc
    ev.utc = UtcTimes(np.where(ex["found"], ex["utc_ns"], u.utc_ns), np.where(ex["found"], ex["valid"], u.valid),
                      u.basis, u.utc_offset_s, u.sample_index)
    table, checks = build_table(ev, ref, journal_id)
    ok = ex["found"] & ex["first"]
    return table, checks + [mask_check(COLUMNS[30], ~ok, "a correction of an execution the journal does not "
                                       "hold, or that the venue broke before: no transaction to restate")]


def _party_problem(value: str | None, active: frozenset[str]) -> str | None:
    """Buyer/seller id: an LEI (20 chars) or, for an anonymous venue counterparty, a MIC."""
    if value is not None and len(value) == 4:
        return mic_problem(value, active)
    return lei_problem(value)


TIME_SOURCE = "f28_trading_date_time_source"     # not an RTS 22 field: where field 28 comes from
FROM_VENUE = common.FROM_VENUE                  # event column: field 28 is the venue's own time


EXECUTIONS = (EV["EXECUTED"], EV["EXECUTED_WITH_REF_PRICE"])     # the events RTS 22 reports
# The venue's changes to an execution: Broken Trade cancels its report; Trade Correction and Price
# Correction cancel it and report the corrected transaction (a NEWT of its own TRN)
CHANGES = corrections.CHANGES
_CHANGE_NAMES = dict(zip(CHANGES, ("Broken Trade", "Trade Correction", "Price Correction")))
# What a cancellation row keeps besides field 1 (CANC): the cancelled report's TRN, the executing
# and submitting entities (what auth.016 <Cxl> carries), and the venue's trade id and trading time
# of the execution, so the row can be read on its own.
CANCEL_FIELDS = frozenset({2, 3, 4, 6, 28})


def _first_reasons(rejected: list[pa.Table], seqs: np.ndarray) -> dict[int, str]:
    """seq -> 'field: reason' of the first reject of each of the rows `seqs` among rejects tables
    (those rows picked first, in Arrow: the others may be many)."""
    wanted = pa.array(np.unique(seqs).astype(np.uint64))
    out: dict[int, str] = {}
    for table in rejected:
        table = table.filter(pc.is_in(table.column("seq"), value_set=wanted))
        for seq, name, reason in zip(*(table.column(k).to_pylist() for k in ("seq", "field", "reason"))):
            out.setdefault(seq, f"{name}: {reason}")
    return out


def _rejected_elsewhere(src: JournalSlice, ref: RefData, seqs: np.ndarray) -> dict[int, str]:
    """For executions (their sequences) whose reports another range or day made: the first reason
    each NEWT row is rejected, by the same rows and checks, decoded again from the journal (a pass
    over the executions between the first and the last of them; breaks are rare)."""
    part = JournalSlice(reader=src.reader, journal_id=src.journal_id, first_seq=int(seqs.min()),
                        last_seq=int(seqs.max()), selection=Selection())
    rejected = []
    for chunk in events.collect_chunks(part, only=EXECUTIONS, leaves=False):
        rows = np.flatnonzero(np.isin(chunk.cols["seq"], seqs))
        if len(rows):
            table, checks = build_table(chunk.take(rows), ref, src.journal_id)
            rejected.append(split(table, KIND, "transactions", checks)[1])
    return _first_reasons(rejected, seqs)


def unreported_executions(src: JournalSlice, ref: RefData, ex: dict, run_rejects: list[pa.Table]) -> np.ndarray:
    """Why no transaction report was made for each broken execution (`ex`: broken_executions): the
    first reason its NEWT row was rejected, None where it was reported (or is not in the journal).
    Executions this run reported come from its own rejects (`run_rejects`, NEWT rows only); the
    others (before the range, or on another trade date) are checked again."""
    seq = ex["seq"].astype(np.int64)
    in_run = (seq >= src.first_seq) & (seq <= src.last_seq)
    day = src.selection.trade_date
    if day is not None:
        in_run &= ~ex["valid"] | (ex["utc_ns"] // ac.NS_PER_DAY == (day - dt.date(1970, 1, 1)).days)
    reasons = _first_reasons(run_rejects, seq[ex["found"] & in_run])
    elsewhere = ex["found"] & ~in_run
    if elsewhere.any():
        reasons.update(_rejected_elsewhere(src, ref, np.unique(seq[elsewhere])))
    out = np.full(len(seq), None, dtype=object)
    for i in np.flatnonzero(ex["found"]):                  # a loop over breaks (rare), not rows
        out[i] = reasons.get(int(seq[i]))
    return out


def cancellation_rows(breaks: events.OrderEvents, ref: RefData, journal_id: str, ex: dict) -> tuple[pa.Table, list]:
    """Report-status CANC rows for the venue's changes `breaks` (Broken Trade, Trade or Price
    Correction), each carrying the TRN of the report it takes back (`ex`: corrections.chains of
    these rows, with `unreported`). A change whose execution the journal does not hold, that
    follows a break of it, or whose report was rejected (nothing reported to cancel) is rejected
    with its reason."""
    table, _ = build_table(breaks, ref, journal_id)       # the transactions' column types
    n = len(breaks)
    found = ex["found"]
    trn = numtext.padded_text(ex["seq"], 20, journal_id[:32].upper().encode("ascii"))
    values = {1: _constant("CANC", n), 2: pc.if_else(pa.array(found), trn, pa.scalar(None, trn.type)),
              28: common.rts_datetime(ex["utc_ns"], ex["valid"])}
    for num, _ in FIELDS:
        column = values.get(num, table.column(COLUMNS[num]))
        if num not in values and num not in CANCEL_FIELDS:
            column = pa.nulls(n, column.type)
        table = table.set_column(table.schema.get_field_index(COLUMNS[num]), COLUMNS[num], column)
    table = table.set_column(table.schema.get_field_index(TIME_SOURCE), TIME_SOURCE,   # field 28's, as it is
                             ac.codes(ex["from_venue"].astype(np.int8), venuetime.SOURCES))
    match, token_key = breaks.cols["match"], breaks.cols["token_key"]

    names = [_CHANGE_NAMES[e] for e in breaks.cols["event"].tolist()]

    def missing(rows):
        return [f"{names[r]} of match {match[r]} on order {token_key[r].decode('ascii', 'replace')}: no "
                f"execution of that order and match number earlier in the journal, no report to cancel"
                for r in rows]
    checks = [mask_check("event_time_utc", ~breaks.utc.valid, lambda rows: [f"{names[r]} without a UTC time"
                                                                           for r in rows]),
              mask_check(COLUMNS[2], ~found, missing),
              mask_check(COLUMNS[2], found & ~ex["first"], "repeats or follows an earlier Broken Trade of the same execution"),
              mask_check(COLUMNS[2], found & ex["first"] & np.array([r is not None for r in ex["unreported"]], bool),
                         lambda rows: [f"the transaction report of the execution it breaks (seq {ex['seq'][r]}) was "
                                       f"rejected ({ex['unreported'][r]}): no reported transaction to cancel"
                                       for r in rows]),
              value_check(table, COLUMNS[4], lei_problem), value_check(table, COLUMNS[6], lei_problem)]
    return table, checks + xml_text_checks(table)


_VENUE_HEAD = np.dtype([("soup_seq", "<u8"), ("packet_type", "u1"), ("msg_type", "u1"), ("raw_len", "<u2")])
_EXECUTION_TYPES = (ord("E"), ord("G"))     # OUCH Executed, Executed with Reference Price


def latest_executions(src: JournalSlice) -> dict[str, str]:
    """Per trade date, the latest trading time ({DATE_TIME_FORMAT}) of all the range's executions,
    rejected or not: the auth.016 CreDt foreseen before the rows are built, so the XML can be
    hashed as it is written instead of read back. One pass over the record headers and the
    first 12 payload bytes of each VENUE_MSG, chunk by chunk (no OUCH bytes); {} when the reader
    offers no header scan."""
    if not (hasattr(src.reader, "scan") and hasattr(src.reader, "gather")) \
            or PAYLOAD_DTYPES[RecordType.VENUE_MSG].descr[:4] != _VENUE_HEAD.descr:
        return {}
    samples = events.clock_samples(src)
    latest: dict[int, int] = {}
    for a in range(src.first_seq, src.last_seq + 1, events.CHUNK_SEQS):
        cols = src.reader.scan(a, min(a + events.CHUNK_SEQS - 1, src.last_seq),
                               fields=("seq", "rtype", "ts_ns", "ts_source", "pos"))
        venue = np.flatnonzero(cols.rtype == RecordType.VENUE_MSG)
        head = src.reader.gather(cols.pos[venue], _VENUE_HEAD)
        ex = venue[(head["packet_type"] == events.SOUP_SEQUENCED) & np.isin(head["msg_type"], _EXECUTION_TYPES)
                   & (head["raw_len"] > ouch.SOUP_HEADER)]
        utc = to_utc(cols.seq[ex], cols.ts_ns[ex], cols.ts_source[ex], samples)
        ns = utc.utc_ns[utc.valid]
        days = ns // ac.NS_PER_DAY
        for day in np.unique(days).tolist():
            latest[day] = max(latest.get(day, ns[0]), int(ns[days == day].max()))
    days = sorted(latest)
    text = common.rts_datetime(np.array([latest[d] for d in days], np.int64), np.ones(len(days), bool))
    return {(dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat(): t for d, t in zip(days, text.to_pylist())}


def stream(src: JournalSlice, ref: RefData, sink, text: bool = True) -> ReportOutput:
    """The transactions chunk by chunk (bounded memory): each chunk's kept rows go to
    `sink.add("transactions", t)` and, unless `text` is False (Parquet only), their auth.016 <Tx>
    elements to the day's XML file."""
    rejects = []
    xml = auth016.Exporter(COLUMNS.__getitem__, ref, src, expected=latest_executions(src)) if text else None
    breaks = []
    newt_rejects = []             # the execution reports rejected: their breaks cancel nothing
    timing = venuetime.venue_timing(src.reader, src.last_seq)

    def publish(table, checks, new: bool = True) -> None:
        emit(*split(table, KIND, "transactions", checks), new)

    def emit(kept, rejected, new: bool = True) -> None:
        sink.add("transactions", kept)
        if xml is not None:
            xml.add(kept, sink)
        if rejected.num_rows:
            rejects.append(rejected)
            if new:
                newt_rejects.append(rejected)
    sides = side_in_force.SideInForce()      # field 62: the side in force at each execution
    sides.seed(src)
    for chunk in events.collect_chunks(src, only=EXECUTIONS + CHANGES + side_in_force.MODIFIED, leaves=False):
        chunk = sides.apply(chunk)
        ev = common.select_trade_date(common.with_venue_times(chunk, timing), src.selection.trade_date)
        del chunk
        changed = np.isin(ev.cols["event"], CHANGES)
        if changed.any():        # kept aside: their cancellations follow the range's new reports
            breaks.append(ev.take(np.flatnonzero(changed)))
            ev = ev.take(np.flatnonzero(~changed))
        publish(*build_table(ev, ref, src.journal_id))
    if breaks:                   # one look-up pass from the journal start: changes are rare
        ex = corrections.chains(src, *(np.concatenate([p.cols[k] for p in breaks]) for k in ("match", "token_key", "seq")),
                                timing=timing)
        parts, at = [], 0
        for part in breaks:
            parts.append((part, {k: v[at:at + len(part)] for k, v in ex.items()}))
            at += len(part)
        corrected = []           # built first: a later change of the same execution cancels them
        for part, part_ex in parts:
            fixed = np.flatnonzero(np.isin(part.cols["event"], corrections.CORRECTIONS))
            if len(fixed):
                table, checks = corrected_rows(part.take(fixed), ref, src.journal_id,
                                               {k: v[fixed] for k, v in part_ex.items()})
            corrected.append(split(table, KIND, "transactions", checks) if len(fixed) else None)
            if corrected[-1] is not None and corrected[-1][1].num_rows:
                newt_rejects.append(corrected[-1][1])
        ex["unreported"] = unreported_executions(src, ref, ex, newt_rejects)
        at = 0
        for (part, _), fixed in zip(parts, corrected):     # each part's CANCs, then its corrected NEWTs
            publish(*cancellation_rows(part, ref, src.journal_id, {k: v[at:at + len(part)] for k, v in ex.items()}),
                    new=False)
            if fixed is not None:
                emit(*fixed, new=False)
            at += len(part)
    if xml is not None:
        xml.finish(sink)
    return ReportOutput(kind=KIND, schema_version=SCHEMA_VERSION, tables={},
                        rejects=pa.concat_tables(rejects) if rejects else REJECTS_SCHEMA.empty_table())


def build(src: JournalSlice, ref: RefData) -> ReportOutput:
    """The whole report in memory (tests, benchmarks); `run` streams it to disk instead."""
    collector = TableCollector()
    return collector.complete(stream(src, ref, collector))
