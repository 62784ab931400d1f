"""Test helpers: real encoded ITCH/MoldUDP64 market data and OUCH/SoupBinTCP venue replies built
with the project's codecs, a real risk gateway, and an engine wired to the default symbols file.

The `Venue` here is a small scripted counter-party for scenario tests (it answers the engine's
OUCH orders with Accepted/Canceled/Replaced and executes what a test tells it to); it is a test
double for the embedded venue's order-entry side, nothing more.
"""
from __future__ import annotations

import pathlib

from mm_core.config import EngineConfig, symbols_from_toml
from mm_core.engine import Engine
from mm_core.events import ClockSample, JournalHealth, MarketData, SendOrder, Timer, VenueMessage
from mm_core.protocol import itch, moldudp64, ouch, soupbintcp
from mm_core.risk import Limits, RiskGateway
from mm_core.risk.limits import EXAMPLE_TOML

ROOT = pathlib.Path(__file__).resolve().parents[2]
SYMBOLS_TEXT = (ROOT / "mm_core" / "venue" / "default.toml").read_text()
SYMBOLS = symbols_from_toml(SYMBOLS_TEXT)
ACME, BOLT, CHIP = 1, 2, 3
NAMES = {s.id: s.name for s in SYMBOLS.symbols}
MS = 1_000_000
S = 1_000_000_000

LIMITS_TEXT = EXAMPLE_TOML.replace("start_reconciled = false", "start_reconciled = true")


def gateway(text: str = LIMITS_TEXT) -> RiskGateway:
    return RiskGateway(Limits.from_toml(text))


def make_engine(config: EngineConfig | None = None, limits: str = LIMITS_TEXT, now: int = S) -> Engine:
    """An engine with a healthy journal and a compliant clock, as the runner would start it."""
    engine = Engine(config or EngineConfig(), SYMBOLS, gateway(limits))
    engine.on_event(JournalHealth(now, True))
    engine.on_event(ClockSample(now, True))
    engine.on_event(Timer(now))
    return engine


class Feed:
    """Builds MoldUDP64 packets of ITCH messages with consecutive sequence numbers."""

    def __init__(self, session: str = "TEST000001") -> None:
        self.session = session
        self.seq = 1
        self.next_ref = 1_000
        self.history: dict[int, bytes] = {}     # sequence -> message bytes (for re-requests)

    def ref(self) -> int:
        self.next_ref += 1
        return self.next_ref

    def add(self, symbol_id: int, side: str, qty: int, price: int, ref: int | None = None) -> itch.AddOrder:
        return itch.AddOrder(symbol_id, 0, 0, ref if ref is not None else self.ref(), side, qty,
                             NAMES[symbol_id], price)

    @staticmethod
    def execute(ref: int, qty: int, match: int = 1) -> itch.OrderExecuted:
        return itch.OrderExecuted(0, 0, 0, ref, qty, match)

    @staticmethod
    def delete(ref: int) -> itch.OrderDelete:
        return itch.OrderDelete(0, 0, 0, ref)

    def packet(self, *messages) -> bytes:
        raw = tuple(itch.encode(m) for m in messages)
        for i, r in enumerate(raw):
            self.history[self.seq + i] = r
        pkt = moldudp64.encode(moldudp64.Packet(self.session, self.seq, raw))
        self.seq += len(raw)
        return pkt

    def resend(self, first: int, count: int) -> bytes:
        raw = tuple(self.history[s] for s in range(first, first + count))
        return moldudp64.encode(moldudp64.Packet(self.session, first, raw))


def md(pkt: bytes, now: int) -> MarketData:
    return MarketData(pkt, now)


def two_sided(feed: Feed, symbol_id: int, bid: int, ask: int, qty: int = 500, levels: int = 3,
              tick: int = 100) -> tuple[list, dict]:
    """ITCH adds for a book of `levels` per side; returns (messages, {price: ref})."""
    msgs, refs = [], {}
    for i in range(levels):
        for side, px in (("B", bid - i * tick), ("S", ask + i * tick)):
            m = feed.add(symbol_id, side, qty, px)
            refs[px] = m.order_ref
            msgs.append(m)
    return msgs, refs


