"""Builds small, realistic journals for report tests with the real journal API and real OUCH bytes.

A DayBuilder scripts one trading day (clock samples, orders, venue acks, fills, replaces, cancels,
rejects, risk denials, state changes, kills, limits and drills) and keeps a ledger of what it wrote
so tests can reconcile report rows, shares and notional against it. `write(dir)` goes through
journal.Journal; an engine-produced golden journal can replace it by passing its directory instead.
"""
from __future__ import annotations

import datetime as dt
import pathlib
from collections import Counter
from dataclasses import dataclass, field

from journal.catalogue import ClockState, RecordType, TsSource, pack, pack_json
from mm_core.protocol import itch, moldudp64, ouch, soupbintcp
from mm_core.venue import sessiontime

TAI_MINUS_UTC = 37
NS = 1_000_000_000
SYMBOLS = {1: "AAPL", 2: "MSFT", 3: "SPY", 4: "IVV"}
# The reference data these scripted days are written against (real US listings, clients 0 and 7);
# the bundled reports/refdata describes the embedded venue instead.
FIXTURE_REFDATA = pathlib.Path(__file__).resolve().parent / "refdata"


@dataclass
class Rec:
    rtype: RecordType
    payload: bytes
    ts_ns: int
    ts_source: TsSource
    clock_state: ClockState


@dataclass
class Ledger:
    """What the builder wrote, for reconciliation."""

    counts: Counter = field(default_factory=Counter)       # event name -> count
    fills: list = field(default_factory=list)               # (token, symbol_id, side, qty, price4, match)
    orders: dict = field(default_factory=dict)             # token -> dict of order terms
    cancel_reasons: Counter = field(default_factory=Counter)   # OUCH Canceled reason -> count


