"""Background order flow: seeded latent prices plus noise, informed and liquidity-providing traders.

Owns the latent price paths (log-normal steps; a pair's follower loads on its leader's shocks with
the configured correlation; options are Black-Scholes on the latent underlying) and the agents
that trade around them. Sans-io: time arrives as seconds since the session start and randomness
comes from one `random.Random(seed)`; it never reads a clock. Must not know about the wire.

Agents (owners start with "~" so they never collide with SoupBinTCP usernames):
- "~LPi"   competing liquidity providers: one bid and one ask per instrument, (half_spread + i)
           ticks around the CURRENT latent price, refreshed at Poisson times.
- "~NOISE" Poisson noise traders: marketable IOC at the touch or passive day limits near it,
           random side, with a bounded number of resting passive orders per instrument.
- "~INFO"  informed traders: at Poisson times they look `informed_horizon` seconds AHEAD on the
           latent path and take the touch when it is mispriced by at least `informed_edge` ticks,
           so liquidity at the current price is adversely selected.
"""
from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from typing import Callable

from mm_core.ticks import TickTable
from mm_core.venue import matching as m
from mm_core.venue.config import VenueConfig

TRADING_YEAR_S = 252 * 6.5 * 3600     # annualised volatility is per this many trading seconds
NOISE_FIRMS = ("NZ01", "NZ02", "NZ03", "NZ04")


@dataclass(frozen=True, slots=True)
class Enter:
    owner: str
    token: str
    symbol: str
    side: str
    shares: int
    price: int
    tif: int
    firm: str


@dataclass(frozen=True, slots=True)
class Cancel:
    owner: str
    token: str


@dataclass(frozen=True, slots=True)
class Replace:
    owner: str
    token: str
    new_token: str
    shares: int
    price: int


Command = Enter | Cancel | Replace
Bbo = Callable[[str], tuple[int | None, int | None]]


