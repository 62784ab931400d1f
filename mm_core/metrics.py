"""Desk metrics: realized/unrealized P&L, spread captured, fill rates, markouts, adverse selection,
inventory turnover, and the cost of hedging.

Owns: FIFO lots per symbol (so realized P&L is exact in price4·shares integers), the queue of our
quote fills waiting for their markout horizons (hedge fills are not marked: they are counted
apart, as the cost of hedging), and the counters behind the METRICS snapshot.
Must not know about orders' wire form, risk or time sources: fills, mids and now_ns come in.
Mids are passed doubled (bid + ask) so every money figure stays an integer. A markout with no mid
to mark against (none at its horizon, or the book stale) is counted unmarked, never valued late.
One still pending when the session ends is, in the session-end summary, valued at the last mid
or counted unmarked at session end (read only: nothing moves, so a replay's summary is the same).
"""
from __future__ import annotations

from collections import deque
from itertools import compress

from journal.catalogue import Side

__all__ = ["Metrics", "MetricsError"]


_NEVER = 1 << 62      # no markout pending
# a markout due while its symbol has no mid waits this share of its horizon for one (the events
# that run on_time come at their own pace: a mid that shows within a tenth of the horizon is the
# market of that horizon to within a tenth of it); past that it is counted unmarked, as a mid a
# minute later would be a markout of another horizon under this one's name
_GRACE_DIV = 10


class MetricsError(ValueError):
    """A bad fill or horizon given to the metrics."""


