"""The market-making engine: events in, actions out, deterministic and sans-io.

Owns the order of work for one event — decode (protocol codecs) → MoldUDP64 sequencing → book →
quote guard first → fair value → spread and inventory skew → hedger → risk gateway → OMS — and
the one inventory all of them see. Must not read clocks, sockets, files or unseeded randomness:
time is each event's now_ns, ids come from the session prefix, and replaying the same events
through a fresh Engine gives the same actions and the same state_hash().
Engine's work is split by concern into mixins, each in its own module (engine_packets, engine_feed,
engine_guard, engine_quoting, engine_hedging, engine_venue, engine_control; shared names in
engine_shared); this module holds its state, pickling, the one entry point, order encoding,
journal notes, the summary and the state hash.
"""
from __future__ import annotations

import hashlib
from itertools import compress, repeat
from operator import is_
from typing import Callable

from journal.catalogue import RecordType, pack, pack_json
from mm_core.alertgate import AlertGate
from mm_core.config import EngineConfig, Symbols
from mm_core.engine_control import EngineControl
from mm_core.engine_feed import EngineFeed
from mm_core.engine_guard import EngineGuard
from mm_core.engine_hedging import EngineHedging
from mm_core.engine_packets import EnginePackets, PacketRun
from mm_core.engine_quoting import EngineQuoting
from mm_core.engine_shared import EngineError, _BUY, _SELL, _fit, _log2, _option_params
from mm_core.engine_venue import EngineVenue
from mm_core.events import (
    Action, ClockSample, JournalHealth, JournalNote, MarketData, OperatorCommand, Reconciled, SendOrder,
    Timer, VenueMessage,
)
from mm_core.fairvalue import FairValueModel
from mm_core.fastbook import ffi, lib
from mm_core.gapbuffer import GapBuffer
from mm_core.guard import SymbolGuard
from mm_core.hedger import Hedger
from mm_core.inventory import InventoryTracker
from mm_core.mdpath import MarketDataPath
from mm_core.metrics import Metrics
from mm_core.oms import Oms, Order
from mm_core.orderwire import OrderWire
from mm_core.quotepricer import QuotePricer
from mm_core.risk import RiskError
from mm_core.sigfair import KernelFairValue, KernelHedger, KernelVol, fv_setup
from mm_core.sigkernel import SignalKernel
from mm_core.sigreact import RISK_CAPS, ReactMirror
from mm_core.spread import VolEstimator
from mm_core.ticks import TickTable
from mm_core.trades import TradeTape
from mm_core.types import OrderIntent, OrderKind, Purpose

__all__ = ["Engine", "EngineError", "PacketRun", "feed_batched"]


class _SettledOnRead:
    """Engine.risk and Engine.risk_sent while a packet's risk feeds wait in the C log
    (fsig_defer_feeds; Engine._packet_applied then takes both names out of the instance dict).
    The first read of either, by the engine or anyone holding it, tells the gateway those feeds
    first (Engine._settle_feeds, which puts both back), so no reader ever sees the gateway
    without them. A non-data descriptor: while the instance dict holds the name, a read never
    gets here, and the engine's other attributes keep the interpreter's fast lookups (a class
    __getattr__ would slow every one)."""

    __slots__ = ("name",)

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, engine, owner=None):
        if engine is None:
            return self
        engine._settle_feeds()
        return engine.__dict__[self.name]