def apply(engine: m.MatchingEngine, command: Command) -> list[m.Event]:
    """Run one flow command through the matching engine."""
    if isinstance(command, Enter):
        return engine.enter(command.owner, command.token, command.symbol, command.side,
                            command.shares, command.price, command.tif, command.firm)
    if isinstance(command, Replace):
        return engine.replace(command.owner, command.token, command.new_token, command.shares,
                              command.price)
    return engine.cancel(command.owner, command.token, 0)


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(spot: float, strike: float, years: float, vol: float, right: str) -> float:
    """European option value with zero rates and dividends (prices in any one unit)."""
    if years <= 0 or vol <= 0:
        return max(spot - strike, 0.0) if right == "C" else max(strike - spot, 0.0)
    d1 = (math.log(spot / strike) + 0.5 * vol * vol * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    if right == "C":
        return spot * norm_cdf(d1) - strike * norm_cdf(d2)
    return strike * norm_cdf(-d2) - spot * norm_cdf(-d1)


class LatentPaths:
    """Latent prices (float price4) of every symbol on a grid of `step` seconds, grown lazily."""

    def __init__(self, config: VenueConfig, rng: random.Random) -> None:
        self._rng = rng
        self._step = config.flow.latent_step
        self._scale = {s.name: s.volatility * math.sqrt(self._step / TRADING_YEAR_S)
                       for s in config.symbols}
        self._leader = {p.b: (p.a, p.correlation) for p in config.pairs}
        # Leaders first so a follower's step can use its leader's shock of the same step.
        self._order = sorted(self._scale, key=lambda name: name in self._leader)
        self._log = {s.name: [math.log(s.reference_price)] for s in config.symbols}
        self._options = {o.name: o for o in config.options}
        self._base = 0          # grid index of element 0 of each list (old steps are trimmed)

    def _grow(self, index: int) -> None:
        while self._base + len(self._log[self._order[0]]) <= index:
            shocks: dict[str, float] = {}
            for name in self._order:
                z = self._rng.gauss(0.0, 1.0)
                if name in self._leader:
                    leader, rho = self._leader[name]
                    z = rho * shocks[leader] + math.sqrt(1.0 - rho * rho) * z
                shocks[name] = z
                path = self._log[name]
                path.append(path[-1] + self._scale[name] * z)

    def trim(self, before_s: float) -> None:
        """Forget grid points before a time nobody will ask about again."""
        drop = min(int(before_s / self._step) - self._base - 1, len(self._log[self._order[0]]) - 1)
        if drop > 1024:
            for path in self._log.values():
                del path[:drop]
            self._base += drop

    def price(self, name: str, t_s: float) -> float:
        """Latent price (float price4) of a symbol or option at time t_s."""
        option = self._options.get(name)
        if option is not None:
            spot = self.price(option.underlying, t_s)
            years = (option.expiry_days - t_s / 86400.0) / 365.0
            return black_scholes(spot, option.strike, years, option.implied_vol, option.right)
        index = max(int(t_s / self._step), self._base)
        self._grow(index)
        return math.exp(self._log[name][index - self._base])


class BackgroundFlow:
    """The agents. Call `next_due()`, then `fire(bbo)` for each due action, then `on_events`."""

    def __init__(self, config: VenueConfig, seed: int) -> None:
        self._rng = random.Random(seed)
        self._flow = config.flow
        self.paths = LatentPaths(config, random.Random(self._rng.getrandbits(64)))
        self._ticks = {x.name: TickTable(x.half_penny) for x in config.listings()}
        self._queue: list[tuple[float, int, str, str, int]] = []   # (time, n, agent, symbol, i)
        self._n = 0
        self._tokens: dict[str, int] = {}
        # token -> [owner, symbol, side, remaining, price] for every live flow order we know of
        self._live: dict[str, list] = {}
        self._quotes: dict[tuple[int, str, str], str] = {}         # (lp, symbol, side) -> token
        self._passive: dict[str, list[str]] = {name: [] for name in self._ticks}
        self.now = 0.0
        for name in self._ticks:
            for lp in range(self._flow.lp_count):
                self._schedule(0.0, "lp", name, lp, 0.0, first=True)
            self._schedule(0.0, "noise", name, 0, self._flow.noise_rate)
            self._schedule(0.0, "informed", name, 0, self._flow.informed_rate)

    # ----------------------------------------------------------------------- scheduling
    def _schedule(self, after: float, agent: str, symbol: str, index: int, rate: float,
                  first: bool = False) -> None:
        if agent == "lp":   # LPs quote at once, then refresh at Poisson times
            delay = 0.0 if first else self._rng.expovariate(1.0 / self._flow.lp_refresh)
        elif rate <= 0:
            return
        else:
            delay = self._rng.expovariate(rate)
        self._n += 1
        heapq.heappush(self._queue, (after + delay, self._n, agent, symbol, index))

    def next_due(self) -> float:
        """Time (seconds from session start) of the next action; inf when nothing is scheduled."""
        return self._queue[0][0] if self._queue else math.inf

    def fire(self, bbo: Bbo) -> list[Command]:
        """Pop the earliest action and return the commands it produces (maybe none)."""
        t, _, agent, symbol, index = heapq.heappop(self._queue)
        self.now = t
        self.paths.trim(t)
        if agent == "lp":
            self._schedule(t, "lp", symbol, index, 0.0)
            return self._lp(t, symbol, index)
        if agent == "noise":
            self._schedule(t, "noise", symbol, 0, self._flow.noise_rate)
            return self._noise(t, symbol, bbo(symbol))
        self._schedule(t, "informed", symbol, 0, self._flow.informed_rate)
        return self._informed(t, symbol, bbo(symbol))

    def on_events(self, events: list[m.Event]) -> None:
        """Keep the agents' view of their own orders in step with the engine."""
        for ev in events:
            if isinstance(ev, (m.Executed, m.Canceled)):
                live = self._live.get(ev.token)
                if live is not None and live[0] == ev.owner:
                    live[3] -= ev.shares
                    if live[3] <= 0:
                        del self._live[ev.token]
            elif isinstance(ev, (m.Rejected, m.Ignored)) and ev.token in self._live:
                del self._live[ev.token]

    # ----------------------------------------------------------------------- agents
    def _token(self, owner: str) -> str:
        n = self._tokens.get(owner, 0) + 1
        self._tokens[owner] = n
        return f"{owner[1:4]}{n}"

    def _size(self) -> int:
        return self._flow.lot * self._rng.randint(1, 5)

    def _enter(self, owner: str, symbol: str, side: str, shares: int, price: int, tif: int,
               firm: str) -> Enter:
        token = self._token(owner)
        if tif != m.IOC:
            self._live[token] = [owner, symbol, side, shares, price]
        return Enter(owner, token, symbol, side, shares, price, tif, firm)

    def _lp(self, t: float, symbol: str, lp: int) -> list[Command]:
        ticks = self._ticks[symbol]
        latent = self.paths.price(symbol, t)
        offset = (self._flow.lp_half_spread + lp) * ticks.tick_at(max(int(latent), 1))
        owner, size = f"~LP{lp}", self._flow.lp_size
        targets = {"B": ticks.round_down(max(latent - offset, 1.0)),
                   "S": ticks.round_up(latent + offset)}
        commands: list[Command] = []
        ask = self._live.get(self._quotes.get((lp, symbol, "S"), ""))
        # Move the side that gets out of the way first, so the LP never trades with itself.
        sides = ("S", "B") if ask is not None and targets["B"] >= ask[4] else ("B", "S")
        for side in sides:
            price = targets[side]
            token = self._quotes.get((lp, symbol, side))
            live = self._live.get(token) if token else None
            if live is None:
                order = self._enter(owner, symbol, side, size, price, m.DAY, f"LP{lp:02d}")
                self._quotes[(lp, symbol, side)] = order.token
                commands.append(order)
            elif live[3] < size // 2 or live[4] != price:   # worn down or stale: move it
                new = self._token(owner)
                del self._live[token]
                self._live[new] = [owner, symbol, side, size, price]
                self._quotes[(lp, symbol, side)] = new
                commands.append(Replace(owner, token, new, size, price))
        return commands

    def _noise(self, t: float, symbol: str, bbo: tuple[int | None, int | None]) -> list[Command]:
        ticks = self._ticks[symbol]
        latent = self.paths.price(symbol, t)
        side = "B" if self._rng.random() < 0.5 else "S"
        firm = self._rng.choice(NOISE_FIRMS)
        bid, ask = bbo
        tick = ticks.tick_at(max(int(latent), 1))
        if self._rng.random() < self._flow.noise_marketable:
            touch = ask if side == "B" else bid
            if touch is None:   # empty contra side: cross the latent price by a few ticks
                touch = (ticks.round_up(latent + 3 * tick) if side == "B"
                         else ticks.round_down(max(latent - 3 * tick, 1.0)))
            return [self._enter("~NOISE", symbol, side, self._size(), touch, m.IOC, firm)]
        own = bid if side == "B" else ask
        away = self._rng.randint(0, 3) * tick
        if own is None:
            own = ticks.round_down(latent - tick) if side == "B" else ticks.round_up(latent + tick)
        price = own - away if side == "B" else own + away
        price = ticks.round_down(price) if side == "B" else ticks.round_up(price)
        if price <= 0:
            return []
        commands: list[Command] = []
        resting = [tok for tok in self._passive[symbol] if tok in self._live]
        while len(resting) >= self._flow.noise_max_resting:
            oldest = resting.pop(0)
            del self._live[oldest]
            commands.append(Cancel("~NOISE", oldest))
        order = self._enter("~NOISE", symbol, side, self._size(), price, m.DAY, firm)
        resting.append(order.token)
        self._passive[symbol] = resting
        commands.append(order)
        return commands

    def _informed(self, t: float, symbol: str, bbo: tuple[int | None, int | None]) -> list[Command]:
        ticks = self._ticks[symbol]
        future = self.paths.price(symbol, t + self._flow.informed_horizon)
        bid, ask = bbo
        edge = self._flow.informed_edge * ticks.tick_at(max(int(future), 1))
        if ask is not None and future - ask >= edge:
            return [self._enter("~INFO", symbol, "B", self._size(), ask, m.IOC, "INFO")]
        if bid is not None and bid - future >= edge:
            return [self._enter("~INFO", symbol, "S", self._size(), bid, m.IOC, "INFO")]
        return []
