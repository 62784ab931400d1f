"""Quote guard: detects toxic flow and says which of our quote sides are at risk, per symbol.

Owns: four toxicity inputs — one-sided aggression in recent prints, a spike in our fill rate on
one side, VPIN over equal-volume buckets, and negative markouts of our own fills — and the
per-side cool-down after a trip. Must not know about orders or wire formats: the engine turns a
trip into the pre-encoded cancels the OMS keeps. Times are integer nanoseconds given as input.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["GuardError", "GuardParams", "Vpin", "SymbolGuard", "Trip"]

# Reason bits, journaled with a trip.
AGGRESSION = 1
FILL_SPIKE = 2
VPIN = 4
MARKOUT = 8
REASON_NAMES = {AGGRESSION: "aggression", FILL_SPIKE: "fill-spike", VPIN: "vpin", MARKOUT: "markout"}


class GuardError(ValueError):
    """A guard parameter out of range."""


_DAY_NS = 86_400 * 10**9
_WINDOW_MAX = 100_000


@dataclass(frozen=True, slots=True)
class GuardParams:
    prints_window: int = 20            # recent prints for the aggression ratio
    aggression_threshold: float = 0.8  # |buy − sell| / (buy + sell) over the window
    aggression_min_volume: int = 500   # shares in the window before the ratio counts
    fill_window_ns: int = 1_000_000_000
    fill_spike_count: int = 4          # our fills on one side inside the window
    vpin_bucket_volume: int = 1_000
    vpin_buckets: int = 10
    vpin_threshold: float = 0.7
    markout_window: int = 5            # our recent fills per side
    markout_threshold: float = 1.0     # mean markout per share (price4) below −threshold trips
    cooldown_ns: int = 2_000_000_000

    def __post_init__(self) -> None:
        if self.prints_window < 1 or self.vpin_buckets < 1 or self.vpin_bucket_volume < 1:
            raise GuardError("guard windows and bucket sizes must be >= 1")
        if self.markout_window < 1 or self.aggression_min_volume < 1:
            # 0 would divide by zero: an empty markout window's mean, an empty print window's ratio
            raise GuardError("markout_window and aggression_min_volume must be >= 1")
        if not 0.0 < self.aggression_threshold <= 1.0 or not 0.0 < self.vpin_threshold <= 1.0:
            raise GuardError("guard thresholds must be in (0, 1]")
        # a spike of 0 fills, an empty window or a negative cool-down would trip on nothing or never
        # hold a side off; a negative markout threshold would trip on profitable fills
        # the kernel preallocates each window per symbol and adds the periods to int64 clock times
        for name, ok, allowed in (("fill_spike_count", self.fill_spike_count >= 1, ">= 1"),
                                  ("fill_window_ns", 0 < self.fill_window_ns <= _DAY_NS, "within 1..86400e9 (a day)"),
                                  ("cooldown_ns", 0 <= self.cooldown_ns <= _DAY_NS, "within 0..86400e9 (a day)"),
                                  ("markout_threshold", self.markout_threshold >= 0.0, ">= 0"),
                                  ("prints_window", self.prints_window <= _WINDOW_MAX, f"<= {_WINDOW_MAX}"),
                                  ("vpin_buckets", self.vpin_buckets <= _WINDOW_MAX, f"<= {_WINDOW_MAX}"),
                                  ("markout_window", self.markout_window <= _WINDOW_MAX, f"<= {_WINDOW_MAX}")):
            if not ok:
                raise GuardError(f"{name} must be {allowed}, not {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class Trip:
    """The guard fired: which sides to pull, why (reason bits), and the values that decided."""

    symbol_id: int
    bid: bool
    ask: bool
    reasons: int
    aggression: float
    vpin: float

    @property
    def reason_text(self) -> str:
        return "+".join(name for bit, name in REASON_NAMES.items() if self.reasons & bit)


class Vpin:
    """VPIN over equal-volume buckets with exact aggressor sides (ITCH tells us the resting side,
    so no bulk volume classification is needed); trades straddling a bucket edge are split."""

    __slots__ = ("bucket_volume", "n", "buy", "sell", "imbalances", "net", "value", "direction",
                 "completed")

    def __init__(self, bucket_volume: int, n_buckets: int) -> None:
        self.bucket_volume = bucket_volume
        self.n = n_buckets
        self.buy = 0
        self.sell = 0
        self.imbalances: deque[int] = deque(maxlen=n_buckets)   # |V^S − V^B| per full bucket
        self.net: deque[int] = deque(maxlen=n_buckets)          # V^B − V^S per full bucket
        # Σ|V^S − V^B| / (n·V) over the full buckets (0 until n are full) and the sign of the
        # buckets' net flow; both recomputed only when a bucket completes
        self.value = 0.0
        self.direction = 0
        self.completed = 0          # buckets filled so far (a broken trade can leave only the open one)

    def add(self, aggressor_buys: bool, qty: int) -> None:
        while qty > 0:
            room = self.bucket_volume - self.buy - self.sell
            take = qty if qty < room else room
            if aggressor_buys:
                self.buy += take
            else:
                self.sell += take
            qty -= take
            if take == room:
                self.imbalances.append(abs(self.buy - self.sell))
                self.net.append(self.buy - self.sell)
                self.buy = self.sell = 0
                self.completed += 1
                if len(self.imbalances) == self.n:
                    self.value = sum(self.imbalances) / (self.n * self.bucket_volume)
                net = sum(self.net)
                self.direction = (net > 0) - (net < 0)


def _mean(values) -> float:
    """The plain left-to-right float mean from the oldest, as the compiled kernel computes it:
    sum() of floats is compensated from Python 3.12 on, and would break the lockstep there."""
    total = 0.0
    for x in values:
        total += x
    return total / len(values)


class SymbolGuard:
    """The guard state of one symbol."""

    def __init__(self, symbol_id: int, params: GuardParams) -> None:
        self.symbol_id = symbol_id
        self.p = params
        self.prints: deque[tuple[bool, int]] = deque()
        self.print_index: deque[int] = deque()   # each window print's number among this symbol's
        self.printed = 0                         # prints seen (a break leaves a gap in the window)
        self.buy_vol = 0
        self.sell_vol = 0
        self.vpin = Vpin(params.vpin_bucket_volume, params.vpin_buckets)
        self.fills = (deque(), deque())          # our fill times: [0] bid side, [1] ask side
        self.markouts = (deque(maxlen=params.markout_window), deque(maxlen=params.markout_window))
        self.bid_until = 0                       # cool-down end per side (ns)
        self.ask_until = 0
        self.trips = 0

    def __setstate__(self, state: dict) -> None:
        if "print_index" not in state:          # pickled before print numbers: the window is
            n = len(state["prints"])            # read as gap-free, as that code read it
            state = {**state, "print_index": deque(range(n)), "printed": n}
        self.__dict__.update(state)

    # --- inputs ------------------------------------------------------------------------

    def on_print(self, aggressor_buys: bool, qty: int) -> None:
        prints = self.prints
        prints.append((aggressor_buys, qty))
        self.print_index.append(self.printed)
        self.printed += 1
        if aggressor_buys:
            self.buy_vol += qty
        else:
            self.sell_vol += qty
        if len(prints) > self.p.prints_window:
            self.print_index.popleft()
            old_buy, old_qty = prints.popleft()
            if old_buy:
                self.buy_vol -= old_qty
            else:
                self.sell_vol -= old_qty
        self.vpin.add(aggressor_buys, qty)

    def reverse_print(self, aggressor_buys: bool, qty: int, later: int, in_open_bucket: bool) -> tuple[bool, bool]:
        """Take a broken trade back out: from the aggression window when it is still among the
        recent prints (`later` prints on this symbol came after it, broken ones included: those
        left gaps in the window, so the print is found by its number, not by its distance from
        the newest), and from VPIN when it still sits whole in the open bucket (closed buckets
        are history). Returns (window, vpin) done."""
        prints, index = self.prints, self.print_index
        number = self.printed - 1 - later
        j = len(index) - 1
        while j >= 0 and index[j] > number:
            j -= 1
        window = j >= 0 and index[j] == number and prints[j] == (aggressor_buys, qty)
        if window:
            del prints[j]
            del index[j]
            if aggressor_buys:
                self.buy_vol -= qty
            else:
                self.sell_vol -= qty
        vpin = in_open_bucket
        if vpin:
            if aggressor_buys:
                self.vpin.buy -= qty
            else:
                self.vpin.sell -= qty
        return window, vpin

    def on_own_fill(self, our_side_is_bid: bool, now_ns: int) -> None:
        self.fills[0 if our_side_is_bid else 1].append(now_ns)

    def on_markout(self, our_side_is_bid: bool, markout_per_share: float) -> None:
        """A matured markout of one of our fills: + good for us, − adverse."""
        self.markouts[0 if our_side_is_bid else 1].append(markout_per_share)

    # --- decisions ----------------------------------------------------------------------

    def aggression(self) -> float:
        """(buy − sell) / (buy + sell) over recent prints; 0 below the minimum volume."""
        total = self.buy_vol + self.sell_vol
        if total < self.p.aggression_min_volume:
            return 0.0
        return (self.buy_vol - self.sell_vol) / total

    def toxicity(self) -> float:
        """A 0..1 score for spread widening: the larger of |aggression| and VPIN."""
        a = abs(self.aggression())
        v = self.vpin.value
        return a if a > v else v

    def evaluate(self, now_ns: int) -> Trip | None:
        """Check every input; a newly at-risk side starts its cool-down and is returned."""
        p = self.p
        bid = ask = False
        reasons = 0
        agg = self.aggression()
        if agg >= p.aggression_threshold:        # buyers lifting offers: our ask gets run over
            ask = True
            reasons |= AGGRESSION
        elif agg <= -p.aggression_threshold:
            bid = True
            reasons |= AGGRESSION
        horizon = now_ns - p.fill_window_ns
        for i, times in enumerate(self.fills):
            while times and times[0] < horizon:
                times.popleft()
            if len(times) >= p.fill_spike_count:
                reasons |= FILL_SPIKE
                if i == 0:
                    bid = True
                else:
                    ask = True
        v = self.vpin.value
        if v >= p.vpin_threshold:
            reasons |= VPIN
            d = self.vpin.direction
            if d >= 0:
                ask = True
            if d <= 0:
                bid = True
        for i, marks in enumerate(self.markouts):
            if len(marks) == marks.maxlen and _mean(marks) < -p.markout_threshold:
                reasons |= MARKOUT
                # Acted on: the side sits out its cool-down, then must earn fresh markouts. Kept,
                # the same losing fills would re-trip it for the rest of the day, since a side
                # that never quotes never gets the new fills that could clear them.
                marks.clear()
                if i == 0:
                    bid = True
                else:
                    ask = True
        new_bid = bid and self.bid_until <= now_ns
        new_ask = ask and self.ask_until <= now_ns
        if bid:
            self.bid_until = now_ns + p.cooldown_ns
        if ask:
            self.ask_until = now_ns + p.cooldown_ns
        if not (new_bid or new_ask):
            return None
        self.trips += 1
        return Trip(self.symbol_id, new_bid, new_ask, reasons, agg, v)

    def on_own_fill_evaluate(self, our_side_is_bid: bool, now_ns: int) -> Trip | None:
        """on_own_fill, then evaluate (fsig_own_fill_evaluate in one C call): the engine's fill
        lane asks the guard about our fill before the fill is booked."""
        self.on_own_fill(our_side_is_bid, now_ns)
        return self.evaluate(now_ns)

    def side_blocked(self, bid_side: bool, now_ns: int) -> bool:
        return (self.bid_until if bid_side else self.ask_until) > now_ns

    def state_items(self):
        return (list(self.prints), list(self.print_index), self.printed, self.buy_vol, self.sell_vol,
                self.vpin.buy, self.vpin.sell,
                self.vpin.completed,
                list(self.vpin.imbalances), list(self.vpin.net), [list(f) for f in self.fills],
                [list(m) for m in self.markouts], self.bid_until, self.ask_until, self.trips)
