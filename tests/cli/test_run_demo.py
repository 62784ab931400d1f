"""`mmaudit run` and `mmaudit demo` end to end: the embedded venue on real loopback sockets, the
PTP lab in real network namespaces (when this machine can make them), journals read back, reports
read back with pyarrow, Ctrl-C and errors tearing the lab down, and one-line errors for bad input."""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli.demo_cmd import command as demo
from cli.run_cmd import command as run, money
from journal import Journal, Reader, RecordType, verify
from journal.catalogue import unpack, unpack_json
from audit.ptplab import lab_namespaces
from mm_core.sessionconfig import lab_available
from tests.journal.jhelpers import SMALL_SEGMENT, flip_byte, record_offsets, segment_files
from tests.cli.runproc import running
from tests.recovery.journaling import session_events, write_session

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB = lab_available()
needs_lab = pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")


def invoke(cmd, args: list[str]):
    return CliRunner().invoke(cmd, args, catch_exceptions=False)


def records(path) -> list:
    with Reader(path) as reader:
        return list(reader.records())


def test_run_with_the_lab_trades_journals_and_removes_the_lab(tmp_path):
    journal = tmp_path / "journal"
    result = invoke(run, ["--duration", "3s", "--journal", str(journal), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    recs = records(journal)
    sent = [r for r in recs if r.rtype == RecordType.ORDER_SENT]
    assert len(sent) == summary["runner"]["orders_sent"]
    assert [r.rtype for r in recs[:3]] == [RecordType.SESSION_START, RecordType.LIMITS_LOADED, RecordType.METRICS]
    assert recs[-1].rtype == RecordType.SESSION_STOP
    stop = unpack(RecordType.SESSION_STOP, recs[-1].payload)
    assert int(stop["orders"]) == len(sent) and stop["reason"] == b"duration"
    note = unpack_json(recs[2].payload)
    if LAB:
        # no network namespaces here: the engine must not have traded, and say it was the clock
        assert not sent and summary["clock"]["state"] != "LOCKED"
        assert "clock" in summary["not_trading_reason"] and any("clock" in f for f in summary["faults"])
        return
    assert summary["clock"]["source"] == note["clock_source"] == "ptp-lab"
    assert "grandmaster is this host's own clock" in note["clock_evidence"]
    assert summary["clock"]["compliant"] and summary["clock"]["compliant_at_start"]
    assert sent and summary["trading_state"] == "ACTIVE" and not summary["not_trading_reason"]
    samples = [unpack(RecordType.CLOCK_SAMPLE, r.payload) for r in recs if r.rtype == RecordType.CLOCK_SAMPLE]
    assert samples and all(int(s["state"]) == 1 and int(s["compliant_mask"]) & 1 for s in samples)
    assert summary["journal"]["by_type"]["ORDER_SENT"] == len(sent)
    assert not lab_namespaces(os.getpid())          # the lab's namespaces are gone


def test_run_without_a_clock_fails_closed_and_says_why(tmp_path):
    journal = tmp_path / "journal"
    # without the lab the monitor looks for a ptp4l at the default UDS path and finds none here
    result = invoke(run, ["--duration", "2s", "--journal", str(journal), "--no-ptp-lab"])
    assert result.exit_code == 3, result.output       # it never quoted: the session failed its purpose
    out = result.output
    assert re.search(r"outcome\s+FAILED \(exit 3\): the clock was never compliant for eu-hft: the gateway "
                     r"let no order out", out)
    assert re.search(r"orders sent\s+0 ", out) and re.search(r"trading state\s+\w+ \(faults: clock", out)
    assert re.search(r"not trading\s+the risk gateway refused to trade: the clock was not compliant", out)
    assert "no answer from ptp4l" in out or "pmc" in out
    assert "[" in out and "events" in out            # progress lines were printed
    recs = records(journal)
    assert not [r for r in recs if r.rtype == RecordType.ORDER_SENT]
    assert [r for r in recs if r.rtype == RecordType.MD_PACKET]     # it did listen to the market
    samples = [unpack(RecordType.CLOCK_SAMPLE, r.payload) for r in recs if r.rtype == RecordType.CLOCK_SAMPLE]
    assert samples and all(int(s["state"]) == 0 and int(s["compliant_mask"]) == 0 for s in samples)


def test_run_as_a_process_is_stopped_by_ctrl_c_and_leaves_no_namespace(tmp_path):
    journal = tmp_path / "journal"
    with running(["--duration", "60s", "--journal", str(journal), "--venue", "process"]) as run_proc:
        seen = run_proc.read_until("[", 30)
        assert "events" in seen, seen
        code = run_proc.interrupt(30)
    out, err = run_proc.out, run_proc.err
    assert code == 0, err
    assert "stopped: stopped" in out
    stop = [r for r in records(journal) if r.rtype == RecordType.SESSION_STOP]
    assert len(stop) == 1 and unpack(RecordType.SESSION_STOP, stop[0].payload)["reason"] == b"stopped"
    assert verify(journal).ok
    assert not lab_namespaces(run_proc.proc.pid)


@needs_lab
def test_an_error_after_the_lab_started_still_removes_it(tmp_path):
    # nothing listens on this port: the runner cannot log in once the lab is up and locked
    result = CliRunner().invoke(run, ["--venue", "127.0.0.1:9", "--rerequest-port", "9", "--ptp-lab",
                                      "--duration", "2s", "--journal", str(tmp_path / "j")])
    assert result.exit_code == 1
    assert "cannot reach the venue's order entry at 127.0.0.1:9" in result.output
    assert not lab_namespaces(os.getpid())


def test_demo_end_to_end_writes_what_it_says(tmp_path):
    out = tmp_path / "demo"
    result = invoke(demo, ["--duration", "5s", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert re.search(r"journal verify\s+OK", text)
    assert re.search(r"clock report\s+(NOT_COMPLIANT|COMPLIANT|INCOMPLETE_EVIDENCE|LAB_CLOCK_NOT_TRACEABLE) "
                     r"for eu-hft: \d+/\d+ samples within", text)
    if "ptp-lab:" in text:        # the lab's clock is never reported as compliant evidence
        assert not re.search(r"clock report\s+COMPLIANT", text)
        assert "not traceability to UTC" in text.split("clock report", 1)[1].splitlines()[0]
    m = re.search(r"files written\s+(\d+) under (\S+)", text)
    assert m and pathlib.Path(m.group(2)) == out / "reports"
    files = [p for p in (out / "reports").rglob("*") if p.is_file() and p.name != "_manifest.json"]
    assert len(files) == int(m.group(1)) > 0
    assert verify(out / "journal").ok
    for kind in ("orders", "rts22", "clock", "controls", "cat", "execution-quality"):
        assert (out / "reports" / kind / "_manifest.json").exists(), kind
        rows = re.search(rf"report {re.escape(kind)}\s+(.*); rejected (\d+)", text)
        assert rows, kind
    for path in (out / "reports").rglob("*.parquet"):
        assert pq.read_metadata(path).num_rows >= 0      # every file is real Parquet
    samples = pq.ParquetDataset(out / "reports" / "clock" / "samples").read()
    sent = [r for r in records(out / "journal") if r.rtype == RecordType.ORDER_SENT]
    assert samples.num_rows == len([r for r in records(out / "journal") if r.rtype == RecordType.CLOCK_SAMPLE])
    if LAB:
        assert "PTP lab unavailable" in text and not sent and "not trading" in text
    else:
        assert "loopback PTP lab" in text and sent
        assert re.search(rf"orders sent\s+{len(sent)} ", text)
        # where the time went for the packets that sent orders, stage by stage
        assert re.search(r"latency p50/p99 µs\s+RX stamp to read [\d.]+/[\d.]+, journal [\d.]+/[\d.]+, "
                         r"decide \(first orders sent inside\) [\d.]+/[\d.]+, other orders journaled and sent "
                         r"[\d.]+/[\d.]+ \(\d+ market-data", text)


def test_bad_arguments_give_one_clear_line(tmp_path):
    bad_limits = tmp_path / "limits.toml"
    bad_limits.write_text('version = 1\nclock_profile = "eu-hft"\n')
    bad_config = tmp_path / "engine.toml"
    bad_config.write_text("[engine]\nquote_size = 'lots'\n")
    cases = [
        (["--venue", "nowhere"], "expected embedded, process or HOST:PORT"),
        (["--venue", "127.0.0.1:9"], "--rerequest-port"),
        (["--limits", str(bad_limits)], "staleness.max_market_age_ms: required field is missing"),
        (["--limits", str(tmp_path / "missing.toml")], "cannot read the limits file"),
        (["--config", str(bad_config)], "engine.quote_size: must be an integer"),
        (["--venue", "127.0.0.1:9", "--rerequest-port", "9", "--seed", "3"], "--seed applies"),
    ]
    for args, expected in cases:
        result = CliRunner().invoke(run, args + ["--journal", str(tmp_path / "j")])
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.output and result.output.startswith("Error: "), (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    usage = [(["--duration", "soon"], "not a positive duration"),
             (["--ptp-lab", "--ptp-uds", "/x"], "not both"),
             (["--profile", "eu-fast"], "eu-fast")]
    for args, expected in usage:
        result = CliRunner().invoke(run, args)
        assert result.exit_code == 2 and expected in result.output, (args, result.output)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    result = CliRunner().invoke(demo, ["--out", str(full)])
    assert result.exit_code == 1 and "is not an empty directory" in result.output


def test_a_locked_journal_and_a_missing_pmc_are_refused(tmp_path):
    path = tmp_path / "journal"
    with Journal(str(path)):
        result = CliRunner().invoke(run, ["--journal", str(path), "--no-ptp-lab", "--duration", "1s"])
    assert result.exit_code == 1 and f"journal {path} is locked by another writer (pid {os.getpid()})" in result.output
    empty = tmp_path / "bin"
    empty.mkdir()
    result = CliRunner(env={"PATH": str(empty)}).invoke(
        run, ["--journal", str(tmp_path / "j2"), "--ptp-uds", "/var/run/ptp4l", "--duration", "1s"])
    assert result.exit_code == 1 and "pmc is not installed" in result.output


def test_a_run_refuses_damage_behind_a_trusted_segment_summary(tmp_path):
    """In group mode a sealed segment's summary is believed at the writer's open: a journal with a
    flipped byte inside it holds a session, so `run` refuses it (exit 2, one line naming the way
    on) before the writer opens it: no file changes, no successor segment is started."""
    path = tmp_path / "journal"
    write_session(str(path), session_events(5, 900), segment_size=SMALL_SEGMENT,
                  durability="group").journal.close()
    damaged = segment_files(path)[1]
    flip_byte(damaged, record_offsets(damaged)[10][0] + 40)
    before = [p.read_bytes() for p in segment_files(path)]
    result = CliRunner().invoke(run, ["--journal", str(path), "--no-ptp-lab",
                                      "--duration", "1s"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "already holds session 1" in result.output and "mmaudit recover" in result.output
    assert [p.read_bytes() for p in segment_files(path)] == before


def test_money_is_integer_arithmetic():
    assert [money(v) for v in (0, 12_345, -12_345, 5_000, -49, 10_000_000_000, None)] == \
        ["0.00", "1.23", "-1.23", "0.50", "-0.00", "1,000,000.00", "n/a"]
    # a METRICS ..._x2 figure is twice the amount
    assert [money(v, halves=True) for v in (24_690, -24_690, 100, 99, None)] == \
        ["1.23", "-1.23", "0.01", "0.00", "n/a"]


def test_demo_without_root_says_so_and_does_not_trade(tmp_path):
    """In a fresh user namespace the process is not root (euid 65534) and cannot make network
    namespaces: the demo must run without the lab, trade nothing, say why and exit 3 (the session
    never quoted: it failed its purpose), its journal verified and reports written all the same."""
    probe = subprocess.run(["unshare", "--user", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"cannot enter a user namespace here: {probe.stderr.decode().strip()}")
    out = tmp_path / "demo"
    proc = subprocess.run(["unshare", "--user", sys.executable, "-c", "from cli.demo_cmd import command; command()",
                           "--duration", "2s", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    text = proc.stdout
    assert "PTP lab unavailable: not running as root" in text and "does not trade (fail closed): it exits 3" in text
    assert "FAILED (exit 3): the clock was never compliant" in text
    assert re.search(r"orders sent\s+0 ", text)
    assert re.search(r"not trading\s+the risk gateway refused to trade: the clock was not compliant", text)
    assert re.search(r"journal verify\s+OK", text)
    assert not [r for r in records(out / "journal") if r.rtype == RecordType.ORDER_SENT]


def test_run_against_a_venue_given_as_host_port(tmp_path):
    """The runner logs in to a venue this session did not start, and its market data arrives on
    the port named with --itch-port."""
    from mm_core.sessionsetup import free_udp_port
    from mm_core.venue.config import load_config
    from mm_core.venue.server import Venue
    itch = free_udp_port()
    config = load_config().with_venue(itch_port=itch, duration=30.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=30.0)
    with Venue(config) as venue:
        ports = venue.ports
        args = ["--venue", f"127.0.0.1:{ports.ouch}", "--itch-port", str(itch), "--rerequest-port",
                str(ports.rerequest), "--duration", "2s", "--journal", str(tmp_path / "j"), "--json"]
        result = invoke(run, args + ([] if LAB else ["--ptp-lab"]))
        answers = venue.session_messages("MM01")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["venue"]["kind"] == "external" and summary["venue"]["ouch_port"] == ports.ouch
    recs = records(tmp_path / "j")
    assert [r for r in recs if r.rtype == RecordType.MD_PACKET]
    assert [r for r in recs if r.rtype == RecordType.VENUE_MSG]         # the login was accepted
    sent = [r for r in recs if r.rtype == RecordType.ORDER_SENT]
    assert len(sent) == summary["runner"]["orders_sent"]
    if not LAB:
        assert sent and answers       # the lab clock was asked for explicitly: it trades


def test_profile_override_lives_in_the_limits_document(tmp_path):
    """The gateway, the runner and a later replay all read the limits' clock_profile, so --profile
    rewrites it there (and the journaled limits document says so)."""
    from mm_core.risk import EXAMPLE_TOML
    from mm_core.sessionconfig import load_inputs, with_clock_profile
    inputs = load_inputs(profile="us-cat")
    assert inputs.limits.clock_profile == "us-cat" and 'clock_profile = "us-cat"' in inputs.limits_text
    assert inputs.limits_text.count("clock_profile") == EXAMPLE_TOML.count("clock_profile")
    assert inputs.config_sha256() != load_inputs().config_sha256()
    bare = EXAMPLE_TOML.replace('clock_profile = "eu-hft"\n', "")
    limits = tmp_path / "limits.toml"
    limits.write_text(bare)
    assert load_inputs(limits_path=str(limits)).limits.clock_profile == "eu-hft"     # the default
    assert load_inputs(limits_path=str(limits), profile="eu-algo").limits.clock_profile == "eu-algo"
    assert with_clock_profile(bare, "eu-algo").startswith('clock_profile = "eu-algo"\n')
    result = invoke(run, ["--profile", "eu-algo", "--no-ptp-lab", "--duration", "1s", "--journal",
                          str(tmp_path / "j"), "--json"])
    assert result.exit_code == 3, result.output       # no clock here on purpose: never quoted
    recs = records(tmp_path / "j")
    assert unpack(RecordType.SESSION_START, recs[0].payload)["profile"] == b"eu-algo"
    assert 'clock_profile = \\"eu-algo\\"' in recs[1].payload.decode()
    assert json.loads(result.output)["clock"]["profile"] == "eu-algo"


def test_busy_poll_still_serves_every_input_and_stops_on_time(tmp_path):
    started = time.monotonic()
    result = invoke(run, ["--busy-poll", "--no-ptp-lab", "--duration", "1500ms", "--journal",
                          str(tmp_path / "j"), "--json"])
    assert result.exit_code == 3, result.output       # no clock here on purpose: never quoted
    summary = json.loads(result.output)
    assert summary["runner"]["stop_reason"] == "duration" and summary["runner"]["inputs"] > 0
    kinds = summary["journal"]["by_type"]
    assert kinds["MD_PACKET"] > 0 and kinds["TIMER"] >= 10 and kinds["CLOCK_SAMPLE"] >= 1
    assert time.monotonic() - started < 30
    assert summary["runner"]["warm_steps"] > 0        # idle-time warming is on by default


def test_warm_interval_zero_turns_idle_warming_off(tmp_path):
    result = invoke(run, ["--busy-poll", "--warm-interval", "0", "--no-ptp-lab", "--duration", "1s",
                          "--journal", str(tmp_path / "j"), "--json"])
    assert result.exit_code == 3, result.output       # no clock here on purpose: never quoted
    summary = json.loads(result.output)
    assert summary["runner"]["warm_steps"] == 0 and summary["runner"]["inputs"] > 0


@pytest.mark.parametrize("args, message", [
    (["--warm-interval", "1ms"], "applies to --busy-poll only"),
    (["--busy-poll", "--warm-interval", "fast"], "not 0 or an interval like 250us"),
    (["--busy-poll", "--warm-interval", "250"], "not 0 or an interval like 250us"),
    (["--busy-poll", "--warm-interval", "0.0001us"], "rounds to 0 ns"),
    (["--busy-poll", "--warm-interval", "9" * 400 + "ms"], "is over 1s: a shadow step that rare keeps nothing warm"),
    (["--busy-poll", "--warm-interval", "1.5s"], "is over 1s"),
])
def test_a_bad_warm_interval_is_refused_before_anything_runs(tmp_path, args, message):
    result = invoke(run, [*args, "--no-ptp-lab", "--duration", "1s", "--journal", str(tmp_path / "j")])
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "j").exists()
