"""Order management: every order's lifecycle as a `{(state, trigger): next}` table and one FSM.

Owns: day-unique order tokens (session prefix + session tag + counter), the order records (leaves, fills,
venue reference, the cancel bytes pre-encoded when an order is accepted) and which order rests
for each (symbol, side, purpose). An impossible transition raises InvalidTransition("A -> B");
the engine halts trading and journals it. Must not know about sockets, clocks or the codecs
(the cancel encoder is passed in).
"""
from __future__ import annotations

import enum
import heapq
import string
from typing import Callable

from mm_core.types import OrderIntent, OrderKind, Purpose, Side

__all__ = ["OmsError", "InvalidTransition", "OrderState", "Trigger", "TRANSITIONS", "Order", "OrderFsm", "Oms",
           "TOKEN_LENGTH", "MIN_COUNTER_WIDTH", "base36", "check_token_room"]


class OmsError(ValueError):
    """Bad OMS input: unknown token, bad token prefix, duplicate token."""


class InvalidTransition(OmsError):
    """An order event that the order's state does not allow, e.g. a fill on a canceled order."""


class OrderState(enum.Enum):
    # identity hash in C: states are dict keys and set members on every quote decision
    __hash__ = object.__hash__

    PENDING_NEW = "pending-new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially-filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending-cancel"
    PENDING_REPLACE = "pending-replace"
    PENDING_MODIFY = "pending-modify"  # OUCH Modify (size down, same token) not answered yet
    CANCELED = "canceled"
    REPLACED = "replaced"
    REJECTED = "rejected"
    UNKNOWN = "outcome-unknown"   # no answer within the ack timeout: fail closed until resolved


class Trigger(enum.Enum):
    __hash__ = object.__hash__

    ACCEPT = "accept"
    REJECT = "reject"
    PARTIAL_FILL = "partial-fill"
    FILL = "fill"                  # the fill that leaves nothing
    REDUCE = "reduce"              # venue canceled part of the order (shares left)
    CANCEL_SENT = "cancel-sent"
    CANCELED = "canceled"          # venue canceled the rest
    CANCEL_REJECT = "cancel-reject"
    CANCEL_REJECT_PARTIAL = "cancel-reject-partial"      # ... of an order partly filled before
    CANCEL_REJECT_UNACCEPTED = "cancel-reject-unaccepted"  # ... of an order never accepted
    CANCEL_REJECT_REPLACING = "cancel-reject-replacing"    # ... of one whose replace is open too
    REPLACE_SENT = "replace-sent"
    REPLACED = "replaced"          # this (old) order was replaced by a new token
    REPLACE_REJECT = "replace-reject"               # the venue refused the replacement
    REPLACE_REJECT_PARTIAL = "replace-reject-partial"    # ... of an order partly filled before
    REPLACE_REJECT_CANCELLING = "replace-reject-cancelling"  # ... of one with a cancel in flight
    ACCEPT_CANCELLING = "accept-cancelling"  # a late Accepted of an order whose cancel is in flight
    MODIFY_SENT = "modify-sent"
    MODIFIED = "modified"                   # Order Modified: the size is down, nothing filled yet
    MODIFIED_PARTIAL = "modified-partial"   # Order Modified of an order partly filled before
    MODIFIED_CANCELLING = "modified-cancelling"  # ... of an outcome-unknown one with a cancel in flight
    TIMEOUT = "timeout"