class DayBuilder:
    def __init__(self, day: dt.date = dt.date(2026, 3, 2), start_hms: tuple = (14, 30, 0),
                 clock_state: ClockState = ClockState.LOCKED):
        start = dt.datetime(day.year, day.month, day.day, *start_hms, tzinfo=dt.timezone.utc)
        self.now = int(start.timestamp()) * NS       # UTC ns
        self.session_date = sessiontime.eastern_date(self.now)
        self.records: list[Rec] = []
        self.ledger = Ledger()
        self.state = clock_state
        self.match = 1000
        self.order_ref = 5000

    # -- time ------------------------------------------------------------------------------
    def advance(self, ns: int) -> None:
        self.now += ns

    def _venue_ts(self) -> int:
        """OUCH/ITCH: ns since midnight US/Eastern of the day the journal starts (the venue's)."""
        return sessiontime.stamp(self.now, self.session_date)

    def _add(self, rtype, payload, source=TsSource.USER, ts=None) -> None:
        ts = self.now if ts is None else ts
        self.records.append(Rec(RecordType(rtype), payload, ts, source, self.state))

    # -- session and clock -----------------------------------------------------------------
    def session_start(self, session_id: int = 1) -> None:
        self._add(RecordType.SESSION_START, pack(
            RecordType.SESSION_START, session_id=session_id, config_sha256=bytes(range(32)),
            code_version=b"0.1.0", limits_version=b"L1", venue_session=b"SESSION01", profile=b"eu-hft"))

    def clock_sample(self, offset_ns: int = 120, error_bound_ns: int = 900,
                     state: ClockState = ClockState.LOCKED, utc_offset_valid: bool = True,
                     compliant_mask: int | None = None) -> None:
        self.state = state
        if compliant_mask is None:
            ok = state in (ClockState.LOCKED, ClockState.HOLDOVER)
            compliant_mask = (ok and error_bound_ns <= 100_000) * 1 | (ok and error_bound_ns <= 1_000_000) * 2 \
                | (ok and error_bound_ns <= 50_000_000) * 4
        self._add(RecordType.CLOCK_SAMPLE, pack(
            RecordType.CLOCK_SAMPLE, offset_ns=offset_ns, path_delay_ns=2_500, error_bound_ns=error_bound_ns,
            last_sync_age_ns=125_000_000, gm_identity=0x001B21FFFE0A0B0C, state=int(state), port_state=9,
            gm_clock_class=6, gm_clock_accuracy=0x21, utc_offset=TAI_MINUS_UTC,
            utc_offset_valid=int(utc_offset_valid), leap61=0, leap59=0, time_traceable=1, ptp_timescale=1,
            compliant_mask=compliant_mask, steps_removed=1), source=TsSource.SW_KERNEL)

    # -- orders (firm -> venue) ------------------------------------------------------------
    def _sent(self, msg, token: str, orig: str, side: str, symbol_id: int, price: int, qty: int,
              tif: int, algo: int, desk: int, trader: int, client: int) -> None:
        raw = soupbintcp.encode(soupbintcp.UnsequencedData(payload=ouch.encode(msg)))
        self._add(RecordType.ORDER_SENT, pack(
            RecordType.ORDER_SENT, token=token.encode(), orig_token=orig.encode(), msg_type=ord(msg.TYPE),
            side=ord("S") if side in "STE" else ord("B"), tif=tif, symbol_id=symbol_id, price=price, qty=qty,
            algo_id=algo, desk_id=desk, trader_id=trader, client_id=client, risk_verdict=1, trading_state=1,
            limits_version=1, tskey=len(self.records), raw=raw))

    def enter(self, token: str, symbol_id: int, side: str, price: int, qty: int, tif: int = 99999,
              algo: int = 1, desk: int = 1, trader: int = 1, client: int = 0, stock: str | None = None,
              iso: str = "N") -> None:
        """`stock` overrides the OUCH stock the symbol id maps to (to script a mismatch); `iso`: the
        OUCH intermarket sweep eligibility (the engine always sends N)."""
        stock = stock or SYMBOLS.get(symbol_id, "ZZZZ")
        msg = ouch.EnterOrder(token=token, side=side, shares=qty, stock=stock,
                              price=price, time_in_force=tif, firm="MMAU", display="Y", capacity="P",
                              intermarket_sweep=iso, minimum_quantity=0, cross_type="N", customer_type="R")
        self.ledger.orders[token] = dict(symbol_id=symbol_id, side=side, price=price, qty=qty, tif=tif,
                                         algo=algo, desk=desk, trader=trader, client=client, stock=stock)
        self.ledger.counts["SENT_NEW"] += 1
        self._sent(msg, token, "", side, symbol_id, price, qty, tif, algo, desk, trader, client)

    def replace(self, old: str, new: str, price: int, qty: int, iso: str = "N") -> None:
        o = self.ledger.orders[old]
        msg = ouch.ReplaceOrder(existing_token=old, replacement_token=new, shares=qty, price=price,
                                time_in_force=o["tif"], display="Y", intermarket_sweep=iso, minimum_quantity=0)
        self.ledger.orders[new] = dict(o, price=price, qty=qty)
        self.ledger.counts["SENT_REPLACE"] += 1
        self._sent(msg, new, old, o["side"], o["symbol_id"], price, qty, o["tif"], o["algo"], o["desk"],
                   o["trader"], o["client"])

    def cancel(self, token: str, new_qty: int = 0) -> None:
        o = self.ledger.orders[token]
        self.ledger.counts["SENT_CANCEL"] += 1
        self._sent(ouch.CancelOrder(token=token, shares=new_qty), token, "", o["side"], o["symbol_id"],
                   o["price"], new_qty, o["tif"], o["algo"], o["desk"], o["trader"], o["client"])

    def modify(self, token: str, side: str, qty: int) -> None:
        """OUCH Modify Order (side within sell / short sale, shares), then the venue's Order Modified."""
        o = self.ledger.orders[token]
        self.ledger.counts["SENT_MODIFY"] += 1
        self._sent(ouch.ModifyOrder(token=token, side=side, shares=qty), token, "", side, o["symbol_id"],
                   o["price"], qty, o["tif"], o["algo"], o["desk"], o["trader"], o["client"])

    def modified(self, token: str, side: str, qty: int) -> None:
        self._venue(ouch.OrderModified(timestamp=self._venue_ts(), token=token, side=side, shares=qty))

    # -- venue -> firm (raw SoupBinTCP 'S' packets, NIC hardware timestamps in TAI) ---------
    def _venue(self, msg, source: TsSource = TsSource.HW_PHC) -> None:
        body = ouch.encode(msg)
        raw = soupbintcp.encode(soupbintcp.SequencedData(payload=body))
        ts = self.now + TAI_MINUS_UTC * NS if source == TsSource.HW_PHC else self.now
        self.ledger.counts[type(msg).__name__] += 1
        self._add(RecordType.VENUE_MSG, pack(RecordType.VENUE_MSG, soup_seq=len(self.records) + 1,
                                             packet_type=ord("S"), msg_type=body[0], raw=raw),
                  source=source, ts=ts)

    def login_accepted(self, sequence: int, source: TsSource = TsSource.HW_PHC) -> None:
        """The venue's LoginAccepted, journaled as the runner does (packet type A, no OUCH type)."""
        raw = soupbintcp.encode(soupbintcp.LoginAccepted(session="S1", sequence=sequence))
        ts = self.now + TAI_MINUS_UTC * NS if source == TsSource.HW_PHC else self.now
        self._add(RecordType.VENUE_MSG, pack(RecordType.VENUE_MSG, soup_seq=0, packet_type=ord("A"),
                                             msg_type=0, raw=raw), source=source, ts=ts)

    def accept(self, token: str, source: TsSource = TsSource.HW_PHC) -> None:
        o = self.ledger.orders[token]
        self.order_ref += 1
        self._venue(ouch.Accepted(timestamp=self._venue_ts(), token=token, side=o["side"], shares=o["qty"],
                                  stock=o.get("stock") or SYMBOLS.get(o["symbol_id"], "ZZZZ"), price=o["price"],
                                  time_in_force=o["tif"], firm="MMAU", display="Y", order_ref=self.order_ref,
                                  capacity="P", intermarket_sweep="N", minimum_quantity=0, cross_type="N",
                                  order_state="L", bbo_weight=" "), source)

    def replaced(self, old: str, new: str) -> None:
        o = self.ledger.orders[new]
        self.order_ref += 1
        self._venue(ouch.Replaced(timestamp=self._venue_ts(), token=new, side=o["side"],
                                  shares=o["qty"], stock=o.get("stock") or SYMBOLS.get(o["symbol_id"], "ZZZZ"), price=o["price"],
                                  time_in_force=o["tif"], firm="MMAU", display="Y", order_ref=self.order_ref,
                                  capacity="P", intermarket_sweep="N", minimum_quantity=0, cross_type="N",
                                  order_state="L", previous_token=old, bbo_weight=" "))

    def execute(self, token: str, qty: int, price: int | None = None, source: TsSource = TsSource.HW_PHC) -> None:
        o = self.ledger.orders[token]
        price = o["price"] if price is None else price
        self.match += 1
        self.ledger.fills.append((token, o["symbol_id"], o["side"], qty, price, self.match))
        self._venue(ouch.Executed(timestamp=self._venue_ts(), token=token, executed_shares=qty,
                                  execution_price=price, liquidity_flag="A", match_number=self.match), source)

    def broken(self, token: str, match: int, reason: str = "E") -> None:
        """OUCH Broken Trade: the venue takes back the execution `match` of `token`."""
        self._venue(ouch.BrokenTrade(timestamp=self._venue_ts(), token=token, match_number=match, reason=reason))

    def trade_corrected(self, token: str, match: int, qty: int, price: int, reason: str = "E") -> None:
        """OUCH Trade Correction: the venue restates execution `match` of `token`."""
        self._venue(ouch.TradeCorrection(timestamp=self._venue_ts(), token=token, executed_shares=qty,
                                         execution_price=price, liquidity_flag="A", match_number=match, reason=reason))

    def price_corrected(self, token: str, match: int, price: int, reason: str = "E") -> None:
        """OUCH Price Correction: execution `match` of `token` at a new price."""
        self._venue(ouch.PriceCorrection(timestamp=self._venue_ts(), token=token, match_number=match,
                                         new_execution_price=price, reason=reason))

    def canceled(self, token: str, decrement: int, reason: str = "U") -> None:
        self.ledger.cancel_reasons[reason] += 1
        self._venue(ouch.Canceled(timestamp=self._venue_ts(), token=token, decrement_shares=decrement,
                                  reason=reason))

    def rejected(self, token: str, reason: str = "S") -> None:
        self._venue(ouch.Rejected(timestamp=self._venue_ts(), token=token, reason=reason))

    # -- market data (raw MoldUDP64 packets of ITCH 5.0, NIC hardware timestamps in TAI) -----
    def _md(self, *messages) -> None:
        self.md_seq = getattr(self, "md_seq", 0)
        packet = moldudp64.encode(moldudp64.Packet(session="ITCHSESS01", sequence=self.md_seq + 1,
                                                   messages=tuple(itch.encode(m) for m in messages)))
        self.md_seq += len(messages)
        self._add(RecordType.MD_PACKET, packet, source=TsSource.HW_PHC, ts=self.now + TAI_MINUS_UTC * NS)

    def quote(self, symbol_id: int, bid: tuple[int, int, int] | None, ask: tuple[int, int, int] | None,
              delete: tuple[int, ...] = ()) -> None:
        """One packet: delete the given order refs, then add (ref, price4, shares) on each side."""
        head = dict(stock_locate=symbol_id, tracking_number=0, timestamp=self._venue_ts())
        msgs = [itch.OrderDelete(order_ref=ref, **head) for ref in delete]
        for side, level in (("B", bid), ("S", ask)):
            if level is not None:
                ref, price, shares = level
                msgs.append(itch.AddOrder(order_ref=ref, side=side, shares=shares, stock=SYMBOLS[symbol_id],
                                          price=price, **head))
        self._md(*msgs)

    # -- controls --------------------------------------------------------------------------
    def risk_denial(self, token: str, symbol_id: int, check_id: int, value: int, limit: int, detail: str) -> None:
        self.ledger.counts["RISK_DENIED"] += 1
        self._add(RecordType.RISK_DECISION, pack(
            RecordType.RISK_DECISION, token=token.encode(), symbol_id=symbol_id, side=ord("B"), msg_type=ord("O"),
            allowed=0, check_id=check_id, trading_state=1, limits_version=1, price=1_500_000, qty=100,
            value=value, limit=limit, detail=detail.encode()))

    def state_change(self, from_state: int, to_state: int, reason: str, actor: str = "gateway") -> None:
        self._add(RecordType.STATE_CHANGE, pack(RecordType.STATE_CHANGE, from_state=from_state, to_state=to_state,
                                                 reason_code=7, actor=actor.encode(), reason=reason.encode()))

    def kill(self, scope: int, scope_id: int, cancelled: int, by: str, reason: str) -> None:
        self._add(RecordType.KILL, pack(RecordType.KILL, scope=scope, scope_id=scope_id, orders_cancelled=cancelled,
                                         requested_by=by.encode(), reason=reason.encode()))

    def json_record(self, rtype: RecordType, document: dict) -> None:
        self._add(rtype, pack_json(document))

    # -- output ----------------------------------------------------------------------------
    def write(self, directory: str | pathlib.Path) -> pathlib.Path:
        """Append every record through the real journal API and close it (which seals)."""
        from journal import Journal
        directory = pathlib.Path(directory)
        with Journal(directory, create=True, checkpoint_every=64) as jr:
            for r in self.records:
                jr.append(r.rtype, r.payload, r.ts_ns, r.ts_source, r.clock_state)
        return directory


