"""Recovery keeps the checkpoint cadence of a crashed segment: the data records since its last
CHECKPOINT count towards the next one, so the tamper-evidence interval never grows past
checkpoint_every across a crash."""
from __future__ import annotations

import subprocess
import sys

from journal import Journal, Reader, RecordType, verify

CRASH = """
import os, sys
from journal import Journal, RecordType
j = Journal(sys.argv[1], checkpoint_every=10)
for i in range(15):
    j.append(RecordType.MD_PACKET, b"x")
os._exit(0)   # a process crash: no close, no seal
"""


def test_records_since_the_last_checkpoint_count_after_recovery(tmp_path):
    d = tmp_path / "j"
    subprocess.run([sys.executable, "-c", CRASH, str(d)], check=True)
    j = Journal(d, checkpoint_every=10)
    assert j.recovery.continued_segment == 0          # it continues in the crashed segment
    for _ in range(5):
        j.append(RecordType.MD_PACKET, b"y")
    with Reader(d) as r:
        layout = ["C" if rec.rtype == RecordType.CHECKPOINT else rec.seq for rec in r.records(include_control=True)]
    j.close()
    # a CHECKPOINT after seq 10 (before the crash) and after seq 20 (10 records later), not 25
    assert layout == [*range(1, 11), "C", *range(11, 21), "C"]
    assert verify(d).ok
