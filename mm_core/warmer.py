"""Idle-time warming of the order path: a shadow engine stepped while the live runner waits.

Owns the shadow (an Engine built from the real one's construction inputs, its own gateway, book,
OMS and signal kernel), the scripted market and venue that drive it one event per step, and its
health (rebuilt when it stops sending orders). Its actions are discarded: it must never touch the
journal, a socket or the real engine; the runner only calls step() and reads `failed`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, MarketData, Reconciled, SendOrder, Timer, VenueMessage
from mm_core.protocol import itch, moldudp64, ouch, soupbintcp
from mm_core.risk import RiskGateway
from mm_core.risk.states import TradingState

__all__ = ["ShadowError", "Warmer"]

_MS = 1_000_000
_PACKET_NS = 20 * _MS        # synthetic time between the script's packets (the rate limits hold)
_TIMER_NS = 100 * _MS        # the runner's default timer period
_CLOCK_NS = 1_000 * _MS      # and clock sample period
_ANSWER_NS = 50_000          # the scripted venue answers this long after the order
_LEVELS = 3                  # book levels per side around the quoted symbol's reference price
_SESSION = "WARM000001"
_FROM_CLIENT = soupbintcp.Direction.FROM_CLIENT
_REFS = 1_000                # the script's first ITCH order reference
# the shadow forgets its terminal orders after this much synthetic time: its OMS stays at ~100
# orders, a small working set (with the real engine's 60 s it would hold thousands)
_PRUNE_NS = 2_000 * _MS


class ShadowError(Exception):
    """The shadow cannot be driven: it sends no orders even when freshly built."""


class _Script:
    """The shadow's market and venue: a book of _LEVELS a side on one quoted symbol whose best bid
    and ask move a tick up and back down on alternate packets (ITCH Order Replace of the top order
    on each side, so the book keeps its size), and an OUCH counter-party that accepts, replaces and
    cancels whatever the shadow sends (never fills: no position, no tape growth)."""

    def __init__(self, engine: Engine, start_ns: int) -> None:
        symbol = engine.quoted[0]
        spec = engine.specs[symbol]
        self.symbol, self.stock = symbol, spec.name
        self.tick = engine.ticks[symbol].tick_at(spec.reference_price)
        self.mid = spec.reference_price
        self.now = start_ns
        self.seq = 1
        self.next_ref = _REFS
        self.top = {"B": 0, "S": 0}         # the ITCH reference of each side's best order
        self.up = False                     # the top orders are one tick out (the next packet: back)
        self.orders: dict[str, tuple[str, int, str, int, int]] = {}   # token -> side, qty, stock, price, tif
        self.match = 0

    def _ref(self) -> int:
        self.next_ref += 1
        return self.next_ref

    def _packet(self, messages: list) -> MarketData:
        raw = tuple(itch.encode(m) for m in messages)
        pkt = moldudp64.encode(moldudp64.Packet(_SESSION, self.seq, raw))
        self.seq += len(raw)
        return MarketData(pkt, self.now)

    def book(self) -> MarketData:
        """The opening packet: _LEVELS orders a side, one tick apart, around the reference."""
        msgs = []
        for level in range(_LEVELS):
            for side, sign in (("B", -1), ("S", 1)):
                ref = self._ref()
                if level == 0:
                    self.top[side] = ref
                price = self.mid + sign * (level + 1) * self.tick
                msgs.append(itch.AddOrder(self.symbol, 0, 0, ref, side, 500, self.stock, price))
        return self._packet(msgs)

    def move(self) -> MarketData:
        """The next packet: both top orders a tick up (or back down), under new references."""
        self.now += _PACKET_NS
        self.up = not self.up
        shift = self.tick if self.up else 0
        msgs = []
        for side, sign in (("B", -1), ("S", 1)):
            old, new = self.top[side], self._ref()
            self.top[side] = new
            msgs.append(itch.OrderReplace(self.symbol, 0, 0, old, new, 500, self.mid + sign * self.tick + shift))
        return self._packet(msgs)

    def answer(self, action: SendOrder) -> VenueMessage | None:
        """The venue's answer to one of the shadow's orders: Accepted, Replaced or Canceled (None
        for anything else, e.g. an order it no longer holds)."""
        msg = ouch.decode_inbound(soupbintcp.decode(action.packet, _FROM_CLIENT).payload)
        now = self.now + _ANSWER_NS
        t = type(msg)
        if t is ouch.EnterOrder:
            self.orders[msg.token] = (msg.side, msg.shares, msg.stock, msg.price, msg.time_in_force)
            out = ouch.Accepted(now, msg.token, msg.side, msg.shares, msg.stock, msg.price, msg.time_in_force,
                                msg.firm, "Y", self._match(), "P", "N", 0, "N", "L", " ")
        elif t is ouch.ReplaceOrder:
            old = self.orders.pop(msg.existing_token, None)
            if old is None:
                return None
            self.orders[msg.replacement_token] = (old[0], msg.shares, old[2], msg.price, msg.time_in_force)
            out = ouch.Replaced(now, msg.replacement_token, old[0], msg.shares, old[2], msg.price,
                                msg.time_in_force, "MMCO", "Y", self._match(), "P", "N", 0, "N", "L",
                                msg.existing_token, " ")
        elif t is ouch.CancelOrder:
            old = self.orders.pop(msg.token, None)
            if old is None:
                return None
            out = ouch.Canceled(now, msg.token, old[1], "U")
        else:
            return None
        return VenueMessage(soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(out))), now)

    def _match(self) -> int:
        self.match += 1
        return self.match


class Warmer:
    """Steps a shadow of `engine` one event at a time (step()); counts what it sent. Never
    raises: the first exception (building the shadow, here, included) sets `failed` to its text,
    calls on_fail(text) once, and every later step does nothing."""

    # a shadow that sends nothing for this many of its packets is stuck (halted, stale, denied)
    STUCK_PACKETS = 64
    # a rebuilt shadow stuck again within this many steps of its build is a ShadowError: something
    # the script does gets it stuck, and rebuilding (~7 ms each) would only go round in circles
    REBUILT_STEPS = 2_000

    def __init__(self, engine: Engine, on_fail: Callable[[str], None] | None = None) -> None:
        self._make: tuple = ()
        self._on_fail = on_fail
        self.failed = ""
        self.steps = 0
        self.orders = 0             # SendOrders the shadow made (each passed the gateway)
        self.rebuilds = 0
        self.shadow: Engine | None = None
        self._pending: list = []    # events queued for the next steps (start facts, venue answers)
        self._idle_packets = 0
        self._guarded(lambda: self._start(engine))

    def _start(self, engine: Engine) -> None:
        """What every shadow is built from (the real engine itself is never touched again), and
        the first one, now: at the session's start, not in its first idle turn (~7 ms)."""
        self._make = (engine.cfg, engine.symbols, engine.risk.limits, engine.compiled)
        self._build()

    def _build(self) -> None:
        cfg, symbols, limits, compiled = self._make
        cfg = dataclasses.replace(cfg, prune_after_ns=min(cfg.prune_after_ns, _PRUNE_NS))
        shadow = Engine(cfg, symbols, RiskGateway(limits), compiled=compiled)
        if not shadow.quoted:
            raise ShadowError("the engine quotes no symbol: nothing to warm")
        now = 1_000 * _MS
        self._script = script = _Script(shadow, now)
        self._next_timer = self._next_clock = now
        self._pending = [JournalHealth(now, True), Reconciled(now, True), ClockSample(now, True),
                         Timer(now), script.book()]
        self._idle_packets = 0
        self._built_at = (self.orders, self.steps)
        self.shadow = shadow

    def step(self) -> None:
        """One event into the shadow (rebuilding it first if it got stuck); its orders answered
        on the next steps. Any exception disables the warmer (see `failed`)."""
        if not self.failed:
            self._guarded(self._step)

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:          # noqa: BLE001 (the runner must never see it)
            self.failed = f"{type(exc).__name__}: {exc}"
            self.shadow, self._pending = None, []
            if self._on_fail is not None:
                self._on_fail(self.failed)

    def _step(self) -> None:
        if self.shadow is None:
            self._build()
        script = self._script
        if self._pending:
            event = self._pending.pop(0)
        elif script.now >= self._next_clock:
            event = ClockSample(script.now, True)
            self._next_clock = script.now + _CLOCK_NS
        elif script.now >= self._next_timer:
            event = Timer(script.now)
            self._next_timer = script.now + _TIMER_NS
        else:
            event = script.move()
        self.steps += 1
        sent = 0
        for action in self.shadow.on_event(event):
            if type(action) is SendOrder:
                sent += 1
                answer = script.answer(action)
                if answer is not None:
                    self._pending.append(answer)
        self.orders += sent
        if type(event) is MarketData:
            self._idle_packets = 0 if sent else self._idle_packets + 1
        self._check()

    def _check(self) -> None:
        """A shadow that latched, went stale or stopped sending is rebuilt; a fresh one that never
        sends, or a rebuilt one stuck again soon, is a ShadowError (warming it is pointless)."""
        shadow = self.shadow
        if (shadow.risk.state is TradingState.ACTIVE and not shadow.stale
                and self._idle_packets < self.STUCK_PACKETS):
            return
        orders, steps = self._built_at
        why = f"(state {shadow.risk.state.name}, stale {shadow.stale}, {self._idle_packets} packets sent nothing)"
        if self.orders == orders:
            raise ShadowError(f"a fresh shadow sent no order {why}")
        if self.rebuilds and self.steps - steps < self.REBUILT_STEPS:
            raise ShadowError(f"a rebuilt shadow got stuck again after {self.steps - steps} steps {why}")
        self.rebuilds += 1
        self.shadow = None
