"""Embedded venue benchmark: matching throughput against a naive matcher, and MoldUDP64 output.

1. Matching: one seeded, realistic order stream (limits around a moving mid, marketable IOCs,
   cancels, replaces; several owners and firms) through MatchingEngine and through the naive
   sorted-list ReferenceMatcher; both must emit identical events. Orders (commands) per second.
2. Market data: a SoupBinTCP client pipelines orders into a running Venue; a loopback receiver
   counts MoldUDP64 packets and ITCH messages until it has them all. Side by side: a bare Python
   UDP sender pushing packets of the same size to the same kind of receiver (the ceiling).
"""
from __future__ import annotations

import json
import os
import pathlib
import random
import socket
import subprocess
import sys
import tempfile
import time

from mm_core.protocol import ouch, soupbintcp
from mm_core.venue import matching as m
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.reference_matcher import ReferenceMatcher

ROOT = pathlib.Path(__file__).resolve().parent.parent

LISTINGS = [m.Listing("ACME", 1), m.Listing("BOLT", 2, half_penny=True)]
OWNERS = [("o1", "F1"), ("o2", "F2"), ("o3", "F3"), ("o4", "F1")]


def order_stream(n: int, seed: int = 1) -> list[tuple]:
    """Commands (kind, args...) with a realistic mix: 55% passive limits, 15% marketable IOC,
    22% cancels, 8% replaces; prices a few ticks around a random-walk mid."""
    rng = random.Random(seed)
    mid = {"ACME": 100_0000, "BOLT": 50_5000}
    tick = {"ACME": 100, "BOLT": 50}
    live: list[tuple[str, str]] = []
    issued = 0
    out = []
    for _ in range(n):
        symbol = rng.choice(("ACME", "BOLT"))
        mid[symbol] += rng.choice((-1, 0, 0, 1)) * tick[symbol]
        owner, firm = rng.choice(OWNERS)
        r = rng.random()
        if r < 0.70 or not live:
            issued += 1
            side = rng.choice("BS")
            if r < 0.15:      # marketable
                price = mid[symbol] + (3 if side == "B" else -3) * tick[symbol]
                tif = m.IOC
            else:
                away = rng.randint(1, 10) * tick[symbol]
                price = mid[symbol] - away if side == "B" else mid[symbol] + away
                tif = m.DAY
            token = f"T{issued}"
            out.append(("enter", owner, token, symbol, side, rng.randint(1, 5) * 100, price, tif,
                        firm))
            if tif == m.DAY:
                live.append((owner, token))
        elif r < 0.92:
            owner, token = live.pop(rng.randrange(len(live)))
            out.append(("cancel", owner, token, 0))
        else:
            owner, token = live.pop(rng.randrange(len(live)))
            issued += 1
            new = f"T{issued}"
            out.append(("replace", owner, token, new, rng.randint(1, 5) * 100,
                        mid[symbol] + rng.choice((-2, 2)) * tick[symbol]))
            live.append((owner, new))
    return out


def run_matcher(factory, stream, repeats: int = 3) -> tuple[float, int]:
    """Best of `repeats` runs on fresh matchers (the machine is shared): (seconds, events)."""
    best, events = float("inf"), 0
    for _ in range(repeats):
        seconds, events = _run_once(factory(), stream)
        best = min(best, seconds)
    return best, events


def _run_once(matcher, stream) -> tuple[float, int]:
    events = 0
    started = time.perf_counter()
    for cmd in stream:
        kind = cmd[0]
        if kind == "enter":
            events += len(matcher.enter(*cmd[1:]))
        elif kind == "cancel":
            events += len(matcher.cancel(*cmd[1:]))
        else:
            events += len(matcher.replace(*cmd[1:]))
    return time.perf_counter() - started, events


def matching_section(quick: bool) -> str:
    n = 20_000 if quick else 200_000
    stream = order_stream(n)
    fast_s, fast_events = run_matcher(lambda: m.MatchingEngine(LISTINGS), stream)
    ref_n = n if quick else 30_000     # the naive matcher is slow: a prefix of the same stream
    ref_s, ref_events = run_matcher(lambda: ReferenceMatcher(LISTINGS), stream[:ref_n], 1)
    check_s, check_events = run_matcher(lambda: m.MatchingEngine(LISTINGS), stream[:ref_n])
    if check_events != ref_events:
        raise AssertionError("engine and reference matcher disagree on the benchmark stream")
    engine = m.MatchingEngine(LISTINGS)
    _run_once(engine, stream)
    resting = len(engine.live_orders())
    rows = [
        ("MatchingEngine (price levels + FIFO dicts)", n, fast_s, fast_events),
        ("MatchingEngine, same prefix as reference", ref_n, check_s, check_events),
        ("ReferenceMatcher (naive sorted list)", ref_n, ref_s, ref_events),
    ]
    ref_rate = ref_n / ref_s
    lines = ["### Matching engine throughput", "",
             f"Order mix: 55% passive limits, 15% marketable IOC, 22% cancels, 8% replaces; "
             f"{resting} orders resting at the end of the full stream.", "",
             "| matcher | commands | seconds | commands/s | events | vs reference |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, count, secs, events in rows:
        lines.append(f"| {name} | {count:,} | {secs:.3f} | {count / secs:,.0f} | {events:,} | "
                     f"{(count / secs) / ref_rate:.1f}x |")
    return "\n".join(lines)


def _start_venue_process(itch_port: int, log_dir: str) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "mm_core.venue", "--duration", "600s",
                             "--itch-port", str(itch_port), "--log-dir", log_dir,
                             "--session", "BENCH00001"],
                            stdout=subprocess.PIPE, text=True, env=env)
    return proc, json.loads(proc.stdout.readline())


