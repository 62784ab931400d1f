"""Every error from a batch says how many of its records were published (`written`), and the
journal holds exactly those: first .. first + written - 1. A failed msync of the published part
latches the writer and is reported as DurabilityFailed, never hidden behind the error that
stopped the batch (a full disk). Failures are injected at the libc boundary (LD_PRELOAD of
c/failpoints.c) in a child process, so each strikes at the step the case is about; a real failing
device is used where the failure needs no precise timing."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from journal import DurabilityFailed, Journal, JournalError, Reader
from tests.journal.jhelpers import build_preload

FAILPOINTS = pathlib.Path(__file__).resolve().parent / "c" / "failpoints.c"
ROOT = pathlib.Path(__file__).resolve().parents[2]
SEGMENT = 256 << 10
BATCH = 600            # 1000-byte payloads: more than a 256 KiB segment holds

CHILD = r"""
import json, os, pathlib, sys
import numpy as np
from journal import Journal, JournalError
d, mode, shape, arm, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5])
j = Journal(d, segment_size=%d, durability=mode, checkpoint_every=64, group_records=1 << 30,
            group_us=1 << 30)
j.append(20, b"before")
payloads = [bytes([k %% 251]) * 1000 for k in range(count)]
if shape == "rows":
    payloads = np.frombuffer(b"".join(payloads), dtype=np.dtype((np.void, 1000)))
for var in arm:
    if var:
        pathlib.Path(os.environ[var]).touch()
first = j.next_seq
try:
    j.append_batch(20, payloads)
    out = {"error": None, "written": count}
except JournalError as exc:
    out = {"error": type(exc).__name__, "written": exc.written, "message": str(exc)}
out["first"] = first
print(json.dumps(out), flush=True)
os._exit(0)      # as a crashed writer: no close, the published records are what is left
""" % SEGMENT


@pytest.fixture(scope="module")
def failpoints(tmp_path_factory):
    return build_preload(tmp_path_factory.mktemp("failpoints"), FAILPOINTS.read_text())


def run_batch(failpoints, tmp_path, mode: str, shape: str, arm: list[str], count: int = BATCH) -> dict:
    flags = {var: str(tmp_path / var.lower()) for var in ("MMJ_FAIL_MSYNC", "MMJ_FAIL_FALLOCATE", "MMJ_FAIL_RENAME")}
    env = {**os.environ, **flags, "LD_PRELOAD": str(failpoints), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "j"), mode, shape, ",".join(arm), str(count)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_journal_holds_exactly(d, out: dict) -> None:
    with Reader(d) as r:
        assert r.stopped is None
        assert r.last_seq == out["first"] + out["written"] - 1
        assert [rec.payload for rec in r.records(out["first"])] == \
            [bytes([k % 251]) * 1000 for k in range(out["written"])]


@pytest.mark.parametrize("shape", ["rows", "list"])
@pytest.mark.parametrize("mode,arm,error", [
    # no room for the next segment, and the msync of what the first segment took fails
    ("sync", ["MMJ_FAIL_FALLOCATE", "MMJ_FAIL_MSYNC"], "DurabilityFailed"),
    # ... unless the mode's budget does not ask for an msync yet: a full disk
    ("group", ["MMJ_FAIL_FALLOCATE", "MMJ_FAIL_MSYNC"], "DiskFull"),
    # no room, the msync works: a full disk, with the records that fitted
    ("sync", ["MMJ_FAIL_FALLOCATE"], "DiskFull"),
    ("pagecache", ["MMJ_FAIL_FALLOCATE"], "DiskFull"),
    # the roll cannot rename the new segment into place
    ("pagecache", ["MMJ_FAIL_RENAME"], "JournalIOError"),
    # the roll's msync of the segment it seals fails
    ("sync", ["MMJ_FAIL_MSYNC"], "DurabilityFailed"),
])
def test_batch_error_reports_what_was_published(failpoints, tmp_path, shape, mode, arm, error):
    out = run_batch(failpoints, tmp_path, mode, shape, arm)
    assert out["error"] == error, out
    assert 0 < out["written"] < BATCH
    assert f"{out['written']} of {BATCH} records published" in out["message"]
    assert_journal_holds_exactly(tmp_path / "j", out)


def test_batch_whose_own_msync_fails_reports_all_its_records(failpoints, tmp_path):
    """A batch that fits its segment, then its msync fails: all of it is published, none of it
    durable, and the writer is latched failed."""
    out = run_batch(failpoints, tmp_path, "sync", "list", ["MMJ_FAIL_MSYNC"], count=100)
    assert out["error"] == "DurabilityFailed" and out["written"] == 100, out
    assert_journal_holds_exactly(tmp_path / "j", out)


def test_batch_on_a_failing_device(failing_disk):
    """A real writeback failure (ext4 on a loop device whose backing store is full): the batch
    that meets it raises DurabilityFailed carrying how many of its records were published."""
    d = failing_disk / "j"
    j = Journal(d, segment_size=4 << 20, durability="sync")
    payloads = [bytes([k % 251]) * 3000 for k in range(400)]
    before = 0
    with pytest.raises(JournalError) as caught:
        for _ in range(100):
            before = j.next_seq
            j.append_batch(20, payloads)
    assert isinstance(caught.value, DurabilityFailed), caught.value
    with Reader(d) as r:
        assert r.last_seq == before + caught.value.written - 1
    with pytest.raises(DurabilityFailed):
        j.close()
