"""The engine's quote guard acting: a trip pulls the quotes at risk ahead of every other signal,
through the shell's sinks (armed pulls planned while idle, or the one-call C fill lane on our own
fill: flane_fire) or built first and handed over at once; the pulls' plan (prepare, pull_plan)
and the own-fill lane's checks. Part of Engine (mm_core.engine); sans-io like it: the shell's
sinks do the I/O.
"""
from __future__ import annotations

from typing import Callable

from mm_core.engine_shared import (
    EngineError, _BUY, _CANCEL, _EXEC_FLAG, _EXEC_PRICE, _EXEC_SHARES, _EXEC_TOKEN, _NO_PRICE,
    _PENDING_CANCEL, _PENDING_NEW, _QUOTE, _SELL, _SIG_NOMEM, _SIG_TRIPPED, _send_order, unpack,
)
from mm_core.events import Action, SendOrder
from mm_core.fastbook import ffi, lib
from mm_core.guard import Trip
from mm_core.oms import Order, OrderState, TERMINAL, TRANSITIONS, Trigger
from mm_core.protocol import ouch, soupbintcp
from mm_core.sigkernel import trip_of
from mm_core.types import Purpose, make_intent

_UNKNOWN = OrderState.UNKNOWN
_GUARD_CANCEL = Purpose.GUARD_CANCEL
_own_fill_c = lib.fsig_own_fill_evaluate
_lane_fire_c = lib.flane_fire
_lane_input_c = lib.flane_fire_input
_LANE_MAX, _TOKEN_WIDTH = lib.FLANE_MAX, lib.FLANE_TOKEN
_LANE_NOT, _LANE_QUIET, _LANE_NOMEM = lib.FLANE_NOT, lib.FLANE_QUIET, lib.FLANE_NOMEM
_LANE_REFUSED = lib.FLANE_REFUSED
_FILL, _PARTIAL_FILL = Trigger.FILL, Trigger.PARTIAL_FILL


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


class EngineGuard:
    """Engine's quote guard pulls and the own-fill lane (a mixin of Engine: its state is Engine's)."""

    def prepare(self) -> None:
        """Idle-time upkeep for the shell to call between events: the risk feeds quiet packets
        left waiting told to the gateway (_settle_feeds, as any read of it would), then the
        own-quote table and the work mirror the next packet's C call reads, rebuilt now if the
        OMS moved since. A cache
        of the OMS, so no decision and no state hash depends on whether or when it runs. Then the
        guard's pulls armed (_arm: the pullable quotes per symbol, for the shell's plan and the
        armed sink; a toxic event comes once in thousands, and this keeps its walk warm too) and a
        cancel intent built and dropped; they read state and change none."""
        self._settle_feeds()            # the feeds a quiet packet left in the C log, told now
        if self._rx is not None and not self.stale:
            self._own_table()
        self._arm()
        if self._lane_probe is not None:
            self._warm_lane()
        make_intent(_CANCEL, "", 0, _BUY, 0, 0, self.ids, purpose=_GUARD_CANCEL)

    def risk_verdict(self) -> tuple[int, int]:
        """The gateway's (state, limits version), what an armed plan was made under: read without
        telling it the feeds a quiet packet left waiting (no feed moves either), so the guard's
        pull path never waits for them."""
        gw = self._gw
        return int(gw.state), gw.limits_version

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
                or (now > self.now and now > self._gw.clock_stale_at)
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
