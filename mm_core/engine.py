"""The market-making engine: events in, actions out, deterministic and sans-io.

Owns the order of work for one event — decode (protocol codecs) → MoldUDP64 sequencing → book →
quote guard first → fair value → spread and inventory skew → hedger → risk gateway → OMS — and
the one inventory all of them see. Must not read clocks, sockets, files or unseeded randomness:
time is each event's now_ns, ids come from the session prefix, and replaying the same events
through a fresh Engine gives the same actions and the same state_hash().
"""
from __future__ import annotations

import hashlib
import math
import struct
from array import array
from itertools import compress, groupby
from typing import Callable

from journal.catalogue import RecordType, pack, pack_json
from mm_core.alertgate import AlertGate
from mm_core.config import EngineConfig, Symbols
from mm_core.events import (
    RELEASE_CLOSE_OUT, Action, ClockSample, JournalHealth, JournalNote, MarketData, OperatorCommand,
    Reconciled, RequestRetransmit, SendOrder, Timer, VenueMessage,
)
from mm_core.fairvalue import FairValueModel
from mm_core.guard import SymbolGuard, Trip
from mm_core.hedger import Hedger
from mm_core.inventory import InventoryError, InventoryTracker
from mm_core.fastbook import ffi, lib
from mm_core.mdpath import MarketDataPath
from mm_core.metrics import Metrics, MetricsError
from mm_core.orderwire import OrderWire
from mm_core.oms import TERMINAL, TRANSITIONS, InvalidTransition, Oms, OmsError, Order, OrderState, Trigger
from mm_core.ownquotes import OwnQuotes
from mm_core.protocol import ProtocolError, SessionMismatch, moldudp64, ouch, soupbintcp
from mm_core.quotepricer import QuotePricer, engine_price_quote, engine_price_reference
from mm_core.risk import OptionParams, RiskError, TradingState
from mm_core.risk.checks import CheckId
from mm_core.risk.gateway import BOOK_STALE_BIT as _BOOK_STALE_BIT
from mm_core.risk.greeks import MAX_EXPIRY_DAYS
from mm_core.risk.kill import KillScope, parse_scope
from mm_core.sigfair import KernelFairValue, KernelHedger, KernelVol, fv_setup
from mm_core.sigkernel import SignalKernel, trip_of
from mm_core.sigreact import ReactMirror
from mm_core.spread import VolEstimator
from mm_core.ticks import TickTable
from mm_core.trades import TAPE_MAX, TradeTape
from mm_core.types import OrderIntent, OrderKind, Purpose, Side, make_intent

__all__ = ["Engine", "EngineError", "PacketRun", "feed_batched"]

_BUY, _SELL = Side.BUY, Side.SELL
_log2 = math.log2
_HALTED, _REDUCING = TradingState.HALTED, TradingState.REDUCING
_FROM_SERVER = soupbintcp.Direction.FROM_SERVER
_SEQUENCED = ord("S")           # SoupBinTCP sequenced data: an OUCH message follows the type byte
_decode_outbound_from = ouch.decode_outbound_from
_ACCEPTED, _PARTIAL = OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED
_PENDING_NEW, _PENDING_CANCEL = OrderState.PENDING_NEW, OrderState.PENDING_CANCEL
_UNKNOWN = OrderState.UNKNOWN

_GAP = moldudp64.Gap
_ENTER, _REPLACE, _CANCEL, _MODIFY = OrderKind.ENTER, OrderKind.REPLACE, OrderKind.CANCEL, OrderKind.MODIFY
_CHECK_OK = CheckId.OK
_top_depth = lib.fmd_top_depth
_top_depth_without = lib.fmd_top_depth_without
_new_i64 = ffi.new
_QUOTE = Purpose.QUOTE
_QUOTE_VALUE = _QUOTE.value
_HEDGE_VALUE = Purpose.HEDGE.value
_GUARD_CANCEL = Purpose.GUARD_CANCEL
_reprice_c = lib.fsig_reprice
_on_packet_c, _reprice_touched_c = lib.fsig_on_packet, lib.fsig_reprice_touched
_SIG_FALLBACK, _SIG_NOMEM, _SIG_TRIPPED = lib.FSIG_FALLBACK, lib.FSIG_NOMEM, lib.FSIG_TRIPPED
_SIG_CALIBRATE = lib.FSIG_CALIBRATE
_SIG_QUIET, _SIG_REACT, _SIG_FEED = lib.FSIG_QUIET, lib.FSIG_REACT, lib.FSIG_FEED
_SIG_MATURED_TRIPPED = lib.FSIG_MATURED_TRIPPED
_react_from_c = lib.fsig_react_from
_requote_may_act_c = lib.fsig_requote_may_act
_MEMO_N, _SENT_N = lib.FSIG_M_N, lib.FSIG_S_N
_S_PRICE4, _S_NS = lib.FSIG_S_PRICE4, lib.FSIG_S_NS
_STATE_OF = {int(state): state for state in TradingState}.__getitem__   # TradingState(v), one dict lookup
_on_packets_c = lib.fsig_on_packets
_pack_stamps = struct.pack
# PacketRun's struct code for its stamps: the native long where that is 8 bytes (LP64, as on
# Linux), the same bytes as "q" for every int64_t and the same struct.error past it, at about
# three quarters of the instructions per stamp (CPython 3.11 converts "q" through a byte array)
_STAMP = "l" if struct.calcsize("l") == 8 else "q"
_run_offsets = lib.fsig_run_offsets
_priced_c = lib.fsig_priced
HOLD_BOTH = 2                   # hedge_hold of an instrument two pairs hedge in opposite ways
_RUN_MAX_SEQUENCE = 1 << 62     # a run's sequence stays far below the C path's int64 limit
_NO_DEADLINE = (1 << 63) - 1    # fsig_on_packets' stop_after when the clock has none (inf)
_DAY_NS = 86_400 * 1_000_000_000
_own_fill_c = lib.fsig_own_fill_evaluate
_lane_fire_c = lib.flane_fire
_lane_input_c = lib.flane_fire_input
_LANE_MAX, _TOKEN_WIDTH = lib.FLANE_MAX, lib.FLANE_TOKEN
_LANE_NOT, _LANE_QUIET, _LANE_NOMEM = lib.FLANE_NOT, lib.FLANE_QUIET, lib.FLANE_NOMEM
_LANE_REFUSED = lib.FLANE_REFUSED
_FILL, _PARTIAL_FILL = Trigger.FILL, Trigger.PARTIAL_FILL
# The fill lane's frame (Engine._fill_lane): SoupBinTCP sequenced data ('S') carrying an OUCH
# Executed ('E': timestamp 8, token 14, shares 4, price 4, liquidity flag 1, match 8), whole.
_EXEC_FRAME = 3 + ouch.OUTBOUND_SIZES["E"]
_EXEC_HEAD = (_EXEC_FRAME - 2).to_bytes(2, "big") + b"SE"
_EXEC_TOKEN, _EXEC_SHARES, _EXEC_PRICE, _EXEC_FLAG = slice(12, 26), slice(26, 30), slice(30, 34), 34
assert _EXEC_FRAME == 43, "OUCH Executed changed size: update the fill lane's offsets"
_NO_PRICE = bytes(4)        # an execution price of 0: impossible (Engine._on_ouch halts on it)
_SendOrderBuilder = type("_SendOrderBuilder", SendOrder.__bases__, {"__slots__": SendOrder.__slots__})


def _lane_at_risk(order: Order, full: bool, bid: bool, ask: bool) -> Callable[[Order], bool]:
    """Which quotes a guard trip on our fill of `order` pulls (the sides `bid`/`ask`)."""
    token = order.token

    def at_risk(o: Order) -> bool:
        # booking a fill that leaves nothing ends the order and a replacement of it the venue
        # never answered (Oms.on_executed): neither is pulled, as after the booking
        return ((bid and o.side == _BUY) or (ask and o.side == _SELL)) and (
            not full or (o is not order and (o.orig_token != token or o.acked)))
    return at_risk


def _wire_token(token: str) -> bytes | None:
    """`token` as an OUCH frame carries it (14 bytes, space-padded), when the lane's decoding of
    those bytes (latin-1, trailing spaces stripped) gives it back; None otherwise."""
    if len(token) > _TOKEN_WIDTH or token != token.rstrip(" ") or not token.isascii():
        return None
    return token.encode().ljust(_TOKEN_WIDTH, b" ")


def _lane_table(lane, orders: list[Order]) -> bool:
    """The armed quotes into flane_fire's table; False (the C lane off) when it cannot hold them
    all as the Python lane reads them."""
    if len(orders) > _LANE_MAX:
        lane.n = 0
        return False
    tokens, origs = bytearray(), bytearray()
    for i, o in enumerate(orders):
        token, orig = _wire_token(o.token), _wire_token(o.orig_token)
        if token is None or orig is None:
            lane.n = 0
            return False
        tokens += token
        origs += orig
        state = o.fsm.state
        lane.symbol[i], lane.bid[i], lane.acked[i], lane.leaves[i] = o.symbol_id, o.side == _BUY, o.acked, o.leaves
        lane.legal_full[i] = (state, _FILL) in TRANSITIONS
        lane.legal_partial[i] = (state, _PARTIAL_FILL) in TRANSITIONS
    ffi.memmove(lane.token, bytes(tokens), len(tokens))
    ffi.memmove(lane.orig_token, bytes(origs), len(origs))
    lane.n = len(orders)
    return True


def _executed_frame(token: str, shares: int) -> bytes:
    """A SoupBinTCP sequenced frame of an OUCH Executed of our `token` (the lane's stand-in)."""
    return soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(ouch.Executed(0, token, shares, 1, "A", 1))))


def _send_order(intent: OrderIntent, packet: bytes, decision, trading_state: int) -> SendOrder:
    """SendOrder(intent, packet, decision, trading_state) without the frozen dataclass's
    per-field setattr calls (as types.make_intent builds an intent): the guard's pulls build one
    per cancel before they are handed over."""
    o = object.__new__(_SendOrderBuilder)
    o.intent, o.packet, o.decision, o.trading_state = intent, packet, decision, trading_state
    o.__class__ = SendOrder
    return o


class PacketRun:
    """Consecutive MarketData events as one buffer for Engine.on_packet_run (replay)."""

    __slots__ = ("events", "buf", "off", "ts", "_keep")

    def __init__(self, events: list) -> None:
        self.events = events
        packets = [ev.packet for ev in events]
        joined = b"".join(packets)
        # array.array converts a list of small ints (the lengths) at a fraction of what ffi.new's
        # initialiser costs, and C sums them into offsets in place; struct converts the stamps
        # (ints of several digits, _STAMP) for less than array.array. The C arrays are views of
        # these (kept alive with the packets' bytes).
        offsets = array("Q", [0, *map(len, packets)])
        stamps = _pack_stamps(f"{len(events)}{_STAMP}", *[ev.now_ns for ev in events])
        self._keep = (joined, offsets, stamps)
        self.buf = ffi.from_buffer("uint8_t[]", joined)
        self.off = off = ffi.from_buffer("uint64_t[]", offsets)
        _run_offsets(off, len(packets))
        self.ts = ffi.from_buffer("int64_t[]", stamps)

    @classmethod
    def over(cls, events, buf, off, ts, keep) -> "PacketRun":
        """A run over packets already in one buffer: packet i is buf[off[i]:off[i+1]], received
        at ts[i] (C pointers); `events` is any sequence whose item i is packet i's MarketData
        (the engine asks only for the ones C does not take); `keep` owns the memory."""
        run = cls.__new__(cls)
        run.events, run.buf, run.off, run.ts, run._keep = events, buf, off, ts, keep
        return run


unpack = ffi.unpack
_NULL = ffi.NULL


def feed_batched(engine: "Engine", events: list) -> None:
    """Every event through `engine` as replay's batch path takes them: each run of two or more
    consecutive MarketData events as a PacketRun through Engine.on_packet_run, the rest through
    on_event (the actions are dropped: for benchmarks and tests of the engine alone)."""
    on_event, on_run = engine.on_event, engine.on_packet_run
    for kind, group in groupby(events, type):
        if kind is not MarketData:
            for ev in group:
                on_event(ev)
            continue
        run = list(group)
        size = len(run)
        if size < 2:
            on_event(run[0])
            continue
        run, k = PacketRun(run), 0
        while k < size:
            k += on_run(run, k)[0]


def _needs_work(order: Order, price: int, qty: int) -> bool:
    """Whether _work_side would do anything to this resting quote (it acts only on an answered
    order whose price or size differs from the wanted one, or that must be pulled)."""
    state = order.fsm.state
    if state is not _ACCEPTED and state is not _PARTIAL:
        return False
    return qty <= 0 or price <= 0 or order.price != price or order.leaves != qty


class EngineError(Exception):
    """A bad engine setup (config, symbols or gateway that cannot work together)."""


def _unapplied(msg) -> str:
    """A venue message the OMS refused, as the halt alert names it: an execution with its token,
    shares, price and match number (inventory was not booked), anything else by kind and token."""
    name = type(msg).__name__
    if isinstance(msg, (ouch.Executed, ouch.ExecutedWithReferencePrice)):
        return f"{name} {msg.token} {msg.executed_shares}@{msg.execution_price} match {msg.match_number}"
    return f"{name} {getattr(msg, 'token', '')}"


def _fit(text: str, size: int) -> bytes:
    """`text` in UTF-8 cut to `size` bytes on a character boundary (a fixed-size journal field:
    a cut character would make the whole field unreadable). Operator texts are checked to fit
    before they get here (mm_core.control); this guards the engine's own texts."""
    data = text.encode()
    return data if len(data) <= size else data[:size].decode("utf-8", "ignore").encode()


def _option_params(spec, start_ns: int) -> OptionParams:
    """The gateway's valuation inputs of an [[options]] row, for a session that started at
    start_ns: the venue prices its options by Black-Scholes with no rates, per unit of underlying."""
    if not 0 < spec.expiry_days <= MAX_EXPIRY_DAYS:      # (NaN too) its ns would not be an integer
        raise RiskError(f"expiry_days {spec.expiry_days!r} outside (0, {MAX_EXPIRY_DAYS}]")
    return OptionParams(spec.id, spec.underlying, spec.reference_price,
                        start_ns + round(spec.expiry_days * _DAY_NS), spec.volatility, 0.0, spec.is_call, 1)


