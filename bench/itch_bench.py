"""ITCH decode throughput of mm_core.protocol against itchfeed (and its C++ backend itchcpp when
installed) on the same bytes, plus ITCH encode, OUCH encode/decode and SoupBinTCP framing
against hand-written struct/bytes baselines. `main(quick)` returns a Markdown section.

The message mix is a seeded, realistic order-flow mix of A/D/U/E/X/P messages.
"""
from __future__ import annotations

import gc
import importlib
import os
import random
import struct
import time
from typing import Any, Callable, Iterable

from mm_core.protocol import itch, moldudp64, ouch, soupbintcp

MIX = (("A", 40), ("D", 34), ("U", 9), ("E", 8), ("X", 6), ("P", 3))   # % of messages by type
STOCKS = ("AAPL", "MSFT", "AMZN", "NVDA", "META", "GOOGL", "TSLA", "SPY")


# --- inputs ---------------------------------------------------------------------------------

def order_flow(n: int, seed: int = 5) -> list[itch.ItchMessage]:
    """n ITCH messages whose references, sizes and prices look like a real session."""
    rng = random.Random(seed)
    kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=n)
    live: list[int] = []
    next_ref, ts, match = 1, 34_200_000_000_000, 1
    out: list[itch.ItchMessage] = []
    for kind in kinds:
        ts += rng.randint(100, 20_000)
        locate = rng.randint(1, len(STOCKS))
        price = rng.randint(1_000_000, 5_000_000) // 100 * 100
        if kind == "A" or not live:
            live.append(next_ref)
            out.append(itch.AddOrder(locate, 0, ts, next_ref, rng.choice("BS"), rng.choice((100, 200, 500)),
                                     STOCKS[locate - 1], price))
            next_ref += 1
            continue
        ref = live[rng.randrange(len(live))]
        if kind == "D":
            live.remove(ref)
            out.append(itch.OrderDelete(locate, 0, ts, ref))
        elif kind == "U":
            live.remove(ref)
            live.append(next_ref)
            out.append(itch.OrderReplace(locate, 0, ts, ref, next_ref, 100, price))
            next_ref += 1
        elif kind == "E":
            out.append(itch.OrderExecuted(locate, 0, ts, ref, 100, match))
            match += 1
        elif kind == "X":
            out.append(itch.OrderCancel(locate, 0, ts, ref, 100))
        else:
            out.append(itch.Trade(locate, 0, ts, 0, "B", 100, STOCKS[locate - 1], price, match))
            match += 1
    return out


def ouch_outbound(n: int) -> list[bytes]:
    base = [
        ouch.Accepted(1, "T1", "B", 100, "AAPL", 1_000_000, 99_999, "FIRM", "Y", 7, "P", "N", 0, "N", "L", " "),
        ouch.Executed(2, "T1", 100, 1_000_000, "A", 9),
        ouch.Canceled(3, "T2", 100, "U"),
    ]
    wires = [ouch.encode(m) for m in base]
    return [wires[i % 3] for i in range(n)]


# --- timing ---------------------------------------------------------------------------------

