"""Reconciliation: the recovered engine's orders and positions against the venue's own record.

Owns the sans-io comparison `reconcile(LocalView, VenueView) -> ReconResult` (typed discrepancies,
each with the resolution that removes it or none, which keeps trading HALTED) and `apply()`, which
performs one resolution on an engine deterministically: live during recovery, and again whenever a
later replay meets the RECON record that journaled it. Must not read clocks, sockets or files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

from mm_core.events import Action, SendOrder
from mm_core.oms import TERMINAL, OrderState, Trigger
from mm_core.protocol import ProtocolError, ouch
from mm_core.types import OrderIntent, OrderKind, Purpose, Side
from recovery.errors import BadRecoveryRecord, BadVenueMessage

__all__ = [
    "LocalOrder", "LocalView", "local_view", "VenueOrder", "VenueView", "venue_view",
    "MarkNotSent", "CancelAtVenue", "ResendCancel", "Deliver", "AdoptPending", "AdoptModify", "Resolution",
    "resolution_from_json", "reported_corrections", "Discrepancy", "ReconResult", "reconcile", "apply",
    "KINDS",
]

# Discrepancy kinds (stable strings: they are journaled in RECON records).
NOT_RECEIVED = "not-received"               # journaled as sent, the venue never heard of it
UNKNOWN_LIVE = "unknown-live"               # live at the venue, unknown to the OMS
CLOSED_LOCALLY_LIVE = "closed-locally-live" # live at the venue, closed in the OMS
CANCEL_NOT_RECEIVED = "cancel-not-received" # our cancel is pending, the venue still shows it live
MISSING_FILL = "missing-fill"               # an execution at the venue the journal lacks
MISSING_MESSAGE = "missing-message"         # any other venue message the journal lacks
QTY_MISMATCH = "qty-mismatch"
PRICE_MISMATCH = "price-mismatch"
POSITION_MISMATCH = "position-mismatch"
UNKNOWN_AT_VENUE = "unknown-at-venue"       # accepted in the OMS, never seen by the venue
CLOSED_AT_VENUE = "closed-at-venue"         # open in the OMS, dead at the venue, nothing missing
TRADE_CORRECTION = "trade-correction"       # a broken or corrected trade: needs a person
JOURNAL_AHEAD = "journal-ahead"             # the journal saw venue sequences the venue lacks
KINDS = (NOT_RECEIVED, UNKNOWN_LIVE, CLOSED_LOCALLY_LIVE, CANCEL_NOT_RECEIVED, MISSING_FILL,
         MISSING_MESSAGE, QTY_MISMATCH, PRICE_MISMATCH, POSITION_MISMATCH, UNKNOWN_AT_VENUE,
         CLOSED_AT_VENUE, TRADE_CORRECTION, JOURNAL_AHEAD)

_TERMINAL_NAMES = frozenset(s.value for s in TERMINAL)
_UNANSWERED = frozenset({OrderState.PENDING_NEW.value, OrderState.UNKNOWN.value})
_RESTING = frozenset({OrderState.ACCEPTED.value, OrderState.PARTIALLY_FILLED.value})
_FILLS = (ouch.Executed, ouch.ExecutedWithReferencePrice)
_CANCELS = (ouch.Canceled, ouch.AiqCanceled)
# states of an accepted order whose Order Modified the OMS takes once a modify is on its way
_MODIFY_ANSWERABLE = frozenset({OrderState.PENDING_CANCEL, OrderState.UNKNOWN})


# --- the two views ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LocalOrder:
    token: str
    symbol_id: int
    side: str            # "B" or "S"
    price: int           # price4
    qty: int
    leaves: int
    filled: int
    state: str           # mm_core.oms.OrderState value
    orig_token: str = ""
    purpose: str = "quote"


@dataclass(frozen=True)
class LocalView:
    """What the recovered engine believes, plus which venue sequences the journal holds."""

    orders: Mapping[str, LocalOrder]
    positions: Mapping[int, int]          # symbol id -> signed shares
    symbols: Mapping[int, str]            # symbol id -> venue stock name
    journaled: frozenset[int]             # SoupBinTCP sequences of the journal's venue messages
    last_venue_seq: int = 0
    # venue sequence of a trade correction -> journal sequence of the RECON finding record in
    # which an earlier recovery reported it (replay collects them): not reported again
    corrections_reported: Mapping[int, int] = field(default_factory=dict)
    # the venue sequence the engine's session joined at (a fresh session asks for new messages
    # only): the account's messages before it are an earlier session's of the day, not ours
    joined: int = 1


def local_view(engine, journaled: Iterable[int], last_venue_seq: int | None = None,
               corrections_reported: Mapping[int, int] | None = None) -> LocalView:
    """Snapshot an engine's OMS and inventory as plain values (and where its session joined)."""
    orders = {t: LocalOrder(t, o.symbol_id, chr(int(o.side)), o.price, o.qty, o.leaves, o.filled,
                            o.state.value, o.orig_token, o.purpose.value)
              for t, o in engine.oms.orders.items()}
    positions = {s: p for s, p in enumerate(engine.inventory.position) if p}
    symbols = {s.id: s.name for s in engine.symbols.symbols}
    seqs = frozenset(journaled)
    return LocalView(orders, positions, symbols, seqs,
                     engine.venue_seq if last_venue_seq is None else last_venue_seq,
                     dict(corrections_reported or {}), engine.venue_joined or 1)