def feed_batched(engine: "Engine", events: list) -> None:
    """Every event through `engine` as replay's batch path takes them: each run of two or more
    consecutive MarketData events as a PacketRun through Engine.on_packet_run, the rest through
    on_event (the actions are dropped: for benchmarks and tests of the engine alone). Every
    packet goes into one buffer first, and each run is a view of its stretch of it, as recovery's
    runs are views of the journal block they lie in."""
    on_event, on_run = engine.on_event, engine.on_packet_run
    # one byte per event, 1 for a MarketData: the runs are found with bytes.find, in C
    is_md = bytes(map(is_, map(type, events), repeat(MarketData)))
    packets = list(compress(events, is_md))
    whole = PacketRun(packets) if packets else None
    pos, md_at, end = 0, 0, len(events)
    while pos < end:
        first = is_md.find(1, pos)
        if first < 0:
            first = end
        for ev in events[pos:first]:
            on_event(ev)
        if first == end:
            return
        pos = is_md.find(0, first)
        if pos < 0:
            pos = end
        size = pos - first
        if size < 2:
            on_event(events[first])
        else:
            run, k = whole.view(md_at, size), 0
            while k < size:
                k += on_run(run, k)[0]
        md_at += size


class Engine(EnginePackets, EngineFeed, EngineGuard, EngineQuoting, EngineHedging, EngineVenue, EngineControl):
    """One trading session's decisions. `on_event(event) -> list[Action]`."""

    # our live quotes per symbol, derived from the OMS and rebuilt when its version moves (class
    # defaults: only ever reassigned; not pickled, so a loaded engine rebuilds them)
    _own_version: tuple[int, int] = (-1, -1)
    _own: dict = {}
    # compiled: the C mirrors of the Python-owned inputs the per-packet reaction reads
    # (mm_core.sigreact; not pickled, rebuilt from the Python state on load); None: reference
    _rx: ReactMirror | None = None
    quiet_packets = 0                   # compiled: packets whose whole reaction ended in C
    fed_in_c = 0                        # compiled: live packets whose only work, risk feeds, C logged
    # the gateway and its feeds' last values: read through _SettledOnRead when the instance dict
    # lacks them (feeds waiting in the C log); the quiet packet path reads only what no feed
    # moves (state, limits version, clock deadline, events) through _gw, leaving them waiting
    # for the runner's idle upkeep (prepare)
    risk = _SettledOnRead()
    risk_sent = _SettledOnRead()

    def __init__(self, config: EngineConfig, symbols: Symbols, risk_gateway, *, compiled: bool = True) -> None:
        if risk_gateway is None:
            raise EngineError("an engine needs a risk gateway")
        self.cfg = cfg = config
        self.quote_pricer = QuotePricer(cfg)   # _price_quote in C (fastquote.h)
        self.symbols = symbols
        self.risk = self._gw = risk_gateway     # _gw: see _SettledOnRead
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
        # packets that came past the gap, applied once the messages before them are in
        self.gap_kept = GapBuffer(cfg.gap_buffer_packets, cfg.gap_buffer_bytes)
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
        self._sent = self.risk_sent
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
                       "md_gap_packets": 0, "md_gap_kept": 0, "md_gap_applied": 0, "md_gap_dropped": 0,
                       "md_gap_discarded": 0}
        # The I/O shell's early sink for the guard's pulls (None in replay): called with the pull
        # cancels the moment the guard trips, so they are journaled and sent before the rest of the
        # event's work (reprice, requote, hedge; on our own fill, before the fill is even decoded
        # and booked: _fill_lane). The pulls are the event's first orders either way,
        # so the orders a replay produces, in order, are the ones the live session sent.
        self.urgent: Callable[[list[Action]], None] | None = None
        # The same sink, while on_event runs (_early), for the event's first order (_submit,
        # _cancel: _emit; a requote whose two sides both move, both of them at its end): it leaves
        # before the rest of the event's work (the OMS booking, the other symbols, the gateway's
        # state changes) when nothing else of the event is waiting to be journaled (_made: the
        # actions this event built and queued so far), so the journal holds the event's outputs in
        # the order a replay produces them. The later orders leave together after on_event, as
        # before. None between events and in replay (urgent None: no order ever goes early).
        self._early: Callable[[list[Action]], None] | None = None
        self._made = 0
        self._holding: list[SendOrder] | None = None     # a requote's early orders (_requote)
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
            # each slot's reference price, for the gateway's feed log (_settle_feeds)
            self._references = [spec.reference_price if spec else 0 for spec in self.specs]
            rx = self._rx = ReactMirror(self)
            pkt.react = self._react_c = rx.r
            self._risk_to_react()
            self.hedger.mirror = rx.pair

    def __getstate__(self) -> dict:
        self._settle_feeds()
        state = dict(self.__dict__)
        del state["_bh"], state["_top"], state["_gw"], state["_sent"]
        if self.sig is not None:
            for name in ("mid2", "vol_q", "_sh", "_fair_out", "_lane_trip", "_priced_out", "_pkt", "_pkt_keep",
                         "_pkt_own_version", "_work_version", "_rx", "_react_c", "_summary", "_risk_seen",
                         "_references", "_run_done", "_run_messages", "_lane_c"):
                state.pop(name, None)
        state["urgent"] = state["_early"] = state["_holding"] = None    # the shell's, not the state
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
        state.setdefault("gap_kept", GapBuffer())        # from before packets past a gap were kept
        state.setdefault("options_due", [])
        state.setdefault("clock_pulled", False)
        state.setdefault("ssr", [False] * state["n"])
        state.setdefault("venue_halted", list(state["halted_symbols"]))    # from before scoped kills
        state.setdefault("price_test_alerted", [False] * state["n"])
        state["counts"].setdefault("md_session_changes", 0)
        state["counts"].setdefault("venue_rejects", 0)
        for name in ("md_skipped", "md_foreign", "md_ends", "md_unrecoverable", "md_duplicates", "alerts_held",
                     "md_gap_packets", "md_gap_kept", "md_gap_applied", "md_gap_dropped", "md_gap_discarded"):
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
        self._gw, self._sent = self.risk, self.risk_sent
        self.urgent = self.urgent_armed = self._early = self._holding = None
        self._made = 0
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
        self._made = 0
        self._early = self.urgent
        try:
            if now > self.now:
                self.now = now          # time never runs backwards inside the engine
                if now > self._gw.clock_stale_at and type(event) is not Timer:   # a timer: in its order
                    aged = self._clock_aged()
            if self.options_due:
                self._declare_options()
            self.counts["events"] += 1
            actions = handler(event)
            if aged:
                aged += actions
                actions = aged
            self._drain_risk(actions)
        finally:
            self._early = None
        return actions

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
        self._made += 1
        payload = pack(RecordType.RISK_DECISION, token=intent.token.encode(), symbol_id=intent.symbol_id,
                       side=int(intent.side), msg_type=ord(intent.kind.value), allowed=int(d.allowed),
                       check_id=int(d.check), trading_state=int(d.state),
                       limits_version=d.limits_version, price=intent.price, qty=intent.qty,
                       value=d.value, limit=d.limit, detail=d.detail.encode()[:48])
        return JournalNote(RecordType.RISK_DECISION, payload,
                           f"{'allowed' if d.allowed else 'denied'} {d.check_name}: {d.detail}")

    def _kill_note(self, kill, cancelled: int) -> JournalNote:
        self._made += 1
        payload = pack(RecordType.KILL, scope=int(kill.scope), scope_id=kill.scope_id,
                       orders_cancelled=cancelled, requested_by=_fit(kill.requested_by, 16),
                       reason=_fit(kill.reason, 64))
        return JournalNote(RecordType.KILL, payload, f"kill {kill.scope.name} by {kill.requested_by}")

    def _alert(self, kind: str, detail: str) -> JournalNote:
        self._made += 1
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
        if self._risk_moved():
            # the caps follow the gateway's state and limits: rewritten before C reads them
            stale = [name for name in stale if name not in RISK_CAPS]
        return stale

    def state_hash(self) -> str:
        """SHA-256 over every piece of decision state, in a fixed order (no hash() or set order)."""
        t = self.tracker
        parts = (
            self.now, self.stale, self.gap_requested_ns, self.gap_requested_to, self.gap_kept.state_items(),
            self.md_heard_ns,
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
