"""Waiting tailers sleep on the writer's futex word (the journal's `notify` file) and are woken
by an append in another process; a writer with nobody waiting never bumps the word."""
from __future__ import annotations

import pathlib
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from journal import InvalidArgument, Journal, RecordType, Tailer
from tests.journal.jhelpers import wait_for

ROOT = str(pathlib.Path(__file__).resolve().parents[2])


def notify_words(d: pathlib.Path) -> tuple[int, int]:
    """(counter, waiters) from the notify file."""
    counter, waiters = struct.unpack_from("<II", (d / "notify").read_bytes())
    return counter, waiters & 0xFFFF          # the high half of the word is the epoch


def test_a_waiting_tailer_is_woken_by_a_writer_in_another_process(tmp_path):
    d = tmp_path / "j"
    code = textwrap.dedent(f"""
        import sys
        from journal import Journal, RecordType
        with Journal({str(d)!r}, segment_size=64 * 1024) as j:
            print("open", flush=True)
            for line in sys.stdin:
                j.append(RecordType.MD_PACKET, line.strip().encode())
                print("appended", flush=True)
    """)
    writer = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        writer.stdin.write("before\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "appended"
        assert notify_words(d) == (0, 0)           # nobody waited: the writer made no wake call
        got = []
        with Tailer(d, from_seq=2) as tailer:
            waiter = threading.Thread(target=lambda: got.append(tailer.next(timeout_s=60)))
            waiter.start()
            assert wait_for(lambda: notify_words(d)[1] == 1)   # the tailer sleeps on the futex word
            writer.stdin.write("wake\n")
            writer.stdin.flush()
            waiter.join(60)
            assert not waiter.is_alive()
        assert got[0] is not None and got[0].seq == 2 and got[0].payload == b"wake"
        counter, waiters = notify_words(d)
        assert counter >= 1 and waiters == 0
    finally:
        writer.stdin.close()
        assert writer.wait(30) == 0


def test_wait_times_out_without_records_and_leaves_no_waiter(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=64 * 1024) as j:
        with Tailer(d) as tailer:
            assert tailer.next(timeout_s=0.05) is None
            assert notify_words(d)[1] == 0
            j.append(RecordType.MD_PACKET, b"x")
            assert tailer.next(timeout_s=5).payload == b"x"


def test_spin_bound_is_checked_and_tailers_spinning_or_not_get_every_record(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=64 * 1024) as j:
        with pytest.raises(InvalidArgument):
            Tailer(d, spin_ns=-1)
        with Tailer(d, spin_ns=0) as tailer:
            got = []
            waiter = threading.Thread(target=lambda: got.extend(tailer.next(timeout_s=60) for _ in range(3)))
            waiter.start()
            assert wait_for(lambda: notify_words(d)[1] == 1)   # asleep on the futex word at once
            for k in range(3):
                j.append(RecordType.MD_PACKET, b"r%d" % k)
            waiter.join(60)
            assert not waiter.is_alive()
        assert [r.payload for r in got] == [b"r0", b"r1", b"r2"]
        assert notify_words(d)[1] == 0
        with Tailer(d, from_seq=4, spin_ns=250_000) as tailer:   # spins while records come often
            got = []
            waiter = threading.Thread(target=lambda: got.extend(tailer.next(timeout_s=60) for _ in range(200)))
            waiter.start()
            for k in range(200):
                j.append(RecordType.MD_PACKET, b"s%d" % k)
                if k % 50 == 0:
                    time.sleep(0.002)   # a pause longer than the bound: it sleeps, then spins again
            waiter.join(60)
            assert not waiter.is_alive()
        assert [r.payload for r in got] == [b"s%d" % k for k in range(200)]
        assert notify_words(d)[1] == 0
