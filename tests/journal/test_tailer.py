"""Live tailing: a tailer in this process follows a writer in another process across 1,000
segment rolls without skipping or duplicating a record and without leaking descriptors or
mappings; named tailers resume where they committed."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import pytest

from journal import InvalidArgument, Journal, RecordType, Tailer
from journal.scratch import scratch_dir
from tests.journal.jhelpers import SMALL_SEGMENT, open_fds, payload_for, write_journal
from tests.journal.test_scratch import owners  # noqa: F401 (the fixture)

ROOT = str(pathlib.Path(__file__).resolve().parents[2])
ROLLS = 1000
PAYLOAD = 6000          # ten records fill a 64 KiB segment


SCRATCH_PREFIX = "mmj-tail-"


def tail_scratch_root() -> str:
    """/dev/shm when there is a writable one (a journal of 1,000 segment rolls on disk would
    measure the disk), else the temp directory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


def tail_scratch():
    """The scratch of a tailing test, held by this process's lock: a test run killed mid-way (a CI
    timeout's SIGKILL) leaves memory that the next run's sweep gives back."""
    return scratch_dir(SCRATCH_PREFIX, dir=tail_scratch_root())


@pytest.fixture
def shm_dir():
    with tail_scratch() as d:
        yield pathlib.Path(d)


def mapped_segments() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if ".mmj" in line)


def rolling_writer(d, records: int) -> subprocess.Popen:
    """A writer process appending `records` records of PAYLOAD bytes (ten fill a segment) to the
    journal at d, then printing its last segment's index."""
    code = textwrap.dedent(f"""
        import sys
        from journal import Journal, RecordType
        from tests.journal.jhelpers import payload_for
        with Journal({str(d)!r}, segment_size={SMALL_SEGMENT}, checkpoint_every=7) as j:
            for _ in range({records}):
                seq = j.next_seq
                j.append(RecordType.MD_PACKET, payload_for(seq, {PAYLOAD}), ts_ns=seq)
            print(j.segment, flush=True)
    """)
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_tailer_in_another_process_across_1000_rolls(shm_dir):
    d = shm_dir / "j"
    Journal(d, segment_size=SMALL_SEGMENT).close()           # segment 0, sealed
    records = ROLLS * 10 + 5
    fds_before = open_fds()
    with Tailer(d) as tailer:
        writer = rolling_writer(d, records)
        try:
            seen = 0
            max_maps = 0
            fds_while_tailing = open_fds()      # + the tailer's directory and the writer's pipe
            for expected in range(1, records + 1):
                rec = tailer.next(timeout_s=20)
                assert rec is not None, f"no record {expected} within 20 s"
                assert rec.seq == expected and rec.ts_ns == expected
                assert rec.payload == payload_for(expected, PAYLOAD)
                seen += 1
                if expected % 500 == 0:
                    max_maps = max(max_maps, mapped_segments())
                    assert open_fds() == fds_while_tailing
            assert tailer.next(timeout_s=0.05) is None            # nothing extra, no duplicates
            last_segment = int(writer.stdout.read().strip())
        finally:
            writer.wait(timeout=60)
            writer.stdout.close()
        assert writer.returncode == 0
    assert seen == records and last_segment >= ROLLS
    assert max_maps <= 2                                           # one segment mapped at a time
    assert open_fds() == fds_before and mapped_segments() == 0


def test_tailer_waits_then_sees_a_new_record(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        with Tailer(d) as t:
            assert t.next(timeout_s=0.01) is None
            j.append(RecordType.MD_PACKET, b"one")
            rec = t.next(timeout_s=1)
            assert (rec.seq, rec.payload) == (1, b"one") and t.position == 2
            assert t.next(timeout_s=0) is None


def test_named_tailer_resumes_after_restart(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 300)
    with Tailer(d, name="reports") as t:
        for expected in range(1, 121):
            assert t.next(1).seq == expected
        t.commit()
        assert t.next(1).seq == 121            # read but not committed
    saved = (d / "tailers" / "reports.pos").read_text()
    assert saved.split()[:3] == ["mmjpos", "2", "121"] and saved.endswith("\n")   # + journal id, head of 120
    with Tailer(d, name="reports") as t:
        assert t.position == 121 and t.next(1).seq == 121
    with Tailer(d, name="reports", from_seq=250) as t:        # an explicit start wins
        assert t.next(1).seq == 250
    with Tailer(d, name="other") as t:                        # a new name starts at the beginning
        assert t.next(1).seq == 1
    with Tailer(d) as t:
        with pytest.raises(InvalidArgument):
            t.commit()


def test_tailer_from_sequence_in_a_later_segment(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 2000)
    with Tailer(d, from_seq=1777) as t:
        got = [t.next(1).seq for _ in range(5)]
    assert got == [1777, 1778, 1779, 1780, 1781]


# a test run holding the tailing scratch, killed mid-way (a CI timeout)
_TAIL_RUN = """
import pathlib, sys, time
from tests.journal.test_tailer import tail_scratch
tmp = tail_scratch()
(pathlib.Path(tmp.name) / "work").write_bytes(b"x")
print(tmp.name, flush=True)
time.sleep(float(sys.argv[3]))
"""


def test_the_tailing_scratch_of_a_killed_run_is_swept_by_the_next(owners):  # noqa: F811
    root = pathlib.Path(tail_scratch_root())
    killed, left = owners.start(SCRATCH_PREFIX, root, _TAIL_RUN)
    running, live = owners.start(SCRATCH_PREFIX, root, _TAIL_RUN)
    owners.kill(killed)
    assert left.is_dir()                          # a SIGKILLed run cannot remove its own
    with tail_scratch() as mine:
        assert not left.exists() and (live / "work").is_file()
    assert not pathlib.Path(mine).exists()
    owners.kill(running)                          # and the other one's goes with the next run
    tail_scratch().cleanup()
    assert not live.exists()
