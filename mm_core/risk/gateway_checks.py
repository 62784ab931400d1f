"""The risk gateway's pre-trade checks: `check()` runs every order action through the trading
state, faults, market and clock freshness, size, price collars, position and notional room,
rates, drift and duplicates (in C by default: mm_core.risk.windows), option Greeks and scenario
loss, and Reg SHO, and answers with a RiskDecision. Part of RiskGateway (mm_core.risk.gateway);
sans-io like it.
"""
from __future__ import annotations

from mm_core._fastmd_cffi import lib as _lib
from mm_core.risk.checks import CheckId, RiskDecision
from mm_core.risk.gateway_shared import (
    FAULT_CHECKS, _ACTIVE, _BUY, _DUP_PURGE, _F_BOOK_STALE, _F_CLOCK, _F_CLOCK_STALE, _F_GLOBAL, _F_JOURNAL,
    _F_UNKNOWN_OUTCOME, _F_UNRECONCILED, _HALTED, _SAFE, _SELL,
)
from mm_core.risk.gateway_state import _Group, _Symbol
from mm_core.risk.greeks import UnitRisk
from mm_core.risk.limits import PRICE4
from mm_core.types import OrderIntent, OrderKind

_ENTER = OrderKind.ENTER
_REPLACE = OrderKind.REPLACE
_MODIFY = OrderKind.MODIFY
_CANCEL = OrderKind.CANCEL
_IOC = 0                   # OrderIntent.tif of an immediate-or-cancel order (OUCH time in force 0)
_frk_check, _frk_commit, _FRK_RANGE = _lib.frk_check, _lib.frk_commit, _lib.FRK_RANGE


def _reduces(position: int, post: int) -> bool:
    """True when the worst case after the order is smaller in size and not flipped in sign."""
    return abs(post) < abs(position) and (post == 0 or (post > 0) == (position > 0))


def _is_cancel(intent) -> bool:
    try:
        return intent.kind is _CANCEL or (intent.kind is _MODIFY and intent.qty == 0)
    except Exception:
        return False


