"""The engine's quoting: a symbol's two quotes priced (fastquote.h, or the Python reference)
and sized within the gateway's position limit and its size and value limits on one order, each
side worked toward them (enter, replace, modify or cancel) with the gateway's room and denials
respected, every order through the risk gateway and into the OMS, and Reg SHO's marks (long or
short) on sells. Part of Engine (mm_core.engine); sans-io like it.
"""
from __future__ import annotations

from mm_core.engine_shared import (
    _ACCEPTED, _BUY, _CANCEL, _ENTER, _HALTED, _MEMO_N, _MODIFY, _PARTIAL, _PENDING_CANCEL,
    _PENDING_NEW, _QUOTE, _REDUCING, _REPLACE, _SELL, _send_order,
)
from mm_core.events import Action, SendOrder
from mm_core.fastbook import lib
from mm_core.guard import SymbolGuard
from mm_core.inventory import within_order_caps
from mm_core.oms import Order, TERMINAL
from mm_core.ownquotes import OwnQuotes
from mm_core.protocol import ouch
from mm_core.quotepricer import engine_price_quote, engine_price_reference
from mm_core.risk import TradingState
from mm_core.risk.checks import CheckId
from mm_core.risk.gateway import BOOK_STALE_BIT as _BOOK_STALE_BIT
from mm_core.types import OrderIntent, Purpose, Side, make_intent

_CHECK_OK = CheckId.OK
_top_depth = lib.fmd_top_depth
_top_depth_without = lib.fmd_top_depth_without
_QUOTE_VALUE = _QUOTE.value


def _needs_work(order: Order, price: int, qty: int) -> bool:
    """Whether _work_side would do anything to this resting quote (it acts only on an answered
    order whose price or size differs from the wanted one, or that must be pulled)."""
    state = order.fsm.state
    if state is not _ACCEPTED and state is not _PARTIAL:
        return False
    return qty <= 0 or price <= 0 or order.price != price or order.leaves != qty


def _side_may_act(orders: dict, token: str | None, price: int, qty: int) -> bool:
    """Whether _requote_side could send anything for this side: an enter where none rests, or
    work on the resting quote (_needs_work)."""
    if token is None:
        return qty > 0 and price > 0
    return _needs_work(orders[token], price, qty)


class EngineQuoting:
    """Engine's quoting and order submission (a mixin of Engine: its state is Engine's)."""

    def _requote(self, symbol_id: int, actions: list[Action]) -> None:
        """Work both sides of the symbol's quote toward what it should be now. When its first
        order would be the event's first output and both sides may act, the early sink gets the
        requote's orders together at its end (a bid and an ask moved at once leave in one send,
        the later not waiting behind the earlier's); when one side at most may act, its order
        goes to the sink as soon as it is built (_emit)."""
        if self._early is None or self._made:
            self._requote_sides(symbol_id, actions)
            return
        held = self._holding = []
        try:
            self._requote_sides(symbol_id, actions)
        finally:
            self._holding = None
            if held:            # every one of them ahead of anything else the event made
                early, self._early = self._early, None
                early(held)

    def _requote_sides(self, symbol_id: int, actions: list[Action]) -> None:
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
                # sized for the lower price: one order at the higher one may pass the gateway's
                # value cap no more (a side not one lot fits is not quoted)
                ask_qty = within_order_caps(ask_qty, ask_px, *self.risk.order_caps(symbol_id),
                                            self.cfg.skew.lot)
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
        if self._holding is not None and not (_side_may_act(orders, bid, bid_px, bid_qty)
                                              and _side_may_act(orders, ask, ask_px, ask_qty)):
            self._holding = None    # one side at most acts: its order need not wait for the other's
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
            # an enter of the very order entered within the gateway's duplicate window (a quote
            # pulled and back at its old price and size) would only be denied and back the side
            # off: it waits instead, and goes out at the first event past the window
            if qty > 0 and price > 0 and not self._quote_denied(symbol_id, side):
                qty = self._within_room(symbol_id, side == _BUY, qty)
                if qty <= 0 or self.risk.duplicate_until(symbol_id, side == _BUY, price, qty) > self.now:
                    return
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
            if not denied and order.price == price:
                # more size at the same price: only what the gateway has room for beside the
                # original, in whole lots; none, and the quote rests as it is (a pull here would
                # be entered again at the size it had, and pulled again, while the room stays taken)
                qty = self._replacement_room(symbol_id, side == _BUY, qty)
                if qty <= order.leaves:
                    return
            if not denied and order.mark == "S" and not self._long_sells(symbol_id, qty)[0]:
                # the replacement would keep the original's long marking (OUCH Replace keeps the
                # side) without the position to cover it: pull it; it comes back marked short
                self._cancel(order, Purpose.QUOTE, actions)
                return
            if not denied and not self._replacement_fits(symbol_id, side == _BUY, qty):
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

    def _within_room(self, symbol_id: int, buy: bool, qty: int) -> int:
        """A fresh quote's shares cut, in whole lots, to the gateway's live position room on its
        side: the quote was sized to the static limit on the position alone, and another working
        order there (a hedge IOC in flight, an order a recovery adopted) would get it denied."""
        room = self.risk.position_room(symbol_id, buy)
        if qty <= room:
            return qty
        lot = self.cfg.skew.lot
        return room // lot * lot if room > 0 else 0

    def _replacement_fits(self, symbol_id: int, buy: bool, qty: int) -> bool:
        """Whether a replace of our quote on this side to `qty` shares passes the gateway's
        position limit (and in REDUCING its reduce-only check) with the original still counted."""
        if qty > self.risk.position_room(symbol_id, buy):
            return False
        return self.risk.state is not _REDUCING or qty <= self._reduce_room(symbol_id, buy, None)

    def _replacement_room(self, symbol_id: int, buy: bool, qty: int) -> int:
        """`qty` cut to what a replace on this side passes with its original still counted: the
        position room in whole lots (_within_room), and in REDUCING the reduce-only room too."""
        qty = self._within_room(symbol_id, buy, qty)
        if self.risk.state is _REDUCING:
            room = self._reduce_room(symbol_id, buy, None)
            qty = qty if qty <= room else room
        return qty

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
        self._emit(_send_order(intent, packet, decision, int(decision.state)), actions)
        order = self.oms.on_sent(intent, now)
        if intent.kind is _ENTER:
            order.mark = mark
        self.counts["orders_sent"] += 1
        if intent.purpose is _QUOTE:
            # a modify sizes down shares already quoted: the fill rate counts them once
            self.metrics.on_quote_sent(intent.side, 0 if intent.kind is _MODIFY else intent.qty)
        return True

    def _emit(self, action: SendOrder, actions: list[Action]) -> None:
        """An order the gateway allowed out: the event's first output goes to the shell's early
        sink now (Engine._early: journaled and sent inside on_event), before the OMS books it
        (as the guard's pulls; the sink reads nothing the booking changes), any other into
        `actions`."""
        early = self._early
        if early is not None and not self._made:
            held = self._holding
            if held is not None:        # a requote's: they leave together at its end
                held.append(action)
                return
            self._early = None
            early([action])
        else:
            self._made += 1
            actions.append(action)

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
        self._emit(action, actions)
        self.oms.on_sent(action.intent, self.now)
        self.counts["cancels_sent"] += 1