class Venue:
    """Scripted OUCH counter-party: acknowledges every order the engine sends."""

    def __init__(self) -> None:
        self.orders: dict[str, dict] = {}      # token -> {side, marked, qty, price, stock, tif}
        self.match = 0
        self.sent: list = []                   # decoded inbound OUCH messages, in order

    @staticmethod
    def frame(msg) -> bytes:
        return soupbintcp.encode(soupbintcp.SequencedData(ouch.encode(msg)))

    def decode(self, action: SendOrder):
        packet = soupbintcp.decode(action.packet, soupbintcp.Direction.FROM_CLIENT)
        return ouch.decode_inbound(packet.payload)

    def answer(self, actions, now: int, ack: bool = True) -> list[VenueMessage]:
        """Venue replies for every order action: Accepted, Replaced or Canceled."""
        replies = []
        for a in actions:
            if not isinstance(a, SendOrder):
                continue
            msg = self.decode(a)
            self.sent.append(msg)
            if not ack:
                continue
            if isinstance(msg, ouch.EnterOrder):
                # side: the book's (B or S); marked: the OUCH side as entered (S, T or E for a sell)
                self.orders[msg.token] = dict(side="B" if msg.side == "B" else "S", marked=msg.side,
                                              qty=msg.shares, price=msg.price, stock=msg.stock,
                                              tif=msg.time_in_force)
                replies.append(self.frame(ouch.Accepted(now, msg.token, msg.side, msg.shares, msg.stock,
                                                        msg.price, msg.time_in_force, msg.firm, "Y",
                                                        self._ref(), "P", "N", 0, "N", "L", " ")))
            elif isinstance(msg, ouch.ReplaceOrder):
                old = self.orders.pop(msg.existing_token, None)
                if old is None:
                    continue
                self.orders[msg.replacement_token] = dict(old, qty=msg.shares, price=msg.price)
                replies.append(self.frame(ouch.Replaced(
                    now, msg.replacement_token, old["marked"], msg.shares, old["stock"], msg.price,
                    msg.time_in_force, "MMCO", "Y", self._ref(), "P", "N", 0, "N", "L",
                    msg.existing_token, " ")))
            elif isinstance(msg, ouch.CancelOrder):
                old = self.orders.pop(msg.token, None)
                if old is not None:
                    replies.append(self.frame(ouch.Canceled(now, msg.token, old["qty"], "U")))
        return [VenueMessage(r, now) for r in replies]

    def _ref(self) -> int:
        self.match += 1
        return self.match

    def fill(self, token: str, qty: int, now: int, price: int | None = None) -> VenueMessage:
        order = self.orders[token]
        order["qty"] -= qty
        if order["qty"] == 0:
            del self.orders[token]
        self.match += 1
        return VenueMessage(self.frame(ouch.Executed(now, token, qty, price or order["price"], "A",
                                                     self.match)), now)

    def cancel_rest(self, token: str, now: int) -> VenueMessage:
        order = self.orders.pop(token)
        return VenueMessage(self.frame(ouch.Canceled(now, token, order["qty"], "I")), now)

    def resting(self, stock: str, side: str) -> list[str]:
        return [t for t, o in self.orders.items() if o["stock"] == stock and o["side"] == side]


def run(engine: Engine, venue: Venue, event, now: int) -> list:
    """Feed one event and every venue reply it causes (to a fixed point); returns all actions."""
    out = engine.on_event(event)
    return out + settle(engine, venue, out, now)


def settle(engine: Engine, venue: Venue, actions: list, now: int) -> list:
    """Let the venue answer `actions` and feed the replies until nothing more is sent."""
    out: list = []
    pending = list(actions)
    for _ in range(20):
        replies = venue.answer(pending, now)
        if not replies:
            break
        pending = []
        for r in replies:
            acts = engine.on_event(r)
            out.extend(acts)
            pending.extend(acts)
    return out


