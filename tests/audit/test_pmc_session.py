"""The interactive pmc session's failure paths (the happy path runs against ptp4l in netns tests)."""
import time

import pytest

from audit.errors import ToolMissing
from audit.pmc import CORE_DATASETS, PmcSession


def test_no_ptp4l_gives_an_empty_snapshot_within_the_timeout(tmp_path):
    session = PmcSession(str(tmp_path / "nobody"), timeout_s=0.3)
    try:
        session.query()                      # first call also probes with a one-shot pmc
        start = time.monotonic()
        snap = session.query()
        assert time.monotonic() - start < 2.0
        assert not snap.answered and set(snap.missing) == set(CORE_DATASETS)
    finally:
        session.close()


def test_session_restarts_pmc_after_it_died(tmp_path):
    session = PmcSession(str(tmp_path / "nobody"), timeout_s=0.2)
    try:
        session.query()
        first = session._proc.pid
        session._proc.kill()
        session._proc.wait(timeout=5)
        assert not session.query().answered
        assert session._proc.pid != first and session._proc.poll() is None
    finally:
        session.close()
    assert session._proc is None


def test_missing_pmc_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing):
        PmcSession(str(tmp_path / "x")).query()


# A stand-in for pmc that answers like linuxptp 3.1.1 (the REAL capture's blocks) and numbers its
# requests the way pmc does: a UInteger16 sequenceId from START, wrapping at 65,536. The real pmc
# cannot be started near the wrap (it always counts from 0), and 65,536 GETs against a lab ptp4l
# would take minutes, so only the numbering is staged; the parsing is the production path.
_STAND_IN = r'''#!/usr/bin/env python3
import json, os, re, sys
blocks = json.load(open(os.environ["PMC_BLOCKS"]))
seq = int(os.environ.get("PMC_START", "0"))
def answer(name):
    global seq
    block = blocks.get(name)
    if block is not None:
        sys.stdout.write(re.sub(r"seq \d+", f"seq {seq & 0xFFFF}", block, count=1))
    seq += 1
gets = [a[4:] for a in sys.argv[1:] if a.startswith("GET ")]
if gets:                        # one-shot: answer the command-line GETs and exit
    seq = 0
    for name in gets:
        answer(name)
    sys.exit(0)
for line in sys.stdin:          # interactive: one GET per line
    if line.startswith("GET "):
        answer(line.split()[1])
        sys.stdout.flush()
'''


def test_session_keeps_matching_answers_across_the_16_bit_sequence_wrap(tmp_path, monkeypatch):
    import json
    import re

    from tests.audit.test_pmc_parse import REAL
    blocks = {m.group(2): m.group(1) for m in re.finditer(
        r"(\t\S+ seq \d+ RESPONSE MANAGEMENT (\w+) \n(?:\t\t.*\n)*)", REAL)}
    assert set(blocks) == set(CORE_DATASETS)
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    pmc = tmp_path / "pmc"
    pmc.write_text(_STAND_IN)
    pmc.chmod(0o755)
    start = 65_536 - 8                       # a few queries before the wrap
    monkeypatch.setenv("PMC_BLOCKS", str(tmp_path / "blocks.json"))
    monkeypatch.setenv("PMC_START", str(start))
    session = PmcSession(str(tmp_path / "ptp4l"), timeout_s=2.0, binary=str(pmc))
    try:
        session._datasets = CORE_DATASETS    # skip the optional-dataset probe
        session._start()
        session._seq = start                 # our count of requests, as after ~2.6 h at 1 Hz
        for _ in range(4):                   # 24 GETs: 8 before the wrap, 16 after it
            snap = session.query()
            assert snap.answered and not snap.missing, snap
            assert (snap.port_state, snap.master_offset_ns, snap.utc_offset) == ("UNCALIBRATED", -761, 37)
        assert session._seq > 65_536
    finally:
        session.close()