class Metrics:
    # bumped by every change to the markout queues (on_fill, on_time): the compiled replay's C
    # copy of them (mm_core.sigmature.MarkoutQueues) is brought up to date when it moved
    changes = 0

    def __init__(self, n_symbols: int, horizons_ns: tuple[int, ...], adverse_horizon: int = 0,
                 markout_alpha: float = 0.2) -> None:
        if not horizons_ns or any(h <= 0 for h in horizons_ns) or list(horizons_ns) != sorted(horizons_ns):
            raise MetricsError("markout horizons must be positive and ascending")
        if not 0 <= adverse_horizon < len(horizons_ns):
            raise MetricsError("adverse_horizon must index a markout horizon")
        self.n = n_symbols
        self.horizons = tuple(horizons_ns)
        self.adverse_horizon = adverse_horizon
        self.lots = [deque() for _ in range(n_symbols)]   # [signed qty, price]
        self.realized = [0] * n_symbols                   # price4 · shares
        self.spread_x2 = [0] * n_symbols                  # 2 · spread captured, price4 · shares
        self._fill_counters()
        self.quotes_sent = [0, 0]                         # per side: bid, ask
        self.quoted_qty = [0, 0]                          # shares of those quotes (enters, replaces)
        self.fills = [0, 0]
        self.filled_qty = [0, 0]
        self.traded = [0] * n_symbols
        self.pending = [deque() for _ in horizons_ns]     # (fill_ns, symbol, sign, price, qty)
        # the earliest time a pending markout can mature (never later than the true one), so the
        # per-packet on_time call costs one compare while nothing is due
        self.next_due_ns = _NEVER
        self.blocked: list[int] = []     # symbols of due markouts waiting for a mid (on_time)
        self.markout_x2 = [0] * len(horizons_ns)          # 2 · Σ markout (price4 · shares)
        self.markout_n = [0] * len(horizons_ns)
        self.markout_qty = [0] * len(horizons_ns)
        self._no_unmarked()
        self.adverse = 0                                  # fills with negative markout
        # per symbol, EWMA of the markout per share (price4) at the adverse horizon: what the
        # spread widens by is this symbol's recent adverse move, in its own price units (a
        # desk-wide mean mixed a $50 stock's markouts into a $0.85 stock's ticks, for good)
        if not 0.0 < markout_alpha <= 1.0:
            raise MetricsError(f"markout alpha {markout_alpha} outside (0, 1]")
        self.markout_alpha = markout_alpha
        self.recent_markout = [0.0] * n_symbols
        self.adverse_by = [0] * n_symbols                 # per symbol: adverse fills, of
        self.marked_by = [0] * n_symbols                  # fills marked at the adverse horizon
        self.abs_pos_sum = 0                              # Σ |position| over samples (turnover)
        self.pos_samples = 0
        self._no_hedges()

    def _fill_counters(self) -> None:
        n = self.n
        # shares of quote fills whose spread was captured (a fill with no mid yet adds none):
        # per symbol, and per side (bid, ask) beside filled_qty
        self.spread_marked_qty = [0] * n
        self.spread_marked_side = [0, 0]
        # fills (and their shares) of orders whose cancel was on its way: the venue filled them
        # before our cancel landed (quote or hedge; per symbol)
        self.after_cancel_fills = [0] * n
        self.after_cancel_qty = [0] * n
        # shares filled while the book was stale (quote, hedge): no mid was used to value them
        self.stale_fill_qty = [0, 0]

    def _no_unmarked(self) -> None:
        h = len(self.horizons)
        self.markout_unmarked = [0] * h                   # per horizon: fills never marked, of
        self.markout_unmarked_stale = [0] * h             # them: due while the book was stale
        self.waiting = [0] * h                            # per horizon: the blocked ones (on_time)

    def _no_hedges(self) -> None:
        self.hedge_fills = 0                              # hedge IOC fills (not quote fills)
        self.hedge_qty = 0
        self.hedge_cost_x2 = 0                            # 2 · Σ paid against the mid, price4 · shares
        self.hedge_marked_qty = 0                         # hedge shares filled with a mid to mark
        self.adopted_fills = 0                            # fills of orders neither quote nor hedge
        self.adopted_qty = 0                              # (adopted by recovery): P&L, turnover only

    def __setstate__(self, state: dict) -> None:
        """A snapshot from before per-symbol markouts loads with none recorded yet."""
        self.__dict__.update(state)
        if "recent_markout" not in state:
            self.markout_alpha = 0.2
            self.recent_markout = [0.0] * self.n
            self.adverse_by = [0] * self.n
            self.marked_by = [0] * self.n
        if "hedge_fills" not in state:      # from before hedge fills were kept apart
            self._no_hedges()
        if "adopted_fills" not in state:    # from before adopted orders' fills were kept apart
            self.adopted_fills = self.adopted_qty = 0
        if "quoted_qty" not in state:       # from before quoted shares were counted
            self.quoted_qty = [0, 0]
        if "spread_marked_qty" not in state:    # from before marked and late fills were counted
            self._fill_counters()
        if "markout_unmarked" not in state:     # from before unmarked markouts were counted
            self._no_unmarked()
            self.stale_fill_qty = [0, 0]

    # --- inputs ------------------------------------------------------------------------

    def on_quote_sent(self, side: Side, qty: int) -> None:
        i = 0 if side == Side.BUY else 1
        self.quotes_sent[i] += 1
        self.quoted_qty[i] += qty

    def on_quote_unsent(self, side: Side, qty: int) -> None:
        """A quote on_quote_sent counted that the journal refused (write-ahead: never sent): out of
        the fill rate's denominator again."""
        i = 0 if side == Side.BUY else 1
        self.quotes_sent[i] -= 1
        self.quoted_qty[i] -= qty

    def on_fill(self, symbol_id: int, side: Side, qty: int, price: int, mid2: int, now_ns: int,
                stale: bool = False) -> None:
        """A fill of one of our quotes: P&L, spread captured, fill rates, and its markouts.
        `stale`: the book is stale, its mid is not the market's: no spread is counted for it."""
        sign = self._position_fill(symbol_id, side, qty, price)
        i = 0 if sign > 0 else 1
        self.fills[i] += 1
        self.filled_qty[i] += qty
        if stale:
            self.stale_fill_qty[0] += qty
        elif mid2 > 0:
            self.spread_x2[symbol_id] += sign * (mid2 - 2 * price) * qty
            self.spread_marked_qty[symbol_id] += qty
            self.spread_marked_side[i] += qty
        for q in self.pending:
            q.append((now_ns, symbol_id, sign, price, qty))
        self.changes += 1
        due = now_ns + self.horizons[0]
        if due < self.next_due_ns:
            self.next_due_ns = due

    def on_fill_after_cancel(self, symbol_id: int, qty: int) -> None:
        """A fill (quote or hedge, booked with on_fill or on_hedge_fill) of an order whose cancel
        was on its way: what pulling late cost, counted apart."""
        self.after_cancel_fills[symbol_id] += 1
        self.after_cancel_qty[symbol_id] += qty

    def on_hedge_fill(self, symbol_id: int, side: Side, qty: int, price: int, mid2: int,
                      stale: bool = False) -> None:
        """A fill of a hedge IOC: P&L and turnover, and the cost of hedging (what crossing the
        spread paid against the mid). Not a quote fill: no markout, spread captured or fill rate
        (a hedge that crosses would read as adverse selection of our quotes). `stale`: as on_fill."""
        sign = self._position_fill(symbol_id, side, qty, price)
        self.hedge_fills += 1
        self.hedge_qty += qty
        if stale:
            self.stale_fill_qty[1] += qty
        elif mid2 > 0:
            self.hedge_cost_x2 += sign * (2 * price - mid2) * qty
            self.hedge_marked_qty += qty

    def on_adopted_fill(self, symbol_id: int, side: Side, qty: int, price: int) -> None:
        """A fill of an order of ours that is neither a quote nor a hedge (one recovery adopted
        from the venue): P&L and turnover, counted apart; nothing our quoting is judged by."""
        self._position_fill(symbol_id, side, qty, price)
        self.adopted_fills += 1
        self.adopted_qty += qty

    def _position_fill(self, symbol_id: int, side: Side, qty: int, price: int) -> int:
        """What every fill moves (traded shares, FIFO lots); returns its sign (+1 a buy)."""
        if qty <= 0 or price <= 0:
            raise MetricsError(f"fill of {qty} at {price}")
        sign = 1 if side == Side.BUY else -1
        self.traded[symbol_id] += qty
        self._book_lots(symbol_id, sign * qty, price)
        return sign

    def _book_lots(self, symbol_id: int, signed: int, price: int) -> None:
        lots = self.lots[symbol_id]
        while signed and lots and (lots[0][0] > 0) != (signed > 0):
            lot = lots[0]
            match = min(abs(signed), abs(lot[0]))
            lot_sign = 1 if lot[0] > 0 else -1
            self.realized[symbol_id] += lot_sign * (price - lot[1]) * match
            lot[0] -= lot_sign * match
            signed += lot_sign * match
            if lot[0] == 0:
                lots.popleft()
        if signed:
            lots.append([signed, price])

    def on_time(self, now_ns: int, mids2: list[int], stale: bool = False,
                expire: bool = False) -> list[tuple[int, bool, int, float]]:
        """Mature the markouts due by now; returns (symbol, our side is bid, horizon index,
        markout per share in price4) for each, so the quote guard sees them. Each fill matures at
        its own horizon: one whose symbol has no mid waits (blocked) for one, at the front of its
        queue, without holding up the other symbols' fills behind it, until a tenth of its
        horizon past it (_GRACE_DIV); a mid that shows later does not mark it: it is counted
        unmarked. `stale`: the book is stale, no mid is used: every markout due is counted
        unmarked (book stale), none reaches the guard. `expire` (the timer's call): the waiting
        ones past their last chance are counted then, though nothing else is due.

        A waiting markout's last chance wakes nothing (the compiled packet path would stop there
        for Python): the first packet with its mid calls on_time (the blocked symbol has a mid),
        so one is marked if and only if its mid came in time, whenever it is counted."""
        if now_ns < self.next_due_ns:
            if not (expire and self.blocked):
                if stale:
                    return []
                for s in self.blocked:
                    if mids2[s] > 0:
                        break
                else:
                    return []
            elif not stale and not self._wait_ends(now_ns, mids2):
                # the timer's call with nothing due and every waiting one waiting on: the loop
                # below would put them all back as they are (no change: the compiled reaction's
                # copy of the queues stays current)
                return []
        self.changes += 1
        matured = []
        next_due = _NEVER
        blocked: list[int] = []
        waited = self.waiting
        for h, q in enumerate(self.pending):
            horizon = self.horizons[h]
            seen = waited[h]            # the first `seen` in q waited for a mid before
            waiting = None
            while q and q[0][0] + horizon <= now_ns:
                entry = q.popleft()
                fill_ns, symbol_id, sign, price, qty = entry
                m2 = 0 if stale else mids2[symbol_id]
                late = now_ns >= fill_ns + horizon + horizon // _GRACE_DIV
                if seen:
                    seen -= 1
                    if late:            # its mid, if any, came after its last chance
                        m2 = 0
                if m2 <= 0:
                    if stale or late:   # no mid it may use: unmarked, out of the sums
                        self.markout_unmarked[h] += 1
                        self.markout_unmarked_stale[h] += stale
                        continue
                    if waiting is None:
                        waiting = []
                    waiting.append(entry)
                    if symbol_id not in blocked:
                        blocked.append(symbol_id)
                    continue
                mark_x2 = sign * (m2 - 2 * price) * qty
                self.markout_x2[h] += mark_x2
                self.markout_n[h] += 1
                self.markout_qty[h] += qty
                per_share = mark_x2 / (2.0 * qty)
                if h == self.adverse_horizon:
                    self.marked_by[symbol_id] += 1
                    if mark_x2 < 0:
                        self.adverse += 1
                        self.adverse_by[symbol_id] += 1
                    self.recent_markout[symbol_id] += self.markout_alpha * (
                        per_share - self.recent_markout[symbol_id])
                matured.append((symbol_id, sign > 0, h, per_share))
            if q and q[0][0] + horizon < next_due:
                next_due = q[0][0] + horizon
            if waiting:                         # back at the front, in fill order
                q.extendleft(reversed(waiting))
            waited[h] = len(waiting) if waiting else 0
        self.next_due_ns = next_due
        self.blocked = blocked
        return matured

    def blocked_of_waiting(self) -> list[int]:
        """The symbols of the markouts waiting for a mid (the first `waiting[h]` of each queue), in
        the order on_time lists them in `blocked`: by horizon, then in fill order, each once."""
        blocked: list[int] = []
        for h, q in enumerate(self.pending):
            for i in range(self.waiting[h]):
                if q[i][1] not in blocked:
                    blocked.append(q[i][1])
        return blocked

    def _wait_ends(self, now_ns: int, mids2) -> bool:
        """Whether on_time at now_ns would end a waiting markout's wait: its mid is back or its
        last chance has passed (the book not stale)."""
        for h, q in enumerate(self.pending):
            horizon = self.horizons[h]
            last_chance = horizon + horizon // _GRACE_DIV
            for i in range(self.waiting[h]):
                fill_ns, symbol_id = q[i][0], q[i][1]
                if now_ns >= fill_ns + last_chance or mids2[symbol_id] > 0:
                    return True
        return False

    def sample_position(self, positions: list[int]) -> None:
        self.abs_pos_sum += sum(map(abs, positions))
        self.pos_samples += 1

    # --- outputs -----------------------------------------------------------------------

    def position(self, symbol_id: int) -> int:
        return sum(lot[0] for lot in self.lots[symbol_id])

    def unrealized_x2(self, symbol_id: int, mid2: int) -> int:
        """Twice the open lots' P&L at the mid (mid2 = bid + ask): exact, as a mid may be a half."""
        return sum(q * (mid2 - 2 * p) for q, p in self.lots[symbol_id])

    def adverse_rate(self, symbol_id: int | None = None) -> float:
        """Share of fills marked negative at the adverse horizon: the desk's, or one symbol's."""
        if symbol_id is not None:
            n = self.marked_by[symbol_id]
            return self.adverse_by[symbol_id] / n if n else 0.0
        n = self.markout_n[self.adverse_horizon]
        return self.adverse / n if n else 0.0

    def session_end(self, now_ns: int, mids2, stale: bool) -> dict:
        """What the markouts still pending at the session's end (now_ns) come to, per horizon: each
        valued at its symbol's last mid (`mids2` as summary takes them) when the rule that marks a
        due markout would use that mid (the book not stale, a mid there, not one that waited for
        a mid past its last chance), as its horizon did not run out in the session; else counted
        unmarked at session end (`book_stale`: of them, with the book stale). Read only."""
        doc = {}
        for h, q in enumerate(self.pending):
            horizon = self.horizons[h]
            last_chance = horizon + horizon // _GRACE_DIV
            seen = self.waiting[h]          # the first `seen` in q waited for a mid before
            n = qty_sum = x2 = unmarked = 0
            for i, (fill_ns, symbol_id, sign, price, qty) in enumerate(q):
                m2 = 0 if stale or (i < seen and now_ns >= fill_ns + last_chance) else mids2[symbol_id]
                if m2 > 0:
                    n += 1
                    qty_sum += qty
                    x2 += sign * (m2 - 2 * price) * qty
                else:
                    unmarked += 1
            doc[str(horizon)] = {"valued": n, "qty": qty_sum, "markout_x2": x2,
                                 "per_share": x2 / (2.0 * qty_sum) if qty_sum else None,
                                 "unmarked": unmarked, "book_stale": unmarked if stale else 0}
        return doc

    def summary(self, mids2, session_end: tuple[int, bool] | None = None) -> dict:
        """A JSON-ready snapshot (the journaled METRICS document) at the mids `mids2` (doubled,
        0: none; a list by symbol id, or a mapping of the traded symbols: only theirs are read).
        Money in price4 · shares integers; a name ending in _x2 holds twice the amount (figures
        against a mid, which may be a half price4: exact, never rounded). fill_rate per side:
        shares filled over shares quoted (each enter or replace counts its shares once), so at
        most 1; fills counts executions (a partial fill each), quotes_sent orders. Per horizon,
        the quote fills marked, unmarked and pending add up to the quote fills; `session_end`
        (now_ns, book stale): the session's last summary, which says what the pending ones come
        to (markout_session_end: valued at the last mid, or unmarked at session end)."""
        # only a traded symbol has lots (each lot is a fill), and P&L or spread captured
        per_symbol = {}
        unrealized_total = 0
        unpriced = {}           # open positions with no mid: left out of unrealized_x2
        for s in compress(range(self.n), self.traded):
            mid2 = mids2[s]
            unrealized_x2 = None
            position = self.position(s)
            if mid2 > 0:
                unrealized_x2 = self.unrealized_x2(s, mid2)
                unrealized_total += unrealized_x2
            elif position:
                unpriced[str(s)] = position
            per_symbol[str(s)] = {
                "position": position,
                "realized": self.realized[s],
                "unrealized_x2": unrealized_x2,
                "spread_captured_x2": self.spread_x2[s],
                "spread_marked_qty": self.spread_marked_qty[s],
                "traded": self.traded[s],
                "fills_after_cancel": self.after_cancel_fills[s],
            }
        mean_abs = self.abs_pos_sum / self.pos_samples if self.pos_samples else 0.0
        doc = {
            "realized": sum(self.realized),
            "unrealized_x2": unrealized_total,
            # symbol id -> position of the open positions unrealized_x2 leaves out (no mid): when
            # any, unrealized_x2 is partial
            "unpriced": unpriced,
            "spread_captured_x2": sum(self.spread_x2),
            # the quote fills' shares spread_captured_x2 counts (filled_qty less these had no mid)
            "spread_marked_qty": {"bid": self.spread_marked_side[0], "ask": self.spread_marked_side[1]},
            "fills_after_cancel": {"fills": sum(self.after_cancel_fills), "qty": sum(self.after_cancel_qty)},
            # shares filled while the book was stale: left out of spread captured and hedge cost
            "stale_fill_qty": {"quote": self.stale_fill_qty[0], "hedge": self.stale_fill_qty[1]},
            "fill_rate": {side: (self.filled_qty[i] / self.quoted_qty[i] if self.quoted_qty[i] else 0.0)
                          for i, side in enumerate(("bid", "ask"))},
            "fills": {"bid": self.fills[0], "ask": self.fills[1]},
            "quotes_sent": {"bid": self.quotes_sent[0], "ask": self.quotes_sent[1]},
            "filled_qty": {"bid": self.filled_qty[0], "ask": self.filled_qty[1]},
            "quoted_qty": {"bid": self.quoted_qty[0], "ask": self.quoted_qty[1]},
            "markout_per_share": {str(h): (self.markout_x2[i] / (2.0 * self.markout_qty[i])
                                           if self.markout_qty[i] else None)
                                  for i, h in enumerate(self.horizons)},
            # per horizon: fills with no mid to mark at it (none in time, or the book stale)
            "markout_unmarked": {str(h): {"fills": self.markout_unmarked[i],
                                          "book_stale": self.markout_unmarked_stale[i]}
                                 for i, h in enumerate(self.horizons)},
            # per horizon: the quote fills marked, and those whose horizon has not run out (or
            # that wait for a mid): with the unmarked, every quote fill
            "markout_marked": {str(h): self.markout_n[i] for i, h in enumerate(self.horizons)},
            "markout_pending": {str(h): len(self.pending[i]) for i, h in enumerate(self.horizons)},
            "adverse_selection_rate": self.adverse_rate(),
            # the horizon it is read at, and the quote fills marked there (its denominator)
            "adverse_horizon_ns": self.horizons[self.adverse_horizon],
            "adverse_marked": self.markout_n[self.adverse_horizon],
            "inventory_turnover": (sum(self.traded) / mean_abs) if mean_abs > 0 else None,
            "hedging": {"fills": self.hedge_fills, "qty": self.hedge_qty,
                        "cost_x2": self.hedge_cost_x2,
                        "cost_per_share": (self.hedge_cost_x2 / (2.0 * self.hedge_marked_qty)
                                           if self.hedge_marked_qty else None)},
            "adopted_fills": {"fills": self.adopted_fills, "qty": self.adopted_qty},
            "symbols": per_symbol,
        }
        if session_end is not None:
            doc["markout_session_end"] = self.session_end(session_end[0], mids2, session_end[1])
        return doc

    def state_items(self):
        return ([list(map(tuple, l)) for l in self.lots], self.realized, self.spread_x2,
                self.quotes_sent, self.fills, [list(q) for q in self.pending], self.markout_x2,
                self.markout_n, self.adverse, self.abs_pos_sum, self.recent_markout,
                self.adverse_by, self.marked_by, self.hedge_fills, self.hedge_qty,
                self.hedge_cost_x2, self.hedge_marked_qty, self.quoted_qty,
                # the fill rate, turnover and which symbols' mids the summary reads
                self.filled_qty, self.traded, self.markout_qty, self.pos_samples,
                self.spread_marked_qty, self.spread_marked_side, self.after_cancel_fills,
                self.after_cancel_qty, self.markout_unmarked, self.markout_unmarked_stale, self.waiting, self.stale_fill_qty,
                self.adopted_fills, self.adopted_qty)