def orders(actions) -> list[SendOrder]:
    return [a for a in actions if isinstance(a, SendOrder)]


def simulate(seed: int, steps: int, config: EngineConfig | None = None):
    """A seeded session: random order-level flow on ACME, BOLT and CHIP around drifting prices,
    the scripted venue answering and sometimes filling our quotes, timers every 100 ms and clock
    samples every second. Returns (events fed to the engine in order, actions, engine)."""
    import random

    rng = random.Random(seed)
    engine, venue, feed = make_engine(config), Venue(), Feed()
    events: list = []
    actions: list = []

    class Recorder:
        """Records every event on its way into the engine, and every action out."""

        @staticmethod
        def on_event(event) -> list:
            events.append(event)
            out = engine.on_event(event)
            actions.extend(out)
            return out

    def feed_one(event) -> list:
        return Recorder.on_event(event)

    def feed_settled(event, now) -> None:
        run(Recorder, venue, event, now)

    books = {ACME: (1_000_000, 100), BOLT: (505_000, 50), CHIP: (8_500, 1)}
    centre = {s: px for s, (px, _) in books.items()}
    live: dict[int, list[int]] = {s: [] for s in books}     # our record of the venue's live refs
    info: dict[int, tuple[int, str, int, int]] = {}         # ref -> symbol, side, price, qty
    now = 2 * S
    next_timer = now
    next_clock = now
    for _ in range(steps):
        now += rng.randrange(100_000, 3_000_000)
        msgs = []
        for _ in range(rng.randrange(1, 5)):
            s = rng.choice((ACME, BOLT, CHIP))
            _, tick = books[s]
            if rng.random() < 0.02:
                centre[s] += tick * rng.choice((-1, 1))
            r = rng.random()
            refs = live[s]
            if r < 0.5 or len(refs) < 6:
                side = rng.choice("BS")
                off = tick * rng.randrange(1, 5)
                price = centre[s] - off if side == "B" else centre[s] + off
                m = feed.add(s, side, 100 * rng.randrange(1, 6), price)
                refs.append(m.order_ref)
                info[m.order_ref] = (s, side, price, m.shares)
            elif r < 0.7:
                ref = refs.pop(rng.randrange(len(refs)))
                m = Feed.delete(ref)
                del info[ref]
            elif r < 0.95:
                side = rng.choice("BS")
                same = [x for x in refs if info[x][1] == side]
                if not same:
                    continue
                best = max(same, key=lambda x: info[x][2]) if side == "B" else min(same, key=lambda x: info[x][2])
                sym, sd, price, qty = info[best]
                take = min(qty, 100 * rng.randrange(1, 4))
                m = Feed.execute(best, take, rng.randrange(1, 10**9))
                if take == qty:
                    refs.remove(best)
                    del info[best]
                else:
                    info[best] = (sym, sd, price, qty - take)
            else:
                ref = refs.pop(rng.randrange(len(refs)))
                sym, side, price, qty = info.pop(ref)
                new = feed.ref()
                price += tick if side == "S" else -tick
                m = itch.OrderReplace(sym, 0, 0, ref, new, qty, price)
                refs.append(new)
                info[new] = (sym, side, price, qty)
            msgs.append(m)
        if msgs:
            feed_settled(md(feed.packet(*msgs), now), now)
        if venue.orders and rng.random() < 0.05:
            token = sorted(venue.orders)[rng.randrange(len(venue.orders))]
            qty = min(venue.orders[token]["qty"], 100)
            feed_settled(venue.fill(token, qty, now), now)
        if now >= next_clock:
            feed_one(ClockSample(now, True))
            next_clock += S
        if now >= next_timer:
            feed_settled(Timer(now), now)
            next_timer += 100 * MS
    return events, actions, engine
