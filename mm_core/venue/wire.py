"""Translation of matching-engine events into OUCH 4.2 and ITCH 5.0 messages (the codecs' bytes).

Owns which engine event becomes which message and the echo of a client's order fields (display,
capacity, ...) that the engine does not track. Pure: timestamps come in as arguments.
Must not know about sockets, sessions or files.
"""
from __future__ import annotations

from dataclasses import dataclass

from mm_core.protocol import itch, ouch
from mm_core.venue import matching as m


@dataclass(frozen=True, slots=True)
class Echo:
    """Order fields the venue echoes back but does not act on."""

    display: str = "Y"
    capacity: str = "P"
    intermarket_sweep: str = "N"
    minimum_quantity: int = 0
    cross_type: str = "N"


DEFAULT_ECHO = Echo()
PUBLIC_EVENTS = frozenset({m.BookAdd, m.BookCancel, m.Executed})   # may change the public book
BOOK_ONLY_EVENTS = frozenset({m.BookAdd, m.BookCancel})             # no OUCH counterpart


def ouch_message(ev: m.Event, ts_ns: int, echo: Echo, live: bool) -> bytes | None:
    """OUCH outbound bytes for an event addressed to the event's owner (None: not an OUCH event).
    `live` is the order state for Accepted/Replaced (False: accepted but already dead)."""
    if isinstance(ev, m.Executed):
        return ouch.encode(ouch.Executed(ts_ns, ev.token, ev.shares, ev.price, ev.liquidity,
                                         ev.match))
    if isinstance(ev, m.Canceled):
        return ouch.encode(ouch.Canceled(ts_ns, ev.token, ev.shares, ev.reason))
    if isinstance(ev, m.Accepted):
        return ouch.encode(ouch.Accepted(
            ts_ns, ev.token, ev.side, ev.shares, ev.symbol, ev.price, ev.tif, ev.firm,
            echo.display, ev.ref, echo.capacity, echo.intermarket_sweep, echo.minimum_quantity,
            echo.cross_type, "L" if live else "D", " "))
    if isinstance(ev, m.Replaced):
        return ouch.encode(ouch.Replaced(
            ts_ns, ev.token, ev.side, ev.shares, ev.symbol, ev.price, ev.tif, ev.firm,
            echo.display, ev.ref, echo.capacity, echo.intermarket_sweep, echo.minimum_quantity,
            echo.cross_type, "L" if live else "D", ev.prev_token, " "))
    if isinstance(ev, m.Modified):
        return ouch.encode(ouch.OrderModified(ts_ns, ev.token, ev.side, ev.shares))
    if isinstance(ev, m.Rejected):
        return ouch.encode(ouch.Rejected(ts_ns, ev.token, ev.reason))
    return None


def ouch_system_event(ts_ns: int, code: str) -> bytes:
    """OUCH System Event: 'S' start of day, 'E' end of day."""
    return ouch.encode(ouch.SystemEvent(ts_ns, code))


def itch_message(ev: m.Event, ts_ns: int, locate: int) -> bytes | None:
    """ITCH bytes for an event that changes the public book (None: not a public event)."""
    if isinstance(ev, m.BookAdd):
        return itch.encode(itch.AddOrder(locate, 0, ts_ns, ev.ref, ev.side, ev.shares, ev.symbol,
                                         ev.price))
    if isinstance(ev, m.Executed) and ev.liquidity == m.LIQUIDITY_ADDED:
        if not ev.displayed:
            # Trade (non-cross): the resting order never showed, so neither does its reference
            # (NASDAQ sends 0); the side is the resting order's
            return itch.encode(itch.Trade(locate, 0, ts_ns, 0, ev.side, ev.shares, ev.symbol,
                                          ev.price, ev.match))
        return itch.encode(itch.OrderExecuted(locate, 0, ts_ns, ev.ref, ev.shares, ev.match))
    if isinstance(ev, m.BookCancel):
        if ev.delete:
            return itch.encode(itch.OrderDelete(locate, 0, ts_ns, ev.ref))
        return itch.encode(itch.OrderCancel(locate, 0, ts_ns, ev.ref, ev.shares))
    return None


def itch_system_event(ts_ns: int, code: str) -> bytes:
    """ITCH System Event (O, S, Q, M, E, C)."""
    return itch.encode(itch.SystemEvent(0, 0, ts_ns, code))


def itch_listing(ts_ns: int, listing: m.Listing) -> list[bytes]:
    """Stock Directory and Trading Action ('T', trading) for one instrument at start of day."""
    directory = itch.StockDirectory(
        listing.locate, 0, ts_ns, listing.name, "Q", "N", 100, "N", "C", "Z", "P", "N", "N", "2",
        "N", 0, "N")
    action = itch.StockTradingAction(listing.locate, 0, ts_ns, listing.name, "T", " ", "")
    return [itch.encode(directory), itch.encode(action)]


def itch_reg_sho(ts_ns: int, listing: m.Listing, action: str) -> bytes:
    """ITCH Reg SHO Short Sale Price Test Restricted Indicator ('Y') for one symbol."""
    return itch.encode(itch.RegShoRestriction(listing.locate, 0, ts_ns, listing.name, action))


def open_orders(payloads: list[bytes]) -> dict[str, int]:
    """Orders a session's outbound OUCH stream leaves open: token -> open shares.

    What the venue told the client, replayed: Accepted (live) opens, Replaced moves the open
    shares to the new token, Modified sets them, Executed and Canceled reduce. Used to close out the orders of a
    session log whose venue stopped without an end of day (and by reconciliation drills)."""
    live: dict[str, int] = {}
    for payload in payloads:
        msg = ouch.decode_outbound(payload)
        if isinstance(msg, ouch.Accepted):
            if msg.order_state == "L":
                live[msg.token] = msg.shares
        elif isinstance(msg, ouch.Replaced):
            live.pop(msg.previous_token, None)
            if msg.order_state == "L":
                live[msg.token] = msg.shares
        elif isinstance(msg, ouch.OrderModified):
            if msg.token in live:
                live[msg.token] = msg.shares
        elif isinstance(msg, (ouch.Executed, ouch.Canceled)):
            left = live.get(msg.token, 0) - (msg.executed_shares if isinstance(msg, ouch.Executed)
                                             else msg.decrement_shares)
            if left > 0:
                live[msg.token] = left
            else:
                live.pop(msg.token, None)
    return live


def close_out(token: str, shares: int, ts_ns: int, reason: str = m.CANCEL_SYSTEM) -> bytes:
    """OUCH Canceled for an order a restarted venue no longer holds: reason 'Z' (system), or
    'T' (time in force over) when the restart finishes an end of day a crash interrupted."""
    return ouch.encode(ouch.Canceled(ts_ns, token, shares, reason))
