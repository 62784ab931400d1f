"""Per source address bounds on connections that have not logged in yet, so that a client cannot
reconnect without limit within each login deadline: at most `max_pending` such connections at
once, and a cool-off (new connections refused) once `failures` connections ended without a login
within `window` seconds. A connection that logs in never counts as a failure.

Owns the bookkeeping only: time comes in as monotonic seconds, the caller says how many of an
address's connections are waiting for a login, closes what is refused and logs what this says
to log. Must not know about sockets or SoupBinTCP.

The state is bounded: at most `max_addresses` addresses are tracked at once. When a flood from
more addresses than that fills the table, a new address's failures are counted (untracked) but
not held against it until entries expire: memory stays bounded, and the per-address bound on
connections waiting for a login still holds for every address.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field

REPORT_INTERVAL = 1.0      # s: at most one log line of refusals per address (the rest counted)
MAX_ADDRESSES = 65_536     # addresses tracked at once (~0.5 KiB each at most)


@dataclass(slots=True)
class _Address:
    failures: collections.deque[float] = field(default_factory=collections.deque)
    cooloff_until: float = float("-inf")
    unreported: int = 0                  # refusals not in a log line yet
    reported_at: float = float("-inf")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A connection refused: why, and how many refusals of that address to log now (this one
    and those held back since the last line; 0: hold it back, a line went out < 1 s ago)."""

    why: str
    report: int


class LoginThrottle:
    """The bounds of one venue; state per source address, forgotten once it expires."""

    def __init__(self, max_pending: int, failures: int, window: float, cooloff: float,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        self.max_pending = max_pending
        self.failures = failures
        self.window = window
        self.cooloff = cooloff
        self.max_addresses = max_addresses
        self.refused = 0                 # connections refused so far (every address)
        self.untracked = 0               # failures and refusals of addresses the full table left out
        self._untracked_unreported = 0
        self._untracked_reported_at = float("-inf")
        self._addresses: dict[str, _Address] = {}

    def _state(self, address: str) -> _Address | None:
        """The address's state, made when the table has room; None (counted) when it is full."""
        state = self._addresses.get(address)
        if state is None:
            if len(self._addresses) >= self.max_addresses:
                self.untracked += 1
                self._untracked_unreported += 1
                return None
            state = self._addresses[address] = _Address()
        return state

    def admit(self, address: str, pending: int, now: float) -> Refusal | None:
        """None when a new connection from `address` (which has `pending` connections not
        logged in yet) may wait for its login; else the Refusal, counted."""
        state = self._addresses.get(address)
        if state is not None and now < state.cooloff_until:
            why = (f"cooling off for {state.cooloff_until - now:.1f} s more after "
                   f"{self.failures} connections ended without a login within {self.window:g} s")
        elif pending >= self.max_pending:
            why = f"{pending} connections from it are not logged in yet (at most {self.max_pending})"
        else:
            return None
        self.refused += 1
        state = state or self._state(address)
        if state is None:
            return Refusal(why, 0)       # named in the untracked count's line (untracked_report)
        state.unreported += 1
        if now - state.reported_at < REPORT_INTERVAL:
            return Refusal(why, 0)
        report, state.unreported, state.reported_at = state.unreported, 0, now
        return Refusal(why, report)

    def failed(self, address: str, now: float) -> bool:
        """A connection from `address` ended without a login; True when that starts a cool-off."""
        state = self._state(address)
        if state is None:
            return False
        state.failures.append(now)
        self._expire(state, now)
        if len(state.failures) < self.failures or now < state.cooloff_until:
            return False
        state.cooloff_until = now + self.cooloff
        return True

    def prune(self, now: float) -> dict[str, int]:
        """Refusals held back for REPORT_INTERVAL s, by address, to log now; and forget the
        addresses with no failure in the window, no cool-off running and nothing held back
        (the state stays bounded)."""
        held: dict[str, int] = {}
        for address, state in list(self._addresses.items()):
            self._expire(state, now)
            quiet = now - state.reported_at >= REPORT_INTERVAL
            if state.unreported and quiet:
                held[address] = state.unreported
                state.unreported, state.reported_at = 0, now
            elif quiet and not state.failures and now >= state.cooloff_until:
                del self._addresses[address]
        return held

    def untracked_report(self, now: float, final: bool = False) -> int:
        """Failures and refusals of untracked addresses to log now (at most once a second, or
        all of them when `final`); 0: none, or a line went out less than a second ago."""
        if not self._untracked_unreported or (not final and now - self._untracked_reported_at < REPORT_INTERVAL):
            return 0
        count, self._untracked_unreported, self._untracked_reported_at = self._untracked_unreported, 0, now
        return count

    def unreported(self) -> dict[str, int]:
        """Refusals not logged yet, by address (at the end of the session); cleared."""
        held = {a: s.unreported for a, s in self._addresses.items() if s.unreported}
        for address in held:
            self._addresses[address].unreported = 0
        return held

    def _expire(self, state: _Address, now: float) -> None:
        while state.failures and now - state.failures[0] > self.window:
            state.failures.popleft()
