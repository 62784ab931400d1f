"""A session that starts its own venue (embedded or process) opens its market-data socket before
the venue starts: the venue's start of day waits there for the runner instead of being sent
before anything listens, so the session reads MoldUDP64 from sequence 1 with no gap (before, every
session began with one gap, re-requested, and an "errors" row in a clean run's summary)."""
import json
import struct

import pytest
from click.testing import CliRunner

from cli.run_cmd import command as run
from journal import Reader
from journal.catalogue import RecordType


@pytest.mark.parametrize("venue", ["embedded", "process"])
def test_the_venues_start_of_day_is_read_from_sequence_one_with_no_gap(tmp_path, venue):
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--venue", venue, "--duration", "2s", "--journal", str(journal),
                                      "--no-ptp-lab", "--json"], catch_exceptions=False)
    assert result.exit_code == 3, result.output       # no clock here on purpose: never quoted
    counts = json.loads(result.output)["engine"]["counts"]
    assert counts["md_packets"] > 0 and counts["gaps"] == 0 and counts["md_gap_packets"] == 0, counts
    with Reader(journal) as reader:
        first = next(r for r in reader.records(rtypes=[RecordType.MD_PACKET]))
    # MoldUDP64 header: session (10 bytes), sequence number of the first message (u64, big-endian)
    assert struct.unpack_from(">Q", first.payload, 10)[0] == 1