@dataclass(slots=True)
class VenueOrder:
    """One order token as the venue's messages describe it."""

    token: str
    stock: str = ""
    side: str = ""
    price: int = 0
    shares: int = 0
    leaves: int = 0
    executed: int = 0
    status: str = "unseen"   # live, filled, canceled, replaced, rejected, dead
    ref: int = 0
    sequences: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class VenueView:
    orders: dict[str, VenueOrder]
    positions: dict[str, int]             # stock -> signed executed shares
    raw: dict[int, bytes]                 # sequence -> OUCH payload
    kinds: dict[int, type]                # sequence -> OUCH message class
    tokens: dict[int, tuple[str, ...]]    # sequence -> tokens the message concerns
    corrections: tuple[tuple[int, str, str], ...]   # (sequence, token, message class)
    last_seq: int
    fills: dict[int, tuple[str, int]] = field(default_factory=dict)   # sequence -> (stock, signed shares)

    def positions_split(self, joined: int) -> tuple[dict[str, int], dict[str, int]]:
        """(from sequence `joined` on, before it): the positions the fills of each part make."""
        ours: dict[str, int] = {}
        earlier: dict[str, int] = {}
        for seq, (stock, signed) in self.fills.items():
            part = ours if seq >= joined else earlier
            part[stock] = part.get(stock, 0) + signed
        return ({s: p for s, p in ours.items() if p}, {s: p for s, p in earlier.items() if p})


def venue_view(messages: Iterable[tuple[int, bytes]]) -> VenueView:
    """Fold the venue's sequenced OUCH payloads (sequence, bytes) from sequence 1 into orders and
    positions. Sequences must be consecutive; a message that does not decode is BadVenueMessage."""
    orders: dict[str, VenueOrder] = {}
    positions: dict[str, int] = {}
    raw: dict[int, bytes] = {}
    kinds: dict[int, type] = {}
    tokens: dict[int, tuple[str, ...]] = {}
    corrections = []
    fills: dict[int, tuple[str, int]] = {}
    expected = 1
    for seq, payload in messages:
        if seq != expected:
            raise BadVenueMessage(seq, f"expected sequence {expected}: the venue view has a gap")
        expected += 1
        payload = bytes(payload)
        try:
            msg = ouch.decode_outbound(payload)
        except ProtocolError as exc:
            raise BadVenueMessage(seq, str(exc)) from None
        raw[seq] = payload
        kinds[seq] = type(msg)
        token = getattr(msg, "token", "")
        tokens[seq] = (token,) if token else ()
        if not token:
            continue
        order = orders.get(token)
        if order is None:
            order = orders[token] = VenueOrder(token)
        order.sequences.append(seq)
        if isinstance(msg, (ouch.Accepted, ouch.Replaced)):
            order.stock, order.side, order.price, order.ref = msg.stock, msg.side, msg.price, msg.order_ref
            order.shares = msg.shares
            order.leaves = msg.shares if msg.order_state == "L" else 0
            order.status = "live" if order.leaves else "dead"
            if isinstance(msg, ouch.Replaced):
                tokens[seq] = (token, msg.previous_token)
                old = orders.get(msg.previous_token)
                if old is None:
                    old = orders[msg.previous_token] = VenueOrder(msg.previous_token)
                old.sequences.append(seq)
                old.leaves, old.status = 0, "replaced"
        elif isinstance(msg, _FILLS):
            order.leaves = max(0, order.leaves - msg.executed_shares)
            order.executed += msg.executed_shares
            signed = msg.executed_shares if order.side == "B" else -msg.executed_shares
            positions[order.stock] = positions.get(order.stock, 0) + signed
            fills[seq] = (order.stock, signed)
            if not order.leaves:
                order.status = "filled"
        elif isinstance(msg, _CANCELS):
            order.leaves = max(0, order.leaves - msg.decrement_shares)
            if not order.leaves:
                order.status = "canceled"
        elif isinstance(msg, ouch.OrderModified):
            order.leaves = msg.shares          # a size-down in place (the engine's OUCH Modify)
        elif isinstance(msg, ouch.Rejected):
            order.leaves, order.status = 0, "rejected"
        elif isinstance(msg, (ouch.BrokenTrade, ouch.TradeCorrection, ouch.PriceCorrection)):
            corrections.append((seq, token, type(msg).__name__))
    return VenueView(orders, {s: p for s, p in positions.items() if p}, raw, kinds, tokens,
                     tuple(corrections), expected - 1, fills)


