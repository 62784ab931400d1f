"""Defects a review found in the journal's Python layer and CLI, each pinned: `journal demo` never
touches a directory that holds anything; `dump` fails on a journal that stops early, also when the
damage is in a segment before the range asked for; a named `tail` keeps its position through
Ctrl-C and SIGTERM; PHC stamps are not printed as UTC; a structured batch must have its type's
fields; threads sharing a reader's per-type counts never mix two ranges."""
from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from cli.journal_cmd import command, record_line
from journal import InvalidArgument, Journal, Reader, RecordType, bulk
from journal.catalogue import PAYLOAD_DTYPES, TsSource, pack
from tests.journal.jhelpers import flip_byte, record_offsets, segment_files
from tests.journal.test_reopen import crash_after

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(command, [str(a) for a in args])


def tree_digest(d: pathlib.Path) -> dict:
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def test_demo_refuses_a_crashed_journal_without_recovering_it(tmp_path):
    d = tmp_path / "j"
    crash_after(d, "pagecache", 500)
    before = tree_digest(d)
    result = run("demo", "--dir", d, "--records", 10)
    assert result.exit_code != 0 and "is not empty" in result.output
    assert tree_digest(d) == before                      # not sealed, not taken over, nothing added
    with Journal(d) as j:
        assert j.recovery.previous_clean is False        # the evidence recovery reports is still there


def _three_segments_damaged_in_the_second(tmp_path) -> tuple[pathlib.Path, int]:
    d = tmp_path / "j"
    with Journal(d, segment_size=65536) as j:
        while len(segment_files(d)) < 3 or j.next_seq < 600:
            j.append(RecordType.MD_PACKET, b"p" * 100)
        last = j.next_seq - 1
    seg = segment_files(d)[1]
    off = record_offsets(seg)[5][0]
    flip_byte(seg, off + 35)
    return d, last


def test_dump_fails_on_damage_before_or_inside_the_range(tmp_path):
    d, last = _three_segments_damaged_in_the_second(tmp_path)
    whole = run("dump", d)
    assert whole.exit_code == 1 and "the journal stops before seq" in whole.output
    late = run("dump", d, "--from-seq", last - 5)       # a range in the segment after the damage
    assert late.exit_code == 1 and "the journal stops before seq" in late.output
    assert not [line for line in late.stdout.splitlines() if line.split()[0].isdigit()]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_named_tail_keeps_its_position_when_stopped_by_a_signal(tmp_path, sig):
    d = tmp_path / "j"
    with Journal(d, segment_size=65536) as j:
        for i in range(300):
            j.append(RecordType.MD_PACKET, b"p%d" % i)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from cli.main import cli; sys.argv[0] = 'mmaudit'; cli()",
                             "journal", "tail", str(d), "--name", "ops"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        lines = []
        while len(lines) < 300 and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        assert lines[-1].split()[0] == "300"
        proc.send_signal(sig)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    saved = (d / "tailers" / "ops.pos").read_text()
    assert saved.split()[:3] == ["mmjpos", saved.split()[1], "301"], saved
    again = run("tail", d, "--name", "ops", "--idle-timeout", 0.3)
    assert again.exit_code == 0 and again.output == ""  # nothing printed twice


def test_phc_stamps_are_not_printed_as_utc(tmp_path):
    d = tmp_path / "j"
    with Journal(d) as j:
        j.append(RecordType.MD_PACKET, b"x", ts_ns=1_795_000_037_000_000_000, ts_source=int(TsSource.HW_PHC))
        j.append(RecordType.MD_PACKET, b"y", ts_ns=1_795_000_000_000_000_000, ts_source=int(TsSource.SW_KERNEL))
    with Reader(d) as r:
        phc, kernel = list(r)
    assert "Z " not in record_line(phc) and " PHC " in record_line(phc)
    assert "000000000Z SW_KERNEL" in record_line(kernel)


def test_a_structured_batch_must_have_its_types_fields(tmp_path):
    layout = PAYLOAD_DTYPES[RecordType.TIMER]
    swapped = np.zeros(1, [(name, layout[name].str) for name in reversed(layout.names)])
    big_endian = np.zeros(1, layout.newbyteorder(">"))
    with Journal(tmp_path / "j") as j:
        for rows in (swapped, big_endian):
            with pytest.raises(InvalidArgument, match="its layout is"):
                j.append_batch(RecordType.TIMER, rows)
        good = np.zeros(2, layout)
        good["timer_id"] = 7
        j.append_batch(RecordType.TIMER, good)
        assert j.next_seq == 3                           # only the good batch went in
    with Reader(tmp_path / "j") as r:
        assert list(r.read_fixed(RecordType.TIMER)["timer_id"]) == [7, 7]


def test_per_type_counts_never_pair_one_range_with_anothers_counts(tmp_path):
    """Another thread asking for range A at every line of a count of range B (a trace function
    makes the interleaving certain) always gets range A's counts."""
    d = tmp_path / "j"
    with Journal(d) as j:
        for i in range(40):
            j.append(RecordType.TIMER if i < 10 else RecordType.MD_PACKET,
                     pack(RecordType.TIMER, timer_id=i, now_ns=i) if i < 10 else b"m")
    with Reader(d) as r, r._using() as handle:
        counts, wrong = bulk.TypeCounts(), []
        assert counts.count(handle, RecordType.TIMER, 1, 10) == 10      # range A cached
        inside = []

        def tracer(frame, event, arg):
            if frame.f_code is bulk.TypeCounts.count.__code__ and not inside:
                def lines(frame, event, arg):
                    if event == "line" and not inside:
                        inside.append(1)
                        got = counts.count(handle, RecordType.TIMER, 1, 10)
                        inside.pop()
                        if got != 10:
                            wrong.append((frame.f_lineno, got))
                    return lines
                return lines
            return None
        sys.settrace(tracer)
        try:
            assert counts.count(handle, RecordType.TIMER, 11, 40) == 0      # range B
        finally:
            sys.settrace(None)
    assert wrong == []
