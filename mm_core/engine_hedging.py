"""The engine's hedging: when a hedged symbol's position is past what skew works off, IOC orders
in its hedge instrument toward the hedger's goal, sized to the gateway's room and the Reg SHO
price test, and the holds that keep our own quotes from undoing a hedge (no wash trade).
Part of Engine (mm_core.engine); sans-io like it.
"""
from __future__ import annotations

from mm_core.engine_shared import _BUY, _ENTER, _HALTED, _QUOTE, _REDUCING, _SELL
from mm_core.events import Action
from mm_core.oms import Order
from mm_core.protocol import ouch
from mm_core.types import Purpose, make_intent

_HEDGE_VALUE = Purpose.HEDGE.value
HOLD_BOTH = 2                   # hedge_hold of an instrument two pairs hedge in opposite ways
# pair_hold of a pair whose hedge waits for our quotes on its own side of the hedge instrument to
# go (they hold position room the gateway would give it): both sides of the instrument held
# (hedge_hold HOLD_BOTH) until the hedge is done, so a pulled quote does not come back meanwhile
HOLD_ROOM = 3


class EngineHedging:
    """Engine's hedge orders and holds (a mixin of Engine: its state is Engine's)."""

    def _hedge_around(self, symbol_id: int, actions: list[Action]) -> None:
        for hedged in self.hedge_targets[symbol_id]:
            self._hedge(hedged, actions)

    def _hold(self, symbol_id: int, h: int, hold: int) -> None:
        """Set the hedge hold of one pair (hedged symbol, hedge instrument h), and the hold on h
        that its pairs make together (and its C mirror): +1 a buy hedge is worked (our asks in h
        wait), -1 a sell hedge (our bids), HOLD_BOTH both, by two pairs hedging opposite ways or
        by a sell hedge waiting for the pull of our long-marked asks (_long_hedge), or by a hedge
        waiting for our quotes that hold its position room to go (HOLD_ROOM, _make_room)."""
        if self.pair_hold[symbol_id] == hold:
            return
        self.pair_hold[symbol_id] = hold
        buy = sell = False
        for t in self.hedge_of[h]:
            held = self.pair_hold[t]
            buy |= held > 0
            sell |= held < 0 or held >= HOLD_BOTH
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
        self._hold(symbol_id, h, HOLD_ROOM if self.pair_hold[symbol_id] == HOLD_ROOM else 1 if buying else -1)
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
        slices: no pulls of our quotes for an IOC that cannot go yet), our quotes that hold the
        position room it lacks are being pulled (_make_room), or, the pair's hold cleared, the
        gateway's limits leave no room (alerted) or REDUCING keeps a hedge that grows the position
        waiting."""
        if self.denied_until.get((h, int(_BUY if buying else _SELL), _HEDGE_VALUE), -1) > self.now:
            self.hedger.on_done(symbol_id)      # the hold as it is: cleared with the denial, kept
            return 0                            # between a cut hedge's slices
        reducing = self.risk.state is _REDUCING
        room = self.risk.order_room(h, buying, price)
        if reducing and room > 0:
            room = min(room, self._reduce_room(h, buying, None))
        elif room < qty and self._make_room(symbol_id, h, buying, price, room, actions):
            if room <= 0:
                self.hedger.on_done(symbol_id)
            return room                 # what fits now; the rest once the pulls are confirmed
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

    def _make_room(self, symbol_id: int, h: int, buying: bool, price: int, room: int,
                   actions: list[Action]) -> bool:
        """Whether our quotes on the hedge's side of `h` hold position room the gateway would give
        the hedge without them (the hedge reduces risk, the quotes can wait): then those not
        pulled yet are, and both sides of `h` are held for the pair (HOLD_ROOM) until its hedge is
        done. Quotes whose cancel is under way count as freeing room (the hedge waits for them)."""
        side = _BUY if buying else _SELL
        freed = 0
        for order in self.oms.live.values():
            if order.symbol_id == h and order.side == side and order.purpose is _QUOTE and \
                    order.tif != ouch.TIF_IOC:
                freed += order.leaves
        if not freed or self.risk.order_room(h, buying, price, freed) <= room:
            return False
        for order in self._pullable(_QUOTE, lambda o: o.side == side and o.tif != ouch.TIF_IOC, h):
            self._cancel(order, order.purpose, actions)
        self._hold(symbol_id, h, HOLD_ROOM)
        return True

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