# --- resolutions (journaled as JSON in RECON records) ------------------------------------------

@dataclass(frozen=True, slots=True)
class MarkNotSent:
    """The venue never received this entry or replacement: it never existed (REJECTED locally)."""

    token: str
    action: str = "mark-not-sent"


@dataclass(frozen=True, slots=True)
class CancelAtVenue:
    """Cancel a live venue order; `adopt` first takes it into the OMS (purpose recovery) when the
    OMS does not know it or has it closed, so the venue's answers are ordinary order events."""

    token: str
    symbol_id: int
    side: str
    price: int
    leaves: int
    ref: int
    adopt: bool
    action: str = "cancel"


@dataclass(frozen=True, slots=True)
class ResendCancel:
    """Our journaled cancel never reached the venue: send it again."""

    token: str
    action: str = "resend-cancel"


@dataclass(frozen=True, slots=True)
class Deliver:
    """A venue message the journal lacks: journal it as VENUE_MSG and feed it to the engine
    (the recovery shell does this; replay meets the VENUE_MSG record itself)."""

    sequence: int
    payload: bytes
    action: str = "deliver"


@dataclass(frozen=True, slots=True)
class AdoptPending:
    """An order the venue accepted that the journal never recorded: known to the OMS as pending
    (purpose recovery) before its venue messages are delivered."""

    token: str
    symbol_id: int
    side: str
    price: int
    qty: int
    orig_token: str = ""       # for a replacement: the order it replaces
    action: str = "adopt"


@dataclass(frozen=True, slots=True)
class AdoptModify:
    """A size-down in place (OUCH Modify) the venue applied to an order of ours that the journal
    never recorded sending: the OMS expects the venue's Order Modified before it is delivered.
    Before and after as the venue's answer tells them: `leaves` open before, `shares` after, the
    side byte (a sell's marking) the venue holds from now on; the price stays (a Modify keeps it)."""

    token: str
    symbol_id: int
    side: str
    price: int
    leaves: int
    shares: int
    action: str = "adopt-modify"


Resolution = MarkNotSent | CancelAtVenue | ResendCancel | Deliver | AdoptPending | AdoptModify
# keyed by the field default (in a slotted dataclass the class attribute is a slot descriptor)
_BY_ACTION = {c.__dataclass_fields__["action"].default: c
              for c in (MarkNotSent, CancelAtVenue, ResendCancel, Deliver, AdoptPending, AdoptModify)}


def reported_corrections(outcome: Mapping) -> list[int]:
    """The venue sequences of the trade corrections a RECON outcome document says were reported
    to a person: a recovery or reconcile that finished lists there those its result's reasons name
    (ReconResult.corrections of its last round); one that failed or never ended lists none, so
    its findings alone never count (the next one reports them again)."""
    listed = outcome.get("corrections_reported")
    if not isinstance(listed, list):
        return []
    return [s for s in listed if isinstance(s, int) and not isinstance(s, bool)]


def resolution_json(resolution: Resolution) -> dict:
    doc = asdict(resolution)
    if isinstance(resolution, Deliver):
        doc["payload"] = resolution.payload.hex()
    return doc


