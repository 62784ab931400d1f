"""Clock and timestamping costs, side by side in one run.

1. Receive: a datagram read with SO_TIMESTAMPING (kernel software stamp via recvmsg) against a
   plain recv, a plain recvmsg, and recv + a user-space clock_gettime (the fallback source).
2. pmc: latency of one health query (six datasets, parsed) against a bare single-GET pmc run,
   against a real ptp4l in a network namespace.
3. Monitor: ns per read of the current clock state on the engine's thread while the monitor
   samples beside it, against a plain attribute read and a lock-protected read.
"""
from __future__ import annotations

import socket
import statistics
import subprocess
import threading
import time

from audit.capture import TimestampedUdpSocket
from audit.health import HealthConfig, HealthTracker, Observation
from audit.monitor import ClockMonitor
from audit.pmc import PmcClient, PmcSession, parse_pmc_output, snapshot_from_responses

DATAGRAM = b"x" * 64
BURST = 512      # datagrams queued before each timed drain (fits the enlarged receive buffer)


def _udp_pair(rx: socket.socket):
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    return tx


def _drain_ns(receive, tx: socket.socket, rounds: int) -> float:
    """ns per datagram: queue a burst, then time receiving all of it; best of `rounds`."""
    best = float("inf")
    for _ in range(rounds):
        for _ in range(BURST):
            tx.send(DATAGRAM)
        start = time.perf_counter_ns()
        for _ in range(BURST):
            receive()
        best = min(best, (time.perf_counter_ns() - start) / BURST)
    return best


def bench_receive(rounds: int) -> list[tuple[str, float]]:
    results = []
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = _udp_pair(plain)
    results.append(("plain recv (no timestamp)", _drain_ns(lambda: plain.recv(2048), tx, rounds)))
    results.append(("plain recvmsg (no timestamp)", _drain_ns(lambda: plain.recvmsg(2048, 512), tx, rounds)))
    results.append(("recv + clock_gettime (USER source)", _drain_ns(
        lambda: (plain.recv(2048), time.clock_gettime_ns(time.CLOCK_REALTIME)), tx, rounds)))
    tx.close()
    plain.close()
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = _udp_pair(raw)
    stamped = TimestampedUdpSocket(raw)
    results.append(("TimestampedUdpSocket.recv (SW_KERNEL)", _drain_ns(lambda: stamped.recv(2048), tx, rounds)))
    tx.close()
    stamped.close()
    return results


def _lab():
    from audit.ptplab import PtpLab
    lab = PtpLab()
    lab.create()
    lab.start_gm()
    lab.start_client()
    return lab


def bench_pmc(queries: int) -> tuple[list[tuple[str, float]], str]:
    try:
        lab = _lab()
    except Exception as exc:   # no namespaces here: say so in the report instead of a number
        return [], f"skipped: {type(exc).__name__}: {exc}"
    session = PmcSession(lab.client_uds)
    try:
        client = PmcClient(lab.client_uds)
        client.query()        # warm up; also settles which optional datasets this pmc knows
        session.query()       # starts the long-lived pmc
        full, bare, parse, kept = [], [], [], []
        for _ in range(queries):
            t = time.perf_counter_ns()
            session.query()
            kept.append(time.perf_counter_ns() - t)
            t = time.perf_counter_ns()
            client.query()
            full.append(time.perf_counter_ns() - t)
            t = time.perf_counter_ns()
            proc = subprocess.run(["pmc", "-u", "-b", "0", "-s", lab.client_uds, "GET TIME_STATUS_NP"],
                                  capture_output=True, text=True, timeout=5)
            bare.append(time.perf_counter_ns() - t)
        text = client._run(("TIME_STATUS_NP", "CURRENT_DATA_SET", "PORT_DATA_SET", "PARENT_DATA_SET",
                            "TIME_PROPERTIES_DATA_SET", "PORT_PROPERTIES_NP")).stdout
        for _ in range(queries * 20):
            t = time.perf_counter_ns()
            snapshot_from_responses(parse_pmc_output(text))
            parse.append(time.perf_counter_ns() - t)
        assert "master_offset" in proc.stdout
        return [
            ("PmcClient.query: 6 datasets + parse", statistics.median(full)),
            ("bare `pmc GET TIME_STATUS_NP` subprocess", statistics.median(bare)),
            ("PmcSession.query: same 6 datasets over one long-lived pmc", statistics.median(kept)),
            ("parse only (6 datasets)", statistics.median(parse)),
        ], f"{queries} queries against ptp4l {_ptp4l_version()} in a network namespace"
    finally:
        session.close()
        lab.close()


