"""Closing a journal while other threads are inside appends, batches, syncs and checkpoints that
released the GIL, or a tailer while another thread waits in its next(): those threads get
JournalClosed, never freed memory, and every append that returned a sequence is in the journal.
Runs in a subprocess so that a use-after-free fails the test instead of taking pytest down."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_ROUNDS = 40

# Shared by the scripts: start the threads, close the object a moment after they are all running
# (varied by round), and require every thread to have left it.
_CLOSE_UNDER = textwrap.dedent("""
    import threading, time

    def close_under(threads, started, close, delay, what):
        for t in threads:
            t.start()
        started.wait()
        time.sleep(delay)
        close()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive(), f"a thread is still inside the closed {what}"
""")

_SCRIPT = _CLOSE_UNDER + textwrap.dedent("""
    import os, sys, threading, time
    from journal import Journal, Reader, RecordType
    from journal.errors import JournalClosed

    root, rounds, durability = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    closed_seen = 0
    for r in range(rounds):
        path = os.path.join(root, f"j{r}")
        j = Journal(path, segment_size=1 << 20, durability=durability)
        acked, errors, started = [], [], threading.Barrier(4)

        def appends():
            started.wait()
            try:
                for i in range(200_000):      # bounded: the close comes long before
                    acked.append(j.append(RecordType.MD_PACKET, i.to_bytes(16, "little")))
            except JournalClosed:
                errors.append("closed")

        def batches():
            started.wait()
            payloads = [bytes(16)] * 64
            try:
                for _ in range(20_000):
                    j.append_batch(RecordType.MD_PACKET, payloads)
            except JournalClosed:
                errors.append("closed")

        def syncs():
            started.wait()
            try:
                for _ in range(20_000):
                    j.sync()
                    j.checkpoint()
            except JournalClosed:
                errors.append("closed")

        close_under([threading.Thread(target=f) for f in (appends, batches, syncs)], started, j.close,
                    0.002 + (r % 5) * 0.001, "journal")
        assert errors == ["closed"] * 3, errors
        closed_seen += len(errors)
        del j
        with Reader(path) as reader:
            seqs = {rec.seq for rec in reader.records()}
        missing = [s for s in acked if s not in seqs]
        assert not missing, f"acknowledged appends missing after close: {missing[:5]}"
    print("ok", closed_seen)
""")


@pytest.mark.parametrize("durability", ["pagecache", "group", "sync"])
def test_closing_while_other_threads_append_gives_them_journal_closed(tmp_path, durability):
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path), str(_ROUNDS), durability],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.split() == ["ok", str(3 * _ROUNDS)]


_TAILER_SCRIPT = textwrap.dedent("""
    import os, sys, threading, time
    from journal import Journal, RecordType, Tailer
    from journal.errors import JournalClosed

    root, rounds = sys.argv[1], int(sys.argv[2])
    for r in range(rounds):
        path = os.path.join(root, f"t{r}")
        j = Journal(path, segment_size=1 << 20)
        busy = r % 2 == 0               # records arriving, or a tailer asleep on an idle journal
        tailer, outcome, seen = Tailer(path, from_seq=1), [], []

        def follow():
            try:
                for _ in range(1_000_000):
                    rec = tailer.next(5.0)
                    if rec is not None:
                        seen.append(rec.seq)
            except JournalClosed:
                outcome.append(time.monotonic())

        t = threading.Thread(target=follow)
        t.start()
        for i in range(2_000 if busy else 1):
            j.append(RecordType.MD_PACKET, bytes(32))
        time.sleep(0.01)
        closed_at = time.monotonic()
        tailer.close()
        t.join(timeout=10)
        assert not t.is_alive() and len(outcome) == 1, outcome
        # ended by the close (next() waits in 0.1 s slices and sees it after the current one), not
        # by its own 5 s wait running out: behaviour, with half the wait as a wide margin
        assert outcome[0] - closed_at < 2.5, "the waiting next() did not end at the close"
        assert seen == list(range(1, len(seen) + 1)), "the tailer skipped or repeated a record"
        j.close()
    print("ok")
""")


def test_closing_a_tailer_another_thread_waits_on_gives_it_journal_closed(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _TAILER_SCRIPT, str(tmp_path), "20"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.split() == ["ok"]


_READER_SCRIPT = _CLOSE_UNDER + textwrap.dedent("""
    import os, sys, threading, time
    import numpy as np
    from journal import Journal, Reader, RecordType
    from journal.catalogue import PAYLOAD_DTYPES
    from journal.errors import JournalClosed

    root, rounds = sys.argv[1], int(sys.argv[2])
    path = os.path.join(root, "j")
    with Journal(path, segment_size=1 << 20) as j:
        for i in range(0, 60_000, 1_000):
            j.append_batch(RecordType.MD_PACKET, [bytes(24)] * 1_000)
    closed_seen = 0
    for r in range(rounds):
        reader, outcomes, started = Reader(path), [], threading.Barrier(5)

        def loop(step):
            started.wait()
            try:
                for _ in range(10_000):        # bounded: the close comes long before
                    step()
                outcomes.append("finished")
            except JournalClosed:
                outcomes.append("closed")

        def scans():
            cols = reader.scan()
            reader.gather(cols.pos[::7], np.dtype([("head", "u1", (16,))]))
        steps = [scans, lambda: reader.read_blobs(RecordType.MD_PACKET, 1, 30_000),
                 lambda: sum(1 for _ in reader.records(1, 20_000)),
                 lambda: (reader.segments(), reader.get(12_345), reader.refresh(), reader.stopped)]
        close_under([threading.Thread(target=loop, args=(s,)) for s in steps], started, reader.close,
                    0.002 + (r % 5) * 0.002, "reader")
        assert outcomes == ["closed"] * 4, outcomes
        closed_seen += len(outcomes)
    print("ok", closed_seen)
""")


def test_closing_a_reader_other_threads_read_gives_them_journal_closed(tmp_path):
    """Scans, gathers, blob reads, record iteration and single gets on other threads (each C call
    releases the GIL) while the reader is closed: they end with JournalClosed, never on unmapped
    memory."""
    proc = subprocess.run([sys.executable, "-c", _READER_SCRIPT, str(tmp_path), "30"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.split() == ["ok", "120"]