def resolution_from_json(doc: Mapping) -> Resolution:
    """The resolution a RECON record describes; BadRecoveryRecord when it describes none."""
    kind = _BY_ACTION.get(doc.get("action", ""))
    if kind is None:
        raise BadRecoveryRecord(f"unknown resolution action {doc.get('action')!r}")
    values = dict(doc)
    try:
        if kind is Deliver:
            values["payload"] = bytes.fromhex(values["payload"])
        return kind(**values)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadRecoveryRecord(f"bad {doc.get('action')} resolution: {exc}") from None


# --- the comparison -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Discrepancy:
    kind: str
    token: str
    detail: str
    local: dict | None = None
    venue: dict | None = None
    resolution: Resolution | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "token": self.token, "detail": self.detail, "local": self.local,
                "venue": self.venue,
                "resolution": None if self.resolution is None else resolution_json(self.resolution)}


@dataclass(frozen=True)
class ReconResult:
    discrepancies: tuple[Discrepancy, ...]
    local_positions: dict[str, int]
    venue_positions: dict[str, int]
    venue_messages: int
    live_at_venue: int
    # trade corrections an earlier recovery reported (its RECON outcome names them): listed, not
    # discrepancies; (venue sequence, token, message class, journal sequence of that outcome)
    reported_earlier: tuple[tuple[int, str, str, int], ...] = ()
    # where the engine's session joined the venue's, and the positions the account's fills before
    # it make (an earlier session's of the day: not in the engine's inventory, not compared)
    joined: int = 1
    earlier_positions: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.discrepancies

    @property
    def resolutions(self) -> list[Resolution]:
        return [d.resolution for d in self.discrepancies if d.resolution is not None]

    @property
    def corrections(self) -> list[int]:
        """Venue sequences of the trade corrections among the discrepancies (what an OUTCOME whose
        reasons name them records as reported: reported_corrections)."""
        return [d.venue["sequence"] for d in self.discrepancies if d.kind == TRADE_CORRECTION]

    @property
    def unresolved(self) -> list[Discrepancy]:
        return [d for d in self.discrepancies if d.resolution is None]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.discrepancies:
            out[d.kind] = out.get(d.kind, 0) + 1
        return out

    def to_json(self) -> dict:
        return {"clean": self.clean, "counts": self.counts(), "venue_messages": self.venue_messages,
                "live_at_venue": self.live_at_venue, "local_positions": self.local_positions,
                "venue_positions": self.venue_positions,
                "discrepancies": [d.to_json() for d in self.discrepancies],
                "corrections_reported_earlier": [
                    {"sequence": seq, "token": token, "what": what, "reported_in": recon_seq}
                    for seq, token, what, recon_seq in self.reported_earlier],
                "joined": self.joined, "earlier_positions": self.earlier_positions}


def _local_doc(o: LocalOrder) -> dict:
    return {"state": o.state, "price": o.price, "qty": o.qty, "leaves": o.leaves, "filled": o.filled}


def _venue_doc(v: VenueOrder) -> dict:
    return {"status": v.status, "price": v.price, "shares": v.shares, "leaves": v.leaves,
            "executed": v.executed, "sequences": v.sequences[-8:]}


