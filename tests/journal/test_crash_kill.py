"""Process crash: a real writer process is SIGKILLed at seeded random points, then recovered.

After every kill the journal is reopened as writer (recovery, lock takeover) and read back in full:
every record whose append returned is there with the seq append returned, every payload matches
what was written, and sequences are contiguous. One journal takes a chain of kills, so recovery of
an already-recovered journal, kills during open, segment rolls and batches are all exercised.
"""
from __future__ import annotations

import pytest

from journal.stress import Readback, check_prefix, expected_record, kill_runs


def test_checker_rejects_lost_reordered_and_extra_records():
    # The crash verdicts below are only worth something if the checker can say no.
    assert check_prefix(Readback([1, 2, 3], 0), [1, 2], 5) is None
    assert "lost acknowledged" in check_prefix(Readback([1], 0), [1, 2], 5)
    assert "append returned" in check_prefix(Readback([1, 3], 0), [1, 2], 5)
    assert "only 2 were ever appended" in check_prefix(Readback([1, 2, 3], 0), [1], 2)
    assert check_prefix(Readback([1], 0, "boom"), [], 5) == "boom"


def test_generator_is_deterministic_and_varied():
    records = [expected_record(i) for i in range(4000)]
    assert records == [expected_record(i) for i in range(4000)]
    sizes = {len(r.payload) for r in records}
    assert min(sizes) <= 16 and max(sizes) >= 1500          # tiny and segment-rolling payloads
    assert len({r.rtype for r in records}) >= 2             # variable and fixed-layout types
    assert len({r.payload for r in records}) == len(records)  # a misplaced payload cannot pass


@pytest.mark.slow
def test_sigkill_at_random_points_loses_no_acknowledged_record(tmp_path):
    report = kill_runs(200, seed=20261121, workdir=tmp_path)
    assert report.first_failure is None, report.first_failure
    assert report.failures == 0 and report.runs == 200
    assert report.killed >= 100, report            # most runs really end by SIGKILL
    assert report.killed_in_open >= 5, report      # some die inside open/recovery
    assert report.clean_exits >= 1, report
    assert report.acked > 10_000, report
    assert report.verified >= report.acked, report
