"""The engine's market-data packets: one packet through the compiled packet path and signal
kernel (or the Python reference path), runs of quiet packets in one C call (PacketRun, replay's
batch path), markouts due before a packet, and the per-packet reaction: which symbols to
reprice, requote and hedge, with the C mirrors of the Python-owned inputs that reaction reads
kept current. Part of Engine (mm_core.engine); sans-io like it.
"""
from __future__ import annotations

import struct
from array import array

from mm_core.engine_shared import (
    _DAY_NS, _NULL, _SENT_N, _SIG_FALLBACK, _SIG_NOMEM, _SIG_TRIPPED, _STATE_OF, _option_params, unpack,
)
from mm_core.events import Action, MarketData
from mm_core.fastbook import ffi, lib
from mm_core.protocol import ProtocolError, SessionMismatch, moldudp64
from mm_core.sigkernel import trip_of

_GAP = moldudp64.Gap
_on_packet_c, _reprice_touched_c = lib.fsig_on_packet, lib.fsig_reprice_touched
_SIG_CALIBRATE = lib.FSIG_CALIBRATE
_SIG_QUIET, _SIG_REACT, _SIG_FEED = lib.FSIG_QUIET, lib.FSIG_REACT, lib.FSIG_FEED
_SIG_MATURED_TRIPPED = lib.FSIG_MATURED_TRIPPED
_react_from_c = lib.fsig_react_from
_defer_feeds_c = lib.fsig_defer_feeds
_mature_c = lib.fsig_mature
_S_PRICE4, _S_NS = lib.FSIG_S_PRICE4, lib.FSIG_S_NS
_on_packets_c = lib.fsig_on_packets
_pack_stamps = struct.pack
# PacketRun's struct code for its stamps: the native long where that is 8 bytes (LP64, as on
# Linux), the same bytes as "q" for every int64_t and the same struct.error past it, at about
# three quarters of the instructions per stamp (CPython 3.11 converts "q" through a byte array)
_STAMP = "l" if struct.calcsize("l") == 8 else "q"
_run_offsets = lib.fsig_run_offsets
_RUN_MAX_SEQUENCE = 1 << 62     # a run's sequence stays far below the C path's int64 limit
_NO_DEADLINE = (1 << 63) - 1    # fsig_on_packets' stop_after when the clock has none (inf)


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

    def view(self, first: int, size: int) -> "PacketRun":
        """The run of this run's packets first .. first + size - 1, over the same memory."""
        return PacketRun.over(self.events[first:first + size], self.buf, self.off + first,
                              self.ts + first, self._keep)

    @classmethod
    def over(cls, events, buf, off, ts, keep) -> "PacketRun":
        """A run over packets already in one buffer: packet i is buf[off[i]:off[i+1]], received
        at ts[i] (C pointers); `events` is any sequence whose item i is packet i's MarketData
        (the engine asks only for the ones C does not take); `keep` owns the memory."""
        run = cls.__new__(cls)
        run.events, run.buf, run.off, run.ts, run._keep = events, buf, off, ts, keep
        return run