def _ptp4l_version() -> str:
    return subprocess.run(["ptp4l", "-v"], capture_output=True, text=True, timeout=5).stdout.strip()


def bench_monitor_reads(reads: int) -> list[tuple[str, float]]:
    from tests.audit.test_health import GOOD    # a complete, healthy ptp4l snapshot

    def sampler():
        return Observation(GOOD, time.clock_gettime_ns(time.CLOCK_MONOTONIC),
                           time.clock_gettime_ns(time.CLOCK_REALTIME), 10_000_000)

    monitor = ClockMonitor(sampler, HealthTracker(HealthConfig()), rate_hz=1000)

    class Box:   # the two alternative designs, called the same way as the monitor's methods
        def __init__(self, sample):
            self.sample = sample
            self.lock = threading.Lock()

        def plain(self):
            return self.sample

        def locked(self):
            with self.lock:
                return self.sample

    box = Box(monitor.sample_once())

    def per_read(fn, *args) -> float:
        """ns per call, best of 5 batches (a batch can lose the GIL to the sampler thread)."""
        batch = max(1, reads // 5)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter_ns()
            for _ in range(batch):
                fn(*args)
            best = min(best, (time.perf_counter_ns() - start) / batch)
        return best

    def mean_read(fn, *args) -> float:
        """ns per call over all reads, GIL hand-offs to the sampler included."""
        start = time.perf_counter_ns()
        for _ in range(reads):
            fn(*args)
        return (time.perf_counter_ns() - start) / reads

    results = [
        ("plain method returning an attribute (baseline)", per_read(box.plain)),
        ("lock-protected read (alternative design)", per_read(box.locked)),
        ("ClockMonitor.current(), monitor idle", per_read(monitor.current)),
        ("ClockMonitor.compliant('eu-hft'), monitor idle", per_read(monitor.compliant, "eu-hft")),
    ]
    before = monitor.samples_taken
    with monitor:   # sampling at 1 kHz beside the reads: far above the 1 Hz default
        results += [
            ("ClockMonitor.current(), sampling at 1 kHz beside (best batch)", per_read(monitor.current)),
            ("ClockMonitor.compliant('eu-hft'), sampling at 1 kHz beside (best batch)",
             per_read(monitor.compliant, "eu-hft")),
            ("ClockMonitor.compliant('eu-hft'), sampling at 1 kHz beside (mean, GIL waits included)",
             mean_read(monitor.compliant, "eu-hft")),
        ]
    results.append((f"(the monitor took {monitor.samples_taken - before} samples meanwhile)", float("nan")))
    return results


def _table(title: str, rows: list[tuple[str, float]], unit: str, scale: float = 1.0, decimals: int = 1) -> str:
    if not rows:
        return ""
    base = rows[0][1]
    out = [f"### {title}", "", f"| variant | {unit} | ratio vs first row |", "|---|---:|---:|"]
    for name, value in rows:
        if value != value:   # NaN: a note row
            out.append(f"| {name} | | |")
            continue
        out.append(f"| {name} | {value / scale:,.{decimals}f} | {value / base:.3f}x |")
    return "\n".join(out) + "\n"


def main(quick: bool = False) -> str:
    rounds = 5 if quick else 40
    receive = bench_receive(rounds)
    pmc_rows, pmc_note = bench_pmc(5 if quick else 30)
    reads = bench_monitor_reads(100_000 if quick else 2_000_000)
    parts = [
        "## Clock and timestamping",
        "",
        f"Loopback UDP, {len(DATAGRAM)}-byte datagrams, bursts of {BURST}, best of {rounds} rounds.",
        "",
        _table("Receive cost per datagram", receive, "ns/datagram"),
        f"pmc: {pmc_note}." if pmc_note else "",
        "",
        _table("pmc query latency (median)", pmc_rows, "ms", scale=1e6, decimals=3),
        _table("Engine-thread read of the clock state", reads, "ns/read"),
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(main(quick=True))