def reconcile(local: LocalView, venue: VenueView,
              venue_positions: Mapping[str, int] | None = None) -> ReconResult:
    """Every difference between the engine's view and the venue's, each with its resolution (or
    None: a person must look, trading stays HALTED). `venue_positions`, when the venue can report
    them directly, are checked against the positions its messages imply too. The account's
    messages before the sequence the engine's session joined at (local.joined) are an earlier
    session's: none is missing from the journal, its corrections and fills are not ours (its
    positions are listed apart), but an order of it still live is the account's exposure, which
    nothing manages: it is cancelled (adopted first) as any live order unknown to the OMS."""
    found: list[Discrepancy] = []
    joined = local.joined
    ids = {name: sid for sid, name in local.symbols.items()}
    # venue messages the journal lacks: delivered first, their orders compared on the next pass
    pending_tokens: set[str] = set()
    missing_fill = False
    for seq in sorted(venue.raw):
        if seq in local.journaled or seq < joined:
            continue
        kind = venue.kinds[seq]
        pending_tokens.update(venue.tokens[seq])
        is_fill = kind in _FILLS
        missing_fill = missing_fill or is_fill
        found.append(Discrepancy(MISSING_FILL if is_fill else MISSING_MESSAGE,
                                 venue.tokens[seq][0] if venue.tokens[seq] else "",
                                 f"venue sequence {seq} ({kind.__name__}) is not in the journal",
                                 venue={"sequence": seq}, resolution=Deliver(seq, venue.raw[seq])))
    if local.last_venue_seq > venue.last_seq:
        found.append(Discrepancy(JOURNAL_AHEAD, "", f"journal reached venue sequence "
                                 f"{local.last_venue_seq}, the venue only {venue.last_seq}"))
    # a correction needs a person once: the recovery that first finds it and finishes reports it
    # (and stays HALTED); later ones, whose full view from sequence 1 still holds it, list it as
    # reported
    reported_earlier = []
    for seq, token, what in venue.corrections:
        if seq < joined:
            continue            # of a trade before we joined: the earlier session's to report
        if seq in local.corrections_reported:
            reported_earlier.append((seq, token, what, local.corrections_reported[seq]))
            continue
        found.append(Discrepancy(TRADE_CORRECTION, token, f"{what} at venue sequence {seq}",
                                 venue={"sequence": seq}))
    for token in sorted(local.orders):
        lo = local.orders[token]
        if lo.state in _TERMINAL_NAMES or token in pending_tokens:
            continue
        vo = venue.orders.get(token)
        if vo is None or vo.status == "unseen":
            # the venue answers every entry it receives: an order it has no message about never
            # reached it, even when our cancel (a latch pulls unanswered orders too) followed it
            if lo.state in _UNANSWERED or lo.state == OrderState.PENDING_CANCEL.value:
                found.append(Discrepancy(NOT_RECEIVED, token, "journaled as sent, never received "
                                         "by the venue (in flight at the crash)", _local_doc(lo),
                                         resolution=MarkNotSent(token)))
            else:
                found.append(Discrepancy(UNKNOWN_AT_VENUE, token, f"{lo.state} locally, the venue "
                                         "has no message about it", _local_doc(lo)))
            continue
        if vo.status != "live":
            if lo.state == OrderState.PENDING_REPLACE.value:
                continue            # its replacement's fate decides; compared on the next pass
            found.append(Discrepancy(CLOSED_AT_VENUE, token, f"{lo.state} locally, {vo.status} at "
                                     "the venue", _local_doc(lo), _venue_doc(vo)))
            continue
        if lo.state == OrderState.PENDING_CANCEL.value or (
                lo.state == OrderState.UNKNOWN.value and lo.leaves and vo.leaves):
            found.append(Discrepancy(CANCEL_NOT_RECEIVED, token, "our cancel never reached the "
                                     "venue; it still rests there", _local_doc(lo), _venue_doc(vo),
                                     ResendCancel(token)))
        elif lo.state == OrderState.PENDING_MODIFY.value:
            # our size-down never reached the venue (its answer is not among the missing
            # messages): the order rests at its old size; pull it rather than guess
            found.append(Discrepancy(QTY_MISMATCH, token, f"our size-down never reached the venue; "
                                     f"{vo.leaves} shares rest there", _local_doc(lo), _venue_doc(vo),
                                     ResendCancel(token)))
        elif lo.state in _RESTING:
            cancel = CancelAtVenue(token, lo.symbol_id, lo.side, vo.price, vo.leaves, vo.ref, False)
            if lo.purpose == Purpose.RECOVERY.value:
                found.append(Discrepancy(UNKNOWN_LIVE, token, "live at the venue, adopted by "
                                         "recovery (the journal never recorded it)", _local_doc(lo),
                                         _venue_doc(vo), cancel))
            elif vo.leaves != lo.leaves:
                found.append(Discrepancy(QTY_MISMATCH, token, f"{lo.leaves} shares left locally, "
                                         f"{vo.leaves} at the venue", _local_doc(lo), _venue_doc(vo),
                                         cancel))
            elif vo.price != lo.price:
                found.append(Discrepancy(PRICE_MISMATCH, token, f"price {lo.price} locally, "
                                         f"{vo.price} at the venue", _local_doc(lo), _venue_doc(vo),
                                         cancel))
        elif lo.state in _UNANSWERED:
            found.append(Discrepancy(CLOSED_AT_VENUE, token, f"{lo.state} locally but live at the "
                                     "venue with no message missing", _local_doc(lo), _venue_doc(vo)))
    for token in sorted(venue.orders):
        vo = venue.orders[token]
        if vo.status != "live" or token in pending_tokens:
            continue
        lo = local.orders.get(token)
        if lo is not None and lo.state not in _TERMINAL_NAMES:
            continue
        sid = ids.get(vo.stock)
        if sid is None:
            found.append(Discrepancy(UNKNOWN_LIVE, token, f"live at the venue in {vo.stock!r}, a "
                                     "symbol the engine does not trade", venue=_venue_doc(vo)))
            continue
        cancel = CancelAtVenue(token, sid, vo.side, vo.price, vo.leaves, vo.ref, True)
        if lo is None:
            found.append(Discrepancy(UNKNOWN_LIVE, token, "live at the venue, unknown locally" + (
                f" (left by the account's earlier session: entered before venue sequence {joined}, "
                "where ours joined)" if vo.sequences[0] < joined else ""),
                venue=_venue_doc(vo), resolution=cancel))
        else:
            found.append(Discrepancy(CLOSED_LOCALLY_LIVE, token, f"{lo.state} locally, live at the "
                                     "venue", _local_doc(lo), _venue_doc(vo), cancel))
    local_positions = {local.symbols.get(s, str(s)): p for s, p in local.positions.items() if p}
    ours, earlier = venue.positions_split(joined) if joined > 1 else (venue.positions, {})
    if not missing_fill:
        for stock in sorted(set(local_positions) | set(ours)):
            mine, theirs = local_positions.get(stock, 0), ours.get(stock, 0)
            if mine != theirs:
                found.append(Discrepancy(POSITION_MISMATCH, "", f"{stock}: {mine} from the "
                                         f"journal's fills, {theirs} from the venue's",
                                         {"position": mine}, {"position": theirs}))
    if venue_positions is not None:
        for stock in sorted(set(venue_positions) | set(venue.positions)):
            said, implied = venue_positions.get(stock, 0), venue.positions.get(stock, 0)
            if said != implied:
                found.append(Discrepancy(POSITION_MISMATCH, "", f"{stock}: the venue reports "
                                         f"{said}, its own messages imply {implied}",
                                         {"position": implied}, {"position": said}))
    live = sum(1 for v in venue.orders.values() if v.status == "live")
    return ReconResult(tuple(found), local_positions, dict(ours), len(venue.raw), live,
                       tuple(reported_earlier), joined, earlier)


