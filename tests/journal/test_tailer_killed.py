"""A tailer SIGKILLed while it waits on the writer's futex word leaves no lasting registration:
the running writer clears it within about a second, a writer opened later clears it at open, and
neither reset costs a live waiting tailer its wake-up."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

from journal import Journal, RecordType, Tailer
from tests.journal.jhelpers import wait_for
from tests.journal.test_tailer_wake import ROOT, notify_words


def killed_waiter(d) -> None:
    """Run a tailer process that waits for a record that never comes, and SIGKILL it there."""
    code = textwrap.dedent(f"""
        from journal import Tailer
        t = Tailer({str(d)!r}, from_seq=10**9)
        t.next(timeout_s=3600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        assert wait_for(lambda: notify_words(d)[1] == 1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_a_killed_waiter_stops_costing_the_running_writer(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=64 * 1024) as j:
        j.append(RecordType.MD_PACKET, b"x")
        killed_waiter(d)
        assert wait_for(lambda: notify_words(d)[1] == 0, seconds=10)   # the writer's helper cleared it
        counter = notify_words(d)[0]
        for _ in range(1000):
            j.append(RecordType.MD_PACKET, b"y")
        assert notify_words(d)[0] == counter                   # no wake call per append any more


def test_a_writer_opened_later_clears_a_killed_waiter(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=64 * 1024) as j:
        j.append(RecordType.MD_PACKET, b"x")
    killed_waiter(d)                                         # no writer running meanwhile
    assert notify_words(d)[1] == 1
    with Journal(d, segment_size=64 * 1024) as j:
        assert notify_words(d)[1] == 0
        counter = notify_words(d)[0]
        for _ in range(100):
            j.append(RecordType.MD_PACKET, b"y")
        assert notify_words(d)[0] == counter


def test_a_live_waiter_is_woken_across_a_writer_reset(tmp_path):
    d = tmp_path / "j"
    Journal(d, segment_size=64 * 1024).close()
    killed_waiter(d)                                         # a count the next open resets
    got = []
    with Tailer(d, from_seq=1) as tailer:
        waiter = threading.Thread(target=lambda: got.append(tailer.next(timeout_s=60)))
        waiter.start()
        assert wait_for(lambda: notify_words(d)[1] == 2)       # the dead one and the live one
        with Journal(d, segment_size=64 * 1024) as j:           # reset at open: the live one re-registers
            assert wait_for(lambda: notify_words(d)[1] == 1)   # (and its old registration's leave is no-op)
            j.append(RecordType.MD_PACKET, b"wake")
            waiter.join(5)
            assert not waiter.is_alive()
    assert got[0] is not None and got[0].payload == b"wake"
