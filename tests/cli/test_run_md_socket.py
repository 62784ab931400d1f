"""`mmaudit run --md-rcvbuf`: the market-data socket's receive buffer as typed (256K, 4M), a size
out of range a usage error; the summary shows the buffer and the kernel's drops on it, the errors
row counts the drops and a gap apart from the packets that came past it; a session journals the
buffer at its start (the drops, in alerts as they are found: none here)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from cli.params import byte_size
from cli.run_cmd import command as run, error_counts, gap_packets_text, md_socket_text
from journal import Reader
from journal.catalogue import RecordType, unpack_json
from mm_core.runnertypes import RunnerReport
from mm_core.sessionconfig import lab_available

LAB = lab_available()
needs_lab = pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")


@pytest.mark.parametrize("text, n", [("262144", 262144), ("256K", 262144), ("4M", 4 << 20),
                                     ("4MiB", 4 << 20), (" 1g ", 1 << 30), ("8kb", 8192)])
def test_sizes_are_read_in_binary_units(text, n):
    assert byte_size(text, "--md-rcvbuf", 4096, 1 << 30) == n


@pytest.mark.parametrize("text, problem", [("4 megs", "not a size"), ("-4M", "not a size"),
                                           ("1K", "must be 4096..1073741824"), ("2G", "must be")])
def test_a_size_not_understood_or_out_of_range_names_the_option(text, problem):
    with pytest.raises(click.BadParameter, match=problem) as info:
        byte_size(text, "--md-rcvbuf", 4096, 1 << 30)
    assert info.value.param_hint == "--md-rcvbuf"


def test_the_cli_refuses_a_receive_buffer_too_small_before_anything_is_made(tmp_path):
    out = CliRunner().invoke(run, ["--md-rcvbuf", "1K", "--journal", str(tmp_path / "j")])
    assert out.exit_code == 2 and "--md-rcvbuf" in out.output and "must be 4096.." in out.output
    assert not (tmp_path / "j").exists()


def test_the_summary_shows_the_buffer_the_drops_and_a_gap_apart_from_its_packets():
    report = RunnerReport(md_rcvbuf=8 << 20, md_kernel_drops=3)
    assert md_socket_text(report) == ("receive buffer 8,388,608 bytes as the kernel counts them; "
                                      "3 datagrams dropped by the kernel")
    row = error_counts(SimpleNamespace(runner=report, engine={"counts": {"gaps": 1, "md_gap_packets": 26,
                                                                         "md_gap_kept": 24, "md_gap_dropped": 2}}))
    # the packets past a gap are kept now (not re-requested): only those the buffer had no room for are
    assert row == ("market data dropped by the kernel (receive buffer full) 3, market-data gaps 1, "
                   "packets past a gap 26, packets past a gap not kept (buffer full, re-requested) 2")
    assert gap_packets_text({"md_gap_packets": 26, "md_gap_kept": 24, "md_gap_applied": 23, "md_gap_dropped": 2,
                             "md_gap_discarded": 1}) == (
        "24 kept, 23 applied once the gap was filled, 2 dropped (buffer full, re-requested), "
        "1 discarded (their messages came in another packet)")


@needs_lab
def test_a_session_journals_its_receive_buffer_and_the_kernels_drops(tmp_path):
    journal = tmp_path / "j"
    out = CliRunner().invoke(run, ["--duration", "2s", "--md-rcvbuf", "256K", "--journal", str(journal),
                                   "--json", "--close-out", "1s"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output[out.output.index("{"):])
    assert doc["runner"]["md_rcvbuf"] == 2 * 256 * 1024 and doc["runner"]["md_kernel_drops"] == 0
    with Reader(str(journal)) as reader:
        notes = [unpack_json(r.payload) for r in reader.records() if r.rtype == RecordType.METRICS]
    (start,) = [n for n in notes if n.get("note") == "session-start"]
    assert start["md_socket"] == {"rcvbuf_asked": 256 * 1024, "rcvbuf_kernel": 2 * 256 * 1024,
                                  "capped": False, "drops_counted": "SO_RXQ_OVFL"}
    assert not [n for n in notes if n.get("alert") == "md-kernel-drops"]
