"""Price-display-time priority matching engine of the embedded venue: commands in, events out.

Owns the order books, order references, match numbers, per-owner tokens and positions. Pure and
deterministic: it never reads clocks, sockets or files and has no randomness, so the same command
stream always yields the same events. Must not know about OUCH/ITCH bytes or sessions' transport;
the server turns events into wire messages.

Policies (the venue's rulebook):
- Prices are price4 integers on the symbol's tick table (mm_core.ticks); shares 1..max_shares.
- TIF 0 is immediate-or-cancel; any other TIF is a day order (no timed expiry).
- Cancel (OUCH 'X') carries the new intended size; a size >= the open size is a no-op.
- Replace keeps time priority only for a pure size reduction at the same price; a price change,
  a size increase or an IOC replacement re-enters the order behind the queue (and it may then
  trade; an IOC's remainder is canceled). Replace to zero shares cancels the order. A replace
  whose new shares or price are invalid cancels the live original and leaves the replacement
  token unused (OUCH 5.0's Replace Order rule: no answer names it).
- Modify (OUCH 'M') never changes priority: it may lower the open size (a larger size is ignored,
  zero cancels) and switch a sell between sell, short and short-exempt; a buy stays a buy and a
  sell stays a sell (such a request is ignored, as NASDAQ does).
- Non-displayed orders (OUCH display 'N') never show: no BookAdd or BookCancel, and their
  executions as the resting side are marked `displayed=False` (ITCH prints them as
  non-displayable trades, 'P'). At one price every displayed order executes before any
  non-displayed one, then time priority within each (NASDAQ Equity 4, Rule 4757(a)(1), Book
  Processing: displayed, then non-displayed interest at a price level). A replace that changes
  the display re-enters the order.
- Reg SHO Rule 201: while a symbol is under the short sale price test, a short sale (T) priced at
  or below the best bid is refused (an Enter rejected with reason X, a Replace canceling its
  original as any invalid replace does), not re-priced; short exempt (E) and long sales pass.
- Self-match prevention (same non-blank firm on both sides): the RESTING order is canceled with
  reason 'Q' and the incoming order continues to match deeper ("cancel oldest").
- Tokens are unique per owner for the whole session (OUCH 4.2: day-unique). A token is used once
  the venue has answered with it (Accepted, Replaced or Rejected, a rejected one included), and
  only then: a restarted venue rebuilds the used tokens from those answers in its session logs,
  so both must agree (a replace to zero shares, or an invalid one, answers with the old token's
  Canceled and leaves the replacement token free). A used token, or a cancel/replace of an unknown or dead token, is
  ignored (as NASDAQ does) and reported as an `Ignored` event.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable

from mm_core.ticks import TickTable

BUY = "B"
SELL = "S"
SELL_SIDES = frozenset("STE")     # OUCH sell, sell short, sell short exempt
IOC = 0                           # OUCH TIF: immediate or cancel
DAY = 99999                       # OUCH TIF: system hours
MAX_PRICE = 1_999_999_900        # largest OUCH price4 that is not a special value ($199,999.99)
DEFAULT_MAX_SHARES = 1_000_000

# OUCH 4.2 cancel reasons used here.
CANCEL_USER = "U"
CANCEL_IOC = "I"
CANCEL_SELF_MATCH = "Q"
CANCEL_TIMEOUT = "T"        # the order's time in force is over (a day order at end of session)
CANCEL_SYSTEM = "Z"         # canceled by the venue itself (orders a restarted venue lost)
# OUCH 4.2 reject reasons used here.
REJECT_INVALID_STOCK = "S"
REJECT_INVALID_PRICE = "X"
REJECT_SHARES = "Z"
REJECT_FIRM = "L"
REJECT_CLOSED = "C"
REJECT_OTHER = "O"
LIQUIDITY_ADDED = "A"
LIQUIDITY_REMOVED = "R"


@dataclass(frozen=True, slots=True)
class Listing:
    """One tradable symbol as the matching engine sees it."""

    name: str          # up to 8 characters (ITCH/OUCH stock field)
    locate: int        # ITCH stock locate code, 1..65535
    half_penny: bool = False


# ----------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Accepted:
    owner: str
    token: str
    ref: int
    symbol: str
    side: str           # as entered: B, S, T (sell short) or E (short exempt)
    shares: int
    price: int
    tif: int
    firm: str


@dataclass(frozen=True, slots=True)
class Replaced:
    owner: str
    token: str          # the replacement token
    prev_token: str
    ref: int            # new order reference (same as before when priority was kept)
    symbol: str
    side: str           # the client's side: as entered, or as last modified
    shares: int         # open shares after the replace
    price: int
    tif: int
    firm: str


@dataclass(frozen=True, slots=True)
class Modified:
    owner: str
    token: str
    ref: int
    symbol: str
    side: str           # the client's side after the modify: B, S, T or E
    shares: int         # open shares after the modify


@dataclass(frozen=True, slots=True)
class Executed:
    owner: str
    token: str
    ref: int
    symbol: str
    side: str
    shares: int
    price: int
    match: int
    liquidity: str      # 'A' resting order (maker), 'R' incoming order (taker)
    displayed: bool = True   # False: the order is non-displayed (not on the public book)


@dataclass(frozen=True, slots=True)
class Canceled:
    owner: str
    token: str
    ref: int
    symbol: str
    shares: int         # decrement
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    owner: str
    token: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    owner: str
    token: str
    why: str


@dataclass(frozen=True, slots=True)
class BookAdd:
    """Displayed order added to the public book (ITCH 'A')."""

    ref: int
    symbol: str
    side: str
    shares: int
    price: int


@dataclass(frozen=True, slots=True)
class BookCancel:
    """Displayed shares removed without a trade (ITCH 'X' partial, or 'D' when `delete`)."""

    ref: int
    symbol: str
    shares: int
    delete: bool


Event = Accepted | Replaced | Modified | Executed | Canceled | Rejected | Ignored | BookAdd | BookCancel


@dataclass(frozen=True, slots=True)
class OrderView:
    """A read-only snapshot of one live order, for drills and reconciliation."""

    owner: str
    token: str
    ref: int
    symbol: str
    side: str
    shares: int
    price: int
    firm: str


class _Order:
    __slots__ = ("ref", "owner", "token", "firm", "symbol", "side", "price", "remaining", "tif",
                 "client_side", "displayed")

    def __init__(self, ref, owner, token, firm, symbol, side, price, remaining, tif,
                 client_side="", displayed=True):
        self.ref = ref
        self.owner = owner
        self.token = token
        self.firm = firm
        self.symbol = symbol
        self.side = side
        self.price = price
        self.remaining = remaining
        self.tif = tif
        self.client_side = client_side or side     # OUCH side as entered (S, T and E all sell)
        self.displayed = displayed                 # on the public book (ITCH); False: display 'N'


class _Level:
    """One price level: displayed orders, then non-displayed ones, each a FIFO (insertion-ordered
    dict by reference). Matching takes `shown` before `hidden`."""

    __slots__ = ("shown", "hidden")

    def __init__(self) -> None:
        self.shown: dict[int, _Order] = {}
        self.hidden: dict[int, _Order] = {}

    def queue(self) -> tuple[_Order, ...]:
        """The level's orders in execution priority (a snapshot: matching mutates the level)."""
        if self.hidden:
            return (*self.shown.values(), *self.hidden.values())
        return tuple(self.shown.values())

    def shares(self) -> int:
        return (sum(o.remaining for o in self.shown.values())
                + sum(o.remaining for o in self.hidden.values()))


