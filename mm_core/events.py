"""Engine inputs (events) and outputs (actions): frozen dataclasses, bytes kept raw.

Owns the vocabulary between the sans-io engine and its I/O shell (the runner, recovery replay,
tests). Every event carries the time it happened as an integer `now_ns` given by the caller;
every action is complete: order actions carry the exact SoupBinTCP bytes to send.
Must not know about sockets, files or clocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from journal.catalogue import RecordType, TsSource
from mm_core.types import OrderIntent

__all__ = [
    "MarketData", "VenueMessage", "Timer", "ClockSample", "OperatorCommand", "JournalHealth",
    "Reconciled", "Event", "SendOrder", "RequestRetransmit", "JournalNote", "Action",
    "OPERATOR_COMMANDS", "RELEASE_CLOSE_OUT", "SESSION_ACTOR", "RECOVERY_ACTOR", "SYSTEM_ACTORS", "market_data_of",
    "venue_message_of", "timer_of",
]


# --- events in --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MarketData:
    """One MoldUDP64 packet exactly as received (live feed or re-request reply)."""

    packet: bytes
    now_ns: int                       # RX timestamp
    ts_source: TsSource = TsSource.USER


@dataclass(frozen=True, slots=True)
class VenueMessage:
    """One whole SoupBinTCP packet (length prefix included) from the order-entry session."""

    packet: bytes
    now_ns: int
    ts_source: TsSource = TsSource.USER


@dataclass(frozen=True, slots=True)
class Timer:
    now_ns: int
    timer_id: int = 0


@dataclass(frozen=True, slots=True)
class ClockSample:
    """Clock health as the risk gateway needs it: compliant for the profile, or None (unknown)."""

    now_ns: int
    compliant: bool | None


# recovery's release of the kill that only ended a session (recovery.closeout): the engine takes
# it from a journaled OPERATOR_CMD like any command, the control socket never offers it
RELEASE_CLOSE_OUT = "release-close-out"
# actors of commands the system itself journals: the close-out's kill at a clean end of a run
# (mm_core.runner) and recovery's release of it; no operator may sign as them (the control socket
# and Runner.operator refuse them)
SESSION_ACTOR, RECOVERY_ACTOR = "session", "recovery"
SYSTEM_ACTORS = frozenset({SESSION_ACTOR, RECOVERY_ACTOR})    # no operator's command may name them
OPERATOR_COMMANDS = frozenset({"kill", "enable", "safe-mode-on", "safe-mode-off", RELEASE_CLOSE_OUT})


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """kill (scope all/symbol/algo/desk/client + scope_id), enable, safe-mode-on/off, reconcile.
    `origin`: where it came from, for the journal only (e.g. the control socket's peer)."""

    now_ns: int
    command: str
    actor: str
    reason: str
    scope: str = "all"
    scope_id: int = 0
    origin: str = ""


@dataclass(frozen=True, slots=True)
class JournalHealth:
    """The journal can (ok) or cannot take ordinary records; `unsent`: tokens of orders whose
    ORDER_SENT it refused, so they never left (write-ahead) and the venue will never answer."""

    now_ns: int
    ok: bool
    unsent: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reconciled:
    now_ns: int
    ok: bool


Event = Union[MarketData, VenueMessage, Timer, ClockSample, OperatorCommand, JournalHealth, Reconciled]


# --- actions out ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SendOrder:
    """Journal (ORDER_SENT) then send these bytes; `decision` is None for cancels (always allowed
    by the gateway, which still counted them)."""

    intent: OrderIntent
    packet: bytes                     # SoupBinTCP 'U' frame with the OUCH message inside
    decision: object | None           # mm_core.risk RiskDecision for ENTER / REPLACE / MODIFY
    trading_state: int


@dataclass(frozen=True, slots=True)
class RequestRetransmit:
    """Send this MoldUDP64 request packet to the re-request server."""

    packet: bytes
    sequence: int
    count: int


@dataclass(frozen=True, slots=True)
class JournalNote:
    """A record for the journal only: RISK_DECISION, STATE_CHANGE, KILL or METRICS (JSON)."""

    rtype: RecordType
    payload: bytes
    summary: str = field(default="", compare=False)   # human-readable, for logs and tests


Action = Union[SendOrder, RequestRetransmit, JournalNote]


# Fast constructors for the inputs replay builds per journal record: the frozen dataclass's
# __init__ sets each field through object.__setattr__; these fill a slotted twin and retype it
# (as mm_core.types.make_intent does). The same objects: equal, hashed and pickled alike.
_new = object.__new__
_MarketDataBuilder = type("_MarketDataBuilder", MarketData.__bases__, {"__slots__": MarketData.__slots__})
_VenueMessageBuilder = type("_VenueMessageBuilder", VenueMessage.__bases__, {"__slots__": VenueMessage.__slots__})
_TimerBuilder = type("_TimerBuilder", Timer.__bases__, {"__slots__": Timer.__slots__})


def market_data_of(packet: bytes, now_ns: int, ts_source: TsSource) -> MarketData:
    """MarketData(packet, now_ns, ts_source)."""
    o = _new(_MarketDataBuilder)
    o.packet, o.now_ns, o.ts_source = packet, now_ns, ts_source
    o.__class__ = MarketData
    return o


def venue_message_of(packet: bytes, now_ns: int, ts_source: TsSource) -> VenueMessage:
    """VenueMessage(packet, now_ns, ts_source)."""
    o = _new(_VenueMessageBuilder)
    o.packet, o.now_ns, o.ts_source = packet, now_ns, ts_source
    o.__class__ = VenueMessage
    return o


def timer_of(now_ns: int, timer_id: int) -> Timer:
    """Timer(now_ns, timer_id)."""
    o = _new(_TimerBuilder)
    o.now_ns, o.timer_id = now_ns, timer_id
    o.__class__ = Timer
    return o
