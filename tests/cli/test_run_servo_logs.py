"""`mmaudit run --ptp-uds ... --ptp4l-log/--phc2sys-log`: the session's clock monitor follows the
named ptp4l's servo logs like `mmaudit clock check` does. End to end on a real ptp4l (a PTP lab in
network namespaces the test creates) with a phc2sys log that shows its servo unlocked: the session
must not trade and must say it was phc2sys. Bad uses of the options are one-line usage errors."""
from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from cli.run_cmd import command as run
from journal import Reader, RecordType
from journal.catalogue import unpack_json
from tests.audit.test_linuxptp_netns import created_lab

SETTLED_S = 30          # bound on waiting for the lab's verifier client to answer pmc as a client


def invoke(args: list[str]):
    return CliRunner().invoke(run, args, catch_exceptions=False)


def test_servo_logs_need_the_ptp4l_they_belong_to(tmp_path):
    log = tmp_path / "ptp4l.log"
    log.write_text("")
    for args in (["--ptp4l-log", str(log)], ["--phc2sys-log", str(log), "--ptp-lab"]):
        result = invoke(["--duration", "1s", "--journal", str(tmp_path / "j"), *args])
        assert result.exit_code == 2 and "give --ptp-uds too" in result.output, result.output
    result = invoke(["--duration", "1s", "--journal", str(tmp_path / "j"), "--ptp-uds", "/x",
                     "--ptp4l-log", str(tmp_path / "missing.log")])
    assert result.exit_code == 2 and "does not exist" in result.output, result.output
    assert not (tmp_path / "j").exists()          # refused before anything was written


@pytest.mark.netns
def test_a_session_follows_the_phc2sys_log_and_does_not_trade_on_an_unlocked_servo(tmp_path):
    with created_lab() as lab:
        lab.start_gm()
        lab.start_client()
        log = tmp_path / "phc2sys.log"
        # phc2sys's own -m line (stamped with CLOCK_MONOTONIC): its servo is unlocked (s0)
        log.write_text(f"phc2sys[{time.clock_gettime(time.CLOCK_MONOTONIC):.3f}]: CLOCK_REALTIME phc "
                       f"offset  5000000 s0 freq +0 delay 500\n")
        journal = tmp_path / "journal"
        result = invoke(["--duration", "2s", "--journal", str(journal), "--ptp-uds", lab.client_uds,
                         "--ptp-free-running", "--phc2sys-log", str(log), "--json"])
    assert result.exit_code == 3, result.output       # never compliant: never quoted
    summary = json.loads(result.output)
    assert summary["runner"]["orders_sent"] == 0 and not summary["clock"]["compliant"]
    assert not summary["clock_compliant_seen"] and "the clock was never compliant" in summary["problems"][-1]
    assert "phc2sys" in json.dumps(summary), summary
    with Reader(journal) as reader:
        recs = list(reader.records())
    note = unpack_json(recs[2].payload)
    assert f"following the phc2sys log {log}" in note["clock_evidence"]
    assert not [r for r in recs if r.rtype == RecordType.ORDER_SENT]
    assert [r for r in recs if r.rtype == RecordType.CLOCK_SAMPLE]