class _Side:
    """One side of one book: price -> level (displayed and non-displayed FIFOs), and sorted keys.

    Keys are +price for bids and -price for asks so that the best level is always keys[-1].
    """

    __slots__ = ("sign", "keys", "levels")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.levels: dict[int, _Level] = {}

    def add(self, order: _Order) -> None:
        key = order.price * self.sign
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = _Level()
            bisect.insort(self.keys, key)
        (level.shown if order.displayed else level.hidden)[order.ref] = order

    def remove(self, order: _Order) -> None:
        key = order.price * self.sign
        level = self.levels[key]
        del (level.shown if order.displayed else level.hidden)[order.ref]
        if not level.shown and not level.hidden:
            del self.levels[key]
            del self.keys[bisect.bisect_left(self.keys, key)]

    def best(self) -> int | None:
        return self.keys[-1] * self.sign if self.keys else None

    def depth(self) -> list[tuple[int, int]]:
        return [(key * self.sign, self.levels[key].shares()) for key in reversed(self.keys)]


class _Book:
    __slots__ = ("listing", "ticks", "bids", "asks")

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self.ticks = TickTable(listing.half_penny)
        self.bids = _Side(1)
        self.asks = _Side(-1)


class MatchingEngine:
    """All books of the venue. Each command returns the list of events it caused, in order."""

    def __init__(self, listings: Iterable[Listing], max_shares: int = DEFAULT_MAX_SHARES) -> None:
        self._books = {listing.name: _Book(listing) for listing in listings}
        self._max_shares = max_shares
        self._orders: dict[tuple[str, str], _Order] = {}       # live orders by (owner, token)
        self._used_tokens: set[tuple[str, str]] = set()
        self._positions: dict[str, dict[str, int]] = {}
        self._next_ref = 1
        self._next_match = 1
        self.open = True
        self._price_test: set[str] = set()      # symbols under the Rule 201 short sale price test

    def start_price_test(self, symbol: str) -> None:
        """Rule 201 is in force for `symbol` from now on (the server keeps when and why)."""
        self._price_test.add(symbol)

    def _below_price_test(self, book: _Book, client_side: str, price: int) -> bool:
        """Rule 201(b): a short sale (T; short exempt E is allowed) at or below the best bid of a
        symbol under the price test may not execute or display: refused, not re-priced."""
        if client_side != "T" or book.listing.name not in self._price_test:
            return False
        best_bid = book.bids.best()
        return best_bid is not None and price <= best_bid

    def resume(self, used_tokens: Iterable[tuple[str, str]], next_ref: int,
               next_match: int, positions: dict[str, dict[str, int]] | None = None) -> None:
        """Go on with a session an earlier engine started (a venue restart): its tokens stay
        used, references and match numbers continue past what it handed out, and the positions
        its executions built (owner -> symbol -> shares) are added to this engine's."""
        self._used_tokens.update(used_tokens)
        self._next_ref = max(self._next_ref, next_ref)
        self._next_match = max(self._next_match, next_match)
        for owner, held in (positions or {}).items():
            mine = self._positions.setdefault(owner, {})
            for symbol, shares in held.items():
                mine[symbol] = mine.get(symbol, 0) + shares

    # ------------------------------------------------------------------ commands
    def enter(self, owner: str, token: str, symbol: str, side: str, shares: int, price: int,
              tif: int = DAY, firm: str = "", displayed: bool = True) -> list[Event]:
        """Enter a new order (OUCH 'O'); `displayed` False: a non-displayed order."""
        if not self._claim(owner, token):
            return [Ignored(owner, token, "duplicate token")]
        book = self._books.get(symbol)
        reason = self._check(book, side, shares, price)
        if reason:
            return [Rejected(owner, token, reason)]
        if self._price_test and self._below_price_test(book, side, price):
            return [Rejected(owner, token, REJECT_INVALID_PRICE)]
        client_side, side = side, SELL if side in SELL_SIDES else BUY
        order = _Order(self._take_ref(), owner, token, firm, symbol, side, price, shares, tif,
                       client_side, displayed)
        events: list[Event] = [Accepted(owner, token, order.ref, symbol, client_side, shares,
                                        price, tif, firm)]
        self._match_and_rest(book, order, events)
        return events

    def reject(self, owner: str, token: str, reason: str) -> list[Event]:
        """Reject a new order's token that the server refused before matching (a firm that is
        not the user's, a field the codec refused): the token is used from now on, as for any
        Rejected, and a token already used is ignored (its Rejected would name another order)."""
        if not self._claim(owner, token):
            return [Ignored(owner, token, "duplicate token")]
        return [Rejected(owner, token, reason)]

    def cancel(self, owner: str, token: str, new_shares: int = 0) -> list[Event]:
        """Reduce an order to `new_shares` open shares (OUCH 'X'); 0 cancels it."""
        order = self._orders.get((owner, token))
        if order is None:
            return [Ignored(owner, token, "cancel of unknown or dead token")]
        if new_shares < 0:
            return [Ignored(owner, token, "negative intended size")]
        if new_shares >= order.remaining:
            return []
        decrement = order.remaining - new_shares
        events: list[Event] = []
        self._reduce(order, decrement, CANCEL_USER, events)
        return events

    def replace(self, owner: str, token: str, new_token: str, shares: int, price: int,
                tif: int = DAY, displayed: bool | None = None) -> list[Event]:
        """Replace an order (OUCH 'U'): new token, new open size and price, same side;
        `displayed` None keeps the order's display."""
        order = self._orders.get((owner, token))
        if order is None:
            return [Ignored(owner, token, "replace of unknown or dead token")]
        new_key = (owner, new_token)
        if new_key in self._used_tokens:
            return [Ignored(owner, new_token, "duplicate replacement token")]
        book = self._books[order.symbol]
        if shares == 0 or self._check(book, order.side, shares, price) or (
                self._price_test and self._below_price_test(book, order.client_side, price)):
            # to zero shares, or invalid (OUCH: an invalid replace of a live order cancels it):
            # answered by the old token's Canceled, so the new token stays free
            return self.refuse_replace(owner, token, new_token)
        self._used_tokens.add(new_key)
        del self._orders[(owner, token)]
        prev_token, order.token, order.tif = order.token, new_token, tif
        side = book.bids if order.side == BUY else book.asks
        displayed = order.displayed if displayed is None else displayed
        if price == order.price and shares <= order.remaining and displayed == order.displayed \
                and tif != IOC:
            # Pure size reduction: keeps its place in the queue. An IOC replacement may not rest:
            # it re-enters below, and what it does not trade is canceled (reason I).
            decrement = order.remaining - shares
            order.remaining = shares
            self._orders[new_key] = order
            events = [Replaced(owner, new_token, prev_token, order.ref, order.symbol,
                               order.client_side, shares, price, tif, order.firm)]
            if decrement and order.displayed:
                events.append(BookCancel(order.ref, order.symbol, decrement, False))
            return events
        side.remove(order)
        events = []
        if order.displayed:
            events.append(BookCancel(order.ref, order.symbol, order.remaining, True))
        order.ref, order.price, order.remaining = self._take_ref(), price, shares
        order.displayed = displayed
        events.append(Replaced(owner, new_token, prev_token, order.ref, order.symbol,
                               order.client_side, shares, price, tif, order.firm))
        self._match_and_rest(book, order, events)
        return events

    def refuse_replace(self, owner: str, token: str, new_token: str) -> list[Event]:
        """A replace whose details are invalid (a field the server's codec refused, or shares or
        price _check refuses): the live original is canceled and the replacement token is not
        consumed. A dead original or a used replacement token: ignored, as replace() does."""
        order = self._orders.get((owner, token))
        if order is None:
            return [Ignored(owner, token, "replace of unknown or dead token")]
        if (owner, new_token) in self._used_tokens:
            return [Ignored(owner, new_token, "duplicate replacement token")]
        events: list[Event] = []
        self._reduce(order, order.remaining, CANCEL_USER, events)
        return events

    def modify(self, owner: str, token: str, side: str, shares: int) -> list[Event]:
        """Modify an order in place (OUCH 'M'): lower its open size and/or change its sell type."""
        order = self._orders.get((owner, token))
        if order is None:
            return [Ignored(owner, token, "modify of unknown or dead token")]
        if side != order.client_side and not (side in SELL_SIDES and order.side == SELL):
            return [Ignored(owner, token, f"modify may not change side {order.client_side} -> {side}")]
        events: list[Event] = []
        if shares == 0:
            self._reduce(order, order.remaining, CANCEL_USER, events)
            return events
        order.client_side = side
        decrement = max(order.remaining - shares, 0)     # a larger size is ignored
        order.remaining -= decrement
        events.append(Modified(owner, token, order.ref, order.symbol, side, order.remaining))
        if decrement and order.displayed:
            events.append(BookCancel(order.ref, order.symbol, decrement, False))
        return events

    def close(self) -> list[Event]:
        """End of session: every live order expires (reason 'T', OUCH 4.2's timeout: its time
        in force is over) and new ones are refused."""
        self.open = False
        events: list[Event] = []
        for order in sorted(self._orders.values(), key=lambda o: o.ref):
            self._reduce(order, order.remaining, CANCEL_TIMEOUT, events)
        return events

    # ------------------------------------------------------------------ queries
    def listings(self) -> list[Listing]:
        return [book.listing for book in self._books.values()]

    def bbo(self, symbol: str) -> tuple[int | None, int | None]:
        """(best bid, best ask) price4, None for an empty side."""
        book = self._books[symbol]
        return book.bids.best(), book.asks.best()

    def depth(self, symbol: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Aggregated (price, shares) levels, best first: (bids, asks)."""
        book = self._books[symbol]
        return book.bids.depth(), book.asks.depth()

    def live_orders(self, owner: str | None = None) -> list[OrderView]:
        """Live orders (of one owner, or all), oldest reference first."""
        orders = sorted(self._orders.values(), key=lambda o: o.ref)
        return [OrderView(o.owner, o.token, o.ref, o.symbol, o.side, o.remaining, o.price, o.firm)
                for o in orders if owner is None or o.owner == owner]

    def next_numbers(self) -> tuple[int, int]:
        """(next order reference, next match number): every one below them is handed out."""
        return self._next_ref, self._next_match

    def position(self, owner: str) -> dict[str, int]:
        """Net executed shares per symbol (buys positive) of one owner."""
        return dict(self._positions.get(owner, {}))

    # ------------------------------------------------------------------ internals
    def _claim(self, owner: str, token: str) -> bool:
        """Use a token for a new order; False when it was used before."""
        key = (owner, token)
        if key in self._used_tokens:
            return False
        self._used_tokens.add(key)
        return True

    def _take_ref(self) -> int:
        ref = self._next_ref
        self._next_ref += 1
        return ref

    def _check(self, book: _Book | None, side: str, shares: int, price: int) -> str:
        if not self.open:
            return REJECT_CLOSED
        if book is None:
            return REJECT_INVALID_STOCK
        if side != BUY and side not in SELL_SIDES:
            return REJECT_OTHER
        if shares <= 0 or shares > self._max_shares:
            return REJECT_SHARES
        if price <= 0 or price > MAX_PRICE or not book.ticks.is_valid(price):
            return REJECT_INVALID_PRICE
        return ""

    def _reduce(self, order: _Order, decrement: int, reason: str, events: list[Event]) -> None:
        side = self._books[order.symbol]
        side = side.bids if order.side == BUY else side.asks
        events.append(Canceled(order.owner, order.token, order.ref, order.symbol, decrement, reason))
        gone = decrement >= order.remaining
        if order.displayed:
            events.append(BookCancel(order.ref, order.symbol, decrement, gone))
        if gone:
            side.remove(order)
            del self._orders[(order.owner, order.token)]
        else:
            order.remaining -= decrement

    def _match_and_rest(self, book: _Book, order: _Order, events: list[Event]) -> None:
        buying = order.side == BUY
        contra = book.asks if buying else book.bids
        limit = order.price
        while order.remaining and contra.keys:
            best_key = contra.keys[-1]
            best = best_key * contra.sign
            if (best > limit) if buying else (best < limit):
                break
            for resting in contra.levels[best_key].queue():
                if not order.remaining:
                    break
                if order.firm and resting.firm == order.firm:
                    self._reduce(resting, resting.remaining, CANCEL_SELF_MATCH, events)
                    continue
                self._trade(order, resting, best, events)
        if not order.remaining:
            return
        if order.tif == IOC:
            events.append(Canceled(order.owner, order.token, order.ref, order.symbol,
                                   order.remaining, CANCEL_IOC))
            return
        (book.bids if buying else book.asks).add(order)
        self._orders[(order.owner, order.token)] = order
        if order.displayed:
            events.append(BookAdd(order.ref, order.symbol, order.side, order.remaining,
                                  order.price))

    def _trade(self, taker: _Order, maker: _Order, price: int, events: list[Event]) -> None:
        shares = min(taker.remaining, maker.remaining)
        match = self._next_match
        self._next_match += 1
        events.append(Executed(maker.owner, maker.token, maker.ref, maker.symbol, maker.side,
                               shares, price, match, LIQUIDITY_ADDED, maker.displayed))
        events.append(Executed(taker.owner, taker.token, taker.ref, taker.symbol, taker.side,
                               shares, price, match, LIQUIDITY_REMOVED))
        taker.remaining -= shares
        maker.remaining -= shares
        if not maker.remaining:
            side = self._books[maker.symbol]
            (side.bids if maker.side == BUY else side.asks).remove(maker)
            del self._orders[(maker.owner, maker.token)]
        for owner, side in ((maker.owner, maker.side), (taker.owner, taker.side)):
            book = self._positions.setdefault(owner, {})
            book[maker.symbol] = book.get(maker.symbol, 0) + (shares if side == BUY else -shares)
