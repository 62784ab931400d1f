"""The risk gateway's Reg SHO state and rules: sale marking (check 39), the locate a short sale
needs (40, and the bona fide market-making exception, 42), the Rule 201 price test (41).

Owns the short-sale state — per symbol the price test in force (ITCH 'Y'), the marking of each
working sell not marked long and the shares sold short by fills (their locates used for the day),
and the trading day those locates belong to — and the decision on a sell the gateway's own checks
passed. Sans-io like the gateway that calls it; knows nothing of OUCH, the journal or the trading
state. The gateway owns the working orders and replaces in flight and hands them over read-only.
"""
from __future__ import annotations

from mm_core.risk.checks import CheckId
from mm_core.types import OrderKind, Purpose

__all__ = ["RegSho", "ShortSales", "Verdict"]

_REPLACE = OrderKind.REPLACE
_QUOTE = Purpose.QUOTE

# what RegSho.check answers when a rule speaks: (allowed, check, value, limit, detail); the gateway
# turns it into its RiskDecision (None: plainly allowed)
Verdict = tuple[bool, CheckId, int, int, str]


class ShortSales:
    """One symbol's Reg SHO state; plain slots, as the gateway's order path reads and writes them:
    `ssr` the Rule 201 price test in force; `marks` token -> T/E ("" unknown) of each working sell
    not marked long, an original whose replace is in flight included (a working sell not in it is
    marked S); `short_filled` the shares sold short by fills, whose locates are used for the day."""

    __slots__ = ("ssr", "marks", "short_filled")

    def __init__(self, ssr: bool = False, marks: dict | None = None, short_filled: int = 0) -> None:
        self.ssr = ssr
        self.marks: dict[str, str] = {} if marks is None else marks
        self.short_filled = short_filled

    def __repr__(self) -> str:
        return f"ShortSales(ssr={self.ssr!r}, marks={self.marks!r}, short_filled={self.short_filled!r})"


class RegSho:
    """The Reg SHO state of every symbol the gateway knows, the trading day, and the rules.

    The gateway reads a symbol's ShortSales through its own symbol record (`sym.sho`, the object
    held here): the layouts it hands over are its own, `working` token -> (symbol record, is_buy,
    counted qty, price4) and `replacing` replacement token -> [original token, its qty left, its
    price4, the replacement's qty, symbol id, is_buy]."""

    __slots__ = ("symbols", "day")

    def __init__(self, symbols: dict[int, ShortSales] | None = None, day: int = 0) -> None:
        self.symbols: dict[int, ShortSales] = {} if symbols is None else symbols
        self.day = day        # days since 1970-01-01 whose locates short sales use; 0: none told yet

    def symbol(self, symbol_id: int) -> ShortSales:
        """The symbol's state, made empty the first time it is asked for."""
        sho = self.symbols.get(symbol_id)
        if sho is None:
            sho = self.symbols[symbol_id] = ShortSales()
        return sho

    # ------------------------------------------------------------------------- inputs
    def on_reg_sho(self, symbol_id: int, restricted) -> None:
        """ITCH Reg SHO ('Y'): the price test in force (True) or lifted (False); anything but
        False counts as in force (fail closed)."""
        self.symbol(symbol_id).ssr = restricted is not False

    def on_trading_day(self, day: int) -> None:
        """The venue started trading day `day` (an integer): a later day than the one held starts
        with no locates used; the first day told only names the day (what was used before it stays
        used: fail closed); the same or an earlier day changes nothing."""
        if self.day and day > self.day:
            for sho in self.symbols.values():
                sho.short_filled = 0
        if day > self.day:
            self.day = day

    @staticmethod
    def on_sell_fill(sho: ShortSales, token: str, qty: int) -> None:
        """A fill of our sell `token`: sold short (marked T/E or unknown) uses its locate."""
        if token in sho.marks:
            sho.short_filled += qty

    @staticmethod
    def hold_marking(sho: ShortSales, token: str, mark: str) -> None:
        """A working sell counted without check() (resynchronised, adopted) with the venue's side
        byte: held unless marked long ("" unknown: counted short, it holds a locate)."""
        if mark != "S":
            sho.marks[token] = mark

    def clear_markings(self) -> None:
        """Every working order is about to be counted afresh (the gateway's resynchronisation)."""
        for sho in self.symbols.values():
            sho.marks.clear()

    def locates_used(self, symbol_id: int) -> int:
        sho = self.symbols.get(symbol_id)
        return 0 if sho is None else sho.short_filled

    def state_items(self) -> list:
        """What replay must reproduce, for the gateway's state_items: every symbol with a price
        test in force, locates used or a short marking, sorted."""
        return sorted((symbol_id, s.ssr, s.short_filled, sorted(s.marks.items()))
                      for symbol_id, s in self.symbols.items() if s.ssr or s.short_filled or s.marks)

    # ------------------------------------------------------------------------- the rules
    def check(self, sym, intent, kind: OrderKind, mark: str, post: int, best_bid: int | None,
              limits, working: dict) -> Verdict | None:
        """Reg SHO for a sell on the gateway's symbol record `sym` (its symbol_id, option and sho)
        whose own checks passed; `post` the position if every working sell and this one fill.
        A replace keeps its original's marking (OUCH Replace has no side); a long sale (S) must be
        covered by the position net of every working sell, this one included, a replace in flight
        as both its original and its replacement; a short sale (T, or E: the gateway cannot verify
        an exemption) must pass the Rule 201 price test when in force, then needs a locate: easy
        to borrow, or located shares left after fills and working short sales, or for a quote on a
        symbol configured for it the bona fide market-making exception (an allowed verdict naming
        it, for the engine to journal). An option sale writes a contract: none of this applies
        beyond the replace's marking. None when allowed plainly."""
        sho = sym.sho
        if kind is _REPLACE and intent.orig_token in working:
            original = sho.marks.get(intent.orig_token, "S")
            if original and original != mark:
                return (False, CheckId.SALE_MARKING, 0, 0,
                        f"replace marked {mark}, its original {original}"[:48])
        if sym.option is not None:
            return None
        if mark == "S":
            # post counts a replace in flight as both its original and its replacement (this
            # one's too): the original may fill before the replace lands, which then rests in full
            if post < 0:
                return False, CheckId.SALE_MARKING, post, 0, "long sale not covered by position"
            return None
        price = intent.price
        if sho.ssr:
            if best_bid is None:
                return (False, CheckId.SHORT_SALE_PRICE_TEST, price, 0,
                        "Rule 201 in force: no national best bid given")
            if 0 < best_bid and price <= best_bid:
                return (False, CheckId.SHORT_SALE_PRICE_TEST, price, best_bid,
                        "Rule 201: short sale at or below the NBB")
        symbol_id = sym.symbol_id
        if symbol_id in limits.easy_to_borrow:
            return None
        located = limits.locates.get(symbol_id, 0)
        # shares that may still be sold short: each working order as the gateway counts it (one
        # replaced and not answered yet: what is left of the original and the whole replacement,
        # as the original may fill before the replace lands, which then rests in full), and a
        # replace being checked so too (its original's count, plus this order's qty)
        token = intent.token
        need = sho.short_filled + intent.qty
        for marked in sho.marks:
            if marked != token:
                order = working.get(marked)
                if order is not None:
                    need += order[2]
        if need <= located:
            return None
        if symbol_id in limits.bona_fide_mm and intent.purpose is _QUOTE:
            return (True, CheckId.LOCATE_EXCEPTION, need, located,
                    "no locate: bona fide market-making exception")
        return False, CheckId.LOCATE_REQUIRED, need, located, "short sale without a locate"

