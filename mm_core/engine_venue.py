"""The engine's order-entry side: SoupBinTCP frames from the venue decoded, each OUCH answer
applied to the OMS (accepted, replaced, cancelled, rejected, executed, broken), fills booked
into inventory and metrics, and an impossible transition or an unbookable fill halting trading
with an alert. Part of Engine (mm_core.engine); sans-io like it.
"""
from __future__ import annotations

from mm_core.engine_shared import _BUY, _EXEC_FRAME, _EXEC_HEAD, _QUOTE
from mm_core.events import Action, SendOrder, VenueMessage
from mm_core.inventory import InventoryError
from mm_core.metrics import MetricsError
from mm_core.oms import InvalidTransition, OmsError, Order, OrderState, TERMINAL
from mm_core.protocol import ProtocolError, ouch, soupbintcp
from mm_core.types import Purpose

_FROM_SERVER = soupbintcp.Direction.FROM_SERVER
_SEQUENCED = ord("S")           # SoupBinTCP sequenced data: an OUCH message follows the type byte
_decode_outbound_from = ouch.decode_outbound_from


def _unapplied(msg) -> str:
    """A venue message the OMS refused, as the halt alert names it: an execution with its token,
    shares, price and match number (inventory was not booked), anything else by kind and token."""
    name = type(msg).__name__
    if isinstance(msg, (ouch.Executed, ouch.ExecutedWithReferencePrice)):
        return f"{name} {msg.token} {msg.executed_shares}@{msg.execution_price} match {msg.match_number}"
    return f"{name} {getattr(msg, 'token', '')}"


class EngineVenue:
    """Engine's venue answers and fills (a mixin of Engine: its state is Engine's)."""

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
