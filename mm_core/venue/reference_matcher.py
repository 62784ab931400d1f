"""A deliberately naive matcher (one flat list, re-sorted on every match) with MatchingEngine's rules.

Owns nothing the venue uses at run time: it is the oracle that property tests compare the real
engine against, event for event, and the baseline of the matching benchmark. Written for
obviousness, not speed; must stay independent of matching.py's data structures.
"""
from __future__ import annotations

from mm_core.ticks import TickTable
from mm_core.venue import matching as m


class ReferenceMatcher:
    """Same commands and events as `MatchingEngine`; resting orders live in one Python list."""

    def __init__(self, listings, max_shares: int = m.DEFAULT_MAX_SHARES) -> None:
        self.ticks = {x.name: TickTable(x.half_penny) for x in listings}
        self.max_shares = max_shares
        self.resting: list[dict] = []        # each: dict(order fields, seq=time priority)
        self.used: set[tuple[str, str]] = set()
        self.refs = 0
        self.matches = 0
        self.seq = 0
        self.price_test: set[str] = set()    # symbols under Rule 201's short sale price test

    def start_price_test(self, symbol):
        self.price_test.add(symbol)

    def _short_at_or_below_bid(self, symbol, client_side, price) -> bool:
        """Rule 201(b): a short sale (T, not E) priced at or below the symbol's best bid is refused."""
        if client_side != "T" or symbol not in self.price_test:
            return False
        bids = [r["price"] for r in self.resting if r["symbol"] == symbol and r["side"] == "B"]
        return bool(bids) and price <= max(bids)

    def _invalid(self, symbol, side, shares, price) -> str:
        if symbol not in self.ticks:
            return m.REJECT_INVALID_STOCK
        if side not in ("B", "S", "T", "E"):
            return m.REJECT_OTHER
        if not 0 < shares <= self.max_shares:
            return m.REJECT_SHARES
        if not (0 < price <= m.MAX_PRICE and self.ticks[symbol].is_valid(price)):
            return m.REJECT_INVALID_PRICE
        return ""

    def _find(self, owner, token):
        for o in self.resting:
            if o["owner"] == owner and o["token"] == token:
                return o
        return None

    def _new_ref(self) -> int:
        self.refs += 1
        return self.refs

    def enter(self, owner, token, symbol, side, shares, price, tif=m.DAY, firm="", displayed=True):
        if (owner, token) in self.used:
            return [m.Ignored(owner, token, "duplicate token")]
        self.used.add((owner, token))
        why = self._invalid(symbol, side, shares, price) or (
            m.REJECT_INVALID_PRICE if self._short_at_or_below_bid(symbol, side, price) else "")
        if why:
            return [m.Rejected(owner, token, why)]
        o = dict(owner=owner, token=token, symbol=symbol, side="B" if side == "B" else "S",
                 client_side=side, left=shares, price=price, tif=tif, firm=firm,
                 ref=self._new_ref(), shown=displayed)
        out = [m.Accepted(owner, token, o["ref"], symbol, side, shares, price, tif, firm)]
        return out + self._run(o)

    def cancel(self, owner, token, new_shares=0):
        o = self._find(owner, token)
        if o is None:
            return [m.Ignored(owner, token, "cancel of unknown or dead token")]
        if new_shares < 0:
            return [m.Ignored(owner, token, "negative intended size")]
        if new_shares >= o["left"]:
            return []
        return self._cut(o, o["left"] - new_shares, m.CANCEL_USER)

    def replace(self, owner, token, new_token, shares, price, tif=m.DAY, displayed=None):
        o = self._find(owner, token)
        if o is None:
            return [m.Ignored(owner, token, "replace of unknown or dead token")]
        if (owner, new_token) in self.used:
            return [m.Ignored(owner, new_token, "duplicate replacement token")]
        # to zero shares, or invalid: the old token's Canceled answers, the new one stays free
        if shares == 0 or self._invalid(o["symbol"], o["side"], shares, price) or \
                self._short_at_or_below_bid(o["symbol"], o["client_side"], price):
            return self._cut(o, o["left"], m.CANCEL_USER)
        self.used.add((owner, new_token))
        old_token, old_left, was_shown = o["token"], o["left"], o["shown"]
        shown = was_shown if displayed is None else displayed
        o["token"], o["tif"] = new_token, tif
        if price == o["price"] and shares <= old_left and shown == was_shown and tif != m.IOC:
            o["left"] = shares
            out = [m.Replaced(owner, new_token, old_token, o["ref"], o["symbol"], o["client_side"],
                              shares, price, tif, o["firm"])]
            if old_left > shares and shown:
                out.append(m.BookCancel(o["ref"], o["symbol"], old_left - shares, False))
            return out
        self.resting.remove(o)
        out = [m.BookCancel(o["ref"], o["symbol"], old_left, True)] if was_shown else []
        o.update(ref=self._new_ref(), price=price, left=shares, shown=shown)
        out.append(m.Replaced(owner, new_token, old_token, o["ref"], o["symbol"], o["client_side"],
                              shares, price, tif, o["firm"]))
        return out + self._run(o)

    def modify(self, owner, token, side, shares):
        o = self._find(owner, token)
        if o is None:
            return [m.Ignored(owner, token, "modify of unknown or dead token")]
        sells = ("S", "T", "E")
        if side != o["client_side"] and not (side in sells and o["client_side"] in sells):
            return [m.Ignored(owner, token, f"modify may not change side {o['client_side']} -> {side}")]
        if shares == 0:
            return self._cut(o, o["left"], m.CANCEL_USER)
        o["client_side"] = side
        cut = o["left"] - shares if shares < o["left"] else 0
        o["left"] -= cut
        out = [m.Modified(owner, token, o["ref"], o["symbol"], side, o["left"])]
        if cut and o["shown"]:
            out.append(m.BookCancel(o["ref"], o["symbol"], cut, False))
        return out

    def close(self):
        out = []
        for o in sorted(self.resting, key=lambda r: r["ref"]):
            out += self._cut(o, o["left"], m.CANCEL_TIMEOUT)
        return out

    def _cut(self, o, shares, reason):
        gone = shares >= o["left"]
        o["left"] -= shares
        if gone:
            self.resting.remove(o)
        out = [m.Canceled(o["owner"], o["token"], o["ref"], o["symbol"], shares, reason)]
        if o["shown"]:
            out.append(m.BookCancel(o["ref"], o["symbol"], shares, gone))
        return out

    def _run(self, o):
        out = []
        while o["left"]:
            contra = [r for r in self.resting if r["symbol"] == o["symbol"] and r["side"] != o["side"]
                      and (r["price"] <= o["price"] if o["side"] == "B" else r["price"] >= o["price"])]
            if not contra:
                break
            # Best price first (lowest ask for a buyer, highest bid for a seller), then displayed
            # before non-displayed, then oldest.
            contra.sort(key=lambda r: (r["price"] if o["side"] == "B" else -r["price"],
                                       not r["shown"], r["seq"]))
            r = contra[0]
            if o["firm"] and r["firm"] == o["firm"]:
                out += self._cut(r, r["left"], m.CANCEL_SELF_MATCH)
                continue
            qty = min(o["left"], r["left"])
            self.matches += 1
            out.append(m.Executed(r["owner"], r["token"], r["ref"], r["symbol"], r["side"], qty,
                                  r["price"], self.matches, m.LIQUIDITY_ADDED, r["shown"]))
            out.append(m.Executed(o["owner"], o["token"], o["ref"], o["symbol"], o["side"], qty,
                                  r["price"], self.matches, m.LIQUIDITY_REMOVED))
            o["left"] -= qty
            r["left"] -= qty
            if not r["left"]:
                self.resting.remove(r)
        if o["left"] and o["tif"] == m.IOC:
            out.append(m.Canceled(o["owner"], o["token"], o["ref"], o["symbol"], o["left"],
                                  m.CANCEL_IOC))
        elif o["left"]:
            self.seq += 1
            o["seq"] = self.seq
            self.resting.append(o)
            if o["shown"]:
                out.append(m.BookAdd(o["ref"], o["symbol"], o["side"], o["left"], o["price"]))
        return out