# --- performing a resolution on an engine -------------------------------------------------------

def apply(engine, resolution: Resolution, now_ns: int) -> list[Action]:
    """Perform one resolution on the engine's OMS; returns the orders to journal and send.
    Deterministic: the same engine state and resolution give the same result on every replay."""
    oms = engine.oms
    actions: list[Action] = []
    if isinstance(resolution, MarkNotSent):
        order = oms.orders.get(resolution.token)
        if order is not None and (order.state.value in _UNANSWERED or (
                order.state is OrderState.PENDING_CANCEL and not order.acked)):
            oms.on_rejected(resolution.token, now_ns)
            engine.risk.on_order_done(resolution.token, now_ns)
            if order.purpose is Purpose.HEDGE:
                hedged = engine.hedge_tokens.pop(resolution.token, None)
                if hedged is not None:
                    engine.hedger.on_done(hedged)
    elif isinstance(resolution, AdoptPending):
        _skip_token(oms, resolution.token)
        # an order replay decided again (its input kept, its ORDER_SENT lost) is pending already,
        # as decided and counted: the record is its adoption's evidence only
        if resolution.token not in oms.orders:
            _adopt(oms, resolution, now_ns)
            r = resolution
            # counted by the gateway as the order it would have passed: a replacement with its
            # original until the venue answers, a sell with the venue's marking (its locate)
            engine.risk.on_order_adopted(r.token, r.symbol_id, _side(r.side), r.qty, r.price,
                                         _mark(r.side), r.orig_token, now_ns)
    elif isinstance(resolution, AdoptModify):
        _adopt_modify(oms, resolution, now_ns)
    elif isinstance(resolution, CancelAtVenue):
        token = resolution.token
        if resolution.adopt:
            _skip_token(oms, token)
            old = oms.orders.get(token)
            if old is not None and old.state in TERMINAL:
                del oms.orders[token]          # the closed record is superseded by the venue's
            if token not in oms.orders:
                oms.on_sent(_intent(OrderKind.ENTER, token, resolution.symbol_id, resolution.side,
                                    resolution.price, resolution.leaves), now_ns)
                oms.on_accepted(token, resolution.ref, now_ns)
                oms.orders[token].mark = resolution.side     # as the venue holds it
        order = oms.orders.get(token)
        if order is not None and order.state.value in _RESTING:
            # what rests at the venue (its shares and price) is what the gateway counts until the
            # cancel is answered (the engine releases it then, as any order that is done)
            risk = engine.risk
            if token in risk.working_orders():
                risk.on_order_resting(token, resolution.leaves, resolution.price, now_ns)
            else:
                risk.on_order_adopted(token, resolution.symbol_id, _side(resolution.side),
                                      resolution.leaves, resolution.price, _mark(resolution.side),
                                      now_ns=now_ns)
            actions.append(_cancel(engine, order, now_ns))
    elif isinstance(resolution, ResendCancel):
        order = oms.orders.get(resolution.token)
        if order is not None and order.state not in TERMINAL:
            actions.append(_cancel(engine, order, now_ns))
    elif not isinstance(resolution, Deliver):
        raise BadRecoveryRecord(f"not a resolution: {resolution!r}")
    engine.risk.on_order_state(None, oms.counts()[1], now_ns)
    return actions


