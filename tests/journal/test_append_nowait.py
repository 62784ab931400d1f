"""mmj_append_nowait never blocks: it returns 0 with nothing written when the writer mutex is held
(an mmj_sync's fdatasync, a roll) or when the append itself could wait (an msync, a roll); and the
Python fast append, which keeps the GIL in pagecache mode, tries it first and waits for the mutex
only with the GIL released, so other Python threads go on meanwhile."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from journal import Journal, RecordType
from journal._journal_cffi import lib
from tests.journal.jhelpers import SMALL_SEGMENT
from tests.journal.test_tailer_wake import ROOT

MD = int(RecordType.MD_PACKET)


def nowait(j: Journal, payload: bytes = b"x" * 40) -> int:
    return lib.mmj_append_nowait(j._w, MD, payload, len(payload), 0, 0, 0)


def holding_the_mutex(j: Journal):
    """Start an mmj_sync whose sync hook waits: the writer mutex stays held until release()."""
    entered, release = threading.Event(), threading.Event()

    def hook(seg, start, stop):
        entered.set()
        release.wait(30)

    j.on_sync(hook)
    j.append(MD, b"s" * 40)   # something for the sync to msync
    syncer = threading.Thread(target=j.sync)
    syncer.start()
    assert entered.wait(30)
    return release, syncer


def test_nowait_returns_0_and_writes_nothing_while_the_mutex_is_held(tmp_path):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        release, syncer = holding_the_mutex(j)
        before = j.next_seq
        assert nowait(j) == 0
        assert j.next_seq == before
        release.set()
        syncer.join()
        j.on_sync(None)
        assert nowait(j) == before      # free again: it appends
        assert j.next_seq == before + 1


def test_nowait_leaves_a_roll_to_the_blocking_append(tmp_path):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT, checkpoint_every=16) as j:
        seqs = []
        while True:
            seq = nowait(j, b"r" * 200)
            if seq == 0:
                break
            assert seq > 0
            seqs.append(seq)
        assert j.segment == 0 and seqs == list(range(1, len(seqs) + 1))
        assert j.append(MD, b"r" * 200) == len(seqs) + 1   # the blocking append rolls
        assert j.segment == 1
        assert nowait(j, b"r" * 200) == len(seqs) + 2


def test_nowait_never_msyncs(tmp_path):
    for mode in ("group", "sync"):
        with Journal(tmp_path / mode, segment_size=SMALL_SEGMENT, durability=mode) as j:
            assert nowait(j) == 0 and j.next_seq == 1


FROZEN = """
    import sys, threading, time
    from journal import Journal
    from journal._fastappend import Appender
    from journal.writer import _ADDRESS, _append, _NOWAIT
    from journal._journal_cffi import ffi
    j = Journal(sys.argv[1], segment_size=64 * 1024)
    entered, release = threading.Event(), threading.Event()
    def hook(seg, start, stop):
        entered.set()
        release.wait(30)
    j.on_sync(hook)
    j.append(100, b"s" * 40)
    syncer = threading.Thread(target=j.sync)
    syncer.start()
    assert entered.wait(30)
    # an Appender that keeps the GIL (as in pagecache mode without a hook) meets the held mutex
    fast = Appender(_ADDRESS[_append], int(ffi.cast("uintptr_t", j._w)), True, _ADDRESS[_NOWAIT[_append]])
    got = []
    appender = threading.Thread(target=lambda: got.append(fast(100, b"a" * 40, 0, 0, 0)))
    appender.start()
    ticks = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.2:   # this thread runs Python while the append waits
        ticks += 1
        time.sleep(0.001)
    waiting = appender.is_alive()
    release.set()
    syncer.join()
    appender.join()
    j.on_sync(None)
    j.close()
    print(waiting, ticks > 20, got == [2])
"""


def test_the_fast_append_waits_for_the_mutex_without_the_gil(tmp_path):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FROZEN), str(tmp_path / "j")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]