S, T = OrderState, Trigger
TRANSITIONS: dict[tuple[OrderState, Trigger], OrderState] = {
    (S.PENDING_NEW, T.ACCEPT): S.ACCEPTED,
    (S.PENDING_NEW, T.REJECT): S.REJECTED,
    (S.PENDING_NEW, T.TIMEOUT): S.UNKNOWN,
    # a pull before the venue answered the enter (or replace): our cancel by token reaches the
    # venue after the order it names, so the answers cross it: accepted (or refused), then the
    # cancel lands. Only for an order never accepted (Oms checks: a second accept is impossible)
    (S.PENDING_NEW, T.CANCEL_SENT): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, T.ACCEPT): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, T.REJECT): S.REJECTED,
    # No fill of pending-new: OUCH 4.2 sends Accepted ahead of any Executed of an order on the
    # sequenced stream. The fills of pending-cancel and outcome-unknown below are those of an
    # accepted order; Oms.on_executed refuses them for one never accepted (the states are shared)
    (S.ACCEPTED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.ACCEPTED, T.FILL): S.FILLED,
    (S.ACCEPTED, T.REDUCE): S.ACCEPTED,
    (S.ACCEPTED, T.CANCELED): S.CANCELED,          # unsolicited: IOC remainder, venue cancel
    (S.ACCEPTED, T.CANCEL_SENT): S.PENDING_CANCEL,
    (S.ACCEPTED, T.REPLACE_SENT): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, T.REDUCE): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, T.CANCEL_SENT): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, T.REPLACE_SENT): S.PENDING_REPLACE,
    # a size-down in place (OUCH Modify keeps the token and the queue position); fills and
    # venue cancels may cross it, a pull may follow it, its answer may cross the pull
    (S.ACCEPTED, T.MODIFY_SENT): S.PENDING_MODIFY,
    (S.PARTIALLY_FILLED, T.MODIFY_SENT): S.PENDING_MODIFY,
    (S.PENDING_MODIFY, T.MODIFIED): S.ACCEPTED,
    (S.PENDING_MODIFY, T.MODIFIED_PARTIAL): S.PARTIALLY_FILLED,
    (S.PENDING_MODIFY, T.PARTIAL_FILL): S.PENDING_MODIFY,
    (S.PENDING_MODIFY, T.FILL): S.FILLED,
    (S.PENDING_MODIFY, T.REDUCE): S.PENDING_MODIFY,
    (S.PENDING_MODIFY, T.CANCELED): S.CANCELED,
    (S.PENDING_MODIFY, T.CANCEL_SENT): S.PENDING_CANCEL,
    (S.PENDING_MODIFY, T.TIMEOUT): S.UNKNOWN,
    (S.PENDING_CANCEL, T.MODIFIED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, T.MODIFIED_PARTIAL): S.PENDING_CANCEL,
    (S.UNKNOWN, T.MODIFIED): S.ACCEPTED,
    (S.UNKNOWN, T.MODIFIED_PARTIAL): S.PARTIALLY_FILLED,
    (S.UNKNOWN, T.MODIFIED_CANCELLING): S.PENDING_CANCEL,    # the cancel that followed lands next
    # fill-after-cancel: the venue filled the order before our cancel reached it
    (S.PENDING_CANCEL, T.PARTIAL_FILL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, T.FILL): S.FILLED,
    (S.PENDING_CANCEL, T.REDUCE): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, T.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, T.CANCEL_SENT): S.PENDING_CANCEL,   # a guard pull repeating a cancel
    (S.PENDING_CANCEL, T.CANCEL_REJECT): S.ACCEPTED,
    (S.PENDING_CANCEL, T.CANCEL_REJECT_PARTIAL): S.PARTIALLY_FILLED,
    # a cancel reject names an order the venue holds, yet its Accepted (sequenced ahead of the
    # reject on the same session) never reached us: neither accepted nor still unanswered can be
    # told from here, so the outcome is unknown (fail closed) until the venue's next word on it
    # (a late Accepted, a Rejected) or a reconciliation. Never ACCEPTED: nothing confirmed it.
    (S.PENDING_CANCEL, T.CANCEL_REJECT_UNACCEPTED): S.UNKNOWN,
    (S.UNKNOWN, T.CANCEL_REJECT_UNACCEPTED): S.UNKNOWN,     # ... after its cancel timed out
    # a cancel that timed out, then refused: the order stands as it was, unless a replace of it
    # is still unanswered too (then that replace's answer decides)
    (S.UNKNOWN, T.CANCEL_REJECT): S.ACCEPTED,
    (S.UNKNOWN, T.CANCEL_REJECT_PARTIAL): S.PARTIALLY_FILLED,
    (S.UNKNOWN, T.CANCEL_REJECT_REPLACING): S.UNKNOWN,
    (S.PENDING_CANCEL, T.TIMEOUT): S.UNKNOWN,
    # replace-before-cancel race: the venue replaced the order before our cancel of the old
    # token reached it (that cancel is then ignored); the replacement inherits the cancel
    (S.PENDING_CANCEL, T.REPLACED): S.REPLACED,
    (S.PENDING_REPLACE, T.REPLACED): S.REPLACED,
    # a refused replace leaves the original as it was: accepted, or partly filled (before the
    # replace was sent or while it was in flight)
    (S.PENDING_REPLACE, T.REPLACE_REJECT): S.ACCEPTED,
    (S.PENDING_REPLACE, T.REPLACE_REJECT_PARTIAL): S.PARTIALLY_FILLED,
    (S.PENDING_REPLACE, T.PARTIAL_FILL): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, T.FILL): S.FILLED,
    (S.PENDING_REPLACE, T.REDUCE): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, T.CANCELED): S.CANCELED,
    (S.PENDING_REPLACE, T.CANCEL_SENT): S.PENDING_CANCEL,
    (S.PENDING_REPLACE, T.TIMEOUT): S.UNKNOWN,
    # a replace that timed out, then refused: the refusal names the replacement token, so the
    # original stands at the venue as it was, accepted or partly filled; or, when a cancel of it
    # was sent after the replace, pending that cancel (Oms tells which: Order.cancel_sent)
    (S.UNKNOWN, T.REPLACE_REJECT): S.ACCEPTED,
    (S.UNKNOWN, T.REPLACE_REJECT_PARTIAL): S.PARTIALLY_FILLED,
    (S.UNKNOWN, T.REPLACE_REJECT_CANCELLING): S.PENDING_CANCEL,
    # outcome-unknown resolves with whatever the venue says next about what was pending; a partial
    # fill says nothing about it (a replace or cancel may still be in flight behind it)
    (S.UNKNOWN, T.ACCEPT): S.ACCEPTED,
    # ... unless a cancel of it followed (Oms tells: Order.cancel_sent): that cancel lands next,
    # as from pending-new (PENDING_CANCEL, ACCEPT)
    (S.UNKNOWN, T.ACCEPT_CANCELLING): S.PENDING_CANCEL,
    (S.UNKNOWN, T.REJECT): S.REJECTED,
    (S.UNKNOWN, T.PARTIAL_FILL): S.UNKNOWN,
    (S.UNKNOWN, T.FILL): S.FILLED,
    (S.UNKNOWN, T.REDUCE): S.UNKNOWN,
    (S.UNKNOWN, T.CANCELED): S.CANCELED,
    (S.UNKNOWN, T.REPLACED): S.REPLACED,
    (S.UNKNOWN, T.CANCEL_SENT): S.UNKNOWN,
    (S.UNKNOWN, T.TIMEOUT): S.UNKNOWN,
}
del S, T

TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REPLACED, OrderState.REJECTED})
PENDING = frozenset({OrderState.PENDING_NEW, OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE,
                     OrderState.PENDING_MODIFY})
LIVE = frozenset({OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED})
# states in which the venue may still answer the enter (or replace) itself, if never accepted
_UNANSWERED = frozenset({OrderState.PENDING_NEW, OrderState.PENDING_CANCEL})


class OrderFsm:
    """The one small state machine every order uses."""

    __slots__ = ("state",)

    def __init__(self, state: OrderState = OrderState.PENDING_NEW) -> None:
        self.state = state

    def fire(self, trigger: Trigger) -> OrderState:
        nxt = TRANSITIONS.get((self.state, trigger))
        if nxt is None:
            raise InvalidTransition(f"{self.state.value} -> {trigger.value}")
        self.state = nxt
        return nxt


class Order:
    """One order as the OMS knows it; derived fields change only after a transition succeeded."""

    __slots__ = ("token", "symbol_id", "side", "price", "qty", "leaves", "filled", "purpose", "tif",
                 "orig_token", "venue_ref", "cancel_packet", "fsm", "sent_ns", "last_ns",
                 "fills_after_cancel", "cancel_on_accept", "cancel_sent", "modify_sent", "mark")

    def __init__(self, intent: OrderIntent, now_ns: int) -> None:
        self.token = intent.token
        self.symbol_id = intent.symbol_id
        self.side = intent.side
        self.price = intent.price
        self.qty = intent.qty
        self.leaves = intent.qty
        self.filled = 0
        self.purpose = intent.purpose
        self.tif = intent.tif
        self.orig_token = intent.orig_token
        self.venue_ref = 0
        self.cancel_packet = b""
        self.fsm = OrderFsm()
        self.sent_ns = now_ns
        self.last_ns = now_ns
        self.fills_after_cancel = 0
        self.cancel_on_accept: Purpose | None = None   # a cancel of the order this one replaces
        self.cancel_sent = False     # a cancel of this order is on its way (not refused so far)
        self.modify_sent = False     # a modify of this order is on its way (not answered so far)
        # the OUCH side the venue holds: B, or a sell's Reg SHO marking, S (long) or T (short).
        # The engine sets a new order's; a replacement keeps its original's (OUCH Replace keeps
        # the side); one adopted without it counts as long until the venue says (checked, never trusted)
        self.mark = "B" if intent.side == Side.BUY else "S"

    def __setstate__(self, state) -> None:
        self.cancel_sent = False     # an order pickled before the fields existed
        for name, value in state[1].items():
            setattr(self, name, value)
        if "modify_sent" not in state[1]:
            self.modify_sent = self.fsm.state is OrderState.PENDING_MODIFY
        if "mark" not in state[1]:
            self.mark = "B" if self.side == Side.BUY else "S"

    @property
    def state(self) -> OrderState:
        return self.fsm.state

    @property
    def acked(self) -> bool:
        """The venue accepted this order (its cancel bytes are pre-encoded then)."""
        return bool(self.cancel_packet)

    def __repr__(self) -> str:
        return (f"Order({self.token} {self.side.name} {self.leaves}/{self.qty}@{self.price} "
                f"{self.state.value})")


