"""The risk gateway's inputs: market data and fair values (one at a time or a feed log in one
call), fills, positions, order states as the OMS and the venue report them, clock, journal and
reconciliation health, timers, Reg SHO flags and option parameters; each may set or clear a
fault. Part of RiskGateway (mm_core.risk.gateway); sans-io like it.
"""
from __future__ import annotations

import math
import operator
from typing import Iterable

from journal.catalogue import Side
from mm_core.risk.checks import CheckId
from mm_core.risk.errors import RiskError
from mm_core.risk.feedlog import FeedLog
from mm_core.risk.gateway_shared import (
    REPRICE_MOVE, REPRICE_NS, _BUY, _F_BOOK_STALE, _F_CLOCK, _F_CLOCK_STALE, _F_JOURNAL,
    _F_UNKNOWN_OUTCOME, _F_UNRECONCILED, _HALTED, _INF, _REDUCING, _SELL,
)
from mm_core.risk.gateway_state import _Group
from mm_core.risk.greeks import OptionParams
from mm_core.risk.states import Trigger

_PLAIN = (int, float)      # types whose comparisons need no conversion on the market path


def _whole(value) -> int | None:
    """An integer (Python or numpy), or None for anything else (bools, floats, text)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _positive_price(value) -> bool:
    """A finite positive number (int, float or a numpy scalar); anything else is bad input."""
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number > 0 and math.isfinite(number)


class GatewayInputs:
    """RiskGateway's inputs (a mixin of RiskGateway: its state is RiskGateway's)."""

    __slots__ = ()          # RiskGateway lists its own slots

    # ------------------------------------------------------------------------- input feeds
    def on_market(self, symbol_id: int, fair_value, reference_price, book_stale: bool,
                  now_ns: int) -> None:
        """Fair value and reference price (price4) of a symbol; book_stale marks a gap. A price
        that is not a finite positive number counts as a stale book (fail closed)."""
        sym = self._symbols.get(symbol_id) or self._symbol(symbol_id)
        valid = (0 < fair_value < _INF and 0 < reference_price < _INF) \
            if type(fair_value) in _PLAIN and type(reference_price) in _PLAIN \
            else _positive_price(fair_value) and _positive_price(reference_price)
        sym.md_ns = now_ns
        if valid:
            fair = int(round(fair_value))
            reference = int(round(reference_price))
            if fair != sym.fair or reference != sym.reference:
                sym.fair = fair
                sym.reference = reference
                self._set_bands(sym)
        stale = not valid or book_stale is True or bool(book_stale)
        if stale is not sym.book_stale:
            sym.book_stale = stale
            (self._stale_books.add if stale else self._stale_books.discard)(symbol_id)
            if self._stale_books:
                self._set_fault(_F_BOOK_STALE, now_ns)
            else:
                self._clear_fault(_F_BOOK_STALE)
        if valid:
            self._revalue(sym, now_ns)

    def on_markets(self, symbol_ids, fair_values, reference_prices, times) -> None:
        """on_market(s, fair, reference, False, now) of each, in order (the engine's replay hands
        over the feeds its batch path deferred): the common case, a symbol already known and fed,
        a finite positive float fair value and an integer reference price, is on_market inlined
        (an option group's revaluation when due included); anything else goes through on_market
        itself."""
        symbols, groups, set_bands = self._symbols, self._groups, self._set_bands
        for symbol_id, fair_value, reference, now_ns in zip(symbol_ids, fair_values, reference_prices, times):
            sym = symbols.get(symbol_id)
            if sym is None or sym.book_stale or type(fair_value) is not float or type(reference) is not int \
                    or not (0 < fair_value < _INF and reference > 0):
                self.on_market(symbol_id, fair_value, reference, False, now_ns)
                continue
            sym.md_ns = now_ns
            fair = int(round(fair_value))
            if fair != sym.fair or reference != sym.reference:
                sym.fair = fair
                sym.reference = reference
                set_bands(sym)
            self._mark(sym)
            if sym.underlying_id in groups:
                self._reprice_group(sym, now_ns)

    def on_feed_log(self, n: int, symbols, fair_values, times, references) -> None:
        """on_market(symbols[k], fair_values[k], references[symbols[k]], False, times[k]) for each
        k below n, in order: the engine's replay hands over the feeds its batch path deferred as
        C arrays (uint32_t, double, int64_t; `references` is indexed by symbol). The common case
        is one C call over the log (mm_core.risk.feedlog); the rest goes through on_market. A
        short log goes through on_markets: copying its symbols in and out would cost more."""
        log = self.__dict__.get("_feed_log")
        if log is None:
            log = self._feed_log = FeedLog()
        log.apply(self, n, symbols, fair_values, times, references, REPRICE_NS, REPRICE_MOVE)

    def on_fill(self, symbol_id: int, side: Side, qty: int, price: int, now_ns: int,
                token: str = "") -> None:
        """An execution of ours; `token` (if known) reduces that working order. A fill that makes
        no sense (qty or price not positive, no side) cannot be booked: the state latches."""
        qty, price = _whole(qty), _whole(price)
        if qty is None or qty <= 0 or price is None or price <= 0 or side not in (_BUY, _SELL):
            self._latch(CheckId.INCONSISTENT_INPUT,
                        f"fill {symbol_id} {side!r} {qty!r}@{price!r}"[:48], now_ns, "risk-gateway")
            return
        sym = self._symbol(symbol_id)
        signed = qty if side == _BUY else -qty
        sym.position += signed
        self._cash -= signed * price * sym.multiplier
        if token and signed < 0:
            self._regsho.on_sell_fill(sym.sho, token, qty)     # sold short: its locate is used
        if token:
            if self._replacing:
                self._fill_during_replace(token, qty)
            order = self._working.get(token)
            if order is not None:
                if order[2] > qty:
                    self._working[token] = (order[0], order[1], order[2] - qty, order[3])
                    self._work(order[0], order[1], -qty * order[3] * order[0].multiplier)
                    if order[1]:
                        order[0].open_buy -= qty
                    else:
                        order[0].open_sell -= qty
                else:
                    self._remove_working(token)
        lim = self._limits
        fills = self._fills
        fills.append(now_ns)
        horizon = now_ns - lim.throttle_window_ns
        while fills and fills[0] <= horizon:
            fills.popleft()
        self._revalue(sym, now_ns, positions_changed=True)
        if len(fills) > lim.throttle_max_fills:
            # RTS 6 Art. 15(3): disabled until a designated person re-enables, whatever the config.
            self._latch(CheckId.EXECUTION_THROTTLE, f"{len(fills)} fills in window", now_ns,
                        "risk-gateway", halt=True)

    def on_position(self, symbol_id: int, position: int, now_ns: int) -> None:
        """Set a position outright (reconciliation after a restart)."""
        sym = self._symbol(symbol_id)
        sym.position = int(position)
        self._revalue(sym, now_ns, positions_changed=True)

    def on_order_state(self, open_orders: Iterable | None = None, unknown_outcome: int = 0,
                       now_ns: int = 0) -> None:
        """Resynchronise working orders (None keeps the gateway's own view) and the count of
        orders whose outcome is unknown (any > 0 is a fault)."""
        if open_orders is not None:
            for sym in self._symbols.values():
                sym.open_buy = sym.open_sell = sym.work_buy = sym.work_sell = 0
                sym.own_buys.clear()
                sym.own_sells.clear()
            self._regsho.clear_markings()
            self._working.clear()
            self._work_buy = self._work_sell = self._work_gross = 0
            self._replacing.clear()
            self._replaced_by.clear()
            for order in open_orders:
                sym = self._symbol(order.symbol_id)
                self._add_working(order.token, sym, order.side == _BUY, order.qty, order.price)
                if order.side != _BUY:
                    self._regsho.hold_marking(sym.sho, order.token, getattr(order, "mark", "") or "")
        self._unknown_outcome = int(unknown_outcome)
        if unknown_outcome:
            self._set_fault(_F_UNKNOWN_OUTCOME, now_ns)
        else:
            self._clear_fault(_F_UNKNOWN_OUTCOME)

    def on_order_adopted(self, token: str, symbol_id: int, side: Side, qty: int, price: int,
                         mark: str = "", orig_token: str = "", now_ns: int = 0) -> None:
        """An order that exists at the venue without having passed check() (reconciliation adopts
        it after a crash lost its record): counted from now on as a confirmed order is, with its
        remaining qty, price and, for a sell, the venue's side byte as its marking ("" unknown:
        short; a short one holds its locate). A replacement of a working order is held with its
        original as an allowed replace is, until the venue answers; one whose original is itself a
        replacement in flight counts in full beside it (the venue's answers come in order and
        release each). No limit is checked: the order is there whatever the limits say, so the
        next order meets it."""
        qty, price = _whole(qty), _whole(price)
        if qty == 0:
            return                  # nothing left working: nothing to count
        if qty is None or qty < 0 or price is None or price <= 0 or side not in (_BUY, _SELL):
            self._latch(CheckId.INCONSISTENT_INPUT, f"adopted {token} {side!r} {qty!r}@{price!r}"[:48],
                        now_ns, "risk-gateway")
            return
        sym = self._symbol(symbol_id)
        is_buy = side == _BUY
        held = self._working.get(orig_token) if orig_token else None
        if token not in self._working and held is not None and held[0] is sym and held[1] is is_buy \
                and orig_token not in self._replaced_by and orig_token not in self._replacing:
            self._hold_original(orig_token, token, held, qty, price, True)
        else:
            self._add_working(token, sym, is_buy, qty, price)
        if not is_buy:
            self._regsho.hold_marking(sym.sho, token, mark)

    def on_trading_day(self, day: int, now_ns: int = 0) -> None:
        """The venue started trading day `day` (days since 1970-01-01 of its calendar date): the
        locates short sales used up belong to the day before, so a later day than the one held
        starts with none used. The first day told only names the day (what was used before it
        stays used: fail closed); the same or an earlier day changes nothing."""
        day = _whole(day)
        if day is not None:
            self._regsho.on_trading_day(day)

    def on_order_done(self, token: str, now_ns: int = 0) -> None:
        """A working order left the book (cancelled, filled, rejected, expired). A replacement the
        venue refused leaves its original resting as it was, and counted as such again."""
        if self._replacing and (token in self._replacing or token in self._replaced_by):
            self._end_replace(token, refused=True)
            return
        self._remove_working(token)

    def on_order_confirmed(self, token: str, qty: int, now_ns: int = 0, mark: str | None = None) -> None:
        """The venue confirmed an order working with `qty` shares left: a replace it accepted (its
        original is gone) or a size-down it applied. Only now does a smaller size count. `mark`:
        the side byte the venue holds for it (Order Modified echoes it): a sell's marking follows
        it from now on (S long; any other byte short), so a short sale modified to long is long
        only now."""
        if self._replacing and token in self._replacing:
            self._end_replace(token, refused=False)
        order = self._working.get(token)
        if order is not None:
            qty = _whole(qty)
            if qty is None or qty <= 0:
                self._remove_working(token)
                return
            if qty != order[2]:
                self._recount(token, qty)
            if mark is not None and not order[1]:
                if mark == "S":
                    order[0].sho.marks.pop(token, None)
                else:
                    order[0].sho.marks[token] = mark

    def on_order_resting(self, token: str, qty: int, price: int, now_ns: int = 0) -> None:
        """The venue's own record of a working order of ours (reconciliation, which cancels it
        next): `qty` shares rest there at `price`. Counted so until the venue answers the cancel,
        as any order a pending cancel pulls (the venue may fill it first): its shares in the open
        exposure, its price for self-trade prevention, whatever the gateway had counted before. A
        replace in flight ends as confirmed; no shares left releases it; a price that is not a
        positive integer cannot be counted: the state latches and the order keeps the price it had."""
        self.on_order_confirmed(token, qty, now_ns)
        order = self._working.get(token)
        if order is not None and self.on_order_priced(token, price, now_ns, "resting"):
            (order[0].own_buys if order[1] else order[0].own_sells)[token] = self._working[token][3]

    def on_order_priced(self, token: str, price: int, now_ns: int = 0, what: str = "priced") -> bool:
        """The venue's price of a working order of ours (its Accepted or Replaced echoes it; a
        venue may improve or round the price we asked for): counted at it from now on, in the
        working orders and for self-trade prevention. An original whose replace is in flight keeps
        it for a refused replace to restore. A price that is not a positive integer cannot be
        counted: the state latches and the order keeps the price it had (False)."""
        venue_price = _whole(price)
        if venue_price is None or venue_price <= 0:
            self._latch(CheckId.INCONSISTENT_INPUT, f"{what} {token} @{price!r}"[:48], now_ns,
                        "risk-gateway")
            return False
        replacement = self._replaced_by.get(token)
        if replacement is not None:
            pending = self._replacing[replacement]
            pending[2] = venue_price
            own = self._symbols[pending[4]].own_buys if pending[5] else self._symbols[pending[4]].own_sells
            if token in own:
                own[token] = venue_price
            return True
        order = self._working.get(token)
        if order is not None and order[3] != venue_price:
            sym, is_buy, counted, old_price = order
            self._working[token] = (sym, is_buy, counted, venue_price)
            self._work(sym, is_buy, counted * (venue_price - old_price) * sym.multiplier)
            own = sym.own_buys if is_buy else sym.own_sells
            if token in own:         # an IOC never rests: no own price to move
                own[token] = venue_price
        return True

    def on_clock(self, compliant: bool | None, now_ns: int, measured_ns: int | None = None) -> None:
        """Clock health for the configured profile, told at now_ns; None (unknown) counts as not
        compliant. measured_ns: when the sample was measured (default now_ns). The clock ages from
        then, not from when the sample arrived (the runner journals a sample up to a monitor period
        after it was taken): a compliant sample that is already older than max_clock_age leaves the
        clock stale, and one stamped after now_ns counts from now_ns (no credit for the future)."""
        if compliant is True:
            at = now_ns if measured_ns is None or measured_ns > now_ns else measured_ns
            if at > self._clock_ns:
                self._clock_ns = at
            self._clear_fault(_F_CLOCK)
            if now_ns - self._clock_ns > self._limits.max_clock_age_ns:
                self._set_fault(_F_CLOCK_STALE, now_ns)
            else:
                self._clear_fault(_F_CLOCK_STALE)
            self._clock_deadline()
        else:
            self._set_fault(_F_CLOCK, now_ns)

    def on_journal_health(self, ok: bool, now_ns: int) -> None:
        """The journal can (True) or cannot (False: append failed, disk full) take records."""
        if ok is True:
            self._clear_fault(_F_JOURNAL)
        else:
            self._set_fault(_F_JOURNAL, now_ns)

    def on_reconciled(self, ok: bool, now_ns: int) -> None:
        """Inventory matches the venue (True) or does not (False). A clean reconciliation releases
        the latch it caused and returns to ACTIVE, but only when no other latch reason is in force
        (one from before a restart, e.g. the throttle or a kill, still needs the operator)."""
        if ok is not True:
            self._set_fault(_F_UNRECONCILED, now_ns)
            return
        self._clear_fault(_F_UNRECONCILED)
        reasons = self._latch_reasons
        if reasons.pop(CheckId.UNRECONCILED, None) is not None and not reasons \
                and self._fsm.state in (_HALTED, _REDUCING):
            if self._safe_requested:     # the operator's safe mode is the operator's to lift
                self._fire(Trigger.RECONCILED_SAFE, CheckId.UNRECONCILED, "reconciled: inventory "
                           "matches the venue, no other latch; back to the operator's safe mode",
                           "reconciliation", now_ns)
            else:
                self._fire(Trigger.RECONCILED, CheckId.UNRECONCILED,
                           "reconciled: inventory matches the venue, no other latch", "reconciliation",
                           now_ns)

    def on_timer(self, now_ns: int) -> None:
        """Detects a clock that has gone quiet without waiting for the next order: a fault (listed
        in `faults`, so the engine stops presenting orders) that latches only if an order hits it.
        The engine calls it on its timer and on any event past clock_stale_at, so the fault is
        raised the same way whichever event comes first."""
        if now_ns - self._clock_ns > self._limits.max_clock_age_ns and self._clock_ns >= 0:
            self._set_fault(_F_CLOCK_STALE, now_ns)
        self._clock_deadline()

    def _clock_deadline(self) -> None:
        """clock_stale_at: max_clock_age after the newest compliant sample's measurement, while
        there is one and the clock is not flagged stale already (inf otherwise); and for the order
        path, when the newest sample becomes too old whatever the faults say."""
        self._clock_due = self._clock_ns + self._limits.max_clock_age_ns
        self.clock_stale_at = _INF if self._clock_ns < 0 or self._faults & _F_CLOCK_STALE \
            else self._clock_due

    def on_reg_sho(self, symbol_id: int, restricted: bool, now_ns: int = 0) -> None:
        """ITCH Reg SHO ('Y') for a symbol: the Rule 201 short sale price test is in force (True)
        or lifted (False); anything but False counts as in force (fail closed)."""
        self._symbol(symbol_id)
        self._regsho.on_reg_sho(symbol_id, restricted)

    def on_option_params(self, symbol_id: int, underlying_id: int, strike: int, expiry_ns: int,
                         vol: float, rate: float, is_call: bool, multiplier: int = 1,
                         now_ns: int = 0) -> None:
        """Declare (or update) an option symbol at now_ns; raises RiskError on bad parameters
        (check_option)."""
        params = OptionParams(symbol_id, underlying_id, int(strike), int(expiry_ns), float(vol),
                              float(rate), bool(is_call), int(multiplier))
        self.check_option(params, now_ns)
        sym = self._symbol(symbol_id)
        under = self._symbol(underlying_id)
        if under.option is not None:
            raise RiskError(f"option {symbol_id}: underlying {underlying_id} is itself an option")
        if sym.underlying_id != symbol_id and sym.underlying_id != underlying_id:
            old_group = self._groups[sym.underlying_id]     # the option moves to another underlying
            old_group.members.remove(symbol_id)
            sym.risk = sym.group = None
            self._refresh_group(old_group, None)
        group = self._groups.get(underlying_id)
        if group is None:
            group = self._groups[underlying_id] = _Group(underlying_id)
        if symbol_id not in group.members:
            group.members.append(symbol_id)
        under.underlying_id = underlying_id
        sym.option = params
        sym.under = under
        sym.underlying_id = underlying_id
        if sym.multiplier != params.multiplier:
            sym.multiplier = params.multiplier
            self._recount_work()         # its working orders' notional is in contracts now
        self._revalue(under, now_ns, force_reprice=True)
