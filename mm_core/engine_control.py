"""The engine's timers, clock, journal health, reconciliation and operator events: periodic risk
refreshes, markouts matured and metrics journaled, quotes pulled on a clock fault or a latch,
operator kills and halts by scope, and what REDUCING keeps. Part of Engine (mm_core.engine);
sans-io like it.
"""
from __future__ import annotations

from journal.catalogue import RecordType, pack, pack_json
from mm_core.engine_shared import (
    _ACCEPTED, _BUY, _HALTED, _MODIFY, _PARTIAL, _QUOTE, _REDUCING, _SENT_N, _STATE_OF, _fit, unpack,
)
from mm_core.events import (
    Action, ClockSample, JournalHealth, JournalNote, OperatorCommand, RELEASE_CLOSE_OUT, Reconciled,
    Timer,
)
from mm_core.fastbook import lib
from mm_core.oms import OrderState, TERMINAL
from mm_core.protocol import ouch
from mm_core.risk import RiskError, TradingState
from mm_core.risk.kill import KillScope, parse_scope
from mm_core.types import Purpose, make_intent

_requote_may_act_c = lib.fsig_requote_may_act
_priced_c = lib.fsig_priced


class EngineControl:
    """Engine's timers, clock, latches and operator commands (a mixin of Engine: its state is Engine's)."""

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
                self._made += 1
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
        changes = self._gw.drain_events()     # no feed moves it: leaves deferred feeds waiting
        if not changes:
            return
        for c in changes:
            self._made += 1
            actions.append(JournalNote(RecordType.STATE_CHANGE, pack(
                RecordType.STATE_CHANGE, from_state=int(c.from_state), to_state=int(c.to_state),
                reason_code=c.reason_code, actor=_fit(c.actor, 16), reason=_fit(c.reason, 64)),
                f"{c.from_state.name} -> {c.to_state.name}: {c.reason}"))
            if c.to_state is _HALTED or c.to_state is _REDUCING:
                self._pull_on_latch(c.to_state, actions)
        for s in self.quoted:
            self._requote(s, actions)

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
