"""The kernel's own share of wire-to-wire on this machine, with no engine in the way: what the
runner's rows (bench/engine_bench.py's wire section) are read against.

A small C program (built here from C_PROGRAM with the system compiler, as bench/journal_bench.py
builds its own) measures, on loopback with software kernel stamps:
  udp: a child process sends datagrams `gap_us` apart; the parent spins on recvmsg(MSG_DONTWAIT)
       and prints, per datagram, RX stamp -> read (CLOCK_REALTIME right after recvmsg returned),
       as the runner's "RX stamp -> packet read" stage measures it. After each, the child sends a
       second datagram with its own clock around that sendto, so the parent also prints RX stamp ->
       the sender's sendto returned: on loopback the receive side (IP, UDP, the socket's queue)
       runs inside the sender's syscall after the stamp, so that share of "RX stamp -> read" is
       the sending process's kernel work, not the reader's wait;
  tcp: the parent sends 48-byte messages (an OUCH order's size) on a TCP_NODELAY connection to a
       child that drains them, and prints send() entered -> its TX stamp (OPT_ID, OPT_TSONLY),
       the kernel's part of the runner's "journal append + send -> TX stamp".

    python3 -m bench.kernel_floor [n] [gap_us]
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

C_PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t realtime(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void sleep_us(int64_t us)
{
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&t, NULL);
}

/* the software stamp (ts[0]) of an SCM_TIMESTAMPING message, 0 without one */
static int64_t stamp_of(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
            struct timespec ts[3];
            memcpy(ts, CMSG_DATA(c), sizeof ts);
            return ts[0].tv_sec * 1000000000LL + ts[0].tv_nsec;
        }
    return 0;
}

static int udp(int n, int gap_us)
{
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (r < 0 || bind(r, (struct sockaddr *)&a, sizeof a) || getsockname(r, (struct sockaddr *)&a, &al) ||
        setsockopt(r, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags))
        return perror("udp"), 2;
    pid_t child = fork();
    if (child == 0) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        for (int i = 0; i < n; i++) {
            char buf[128] = {0};
            int64_t clocks[2];
            sleep_us(gap_us);
            clocks[0] = realtime();
            sendto(s, buf, sizeof buf, 0, (struct sockaddr *)&a, sizeof a);
            clocks[1] = realtime();
            buf[0] = 'T';                  /* the sender's clock around that sendto */
            memcpy(buf + 8, clocks, sizeof clocks);
            sendto(s, buf, sizeof buf, 0, (struct sockaddr *)&a, sizeof a);
        }
        _exit(0);
    }
    int64_t deadline = realtime() + (int64_t)n * gap_us * 4000 + 5000000000LL, rx = 0;
    for (int got = 0; got < 2 * n && realtime() < deadline;) {
        char buf[256], ctl[256];
        struct iovec v = {buf, sizeof buf};
        struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        if (recvmsg(r, &m, MSG_DONTWAIT) < 0)
            continue;
        int64_t now = realtime();
        got++;
        if (buf[0] != 'T') {               /* the timed datagram */
            rx = stamp_of(&m);
            if (rx)
                printf("rx->read %lld\n", (long long)(now - rx));
            continue;
        }
        int64_t clocks[2];
        memcpy(clocks, buf + 8, sizeof clocks);
        if (rx)
            printf("rx->sendto-returned %lld\n", (long long)(clocks[1] - rx));
        rx = 0;
    }
    waitpid(child, NULL, 0);
    return 0;
}

static int tcp(int n, int gap_us)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al))
        return perror("tcp"), 2;
    pid_t child = fork();
    if (child == 0) {
        int c = accept(l, NULL, NULL);
        char buf[4096];
        while (read(c, buf, sizeof buf) > 0)
            ;
        _exit(0);
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |
                SOF_TIMESTAMPING_OPT_TSONLY;
    if (connect(s, (struct sockaddr *)&a, sizeof a) || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
        setsockopt(s, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags))
        return perror("tcp connect"), 2;
    for (int i = 0; i < n; i++) {
        char msg[48] = {0};
        sleep_us(gap_us);
        int64_t entered = realtime();
        if (send(s, msg, sizeof msg, 0) != sizeof msg)
            return perror("send"), 2;
        for (int64_t deadline = realtime() + 100000000LL; realtime() < deadline;) {
            char ctl[512], data[64];
            struct iovec v = {data, sizeof data};
            struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
            if (recvmsg(s, &m, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0) {
                int64_t tx = stamp_of(&m);
                if (tx)
                    printf("send->tx %lld\n", (long long)(tx - entered));
                break;
            }
        }
    }
    close(s);
    waitpid(child, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "udp") == 0)
        return udp(atoi(argv[2]), atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "tcp") == 0)
        return tcp(atoi(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: floor udp|tcp <n> <gap_us>\n");
    return 2;
}
"""

