"""The risk gateway's working orders and valuation: orders counted per side (replaces held
against their original until answered), marks to market, and option groups revalued (Greeks
and scenario P&L, in one C call per group) when the underlying moves or time passes. Part of
RiskGateway (mm_core.risk.gateway); sans-io like it.
"""
from __future__ import annotations

from mm_core.risk.checks import CheckId
from mm_core.risk.gateway_shared import REPRICE_MOVE, REPRICE_NS, _INF
from mm_core.risk.gateway_state import _Group, _Symbol
from mm_core.risk.greekbatch import GroupPricer
from mm_core.risk.greeks import scenario_grid, underlying_risk, unit_risk
from mm_core.risk.limits import PRICE4


def _add_scaled(scenario: list[float], q: int, pnl) -> list[float]:
    """scenario[i] + q * pnl[i] for each i of pnl (which must not be longer than scenario)."""
    if len(pnl) > len(scenario):
        raise IndexError("list index out of range")
    return [s + q * p for s, p in zip(scenario, pnl)]


class GatewayBook:
    """RiskGateway's working orders and valuation (a mixin of RiskGateway)."""

    __slots__ = ()          # RiskGateway lists its own slots

    def _symbol(self, symbol_id: int) -> _Symbol:
        sym = self._symbols.get(symbol_id)
        if sym is None:
            sym = self._symbols[symbol_id] = _Symbol(symbol_id, self._limits.for_symbol(symbol_id),
                                                     self._regsho.symbol(symbol_id))
        return sym

    def _add_working(self, token: str, sym: _Symbol, is_buy: bool, qty: int, price: int) -> None:
        if token in self._working:
            self._remove_working(token)
        self._working[token] = (sym, is_buy, qty, price)
        self._work(sym, is_buy, qty * price * sym.multiplier)
        if is_buy:
            sym.open_buy += qty
            sym.own_buys[token] = price
        else:
            sym.open_sell += qty
            sym.own_sells[token] = price

    def _remove_working(self, token: str) -> None:
        order = self._working.pop(token, None)
        if order is not None:
            sym = order[0]
            self._work(sym, order[1], -order[2] * order[3] * sym.multiplier)
            if order[1]:
                sym.open_buy -= order[2]
                sym.own_buys.pop(token, None)
            else:
                sym.open_sell -= order[2]
                sym.own_sells.pop(token, None)
                marks = sym.sho.marks
                if marks and token not in self._replaced_by:
                    marks.pop(token, None)

    def _recount(self, token: str, qty: int) -> None:
        """A working order's counted quantity becomes `qty` (price and own-price entry unchanged)."""
        sym, is_buy, old, price = self._working[token]
        self._working[token] = (sym, is_buy, qty, price)
        self._work(sym, is_buy, (qty - old) * price * sym.multiplier)
        if is_buy:
            sym.open_buy += qty - old
        else:
            sym.open_sell += qty - old

    def _hold_original(self, orig: str, token: str, held: tuple, qty: int, price: int,
                       rests: bool) -> None:
        """An allowed replace of a working order: until the venue answers, the original may fill
        and the replacement then rest in full (the venue sets its size whatever filled), so the
        two count together, and the original's price stays for self-trade prevention. The
        original is never a replacement in flight itself (check() and on_order_adopted see to it):
        a token is the replacement or the original of one pending replace, never both."""
        sym, is_buy, left, old_price = held
        counted = qty + left
        del self._working[orig]
        self._working[token] = (sym, is_buy, counted, price)
        self._work(sym, is_buy, (counted * price - left * old_price) * sym.multiplier)
        if is_buy:
            sym.open_buy += counted - left
            if rests:
                sym.own_buys[token] = price
        else:
            sym.open_sell += counted - left
            if rests:
                sym.own_sells[token] = price
        self._replacing[token] = [orig, left, old_price, qty, sym.symbol_id, is_buy]
        self._replaced_by[orig] = token

    def _fill_during_replace(self, token: str, qty: int) -> None:
        """A fill of an order whose replace is in flight: of the original, it shrinks what a refused
        replace restores; of the replacement, it shows the venue took the replace."""
        replacement = self._replaced_by.get(token)
        if replacement is not None:
            pending = self._replacing[replacement]
            pending[1] = left = max(pending[1] - qty, 0)
            self._recount(replacement, left + pending[3])
        elif token in self._replacing:
            self._end_replace(token, refused=False)

    def _end_replace(self, token: str, refused: bool) -> None:
        """A replace in flight ends. `token` is the replacement (confirmed, or refused: the original
        rests on with what is left of it) or the original (it left the book first: only the
        replacement can remain, until the venue refuses it as a replace of a dead order)."""
        replacement = token if token in self._replacing else self._replaced_by[token]
        orig, left, old_price, qty, symbol_id, is_buy = self._replacing.pop(replacement)
        del self._replaced_by[orig]
        sym = self._symbols[symbol_id]
        if token == replacement and refused:
            self._remove_working(replacement)
            if left > 0:
                self._add_working(orig, sym, is_buy, left, old_price)
                return
        elif replacement in self._working:
            self._recount(replacement, qty)
        (sym.own_buys if is_buy else sym.own_sells).pop(orig, None)
        if not is_buy:
            sym.sho.marks.pop(orig, None)

    def _work(self, sym: _Symbol, is_buy: bool, delta: int) -> None:
        """`delta` (price4 x shares x multiplier) more working notional on one side of a symbol,
        kept in the account's totals too."""
        buy, sell = sym.work_buy, sym.work_sell
        old = buy if buy > sell else sell          # no max(): this runs for every order sent
        if is_buy:
            sym.work_buy = buy = buy + delta
            self._work_buy += delta
        else:
            sym.work_sell = sell = sell + delta
            self._work_sell += delta
        self._work_gross += (buy if buy > sell else sell) - old

    def _recount_work(self) -> None:
        """Every working notional recounted from the working orders (a multiplier changed, or a
        gateway pickled before they were kept)."""
        self._work_buy = self._work_sell = self._work_gross = 0
        for sym in self._symbols.values():
            sym.work_buy = sym.work_sell = 0
        for sym, is_buy, qty, price in self._working.values():
            self._work(sym, is_buy, qty * price * sym.multiplier)

    def _mark(self, sym: _Symbol) -> None:
        """The symbol's notional at its fair value into gross and net, and the P&L peak moved."""
        old = sym.notional
        new = sym.position * sym.fair * sym.multiplier
        if new != old:                  # else nothing moves but the peak check
            sym.notional = new
            self._gross += abs(new) - abs(old)
            self._net += new - old
        pnl = self._cash + self._net
        if pnl > self._pnl_peak:
            self._pnl_peak = pnl

    def _revalue(self, sym: _Symbol, now_ns: int, *, positions_changed: bool = False,
                 force_reprice: bool = False) -> None:
        """Marks a symbol to fair value, moves the P&L peak and keeps its group's Greeks current:
        options are revalued when the underlying moved REPRICE_MOVE or REPRICE_NS passed (full
        revaluation costs tens of microseconds per option), re-aggregated when positions change."""
        self._mark(sym)
        self._reprice_group(sym, now_ns, positions_changed, force_reprice)

    def _reprice_group(self, sym: _Symbol, now_ns: int, positions_changed: bool = False,
                       force_reprice: bool = False) -> None:
        """_revalue's part for a symbol in an option group (nothing for any other)."""
        group = self._groups.get(sym.underlying_id)
        if group is None:
            return
        if force_reprice or (sym.symbol_id == group.underlying_id and (
                now_ns - group.priced_ns >= REPRICE_NS or
                abs(sym.fair - group.priced_fair) >= group.priced_fair * REPRICE_MOVE)):
            self._refresh_group(group, now_ns)
        elif positions_changed:
            self._refresh_group(group, None)

    def _refresh_group(self, group: _Group, reprice_at: int | None) -> None:
        """Re-aggregates a group; `reprice_at` (now_ns) also revalues every option in it: one C call
        (greekbatch), the grid and packed options kept while the options and limits stay."""
        symbols = self._symbols
        under = symbols[group.underlying_id]
        spot = under.fair / PRICE4
        if reprice_at is not None or not group.grid:
            if not under.fair:
                for symbol_id in group.members:
                    member = symbols[symbol_id]
                    member.risk = member.group = None
            else:
                options = [symbols[s].option for s in group.members[1:]]
                pricer = group.pricer
                if pricer is None or not group.grid or pricer.options != options:
                    lim = self._limits
                    vol_ref = max([o.vol for o in options]) if options else lim.scenario_default_vol
                    group.grid = scenario_grid(lim.scenario_spot_sigmas, vol_ref,
                                               lim.scenario_horizon_days, lim.scenario_vol_shift)
                    pricer = group.pricer = GroupPricer(options, group.grid)
                at = reprice_at if reprice_at is not None else under.md_ns
                group.priced_fair = under.fair
                group.priced_ns = at
                rows = pricer.revalue(spot, at)
                if rows is None:      # the reference: values the rest, or finds them unpriceable
                    self._revalue_reference(group, under, spot, at)
                else:
                    for symbol_id, (risk, lo, hi) in zip(group.members, rows):
                        member = symbols[symbol_id]
                        member.risk = risk
                        member.group = group
                        member.pnl_lo = lo
                        member.pnl_hi = hi
        delta = gamma = vega = 0.0
        scenario = [0.0] * len(group.grid)
        members = [symbols[symbol_id] for symbol_id in group.members]
        for member in members:
            risk = member.risk
            q = member.position
            if risk is None or not q:
                continue
            delta += q * risk.delta
            gamma += q * risk.gamma
            vega += q * risk.vega
            # the same additions, in the same order, as scenario[i] += q * pnl for each i
            scenario[:len(risk.scenario_pnl)] = _add_scaled(scenario, q, risk.scenario_pnl)
        group.delta, group.gamma, group.vega, group.scenario = delta, gamma, vega, scenario
        worst = group.worst = min(scenario) if scenario else 0.0
        lim = self._limits
        # |after - before| <= |qty| x |unit| for each Greek, and the scenario bound moves by at
        # most |qty| x max(|pnl_lo|, |pnl_hi|): so below this many shares nothing can bind.
        # each bound's room is (cap - |level|) / |unit| shares (inf for a zero unit; negative when
        # already past the cap), written inline: this runs for every member at every revaluation
        room_d, room_g, room_v = lim.max_delta - abs(delta), lim.max_gamma - abs(gamma), lim.max_vega - abs(vega)
        floor = worst - self._loss_floor               # the scenario bound's cap - |level|, level 0
        for member in members:
            risk = member.risk
            if risk is None:
                continue
            d, g, v = abs(risk.delta), abs(risk.gamma), abs(risk.vega)
            u = max(abs(member.pnl_lo), abs(member.pnl_hi))
            member.headroom = (1.0 - 1e-9) * min(
                room_d / d if d else _INF, room_g / g if g else _INF, room_v / v if v else _INF,
                floor / u if u else _INF)

    def _revalue_reference(self, group: _Group, under: _Symbol, spot: float, at: int) -> None:
        """_refresh_group's revaluation in Python (greeks.unit_risk, which the C equals), for what
        the C does not mirror: an exception, or integers past int64_t or 2^53. One that raises
        leaves the whole group without a valuation (its orders denied: option-params-missing) and
        latches internal-error with the reason, rather than raising out of the feed that asked."""
        members = [self._symbols[symbol_id] for symbol_id in group.members]
        try:
            risks = [underlying_risk(spot, group.grid)]
            risks += [unit_risk(member.option, spot, at, group.grid) for member in members[1:]]
        except Exception as exc:        # fail closed on any defect, as check() does
            risks = [None] * len(members)
            self._latch(CheckId.INTERNAL_ERROR, f"revaluing {group.underlying_id}: "
                        f"{type(exc).__name__}: {exc}"[:48], at, "risk-gateway")
        for member, risk in zip(members, risks):
            member.risk = risk
            member.group = group
            if risk is None:
                member.headroom = -1.0          # every order on it takes _check_greeks, which denies
            else:
                member.pnl_lo = min(risk.scenario_pnl)
                member.pnl_hi = max(risk.scenario_pnl)