class GatewayChecks:
    """RiskGateway's pre-trade checks (a mixin of RiskGateway: its state is RiskGateway's)."""

    __slots__ = ()          # RiskGateway lists its own slots

    # ------------------------------------------------------------------------ the order check
    def check(self, intent: OrderIntent, now_ns: int, mark: str | None = None,
              best_bid: int | None = None) -> RiskDecision:
        """Verdict on one order action. Never raises: a denial is the returned event.

        `mark`: the OUCH side byte the order goes out with: "B", or a sell's Reg SHO marking "S"
        (long), "T" (short) or "E" (short exempt); None: the byte of intent.side (B, or S: long).
        `best_bid`: the national best bid (price4, 0 none) when the engine sees the Rule 201 price
        test in force; a short sale on a symbol the gateway knows restricted needs it.
        Order of checks: identity and fields (the marking's byte too), fail-closed inputs,
        throttle, trading state, time (never before the last order's), message rate, size and
        value, collars, duplicates, a replace of a replacement in flight or of an original whose
        replace is in flight (and a modify of such an original, or of a replacement off its side),
        open orders, position, notional, Greeks and scenario, drawdown, self-trade, then for sells
        Reg SHO (a long sale covered, a short sale's price test and locate). One flat body with
        locals: this runs for every order.
        """
        try:
            kind = intent.kind
            enter = kind is _ENTER
            if not enter:
                if kind is _CANCEL or (kind is _MODIFY and intent.qty == 0):
                    return self._check_cancel(now_ns)
                if kind is _MODIFY:
                    held = self._working.get(intent.token)
                    if held is not None and 0 < intent.qty < (
                            held[2] if not self._replacing or intent.token not in self._replacing
                            else self._replacing[intent.token][3]) and (mark is None or mark == (
                            "B" if held[1] else held[0].sho.marks.get(intent.token, "S"))):
                        # a size-down in place: the price the collars judged stays, exposure only
                        # shrinks, so it passes as a partial cancel does (and counts as one); the
                        # larger size stays counted until the venue confirms (on_order_confirmed).
                        # A replacement in flight shrinks only below its own size, not below the
                        # original's shares left that are counted with it.
                        # One that changes the side byte (OUCH Modify carries it) is checked in full.
                        return self._check_cancel(now_ns)
            lim = self._limits
            if not intent.algo_id or not intent.client_id or not (intent.desk_id or intent.trader_id):
                return self._deny(CheckId.MISSING_IDS, 0, 0, "algo, desk/trader and client ids required")
            qty = intent.qty
            price = intent.price
            if qty <= 0 or price <= 0:
                return self._deny(CheckId.INVALID_ORDER, qty, price, "qty and price must be positive")
            if self._faults & _F_GLOBAL:
                return self._deny_fault(intent.symbol_id, now_ns)
            if now_ns > self._clock_due:          # now_ns - self._clock_ns > max_clock_age_ns
                return self._deny_latched(CheckId.CLOCK_STALE, now_ns - self._clock_ns,
                                          lim.max_clock_age_ns, "no recent clock sample", now_ns)
            symbol_id = intent.symbol_id
            if symbol_id in lim.restricted:
                return self._deny(CheckId.RESTRICTED_SYMBOL, symbol_id, 0, "symbol is restricted")
            if self._scoped_kills and self.blocks(symbol_id, intent.algo_id, intent.desk_id, intent.client_id):
                return self._deny(CheckId.KILLED, symbol_id, 0, "a scoped kill is in force")
            sym = self._symbols.get(symbol_id)
            if sym is None or not sym.fair or now_ns - sym.md_ns > lim.max_market_age_ns \
                    or sym.book_stale:
                return self._deny_market(sym, symbol_id, now_ns)
            under = sym.under
            if under is not None:     # an option: its valuation needs the underlying's price too
                if not under.fair or sym.risk is None or now_ns - under.md_ns > lim.max_market_age_ns \
                        or under.book_stale:
                    return self._deny_market(sym, symbol_id, now_ns)

            fills = self._fills
            if fills:             # (none in the window: under any limit, which is at least 1)
                horizon = now_ns - lim.throttle_window_ns
                while fills and fills[0] <= horizon:
                    fills.popleft()
                if len(fills) > lim.throttle_max_fills:
                    return self._deny_latched(CheckId.EXECUTION_THROTTLE, len(fills),
                                              lim.throttle_max_fills, "repeated executions", now_ns)

            # Worst case: every working order on this side fills, and so does this one.
            side = intent.side
            if side is _BUY:
                is_buy = True
            elif side is _SELL:
                is_buy = False
            elif side == _BUY or side == _SELL:     # a plain int 66/83 rather than the enum
                is_buy = side == _BUY
            else:
                return self._deny(CheckId.INVALID_ORDER, 0, 0, f"side must be B or S, got {side!r}"[:48])
            if mark is not None and (mark != "B" if is_buy else mark != "S" and mark != "T" and mark != "E"):
                return self._deny(CheckId.SALE_MARKING, 0, 0, (f"a buy marked {mark!r}" if is_buy else
                                  f"a sell marked {mark!r}, not S, T or E")[:48])
            same_side = sym.open_buy if is_buy else sym.open_sell
            replaced = pending = held_mark = None
            if not enter:
                replaced = self._working.get(intent.orig_token if kind is _REPLACE else intent.token)
                # a modify changes the order in place; a replace's original stays counted: the
                # venue sets the replacement's size whatever the original filled meanwhile
                if replaced is not None and kind is _MODIFY and replaced[0] is sym and replaced[1] is is_buy:
                    # a replacement in flight: only its own size changes, as the original's shares
                    # left counted with it may still fill before the replace lands
                    pending = self._replacing.get(intent.token) if self._replacing else None
                    same_side -= replaced[2] if pending is None else pending[3]
            signed = same_side + qty if is_buy else -(same_side + qty)
            position = sym.position
            post = position + signed

            state = self._state
            if state is not _ACTIVE and state is not _SAFE:
                if state is _HALTED:
                    return self._halted          # the flood case while halted: no allocation
                if not _reduces(position, post):
                    return self._deny(CheckId.REDUCE_ONLY, post, position, "only reducing orders")

            # The windows keep their times in arrival order and expire them from the front: an
            # order stamped before one they saw would break that (the drift collar lost its
            # queue's high while the low stayed), so time running backwards latches instead.
            if now_ns < self._order_ns:
                return self._deny_latched(CheckId.INCONSISTENT_INPUT, now_ns, self._order_ns,
                                          "order time before the last order's", now_ns)
            self._order_ns = now_ns

            # The message rate. The C windows (_win) check it with the drift collar and the
            # duplicates, in one call after the size and collar checks: a denial those checks make
            # first asks _rate_first for the rate's verdict, which comes before theirs.
            win = self._win
            if win is None:
                denial = self._rate_py(kind, now_ns)
                if denial is not None:
                    return denial

            # (order_caps gives the engine these two limits as these checks apply them)
            slim = sym.limits
            max_qty = slim.max_order_qty
            if state is _SAFE:
                max_qty = int(max_qty * lim.safe_size_multiplier)
            if qty > max_qty:
                return self._rate_first(kind, now_ns) or self._deny(CheckId.MAX_ORDER_QTY, qty, max_qty,
                                                                    "order volume")
            value = qty * price * sym.multiplier
            if value > slim.max_order_value:
                return self._rate_first(kind, now_ns) or self._deny(
                    CheckId.MAX_ORDER_VALUE, value, slim.max_order_value, "order value")

            fair = sym.fair
            if price > sym.fair_hi or price < sym.fair_lo:      # |price - fair| > the half-width
                return self._rate_first(kind, now_ns) or self._deny(
                    CheckId.COLLAR_FAIR, price - fair if price >= fair else fair - price, sym.fair_band,
                    "price away from fair value")
            if price > sym.reference_hi or price < sym.reference_lo:
                reference = sym.reference
                return self._rate_first(kind, now_ns) or self._deny(
                    CheckId.COLLAR_REFERENCE, price - reference if price >= reference else reference - price,
                    sym.reference_band, "price away from reference")
            if win is not None:
                try:
                    verdict = _frk_check(win, enter, now_ns, symbol_id, is_buy, price, qty, sym.drift_band)
                except (TypeError, OverflowError):      # not an int64_t: the Python windows decide
                    verdict = _FRK_RANGE
                if verdict:
                    if verdict != _FRK_RANGE:
                        return self._window_denial(verdict, kind, sym)
                    self._decompile()
                    win = None
                    denial = self._rate_py(kind, now_ns)
                    if denial is not None:
                        return denial
            if win is None:
                denial = self._drift_duplicate_py(sym, is_buy, price, qty, enter, now_ns)
                if denial is not None:
                    return denial

            if kind is _REPLACE and self._replacing and (
                    intent.orig_token in self._replacing or intent.orig_token in self._replaced_by):
                # the venue has not said which of the two rests: a chain of replaces would count
                # one of them too small whichever answer comes first; a second replace of the same
                # original would count it as a new order (its original is counted in the first)
                return self._deny(CheckId.INVALID_ORDER, 0, 0, "its original's replace is in flight"
                                  if intent.orig_token in self._replacing else
                                  "a replace of its original is in flight")
            if kind is _MODIFY and pending is None and self._replacing and (
                    intent.token in self._replacing or intent.token in self._replaced_by):
                # an original in flight is counted in its replacement, and a replacement's count
                # is tied to its original's on the symbol and side the replace named
                return self._deny(CheckId.INVALID_ORDER, 0, 0, "modify of an order whose replace is in flight")

            working = self._working
            if enter and len(working) >= lim.max_open_orders:
                return self._deny(CheckId.MAX_OPEN_ORDERS, len(working) + 1, lim.max_open_orders,
                                  "working orders")

            cap = slim.max_position
            if (post > cap or -post > cap) and not _reduces(position, post):
                return self._deny(CheckId.POSITION_LIMIT, post, slim.max_position,
                                  "position incl. working orders")

            notional = sym.notional
            post_notional = post * fair * sym.multiplier
            # the other symbols' working orders count too (15c3-5: in the aggregate): for gross
            # the larger side of each, for net the side this order is on
            work_buy = sym.work_buy
            work_sell = sym.work_sell
            all_buy = self._work_buy
            all_sell = self._work_sell
            held = self._gross + self._work_gross - (work_buy if work_buy > work_sell else work_sell)
            gross = held - (notional if notional >= 0 else -notional) + \
                (post_notional if post_notional >= 0 else -post_notional)
            if gross > lim.max_gross_notional and gross > held:
                return self._deny(CheckId.GROSS_NOTIONAL, gross, lim.max_gross_notional, "gross notional")
            before = self._net + (all_buy - work_buy if is_buy else work_sell - all_sell)
            net = before - notional + post_notional
            abs_net = net if net >= 0 else -net
            if abs_net > lim.max_net_notional and abs_net > (before if before >= 0 else -before):
                return self._deny(CheckId.NET_NOTIONAL, net, lim.max_net_notional, "net notional")

            group = sym.group
            if group is not None and ((signed if signed >= 0 else -signed) > sym.headroom or (
                    (all_buy != work_buy or all_sell != work_sell)     # others work
                    and self._group_working(sym, group))):
                # Near a Greek or scenario limit, or other orders in the group may fill too (the
                # headroom counts positions only): the exact post-order numbers decide.
                denial = self._check_greeks(sym, group, signed)
                if denial is not None:
                    return denial

            if self._pnl_peak - self._cash - self._net > lim.max_drawdown and \
                    not _reduces(position, post):
                return self._deny(CheckId.DRAWDOWN, self._pnl_peak - self._cash - self._net,
                                  lim.max_drawdown, "drawdown from P&L peak")

            # Self-trade prevention: never cross one of our own working orders (a pending cancel
            # still counts: the venue may not have taken it out yet). A replaced order is on the
            # same side, so it is never among those looked at.
            own = sym.own_sells if is_buy else sym.own_buys
            if own:
                for own_price in own.values():
                    if (own_price <= price) if is_buy else (own_price >= price):
                        return self._deny(CheckId.SELF_TRADE, price, own_price,
                                          "would trade with our own working order")

            # Reg SHO: a sell's own checks (in _reg_sho) unless plainly clear: a long sale the
            # position covers, or a short sale of an easy-to-borrow symbol with no price test on
            # (mark None: the side's own byte, S)
            allowed = self._allowed
            if not is_buy and (kind is _REPLACE or (
                    ((post < 0 or self._replacing) and sym.option is None)
                    if mark is None or mark == "S" else
                    sym.sho.ssr or symbol_id not in lim.easy_to_borrow)):
                allowed = self._reg_sho(sym, intent, kind, mark or "S", post, best_bid)
                if not allowed.allowed:
                    return allowed

            # Allowed: record it in every window before it leaves (RTS 6: include all orders sent).
            if win is None:
                self._record_py(sym, is_buy, price, qty, enter, now_ns)
            else:
                _frk_commit(win)
            token = intent.token
            if kind is _REPLACE and replaced is not None and replaced[0] is sym \
                    and replaced[1] is is_buy and token not in working:
                if not is_buy and mark is not None and mark != "S":
                    sym.sho.marks[token] = mark
                self._hold_original(intent.orig_token, token, replaced, qty, price, intent.tif != _IOC)
                return allowed
            if (replaced is not None and kind is not _REPLACE) or token in working:
                if not is_buy:
                    held_mark = sym.sho.marks.get(token)     # short (T, E, "" unknown) or None
                self._remove_working(token)
                work_buy = sym.work_buy         # what it counted left the totals
                work_sell = sym.work_sell
            if pending is not None:
                # a replacement in flight: its new size, with the original's shares left beside it
                pending[3] = qty
                qty += pending[1]
                value = qty * price * sym.multiplier
            elif kind is _MODIFY and replaced is not None and replaced[2] > qty and \
                    replaced[0] is sym and replaced[1] is is_buy:
                # a size-down that changes the side byte: checked in full at its new size, but, as
                # a plain size-down, counted at the larger until the venue confirms (on_order_confirmed),
                # at the price held (a Modify leaves the price at the venue as it is)
                qty = replaced[2]
                price = replaced[3]
                value = qty * price * sym.multiplier
            working[token] = (sym, is_buy, qty, price)
            # self._work(sym, is_buy, value) inlined, as this runs for every order sent (value >= 0:
            # the symbol's larger side grows by what this side comes to exceed it). An IOC never
            # rests: whatever we send after it on the session reaches the venue after it is gone,
            # so only orders that can rest count for self-trade prevention.
            if is_buy:
                sym.work_buy = work_buy + value
                self._work_buy += value
                if work_buy >= work_sell:
                    self._work_gross += value
                elif work_buy + value > work_sell:
                    self._work_gross += work_buy + value - work_sell
                sym.open_buy += qty
                if intent.tif != _IOC:
                    sym.own_buys[token] = price
            else:
                sym.work_sell = work_sell + value
                self._work_sell += value
                if work_sell >= work_buy:
                    self._work_gross += value
                elif work_sell + value > work_buy:
                    self._work_gross += work_sell + value - work_buy
                sym.open_sell += qty
                if mark is not None and mark != "S":
                    sym.sho.marks[token] = mark
                elif held_mark is not None:
                    # a short sale modified to long: the venue holds it short until it applies the
                    # Modify, and a fill before then uses a locate; long once it confirms the side
                    sym.sho.marks[token] = held_mark
                if intent.tif != _IOC:
                    sym.own_sells[token] = price
            return allowed
        except Exception as exc:  # fail closed on any defect inside a check
            detail = f"{type(exc).__name__}: {exc}"[:48]
            self._latch(CheckId.INTERNAL_ERROR, detail, now_ns, "risk-gateway")
            if _is_cancel(intent):
                return self._allowed          # a cancel is never refused, even by a defect
            return self._deny(CheckId.INTERNAL_ERROR, 0, 0, detail)

    def _reg_sho(self, sym: _Symbol, intent: OrderIntent, kind: OrderKind, mark: str, post: int,
                 best_bid: int | None) -> RiskDecision:
        """Reg SHO's verdict on a sell whose own checks passed (mm_core.risk.regsho.RegSho.check):
        self._allowed, the bona fide market-making exception (allowed, for the engine to journal)
        or a denial."""
        verdict = self._regsho.check(sym, intent, kind, mark, post, best_bid, self._limits,
                                     self._working)
        if verdict is None:
            return self._allowed
        allowed, check, value, limit, detail = verdict
        if allowed:
            return RiskDecision(True, check, value, limit, detail, self._fsm.state, self._limits.version)
        return self._deny(check, value, limit, detail)

    def _check_cancel(self, now_ns: int) -> RiskDecision:
        window = self._cancels
        horizon = now_ns - self._limits.rate_window_ns
        while window and window[0] <= horizon:
            window.popleft()
        window.append(now_ns)
        count = len(window)
        if count > self._limits.max_cancels:
            # Cancels always pass; the breach is still reported so the engine can journal it.
            return RiskDecision(True, CheckId.MSG_RATE_CANCEL, count, self._limits.max_cancels,
                                "cancel rate over limit; cancels always pass",
                                self._fsm.state, self._limits.version)
        return self._allowed

    def _deny(self, check: CheckId, value: int, limit: int, detail: str) -> RiskDecision:
        return RiskDecision(False, check, int(value), int(limit), detail, self._fsm.state,
                            self._limits.version)

    def _deny_latched(self, check: CheckId, value: int, limit: int, detail: str,
                      now_ns: int) -> RiskDecision:
        self._latch(check, detail, now_ns, "risk-gateway")
        return self._deny(check, value, limit, detail)

    def _deny_market(self, sym: _Symbol | None, symbol_id: int, now_ns: int) -> RiskDecision:
        """An order on a symbol whose market input is unusable: denied, and (having been presented
        while the fault is active) it latches the state."""
        return self._deny_latched(*self._market_problems(sym, symbol_id, now_ns)[0], now_ns)

    def _market_problems(self, sym: _Symbol | None, symbol_id: int, now_ns: int) -> list:
        """Every unusable market input an order on the symbol meets, in the order check() looks:
        its own book and prices, then an option's underlying's, then an option's valuation."""
        problems = [self._market_problem(sym, symbol_id, now_ns)]
        under = sym.under if sym is not None else None
        if under is not None:
            problems.append(self._market_problem(under, under.symbol_id, now_ns))
            if problems[-1] is None and sym.risk is None:
                problems.append((CheckId.OPTION_PARAMS_MISSING, symbol_id, 0,
                                 f"option {symbol_id} has no valuation"))
        return [p for p in problems if p is not None]

    def _market_problem(self, sym: _Symbol | None, symbol_id: int, now_ns: int):
        """(check, value, limit, detail) of a symbol whose market input is unusable, else None."""
        if sym is not None and sym.book_stale:
            return CheckId.BOOK_STALE, symbol_id, 0, f"stale book: symbol {symbol_id}"
        if sym is None or not sym.fair:
            return CheckId.MARKET_DATA_MISSING, symbol_id, 0, f"no market data for symbol {symbol_id}"
        age = now_ns - sym.md_ns
        if age <= self._limits.max_market_age_ns:
            return None
        return (CheckId.MARKET_DATA_STALE, age, self._limits.max_market_age_ns,
                f"market data of symbol {symbol_id} too old")

    # ------------------------------------------------- the windows in Python: the reference
    def _rate_py(self, kind: OrderKind, now_ns: int) -> RiskDecision | None:
        """The message rate: the kind's window popped; its denial, else None."""
        lim = self._limits
        if kind is _ENTER:
            window = self._submits
            most = lim.max_submits
        else:
            window = self._modifies
            most = lim.max_modifies
        horizon = now_ns - lim.rate_window_ns
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= most:
            return self._deny_rate(kind, len(window) + 1)
        return None

    def _drift_duplicate_py(self, sym: _Symbol, is_buy: bool, price: int, qty: int, enter: bool,
                            now_ns: int) -> RiskDecision | None:
        """The drift collar (the side's queues popped) then the duplicates; a denial, else None."""
        lim = self._limits
        dmax, dmin = sym.drift_buy if is_buy else sym.drift_sell
        horizon = now_ns - lim.collar_drift_window_ns
        while dmax and dmax[0][0] <= horizon:
            dmax.popleft()
        while dmin and dmin[0][0] <= horizon:
            dmin.popleft()
        if dmax or dmin:         # both or neither: one empty is a defect (IndexError, as the C)
            high = dmax[0][1]
            low = dmin[0][1]
            spread = (price if price > high else high) - (price if price < low else low)
            if spread > sym.drift_band:
                return self._deny(CheckId.COLLAR_DRIFT, spread, sym.drift_band, "own prices drifted in window")
        if enter and lim.duplicate_window_ns:
            dup_key = (sym.symbol_id, is_buy, price, qty)
            dup_last = self._dup_last
            if dup_key in dup_last and now_ns - dup_last[dup_key] < lim.duplicate_window_ns:
                last = dup_last[dup_key]
                return self._deny(CheckId.DUPLICATE_ORDER, now_ns - last, lim.duplicate_window_ns,
                                  "same symbol/side/price/qty")
        return None

    def _record_py(self, sym: _Symbol, is_buy: bool, price: int, qty: int, enter: bool, now_ns: int) -> None:
        """An allowed order in the kind's rate window, the side's drift queues and the duplicates."""
        (self._submits if enter else self._modifies).append(now_ns)
        dmax, dmin = sym.drift_buy if is_buy else sym.drift_sell
        stamped = (now_ns, price)
        while dmax and dmax[-1][1] <= price:
            dmax.pop()
        dmax.append(stamped)
        while dmin and dmin[-1][1] >= price:
            dmin.pop()
        dmin.append(stamped)
        if enter and self._limits.duplicate_window_ns:
            dup_last = self._dup_last
            dup_last[(sym.symbol_id, is_buy, price, qty)] = now_ns
            if len(dup_last) >= self._dup_purge_at:
                self._purge_duplicates(now_ns)

    # ---------------------------------------------------------------- the windows in C
    def _rate_first(self, kind: OrderKind, now_ns: int) -> RiskDecision | None:
        """With the C windows, the rate's denial for an order a later check denies (the reference
        checks the rate first), else None; nothing without them (the rate was checked)."""
        win = self._win
        if win is None:
            return None
        try:
            count = _lib.frk_rate(win, kind is _ENTER, now_ns)
        except (TypeError, OverflowError):
            count = -1
        if count < 0:                       # a time out of the C's range: the Python windows
            self._decompile()
            return self._rate_py(kind, now_ns)
        most = self._limits.max_submits if kind is _ENTER else self._limits.max_modifies
        return self._deny_rate(kind, count + 1) if count >= most else None

    def _window_denial(self, verdict: int, kind: OrderKind, sym: _Symbol) -> RiskDecision:
        """The denial frk_check answered, with the values the reference reports."""
        value = _lib.frk_value(self._win)
        if verdict == _lib.FRK_RATE:
            return self._deny_rate(kind, value + 1)
        if verdict == _lib.FRK_DRIFT:
            return self._deny(CheckId.COLLAR_DRIFT, value, sym.drift_band, "own prices drifted in window")
        if verdict == _lib.FRK_DUPLICATE:
            return self._deny(CheckId.DUPLICATE_ORDER, value, self._limits.duplicate_window_ns,
                              "same symbol/side/price/qty")
        if verdict == _lib.FRK_EMPTY:       # as the reference's [0] on an empty deque
            raise IndexError("deque index out of range")
        raise MemoryError("fastrisk: frk_check")

    def _purge_duplicates(self, now_ns: int) -> None:
        """Drops keys older than the window; amortised O(1) as the next purge waits for growth."""
        horizon = now_ns - self._limits.duplicate_window_ns
        self._dup_last = {k: ts for k, ts in self._dup_last.items() if ts > horizon}
        self._dup_purge_at = max(_DUP_PURGE, 2 * len(self._dup_last))

    def _deny_rate(self, kind: OrderKind, count: int) -> RiskDecision:
        if kind is _ENTER:
            return self._deny(CheckId.MSG_RATE_SUBMIT, count, self._limits.max_submits, "message rate")
        return self._deny(CheckId.MSG_RATE_MODIFY, count, self._limits.max_modifies, "message rate")

    def _group_working(self, sym: _Symbol, group: _Group) -> bool:
        """True when another symbol of the group has working orders."""
        symbols = self._symbols
        for member_id in group.members:
            member = symbols[member_id]
            if member is not sym and (member.open_buy or member.open_sell):
                return True
        return False

    def _others(self, sym: _Symbol, group: _Group) -> list:
        """(buys, -sells, symbol) of the group's other symbols with working orders: any of them
        may fill too, so the Greeks and scenarios count each at its worst (15c3-5: aggregate)."""
        symbols = self._symbols
        others = []
        for member_id in group.members:
            member = symbols[member_id]
            if member is not sym and (member.open_buy or member.open_sell):
                others.append((member.open_buy, -member.open_sell, member))
        return others

    def _check_greeks(self, sym: _Symbol, group: _Group, signed: int) -> RiskDecision | None:
        """A Greek past its limit denies only if the order makes it worse (reducing passes);
        then the full-revaluation scenario loss, if its cheap lower bound is past the limit. The
        group's other working orders move each Greek anywhere between all their buys and all their
        sells filling: the worse end counts, before and after this order."""
        lim = self._limits
        risk = sym.risk
        if risk is None:                # its group could not be revalued: fail closed
            return self._deny(CheckId.OPTION_PARAMS_MISSING, sym.symbol_id, 0,
                              f"symbol {sym.symbol_id} has no valuation")
        others = self._others(sym, group)
        for _, _, other in others:
            if other.risk is None:      # cannot be valued: fail closed
                return self._deny(CheckId.OPTION_PARAMS_MISSING, other.symbol_id, 0,
                                  f"option {other.symbol_id} has no valuation")
        for check, before, unit, cap, scale, name in (
                (CheckId.DELTA_LIMIT, group.delta, risk.delta, lim.max_delta, 1, "delta"),
                (CheckId.GAMMA_LIMIT, group.gamma, risk.gamma, lim.max_gamma, 1, "gamma"),
                (CheckId.VEGA_LIMIT, group.vega, risk.vega, lim.max_vega, PRICE4, "vega")):
            after = before + signed * unit
            if others:
                low = high = 0.0
                for buys, sells, other in others:
                    u = getattr(other.risk, name)
                    low += min(buys * u, sells * u)
                    high += max(buys * u, sells * u)
                worst_before = max(abs(before + high), abs(before + low))
                after = after + high if abs(after + high) >= abs(after + low) else after + low
            else:
                worst_before = abs(before)
            if abs(after) > cap and abs(after) > worst_before:
                return self._deny(check, round(after * scale), round(cap * scale), check.label)
        # a lower bound of what the others can lose (<= 0: buys lose at pnl_lo, sells at pnl_hi)
        bound = sum([min(b * o.pnl_lo, s * o.pnl_hi) for b, s, o in others]) if others else 0.0
        if group.worst + bound + signed * (sym.pnl_lo if signed > 0 else sym.pnl_hi) < self._loss_floor:
            return self._check_scenario(group, risk, signed, others)
        return None

    def _check_scenario(self, group: _Group, risk: UnitRisk, signed: int,
                        others: list = ()) -> RiskDecision | None:
        """Full-revaluation scenario loss after the order (per-contract P&L is linear in qty), the
        group's other working orders at their worst in each scenario."""
        base = group.scenario
        if others:
            base = [a + sum(min(b * o.risk.scenario_pnl[i], s * o.risk.scenario_pnl[i])
                                for b, s, o in others) for i, a in enumerate(base)]
        post_worst = min([a + signed * b for a, b in zip(base, risk.scenario_pnl)])
        loss = -post_worst * PRICE4
        if loss > self._limits.scenario_max_loss and post_worst < (min(base) if others else group.worst):
            return self._deny(CheckId.SCENARIO_LOSS, round(loss), self._limits.scenario_max_loss,
                              "scenario loss")
        return None

    def _deny_fault(self, symbol_id: int, now_ns: int) -> RiskDecision:
        """An order presented while a global fault is active: denied for the first one, and the
        state latches for every fault and unusable input the order met. A clean reconciliation
        releases only its own latch, so one that a clock or market fault met alongside it must
        still need the operator (fail closed)."""
        first = None
        for bit, check in FAULT_CHECKS:
            if self._faults & _F_GLOBAL & bit:
                value = self._unknown_outcome if bit == _F_UNKNOWN_OUTCOME else \
                    now_ns - self._clock_ns if bit == _F_CLOCK_STALE else 0
                limit = self._limits.max_clock_age_ns if bit == _F_CLOCK_STALE else 0
                first = first or (check, value, limit, self._fault_detail(bit))
                self._latch(check, self._fault_detail(bit), now_ns, "risk-gateway")
        if first is None:
            raise AssertionError("no fault bit set")
        if now_ns - self._clock_ns > self._limits.max_clock_age_ns:     # the checks after this one
            self._latch(CheckId.CLOCK_STALE, "no recent clock sample", now_ns, "risk-gateway")
        for problem in self._market_problems(self._symbols.get(symbol_id), symbol_id, now_ns):
            self._latch(problem[0], problem[3], now_ns, "risk-gateway")
        return self._deny(*first)

    def _fault_detail(self, bit: int) -> str:
        if bit == _F_CLOCK:
            return "clock not compliant" if self._clock_ns >= 0 else "no clock sample yet"
        if bit == _F_BOOK_STALE:
            return "stale book: symbols " + ",".join(map(str, sorted(self._stale_books)))[:28]
        return {_F_JOURNAL: "journal cannot take records", _F_UNRECONCILED: "inventory not reconciled",
                _F_UNKNOWN_OUTCOME: "orders with unknown outcome",
                _F_CLOCK_STALE: "no recent clock sample"}[bit]
