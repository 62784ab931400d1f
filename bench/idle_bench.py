"""How idle time before a packet slows the engine's decision on it (the wire-to-wire gap explained).

A live session's market-data packets come milliseconds apart, and the runner spins (busy-poll) or
sleeps (epoll wait) in between. The same order-sending packets that the engine decides in ~40 us
back to back take several times that live. This benchmark replays one seeded session (the engine
bench's: tests.mm_core.wire.simulate) hot, and again with a treatment before each packet that sent
orders in the recording: a pure-Python spin (touching almost no memory), the runner's busy-poll
wait (its C spinner on a UDP socket, audit.fastcap), or a sleep, for 0.1 to 10 ms; and, as the bound of what warming the code could give back, a shadow engine fed the same
packet right after a 10 ms spin (same code paths, its own copy of the data); and the runner's own
warmer (mm_core.warmer: a shadow on a scripted market, stepped every 100 us to 1 ms during 10 ms of
busy-poll wait). Every other event is replayed untimed and with no gap, so each timed packet meets
its recorded state.
"""
from __future__ import annotations

import time

from audit.capture import TimestampedUdpSocket
from audit.fastcap import SpinReader
from mm_core.events import MarketData, SendOrder
from mm_core.warmer import Warmer
from tests.mm_core.wire import make_engine, simulate

_clock = time.perf_counter_ns


def _spin(ns: int) -> None:
    end = _clock() + ns
    x = 0
    while _clock() < end:
        x += 1


class _BusyPoll:
    """The runner's idle wait in busy-poll mode: its C spinner (audit.fastcap: recvmsg that finds
    nothing, a zero-timeout poll every few reads, the interpreter lock released) on a UDP socket."""

    def __init__(self) -> None:
        self.sock = TimestampedUdpSocket.bound()
        self.spin = SpinReader(self.sock)

    def __call__(self, ns: int, warmer: Warmer | None = None, every_ns: int = 0) -> None:
        """Idle for ns; with a warmer, one shadow step every every_ns as the runner does."""
        now = time.monotonic_ns()
        end, next_warm = now + ns, now
        while now < end:
            self.spin.wait(min(end, next_warm) if warmer is not None else end)
            now = time.monotonic_ns()
            if warmer is not None and now >= next_warm:
                warmer.step()
                next_warm = now + every_ns

    def close(self) -> None:
        self.sock.close()


def _order_packets(events) -> set[int]:
    engine = make_engine()
    return {i for i, ev in enumerate(events)
            if any(type(a) is SendOrder for a in engine.on_event(ev)) and type(ev) is MarketData}


def _timed(events, wanted: set[int], before, shadow: bool = False, warm_ns: int = 0) -> list[int]:
    engine, twin = make_engine(), make_engine() if shadow else None
    if warm_ns:     # the runner's warmer (mm_core.warmer), stepped during the treatment
        warmer = Warmer(engine)
        idle = before
        before = lambda: idle(warmer, warm_ns)      # noqa: E731
    on_event = engine.on_event
    out = []
    for i, ev in enumerate(events):
        if i in wanted:
            before()
            if twin is not None:
                twin.on_event(ev)
            t0 = _clock()
            on_event(ev)
            out.append(_clock() - t0)
        else:
            on_event(ev)
            if twin is not None:
                twin.on_event(ev)
    return out


def _pct(values: list[int], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def main(quick: bool) -> str:
    events = simulate(1, 5_000 if quick else 20_000)[0]
    wanted = _order_packets(events)
    busy = _BusyPoll()
    ms = 1_000_000
    cases = [("hot (no gap)", lambda: None, False),
             ("pure-Python spin 0.1 ms", lambda: _spin(ms // 10), False),
             ("pure-Python spin 1 ms", lambda: _spin(ms), False),
             ("pure-Python spin 10 ms", lambda: _spin(10 * ms), False),
             ("busy-poll wait (the C spinner) 10 ms", lambda: busy(10 * ms), False),
             ("sleep 10 ms", lambda: time.sleep(0.01), False),
             ("pure-Python spin 10 ms, then a shadow engine decides the same packet", lambda: _spin(10 * ms), True)]
    # the runner's warmer: busy-poll waits for 10 ms with a scripted shadow step every interval
    warmed = [(f"busy-poll wait 10 ms, scripted shadow (mm_core.warmer) stepped every {us} us",
               lambda warmer, every: busy(10 * ms, warmer, every), us * 1000) for us in (100, 250, 500, 1000)]
    rows = []
    try:
        for name, before, shadow in cases:
            rows.append((name, _timed(events, wanted, before, shadow)))
        for name, before, every in warmed:
            rows.append((name, _timed(events, wanted, before, warm_ns=every)))
    finally:
        busy.close()
    hot = _pct(rows[0][1], .5)
    lines = [
        "## Idle time before a packet: the engine's decision on the packets that send orders",
        "",
        f"Session: seed 1, {len(events):,} events; {len(wanted)} market-data packets sent orders in "
        "the recording, each timed after the treatment named (every other event replayed untimed, "
        "no gap). A live session's packets come about 1-10 ms apart (the wire bench's sessions: ~90 "
        "inputs/s).",
        "",
        "| before each order-sending packet | packets | p50 us | p90 us | p50 vs hot |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, v in rows:
        lines.append(f"| {name} | {len(v)} | {_pct(v, .5):.1f} | {_pct(v, .9):.1f} | "
                     f"{_pct(v, .5) / hot:.2f}x |")
    spin10 = _pct(rows[3][1], .5)
    shadow = _pct(rows[len(cases) - 1][1], .5)
    lines += ["", f"A 10 ms spin that touches almost no memory makes the same decision {spin10 / hot:.1f}x "
              f"slower than back to back; a shadow engine running the same code on the same packet "
              f"just before gives back {(spin10 - shadow) / max(spin10 - hot, 1e-9):.0%} of that (the "
              "code warm, the real engine's own data still cold). On this shared VM the caches lose "
              "the engine's working set within milliseconds whatever the thread does meanwhile, so "
              "a live decision runs cold: the wire-to-wire p50 is set by how much code and data the "
              "order path touches, not by the loop around it."]
    busy10 = _pct(rows[4][1], .5)
    lines += ["", "The runner's warmer (the last rows: busy-poll waits with a scripted shadow engine, "
              "its own book and orders, stepped one event at a time) gives back " + ", ".join(
                  f"{(busy10 - _pct(v, .5)) / max(busy10 - hot, 1e-9):.0%}" for _, v in rows[len(cases):])
              + " of what 10 ms of plain busy-poll wait cost, stepped every "
              + ", ".join(f"{every // 1000}" for _, _, every in warmed) + " us."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(False))