def accepted_order(token: str, symbol_id: int, side: str, price: int, qty: int, gap: int = 10_000) -> DayBuilder:
    """A day that opens with a session start and a clock sample, then enters `token` and has the
    venue accept it `gap` ns later."""
    b = DayBuilder()
    b.session_start()
    b.clock_sample()
    b.enter(token, symbol_id, side, price, qty)
    b.advance(gap)
    b.accept(token)
    return b


def standard_day(builder: DayBuilder | None = None) -> DayBuilder:
    """A small scripted day touching every order event kind, market data for the quote, controls
    and a clock excursion out of the HFT tolerance."""
    b = builder or DayBuilder()
    b.session_start()
    b.clock_sample()
    b.json_record(RecordType.LIMITS_LOADED, {"version": "L1", "max_order_qty": 5000, "collar_bps": 500})
    b.quote(1, (1, 1_499_800, 500), (2, 1_500_200, 500))     # AAPL 149.98 x 150.02
    b.quote(2, (3, 4_099_000, 300), (4, 4_100_000, 300))     # MSFT 409.90 x 410.00
    b.quote(3, (5, 5_120_200, 900), (6, 5_120_600, 900))     # SPY 512.02 x 512.06
    b.advance(1_000_000)
    b.enter("Q1", 1, "B", 1_500_000, 300)              # AAPL buy 300 @ 150.0000
    b.advance(40_000); b.accept("Q1")
    b.advance(2_000_000); b.execute("Q1", 100)         # partial
    b.advance(1_000_000); b.execute("Q1", 200)         # fill
    b.advance(1_000_000)
    b.enter("Q2", 2, "S", 4_100_050, 200)              # MSFT sell 200 @ 410.0050 (half-penny tick)
    b.advance(35_000); b.accept("Q2")
    b.advance(500_000); b.replace("Q2", "Q3", 4_099_500, 150)
    b.advance(30_000); b.replaced("Q2", "Q3")
    b.advance(800_000); b.execute("Q3", 50, 4_099_500)
    b.advance(700_000); b.cancel("Q3")
    b.advance(20_000); b.canceled("Q3", 100)
    b.clock_sample(offset_ns=80)
    b.advance(1_000_000)
    b.enter("Q4", 3, "T", 5_120_100, 500, tif=0)       # SPY short sale IOC, crosses the 512.02 bid
    b.advance(25_000); b.accept("Q4")
    b.advance(10_000); b.execute("Q4", 120, 5_120_000)
    b.advance(5_000); b.canceled("Q4", 380, reason="I")
    b.advance(1_000_000)
    b.enter("Q5", 1, "B", 1_499_900, 100, client=7, algo=2)
    b.advance(30_000); b.rejected("Q5", reason="S")
    b.enter("Q8", 1, "B", 1_499_950, 100)              # sub-penny price on a penny stock (Rule 612)
    b.advance(30_000); b.rejected("Q8", reason="X")
    b.risk_denial("Q6", 1, check_id=3, value=9000, limit=5000, detail="max order qty")
    b.state_change(1, 2, "clock holdover beyond bound")
    b.clock_sample(offset_ns=150_000, error_bound_ns=250_000, state=ClockState.HOLDOVER)
    b.advance(1_000_000_000)
    b.quote(1, (11, 1_500_400, 500), (12, 1_500_600, 500), delete=(1, 2))   # AAPL 150.04 x 150.06
    b.advance(500_000_000)
    b.enter("Q7", 4, "S", 5_000_000, 100)              # IVV: no market data, sent out of HFT tolerance
    b.advance(30_000); b.accept("Q7")
    b.advance(10_000); b.execute("Q7", 100)
    b.clock_sample(offset_ns=90, error_bound_ns=800)
    b.state_change(2, 1, "clock locked again", actor="operator")
    b.kill(0, 0, 3, "risk-officer", "end of day drill")
    b.json_record(RecordType.DRILL_RESULT, {"drill": "kill-mid-session", "passed": True, "lost": 0})
    return b