def _adopt(oms, r: AdoptPending, now_ns: int) -> None:
    """Make the OMS expect the venue's answer to an order it never recorded sending."""
    old = oms.orders.get(r.orig_token) if r.orig_token else None
    if old is not None and old.state.value in _RESTING:
        oms.on_sent(_intent(OrderKind.REPLACE, r.token, r.symbol_id, r.side, r.price, r.qty,
                            r.orig_token), now_ns)
        return
    if old is not None and old.state not in TERMINAL and old.state is not OrderState.UNKNOWN:
        # its fate is whatever the venue says next (a replace we never recorded sending)
        old.fsm.fire(Trigger.TIMEOUT)
        old.last_ns = now_ns
    oms.on_sent(_intent(OrderKind.ENTER, r.token, r.symbol_id, r.side, r.price, r.qty, r.orig_token),
                now_ns)


def _adopt_modify(oms, r: AdoptModify, now_ns: int) -> None:
    """Make the OMS expect the venue's Order Modified of a size-down it never recorded sending
    (one replay decided again already expects it). The gateway keeps counting the order as it
    was until that answer confirms the new size, as for any modify."""
    order = oms.orders.get(r.token)
    if order is None or order.modify_sent or not order.acked:
        return
    if order.state.value in _RESTING:
        order.fsm.fire(Trigger.MODIFY_SENT)
        order.last_ns = now_ns
    elif order.state not in _MODIFY_ANSWERABLE:
        return              # e.g. a replace in flight: the Order Modified halts (fail closed)
    order.modify_sent = True


def _skip_token(oms, token: str) -> None:
    """Never hand out again a token of ours the venue has already seen (tokens are day-unique)."""
    counter = oms.counter_of(token)
    if counter is not None:
        oms.counter = max(oms.counter, counter)


def _side(side: str) -> Side:
    """The order side of the venue's side byte: B, or a sell's Reg SHO marking (S, T or E)."""
    return Side.BUY if side == "B" else Side.SELL


def _mark(side: str) -> str:
    """The gateway's marking of an order the venue holds with this side byte ("" for a buy)."""
    return "" if side == "B" else side


def _intent(kind: OrderKind, token: str, symbol_id: int, side: str, price: int, qty: int,
            orig_token: str = "") -> OrderIntent:
    # the OMS learns a sell's marking from the venue's answers
    return OrderIntent(kind, token, symbol_id, _side(side), price, qty,
                       orig_token=orig_token,
                       purpose=Purpose.RECOVERY)


def _cancel(engine, order, now_ns: int) -> SendOrder:
    """The cancel of the rest of an order, counted by the gateway (cancels are always allowed)."""
    cfg = engine.cfg
    intent = OrderIntent(OrderKind.CANCEL, order.token, order.symbol_id, order.side, order.price, 0,
                         algo_id=cfg.algo_id, desk_id=cfg.desk_id, trader_id=cfg.trader_id,
                         client_id=cfg.client_id, purpose=Purpose.RECOVERY)
    decision = engine.risk.check(intent, now_ns)
    engine.oms.on_sent(intent, now_ns)
    packet = order.cancel_packet or engine.oms.encode_cancel(order.token)
    return SendOrder(intent, packet, decision, int(decision.state))
