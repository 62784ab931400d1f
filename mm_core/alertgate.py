"""Rate limits for the engine's alerts of a kind that a flood of bad input can repeat (unknown
market-data messages, another session's packets): the first of a kind in a window is alerted, the
rest in it only counted, and the next alert of the kind (or the timer, once the window passed)
names how many were held back. Pure and deterministic: time is the engine's event time. It owns
no input: the packets are journaled by the runner and counted by the engine either way."""
from __future__ import annotations

ALERT_WINDOW_NS = 1_000_000_000     # one alert of a kind per second, then one naming the rest


class AlertGate:
    """Per kind, [start of its window, alerts held back in it]."""

    def __init__(self, window_ns: int = ALERT_WINDOW_NS) -> None:
        if isinstance(window_ns, bool) or not isinstance(window_ns, int) or window_ns <= 0:
            raise ValueError(f"an alert window must be a positive int of ns, not {window_ns!r}")
        self.window_ns = window_ns
        self.kinds: dict[str, list[int]] = {}

    def admit(self, kind: str, now: int) -> int | None:
        """None when this alert of `kind` is held back (counted); else how many were held back
        since the last one that went out, which its text should name."""
        entry = self.kinds.get(kind)
        if entry is not None and now - entry[0] < self.window_ns:
            entry[1] += 1
            return None
        held = entry[1] if entry is not None else 0
        self.kinds[kind] = [now, 0]
        return held

    def due(self, now: int) -> list[tuple[str, int]]:
        """(kind, count held back) of each kind whose window passed with alerts held back, in kind
        order; their windows restart, so a flood still going on is named once a window."""
        out = []
        for kind in sorted(self.kinds):
            entry = self.kinds[kind]
            if entry[1] and now - entry[0] >= self.window_ns:
                out.append((kind, entry[1]))
                self.kinds[kind] = [now, 0]
        return out

    def state_items(self) -> list:
        return [(kind, *self.kinds[kind]) for kind in sorted(self.kinds)]
