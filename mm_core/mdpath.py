"""The market-data path: one raw MoldUDP64 packet -> sequence check -> ITCH messages -> L2 books.

Owns the MoldUDP64 SequenceTracker, the compiled book (mm_core.fastbook) and the choice between
the C fast path (a whole packet of order-level messages in one call) and the Python reference
path (the codec's decode, the tracker, apply_messages) for everything else: gaps, duplicates,
heartbeats, rarer message types and malformed packets. Bad framing raises the codec's
ProtocolError; in a well-framed packet a message of unknown type is skipped (its sequence used)
and a malformed one stops the packet there, the rest a gap to re-request (MdUpdate.malformed).
Both paths return the same MdUpdate (tests/mm_core/test_fastbook.py). Knows nothing of fair
value, quotes or orders: the engine reads the update and decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mm_core.book import BookError, bad_order, duplicate_ref
from mm_core.fastbook import FastBook, ffi, lib
from mm_core.protocol import ProtocolError, UnknownMessageType, itch, moldudp64

__all__ = ["MarketDataPath", "MdUpdate", "apply_messages"]

_ADD, _ADD_MPID = itch.AddOrder, itch.AddOrderMpid
_EXEC, _EXEC_PX = itch.OrderExecuted, itch.OrderExecutedWithPrice
_CANCEL, _DELETE, _REPLACE = itch.OrderCancel, itch.OrderDelete, itch.OrderReplace
_TRADE, _TRADING_ACTION, _BROKEN = itch.Trade, itch.StockTradingAction, itch.BrokenTrade
_REG_SHO = itch.RegShoRestriction
_SYSTEM_EVENT = itch.SystemEvent
_START_OF_MESSAGES = "O"            # ITCH System Event 'O': the venue's day begins
# ITCH 5.0 'Y' Reg SHO Action: '0' no price test in force; '1' the Rule 201 short sale price test
# is in force after an intra-day drop, '2' it remains in force. Any other byte counts as in force.
_NO_PRICE_TEST = "0"
_EVENTS_CAP = 4096                  # > the most blocks a 65,535-byte packet can hold
_MAX_FAST_SEQUENCE = (1 << 63) - 1  # beyond it the tracker's ints no longer fit the C call
unpack = ffi.unpack
_apply_packet = lib.fmd_apply_packet


@dataclass(slots=True)
class MdUpdate:
    """What one packet's new messages did to the books.

    touched: symbols whose top `watch` levels changed or that printed, in first-touch order
    (changes deeper in the book cannot move fair value and are left out); printed: symbols with
    trade prints, first-print order; prints: (symbol, aggressor_buys, qty, match number) in
    message order; errors: BookError texts in message order; halts: (symbol, halted) from trading
    actions; breaks: match numbers of ITCH Broken Trade messages, in order; reg_sho: (symbol,
    restricted) from Reg SHO messages ('Y'), restricted when the Rule 201 price test is in force;
    day_starts: the timestamps (ns since the venue's midnight) of System Event 'O' (start of
    messages: the venue's trading day begins). The C path takes no System Event (they fall back).
    skipped: the messages of a type this codec does not know, each "sequence N: why" (they cannot
    touch a book; their sequences are used up); malformed: (sequence, why) of a known message
    that could not be read: the messages before it applied, it and the rest are missing again."""

    n_messages: int
    touched: list[int]
    printed: list[int]
    prints: list[tuple[int, bool, int]]
    errors: list[str]
    halts: list[tuple[int, bool]]
    breaks: list[int]
    reg_sho: list[tuple[int, bool]] = field(default_factory=list)
    day_starts: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    malformed: tuple[int, str] | None = None


def apply_messages(book, messages, known: list[bool]) -> MdUpdate:
    """The reference: apply decoded ITCH messages to `book` (Book or FastBook) in order. Adds and
    trades of symbols not `known` are skipped; touched is not yet filtered by the dirty flags."""
    n = len(known)
    touched: dict[int, bool] = {}
    printed: dict[int, bool] = {}
    prints: list[tuple[int, bool, int]] = []
    errors: list[str] = []
    halts: list[tuple[int, bool]] = []
    breaks: list[int] = []
    reg_sho: list[tuple[int, bool]] = []
    day_starts: list[int] = []
    for m in messages:
        t = type(m)
        try:
            if t is _ADD or t is _ADD_MPID:
                s = m.stock_locate
                if s < n and known[s]:
                    book.add(m.order_ref, s, m.side == "B", m.shares, m.price)
                    touched[s] = True
            elif t is _EXEC or t is _EXEC_PX:
                ex = book.execute(m.order_ref, m.executed_shares)
                if ex is not None:
                    s = ex.symbol_id
                    touched[s] = True
                    if t is _EXEC or m.printable == "Y":
                        prints.append((s, not ex.resting_is_buy, ex.qty, m.match_number))
                        printed[s] = True
            elif t is _CANCEL:
                s = book.cancel(m.order_ref, m.canceled_shares)
                if s >= 0:
                    touched[s] = True
            elif t is _DELETE:
                s = book.delete(m.order_ref)
                if s >= 0:
                    touched[s] = True
            elif t is _REPLACE:
                s = book.replace(m.original_order_ref, m.new_order_ref, m.shares, m.price)
                if s >= 0:
                    touched[s] = True
            elif t is _TRADE:
                s = m.stock_locate
                if s < n and known[s]:
                    # P's side is the resting order's
                    prints.append((s, m.side != "B", m.shares, m.match_number))
                    printed[s] = True
            elif t is _TRADING_ACTION:
                s = m.stock_locate
                if s < n and known[s]:
                    halts.append((s, m.trading_state != "T"))
                    touched[s] = True
            elif t is _BROKEN:
                breaks.append(m.match_number)
            elif t is _REG_SHO:
                s = m.stock_locate
                if s < n and known[s]:
                    reg_sho.append((s, m.reg_sho_action != _NO_PRICE_TEST))
            elif t is _SYSTEM_EVENT:
                if m.event_code == _START_OF_MESSAGES:
                    day_starts.append(m.timestamp)
        except BookError as exc:
            errors.append(str(exc))
            if exc.changed >= 0:        # a refused replace removed its original first
                touched[exc.changed] = True
    return MdUpdate(len(messages), list(touched), list(printed), prints, errors, halts, breaks, reg_sho,
                    day_starts)


def _error_text(e) -> str:
    """The BookError text Book raises for the same refused add."""
    if e.kind == lib.FMD_EV_DUPLICATE:
        return str(duplicate_ref(e.ref))
    return str(bad_order(e.ref, e.qty, e.price))


class MarketDataPath:
    """One MoldUDP64 session's books. `on_packet(raw)` -> MdUpdate, a moldudp64.Gap, or None
    when the packet brought nothing new; a malformed packet raises ProtocolError."""

    def __init__(self, n_symbols: int, known: list[bool], watch_levels: int = 3) -> None:
        self.book = FastBook(n_symbols, watch_levels)
        self.known = list(known)
        for s, k in enumerate(self.known):
            self.book.set_known(s, k)
        self.tracker = moldudp64.SequenceTracker()
        self._session_raw: bytes | None = None
        self.ended_sessions: frozenset[str] = frozenset()   # left for a newer one: never followed again
        # another session heard while following this one: (its name, the sequence its next packet
        # must start at to continue it), the candidate for a switch (foreign())
        self.candidate: tuple[str, int] | None = None
        self.fast_packets = 0               # packets applied by the C path (for benchmarks)
        self._bind()

    def __getstate__(self) -> dict:
        return {k: self.__dict__[k] for k in ("book", "known", "tracker", "_session_raw", "fast_packets",
                                               "ended_sessions", "candidate")}

    def __setstate__(self, state: dict) -> None:
        state.setdefault("ended_sessions", frozenset())
        state.setdefault("candidate", None)
        self.__dict__.update(state)
        self._bind()

    def _bind(self) -> None:
        """The C-side buffers of the packet call (rebuilt, not pickled)."""
        n_symbols = self.book.n_symbols
        self._b = self.book.handle
        out = self._out = ffi.new("fmd_summary *")
        self._keep = [out, ffi.new("uint32_t[]", n_symbols), ffi.new("uint32_t[]", n_symbols),
                      ffi.new("uint32_t[]", _EVENTS_CAP), ffi.new("uint8_t[]", _EVENTS_CAP),
                      ffi.new("int64_t[]", _EVENTS_CAP), ffi.new("uint64_t[]", _EVENTS_CAP),
                      ffi.new("fmd_error[]", _EVENTS_CAP)]
        (_, out.touched, out.printed, out.print_symbol, out.print_aggressor_buys, out.print_qty,
         out.print_match, out.errors) = self._keep
        out.events_cap = _EVENTS_CAP

    def new_session(self) -> None:
        """Leave the current session for good: empty books and a tracker that takes the next
        packet's session from its sequence 1 (in place: the engine holds the tracker)."""
        if self.tracker.session is not None:
            self.ended_sessions = self.ended_sessions | {self.tracker.session}
        self.book.clear()
        self.tracker.__init__()
        self._session_raw = None
        self.candidate = None

    def foreign(self, packet: bytes) -> bool:
        """A packet of another session than the one followed (the tracker raised SessionMismatch):
        note it as the candidate to follow next. True when it shows a consistent stream of that
        session: it starts it (sequence 1) or goes on exactly where the candidate's last packet
        ended; one stray or corrupted packet does neither. An end of session is never a start."""
        header = moldudp64.decode_header(packet)
        if header.is_end_of_session:
            self.candidate = None
            return False
        prior = self.candidate
        self.candidate = (header.session, header.sequence + (0 if header.is_heartbeat else header.count))
        return header.sequence == 1 or prior == (header.session, header.sequence)

    @property
    def summary(self):
        """The C path's fmd_summary of the last packet it applied (read by the signal kernel)."""
        return self._out

    @property
    def session_raw(self) -> bytes | None:
        return self._session_raw

    def fast_sequence(self) -> int | None:
        """The sequence the C packet call must be given for the next packet, or None when only
        the Python path can take it (no session seen yet, or a sequence beyond int64)."""
        expected = self.tracker.next_expected
        if self._session_raw is None or expected > _MAX_FAST_SEQUENCE:
            return None
        return expected

    def fast_applied(self, n_messages: int) -> None:
        """The C packet call applied a packet of n_messages at fast_sequence(): sequence on."""
        tracker = self.tracker
        self.fast_packets += 1
        tracker.next_expected = nxt = tracker.next_expected + n_messages
        if nxt > tracker.highest_announced:
            tracker.highest_announced = nxt

    def errors(self) -> list[str]:
        """The BookError texts of the last packet the C path applied."""
        out = self._out
        return [_error_text(out.errors[i]) for i in range(out.n_errors)] if out.n_errors else []

    def on_packet(self, packet: bytes, prints: bool = True) -> MdUpdate | moldudp64.Gap | None:
        """`prints=False`: an update from the C path carries prints=None, its prints left in
        `summary` for a consumer that reads them there (the slow path always lists them)."""
        expected = self.fast_sequence()
        if expected is None:
            return self._slow(packet)
        out = self._out
        rc = _apply_packet(self._b, packet, len(packet), self._session_raw, expected, out)
        if rc:
            if rc == lib.FMD_NOMEM:
                raise MemoryError("fastmd: out of memory applying a packet")
            return self._slow(packet)
        n = out.n_messages
        self.fast_applied(n)
        n_prints = out.n_prints
        if n_prints and not prints:
            prints, printed = None, unpack(self._keep[2], out.n_printed)
        elif n_prints:
            _, _, printed, symbols, aggressors, qtys, matches, _ = self._keep
            prints = [(s, a == 1, q, m) for s, a, q, m in zip(
                unpack(symbols, n_prints), unpack(aggressors, n_prints), unpack(qtys, n_prints),
                unpack(matches, n_prints))]
            printed = unpack(printed, out.n_printed)
        else:
            prints, printed = [], []
        return MdUpdate(n, unpack(self._keep[1], out.n_touched), printed, prints, self.errors(), [], [])

    def _slow(self, packet: bytes) -> MdUpdate | moldudp64.Gap | None:
        try:
            header, messages = itch.decode_mold_packet(packet)
        except ProtocolError:
            return self._message_by_message(packet)
        verdict = self._sequence(header, packet)
        if type(verdict) is not moldudp64.SequenceVerdict:
            return verdict
        fresh = verdict.select(messages) if verdict.duplicates or verdict.new != len(messages) else messages
        return self._apply(fresh)

    def _sequence(self, header: moldudp64.DownstreamHeader, packet: bytes):
        """The tracker's verdict on a packet with new messages to apply; else its Gap or None."""
        verdict = self.tracker.on_header(header)
        if self._session_raw is None and self.tracker.session is not None:
            self._session_raw = bytes(packet[:moldudp64.SESSION_WIDTH])
        if verdict.gap is not None:
            return verdict.gap
        return verdict if verdict.new else None

    def _apply(self, messages: list) -> MdUpdate:
        update = apply_messages(self.book, messages, self.known)
        update.touched = self._filter(update.touched, update.printed)
        return update

    def _message_by_message(self, packet: bytes) -> MdUpdate | moldudp64.Gap | None:
        """A packet the whole-packet decode refused. Bad framing raises (nothing in it can be
        sequenced); otherwise its new messages are decoded one by one: an unknown type is skipped
        (a venue's newer message cannot touch a book), a malformed known one ends the packet there
        and puts the tracker back to it, so it and the rest are a gap to re-request."""
        header = moldudp64.decode_header(packet)
        if header.is_heartbeat or header.is_end_of_session:
            moldudp64.expect_end(packet, moldudp64.HEADER_SIZE)
        spans = moldudp64.block_spans(packet, header.count)
        verdict = self._sequence(header, packet)
        if type(verdict) is not moldudp64.SequenceVerdict:
            return verdict
        first = verdict.first_sequence
        messages, skipped, malformed = [], [], None
        for i, (off, length) in enumerate(verdict.select(spans)):
            try:
                messages.append(itch.decode_at(packet, off, length))
            except UnknownMessageType as exc:
                skipped.append(f"sequence {first + i}: {exc}")
            except ProtocolError as exc:
                malformed = (first + i, str(exc))
                self.tracker.stop_at(first + i)
                break
        update = self._apply(messages)
        update.skipped, update.malformed = skipped, malformed
        return update

    def _filter(self, touched: list[int], printed: list[int]) -> list[int]:
        """Keep the symbols whose change reached the watched levels (clearing their flag) or
        that printed."""
        dirty = self.book.dirty
        kept = []
        for s in touched:
            if dirty[s] or s in printed:
                dirty[s] = 0
                kept.append(s)
        return kept