def _collect(rx: MoldReceiver, want: int, server: tuple[str, int], raw: list[bytes],
             timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(rx.messages) < want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"market data: {len(rx.messages)} of {want} messages")
        data = rx.receive(0.2)
        if data is None:
            rx.request_gap(server)
        elif rx.on_packet(data) is not None:
            rx.request_gap(server)
        else:
            raw.append(data)


def venue_section(quick: bool) -> str:
    """The venue runs in its own process (as in production), so the client and the receiver
    here do not share its interpreter lock."""
    orders = 5_000 if quick else 40_000
    with MoldReceiver() as rx, tempfile.TemporaryDirectory() as logs:
        proc, ready = _start_venue_process(rx.port, logs)
        try:
            server = (ready["host"], ready["rerequest_port"])
            with SoupClient(ready["host"], ready["ouch_port"], timeout=60.0) as client:
                client.login("MM01", "mmaudit", 1)
                start_of_day = client.sequenced(1)     # the venue has published its directory
                _collect(rx, 1, server, [], 5.0)
                base = len(rx.messages)
                packets: list[bytes] = []
                batch = b"".join(
                    soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.EnterOrder(
                        f"B{i}", "B", 100, "ACME", 50_0000 + (i % 400) * 100, 99999, "", "Y",
                        "P", "N", 0, "N", "R"))))
                    for i in range(orders))
                started = time.perf_counter()
                client.send_raw(batch)                 # pipelined: one AddOrder each
                _collect(rx, base + orders, server, packets, 120.0)
                elapsed = time.perf_counter() - started
                acks = client.sequenced(orders, 60.0)
                assert len(acks) == orders and start_of_day
        finally:
            proc.terminate()
            proc.wait(10)
    gaps = len(rx.gaps)
    # Side by side: the same packets blasted with bare sendto to a bare receiver.
    with MoldReceiver() as rx2:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx2.sock.setblocking(False)
        got = 0
        started = time.perf_counter()
        for packet in packets:
            sender.sendto(packet, ("127.0.0.1", rx2.port))
            try:
                while True:
                    rx2.sock.recv(65536)
                    got += 1
            except BlockingIOError:
                pass
        deadline = time.monotonic() + 5
        while got < len(packets) and time.monotonic() < deadline:
            try:
                rx2.sock.recv(65536)
                got += 1
            except BlockingIOError:
                time.sleep(0.0005)
        raw_s = time.perf_counter() - started
        sender.close()
    per_packet = orders / max(len(packets), 1)
    venue_mps, raw_mps = orders / elapsed, got * per_packet / raw_s
    lines = ["### Venue market data (OUCH in -> matching -> ITCH/MoldUDP64 out, loopback)", "",
             f"The venue runs as `python3 -m mm_core.venue`; one client pipelines {orders:,} Enter "
             f"Orders; the receiver re-requests any gap ({gaps} gaps seen). "
             f"{per_packet:.1f} ITCH messages per MoldUDP64 packet.", "",
             "| path | ITCH msgs | packets | seconds | msgs/s | packets/s | vs bare replay |",
             "|---|---:|---:|---:|---:|---:|---:|",
             f"| venue: OUCH decode, match, session log, OUCH ack, ITCH, MoldUDP64 | {orders:,} | "
             f"{len(packets):,} | {elapsed:.3f} | {venue_mps:,.0f} | {len(packets) / elapsed:,.0f} "
             f"| {venue_mps / raw_mps:.3f}x |",
             f"| bare Python sendto/recv of the same packets | {int(got * per_packet):,} | "
             f"{got:,} | {raw_s:.3f} | {raw_mps:,.0f} | {got / raw_s:,.0f} | 1.000x |"]
    return "\n".join(lines)


def main(quick: bool) -> str:
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    note = (f"Load average at start {load} on {os.cpu_count()} CPUs (a shared machine: absolute "
            f"numbers move with it; the ratios are measured side by side in the same run).")
    return "\n\n".join(["## Embedded venue", note, matching_section(quick), venue_section(quick)])


if __name__ == "__main__":
    print(main("--quick" in sys.argv))