class Engine:
    """One trading session's decisions. `on_event(event) -> list[Action]`."""

    # our live quotes per symbol, derived from the OMS and rebuilt when its version moves (class
    # defaults: only ever reassigned; not pickled, so a loaded engine rebuilds them)
    _own_version: tuple[int, int] = (-1, -1)
    _own: dict = {}
    # compiled: the C mirrors of the Python-owned inputs the per-packet reaction reads
    # (mm_core.sigreact; not pickled, rebuilt from the Python state on load); None: reference
    _rx: ReactMirror | None = None
    quiet_packets = 0                   # compiled: packets whose whole reaction ended in C

    def __init__(self, config: EngineConfig, symbols: Symbols, risk_gateway, *, compiled: bool = True) -> None:
        if risk_gateway is None:
            raise EngineError("an engine needs a risk gateway")
        self.cfg = cfg = config
        self.quote_pricer = QuotePricer(cfg)   # _price_quote in C (fastquote.h)
        self.symbols = symbols
        self.risk = risk_gateway
        # the symbols file's options, declared to the gateway at the first event: their expiry
        # counts from the session's start (as the venue's does), which only the first event tells;
        # what the gateway would refuse then (a scenario grid past zero too) is refused now
        self.options_due = [s for s in symbols.symbols if s.is_option]
        for spec in self.options_due:
            try:
                risk_gateway.check_option(_option_params(spec, 0), 0)
            except RiskError as exc:
                raise EngineError(f"symbols: option {spec.name}: {exc}") from None
        n = symbols.n_slots
        self.n = n
        specs = symbols.by_id()
        self.specs = [specs.get(i) for i in range(n)]
        self.ticks = [TickTable(s.half_penny if s else False) for s in self.specs]
        if cfg.quoted:
            self.quoted = sorted(symbols.by_name(name).id for name in cfg.quoted)
        else:
            self.quoted = [s.id for s in symbols.symbols if not s.is_option]
        self.is_quoted = [False] * n
        for s in self.quoted:
            self.is_quoted[s] = True
        fv = cfg.fair_value
        # a book change deeper than the levels fair value reads cannot move it: those are watched
        watch = fv.imbalance_levels if fv.w_imbalance and fv.imbalance_levels > 0 else 1
        self.md = MarketDataPath(n, [sp is not None for sp in self.specs], watch_levels=watch)
        self.book = self.md.book
        self._bind()
        self.tracker = self.md.tracker
        self.stale = False
        self.gap_requested_ns = -1
        self.gap_requested_to = 0       # one past the last re-request's range: its answer is in then
        self.md_heard_ns = -1           # the last market-data packet (heartbeats too); -1: none yet
        # the last market-data message that could not be read and how many times it came so
        # (sequence, times): twice means its re-request brought the same bytes back
        self.md_unreadable = (-1, 0)
        # a digest of the packet that first failed at md_unreadable's sequence, until one copy of
        # exactly those bytes came again (the network's duplicate, see _md_message_unreadable)
        self.md_unreadable_packet = ""
        # alerts a flood of bad packets would repeat: one a second per kind (the rest counted)
        self.alert_gate = AlertGate()
        self.clock_pulled = False       # our quotes were pulled on a clock fault, not resumed yet
        ref_ticks = [self.ticks[i].tick_at(s.reference_price) if s else 1 for i, s in enumerate(self.specs)]
        self.ref_ticks = ref_ticks
        table = None
        if fv.micro_table:
            rows = [list(fv.micro_table[r * fv.n_imb:(r + 1) * fv.n_imb]) for r in range(fv.n_spread)]
            table = {s.id: rows for s in symbols.symbols}
        fv_args = dict(
            ticks=ref_ticks, n_imb=fv.n_imb, n_spread=fv.n_spread, tables=table,
            imbalance_levels=fv.imbalance_levels, level_decay=fv.level_decay,
            w_imbalance=fv.w_imbalance, w_flow=fv.w_flow,
            leaders={p.b: p.a for p in symbols.pairs}, lead_alpha=fv.lead_alpha,
            lead_prior=fv.lead_prior, lead_min_samples=fv.lead_min_samples,
            calibrate_every=fv.calibrate_every, base=fv.base)
        # compiled: tape, guards, fair value, volatility and hedge regressions live in the C signal
        # kernel (mm_core.sigkernel, mm_core.sigfair); otherwise on the Python reference classes
        # (same decisions, tests/mm_core/test_sig_engine.py)
        self.compiled = compiled
        pairs = {p.b: p.a for p in symbols.pairs}      # hedged (and follower) -> hedge (and leader)
        self.followers: list[list[int]] = [[] for _ in range(n)]
        for p in symbols.pairs:
            self.followers[p.a].append(p.b)
        vols = [VolEstimator(cfg.vol_rate, s.prior_sigma if s else 0.0) for s in self.specs]
        if compiled:
            setup = fv_setup(n, fv, ref_ticks, pairs, [s.prior_sigma if s else 0.0 for s in self.specs],
                             pairs, cfg.vol_rate, cfg.hedge, self.followers)
            self.sig = SignalKernel(n, cfg.guard, fv.flow_alpha, setup)
            self.fv = KernelFairValue(self.sig, n, **fv_args)
        else:
            self.sig = None
            self.fv = FairValueModel(n, flow_alpha=fv.flow_alpha, **fv_args)
        # a symbol and the followers to reprice with it, in order, without repeats
        self.with_followers = [list(dict.fromkeys([s] + self.followers[s])) for s in range(n)]
        self.vol = [KernelVol(self.sig, s, cfg.vol_rate) for s in range(n)] if compiled else vols
        # volatility quantised to 1/8 octave for the quote memo; recomputed only when the mid moves
        self.vol_q = [int(_log2(v.variance_per_s + 1.0) * 8) for v in self.vol]
        self.inventory = InventoryTracker(n)
        self.guards = self.sig.guards if compiled else [SymbolGuard(i, cfg.guard) for i in range(n)]
        self.hedger = KernelHedger(self.sig, pairs, cfg.hedge) if compiled else Hedger(pairs, cfg.hedge)
        self.hedge_of: list[list[int]] = [[] for _ in range(n)]     # hedge id -> hedged symbols
        for p in symbols.pairs:
            self.hedge_of[p.a].append(p.b)
        self.hedge_tokens: dict[str, int] = {}                       # hedge IOC token -> hedged symbol
        # per hedged symbol, the hold its pair's hedge puts on the hedge instrument: +1 while a
        # buy hedge is worked there (our asks are not quoted), -1 for a sell hedge and our bids:
        # no wash trade, and no quote undoing the hedge; per hedge instrument, what its pairs'
        # holds make together (HOLD_BOTH when two pairs hedge there opposite ways)
        self.pair_hold = [0] * n
        self.hedge_hold = [0] * n
        # per symbol, the hedged symbols whose hedge decision a change of it can move (itself when
        # it is hedged, then the symbols it hedges): built once, read per book update
        self.hedge_targets = [([s] if s in self.hedger.pairs else []) + self.hedge_of[s] for s in range(n)]
        # levels of the depth imbalance fair value reads; 0 when its weight is 0 (not computed)
        self.imb_levels = fv.imbalance_levels if fv.w_imbalance else 0
        self.imb_decay = fv.level_decay
        self.risk_refresh_ns = cfg.risk_refresh_ns
        self.wire = OrderWire(cfg.firm)           # order bytes, fixed parts encoded once
        self.ids = (cfg.algo_id, cfg.desk_id, cfg.trader_id, cfg.client_id)   # every intent's ids
        self.oms = Oms(cfg.session_prefix, self._encode_cancel)
        # the OMS working-order keys of our quotes, built once (they are looked up per book update)
        self.quote_slots = [((s, int(_BUY), Purpose.QUOTE.value), (s, int(_SELL), Purpose.QUOTE.value))
                            for s in range(n)]
        self.metrics = Metrics(n, cfg.markout_horizons_ns, cfg.adverse_horizon)
        self.mid2 = [0] * n
        self.risk_sent: list[tuple[int, bool, int]] = [(0, False, 0)] * n   # (fair, stale, ns) last told
        self.quote_memo: list[tuple | None] = [None] * n           # last quote inputs and result
        self.halted_symbols = [False] * n       # not trading: venue_halted, or a scoped kill covers it
        self.venue_halted = [False] * n         # ITCH trading action: not trading
        self.ssr = [False] * n                  # ITCH Reg SHO 'Y': Rule 201 price test in force
        # per hedged symbol: its hedge was cut or held back by the price test in force (alerted once)
        self.price_test_alerted = [False] * n
        self.tape = self.sig.tape if compiled else TradeTape(n)   # recent prints, for Broken Trade reversal
        self.denied_until: dict[tuple[int, int, str], int] = {}
        self.next_metrics_ns = -1
        self.now = 0
        self.venue_seq = 0                      # SoupBinTCP sequenced messages processed
        # where this engine's session joined the venue's (its first LoginAccepted's sequence; 0
        # not yet): the account's messages before it are an earlier session's of the day
        self.venue_joined = 0
        self.counts = {"events": 0, "md_packets": 0, "md_messages": 0, "protocol_errors": 0,
                       "book_errors": 0, "gaps": 0, "guard_trips": 0, "orders_sent": 0,
                       "cancels_sent": 0, "denials": 0, "fills": 0, "halts": 0, "md_session_changes": 0,
                       "venue_rejects": 0, "md_skipped": 0, "md_foreign": 0, "md_ends": 0,
                       "md_unrecoverable": 0, "md_duplicates": 0, "alerts_held": 0,
                       "md_gap_packets": 0}
        # The I/O shell's early sink for the guard's pulls (None in replay): called with the pull
        # cancels the moment the guard trips, so they are journaled and sent before the rest of the
        # event's work (reprice, requote, hedge; on our own fill, before the fill is even decoded
        # and booked: _fill_lane). The pulls are the event's first orders either way,
        # so the orders a replay produces, in order, are the ones the live session sent.
        self.urgent: Callable[[list[Action]], None] | None = None
        # The shell's armed sink (None in replay): the guard's pulls as orders, journaled and
        # sent from what the shell planned while idle (pull_plan) before _cancel_order builds
        # them; it returns the call that books the built pulls, or None (nothing done: they go to
        # `urgent`). _armed: the pullable quotes per symbol at _armed_version of the OMS.
        self.urgent_armed: Callable[[list[Order]], Callable[[list[SendOrder]], None] | None] | None = None
        self._armed: dict[int, list[Order]] = {}
        self._armed_version: tuple[int, int] | None = None
        self._lane_probe: bytes | None = None       # an Executed frame of an armed quote (_warm_lane)
        # The shell's C lane (None in replay): urgent_lane() gives its flane_sink filled for a
        # fire now (ffi.NULL: none), urgent_lane_booked(pulls) books what the sink sent. With
        # _armed_flat (the armed quotes in the OMS's order) and _lane_c holding them (_lane_ok:
        # all of them, as the wire names them), flane_fire runs the own-fill lane in one C call.
        self.urgent_lane: Callable[[], object] | None = None
        self.urgent_lane_booked: Callable[[list[SendOrder]], None] | None = None
        self._armed_flat: list[Order] = []
        self._lane_ok = False
        self._lane_first: tuple[bytes, int] | None = None   # (frame, rc) lane_first fired, for on_event
        self._bind_sig()
        self._handlers: dict[type, Callable[[object], list[Action]]] = {
            MarketData: self._on_market_data, VenueMessage: self._on_venue, Timer: self._on_timer,
            ClockSample: self._on_clock, OperatorCommand: self._on_operator,
            JournalHealth: self._on_journal_health, Reconciled: self._on_reconciled,
        }

    def _bind(self) -> None:
        """The C book's handle and a reusable top-of-book buffer, read directly on the hot path
        (not pickled: rebuilt when a snapshot is loaded)."""
        self._bh = self.book.handle
        self._top = ffi.new("int64_t[4]")

    def _bind_sig(self) -> None:
        """Compiled: mid2 and vol_q are the kernel's arrays (not pickled: the kernel's blob has them)."""
        if self.sig is not None:
            self.mid2 = self.sig.iarray(lib.FSIG_I_MID2)
            self.vol_q = self.sig.iarray(lib.FSIG_I_VOL_Q)
            self._sh = self.sig.handle
            self._fair_out = ffi.new("double *")
            self._lane_trip = ffi.new("fsig_trip *")
            self._lane_c = ffi.new("flane_armed *")     # the armed quotes as flane_fire reads them
            n = self.n
            self._priced_out = ffi.new("uint32_t[]", n)
            pkt = self._pkt = ffi.new("fsig_packet *")
            self._pkt_keep = [ffi.new("fsig_trip[]", n), ffi.new("uint32_t[]", n), ffi.new("double[]", n)]
            pkt.trips, pkt.touched, pkt.fairs = self._pkt_keep
            pkt.summary = self._summary = self.md.summary
            pkt.depth, pkt.decay = self.imb_levels, self.imb_decay
            # fsig_on_packets' outputs (on_packet_run): the quiet packets taken and their messages
            self._run_done, self._run_messages = ffi.new("uint32_t *"), ffi.new("uint64_t *")
            self._pkt_own_version = None        # the own-quote table is rebuilt on first use
            self._work_version = None           # and the work mirror (_work_mirror)
            # each slot's reference price, for the gateway's feed log (_feeds_from_c)
            self._references = [spec.reference_price if spec else 0 for spec in self.specs]
            rx = self._rx = ReactMirror(self)
            pkt.react = self._react_c = rx.r
            self._risk_to_react()
            self.hedger.mirror = rx.pair

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_bh"], state["_top"]
        if self.sig is not None:
            for name in ("mid2", "vol_q", "_sh", "_fair_out", "_lane_trip", "_priced_out", "_pkt", "_pkt_keep",
                         "_pkt_own_version", "_work_version", "_rx", "_react_c", "_summary", "_risk_seen",
                         "_references", "_run_done", "_run_messages", "_lane_c"):
                state.pop(name, None)
        state["urgent"] = None          # the shell's sink belongs to the process, not the state
        state["urgent_armed"] = None
        state["_armed"], state["_armed_version"], state["_lane_probe"] = {}, None, None   # a cache of the OMS
        state["urgent_lane"] = state["urgent_lane_booked"] = None
        state["_armed_flat"], state["_lane_ok"], state["_lane_first"] = [], False, None
        state.pop("_own", None)         # C arrays derived from the OMS: rebuilt on first use
        state.pop("_own_version", None)
        state.pop("_own_arrays", None)
        return state

    def __setstate__(self, state: dict) -> None:
        # a snapshot from before the signal kernel restores as an engine on the reference classes
        state.setdefault("sig", None)
        state.setdefault("compiled", False)
        # from before feed silence was watched: restores, then fails its header's state hash
        state.setdefault("md_heard_ns", -1)
        state.setdefault("gap_requested_to", 0)
        state.setdefault("options_due", [])
        state.setdefault("clock_pulled", False)
        state.setdefault("ssr", [False] * state["n"])
        state.setdefault("venue_halted", list(state["halted_symbols"]))    # from before scoped kills
        state.setdefault("price_test_alerted", [False] * state["n"])
        state["counts"].setdefault("md_session_changes", 0)
        state["counts"].setdefault("venue_rejects", 0)
        for name in ("md_skipped", "md_foreign", "md_ends", "md_unrecoverable", "md_duplicates", "alerts_held",
                     "md_gap_packets"):
            state["counts"].setdefault(name, 0)
        state.setdefault("alert_gate", AlertGate())
        state.setdefault("md_unreadable", (-1, 0))
        state.setdefault("md_unreadable_packet", "")
        if "pair_hold" not in state:    # from before holds were per pair: each pair keeps its
            # instrument's hold until its own hedge decision clears it
            hold = state["hedge_hold"]
            state["pair_hold"] = [0] * len(hold)
            for h, t in ((h, t) for h, ts in enumerate(state["hedge_of"]) for t in ts):
                state["pair_hold"][t] = hold[h]
        if state.get("quote_pricer") is None:
            state["quote_pricer"] = QuotePricer(state["cfg"])
        self.__dict__.update(state)
        self.urgent = self.urgent_armed = None
        self._armed, self._armed_version, self._lane_probe = {}, None, None
        self.urgent_lane = self.urgent_lane_booked = None
        self._armed_flat, self._lane_ok, self._lane_first = [], False, None
        self._bind()
        self._bind_sig()

    # ================================================================= the one entry point

    def on_event(self, event) -> list[Action]:
        handler = self._handlers.get(type(event))
        if handler is None:
            raise EngineError(f"not an engine event: {type(event).__name__}")
        now = event.now_ns
        aged = None
        if now > self.now:
            self.now = now          # time never runs backwards inside the engine
            if now > self.risk.clock_stale_at and type(event) is not Timer:   # a timer: in its order
                aged = self._clock_aged()
        if self.options_due:
            self._declare_options()
        self.counts["events"] += 1
        actions = handler(event)
        if aged:
            aged += actions
            actions = aged
        self._drain_risk(actions)
        return actions

    # ================================================================= market data

    def _declare_options(self) -> None:
        """Every option of the symbols file to the risk gateway (its Greeks and scenario limits
        then bind on the option's underlying and the option), expiring expiry_days from now."""
        options, self.options_due = self.options_due, []
        for spec in options:
            p = _option_params(spec, self.now)
            self.risk.on_option_params(p.symbol_id, p.underlying_id, p.strike, p.expiry_ns, p.vol,
                                       p.rate, p.is_call, p.multiplier, self.now)

    def _on_market_data(self, ev: MarketData) -> list[Action]:
        heard_before = self.md_heard_ns
        self.md_heard_ns = self.now
        early = None
        if self.now >= self.metrics.next_due_ns:
            # markouts due by now are marked before this packet moves the mids: the book held
            # the pre-packet mid from the last packet until now, the exact mid at their horizons
            early = []
            self._mature_markouts(early)
        if self.sig is not None and not self.stale:
            actions = self._on_packet_compiled(ev)
            if actions is not None:
                return early + actions if early else actions
        return self._on_packet_python(ev, early or [], heard_before)

    def _on_packet_python(self, ev: MarketData, actions: list[Action], heard_before: int) -> list[Action]:
        """_on_market_data's reference path (after the markouts due matured into `actions`):
        decode, sequence, book, guard, reprice and react in Python."""
        now = self.now
        tracker = self.tracker
        self.counts["md_packets"] += 1
        ended, in_gap = tracker.end_of_session, tracker.in_gap
        try:
            try:
                update = self.md.on_packet(ev.packet, not self.compiled)
            except SessionMismatch as exc:
                if exc.received in self.md.ended_sessions:
                    raise                       # a late packet of a session we left: not followed back
                if not self._md_session_changed(exc, ev.packet, heard_before, actions):
                    self.md_heard_ns = heard_before     # not our session's: shows it neither alive
                    return actions
                update = self.md.on_packet(ev.packet, not self.compiled)   # the new session's first
        except ProtocolError as exc:
            self.md_heard_ns = heard_before     # a packet we cannot read shows no feed alive
            self.counts["protocol_errors"] += 1
            actions.append(self._alert("md-protocol-error", str(exc)))
            return actions
        if tracker.end_of_session and not ended:
            self._md_end_of_session(actions)
        if update is None:
            # a heartbeat announcing no message we lack: the feed is alive and the books whole (a
            # duplicate packet announces nothing new, so it proves neither); never after the end
            if self.stale and not tracker.in_gap and not tracker.end_of_session and \
                    moldudp64.decode_header(ev.packet).is_heartbeat:
                self._book_current(actions)
                self._feed_risk_all(priced_only=True)
                self._react(list(self.quoted), actions)
            return actions
        if type(update) is _GAP:
            # a gap is counted once, when it opens; every packet that comes past it (not applied,
            # re-requested with the gap) is counted apart
            self.counts["md_gap_packets"] += 1
            if not in_gap:
                self.counts["gaps"] += 1
            if not self.stale:
                self._go_stale(f"gap: expected {update.expected} got {update.received}", actions)
            self._request_gap(actions)
            return actions
        if update.skipped:
            self.counts["md_skipped"] += len(update.skipped)
            for text in update.skipped:
                self._alert_gated("md-unknown-message", text, actions)
        if update.malformed is not None:
            self._md_message_unreadable(*update.malformed, ev.packet, actions)
        self.counts["md_messages"] += update.n_messages
        if update.errors:
            self.counts["book_errors"] += len(update.errors)
            for text in update.errors:
                actions.append(self._alert("book-error", text))
        printed = update.printed
        if printed:
            prints = update.prints
            if prints is None:          # compiled: the kernel reads the packet path's C summary
                self.tape.on_summary(self.md.summary)
            else:
                self.tape.on_prints(prints, self.guards, self.fv)
        for s, halted in update.halts:
            self.venue_halted[s] = halted
            self._set_halted(s)
        restricted = self._on_reg_sho(update.reg_sho, actions) if update.reg_sho else ()
        for since_midnight in update.day_starts:
            self._on_day_start(since_midnight)
        touched = update.touched
        for match in update.breaks:
            s = self._break_trade(match, actions)
            if s >= 0 and s not in touched:
                touched = touched + [s]
        if self.stale and not tracker.in_gap and not tracker.end_of_session:
            self._book_current(actions)
            touched = touched + self.quoted     # every quote was pulled: decide all of them again
            recovered = True
        else:
            recovered = False
            if tracker.in_gap and self.gap_requested_ns >= 0 and tracker.next_expected >= self.gap_requested_to:
                # the re-request was answered in full and a gap is left (the packets that came
                # while it was out were past the gap, not applied): the rest is asked for at
                # once, not after rerequest_timeout with the quotes pulled meanwhile
                self._request_gap(actions, answered=True)
        # The guard runs first: pulls go out ahead of every other signal's reaction.
        for symbol_id in printed:
            trip = self.guards[symbol_id].evaluate(now)
            if trip is not None:
                self._pull_on_trip(trip, actions)
        # the changed symbols, then the followers whose fair value leads from them (first seen order)
        if len(touched) == 1:
            touched = self.with_followers[touched[0]]
        elif touched:
            followers = self.followers
            touched = list(dict.fromkeys(touched + [f for s in touched for f in followers[s]]))
        reprice = self._reprice
        for symbol_id in touched:
            reprice(symbol_id)
        if recovered:
            self._feed_risk_all(priced_only=True)   # every book the gap made stale is current again
        self._react(touched, actions)
        for s in restricted:            # quotes and hedges decided again under the new price test
            if s not in touched:
                self._react_one(s, actions)
        return actions

    def _on_reg_sho(self, changes: list[tuple[int, bool]], actions: list[Action]) -> list[int]:
        """ITCH Reg SHO messages: the symbols whose Rule 201 restriction changed (journaled); the
        gateway is told each message (it applies the price test itself)."""
        changed = []
        for s, restricted in changes:
            self.risk.on_reg_sho(s, restricted, self.now)
            if self.ssr[s] != restricted:
                self.ssr[s] = restricted
                changed.append(s)
                for t in self.hedge_of[s]:      # a new restriction alerts its held-back hedges again
                    self.price_test_alerted[t] = False
                actions.append(self._alert("reg-sho", f"{self.specs[s].name}: short sale price test "
                                           f"{'in force' if restricted else 'lifted'}"))
        return changed

    def _on_day_start(self, since_midnight: int) -> None:
        """ITCH System Event 'O': the venue's trading day begins. Its day is the calendar date of
        the midnight its timestamp counts from (this packet's time less the timestamp), read at
        noon of that day: a date, not a time, so the clock's TAI-UTC offset or a skew of hours
        cannot move it. The gateway gives back the locates used on an earlier day."""
        self.risk.on_trading_day((self.now - since_midnight + _DAY_NS // 2) // _DAY_NS, self.now)

    def _on_packet_compiled(self, ev: MarketData) -> list[Action] | None:
        """The common case in one C call (fsig_on_packet: packet, prints, guards, reprice of the
        touched symbols and their followers, then stage 2: which risk feeds are due and whether
        anything of the reaction can act, on the mirrors of mm_core.sigreact); None when the packet
        needs the Python path (the C call then changed nothing). Same state changes, in the same
        order, as the path below: Python runs the feeds due and the reaction of exactly the
        symbols C found may act."""
        md = self.md
        expected = md.fast_sequence()
        if expected is None:
            return None
        oms = self.oms
        if (oms.transitions, oms.counter) != self._pkt_own_version:
            self._own_table()
        pkt = self._pkt
        pkt.now_ns = self.now
        self._risk_if_moved()
        packet = ev.packet
        rc = _on_packet_c(self._sh, self._bh, packet, len(packet), md.session_raw, expected, pkt)
        if rc == _SIG_FALLBACK:
            return None
        return self._packet_applied(rc)

    def _packet_applied(self, rc: int) -> list[Action]:
        """The rest of _on_packet_compiled once fsig_on_packet applied a packet and returned rc."""
        if rc == _SIG_NOMEM:
            raise MemoryError("fastsig: out of memory applying a packet")
        md, pkt, react = self.md, self._pkt, self._react_c
        summary = self._summary
        n_messages = summary.n_messages
        md.fast_applied(n_messages)
        counts = self.counts
        counts["md_packets"] += 1
        counts["md_messages"] += n_messages
        actions: list[Action] = []
        if summary.n_errors:
            errors = md.errors()
            counts["book_errors"] += len(errors)
            for text in errors:
                actions.append(self._alert("book-error", text))
        if rc == _SIG_QUIET:            # no feed due, nothing of the reaction can act
            if react.n_memo:            # memo misses C priced (stage 3)
                self._rx.memos_from_c(self.quote_memo, _STATE_OF)
            self.quiet_packets += 1
            return actions
        if rc == _SIG_TRIPPED:
            # the guard first: pulls go out ahead of every other signal's reaction
            trips = pkt.trips
            for i in range(pkt.n_trips):
                self._pull_on_trip(trip_of(trips[i]), actions)
            self._own_table()
            self._risk_if_moved()
            rc = _reprice_touched_c(self._sh, self._bh, pkt)
        while rc == _SIG_CALIBRATE:
            self.fv.estimators[pkt.touched[pkt.next]].calibrate()
            rc = _reprice_touched_c(self._sh, self._bh, pkt)
        n_touched = pkt.n_touched
        touched = unpack(pkt.touched, n_touched)
        if rc == _SIG_FEED:             # the feeds due, in order; then what of the reaction may act
            fairs, feed = pkt.fairs, self._feed_risk
            for i in unpack(react.feed, react.n_feed):
                feed(touched[i], fairs[i])
            self._own_table()
            self._risk_if_moved()
            rc = _react_from_c(self._sh, self._bh, pkt, 0)
        if react.n_memo:
            self._rx.memos_from_c(self.quote_memo, _STATE_OF)
        if rc == _SIG_REACT:
            if react.markouts:
                self._markouts_then_react(touched, actions)
            else:
                self._react_from(touched, react.work_at, actions)
        return actions

    def prepare(self) -> None:
        """Idle-time upkeep for the shell to call between events: the own-quote table and the
        work mirror the next packet's C call reads, rebuilt now if the OMS moved since. A cache
        of the OMS, so no decision and no state hash depends on whether or when it runs. Then the
        guard's pulls armed (_arm: the pullable quotes per symbol, for the shell's plan and the
        armed sink; a toxic event comes once in thousands, and this keeps its walk warm too) and a
        cancel intent built and dropped; they read state and change none."""
        if self._rx is not None and not self.stale:
            self._own_table()
        self._arm()
        if self._lane_probe is not None:
            self._warm_lane()
        make_intent(_CANCEL, "", 0, _BUY, 0, 0, self.ids, purpose=_GUARD_CANCEL)

    def _arm(self) -> None:
        """The pullable quotes of every symbol, in the OMS's order, as _pullable(_QUOTE, match, s)
        would list them for any symbol s and side match, while the OMS stays at this version."""
        oms = self.oms
        version = (oms.transitions, oms.counter)
        if version == self._armed_version:
            return
        armed: dict[int, list[Order]] = {}
        probe = None
        flat = self._pullable(_QUOTE)
        for order in flat:
            armed.setdefault(order.symbol_id, []).append(order)
            if probe is None and order.acked:
                probe = _executed_frame(order.token, order.leaves)
        self._armed, self._armed_version, self._lane_probe = armed, version, probe
        self._armed_flat = flat
        self._lane_ok = self.sig is not None and _lane_table(self._lane_c, flat)

    def _warm_lane(self) -> None:
        """The own-fill lane's reading parts run on a stand-in fill of an armed quote (the whole
        of it, as a toxic fill would take them, the guard's C call and the pulls' sending left
        out): a toxic fill comes once in thousands of events and would find them cold."""
        hit = self._lane_fill(self._lane_probe)
        if hit is not None:
            order, full = hit
            self._armed_pulls(order.symbol_id, _lane_at_risk(order, full, True, True))

    @property
    def armed(self) -> dict[int, list[Order]]:
        """The pullable quotes per symbol as prepare() last armed them, at armed_version."""
        return self._armed

    @property
    def armed_orders(self) -> list[Order]:
        """The armed quotes in the OMS's order (their indexes are flane_fire's)."""
        return self._armed_flat

    @property
    def armed_version(self) -> tuple[int, int] | None:
        """The OMS version (transitions, tokens) prepare() last armed at."""
        return self._armed_version

    def pull_plan(self, order: Order) -> SendOrder:
        """The guard's cancel of `order` as _cancel_order would build it now, the gateway's
        verdict read, not counted: what the shell plans while idle, so that a trip's pulls are
        journaled and sent before the engine builds them. Changes no state."""
        intent, packet = self._cancel_parts(order, _GUARD_CANCEL)
        verdict = self.risk.cancel_verdict
        return _send_order(intent, packet, verdict, int(verdict.state))

    def on_packet_run(self, run: PacketRun, start: int) -> tuple[int, list[Action]]:
        """run.events[start:] (MarketData only) as on_event would take them one by one, in C
        calls (fsig_on_packets) while they end quiet: returns how many were taken (at least one)
        and the actions of the last one taken (the ones before it had none). Replay's batch path:
        the same state changes, counts and decisions as on_event for each. A packet the C hands
        back to Python (a reaction that may act, markouts due that the C could not mature or that
        tripped a guard) whose work ends with no action does not end the call: the run goes on
        from the next packet (the caller would only have counted it, as it counts the quiet ones).
        Markouts due inside the run mature in C (fsig_mature, on mm_core.sigmature's copy of
        Metrics' queues), as _mature_markouts would before each packet."""
        size = len(run.events)
        taken = 0
        while True:
            step, actions = self._packet_run_step(run, start + taken)
            taken += step
            if actions or start + taken >= size:
                return taken, actions

    def _packet_run_step(self, run: PacketRun, start: int) -> tuple[int, list[Action]]:
        """on_packet_run up to and including the first packet the C does not end quiet."""
        events = run.events
        md = self.md
        expected = md.fast_sequence() if self.sig is not None and not self.stale else None
        if expected is None or expected > _RUN_MAX_SEQUENCE or self.options_due:
            return 1, self.on_event(events[start])
        oms, react = self.oms, self._react_c
        if (oms.transitions, oms.counter) != self._pkt_own_version:
            self._own_table()
        self._risk_if_moved()
        metrics, rx = self.metrics, self._rx
        rx.markouts.markouts_for(metrics)   # the C matures the markouts due in the run itself
        done, messages, end = self._run_done, self._run_messages, len(events)
        # the C call stops before the packet past the clock's deadline: on_event judges the clock
        stale_at = self.risk.clock_stale_at
        rc = _on_packets_c(self._sh, self._bh, run.buf, run.off, run.ts, start, end, md.session_raw,
                           expected, self.now, stale_at if stale_at < _NO_DEADLINE else _NO_DEADLINE,
                           self._pkt, done, messages)
        taken = done[0]
        self.now = self.md_heard_ns = self._pkt.now_ns     # on_event's time, up to the last packet C looked at
        if react.mk_matured:            # into Metrics before any Python reads it
            rx.markouts.from_c(metrics)
            rx.seen_metrics(metrics)
        if react.n_flog:                # the feeds C deferred, before anything else runs
            self._feeds_from_c(react)
        if taken:                       # the quiet ones: on_event's and the packet path's counts
            counts = self.counts
            counts["events"] += taken
            counts["md_packets"] += taken
            counts["md_messages"] += messages[0]
            self.quiet_packets += taken - react.n_fed   # on_event counts a packet that fed apart
            react.n_fed = 0
            md.fast_packets += taken     # MarketDataPath.fast_applied, `taken` times
            tracker = md.tracker
            tracker.next_expected = nxt = tracker.next_expected + messages[0]
            if nxt > tracker.highest_announced:
                tracker.highest_announced = nxt
            if react.n_memo:
                self._rx.memos_from_c(self.quote_memo, _STATE_OF)
        if start + taken == end:
            return taken, []
        ev = events[start + taken]
        if rc == _SIG_MATURED_TRIPPED:  # not applied: the markouts due by it matured, a guard tripped
            step, actions = self._markouts_before(ev, tripped=True)
            return taken + step, actions
        if rc == _SIG_FALLBACK:         # not applied: the one-by-one path takes it
            at = ev.now_ns if ev.now_ns > self.now else self.now
            if self.metrics.next_due_ns <= at <= self.risk.clock_stale_at:
                step, actions = self._markouts_before(ev)
                return taken + step, actions
            return taken + 1, self.on_event(ev)
        self.counts["events"] += 1      # on_event's prologue and epilogue around the rest
        actions = self._packet_applied(rc)
        self._drain_risk(actions)
        return taken + 1, actions

    def _markouts_before(self, ev: MarketData, tripped: bool = False) -> tuple[int, list[Action]]:
        """A packet fsig_on_packets handed back because markouts are due by its time: on_event's
        prologue and _on_market_data's start (the markouts mature at the mid the book held before
        the packet; `tripped`: fsig_mature matured them there and guards tripped, the trips in
        self._pkt, so only the pulls are left). When that pulled nothing and left nothing due, the
        packet goes back to the C run: 0 taken (the next C call applies and counts it, its feeds
        deferred as the others'). Otherwise the rest of on_event takes it: 1 taken and its actions."""
        now = ev.now_ns
        if now > self.now:
            self.now = now              # before the clock's deadline: the run stops there
        heard_before = self.md_heard_ns
        self.md_heard_ns = now = self.now
        actions: list[Action] = []
        if tripped:                     # _mature_markouts' pulls, in the order it evaluates
            pkt = self._pkt
            trips = pkt.trips
            for i in range(pkt.n_trips):
                self._pull_on_trip(trip_of(trips[i]), actions)
        else:
            self._mature_markouts(actions)
        if not actions and now < self.metrics.next_due_ns:
            return 0, actions
        self.counts["events"] += 1
        if not self.stale:
            more = self._on_packet_compiled(ev)
            if more is not None:
                actions += more
                self._drain_risk(actions)
                return 1, actions
        actions = self._on_packet_python(ev, actions, heard_before)
        self._drain_risk(actions)
        return 1, actions

    def _feeds_from_c(self, react) -> None:
        """The risk feeds fsig_on_packets deferred, in order, each at its packet's time: what
        _feed_risk does for them (the book is not stale here; C already wrote the sent mirror)."""
        n = react.n_flog
        react.n_flog = 0
        rx = self._rx
        syms, fairs, times = rx.flog
        # each symbol's last feed is the one risk_sent keeps: the sent mirror, which C wrote
        # feed by feed as _feed_risk would (int(fair + 0.5), not stale, the packet's time)
        sent, mirror = self.risk_sent, rx.sent
        for s in dict.fromkeys(unpack(syms, n)):
            b = s * _SENT_N
            sent[s] = (mirror[b + _S_PRICE4], False, mirror[b + _S_NS])
        self.risk.on_feed_log(n, syms, fairs, times, self._references)

    def _risk_if_moved(self) -> None:
        """_risk_to_react when the gateway's state or limits version moved: the multipliers and
        the collar it also writes follow from those two (new limits always have a higher version)."""
        risk = self.risk
        if risk.state is not self._risk_seen or risk.limits_version != self._react_c.limits_version:
            self._risk_to_react()

    def _risk_to_react(self) -> None:
        """The gateway's state, limits version, multipliers and collar into the reaction's mirror."""
        risk = self.risk
        self._risk_seen = risk.state
        self._rx.set_risk(risk)

    def _react_from(self, touched: list[int], i: int, actions: list[Action]) -> None:
        """Compiled _react without due markouts: the reference code for touched[i], then the C
        check from the next symbol on (after refreshing the mirrors the work may have moved)."""
        n = len(touched)
        react_one = self._react_one
        while True:
            react_one(touched[i], actions)
            i += 1
            if i >= n:
                return
            self._work_mirror()
            self._risk_if_moved()
            rc = _react_from_c(self._sh, self._bh, self._pkt, i)
            if self._react_c.n_memo:
                self._rx.memos_from_c(self.quote_memo, _STATE_OF)
            if rc == _SIG_QUIET:
                return
            i = self._react_c.work_at

    def _markouts_then_react(self, touched: list[int], actions: list[Action]) -> None:
        """Compiled _react when fsig_react_from found markouts due: they mature (the guard may
        pull), then the C check, on mirrors refreshed after that, picks the touched symbols that
        may act, as when none were due; the reference loop if markouts are still due."""
        self._mature_markouts(actions)
        self._work_mirror()
        self._risk_if_moved()
        react = self._react_c
        rc = _react_from_c(self._sh, self._bh, self._pkt, 0)
        if react.n_memo:
            self._rx.memos_from_c(self.quote_memo, _STATE_OF)
        if rc == _SIG_QUIET:
            return
        if react.markouts:
            react_one = self._react_one
            for symbol_id in touched:
                react_one(symbol_id, actions)
            return
        self._react_from(touched, react.work_at, actions)

    def _own_table(self) -> None:
        """Our live quotes of every symbol as fsig_packet's own-quote table (what the C reprice
        of a touched symbol takes out of the book top) and the work mirror, rebuilt when the OMS
        moved. Every C call that reprices is preceded by this."""
        oms = self.oms
        version = (oms.transitions, oms.counter)
        if version == self._pkt_own_version:
            return
        self._own_for(-1)               # refreshes self._own and the arrays it points into
        self._pkt_own_version = version
        self._work_mirror(version)
        table, pkt = self._own_arrays, self._pkt
        if not table.total:
            pkt.own_px = _NULL
            return
        pkt.own_px, pkt.own_qty, pkt.own_off, pkt.own_nb, pkt.own_na = (
            table.px, table.qty, table.off, table.nb, table.na)

    def _work_mirror(self, version: tuple[int, int] | None = None) -> None:
        """The reaction's work mirror (our working quotes) rebuilt when the OMS moved since: all
        fsig_requote_may_act reads of our orders (not the own-quote table, which _own_table adds)."""
        if version is None:
            oms = self.oms
            version = (oms.transitions, oms.counter)
        if version != self._work_version:
            self._work_version = version
            self._rx.set_work(self)

    def _react(self, touched: list[int], actions: list[Action]) -> None:
        """After the reprice: matured markouts (after a packet, only those that waited for a mid:
        the due ones matured before it), then each touched symbol's requote and hedges."""
        now = self.now
        metrics = self.metrics
        if now >= metrics.next_due_ns or metrics.blocked:
            self._mature_markouts(actions)
        react_one = self._react_one
        for symbol_id in touched:
            react_one(symbol_id, actions)

    def _react_one(self, symbol_id: int, actions: list[Action]) -> None:
        """One touched symbol's requote, then the hedges a change of it can move."""
        if self.is_quoted[symbol_id]:
            self._requote(symbol_id, actions)
        for hedged in self.hedge_targets[symbol_id]:
            self._hedge(hedged, actions)

    def _break_trade(self, match: int, actions: list[Action]) -> int:
        """ITCH Broken Trade: the tape reverses the print; journaled either way. Returns its
        symbol or -1."""
        r = self.tape.break_trade(match, self.guards, self.fv)
        if r is None:
            actions.append(self._alert("trade-break-unknown", f"match {match}: not among the last "
                                       f"{TAPE_MAX} prints"))
            return -1
        actions.append(self._alert("trade-broken", f"match {match} symbol {r.symbol_id} "
                                   f"{'buy' if r.aggressor_buys else 'sell'} {r.qty} reversed: flow=True "
                                   f"window={r.window} vpin={r.vpin}"))
        return r.symbol_id

    def _go_stale(self, reason: str, actions: list[Action]) -> None:
        """A gap or a silent feed: the book cannot be trusted until current data shows it is.
        Pull every quote now."""
        self.stale = True
        actions.append(self._alert("book-stale", reason))
        self._feed_risk_all()
        self._cancel_all(Purpose.QUOTE, actions, guard=False)

    def _md_session_changed(self, exc: SessionMismatch, packet: bytes, heard_before: int,
                            actions: list[Action]) -> bool:
        """A packet of another MoldUDP64 session. The feed moves to it (True) only when that
        session shows a consistent stream (MarketDataPath.foreign) while the followed one has
        ended or gone silent (no packet of it for longer than the market-data age limit): a
        venue restarted after a crash starts a new session, its books rebuilt from its first
        message. One stray, corrupted or foreign packet never wipes the books: it is journaled
        and the quotes pulled (the followed session's next packet shows the book current again).
        On a move nothing of the old session's books holds: pull the quotes, drop the books and
        follow the new session from its sequence 1; the packets before the first one heard are a
        gap, re-requested as any other."""
        consistent = self.md.foreign(packet)
        silent = heard_before < 0 or self.now - heard_before > self.risk.limits.max_market_age_ns
        if not (consistent and (silent or self.tracker.end_of_session)):
            self.counts["md_foreign"] += 1
            why = "its stream not yet consistent" if not consistent else "the followed session is live"
            self._alert_gated("md-foreign-session", f"{exc}: not followed ({why})", actions)
            if not self.stale:
                self._go_stale(f"a packet of another market-data session {exc.received!r}", actions)
            return False
        self.counts["md_session_changes"] += 1
        actions.append(self._alert("md-session-change", str(exc)))
        if not self.stale:
            self._go_stale(f"market-data session changed ({exc})", actions)
        self.md.new_session()
        return True

    def _md_end_of_session(self, actions: list[Action]) -> None:
        """MoldUDP64 End of Session: the venue sends nothing more in this session, so the books
        will not follow the market again: pull the quotes now (not at the silence limit). Stale
        until a new session is followed (its first message rebuilds the books)."""
        self.counts["md_ends"] += 1
        actions.append(self._alert("md-end-of-session", f"session {self.tracker.session!r} ended "
                                   f"at {self.tracker.highest_announced}"))
        if not self.stale:
            self._go_stale("market-data session ended", actions)

    def _md_message_unreadable(self, sequence: int, text: str, packet: bytes, actions: list[Action]) -> None:
        """A message of a known type that could not be read: the book may miss what it said, so
        it is stale from here, and the message is re-requested (the tracker stopped before it).
        The same message unreadable again once re-requested will not come right by asking:
        escalate (journaled, a kill of everything latches HALTED) so that an operator acts.

        UDP duplicates packets, and a duplicate of the failed packet may come before the
        re-request's answer. The engine cannot tell a duplicate from an answer by when it came (it
        sees no wire, and both come after the re-request), so it decides by bytes: the first
        packet bearing exactly the bytes of the one that failed is taken as the network's
        duplicate (counted in md_duplicates, alerted, not escalated); a failure in any other
        packet (a retransmission is framed from the requested sequence), or a second identical
        copy, answers the re-request and escalates. A venue whose retransmission repeats the
        original bytes exactly is escalated one re-request later (the timer's next one): the
        book stays stale and the quotes pulled meanwhile, so the delay costs no safety."""
        digest = hashlib.blake2b(packet, digest_size=16).hexdigest()
        last, times = self.md_unreadable
        if last == sequence and times and digest == self.md_unreadable_packet:
            self.md_unreadable_packet = ""          # one duplicate only: the next copy is an answer
            self.counts["md_duplicates"] += 1
            actions.append(self._alert("md-duplicate-unreadable", f"sequence {sequence}: the same packet "
                                       "again, taken as the network's duplicate, not the re-request's answer"))
            self._request_gap(actions)
            return
        self.counts["protocol_errors"] += 1
        actions.append(self._alert("md-protocol-error", f"sequence {sequence}: {text}"))
        times = times + 1 if last == sequence else 1
        if times == 1:
            self.md_unreadable_packet = digest
        self.md_unreadable = (sequence, times)
        if not self.stale:
            self._go_stale(f"market-data message {sequence} unreadable", actions)
        if times == 2:
            self.counts["md_unrecoverable"] += 1
            reason = f"market data unrecoverable at sequence {sequence}"
            actions.append(self._alert("md-unrecoverable", f"{reason}: re-requested, unreadable again ({text})"))
            kill = self.risk.kill("all", 0, "engine", reason[:64], self.now)
            actions.append(self._kill_note(kill, self._cancel_all(None, actions, guard=False)))
        self._request_gap(actions)

    def _book_current(self, actions: list[Action]) -> None:
        """A packet with no gap before it ended a gap, a silence or the wait after reconciliation."""
        self.stale = False
        self.gap_requested_ns = -1
        actions.append(self._alert("book-recovered", f"market data current at {self.tracker.next_expected}"))

    def _check_feed_alive(self, now: int, actions: list[Action]) -> None:
        """A feed heard from once and silent for longer than the gateway's market-data age limit
        (no packet, not even a MoldUDP64 heartbeat): the books may be far from the market, as
        after a gap. The timer below refreshes each price's age for the gateway, which is only
        true while packets arrive; the next packet ends it (book-recovered)."""
        heard = self.md_heard_ns
        limit = self.risk.limits.max_market_age_ns
        if heard >= 0 and not self.stale and now - heard > limit:
            self._go_stale(f"market data silent for {(now - heard) // 1_000_000} ms "
                           f"(limit {limit // 1_000_000} ms)", actions)

    def _feed_risk_all(self, priced_only: bool = False) -> None:
        """The feed's staleness changed: tell the gateway for every symbol with a fair value, not
        just the ones the packet touched (one left stale there would hold its fault open).
        `priced_only`: skip a book that cannot be priced now (one side empty): it stays stale."""
        fair_values, specs, mid2 = self.fv.fair, self.specs, self.mid2
        for symbol_id in range(self.n):
            fair = fair_values[symbol_id]
            if specs[symbol_id] is not None and fair > 0 and (mid2[symbol_id] > 0 or not priced_only):
                self._feed_risk(symbol_id, fair)

    def _request_gap(self, actions: list[Action], answered: bool = False) -> None:
        """Re-request the gap: at once when the last request was `answered`, else when none is
        out or it went unanswered for rerequest_timeout (the packet or answer may be lost)."""
        now = self.now
        if not answered and self.gap_requested_ns >= 0 and now - self.gap_requested_ns < self.cfg.rerequest_timeout_ns:
            return
        request = self.tracker.request(self.cfg.rerequest_max_count)
        if request is None:
            return
        self.gap_requested_ns = now
        self.gap_requested_to = request.sequence + request.count
        actions.append(RequestRetransmit(moldudp64.encode_request(request), request.sequence, request.count))

    def _reprice(self, symbol_id: int) -> None:
        """Fair value and volatility after the book changed; tell the risk gateway."""
        if self.sig is not None:
            # compiled: _market_top, fv.update, vol and hedger.observe below in one C call
            own = self._own_for(symbol_id)
            out = self._fair_out
            if own is None:
                rc = _reprice_c(self._sh, self._bh, symbol_id, self.imb_levels, self.imb_decay,
                                _NULL, _NULL, 0, 0, self.now, out)
            else:
                rc = _reprice_c(self._sh, self._bh, symbol_id, self.imb_levels, self.imb_decay,
                                own[0], own[1], own[2], own[3], self.now, out)
            fair = self.fv.calibrate_and_finish_reprice(symbol_id) if rc else out[0]
            if fair > 0:
                self._feed_risk(symbol_id, fair)
            return
        top = self._top
        depth = self._market_top(symbol_id, top)
        b, bq, a, aq = top
        fv = self.fv
        fair = fv.update(symbol_id, b, bq, a, aq, depth)
        if fair <= 0:
            self.mid2[symbol_id] = 0
            return
        mid2 = b + a
        self.mid2[symbol_id] = mid2
        vol = self.vol[symbol_id]
        if vol.update(mid2 * 0.5, self.now):
            self.vol_q[symbol_id] = int(_log2(vol.variance_per_s + 1.0) * 8)
        self._feed_risk(symbol_id, fair)
        pair = self.hedger.pairs.get(symbol_id)
        if pair is not None:
            self.hedger.observe(symbol_id, fv.mids[symbol_id], fv.mids[pair.hedge_id])

    def _feed_risk(self, symbol_id: int, fair: float, force: bool = False) -> None:
        """Tell the gateway a symbol's fair value when its price4 value or staleness changed, or
        when the last report is older than risk_refresh_ns (its market-data age must stay fresh)."""
        now = self.now
        stale = self.stale
        last = self.risk_sent[symbol_id]
        if stale and last[0] == 0:
            return      # catching up at start: never quoted on, so nothing to fail closed about
        fair_price4 = int(fair + 0.5)
        if force or last[0] != fair_price4 or last[1] != stale or now - last[2] >= self.risk_refresh_ns:
            self.risk_sent[symbol_id] = (fair_price4, stale, now)
            rx = self._rx
            if rx is not None:
                b = symbol_id * _SENT_N
                rx.sent[b:b + _SENT_N] = [fair_price4, int(stale), now]
            self.risk.on_market(symbol_id, fair, self.specs[symbol_id].reference_price, stale, now)

    # ================================================================= quoting

    def _requote(self, symbol_id: int, actions: list[Action]) -> None:
        bid_px, bid_qty, ask_px, ask_qty = self._quote(symbol_id)
        hold = self.hedge_hold[symbol_id]
        if hold:                        # a hedge here waits for this side of our quotes to go
            if hold != -1:              # a buy hedge (+1, or HOLD_BOTH)
                ask_qty = 0
            if hold != 1:               # a sell hedge (-1, or HOLD_BOTH)
                bid_qty = 0
        if ask_qty and self.ssr[symbol_id]:
            # Rule 201: a short sale only above the national best bid (the ask is post-only, so
            # already there; kept as the rule's own check whatever the pricing does)
            nbb = self._nbb(symbol_id)
            if nbb and ask_px <= nbb:
                ask_px = self.ticks[symbol_id].tick_above(nbb)
        oms = self.oms
        orders, working = oms.orders, oms.working
        bid_key, ask_key = self.quote_slots[symbol_id]
        bid, ask = working.get(bid_key), working.get(ask_key)
        if self.risk.state is _REDUCING and (bid_qty or ask_qty):
            # the quote is priced at most |position|; our other working orders on that side
            # count against it too (the gateway's reduce-only check adds them all up)
            if bid_qty:
                bid_qty = min(bid_qty, self._reduce_room(symbol_id, True, bid))
            if ask_qty:
                ask_qty = min(ask_qty, self._reduce_room(symbol_id, False, ask))
        # Self-trade prevention: a side that would reach our own opposite quote works after that
        # quote moved away, and waits (next event) if it could not move yet (or the venue has not
        # confirmed the move: the gateway counts the original's price until it does).
        if ask and bid_qty and bid_px >= self._reach(orders[ask], False):
            self._requote_side(symbol_id, _SELL, ask, ask_px, ask_qty, actions)
            ask = working.get(ask_key)
            if not ask or bid_px < self._reach(orders[ask], False):
                self._requote_side(symbol_id, _BUY, bid, bid_px, bid_qty, actions)
            return
        self._requote_side(symbol_id, _BUY, bid, bid_px, bid_qty, actions)
        bid = working.get(bid_key)
        if bid and ask_qty and ask_px <= self._reach(orders[bid], True):
            return
        self._requote_side(symbol_id, _SELL, ask, ask_px, ask_qty, actions)

    def _reduce_room(self, symbol_id: int, buy: bool, token: str | None) -> int:
        """REDUCING: the most shares an order on this side may hold and still pass the gateway's
        reduce-only check: |position| less every other order the gateway counts on that side
        (`token`, the order being resized in place, does not count; None: every order counts, as
        for a replace, whose original counts until the venue answers). The venue
        takes odd lots, so the room is not rounded to lots."""
        position = self.risk.position(symbol_id)
        if buy == (position >= 0):
            return 0                    # this side adds to |position|
        others = 0
        for t, (s, is_buy, qty, _) in self.risk.working_orders().items():
            if s == symbol_id and is_buy == buy and t != token:
                others += qty
        room = abs(position) - others
        return room if room > 0 else 0

    def _reach(self, order: Order, bid: bool) -> int:
        """The most aggressive price this quote may rest at: a replacement the venue has not
        answered may still be its original, at the original's price."""
        price = order.price
        if order.orig_token and order.fsm.state is _PENDING_NEW:
            orig = self.oms.orders.get(order.orig_token)
            if orig is not None and orig.fsm.state not in TERMINAL:
                return (orig.price if orig.price > price else price) if bid else \
                    (orig.price if orig.price < price else price)
        return price

    def _requote_side(self, symbol_id: int, side: Side, token: str | None, price: int, qty: int,
                      actions: list[Action]) -> None:
        """_work_side only when it may act: no order yet, or one resting that differs from the quote."""
        if token is None and not qty:
            return
        order = self.oms.orders[token] if token else None
        if order is None or _needs_work(order, price, qty):
            self._work_side(symbol_id, side, order, price, qty, actions)

    def _quote(self, symbol_id: int) -> tuple[int, int, int, int]:
        """(bid price, bid size, ask price, ask size) wanted now; a zero size pulls the side.

        Memoised on every input it reads, so an unchanged situation costs one tuple compare."""
        key = self._quote_key(symbol_id)
        if key is None:
            return 0, 0, 0, 0
        memo = self.quote_memo[symbol_id]
        if memo is not None and memo[0] == key:
            return memo[1]
        quote = self._price_quote(symbol_id, self.fv.fair[symbol_id], key[3], self.guards[symbol_id],
                                  key[1], key[2])
        self.quote_memo[symbol_id] = (key, quote)
        rx = self._rx
        if rx is not None:
            b = symbol_id * _MEMO_N
            rx.memo[b:b + _MEMO_N] = [1, *key, *quote]
        return quote

    def _quote_key(self, symbol_id: int) -> tuple | None:
        """The quote memo's key: every input of _price_quote, quantised to what can move a quote
        (fsig_quote_key is its C mirror); None when no quote may rest (stale, unpriced, halted)."""
        risk = self.risk
        state = risk.state
        fair = self.fv.fair[symbol_id]
        if self.stale or fair <= 0 or state is _HALTED or self.halted_symbols[symbol_id]:
            return None
        guard = self.guards[symbol_id]
        now = self.now
        m = self.metrics
        top = self._top
        _top_depth(self._bh, symbol_id, 0, 0.0, top)
        held = 0
        for hedged in self.hedge_of[symbol_id]:     # _hedge_held(), inlined
            held += self.hedger.hedged(hedged)
        # Inputs quantised to what can move a quote: fair to 1/8 tick, volatility to 1/8 octave,
        # toxicity to 0.05 (a requote threshold: smaller moves keep the resting quotes).
        return (int(fair * 8 / self.ref_ticks[symbol_id]), top[0], top[2], state,
                self.inventory.position[symbol_id], held,
                self.vol_q[symbol_id],
                guard.bid_until > now, guard.ask_until > now, int(guard.toxicity() * 20),
                m.markout_n[m.adverse_horizon], risk.limits_version)

    def _price_quote(self, symbol_id: int, fair: float, state: TradingState, guard: SymbolGuard,
                     best_bid: int, best_ask: int) -> tuple[int, int, int, int]:
        """The quote wanted now: skew (GLFT or Avellaneda-Stoikov), widening, the collar cap,
        rounding to the tick table, sizes. One C call (mm_core/fastquote.h); the reference is
        mm_core.quotepricer.price_reference, proven equal by tests/mm_core/test_quotepricer.py."""
        if self.compiled:
            return engine_price_quote(self, symbol_id, fair, state, guard, best_bid, best_ask)
        return self._price_quote_py(symbol_id, fair, state, guard, best_bid, best_ask)

    def _price_quote_py(self, symbol_id: int, fair: float, state: TradingState, guard: SymbolGuard,
                        best_bid: int, best_ask: int) -> tuple[int, int, int, int]:
        """_price_quote in Python (mm_core.quotepricer.price_reference): the engine on the
        reference classes (compiled=False) prices with it."""
        return engine_price_reference(self, symbol_id, fair, state, guard, best_bid, best_ask)

    def _market_top(self, symbol_id: int, top) -> float:
        """Fill `top` with everyone else's best bid and ask and return their depth imbalance: our
        own resting quotes are taken out (fmd_top_depth_without; fairvalue.without_own is the
        reference), so fair value, volatility and markouts never price off them. An order of ours
        in any live state counts at its price (clamped at what the level holds): the ITCH and OUCH
        answers to it may arrive in either order, and a level hidden for one event only makes
        the next quote more cautious."""
        own = self._own_for(symbol_id)
        if own is None:
            return _top_depth(self._bh, symbol_id, self.imb_levels, self.imb_decay, top)
        return _top_depth_without(self._bh, symbol_id, self.imb_levels, self.imb_decay,
                                  own[0], own[1], own[2], own[3], top)

    def _own_for(self, symbol_id: int):
        """Our live quotes of one symbol as _own_quotes() gives them, or None."""
        oms = self.oms
        version = (oms.transitions, oms.counter)
        if version != self._own_version:
            self._own_version = version
            self._own = self._own_quotes()
        return self._own.get(symbol_id)

    def _own_quotes(self) -> dict:
        """symbol -> (prices, shares, n bid prices, n ask prices) of our live quotes, as the C
        arrays fmd_top_depth_without reads (bid prices first): views into mm_core.ownquotes'
        arrays, rewritten in place (no C allocation per rebuild)."""
        table = self.__dict__.get("_own_arrays")
        if table is None:
            table = self._own_arrays = OwnQuotes(self.n)
        return table.rebuild(self.oms.live.values())

    def _hedge_held(self, symbol_id: int) -> int:
        """Shares of this symbol held as hedges for other symbols (not quoting inventory)."""
        held = 0
        for hedged in self.hedge_of[symbol_id]:
            held += self.hedger.hedged(hedged)
        return held

    def _work_side(self, symbol_id: int, side: Side, order: Order | None, price: int, qty: int,
                   actions: list[Action]) -> None:
        if order is None:
            if qty > 0 and price > 0 and not self._quote_denied(symbol_id, side):
                self._submit(make_intent(_ENTER, self.oms.new_token(), symbol_id, side, price, qty,
                                         self.ids), actions)
            return
        state = order.fsm.state
        if state is not _ACCEPTED and state is not _PARTIAL:
            return                       # an answer is pending: decide again when it arrives
        if qty <= 0 or price <= 0:
            self._cancel(order, Purpose.QUOTE, actions)
        elif order.price == price and qty < order.leaves:
            # a size-down at the same price: OUCH Modify keeps the token and the queue position
            if not self._quote_denied(symbol_id, side):
                self._submit(make_intent(_MODIFY, order.token, symbol_id, side, price, qty, self.ids),
                             actions)
        elif order.price != price or order.leaves != qty:
            if self._can_wait(order, side, price, qty):
                return
            denied = self._quote_denied(symbol_id, side)
            if not denied and order.mark == "S" and not self._long_sells(symbol_id, qty)[0]:
                # the replacement would keep the original's long marking (OUCH Replace keeps the
                # side) without the position to cover it: pull it; it comes back marked short
                self._cancel(order, Purpose.QUOTE, actions)
                return
            if not denied and self.risk.state is _REDUCING and \
                    qty > self._reduce_room(symbol_id, side == _BUY, None):
                # the gateway counts the original with its replacement until the venue answers
                # (the original may fill first, then the replacement rests in full): no room for
                # both, so pull it; the quote comes back, sized to the room, once it is gone
                self._cancel(order, Purpose.QUOTE, actions)
                return
            sent = not denied and self._submit(
                make_intent(_REPLACE, self.oms.new_token(), symbol_id, side, price, qty, self.ids,
                            orig_token=order.token), actions)
            if not sent and (order.price > price if side == _BUY else order.price < price):
                # the move away was refused (or is backing off): the old price is now better
                # for whoever trades against it than we want to give, so it must not rest on
                self._cancel(order, Purpose.QUOTE, actions)

    def _can_wait(self, order: Order, side: Side, price: int, qty: int) -> bool:
        """A step of one tick toward the market, or more size at the same price, waits until the
        quote has rested requote_rest_ns: such steps are where a fair value a hair either side of
        a tick flips the quote back and forth (hundreds of replaces a second eat the gateway's
        message rate). Moving away, shrinking and pulling never wait."""
        if self.now - order.sent_ns >= self.cfg.requote_rest_ns or qty < order.leaves:
            return False
        step = price - order.price if side == _BUY else order.price - price
        low = price if price < order.price else order.price
        return 0 <= step <= self.ticks[order.symbol_id].tick_at(low)

    def _quote_denied(self, symbol_id: int, side: Side) -> bool:
        """A quote on this side is backing off after a gateway denial (_submit would refuse it):
        checked before an order token is taken, so a refused attempt changes no state (the C
        reaction's side_acts reads the same from its `denied` mirror)."""
        return self.denied_until.get((symbol_id, int(side), _QUOTE_VALUE), -1) > self.now

    def _submit(self, intent: OrderIntent, actions: list[Action]) -> bool:
        """Risk check, then OMS, then the SoupBinTCP bytes; a denial is journaled, not raised."""
        key = (intent.symbol_id, int(intent.side), intent.purpose.value)
        now = self.now
        if self.denied_until.get(key, -1) > now:
            return False
        faults = self.risk.fault_bits
        if faults and (faults != _BOOK_STALE_BIT or self.risk_sent[intent.symbol_id][1]):
            # An input is not healthy yet (e.g. no clock sample since start): asking would only
            # latch the gateway; quoting starts once every input has reported healthy. A stale
            # book blocks only its own symbol (the gateway denies per symbol): the others quote.
            return False
        mark, at_risk = "B", ()
        if intent.side == _SELL:
            if intent.kind is _ENTER or intent.kind is _REPLACE:
                mark, at_risk = self._sell_mark(intent)
                if mark is None:
                    self._back_off(key, intent.purpose)
                    actions.append(self._alert("short-sale-price-test", f"{intent.purpose.value} short sale "
                                               f"{intent.token} of {intent.qty} at {intent.price} not sent: "
                                               f"Rule 201 restriction, national best bid {self._nbb(intent.symbol_id)}"))
                    return False
            else:                       # a Modify carries the order's marking
                mark = self.oms.orders[intent.token].mark
        # the bytes first: an intent that cannot be encoded fails here, before the gateway counts
        # it or the OMS records it (a recorded order never sent would wait for an answer forever)
        packet = self._encode(intent, mark)
        # the gateway checks the marking and Rule 201 itself: the bid it tests against, while the
        # price test is in force (it denies a short sale on a symbol it knows restricted without one)
        decision = self.risk.check(intent, now, mark,
                                   self._nbb(intent.symbol_id) if self.ssr[intent.symbol_id] else None)
        if not decision.allowed:
            self.counts["denials"] += 1
            self._back_off(key, intent.purpose)
            actions.append(self._decision_note(intent, decision))
            return False
        if decision.check is not _CHECK_OK:     # allowed under an exception: journaled with the order
            actions.append(self._decision_note(intent, decision))
        for order in at_risk:           # long-marked sells this one would leave uncovered: out first
            self._cancel(order, order.purpose, actions)
        order = self.oms.on_sent(intent, now)
        if intent.kind is _ENTER:
            order.mark = mark
        actions.append(_send_order(intent, packet, decision, int(decision.state)))
        self.counts["orders_sent"] += 1
        if intent.purpose is _QUOTE:
            # a modify sizes down shares already quoted: the fill rate counts them once
            self.metrics.on_quote_sent(intent.side, 0 if intent.kind is _MODIFY else intent.qty)
        return True

    def _long_sells(self, symbol_id: int, qty: int, skip: str = "") -> tuple[bool, list[Order]]:
        """(covered, pullable): whether our position covers `qty` more shares sold on top of the
        leaves of every working sell (Reg SHO: long only if owned, whichever sell executes first),
        and the working sells marked long that could still execute after a new order (not an
        IOC, no cancel on its way, not `skip`)."""
        room, marked, _ = self._sell_room(symbol_id, skip)
        return qty <= room, marked

    def _sell_room(self, symbol_id: int, skip: str = "") -> tuple[int, list[Order], int]:
        """(room, pullable, pulling): the shares our position covers beyond the leaves of every
        working sell, the working sells marked long that could still execute after a new order
        (not an IOC, no cancel on its way: neither pending cancel nor an outcome-unknown order
        whose cancel was sent, not `skip`), and the leaves of the long-marked sells pending
        cancel (covered again once the venue confirms the cancels)."""
        committed, marked, pulling = 0, [], 0
        for o in self.oms.live.values():
            if o.symbol_id == symbol_id and o.side == _SELL:
                committed += o.leaves
                if o.mark != "S" or o.tif == ouch.TIF_IOC or o.token == skip:
                    continue
                if o.fsm.state is _PENDING_CANCEL:
                    pulling += o.leaves
                elif not o.cancel_sent:
                    marked.append(o)
        return self.inventory.position[symbol_id] - committed, marked, pulling

    def _sell_mark(self, intent: OrderIntent) -> tuple[str | None, list[Order]]:
        """A new sell's OUCH side and the long-marked sells to pull before it: "S" only when our
        position covers it and every other working sell, else "T" (never "E": no exemption
        applies to our quoting or hedging); a replacement keeps its original's. None when the
        Rule 201 price test forbids it (a short sale at or below the national best bid)."""
        s = intent.symbol_id
        covered, marked = self._long_sells(s, intent.qty, intent.orig_token)
        if intent.kind is _REPLACE:
            mark = self.oms.orders[intent.orig_token].mark
        else:
            mark = "S" if covered else "T"
        if mark != "S" and self.ssr[s]:
            nbb = self._nbb(s)
            if nbb and intent.price <= nbb:
                return None, []
        return mark, [] if covered else marked

    def _check_marks(self, symbol_id: int, actions: list[Action]) -> None:
        """Pull the working sells marked long that our position no longer covers."""
        covered, marked = self._long_sells(symbol_id, 0)
        if not covered:
            for order in marked:
                self._cancel(order, order.purpose, actions)

    def _nbb(self, symbol_id: int) -> int:
        """The best bid of the whole book, ours included (0: none)."""
        top = self._top
        _top_depth(self._bh, symbol_id, 0, 0.0, top)
        return top[0]

    def _back_off(self, key: tuple[int, int, str], purpose: Purpose) -> None:
        """No new enter or replace on this (symbol, side, purpose) for deny_backoff_ns of event
        time (the C reaction reads the quotes' back-off from its `denied` mirror)."""
        self.denied_until[key] = until = self.now + self.cfg.deny_backoff_ns
        if purpose is _QUOTE and self._rx is not None:
            self._rx.denied[2 * key[0] + (key[1] != int(_BUY))] = until

    def _cancel_order(self, order: Order, purpose: Purpose) -> SendOrder:
        """The cancel of the rest of an order, with the bytes encoded when it was accepted, as
        the gateway checked it (always allowed; counted for the rate). The caller tells the OMS."""
        intent, packet = self._cancel_parts(order, purpose)
        decision = self.risk.check(intent, self.now)
        return _send_order(intent, packet, decision, int(decision.state))

    def _cancel_parts(self, order: Order, purpose: Purpose) -> tuple[OrderIntent, bytes]:
        intent = make_intent(_CANCEL, order.token, order.symbol_id, order.side, order.price, 0,
                             self.ids, purpose=purpose)
        return intent, order.cancel_packet or self._encode_cancel(order.token)

    def _cancel(self, order: Order, purpose: Purpose, actions: list[Action]) -> None:
        """Cancel the rest of an order with the bytes encoded when it was accepted."""
        action = self._cancel_order(order, purpose)
        self.oms.on_sent(action.intent, self.now)
        actions.append(action)
        self.counts["cancels_sent"] += 1

    def _pullable(self, purpose: Purpose | None, match: Callable[[Order], bool] | None = None,
                  symbol_id: int = -1) -> list[Order]:
        """The orders of `purpose` (None: any) on `symbol_id` (-1: any) that `match` (None: all)
        takes and that may rest at the venue, including those it has not answered yet: a cancel
        by token lands after the enter (or replace) it follows. An IOC never rests; an order with
        a cancel on its way (pending cancel, or outcome-unknown after it) is not pulled again. In
        the OMS's order."""
        pullable = []
        for order in self.oms.live.values():     # same order as oms.orders, terminal ones left out
            if symbol_id >= 0 and order.symbol_id != symbol_id:
                continue
            st = order.fsm.state
            if st in TERMINAL or st is _PENDING_CANCEL or (st is _PENDING_NEW and order.tif == ouch.TIF_IOC):
                continue
            if st is _UNKNOWN and order.cancel_sent:
                continue                # its cancel is on its way already (sent before or after the timeout)
            if purpose is not None and order.purpose is not purpose:
                continue
            if match is not None and not match(order):
                continue
            pullable.append(order)
        return pullable

    def _cancel_all(self, purpose: Purpose | None, actions: list[Action], guard: bool,
                    match: Callable[[Order], bool] | None = None, symbol_id: int = -1) -> int:
        """Cancel every _pullable order (a cancel changes no other order's standing)."""
        orders = self._pullable(purpose, match, symbol_id)
        for order in orders:
            self._cancel(order, Purpose.GUARD_CANCEL if guard else order.purpose, actions)
        return len(orders)

    def _pull_on_trip(self, trip: Trip, actions: list[Action]) -> None:
        """Cancel our resting quotes on the side(s) at risk, before anything else reacts."""
        s = trip.symbol_id

        def at_risk(order: Order) -> bool:
            return (trip.bid and order.side == _BUY) or (trip.ask and order.side == _SELL)
        urgent = self.urgent
        if urgent is None or any(type(a) is SendOrder for a in actions):
            # no shell sink (replay), or orders of this event are already queued ahead: keep order
            pulled = self._cancel_all(Purpose.QUOTE, actions, guard=True, match=at_risk, symbol_id=s)
        else:
            # every pull built (and checked by the gateway) first, then handed out; the OMS hears
            # of them after, in the same order and at the same time as _cancel_all tells it (a
            # cancel changes no other order's standing, nor what the gateway decides for it)
            pulls = self._urgent_pulls(s, at_risk)
            for action in pulls:
                self.oms.on_sent(action.intent, self.now)
            self.counts["cancels_sent"] += len(pulls)
            pulled = len(pulls)
        self._trip_noted(trip, pulled, actions)

    def _urgent_pulls(self, s: int, at_risk: Callable[[Order], bool]) -> list[SendOrder]:
        """The guard's pulls of symbol s (the quotes `at_risk` takes) handed to the shell's sinks.
        Armed (the OMS as prepare() left it): the shell journals and sends them from its plan
        first, then they are built and checked (the gateway counts them) and booked by the call
        the shell returned. Else built first, then handed to `urgent`. The same pulls, in the
        same order, with the same gateway calls either way; the caller tells the OMS."""
        fire = self.urgent_armed
        orders = self._armed_pulls(s, at_risk) if fire is not None else None
        if orders is not None:
            booked = fire(orders) if orders else None
        else:
            orders, booked = self._pullable(_QUOTE, at_risk, s), None
        pulls = [self._cancel_order(o, _GUARD_CANCEL) for o in orders]
        if booked is not None:
            booked(pulls)
        elif pulls:
            self.urgent(pulls)
        return pulls

    def _armed_pulls(self, s: int, at_risk: Callable[[Order], bool]) -> list[Order] | None:
        """What _pullable(_QUOTE, at_risk, s) gives, from the armed lists; None when the OMS moved
        since they were armed. Reads only."""
        oms = self.oms
        if self._armed_version != (oms.transitions, oms.counter):
            return None
        return [o for o in self._armed.get(s, ()) if at_risk(o)]

    def _trip_noted(self, trip: Trip, pulled: int, actions: list[Action]) -> None:
        """A guard trip counted and alerted, once its pulls are out."""
        self.counts["guard_trips"] += 1
        actions.append(self._alert("guard-trip", f"symbol {trip.symbol_id} bid={trip.bid} ask={trip.ask} "
                                   f"{trip.reason_text} aggression={trip.aggression:.3f} "
                                   f"vpin={trip.vpin:.3f} pulled={pulled}"))

    def _fill_lane(self, raw: bytes, actions: list[Action]) -> list[SendOrder] | None:
        """The quote guard on our own fill, read straight off the frame (`raw`: a whole
        SoupBinTCP sequenced data frame with an OUCH Executed): when it names a live quote of
        ours whose fill the OMS will book, the guard hears of the fill and decides now, and its
        pulls are built (pre-encoded cancels, checked by the gateway) and handed to the urgent
        sink (or queued first) before the message is decoded and the fill booked. The OMS hears
        of the pulls after the fill (_on_fill), as it did when the guard ran there, so it ends
        in the same state. Returns those pulls ([]: the guard decided, nothing pulled), or None:
        not such a fill (the guard hears of it in _on_fill). Replay runs the same code; a live
        session's armed quotes take the C lane (flane_fire: the same checks, guard and pulls, the
        pulls journaled and sent by the shell's sink inside that call; or from the shell's frame
        read before this event: lane_first)."""
        first = self._lane_first
        if first is not None:
            self._lane_first = None
            if first[0] is not raw:      # never: the shell feeds the frame it fired at once
                raise EngineError("lane_first fired on another frame than the one fed")
            return self._lane_fired(first[1], actions)
        lane = self.urgent_lane
        if lane is not None and self._lane_ok and self.urgent is not None:
            oms = self.oms
            if self._armed_version == (oms.transitions, oms.counter):
                rc = _lane_fire_c(self._sh, self._lane_c, lane(), raw, len(raw), self.now, self._lane_trip)
                if rc != _LANE_NOT:
                    return self._lane_fired(rc, actions)
        hit = self._lane_fill(raw)
        if hit is None:
            return None
        order, full = hit
        s, now, bid_side = order.symbol_id, self.now, order.side == _BUY
        if self.sig is not None:
            t = self._lane_trip
            rc = _own_fill_c(self._sh, s, bid_side, now, t)
            if rc != _SIG_TRIPPED:
                if rc == _SIG_NOMEM:
                    raise MemoryError("fastsig: own fill")
                return []
            bid, ask, trip = t.bid, t.ask, None
        else:
            trip = self.guards[s].on_own_fill_evaluate(bid_side, now)
            if trip is None:
                return []
            bid, ask = trip.bid, trip.ask
        at_risk = _lane_at_risk(order, full, bid, ask)
        if self.urgent is None:
            pulls = [self._cancel_order(o, _GUARD_CANCEL) for o in self._pullable(_QUOTE, at_risk, s)]
            actions += pulls
        else:
            pulls = self._urgent_pulls(s, at_risk)
        self._trip_noted(trip or trip_of(t), len(pulls), actions)
        return pulls

    def lane_first(self, raw: bytes, now: int, sink, soup_seq: int, ts_ns: int, ts_source: int) -> int:
        """The shell's hook on a venue frame it read, before it is an event: when on_event of it at
        `now` would start with the C lane (no clock ageing or option to declare first, the lane
        armed on the OMS as it is), flane_fire_input journals the frame through `sink` (stamped
        ts_ns, ts_source; `soup_seq` its SoupBinTCP sequence) and fires the lane, and the next
        on_event of this very frame books what it did. FLANE_NOT: nothing done (on_event does it
        all); FLANE_REFUSED: the journal refused the frame (the engine must not hear it)."""
        oms = self.oms
        if (not self._lane_ok or self.urgent is None or self.options_due
                or (now > self.now and now > self.risk.clock_stale_at)
                or self._armed_version != (oms.transitions, oms.counter)):
            return _LANE_NOT
        rc = _lane_input_c(self._sh, self._lane_c, sink, raw, len(raw), max(now, self.now), self._lane_trip,
                           soup_seq, ts_ns, ts_source)
        if rc != _LANE_NOT and rc != _LANE_REFUSED:
            self._lane_first = (raw, rc)
        return rc

    def _lane_fired(self, rc: int, actions: list[Action]) -> list[SendOrder]:
        """The rest of _fill_lane after flane_fire heard the fill: the pulls it chose built and
        checked (the gateway counts them), booked by the shell when its sink sent them, else
        handed to `urgent`; the trip noted, as the Python lane does."""
        if rc == _LANE_NOMEM:
            raise MemoryError("fastsig: own fill")
        if rc == _LANE_QUIET:
            return []
        a, flat = self._lane_c, self._armed_flat
        pulls = [self._cancel_order(flat[j], _GUARD_CANCEL) for j in unpack(a.pulled, a.n_pulled)]
        if a.sent:
            self.urgent_lane_booked(pulls)
        elif pulls:
            self.urgent(pulls)
        self._trip_noted(trip_of(self._lane_trip), len(pulls), actions)
        return pulls

    def _lane_fill(self, raw: bytes) -> tuple[Order, bool] | None:
        """(the live quote of ours an OUCH Executed frame fills, whether the fill ends it) when
        the OMS will book that fill; None: not a fill the lane takes. Reads only: prepare() runs
        it on a stand-in fill of an armed quote (_lane_probe), so a real one finds it warm."""
        if raw[_EXEC_FLAG] > 127:        # a liquidity flag the decoder refuses: nothing is applied
            return None
        order = self.oms.live.get(raw[_EXEC_TOKEN].decode("latin-1").rstrip(" "))
        if order is None or order.purpose is not _QUOTE:
            return None
        qty, leaves = int.from_bytes(raw[_EXEC_SHARES], "big"), order.leaves
        full = qty == leaves
        if (not 0 < qty <= leaves or raw[_EXEC_PRICE] == _NO_PRICE or not order.acked
                or (order.fsm.state, _FILL if full else _PARTIAL_FILL) not in TRANSITIONS):
            return None                  # the OMS refuses it (a halt): the guard never hears of it
        return order, full

    # ================================================================= hedging

    def _hedge_around(self, symbol_id: int, actions: list[Action]) -> None:
        for hedged in self.hedge_targets[symbol_id]:
            self._hedge(hedged, actions)

    def _hold(self, symbol_id: int, h: int, hold: int) -> None:
        """Set the hedge hold of one pair (hedged symbol, hedge instrument h), and the hold on h
        that its pairs make together (and its C mirror): +1 a buy hedge is worked (our asks in h
        wait), -1 a sell hedge (our bids), HOLD_BOTH both, by two pairs hedging opposite ways or
        by a sell hedge waiting for the pull of our long-marked asks (_long_hedge)."""
        if self.pair_hold[symbol_id] == hold:
            return
        self.pair_hold[symbol_id] = hold
        buy = sell = False
        for t in self.hedge_of[h]:
            held = self.pair_hold[t]
            buy |= held > 0
            sell |= held < 0 or held == HOLD_BOTH
        combined = HOLD_BOTH if buy and sell else 1 if buy else -1 if sell else 0
        if self.hedge_hold[h] != combined:
            self.hedge_hold[h] = combined
            if self._rx is not None:
                self._rx.hold[h] = combined

    def _hedge(self, symbol_id: int, actions: list[Action]) -> None:
        h = self.hedger.pairs[symbol_id].hedge_id
        # no hedge into a stale book or a halted instrument (ITCH trading action): it waits, and
        # goes out when the instrument trades again (the timer asks every pair)
        if self.stale or self.risk.state is _HALTED or self.halted_symbols[h] or \
                self.hedger.idle(symbol_id, self.inventory.position[symbol_id]):
            self._hold(symbol_id, h, 0)
            return
        hticks = self.ticks[h]
        top = self._top
        self._market_top(h, top)        # cross everyone else's best, never our own quote
        decision = self.hedger.decide(
            symbol_id, self.inventory.position[symbol_id], self.now, self.fv.mids[symbol_id],
            self.fv.mids[h], top[0], top[2], hticks.tick_above, hticks.tick_below)
        if decision is None:
            if not self.hedger.pairs[symbol_id].in_flight:
                self._hold(symbol_id, h, 0)     # nothing left to hedge now: quote that side again
            return
        buying = decision.side == _BUY
        limit = decision.price
        qty = self._hedge_size(symbol_id, h, buying, limit, decision.qty, actions)
        if qty <= 0:
            return
        if not buying and self.ssr[h]:
            qty = self._long_hedge(symbol_id, h, limit, qty, actions)
            if qty <= 0:
                return

        def crossed(order: Order) -> bool:      # one of our orders that can rest (not an IOC)
            return order.symbol_id == h and order.side != decision.side and \
                order.tif != ouch.TIF_IOC and (order.price <= limit if buying else order.price >= limit)
        # While a hedge is worked, the side of the hedge instrument it trades against is not
        # quoted: buying it back there would undo the hedge, and that quote is what it would hit.
        self._hold(symbol_id, h, 1 if buying else -1)
        if any(crossed(o) for o in self.oms.live.values()):
            # the IOC would execute against our own quote (a wash trade): pull those quotes first;
            # the hedge goes out once they are gone
            self.hedger.on_done(symbol_id)
            self._cancel_all(Purpose.QUOTE, actions, guard=False, match=crossed)
            return
        token = self.oms.new_token()
        intent = make_intent(_ENTER, token, h, decision.side, decision.price, qty, self.ids,
                             tif=ouch.TIF_IOC, purpose=Purpose.HEDGE)
        if self._submit(intent, actions):
            self.hedge_tokens[token] = symbol_id
            pace = self.risk.limits.duplicate_window_ns
            if qty < decision.qty and pace:
                # a cut slice, the rest to follow: the next goes out past the gateway's duplicate
                # window, where the same IOC again (same price, same cut) would be denied
                self.denied_until[(h, int(decision.side), _HEDGE_VALUE)] = self.now + pace
        else:
            self.hedger.on_done(symbol_id)
            self._hold(symbol_id, h, 0)     # nothing is worked: our quotes there come back

    def _hedge_size(self, symbol_id: int, h: int, buying: bool, price: int, qty: int,
                    actions: list[Action]) -> int:
        """The shares of the hedger's IOC in `h` to send now: cut to what the gateway takes (its
        size, value and position limits, safe mode's cut; in REDUCING only what reduces |position|).
        Asking for more would be denied on every decision and never hedge; the shortfall goes out
        next, as a partial fill's does. 0: none can go now (the
        hedger's decision is done): a back-off runs (after a denial, or pacing a cut hedge's
        slices: no pulls of our quotes for an IOC that cannot go yet), or, the pair's hold cleared,
        the gateway's limits leave no room (alerted) or REDUCING keeps a hedge that grows the
        position waiting."""
        if self.denied_until.get((h, int(_BUY if buying else _SELL), _HEDGE_VALUE), -1) > self.now:
            self.hedger.on_done(symbol_id)      # the hold as it is: cleared with the denial, kept
            return 0                            # between a cut hedge's slices
        reducing = self.risk.state is _REDUCING
        room = self.risk.order_room(h, buying, price)
        if reducing and room > 0:
            room = min(room, self._reduce_room(h, buying, None))
        if room <= 0:
            self.hedger.on_done(symbol_id)
            self._hold(symbol_id, h, 0)
            if not reducing:
                self._alert_gated("hedge-no-room", (
                    f"hedge {'buy' if buying else 'sale'} of {qty} {self.specs[h].name} at {price} (hedging "
                    f"{self.specs[symbol_id].name}) not sent: the gateway's order size, value or position "
                    f"limits leave no room; retried as they allow"), actions)
            return 0
        # the room is at most the limits' max_order_qty, which they keep within OUCH's u32 shares
        return qty if qty <= room else room

    def _long_hedge(self, symbol_id: int, h: int, price: int, qty: int, actions: list[Action]) -> int:
        """The shares of a sell hedge in `h` to send under the Rule 201 price test. At or below the
        national best bid it can go only as a long sale (exempt from the test): what our position
        covers beyond every working sell. When our resting long-marked quote asks hold coverage it
        lacks, they are pulled (the hedge reduces risk, the quote can wait; as outside the
        restriction, where the short hedge pulls them) and it waits for the venue to confirm
        (until then they could execute), with both quote sides of `h` held: the asks, so a pulled
        one does not come back long and take the coverage again, the bids as for any sell hedge.
        Then it goes out marked S, cut to the covered shares; what the position does not cover
        is not sent: the pair's hold is cleared (our bids quote again) and one alert per
        restriction and pair says so. 0: nothing to send now (the hedger's decision is done)."""
        nbb = self._nbb(h)
        if not nbb or price > nbb:
            return qty                  # the price test lets a short sale go there
        room, marked, pulling = self._sell_room(h)
        if room >= qty:
            return qty
        pulls = [o for o in marked if o.purpose is _QUOTE]
        freed = pulling + sum(o.leaves for o in pulls)
        if freed > 0 and room + freed > 0:      # the pulls (or those under way) cover more of it
            for order in pulls:
                self._cancel(order, order.purpose, actions)
            self.hedger.on_done(symbol_id)
            self._hold(symbol_id, h, HOLD_BOTH)
            return 0
        if not self.price_test_alerted[symbol_id]:
            self.price_test_alerted[symbol_id] = True
            sent = f"; the {room} we own go long" if room > 0 else ""
            actions.append(self._alert("short-sale-price-test", (
                f"hedge short sale of {qty - max(room, 0)} {self.specs[h].name} at {price} (hedging "
                f"{self.specs[symbol_id].name}) not sent: Rule 201 restriction, national best bid {nbb}"
                f"{sent}; said once per restriction, retried as our position allows")))
        if room <= 0:
            self.hedger.on_done(symbol_id)
            self._hold(symbol_id, h, 0)     # nothing goes: our bids quote again
            return 0
        return room

    # ================================================================= venue messages

    def _on_venue(self, ev: VenueMessage) -> list[Action]:
        actions: list[Action] = []
        raw = ev.packet
        # our own fill: the guard decides, and its pulls go out, before the decode and the booking
        n = len(raw)
        lane = self._fill_lane(raw, actions) if n == _EXEC_FRAME and raw[:4] == _EXEC_HEAD else None
        try:
            if n > 3 and raw[2] == _SEQUENCED and (raw[0] << 8 | raw[1]) + 2 == n:
                # a whole sequenced-data frame (nearly every one): its OUCH message decoded in
                # place, as soupbintcp.decode and decode_outbound of its payload would
                self.venue_seq += 1
                msg = _decode_outbound_from(raw, 3)
            else:
                packet = soupbintcp.decode(raw, _FROM_SERVER)
                if type(packet) is soupbintcp.SequencedData:
                    self.venue_seq += 1
                    msg = ouch.decode_outbound(packet.payload)
                elif type(packet) is soupbintcp.LoginAccepted:
                    self.venue_seq = packet.sequence - 1
                    if not self.venue_joined:
                        self.venue_joined = packet.sequence
                    return actions
                elif type(packet) is soupbintcp.EndOfSession:
                    actions.append(self._alert("venue-end-of-session", "order entry session ended"))
                    return actions
                else:
                    return actions
        except ProtocolError as exc:
            self.counts["protocol_errors"] += 1
            actions.append(self._alert("venue-protocol-error", str(exc)))
            return actions
        try:
            self._on_ouch(msg, actions, lane)
        except (OmsError, InvalidTransition) as exc:
            self._halt(f"oms: {exc}; not applied: {_unapplied(msg)}", actions)
        except (MetricsError, InventoryError) as exc:
            # past the checks before the booking these are defects: halt rather than escape
            # with quotes live (what the OMS booked stands; the reconciliation settles the rest)
            self._halt(f"booking: {exc}; partly applied: {_unapplied(msg)}", actions)
        return actions

    def _on_ouch(self, msg, actions: list[Action], lane: list[SendOrder] | None = None) -> None:
        """One venue message applied; `lane`: the fill lane's pulls when it took this message."""
        oms, now, t = self.oms, self.now, type(msg)
        if t is ouch.Accepted:
            order = oms.on_accepted(msg.token, msg.order_ref, now, msg.price)
            self.risk.on_order_priced(order.token, msg.price, now)    # the venue's, not the one sent
            self._venue_mark(order, msg.side, actions)
            self._after_order_change(order, actions)
        elif t is ouch.Executed or t is ouch.ExecutedWithReferencePrice:
            if msg.execution_price <= 0:
                # a fill the venue reports at no price: nothing is booked (no P&L or markout can
                # be), trading halts and the reconciliation with the venue books the position
                raise InvalidTransition(f"execution at price {msg.execution_price}")
            order = oms.on_executed(msg.token, msg.executed_shares, now)
            self._on_fill(order, msg.executed_shares, msg.execution_price, actions, lane)
        elif t is ouch.Canceled or t is ouch.AiqCanceled:
            order = oms.on_canceled(msg.token, msg.decrement_shares, now)
            self._after_order_change(order, actions)
        elif t is ouch.Replaced:
            order = oms.on_replaced(msg.token, msg.previous_token, msg.order_ref,
                                    msg.shares, msg.price, now)
            self.risk.on_order_confirmed(order.token, order.leaves, now)
            self.risk.on_order_priced(order.token, msg.price, now)
            self.risk.on_order_done(msg.previous_token, now)
            if order.cancel_on_accept is not None:
                # we cancelled the original while this replace was in flight: the venue ignored
                # that cancel, so cancel the replacement now rather than leave it resting
                self._cancel(order, order.cancel_on_accept, actions)
            self._venue_mark(order, msg.side, actions)
            self._after_order_change(order, actions)
        elif t is ouch.Rejected:
            order = oms.on_rejected(msg.token, now)
            self._refused(order, msg.reason, actions)
            self._after_order_change(order, actions)
        elif t is ouch.CancelReject:
            order = oms.on_cancel_reject(msg.token, now)
            if order.fsm.state is OrderState.UNKNOWN:
                actions.append(self._alert("outcome-unknown", f"cancel reject of {order.token}, "
                                           "never accepted: unknown until the venue says more"))
            self._after_order_change(order, actions)
        elif t is ouch.OrderModified:
            order = oms.on_modified(msg.token, msg.shares, now)
            self.risk.on_order_confirmed(order.token, order.leaves, now, msg.side)
            self._venue_mark(order, msg.side, actions)
            self._after_order_change(order, actions)
        elif t is ouch.BrokenTrade or t is ouch.TradeCorrection:
            actions.append(self._alert("trade-break", f"{t.__name__} for {msg.token}: reconcile"))
        # SystemEvent, CancelPending, OrderPriorityUpdate: nothing to decide

    def _venue_mark(self, order: Order, side: str, actions: list[Action]) -> None:
        """The side the venue holds for our order (its answers echo it): one it holds as long is
        checked against our position at once."""
        order.mark = side
        if side == "S":
            self._check_marks(order.symbol_id, actions)

    def _refused(self, order: Order, reason: str, actions: list[Action]) -> None:
        """The venue refused an enter or a replace of ours. The quote logic would ask again at
        once (a refused replace leaves the original working, off the wanted quote), to be refused
        again, one reject per venue answer for as long as the quote wants it: the side backs off
        as after a gateway denial (no enter or replace there for deny_backoff_ns; a resting quote
        now too good for the market is still pulled), and the refusal is counted and alerted."""
        self.counts["venue_rejects"] += 1
        self._back_off((order.symbol_id, int(order.side), order.purpose.value), order.purpose)
        what = f"replace of {order.orig_token} by {order.token}" if order.orig_token else f"enter {order.token}"
        actions.append(self._alert("venue-reject", f"{what} refused ({reason!r}): "
                                   f"{order.side.name} {order.purpose.value} backs off"))

    def _after_order_change(self, order: Order, actions: list[Action]) -> None:
        now = self.now
        self._drain_abandoned(now)
        if order.fsm.state in TERMINAL:
            self.risk.on_order_done(order.token, now)
            if order.purpose is Purpose.HEDGE:
                hedged = self.hedge_tokens.pop(order.token, None)
                if hedged is not None:
                    self.hedger.on_done(hedged)
        self._report_orders()
        s = order.symbol_id
        if self.is_quoted[s]:
            self._requote_checked((s,), actions)    # most venue answers leave the quote as it is

    def _on_fill(self, order: Order, qty: int, price: int, actions: list[Action],
                 lane: list[SendOrder] | None = None) -> None:
        """A booked fill of ours; `lane`: the guard already decided on it (Engine._fill_lane),
        and these pulls of its went out, the OMS to hear of them now that the fill is booked."""
        self.counts["fills"] += 1
        now = self.now
        s, side = order.symbol_id, order.side
        hedge = order.purpose is Purpose.HEDGE
        quote = order.purpose is _QUOTE     # only a quote's fill judges our quoting (the guard)
        late = order.cancel_sent        # before the pulls below: our cancel was out when it filled
        if lane is not None:
            on_sent = self.oms.on_sent
            for action in lane:
                on_sent(action.intent, now)
            self.counts["cancels_sent"] += len(lane)
        elif quote:
            # the guard first: its pulls go out before the fill's bookkeeping (the guard reads
            # only its own fill times, so nothing below changes what it decides)
            guard = self.guards[s]
            guard.on_own_fill(side == _BUY, now)
            trip = guard.evaluate(now)
            if trip is not None:
                self._pull_on_trip(trip, actions)
        position = self.inventory.apply_fill(s, side, qty)
        if quote:
            self.metrics.on_fill(s, side, qty, price, self.mid2[s], now, self.stale)
        elif hedge:     # the cost of hedging, not adverse selection of our quotes
            self.metrics.on_hedge_fill(s, side, qty, price, self.mid2[s], self.stale)
        else:           # an order recovery adopted: P&L and inventory, counted apart
            self.metrics.on_adopted_fill(s, side, qty, price)
        if late:
            self.metrics.on_fill_after_cancel(s, qty)
        rx = self._rx
        if rx is not None:
            rx.position[s] = position
            rx.set_metrics(self.metrics)
        self.risk.on_fill(s, side, qty, price, now, order.token)
        if hedge:
            hedged = self.hedge_tokens.get(order.token)
            if hedged is not None:
                self.hedger.on_fill(hedged, side, qty)
                if order.fsm.state in TERMINAL:
                    del self.hedge_tokens[order.token]
                    self.hedger.on_done(hedged)
        self._check_marks(s, actions)
        if order.fsm.state in TERMINAL:
            self.risk.on_order_done(order.token, now)
        self._drain_abandoned(now)
        self._report_orders()
        if self.is_quoted[s]:
            self._requote_checked((s,), actions)
        self._hedge_around(s, actions)

    def _drain_abandoned(self, now: int) -> None:
        abandoned = self.oms.abandoned
        while abandoned:
            token = abandoned.pop()
            self.risk.on_order_done(token, now)
            hedged = self.hedge_tokens.pop(token, None)
            if hedged is not None:
                self.hedger.on_done(hedged)

    def _report_orders(self) -> None:
        _, unknown = self.oms.counts()
        self.risk.on_order_state(None, unknown, self.now)

    def _halt(self, reason: str, actions: list[Action]) -> None:
        """An impossible order event: stop trading (latched), pull everything, journal why. What
        the venue said was not applied, so our orders and inventory may differ from the venue's:
        the gateway stays unreconciled (nothing new goes out, an operator cannot re-enable) until
        a reconciliation with the venue reports them right (Reconciled(ok))."""
        self.counts["halts"] += 1
        actions.append(self._alert("halt", reason))
        kill = self.risk.kill("all", 0, "engine", reason[:64], self.now)
        self.risk.on_reconciled(False, self.now)
        n = self._cancel_all(None, actions, guard=False)
        actions.append(self._kill_note(kill, n))

    # ================================================================= timers and feeds

    def _on_timer(self, ev: Timer) -> list[Action]:
        actions: list[Action] = []
        now = self.now
        late = self.oms.check_timeouts(now, self.cfg.ack_timeout_ns)
        if late:
            actions.append(self._alert("outcome-unknown", ",".join(o.token for o in late)[:200]))
            self._report_orders()
        if self.tracker.in_gap:
            self._request_gap(actions)
        self._check_feed_alive(now, actions)
        for kind, held in self.alert_gate.due(now):
            actions.append(self._alert(kind, f"{held} more held back in the last window (counted)"))
        self.risk.on_timer(now)
        self._watch_clock(actions)
        self._refresh_risk()
        self._mature_markouts(actions, expire=True)
        if now >= self.next_metrics_ns:
            self.metrics.sample_position(self.inventory.position)
            if self.next_metrics_ns >= 0:
                actions.append(JournalNote(RecordType.METRICS, pack_json(self.summary()), "metrics"))
            self.next_metrics_ns = now + self.cfg.metrics_interval_ns
        self.oms.prune(now, self.cfg.prune_after_ns)
        self._requote_checked(self.quoted, actions)
        for s in self.hedger.pairs:
            self._hedge(s, actions)
        return actions

    def _refresh_risk(self) -> None:
        """The timer's refresh of every priced symbol at the gateway: _feed_risk(s, fair, True) of
        each, in order; with the book current, the gateway's feeds in one on_markets call (which
        is on_market of each, in order: it reads nothing the engine's own records of them hold)."""
        fair = self.fv.fair
        priced = self._priced()
        if self.stale:
            feed = self._feed_risk
            for s in priced:
                feed(s, fair[s], True)
            return
        now, stale, sent, rx, specs = self.now, self.stale, self.risk_sent, self._rx, self.specs
        fairs = [fair[s] for s in priced]
        for s, f in zip(priced, fairs):
            price4 = int(f + 0.5)
            sent[s] = (price4, stale, now)
            if rx is not None:
                b = s * _SENT_N
                rx.sent[b:b + _SENT_N] = [price4, int(stale), now]
        self.risk.on_markets(priced, fairs, [specs[s].reference_price for s in priced], [now] * len(priced))

    def _priced(self) -> list[int]:
        """The symbols with a positive fair value, ascending (compiled: one C pass over the slots,
        which outnumber the traded symbols many times)."""
        if self.sig is not None:
            return unpack(self._priced_out, _priced_c(self._sh, self._priced_out))
        return [s for s, fair in enumerate(self.fv.fair[0:self.n]) if fair > 0]

    def _requote_checked(self, symbols, actions: list[Action]) -> None:
        """_requote of each of these quoted symbols (the timer's, and a venue answer's).
        Compiled, the book not stale: only the ones fsig_requote_may_act finds may act or change
        state, on mirrors refreshed before each."""
        if self._rx is None or self.stale or self.risk.state is _REDUCING:
            # REDUCING sizes the quotes by our other working orders too (_reduce_room), which
            # the C check does not mirror: the Python path decides
            for s in symbols:
                self._requote(s, actions)
            return
        react = self._react_c
        for s in symbols:
            self._work_mirror()
            self._risk_if_moved()
            acts = _requote_may_act_c(self._sh, self._bh, react, s, self.now)
            if react.n_memo:
                self._rx.memos_from_c(self.quote_memo, _STATE_OF)
            if acts:
                self._requote(s, actions)

    def _mature_markouts(self, actions: list[Action], expire: bool = False) -> None:
        """Metrics.on_time (`expire`: the timer's call), then the guard on what matured."""
        matured = self.metrics.on_time(self.now, self.mid2, self.stale, expire)
        if self._rx is not None:
            self._rx.set_metrics(self.metrics, matured)
        if not matured:
            return
        adverse = self.cfg.adverse_horizon
        tripped: dict[int, bool] = {}
        for symbol_id, our_bid, h, per_share in matured:
            if h == adverse:
                self.guards[symbol_id].on_markout(our_bid, per_share)
                tripped[symbol_id] = True
        for symbol_id in tripped:
            trip = self.guards[symbol_id].evaluate(self.now)
            if trip is not None:
                self._pull_on_trip(trip, actions)

    def _on_clock(self, ev: ClockSample) -> list[Action]:
        actions: list[Action] = []
        self.risk.on_clock(ev.compliant, self.now, ev.now_ns)     # ages from its measurement
        self._watch_clock(actions)
        return actions

    def _clock_aged(self) -> list[Action]:
        """An event past the clock's deadline: the gateway's timer check, then the pull, before
        the event's own work, so a packet or venue message that comes before the next timer
        judges the silent clock as the timer would (a fault, not an order meeting it: no latch).
        A Timer itself makes the same check at its own place (after the ack timeouts)."""
        actions: list[Action] = []
        self.risk.on_timer(self.now)
        self._watch_clock(actions)
        return actions

    def _watch_clock(self, actions: list[Action]) -> None:
        """A clock fault (a sample not compliant, or none for max_clock_age, seen by the timer)
        pulls our quotes as a stale feed does: the gateway refuses new orders then, but what rests
        at the venue would trade on without timestamps we can stand behind. Quoting resumes by
        itself with the sample that clears the fault (the gateway latches only if an order meets it)."""
        fault = self.risk.clock_fault
        if fault and not self.clock_pulled:
            self.clock_pulled = True
            n = self._cancel_all(Purpose.QUOTE, actions, guard=False)
            actions.append(self._alert("clock-fault", f"{fault}: {n} quotes pulled until the clock is healthy"))
        elif not fault and self.clock_pulled:
            self.clock_pulled = False
            actions.append(self._alert("clock-recovered", "clock healthy again: quoting resumes"))
            self._requote_checked(self.quoted, actions)

    def _on_journal_health(self, ev: JournalHealth) -> list[Action]:
        """A journal that refuses records: orders it refused were never sent; pull everything."""
        actions: list[Action] = []
        for token in ev.unsent:
            self._forget_unsent(token)
        self.risk.on_journal_health(ev.ok, self.now)
        if not ev.ok:
            self._cancel_all(None, actions, guard=False)
        return actions

    def _on_reconciled(self, ev: Reconciled) -> list[Action]:
        """A clean reconciliation releases the restart's latch unless another latch holds."""
        actions: list[Action] = []
        risk = self.risk
        latched = risk.state is _HALTED or risk.state is _REDUCING
        risk.on_reconciled(ev.ok, self.now)
        if not (ev.ok and latched):
            return actions
        if risk.state is _HALTED or risk.state is _REDUCING:
            actions.append(self._alert("still-latched", f"reconciled; {risk.state.name} until an "
                                       f"operator enables: {','.join(risk.latch_reasons)}"))
        else:
            # released: the book is as the journal left it, so quote again only once a market-data
            # packet shows it current (no gap left), as after a feed gap
            self.stale = True
            actions.append(self._alert("book-stale", "reconciled: waiting for current market data"))
        return actions

    def _on_operator(self, ev: OperatorCommand) -> list[Action]:
        actions: list[Action] = []
        risk = self.risk
        try:
            if ev.command == "kill":
                foreign = self._foreign_scope(ev.scope, ev.scope_id)
                if foreign:     # a kill that could match none of our orders must not read "done"
                    actions.append(self._alert("operator-refused", f"kill by {ev.actor}: {foreign}"))
                    return actions
                kill = risk.kill(ev.scope, ev.scope_id, ev.actor, ev.reason, self.now)
                cfg = self.cfg
                n = self._cancel_all(None, actions, guard=False, match=lambda o: kill.matches(
                    o.symbol_id, cfg.algo_id, cfg.desk_id, cfg.client_id))
                actions.append(self._kill_note(kill, n))
                self._scope_halts()
            elif ev.command == "enable" and ev.scope != "all":
                risk.lift_kill(ev.scope, ev.scope_id)
                self._scope_halts()
                actions.append(self._alert("kill-lifted", f"{ev.scope} {ev.scope_id} by {ev.actor}: {ev.reason}"))
            elif ev.command == "enable":
                risk.operator_enable(ev.actor, ev.reason, self.now)
            elif ev.command == RELEASE_CLOSE_OUT:
                risk.release_kill(ev.actor, ev.reason)
                actions.append(self._alert("kill-released", f"by {ev.actor}: {ev.reason}"))
            elif ev.command in ("safe-mode-on", "safe-mode-off"):
                risk.set_safe_mode(ev.command == "safe-mode-on", ev.actor, ev.reason, self.now)
            else:
                actions.append(self._alert("operator-refused", f"unknown command {ev.command!r}"))
                return actions
        except RiskError as exc:
            actions.append(self._alert("operator-refused", f"{ev.command} by {ev.actor}: {exc}"))
            return actions
        for s in self.quoted:
            self._requote(s, actions)
        return actions

    def _foreign_scope(self, scope: str, scope_id: int) -> str:
        """Why a kill of (scope, scope_id) names nothing this engine trades ("" when it does): a
        symbol id outside its symbols, or an algo, desk or client id its orders do not carry."""
        try:
            kind = parse_scope(scope)
        except RiskError:
            return ""                   # the gateway's own refusal names it
        cfg = self.cfg
        carried = {KillScope.ALGO: cfg.algo_id, KillScope.DESK: cfg.desk_id, KillScope.CLIENT: cfg.client_id}
        if kind is KillScope.SYMBOL and (not 0 <= scope_id < self.n or self.specs[scope_id] is None):
            return f"unknown symbol id {scope_id}"
        if kind in carried and scope_id != carried[kind]:
            return f"unknown {kind.name.lower()} id {scope_id}; this engine's orders carry {carried[kind]}"
        return ""

    def _set_halted(self, s: int) -> None:
        """A symbol does not trade while the venue halts it or a scoped kill covers our orders in
        it (every order of ours carries the engine's algo, desk and client ids)."""
        risk, cfg = self.risk, self.cfg
        halted = self.venue_halted[s] or risk.blocks(s, cfg.algo_id, cfg.desk_id, cfg.client_id)
        self.halted_symbols[s] = halted
        if self._rx is not None:
            self._rx.halted[s] = int(halted)

    def _scope_halts(self) -> None:
        for s in range(self.n):
            self._set_halted(s)

    def _drain_risk(self, actions: list[Action]) -> None:
        """Journal the gateway's state changes; a latch pulls what may no longer rest."""
        changes = self.risk.drain_events()
        if not changes:
            return
        for c in changes:
            actions.append(JournalNote(RecordType.STATE_CHANGE, pack(
                RecordType.STATE_CHANGE, from_state=int(c.from_state), to_state=int(c.to_state),
                reason_code=c.reason_code, actor=_fit(c.actor, 16), reason=_fit(c.reason, 64)),
                f"{c.from_state.name} -> {c.to_state.name}: {c.reason}"))
            if c.to_state is _HALTED or c.to_state is _REDUCING:
                self._pull_on_latch(c.to_state, actions)
        for s in self.quoted:
            self._requote(s, actions)

    # ================================================================= encoding and notes

    def _encode(self, intent: OrderIntent, side: str) -> bytes:
        """The intent's bytes; `side` is the order's OUCH side: B, or its Reg SHO marking S or T
        (a Modify carries it too, as the venue takes a Modify's side for the order's own)."""
        kind, wire = intent.kind, self.wire
        if kind is OrderKind.ENTER:
            return wire.enter(intent.token, side, intent.qty, self.specs[intent.symbol_id].name,
                              intent.price, intent.tif)
        if kind is OrderKind.REPLACE:
            return wire.replace(intent.orig_token, intent.token, intent.qty, intent.price, intent.tif)
        if kind is OrderKind.MODIFY and intent.qty:
            return wire.modify(intent.token, side, intent.qty)
        return wire.cancel(intent.token, intent.qty)

    def _encode_cancel(self, token: str) -> bytes:
        return self.wire.cancel(token, 0)

    def _decision_note(self, intent: OrderIntent, d) -> JournalNote:
        payload = pack(RecordType.RISK_DECISION, token=intent.token.encode(), symbol_id=intent.symbol_id,
                       side=int(intent.side), msg_type=ord(intent.kind.value), allowed=int(d.allowed),
                       check_id=int(d.check), trading_state=int(d.state),
                       limits_version=d.limits_version, price=intent.price, qty=intent.qty,
                       value=d.value, limit=d.limit, detail=d.detail.encode()[:48])
        return JournalNote(RecordType.RISK_DECISION, payload,
                           f"{'allowed' if d.allowed else 'denied'} {d.check_name}: {d.detail}")

    def _kill_note(self, kill, cancelled: int) -> JournalNote:
        payload = pack(RecordType.KILL, scope=int(kill.scope), scope_id=kill.scope_id,
                       orders_cancelled=cancelled, requested_by=_fit(kill.requested_by, 16),
                       reason=_fit(kill.reason, 64))
        return JournalNote(RecordType.KILL, payload, f"kill {kill.scope.name} by {kill.requested_by}")

    def _alert(self, kind: str, detail: str) -> JournalNote:
        return JournalNote(RecordType.METRICS, pack_json({"alert": kind, "detail": detail,
                                                          "now_ns": self.now}), f"{kind}: {detail}")

    def _alert_gated(self, kind: str, detail: str, actions: list[Action]) -> None:
        """An alert a flood could repeat, through the alert gate: held back (counted in
        alerts_held; the packet itself is journaled as an input) or alerted, naming how many
        were held back before it (the timer names those of a window that passed)."""
        held = self.alert_gate.admit(kind, self.now)
        if held is None:
            self.counts["alerts_held"] += 1
            return
        if held:
            detail = f"{detail} ({held} more held back since the last)"
        actions.append(self._alert(kind, detail))

    # ================================================================= summaries and hashing

    def summary(self, session_end: bool = False) -> dict:
        """The METRICS document now; `session_end`: the session's last, which also says what the
        markouts still pending come to (valued at the last mid or unmarked at session end)."""
        mid2 = self.mid2          # the traded symbols' mids only: the rest are never read
        doc = self.metrics.summary({s: mid2[s] for s in compress(range(self.n), self.metrics.traded)},
                                   (self.now, self.stale) if session_end else None)
        doc["now_ns"] = self.now
        doc["counts"] = dict(self.counts)
        doc["trading_state"] = self.risk.state.name
        doc["book_stale"] = self.stale
        doc["unknown_refs"] = self.book.unknown_refs
        trips = self.sig.trips() if self.sig is not None else [g.trips for g in self.guards]
        guards = self.guards         # a symbol id's text only for the few guards that tripped
        doc["guard_trips"] = {str(guards[i].symbol_id): trips[i]
                              for i in compress(range(min(len(guards), len(trips))), trips)}
        return doc

    def mirrors_stale(self) -> list[str]:
        """Compiled: the names of the reaction's C mirrors that differ from the Python state they
        mirror (empty when all agree; the lockstep tests check it after every event)."""
        if self._rx is None:
            return []
        stale = self._rx.stale(self)
        oms = self.oms
        if "work" in stale and (oms.transitions, oms.counter) != self._work_version:
            stale.remove("work")        # rewritten before C reads it (the OMS moved)
        return stale

    def state_hash(self) -> str:
        """SHA-256 over every piece of decision state, in a fixed order (no hash() or set order)."""
        t = self.tracker
        parts = (
            self.now, self.stale, self.gap_requested_ns, self.gap_requested_to, self.md_heard_ns,
            t.next_expected, t.highest_announced,
            t.end_of_session, self.md.candidate, self.md_unreadable, self.md_unreadable_packet,
            self.alert_gate.state_items(),
            [s.id for s in self.options_due], self.clock_pulled,
            self.book.state_items(), self.fv.state_digest(),
            [(v.var_s, v.last_mid, v.last_ns, v.n) for v in self.vol],
            self.inventory.position, [g.state_items() for g in self.guards],
            self.hedger.state_items(), sorted(self.hedge_tokens.items()), self.hedge_hold, self.pair_hold,
            self.oms.state_items(),
            self.metrics.state_items(), list(self.mid2[0:self.n]), self.halted_symbols, self.venue_halted,
            self.tape.state_digest(),
            self.ssr, self.price_test_alerted,
            sorted(self.denied_until.items()), self.next_metrics_ns, self.venue_seq,
            sorted(self.counts.items()), int(self.risk.state), self.risk.state_items(),
            self.quote_memo, self.risk_sent,
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    # ================================================================= latches and the journal

    def _pull_on_latch(self, state: TradingState, actions: list[Action]) -> None:
        """A latch pulls at once what may no longer rest, answered by the venue or not: HALTED
        everything, REDUCING the orders on the side that would grow |position|."""
        if state is _HALTED:
            self._cancel_all(None, actions, guard=False)
            return
        position = self.inventory.position
        self._cancel_all(None, actions, guard=False, match=lambda o: (
            position[o.symbol_id] >= 0 if o.side == _BUY else position[o.symbol_id] <= 0))
        self._fit_reducing(actions)

    def _fit_reducing(self, actions: list[Action]) -> None:
        """REDUCING: a resting order that would flip the position's sign if it filled (with every
        other working order on its side) is sized down to the room left (OUCH Modify, in place)
        or, when it cannot be (no room, not answered yet, the modify refused), pulled."""
        for order in list(self.oms.live.values()):
            st = order.fsm.state
            if st in TERMINAL or st is OrderState.PENDING_CANCEL or order.tif == ouch.TIF_IOC or order.cancel_sent:
                continue
            s, buy = order.symbol_id, order.side == _BUY
            room = self._reduce_room(s, buy, order.token)
            if order.leaves <= room:
                continue
            if room > 0 and (st is _ACCEPTED or st is _PARTIAL) and self._submit(
                    make_intent(_MODIFY, order.token, s, order.side, order.price, room, self.ids,
                                purpose=order.purpose), actions):
                continue
            self._cancel(order, order.purpose, actions)

    def _forget_unsent(self, token: str) -> None:
        """An order the journal refused was never sent (write-ahead): the venue will never answer."""
        order = self.oms.orders.get(token)
        if order is None or order.acked or order.fsm.state not in (OrderState.PENDING_NEW, OrderState.UNKNOWN):
            return                      # (an accepted order's unsent record was a cancel or modify)
        self.oms.on_rejected(token, self.now)
        self.risk.on_order_done(token, self.now)
        self.counts["orders_sent"] -= 1     # _submit counted it sent (an enter or a replacement)
        if order.purpose is _QUOTE:
            self.metrics.on_quote_unsent(order.side, order.qty)
        if order.purpose is Purpose.HEDGE:
            hedged = self.hedge_tokens.pop(token, None)
            if hedged is not None:
                self.hedger.on_done(hedged)
        self._report_orders()