def race(repeats: int, runs: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Fastest wall time of each run over `repeats` rounds. Rounds interleave the competitors so
    that load from other processes hits them alike; the garbage collector stays on, as in use."""
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            gc.collect()
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def drain(results: Iterable[Any]) -> None:
    for _ in results:
        pass


def load_itchfeed() -> tuple[Any, Any]:
    """(pure-Python itchfeed parser, itchcpp parser or None), both in this one process."""
    os.environ["ITCH_NO_CPP"] = "1"            # read once by itch._backend at import
    pure = importlib.import_module("itch.parser").MessageParser()
    try:
        native = importlib.import_module("itchcpp.parser").MessageParser()
    except ImportError:
        native = None
    return pure, native


def row(name: str, n: int, seconds: float, ours_rate: float | None = None, unit: str = "msg/s") -> str:
    rate = n / seconds
    ratio = f"{ours_rate / rate:.2f}x" if ours_rate else "1.00x (ours)"
    return f"| {name} | {rate:,.0f} {unit} | {seconds * 1e9 / n:,.0f} ns | {ratio} |"


# --- sections -------------------------------------------------------------------------------

def itch_section(n: int, repeats: int) -> list[str]:
    messages = order_flow(n)
    wires = [itch.encode(m) for m in messages]
    packets = moldudp64.pack_messages("BENCH", 1, wires)
    day_file = b"".join(b"\x00" + bytes([len(w)]) + w for w in wires)   # itchfeed's framing
    pure, native = load_itchfeed()

    # same answers first: a benchmark of disagreeing decoders means nothing
    sample = range(0, n, max(1, n // 500))
    for i in sample:
        theirs = pure.get_message_type(wires[i])
        assert theirs.timestamp == messages[i].timestamp and theirs.to_bytes() == wires[i]

    decode, encode = itch.decode, itch.encode
    get_pure = pure.get_message_type
    theirs_objects = [get_pure(w) for w in wires]
    runs: dict[str, Callable[[], Any]] = {
        "ours_one": lambda: drain(decode(w) for w in wires),
        "pure_one": lambda: drain(get_pure(w) for w in wires),
        "ours_bulk": lambda: drain(itch.decode_mold_packet(p) for p in packets),
        "pure_bulk": lambda: drain(pure.parse_stream(day_file)),
        "ours_enc": lambda: drain(encode(m) for m in messages),
        "pure_enc": lambda: drain(m.to_bytes() for m in theirs_objects),
    }
    if native is not None:
        get_native = native.get_message_type
        runs["native_one"] = lambda: drain(get_native(w) for w in wires)
        runs["native_bulk"] = lambda: drain(native.parse_stream(day_file))
    t = race(repeats, runs)
    ours_one, ours_bulk, ours_enc = n / t["ours_one"], n / t["ours_bulk"], n / t["ours_enc"]
    missing = "| itchcpp (C++ backend) | not installed | | |"
    lines = [
        f"### ITCH 5.0 decode, {n:,} messages ({', '.join(f'{k} {w}%' for k, w in MIX)})",
        "",
        "Ratio = our throughput / theirs (above 1 means we are faster). Ours returns frozen "
        "dataclasses with str fields and validated codes; itchfeed returns mutable objects with "
        "raw bytes fields.",
        "",
        "| decoder | throughput | per message | ours vs this |",
        "|---|---|---|---|",
        row("mm_core itch.decode, one message per call", n, t["ours_one"]),
        row("itchfeed (pure Python) get_message_type, one per call", n, t["pure_one"], ours_one),
        row("itchcpp (C++ backend) get_message_type, one per call", n, t["native_one"], ours_one)
        if native is not None else missing,
        row(f"mm_core itch.decode_mold_packet, {len(packets):,} MoldUDP64 packets", n, t["ours_bulk"]),
        row("itchfeed parse_stream (0x00+len framed buffer)", n, t["pure_bulk"], ours_bulk),
        row("itchcpp parse_stream (0x00+len framed buffer)", n, t["native_bulk"], ours_bulk)
        if native is not None else missing,
        "",
        "| encoder | throughput | per message | ours vs this |",
        "|---|---|---|---|",
        row("mm_core itch.encode", n, t["ours_enc"]),
        row("itchfeed MarketMessage.to_bytes", n, t["pure_enc"], ours_enc),
    ]
    return lines


def ouch_section(n: int, repeats: int) -> list[str]:
    enter = ouch.EnterOrder("T1", "B", 100, "AAPL", 1_000_000, 99_999, "FIRM", "Y", "P", "N", 0, "N", "R")
    raw_enter = struct.Struct(">c14scI8sII4scccIcc")
    fields = (b"O", b"T1".ljust(14), b"B", 100, b"AAPL".ljust(8), 1_000_000, 99_999, b"FIRM",
              b"Y", b"P", b"N", 0, b"N", b"R")
    executed = ouch.encode(ouch.Executed(2, "T1", 100, 1_000_000, "A", 9))
    raw_exec = struct.Struct(">cQ14sIIcQ")
    accepted = ouch.encode(ouch.Accepted(1, "T1", "B", 100, "AAPL", 1_000_000, 99_999, "FIRM", "Y",
                                         7, "P", "N", 0, "N", "L", " "))
    raw_acc = struct.Struct(">cQ14scI8sII4scQccIccc")
    encode, dec_out = ouch.encode, ouch.decode_outbound
    cases = [
        ("EnterOrder encode", lambda: drain(encode(enter) for _ in range(n)),
         lambda: drain(raw_enter.pack(*fields) for _ in range(n))),
        ("Executed decode", lambda: drain(dec_out(executed) for _ in range(n)),
         lambda: drain(raw_exec.unpack(executed) for _ in range(n))),
        ("Accepted decode", lambda: drain(dec_out(accepted) for _ in range(n)),
         lambda: drain(raw_acc.unpack(accepted) for _ in range(n))),
    ]
    lines = [
        f"### OUCH 4.2 per message, {n:,} calls",
        "",
        "No OUCH library exists for Python; the baseline is a bare struct.Struct pack/unpack to "
        "tuples (no validation, no objects), the floor for any pure-Python codec. "
        "Ratio = baseline time / our time.",
        "",
        "| operation | mm_core | per message | raw struct | per message | ours vs raw |",
        "|---|---|---|---|---|---|",
    ]
    for name, ours, raw in cases:
        t = race(repeats, {"ours": ours, "raw": raw})
        t_ours, t_raw = t["ours"], t["raw"]
        lines.append(f"| {name} | {n / t_ours:,.0f} msg/s | {t_ours * 1e9 / n:,.0f} ns | "
                     f"{n / t_raw:,.0f} msg/s | {t_raw * 1e9 / n:,.0f} ns | {t_raw / t_ours:.2f}x |")
    return lines


def naive_frames(chunks: list[bytes]) -> int:
    """The common hand-rolled framer: bytes concatenation and slicing."""
    buf = b""
    count = 0
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 2:
            length = int.from_bytes(buf[:2], "big")
            if len(buf) < 2 + length:
                break
            buf = buf[2 + length:]
            count += 1
    return count


def soup_section(n: int, repeats: int) -> list[str]:
    stream = b"".join(soupbintcp.encode(soupbintcp.SequencedData(w)) for w in ouch_outbound(n))
    lines = [
        f"### SoupBinTCP framing, {n:,} OUCH frames ({len(stream) / 1e6:.1f} MB)",
        "",
        "Baseline: a naive bytes-concatenation framer. Ratio = baseline time / our time.",
        "",
        "| chunking | mm_core Framer | MB/s | naive framer | ours vs naive |",
        "|---|---|---|---|---|",
    ]

    def ours(chunks: list[bytes]) -> int:
        framer = soupbintcp.Framer()
        return sum(len(framer.feed(c)) for c in chunks)

    for size in (1448, 64):
        chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
        assert ours(chunks) == naive_frames(chunks) == n
        t = race(repeats, {"ours": lambda: ours(chunks), "naive": lambda: naive_frames(chunks)})
        t_ours, t_naive = t["ours"], t["naive"]
        lines.append(f"| {size}-byte chunks | {n / t_ours:,.0f} frames/s | {len(stream) / t_ours / 1e6:,.1f} | "
                     f"{n / t_naive:,.0f} frames/s | {t_naive / t_ours:.2f}x |")
    chunks = [stream[i:i + 1448] for i in range(0, len(stream), 1448)]

    def end_to_end() -> None:
        framer, dec_soup, dec_ouch = soupbintcp.Framer(), soupbintcp.decode, ouch.decode_outbound
        for chunk in chunks:
            for frame in framer.feed(chunk):
                dec_ouch(dec_soup(frame).payload)    # type: ignore[union-attr]

    t_e2e = race(repeats, {"e2e": end_to_end})["e2e"]
    lines += ["", f"Framer + SoupBinTCP decode + OUCH decode, 1448-byte chunks: {n / t_e2e:,.0f} msg/s "
                  f"({t_e2e * 1e9 / n:,.0f} ns per message)."]
    return lines


def main(quick: bool) -> str:
    n_itch = 100_000 if quick else 1_000_000
    n_small = 50_000 if quick else 300_000
    repeats = 1 if quick else 3
    lines = ["## ITCH / OUCH / SoupBinTCP codecs (mm_core.protocol)", ""]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += [f"Pure Python, best of {repeats} interleaved run(s), garbage collector on; "
              f"{os.cpu_count()} CPUs, load average {load} when the run began (other work on the "
              "machine slows every competitor alike; compare the ratios).", ""]
    lines += itch_section(n_itch, repeats) + [""]
    lines += ouch_section(n_small, repeats) + [""]
    lines += soup_section(n_small, repeats)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main(quick=True))
