"""Rule 605-style execution quality of the firm's own orders, and Rule 612 (sub-penny) and Rule
610 (locking / crossing) checks of the firm's own quotes.

Owns the spread arithmetic (exact, in doubled price4 so half-ticks stay integers), the fills and
summary tables and the check tables; the Rule 605 categories (size, round lot, order type, time-to-
execution bucket) are reports/rule605.py's, which says what each rests on. The quote comes from
nbbo.py (rebuilt from journaled ITCH), streamed chunk by chunk with the summary accumulated.

Verified (citations in rule605.py): size categories by notional value and fractional / odd-lot /
round-lot status (Release 34-99679, 89 FR 26428), and the round lot tiered by price (100 / 40 / 10 / 1
shares at $250 / $1,000 / $10,000). Followed from the reference notes' summary (regulation.md 3.3):
the order-type categories marketable limit, marketable IOC, beyond-the-midpoint limit and the
non-marketable limits (inside, at, outside the quote), times in ms or finer (ns here), share-weighted
average time to execution, realized spreads at several horizons, and percentage effective spreads.
An approximation, said in every file's metadata and the manifest (rule605_notes): the round lot's tier
is decided by the order's own limit price, not the rule's average closing price over the Evaluation
Period, which the journal does not hold. Not confirmed and so adjustable constants: the notional edges
(rule605.SIZE_EDGES), the realized-spread horizons (REALIZED_HORIZONS_S), and the amended time-to-
execution buckets, for which the pre-amendment rule's buckets stand in (rule605.TTE_EDGES_NS); the
summary gives each size x type cell's shares per bucket and their percentages of its timed shares,
and the shares whose time is unknown. Fractional orders cannot occur (OUCH shares are integers);
market and stop orders are not sent by the engine.
An execution the venue breaks later (OUCH Broken Trade, in the range or journaled after it up to
breaks.HORIZON_NS past its end) stays in the fills table, marked `broken`, and is left out of the
summary; quote_coverage counts them and says how far past the range Broken Trades were read. One the
venue corrects within that horizon (Trade Correction F: shares and price; Price Correction K: price)
is measured at its corrected shares and price, marked `corrected`.
A fill of an order a crash recovery adopted from the venue (its ORDER_SENT lost with a torn journal
tail: reports/adoptions.py) is kept, with order_origin RECOVERY_ADOPTED and origin_recon_seq (the
RECON record, the evidence): its shares, price, time and the quote at execution and after (realized
spreads) are the venue's execution's, its order's size category from the venue's terms. The order's
receipt time (the firm's send time) was lost with that ORDER_SENT and is bounded only above, by the
venue's acceptance: order_time_utc, time to execution, the quote at the order and so the effective
spreads are null, its order-type category (which needs that quote) is the no-quote one, and the
summary averages each measure over the shares whose value is known, as for any fill without it.
A fill a crash recovery journaled (at the recovery's clock, seconds or hours after the venue
executed it: venuetime) is timed by the venue's execution timestamp (exec_time_source names which
time a fill has): its time to execution, its bucket, its trade date and the quotes at execution
and at each realized-spread horizon are those of that time. The quote at execution is then looked up
by UTC time in the journal's market data (nbbo.TimedQuotes), not by journal sequence (the record
was written after the restart); while the engine was down the market data it missed was not
journaled (nbbo.downtime_gaps), so a quote in that gap is unknown, left null and counted in
quote_coverage (recovered_fills_without_quote_at_exec; realized spreads: *_past_market_data), never
taken from the last quote before the crash. Said in rule605_notes.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from reports import arrowcols as ac
from reports import breaks as breaks_
from reports import common, events, nbbo, numtext
from reports import rule605, venuetime
from reports.rule605 import SIZE_NAMES, TTE_NAMES, TYPE_NAMES
from reports.events import EV
from reports.output import ReportOutput, TableCollector
from reports.refdata import RefData
from reports.source import JournalSlice
from reports.timebase import to_utc
from reports.validate import REJECTS_SCHEMA, mask_check, split

KIND = "execution-quality"
# 3: the corrected column; 4: order_origin, origin_recon_seq; 5: the rule605.py categories (size names with
# FRACTIONAL, tiered round lot), fills' round_lot and time_to_execution_bucket, the summary's buckets; 6:
# exec_time_source (a fill a recovery journaled at its venue time), quote_coverage's recovered_fills_*
SCHEMA_VERSION = "execution-quality-6"
NS = 1_000_000_000
REALIZED_HORIZONS_S = (1, 15, 60)       # unconfirmed (see the module docstring)
PRICE4_UNITS = 1e-4           # price4 integer -> units, as Arrow turns a decimal(_, 4) into a double
R610_NAMES = ["OK", "LOCKS", "CROSSES", "NO_QUOTE"]


def _symbols(ref: RefData) -> dict[str, int]:
    return {i.symbol: i.symbol_id for i in ref.instruments.values()}


ORIGINS = ["ORDER_SENT", "RECOVERY_ADOPTED"]     # what the fill's order origin comes from
FILLS = (EV["EXECUTED"], EV["EXECUTED_WITH_REF_PRICE"])             # the firm's executions
QUOTED = (EV["SENT_NEW"], EV["SENT_REPLACE"])          # the firm's quotes, checked against 612/610
_FILL_COLUMNS = ("seq", "token_key", "match", "symbol_id", "side", "exec_qty", "exec_price", "creator_seq",
                 "creator_ts_ns", "creator_ts_source", "order_price", "order_qty", "tif", "order_adopted",
                 common.FROM_VENUE)
_QUOTE_COLUMNS = ("seq", "token_key", "symbol_id", "side", "price")


def _rows(ev: events.OrderEvents, codes: tuple[int, ...], columns: tuple[str, ...]) -> events.OrderEvents:
    """The events of `codes`, with just the columns a table needs (the others are not copied)."""
    e = ev.cols["event"]
    picked = events.OrderEvents({k: ev.cols[k] for k in columns + ("event",)}, ev.utc, ev.samples)
    return picked.take(np.flatnonzero(np.isin(e, codes)))


def _fills(ev: events.OrderEvents, ref: RefData, quotes: nbbo.QuoteTimeline, timed: nbbo.TimedQuotes,
           breaks: "breaks_.BreaksRead") -> tuple[pa.Table, dict]:
    """The fills table, and the numpy values the summary accumulates (see Summary.add)."""
    fx = _rows(ev, FILLS, _FILL_COLUMNS)
    c = fx.cols
    broken = breaks.taken_back(c["token_key"], c["match"], c["seq"])
    # the venue's Trade / Price Corrections restate the execution: its corrected shares and price
    qty, px, corrected = breaks.corrected(c["token_key"], c["match"], c["seq"], c["exec_qty"], c["exec_price"])
    is_buy = c["side"] == ord("B")
    sym = c["symbol_id"]
    # the quote when the order was sent (just before its ORDER_SENT) and just before the fill
    adopted = c["order_adopted"]          # its send time is unknown: no time or quote at the order
    bid0, ask0, found0 = quotes.at_seq(sym, c["creator_seq"])
    found0 &= ~adopted
    bid1, ask1, found1 = quotes.at_seq(sym, c["seq"])
    # a fill a recovery journaled (seconds or hours later): the quote at the venue's execution
    # time, where the journal's market data holds it (not while the engine was down)
    recovered = np.flatnonzero(c[common.FROM_VENUE])
    exec_quote_unknown = np.zeros(len(fx), bool)
    if len(recovered):
        b, a, f, known = timed.at_time(sym[recovered], fx.utc.utc_ns[recovered])
        known &= fx.utc.valid[recovered]
        bid1[recovered], ask1[recovered], found1[recovered] = b, a, f & known
        exec_quote_unknown[recovered] = ~known
    order_utc = to_utc(c["creator_seq"], c["creator_ts_ns"], c["creator_ts_source"], ev.samples)
    order_utc = dataclasses.replace(order_utc, valid=order_utc.valid & ~adopted)
    sign = np.where(is_buy, 1, -1)
    ok0 = found0 & (bid0 > 0) & (ask0 > 0)
    # effective spread 2·(P − M) for buys, 2·(M − P) for sells: with 2·M = bid + ask it is an
    # exact price4 integer, positive when the order paid more than the midpoint
    effective = sign * (2 * px - (bid0 + ask0))
    # percentage effective spread: 2·|P − M| / M · 100, with 2·M = bid + ask
    pct = 200.0 * effective / np.where(ok0, bid0 + ask0, 1)
    order_price = c["order_price"]
    cols = {
        "seq": pa.array(c["seq"].astype(np.uint64, copy=False)),
        "order_id": numtext.token_text(c["token_key"]),
        "symbol_id": pa.array(sym.astype(np.uint32, copy=False)),
        "side": ac.codes((~is_buy).astype(np.int8, copy=False), ["BUY", "SELL"]),
        "exec_qty": pa.array(qty),
        "exec_price": ac.decimal(px, 4),
        "order_time_utc": ac.timestamp_utc(order_utc.utc_ns, order_utc.valid),
        "exec_time_utc": ac.timestamp_utc(fx.utc.utc_ns, fx.utc.valid),
        # the record's time, or the venue's execution timestamp of a fill a recovery journaled later
        "exec_time_source": common.time_source(fx),
        "time_to_execution_ns": pa.array(fx.utc.utc_ns - order_utc.utc_ns, mask=~(fx.utc.valid & order_utc.valid)),
        "nbb_at_order": ac.decimal(bid0, 4, valid=found0 & (bid0 > 0)),
        "nbo_at_order": ac.decimal(ask0, 4, valid=found0 & (ask0 > 0)),
        "nbb_at_exec": ac.decimal(bid1, 4, valid=found1 & (bid1 > 0)),
        "nbo_at_exec": ac.decimal(ask1, 4, valid=found1 & (ask1 > 0)),
        "effective_spread": ac.decimal(effective, 4, valid=ok0),
        "effective_spread_pct": pa.array(pct, mask=~ok0),
    }
    measures = [(fx.utc.utc_ns - order_utc.utc_ns, fx.utc.valid & order_utc.valid),
                (effective * PRICE4_UNITS, ok0), (pct, ok0)]
    past_market_data = []
    for h in REALIZED_HORIZONS_S:
        # the quote in force at the horizon, only where the journal's market data reaches it
        # (and holds it: not in an engine downtime before a crash recovery)
        bh, ah, fh, known = timed.at_time(sym, fx.utc.utc_ns + h * NS)
        okh = fh & known & (bh > 0) & (ah > 0) & fx.utc.valid
        realized = sign * (2 * px - (bh + ah))
        cols[f"realized_spread_{h}s"] = ac.decimal(realized, 4, valid=okh)
        measures.append((realized * PRICE4_UNITS, okh))
        past_market_data.append(fx.utc.valid & ~known)
    kind = rule605.order_type_category(is_buy, order_price, bid0, ask0, c["tif"] == 0, found0)
    size = rule605.size_category(c["order_qty"], order_price)
    tte = rule605.tte_bucket(measures[0][0], measures[0][1])
    cols["order_type_category"] = ac.codes(kind, TYPE_NAMES)
    cols["size_category"] = ac.codes(size, SIZE_NAMES)
    cols["round_lot"] = pa.array(rule605.round_lot(order_price))     # tier by the order's price (approximation)
    cols["time_to_execution_bucket"] = ac.codes(tte, TTE_NAMES, valid=tte != rule605.TTE_UNKNOWN)
    cols["quote_source"] = ac.codes(np.zeros(len(fx), np.int8), ["ITCH_MD_PACKET"])
    cols["order_origin"] = ac.codes(adopted.astype(np.int8), ORIGINS)
    cols["origin_recon_seq"] = ac.masked(c["creator_seq"].astype(np.uint64, copy=False), adopted)
    cols["broken"] = pa.array(broken)       # taken back by the venue: not in the statistics
    cols["corrected"] = pa.array(corrected)  # exec_qty / exec_price as the venue corrected them
    cols["trade_date"] = common.trade_date_column(fx.utc.utc_ns, fx.utc.valid)
    return pa.table(cols), {"size": size, "kind": kind, "qty": qty, "tte": tte, "measures": measures,
                            "broken": broken, "past_market_data": past_market_data,
                            "recovered": c[common.FROM_VENUE], "exec_quote_unknown": exec_quote_unknown}


class Summary:
    """Share-weighted averages per (size, order-type) category, accumulated chunk by chunk from
    the kept fills (sums in numpy; each average divides by the shares whose value is known)."""

    MEASURES = ["time_to_execution_ns", "effective_spread", "effective_spread_pct"] + \
        [f"realized_spread_{h}s" for h in REALIZED_HORIZONS_S]
    NAMES = ["avg_time_to_execution_ms", "avg_effective_spread", "avg_effective_spread_pct"] + \
        [f"avg_realized_spread_{h}s" for h in REALIZED_HORIZONS_S]
    SCALE = [1e6, 1.0, 1.0] + [1.0] * len(REALIZED_HORIZONS_S)     # ns -> ms; decimals are in units

    def __init__(self):
        cells = len(SIZE_NAMES) * len(TYPE_NAMES)
        self.executions = np.zeros(cells, np.int64)
        self.shares = np.zeros(cells, np.int64)
        self.tte_shares = np.zeros((len(TTE_NAMES) + 1, cells), np.int64)   # per bucket, the last: unknown
        self.weighted = np.zeros((len(self.MEASURES), cells))
        self.weight = np.zeros((len(self.MEASURES), cells))

    def add(self, size: np.ndarray, kind: np.ndarray, qty: np.ndarray, tte: np.ndarray, measures: list,
            keep: np.ndarray) -> None:
        """The kept fills (`keep`) of a chunk: their size and order-type categories, shares, time-to-
        execution bucket, and per measure (values in the summary's units before SCALE, known-or-not),
        as _fills made them.
        Values are those the fills table holds: a decimal column's float is value4 * 1e-4, as
        Arrow's decimal-to-double cast computes it (the test checks the two agree bit for bit)."""
        if not keep.all():
            rows = np.flatnonzero(keep)
            size, kind, qty, tte = size[rows], kind[rows], qty[rows], tte[rows]
            measures = [(value[rows], ok[rows]) for value, ok in measures]
        if len(qty) == 0:
            return
        cell = size.astype(np.int64) * len(TYPE_NAMES) + kind
        cells = len(self.executions)
        self.executions += np.bincount(cell, minlength=cells)
        self.shares += np.bincount(cell, weights=qty, minlength=cells).astype(np.int64)
        self.tte_shares += np.bincount(tte.astype(np.int64) * cells + cell, weights=qty,
                                       minlength=self.tte_shares.size).reshape(self.tte_shares.shape).astype(np.int64)
        for i, (value, ok) in enumerate(measures):
            value = np.where(ok, value, 0).astype(np.float64, copy=False)
            self.weighted[i] += np.bincount(cell, weights=value * qty * ok, minlength=cells)
            self.weight[i] += np.bincount(cell, weights=qty * ok, minlength=cells)

    def table(self) -> pa.Table:
        present = np.flatnonzero(self.executions > 0)
        labels = [(SIZE_NAMES[c // len(TYPE_NAMES)], TYPE_NAMES[c % len(TYPE_NAMES)]) for c in present]
        order = sorted(range(len(present)), key=lambda i: labels[i])     # one entry per category pair
        rows = present[order]
        out = {"size_category": pa.array([labels[i][0] for i in order], pa.string()),
               "order_type_category": pa.array([labels[i][1] for i in order], pa.string()),
               "executions": pa.array(self.executions[rows]), "shares_executed": pa.array(self.shares[rows])}
        for i, name in enumerate(self.NAMES):
            w = self.weight[i][rows]
            avg = np.divide(self.weighted[i][rows], np.where(w > 0, w, 1)) / self.SCALE[i]
            out[name] = pa.array(avg, mask=w == 0)
        # shares executed per time-to-execution bucket, and each bucket's percentage of the shares
        # whose time is known (null where none is)
        timed = self.tte_shares[:-1, rows].sum(axis=0)
        for b, name in enumerate(TTE_NAMES):
            out[f"shares_tte_{name}"] = pa.array(self.tte_shares[b, rows])
        for b, name in enumerate(TTE_NAMES):
            pct = 100.0 * self.tte_shares[b, rows] / np.where(timed > 0, timed, 1)
            out[f"pct_shares_tte_{name}"] = pa.array(pct, mask=timed == 0)
        out["shares_tte_unknown"] = pa.array(self.tte_shares[-1, rows])
        return pa.table(out)


def _quote_checks(ev: events.OrderEvents, ref: RefData, quotes: nbbo.QuoteTimeline) -> tuple[pa.Table, pa.Table]:
    q = _rows(ev, QUOTED, _QUOTE_COLUMNS)
    c = q.cols
    tick = ref.tick_at(c["symbol_id"], c["price"])
    known = tick > 0
    sub_penny = known & (c["price"] % np.where(known, tick, 1) != 0)
    base = {
        "seq": pa.array(c["seq"].astype(np.uint64, copy=False)), "order_id": numtext.token_text(c["token_key"]),
        "symbol_id": pa.array(c["symbol_id"].astype(np.uint32, copy=False)),
        "side": ac.codes((c["side"] != ord("B")).astype(np.int8, copy=False), ["BUY", "SELL"]),
        "price": ac.decimal(c["price"], 4), "event_time_utc": ac.timestamp_utc(q.utc.utc_ns, q.utc.valid),
    }
    r612 = pa.table({**base, "tick_in_force": ac.decimal(tick, 4, valid=known),
                     "sub_penny_violation": pa.array(sub_penny, mask=~known),
                     "trade_date": common.trade_date_column(q.utc.utc_ns, q.utc.valid)})
    bid, ask, found = quotes.at_seq(c["symbol_id"], c["seq"])
    is_buy = c["side"] == ord("B")
    opposite = np.where(is_buy, ask, bid)
    has = found & (opposite > 0)
    locks = has & (c["price"] == opposite)
    crosses = has & np.where(is_buy, c["price"] > opposite, c["price"] < opposite)
    status = np.where(~has, 3, np.where(crosses, 2, np.where(locks, 1, 0))).astype(np.int8, copy=False)
    r610 = pa.table({**base, "nbb": ac.decimal(bid, 4, valid=found & (bid > 0)),
                     "nbo": ac.decimal(ask, 4, valid=found & (ask > 0)),
                     "status": ac.codes(status, R610_NAMES),
                     "trade_date": common.trade_date_column(q.utc.utc_ns, q.utc.valid)})
    return r612, r610


def stream(src: JournalSlice, ref: RefData, sink) -> ReportOutput:
    """Fills and Rule 612/610 rows chunk by chunk (bounded memory, `sink.add(table, t)`); the
    quote timeline is rebuilt once for the range, the summary and coverage accumulate."""
    # the quote up to the longest realized-spread horizon past the range's end, read past it
    # from the journal as far as needed; where the journal's market data stops short of a fill's
    # horizon, that realized spread is left out and counted, never taken from an older quote
    sink.annotate({"rule605_notes": rule605.NOTES})      # before the first table: every file says it
    # crash recoveries and login replays: the fills they journaled are timed by the venue
    # (common.with_venue_times); the market data the engine missed while down (a crash, not an
    # order entry lost: the feed goes on) is a gap in the quotes (nbbo.downtime_gaps)
    timing = venuetime.venue_timing(src.reader, int(src.reader.last_seq))
    timed = nbbo.timeline_through(src, _symbols(ref), events.clock_samples(src), max(REALIZED_HORIZONS_S) * NS,
                                  timing.windows)
    quotes = timed.timeline
    past_market_data = np.zeros(len(REALIZED_HORIZONS_S), np.int64)
    # the venue's Broken Trades in the range and past it up to the horizon, known before any fill
    # is written (a header pass): an execution broken after the range end is broken all the same
    breaks = breaks_.read(src)
    summary = Summary()
    no_quote_fills = no_quote_orders = broken_fills_kept = recovered_fills = recovered_unquoted = 0
    rejected = []
    # just the fills and the quotes sent (no remaining quantities used): the other events are
    # dropped before their OUCH decode
    for chunk in events.collect_chunks(src, leaves=False, only=FILLS + QUOTED):
        ev = common.select_trade_date(common.with_venue_times(chunk, timing), src.selection.trade_date)
        del chunk
        r612, r610 = _quote_checks(ev, ref, quotes)
        fills, accumulate = _fills(ev, ref, quotes, timed, breaks)
        broken, unknown_horizon = accumulate.pop("broken"), accumulate.pop("past_market_data")
        recovered, unquoted = accumulate.pop("recovered"), accumulate.pop("exec_quote_unknown")
        # a truncated OUCH message decoded no field past the bytes held: rejected, as in every report
        short = events.short_messages(ev.cols)
        event_codes = ev.cols["event"]
        for name, table in (("fills", fills), ("rule612", r612), ("rule610", r610)):
            time_col = "exec_time_utc" if name == "fills" else "event_time_utc"
            no_time = ~table.column(time_col).is_valid().to_numpy(zero_copy_only=False)
            source_rows = np.flatnonzero(np.isin(event_codes, FILLS if name == "fills" else QUOTED))
            # an order no ORDER_SENT created (adopted by a recovery): named as such, not as symbol 0
            orphan = ev.cols["creator"][source_rows] < 0
            unknown = (ref.instrument_index(table.column("symbol_id").to_numpy()) < 0) | orphan
            token = common.token_check(ev.cols, source_rows)
            kept, rej = split(table, KIND, name, [
                mask_check("ouch_message", short[source_rows],
                           lambda rows, at=source_rows: events.short_message_reasons(ev.cols, at[rows])),
                mask_check(time_col, no_time, "event without a UTC time"),
                mask_check("order_id", orphan, common.NO_CREATOR),
                token,
                mask_check("symbol_id", unknown & ~orphan, "symbol_id not in instrument reference data")])
            sink.add(name, kept)
            if rej.num_rows:
                rejected.append(rej)
            if name == "fills":
                bad_token = token[1].is_valid().to_numpy(zero_copy_only=False)
                kept_rows = ~(no_time | unknown | short[source_rows] | bad_token)     # the rows split kept
                summary.add(**accumulate, keep=kept_rows & ~broken)
                broken_fills_kept += int((kept_rows & broken).sum())
                past_market_data += [int((kept_rows & beyond).sum()) for beyond in unknown_horizon]
                recovered_fills += int((kept_rows & recovered).sum())
                recovered_unquoted += int((kept_rows & unquoted).sum())
                no_quote_fills += kept.column("nbb_at_order").null_count
            elif name == "rule610":
                no_quote_orders += int((kept.column("status").combine_chunks().indices.to_numpy()
                                        == R610_NAMES.index("NO_QUOTE")).sum())
    # what was read of the Broken Trades: through which sequence, and whether the journal reached
    # the look-ahead horizon (0: it ended first, and a later break would not be seen)
    coverage = pa.table({
        "measure": ["quote_updates_from_itch", "fills_without_bid_at_order", "orders_without_quote_at_send",
                    "broken_executions_excluded", "broken_trades_read_through_seq", "broken_trades_horizon_s",
                    "broken_trades_horizon_reached"]
        + [f"realized_spread_{h}s_past_market_data" for h in REALIZED_HORIZONS_S]
        + ["recovered_fills_at_venue_time", "recovered_fills_without_quote_at_exec"],
        "count": pa.array([int((quotes.seq <= src.last_seq).sum()), no_quote_fills, no_quote_orders,
                           broken_fills_kept, breaks.through_seq, breaks_.HORIZON_NS // NS,
                           int(breaks.horizon_reached)] + past_market_data.tolist()
                          + [recovered_fills, recovered_unquoted], pa.int64()),
    })
    rejects = pa.concat_tables(rejected) if rejected else REJECTS_SCHEMA.empty_table()
    return ReportOutput(kind=KIND, schema_version=SCHEMA_VERSION,
                        tables={"summary": summary.table(), "quote_coverage": coverage}, rejects=rejects)


def build(src: JournalSlice, ref: RefData) -> ReportOutput:
    """The whole report in memory (tests, benchmarks); `run` streams it to disk instead."""
    collector = TableCollector()
    return collector.complete(stream(src, ref, collector))