def _accept(order: Order) -> Trigger:
    """The venue's accept (or replaced) of an order: one outcome-unknown with a cancel of it on
    its way stays pending that cancel, as one that never timed out does."""
    if order.fsm.state is OrderState.UNKNOWN and order.cancel_sent:
        return Trigger.ACCEPT_CANCELLING
    return Trigger.ACCEPT


_TOKEN_ALPHABET = string.digits + string.ascii_uppercase
TOKEN_LENGTH = 14                # OUCH 4.2 Order Token
MIN_COUNTER_WIDTH = 6            # 36**6 - 1 = 2,176,782,335 orders in one session at least


def base36(n: int, width: int) -> str:
    """`n` in base 36 (0-9A-Z), zero-padded to `width`; longer when it does not fit."""
    digits = []
    while n:
        n, r = divmod(n, 36)
        digits.append(_TOKEN_ALPHABET[r])
    return "".join(reversed(digits)).rjust(width, "0")


def _plain(text: str) -> bool:
    """ASCII letters or digits only: what an OUCH token may hold (str.isalnum takes any script)."""
    return text.isascii() and text.isalnum()


def check_token_room(prefix: str, tag: str, token_length: int = TOKEN_LENGTH) -> None:
    """OmsError unless `prefix` and `tag` are ASCII letters or digits and prefix + tag leave the
    counter at least MIN_COUNTER_WIDTH characters of the token."""
    if not _plain(prefix):
        raise OmsError(f"token prefix {prefix!r} must be ASCII letters or digits")
    if tag and not _plain(tag):
        raise OmsError(f"session tag {tag!r} must be ASCII letters or digits")
    room = token_length - len(prefix) - len(tag)
    if room < MIN_COUNTER_WIDTH:
        raise OmsError(f"token prefix {prefix!r} with session tag {tag!r} leaves {room} of the token's "
                       f"{token_length} characters to the order counter; {MIN_COUNTER_WIDTH} are needed "
                       f"(use a prefix of at most {token_length - len(tag) - MIN_COUNTER_WIDTH} characters)")