ROW = ("kernel floor on this machine: RX stamp -> read by a C spinner, RX stamp -> the sender's "
       "sendto() returned, send() -> TX stamp")


def build(workdir: pathlib.Path) -> pathlib.Path | None:
    """The floor program compiled in workdir; None when there is no C compiler."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return None
    src, exe = workdir / "kernel_floor.c", workdir / "kernel_floor"
    src.write_text(C_PROGRAM)
    subprocess.run([cc, "-O2", "-std=gnu11", "-Wall", str(src), "-o", str(exe)], check=True, capture_output=True)
    return exe


def kernel_floor(n: int = 2000, gap_us: int = 200) -> dict[str, list[int]] | None:
    """ns samples: {"rx->read": [...], "rx->sendto-returned": [...], "send->tx": [...]} from n
    datagrams and n sends, gap_us apart; None without a C compiler. The gap matters: this VM's
    caches lose the kernel's network path within milliseconds, so packets far apart (as a live
    session's are) meet it cold."""
    with tempfile.TemporaryDirectory(prefix="kernel-floor-") as d:
        exe = build(pathlib.Path(d))
        if exe is None:
            return None
        out: dict[str, list[int]] = {"rx->read": [], "rx->sendto-returned": [], "send->tx": []}
        for mode in ("udp", "tcp"):
            run = subprocess.run([str(exe), mode, str(n), str(gap_us)], check=True, capture_output=True,
                                 text=True, timeout=60 + n * gap_us * 4e-6)
            for line in run.stdout.splitlines():
                key, ns = line.split()
                out[key].append(int(ns))
    return out


_PY_SENDER = """
import socket, struct, sys, time
n, gap, port = int(sys.argv[1]), int(sys.argv[2]) / 1e6, int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
clock, rt = time.clock_gettime_ns, time.CLOCK_REALTIME
for _ in range(n):
    time.sleep(gap)
    before = clock(rt)
    s.sendto(bytes(128), ("127.0.0.1", port))
    after = clock(rt)
    s.sendto(b"T" + struct.pack("<qq", before, after), ("127.0.0.1", port))
"""


def python_sender(n: int = 300, gap_us: int = 10_000) -> dict[str, list[int]]:
    """As the C program's udp mode, with the venue's kind of sender (a Python process's plain
    sendto) and the runner's busy-poll read (audit.fastcap.SpinReader, its C spin): ns samples
    {"rx->read": [...], "rx->sendto-returned": [...]}."""
    import struct

    from audit.capture import TimestampedUdpSocket
    from audit.fastcap import SpinReader
    rx = TimestampedUdpSocket.bound()
    sender = None
    try:
        spin = SpinReader(rx)
        sender = subprocess.Popen([sys.executable, "-c", _PY_SENDER, str(n), str(gap_us),
                                   str(rx.sock.getsockname()[1])])
        out: dict[str, list[int]] = {"rx->read": [], "rx->sendto-returned": []}
        stamp = 0
        deadline = time.monotonic_ns() + n * gap_us * 4000 + 10_000_000_000
        got = 0
        while got < 2 * n and time.monotonic_ns() < deadline:
            packet = spin.wait(min(deadline, time.monotonic_ns() + 10_000_000))
            if packet is None:
                continue
            got += 1
            data, _, ts, _ = packet
            if data[:1] != b"T":
                stamp = ts
                out["rx->read"].append(spin.read_ns - ts)
            elif stamp:
                out["rx->sendto-returned"].append(struct.unpack("<qq", data[1:17])[1] - stamp)
                stamp = 0
        sender.wait(timeout=10)
        return out
    finally:
        if sender is not None and sender.poll() is None:   # an error or the deadline: never left behind
            sender.kill()
            sender.wait()
        rx.close()


def _pct(values: list[int], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def summary(floor: dict[str, list[int]] | None, gap_us: int | None = None) -> str:
    """One line: the floor's p50 / p99 of each, in us (`gap_us`: the gap it was measured at)."""
    row = ROW if gap_us is None else f"{ROW}, {gap_us:,} us apart"
    if floor is None:
        return f"{row}: not measured (no C compiler)"
    parts = [f"{name} p50 {_pct(v, .5):.1f} / p99 {_pct(v, .99):.1f} us (n={len(v):,})"
             for name, v in floor.items() if v]
    return f"{row}: " + "; ".join(parts)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(summary(kernel_floor(*args), args[1] if len(args) > 1 else 200))