class EnginePackets:
    """Engine's market-data packets and their reaction (a mixin of Engine: its state is Engine's)."""

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
            # with a markout waiting for a mid, Python's on_time costs less than bringing the C
            # copy of the queues up to date and back (alternated latency A/B: p99 18.4 vs 20.2 us)
            if self._rx is None or self.stale or self.metrics.blocked or not self._mature_in_c(early):
                self._mature_markouts(early)
        if self.sig is not None and not self.stale:
            actions = self._on_packet_compiled(ev)
            if actions is not None:
                return early + actions if early else actions
        return self._on_packet_python(ev, early or [], heard_before)

    def _mature_in_c(self, actions: list[Action]) -> bool:
        """_mature_markouts before a packet in one C call (fsig_mature, as replay's runs mature
        them) on mm_core.sigmature's copy of Metrics' queues, its pulls into `actions`; False,
        nothing changed, where the C hands them back (none loaded, a waiting markout's wait
        ending, a markout past its last chance for a mid)."""
        rx, metrics = self._rx, self.metrics
        rx.markouts.markouts_for(metrics)
        rc = _mature_c(self._sh, self._react_c, self.now, self._pkt)
        if rc == _SIG_FALLBACK:
            return False
        if self._react_c.mk_matured:    # into Metrics before any Python reads it
            rx.markouts.from_c(metrics)
            rx.seen_metrics(metrics)
        if rc == _SIG_TRIPPED:          # the guards' pulls, in the order they were evaluated
            pkt = self._pkt
            trips = pkt.trips
            for i in range(pkt.n_trips):
                self._pull_on_trip(trip_of(trips[i]), actions)
        return True

    def _on_packet_python(self, ev: MarketData, actions: list[Action], heard_before: int) -> list[Action]:
        """_on_market_data's reference path (after the markouts due matured into `actions`):
        decode, sequence, book, guard, reprice and react in Python; then each packet kept past a
        gap that is next now (this one filled the gap before it) the same way, in sequence order."""
        self.counts["md_packets"] += 1
        packet = ev.packet
        tracker, kept = self.tracker, self.gap_kept
        while True:
            self._packet_python(packet, actions, heard_before)
            if not kept:
                return actions
            self._drop_kept_behind()
            if not kept.due(tracker.next_expected):
                return actions
            packet = kept.pop()
            self.counts["md_gap_applied"] += 1

    def _packet_python(self, packet: bytes, actions: list[Action], heard_before: int) -> None:
        """One packet through the reference path, live or kept past a gap (a kept one came with
        no framing fault and in the session followed: it reaches the book or the gap branch)."""
        now = self.now
        tracker = self.tracker
        ended, in_gap = tracker.end_of_session, tracker.in_gap
        try:
            try:
                update = self.md.on_packet(packet, not self.compiled)
            except SessionMismatch as exc:
                if exc.received in self.md.ended_sessions:
                    raise                       # a late packet of a session we left: not followed back
                if not self._md_session_changed(exc, packet, heard_before, actions):
                    self.md_heard_ns = heard_before     # not our session's: shows it neither alive
                    return
                update = self.md.on_packet(packet, not self.compiled)   # the new session's first
        except ProtocolError as exc:
            self.md_heard_ns = heard_before     # a packet we cannot read shows no feed alive
            self.counts["protocol_errors"] += 1
            actions.append(self._alert("md-protocol-error", str(exc)))
            return
        if tracker.end_of_session and not ended:
            self._md_end_of_session(actions)
        if update is None:
            # a heartbeat announcing no message we lack: the feed is alive and the books whole (a
            # duplicate packet announces nothing new, so it proves neither); never after the end
            if self.stale and not tracker.in_gap and not tracker.end_of_session and \
                    moldudp64.decode_header(packet).is_heartbeat:
                self._book_current(actions)
                self._feed_risk_all(priced_only=True)
                self._react(list(self.quoted), actions)
            return
        if type(update) is _GAP:
            # a gap is counted once, when it opens; every packet that comes past it apart (kept
            # to apply once the gap is filled, or dropped over the buffer's caps and re-requested)
            self.counts["md_gap_packets"] += 1
            if not in_gap:
                self.counts["gaps"] += 1
            if not self.stale:
                self._go_stale(f"gap: expected {update.expected} got {update.received}", actions)
            self._keep_past_gap(update, packet, actions)
            self._request_gap(actions)
            return
        if update.skipped:
            self.counts["md_skipped"] += len(update.skipped)
            for text in update.skipped:
                self._alert_gated("md-unknown-message", text, actions)
        if update.malformed is not None:
            self._md_message_unreadable(*update.malformed, packet, actions)
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
            kept = self.gap_kept
            if kept:
                self._drop_kept_behind()
            if tracker.in_gap and self.gap_requested_ns >= 0 and tracker.next_expected >= self.gap_requested_to \
                    and not kept.due(tracker.next_expected):
                # the re-request was answered in full and, with the packets kept past the gap
                # applied, a gap is left (another one further on, or packets past it not kept):
                # the rest is asked for at once, not after rerequest_timeout with the quotes
                # pulled meanwhile
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
        if rc == _SIG_FEED and not summary.n_errors:
            # the feeds due into the C log, told to the gateway when anything next reads it
            # (Engine.risk, _SettledOnRead): a packet whose only work is those feeds ends here
            rc = _defer_feeds_c(self._sh, self._bh, pkt)
            if rc != _SIG_FEED:
                react.n_fed = 0         # a packet that fed is not counted quiet, as below
                d = self.__dict__
                if "risk" in d:
                    del d["risk"], d["risk_sent"]
                if react.n_memo:
                    self._rx.memos_from_c(self.quote_memo, _STATE_OF)
                if rc == _SIG_QUIET:
                    self.fed_in_c += 1
                    return actions
                self._settle_feeds()    # the reaction's Python work reads the gateway
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
        stale_at = self._gw.clock_stale_at
        rc = _on_packets_c(self._sh, self._bh, run.buf, run.off, run.ts, start, end, md.session_raw,
                           expected, self.now, stale_at if stale_at < _NO_DEADLINE else _NO_DEADLINE,
                           self._pkt, done, messages)
        taken = done[0]
        self.now = self.md_heard_ns = self._pkt.now_ns     # on_event's time, up to the last packet C looked at
        if react.mk_matured:            # into Metrics before any Python reads it
            rx.markouts.from_c(metrics)
            rx.seen_metrics(metrics)
        if react.n_flog:                # the feeds C deferred, before anything else runs
            self._settle_feeds()
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

    def _settle_feeds(self) -> None:
        """The risk feeds C deferred (fsig_on_packets, fsig_defer_feeds), in order, each at its
        packet's time: what _feed_risk does for them (the book was not stale; C already wrote the
        sent mirror). `risk` and `risk_sent` are back in the instance dict after it."""
        d = self.__dict__
        d["risk"], d["risk_sent"] = gw, sent = self._gw, self._sent
        rx = self._rx
        if rx is None or not rx.r.n_flog:
            return
        react = rx.r
        n, react.n_flog = react.n_flog, 0
        syms, fairs, times = rx.flog
        # each symbol's last feed is the one risk_sent keeps: the sent mirror, which C wrote
        # feed by feed as _feed_risk would (int(fair + 0.5), not stale, the packet's time)
        mirror = rx.sent
        for s in dict.fromkeys(unpack(syms, n)):
            b = s * _SENT_N
            sent[s] = (mirror[b + _S_PRICE4], False, mirror[b + _S_NS])
        gw.on_feed_log(n, syms, fairs, times, self._references)

    def _risk_if_moved(self) -> None:
        """_risk_to_react when the gateway's state or limits version moved: the multipliers and
        the collar it also writes follow from those two (new limits always have a higher version)."""
        if self._risk_moved():
            self._risk_to_react()

    def _risk_moved(self) -> bool:
        """The gateway's state or limits version is not what the reaction's mirror last took."""
        risk = self._gw
        return risk.state is not self._risk_seen or risk.limits_version != self._react_c.limits_version

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