class Oms:
    """All orders of one session, keyed by token, and the resting order per (symbol, side, purpose).

    A token is the config's prefix, the session's tag (journaled in SESSION_START; start_session()
    sets it before the session's first order, and replay sets it from the record) and a base-36
    counter filling the token's 14 characters. Sessions of one day on one prefix have distinct tags,
    so their tokens are disjoint; a session without a tag (a journal from before tags) has none."""

    # (last transition time, token) of each transition into a terminal state, a min-heap: prune()
    # forgets orders in time order instead of scanning them all on every timer (an entry whose
    # order moved again since is passed over: that move pushed its own). None in an OMS pickled
    # before it existed: prune() builds it from the orders kept.
    _expiry: list[tuple[int, str]] | None = None
    tag: str = ""                 # the session's token tag ("" until start_session, or untagged)

    def __init__(self, session_prefix: str, encode_cancel: Callable[[str], bytes], *,
                 token_length: int = TOKEN_LENGTH) -> None:
        if not session_prefix or len(session_prefix) > 8 or not _plain(session_prefix):
            raise OmsError(f"token prefix {session_prefix!r} must be 1-8 ASCII letters or digits")
        self.prefix = session_prefix.upper()
        self.head = self.prefix          # prefix + tag: what every token of this session starts with
        self.token_length = token_length
        self.width = token_length - len(self.prefix)
        self.counter = 0
        self.encode_cancel = encode_cancel
        self.orders: dict[str, Order] = {}
        # newest non-terminal order per (symbol, side, purpose); plain-int keys hash fast
        self.working: dict[tuple[int, int, str], str] = {}
        # the non-terminal orders, in the same order as `orders` (terminal states are absorbing, so
        # an order leaves once and never comes back): counts and sweeps cost O(open), not O(day)
        self.live: dict[str, Order] = {}
        self.abandoned: list[str] = []    # replacements rejected with their original (drained by the engine)
        self.transitions = 0

    # --- tokens -------------------------------------------------------------------------

    def start_session(self, tag: str) -> None:
        """Put the session's tag (from its SESSION_START) into every token from now on. Only
        before the session's first token: a tag changed mid-session could repeat a token."""
        tag = tag.upper()
        if tag == self.tag:
            return
        if self.counter:
            raise OmsError(f"session tag {tag!r} after {self.counter} tokens of tag {self.tag!r}")
        check_token_room(self.prefix, tag, self.token_length)
        self.tag, self.head = tag, self.prefix + tag
        self.width = self.token_length - len(self.head)

    def new_token(self) -> str:
        self.counter += 1
        body = base36(self.counter, self.width)
        if len(body) > self.width:
            raise OmsError(f"order token counter exhausted for this session ({self.head})")
        return self.head + body

    def counter_of(self, token: str) -> int | None:
        """The counter inside one of this session's tokens (prefix + tag + base 36), None for
        any other token (another session's, the venue's, garbage)."""
        token = token.strip().upper()
        body = token[len(self.head):]
        if (not token.startswith(self.head) or not _plain(body)
                or len(token) > self.token_length):
            return None
        return int(body, 36)

    # --- our actions --------------------------------------------------------------------

    def on_sent(self, intent: OrderIntent, now_ns: int) -> Order | None:
        """Record an intent that passed risk and is about to be sent."""
        if intent.kind is OrderKind.ENTER:
            return self._add(intent, now_ns)
        if intent.kind is OrderKind.REPLACE:
            old = self.get(intent.orig_token)
            self._fire(old, Trigger.REPLACE_SENT, now_ns)
            new = self._add(intent, now_ns)
            new.mark = old.mark
            return new
        if intent.kind is OrderKind.MODIFY and intent.qty > 0:
            order = self.get(intent.token)
            if intent.qty >= order.leaves:
                raise OmsError(f"modify of {order.token} to {intent.qty} shares: only a size-down "
                               f"below its {order.leaves} left is a modify")
            self._fire(order, Trigger.MODIFY_SENT, now_ns)
            order.modify_sent = True
            return order
        if intent.kind is OrderKind.CANCEL or intent.kind is OrderKind.MODIFY:
            order = self.get(intent.token)
            if order.state is OrderState.PENDING_REPLACE:
                # whichever token the venue holds when the cancel lands, the position must end flat
                for replacement in self.live.values():
                    if replacement.orig_token == order.token and replacement.state is OrderState.PENDING_NEW:
                        replacement.cancel_on_accept = intent.purpose
            elif order.state is OrderState.PENDING_NEW:
                order.cancel_on_accept = None     # its own cancel follows it: nothing to inherit
            self._fire(order, Trigger.CANCEL_SENT, now_ns)
            order.cancel_sent = True
            return order
        raise OmsError(f"unknown intent kind {intent.kind}")

    def _add(self, intent: OrderIntent, now_ns: int) -> Order:
        if intent.token in self.orders:
            raise OmsError(f"duplicate order token {intent.token}")
        order = Order(intent, now_ns)
        self.orders[intent.token] = order
        self.live[intent.token] = order
        self.working[(order.symbol_id, int(order.side), order.purpose.value)] = order.token
        return order

    # --- venue events -------------------------------------------------------------------

    def on_accepted(self, token: str, venue_ref: int, now_ns: int, price: int = 0) -> Order:
        """The venue accepted the order at `price` (0: as sent); a venue may improve or round the
        price asked, and what rests there is what the order's price is from now on."""
        order = self.get(token)
        self._unacked(order, "accept")
        self._fire(order, _accept(order), now_ns)
        order.venue_ref = venue_ref
        if price > 0:
            order.price = price
        order.cancel_packet = self.encode_cancel(token)   # ready before any guard needs it
        return order

    def on_rejected(self, token: str, now_ns: int) -> Order:
        """A refused enter, or a replacement that never took effect. The venue answers an invalid
        replace of a live original by canceling the original (OUCH: no answer names the
        replacement; on_canceled abandons it); a Rejected naming a replacement comes from
        reconciliation (the venue never received the replace: MarkNotSent), so the original
        stands as it was."""
        order = self.get(token)
        self._unacked(order, "reject")
        if order.orig_token and not order.acked and (
                order.state in _UNANSWERED or order.state is OrderState.UNKNOWN):
            old = self.orders.get(order.orig_token)
            if old is not None and (old.state is OrderState.PENDING_REPLACE or old.state is OrderState.UNKNOWN):
                # the replacement never took effect: the original stands as it was, even
                # one whose replace timed out to outcome-unknown (then, if a cancel of it followed
                # the replace, that cancel is what is pending now)
                if old.state is OrderState.UNKNOWN and old.cancel_sent:
                    trigger = Trigger.REPLACE_REJECT_CANCELLING
                else:
                    trigger = Trigger.REPLACE_REJECT_PARTIAL if old.filled else Trigger.REPLACE_REJECT
                self._fire(old, trigger, now_ns)
            if old is not None and old.state not in TERMINAL:
                # the original rests on (or its own cancel is on the way): it is the working order
                self.working[(old.symbol_id, int(old.side), old.purpose.value)] = old.token
        self._fire(order, Trigger.REJECT, now_ns)
        return order

    @staticmethod
    def _unacked(order: Order, what: str) -> None:
        """The venue answers an enter (or replace) once: an accept or a reject of an order it
        already accepted is impossible in any state (pending-cancel, outcome-unknown after a
        cancel, replace or modify timed out, ...)."""
        if order.acked:
            raise InvalidTransition(f"{order.state.value} -> {what} of an order already accepted ({order.token})")

    def on_executed(self, token: str, qty: int, now_ns: int) -> Order:
        """A fill of an accepted order. One the venue never accepted (pending-new, or pending a
        cancel or outcome-unknown since) is impossible on OUCH's sequenced stream: refused."""
        order = self._get_with_leaves(token, qty, "fill")
        if not order.acked:
            raise InvalidTransition(f"{order.state.value} -> fill of an order never accepted ({token})")
        self._fire(order, Trigger.FILL if qty == order.leaves else Trigger.PARTIAL_FILL, now_ns)
        order.leaves -= qty
        order.filled += qty
        if order.cancel_sent:     # pending cancel, or outcome-unknown after the cancel timed out
            order.fills_after_cancel += 1
        if order.leaves == 0:
            self._abandon_replacement(order, now_ns)
        return order

    def on_canceled(self, token: str, decrement: int, now_ns: int) -> Order:
        order = self._get_with_leaves(token, decrement, "cancel")
        self._fire(order, Trigger.CANCELED if decrement == order.leaves else Trigger.REDUCE, now_ns)
        order.leaves -= decrement
        if order.leaves == 0:
            self._abandon_replacement(order, now_ns)
        return order

    def _get_with_leaves(self, token: str, qty: int, what: str) -> Order:
        """The order, if `qty` shares of it can still be filled or canceled."""
        order = self.get(token)
        if qty <= 0 or qty > order.leaves:
            raise InvalidTransition(
                f"{order.state.value} -> {what} of {qty} with {order.leaves} left ({token})")
        return order

    def on_modified(self, token: str, shares: int, now_ns: int) -> Order:
        """Order Modified: `shares` is what is left open at the venue now (never more than before:
        fills that crossed our modify were reported ahead of it on the same session)."""
        order = self.get(token)
        if not order.modify_sent:
            # no modify of ours is open: none was sent, or the venue already answered it
            raise InvalidTransition(f"{order.state.value} -> modified with no modify sent ({token})")
        if shares <= 0 or shares > order.leaves:
            raise InvalidTransition(
                f"{order.state.value} -> modified to {shares} with {order.leaves} left ({token})")
        if order.state is OrderState.UNKNOWN and order.cancel_sent:
            trigger = Trigger.MODIFIED_CANCELLING
        else:
            trigger = Trigger.MODIFIED_PARTIAL if order.filled else Trigger.MODIFIED
        self._fire(order, trigger, now_ns)
        order.leaves = shares
        order.modify_sent = False
        return order

    def on_cancel_reject(self, token: str, now_ns: int) -> Order:
        """The venue refused our cancel: an accepted order rests on as it was (also one whose
        cancel had timed out to outcome-unknown, unless a replace of it is still unanswered); one
        never accepted becomes outcome-unknown (CANCEL_REJECT_UNACCEPTED)."""
        order = self.get(token)
        if not order.cancel_sent:
            # no cancel of ours is open: none was sent, or the venue already refused it
            raise InvalidTransition(f"{order.state.value} -> cancel-reject with no cancel sent ({token})")
        if not order.acked:
            trigger = Trigger.CANCEL_REJECT_UNACCEPTED
        elif order.state is OrderState.UNKNOWN and any(
                o.orig_token == token and not o.acked for o in self.live.values()):
            trigger = Trigger.CANCEL_REJECT_REPLACING
        else:
            trigger = Trigger.CANCEL_REJECT_PARTIAL if order.filled else Trigger.CANCEL_REJECT
        self._fire(order, trigger, now_ns)
        order.cancel_sent = False
        return order

    def on_replaced(self, new_token: str, prev_token: str, venue_ref: int, qty: int, price: int,
                    now_ns: int) -> Order:
        old = self.get(prev_token)
        new = self.get(new_token)
        if new.orig_token != prev_token:
            raise InvalidTransition(f"{new.state.value} -> replaced of unrelated {prev_token}")
        self._unacked(new, "replaced")
        self._fire(old, Trigger.REPLACED, now_ns)
        self._fire(new, _accept(new), now_ns)
        old.leaves = 0
        new.venue_ref = venue_ref
        new.qty = new.leaves = qty
        new.price = price
        new.cancel_packet = self.encode_cancel(new_token)
        return new

    def _abandon_replacement(self, old: Order, now_ns: int) -> None:
        """The original died while a replace was in flight: the venue ignores a replace of a dead
        token, so the replacement can never live (even one already declared outcome-unknown)."""
        for order in list(self.live.values()):
            if order.orig_token == old.token and not order.acked and (
                    order.state in _UNANSWERED or order.state is OrderState.UNKNOWN):
                self._fire(order, Trigger.REJECT, now_ns)
                self.abandoned.append(order.token)

    def check_timeouts(self, now_ns: int, timeout_ns: int) -> list[Order]:
        """Orders without an answer for timeout_ns become outcome-unknown (returned)."""
        late = []
        for order in list(self.live.values()):
            if order.fsm.state in PENDING and now_ns - order.last_ns >= timeout_ns:
                self._fire(order, Trigger.TIMEOUT, now_ns)
                late.append(order)
        return late

    def _fire(self, order: Order, trigger: Trigger, now_ns: int) -> None:
        try:
            order.fsm.fire(trigger)
        except InvalidTransition as exc:
            raise InvalidTransition(f"{exc} ({order.token})") from None
        order.last_ns = now_ns
        self.transitions += 1
        if order.fsm.state in TERMINAL:
            if self._expiry is not None:
                heapq.heappush(self._expiry, (now_ns, order.token))
            del self.live[order.token]
            key = (order.symbol_id, int(order.side), order.purpose.value)
            if self.working.get(key) == order.token:
                del self.working[key]

    # --- queries ------------------------------------------------------------------------

    def get(self, token: str) -> Order:
        order = self.orders.get(token)
        if order is None:
            raise OmsError(f"unknown order token {token!r}")
        return order

    def working_order(self, symbol_id: int, side: Side, purpose: Purpose = Purpose.QUOTE) -> Order | None:
        token = self.working.get((symbol_id, int(side), purpose.value))
        return self.orders[token] if token is not None else None

    def open_orders(self) -> list[Order]:
        return list(self.live.values())

    def counts(self) -> tuple[int, int]:
        """(open orders, orders whose outcome is unknown)."""
        unknown = 0
        for o in self.live.values():
            if o.fsm.state is OrderState.UNKNOWN:
                unknown += 1
        return len(self.live), unknown

    def prune(self, now_ns: int, keep_ns: int) -> int:
        """Forget orders terminal for longer than keep_ns (a late venue message for one of them
        would be an unknown token, which the engine treats as impossible); returns how many.
        Takes them from the expiry heap oldest first, so a timer with nothing to forget costs one
        comparison however many orders are kept."""
        heap = self._expiry
        if heap is None:
            heap = self._expiry = [(o.last_ns, t) for t, o in self.orders.items() if o.fsm.state in TERMINAL]
            heapq.heapify(heap)
        orders, forgotten = self.orders, 0
        while heap and now_ns - heap[0][0] > keep_ns:
            token = heapq.heappop(heap)[1]
            order = orders.get(token)
            # gone already, or moved since (a fill after a cancel): that move has its own entry
            if order is not None and order.fsm.state in TERMINAL and now_ns - order.last_ns > keep_ns:
                del orders[token]
                forgotten += 1
        return forgotten

    def state_items(self):
        # the times decide later too: ack timeouts (last_ns), the requote rest (sent_ns)
        return (self.counter, self.abandoned,
                [(t, o.symbol_id, int(o.side), o.price, o.qty, o.leaves, o.filled, o.state.value,
                  o.venue_ref, o.orig_token, o.cancel_sent, o.modify_sent, o.mark, o.sent_ns, o.last_ns,
                  o.cancel_on_accept and o.cancel_on_accept.value, o.fills_after_cancel)
                 for t, o in self.orders.items()])
