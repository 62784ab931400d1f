"""The `mmaudit journal` commands against real journals: demo, info, dump (text and JSON), tail
with bounds, and verify's exit status naming the bad record."""
from __future__ import annotations

import json
import time

from click.testing import CliRunner

from cli.journal_cmd import command
from journal import Journal, RecordType, Reader
from journal.catalogue import pack
from tests.journal.jhelpers import flip_byte, record_offsets, segment_files, write_journal
from tests.journal.test_reader_end import remove_segment


def run(*args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def test_demo_writes_a_verified_mix(tmp_path):
    d = tmp_path / "demo"
    result = run("demo", "--dir", d, "--records", 3000, "--segment-size", 65536)
    assert result.exit_code == 0, result.output
    assert "wrote 3000 records" in result.output and "verify: OK" in result.output
    with Reader(d) as r:
        types = {rec.rtype for rec in r}
        assert len(r) == 3000 and len(r.segments()) > 1
    assert {RecordType.SESSION_START, RecordType.MD_PACKET, RecordType.ORDER_SENT, RecordType.TX_TS,
            RecordType.CLOCK_SAMPLE, RecordType.SESSION_STOP} <= types
    again = run("demo", "--dir", d, "--records", 10)
    assert again.exit_code != 0 and "is not empty" in again.output


def test_info_dump_and_verify(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=65536) as j:
        j.append(RecordType.TIMER, pack(RecordType.TIMER, timer_id=9, now_ns=123), ts_ns=5, ts_source=3)
        j.append(RecordType.MD_PACKET, b"\x01\x02raw")
        j.append(RecordType.RECON, b'{"found":1}')
    info = run("info", d)
    assert info.exit_code == 0 and "records   3 (seq 1..3)" in info.output and "closed cleanly" in info.output
    assert "reserve   65536 bytes" in info.output
    assert json.loads(run("info", d, "--json").output)["last_seq"] == 3
    lines = [json.loads(line) for line in run("dump", d, "--json").output.splitlines()]
    assert [x["type"] for x in lines] == ["TIMER", "MD_PACKET", "RECON"]
    assert lines[0]["payload"] == {"timer_id": 9, "now_ns": 123, "hex": pack(RecordType.TIMER, timer_id=9,
                                                                            now_ns=123).hex()}
    assert lines[0]["ts_source"] == "USER" and lines[1]["payload"] == {"hex": "010272617720"[:-2]}
    assert lines[2]["payload"] == {"json": {"found": 1}, "hex": b'{"found":1}'.hex()}
    text = run("dump", d, "--type", "timer").output
    assert "timer_id=9" in text and "MD_PACKET" not in text
    assert "SEAL" in run("dump", d, "--control").output
    assert run("dump", d, "--type", "nonsense").exit_code != 0
    ok = run("verify", d)
    assert ok.exit_code == 0 and ok.output.startswith("OK: 3 records")


def test_verify_names_the_bad_record_and_exits_nonzero(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=65536) as j:
        for i in range(20):
            j.append(RecordType.MD_PACKET, b"payload %d" % i)
    seg = segment_files(d)[0]
    off = record_offsets(seg)[7][0]
    flip_byte(seg, off + 35)
    result = CliRunner().invoke(command, ["verify", str(d)])
    assert result.exit_code == 1
    assert f"bad crc at segment 0 offset {off} seq 8" in result.stderr
    dumped = CliRunner().invoke(command, ["dump", str(d)])
    assert len(dumped.stdout.splitlines()) == 7 and dumped.exit_code == 1
    assert "the journal stops before seq 8: bad crc" in dumped.stderr


def test_tail_is_bounded_by_count_and_idle_timeout(tmp_path):
    d = tmp_path / "j"
    with Journal(d, segment_size=65536) as j:
        for i in range(50):
            j.append(RecordType.MD_PACKET, b"p%d" % i)
    counted = run("tail", d, "--from-seq", 45, "--count", 3)
    assert [line.split()[0] for line in counted.output.splitlines()] == ["45", "46", "47"]
    idle = run("tail", d, "--from-seq", 49, "--idle-timeout", 0.3, "--json")
    assert [json.loads(x)["seq"] for x in idle.output.splitlines()] == [49, 50]
    named = run("tail", d, "--name", "ops", "--count", 10)
    assert named.exit_code == 0 and (d / "tailers" / "ops.pos").read_text().split()[:3] == ["mmjpos", "2", "11"]
    assert run("tail", tmp_path / "nothing", "--count", 1).exit_code != 0


def test_stress_runs_both_campaigns_and_reports_zero_failures(tmp_path):
    result = run("stress", "--kills", "4", "--power-cuts", "30", "--seed", "3", "--workdir", tmp_path)
    assert result.exit_code == 0, result.output
    kill_line, power_line = result.output.splitlines()[:2]
    assert kill_line.startswith("SIGKILL: 4 runs") and kill_line.endswith(" s") and " 0 failures" in kill_line
    assert power_line.startswith("power loss: 30 cuts") and " 0 failures" in power_line


def test_verify_and_info_name_what_an_earlier_recovery_kept(tmp_path):
    """The journal left after damage verifies, but verify exits 1 and info lists discarded/: an
    auditor sees that records left the journal, and where they are."""
    from tests.journal.jhelpers import write_journal

    d = tmp_path / "j"
    write_journal(d, 2000)
    victim = segment_files(d)[1]
    flip_byte(victim, record_offsets(victim)[5][0] + 40)
    with Journal(d) as j:
        assert j.recovery.discarded_run == 1
    result = run("verify", d)
    assert result.exit_code == 1 and "DAMAGED EARLIER" in result.output
    assert str(d / "discarded" / "r1") in result.output and f"mmaudit journal salvage {d}" in result.output
    info = run("info", d)
    assert info.exit_code == 0 and "discarded " in info.output and "r1:" in info.output


def test_verify_and_info_name_a_discarded_entry_no_recovery_made(tmp_path):
    """A discarded/r<N> that is a file (not a run a recovery wrote) is named as unreadable by info
    and verify, which exits 1, instead of either of them crashing."""
    from tests.journal.jhelpers import write_journal

    d = tmp_path / "j"
    write_journal(d, 100)
    (d / "discarded").mkdir()
    (d / "discarded" / "r1").write_bytes(b"not a run")
    result = run("verify", d)
    assert result.exit_code == 1 and "DAMAGED EARLIER" in result.output
    assert f"{d / 'discarded' / 'r1'}: unreadable (NotADirectoryError" in result.output
    info = run("info", d)
    assert info.exit_code == 0 and "r1: unreadable (NotADirectoryError" in info.output


def test_a_demo_that_fills_the_disk_part_way_removes_its_journal(small_tmpfs):
    """Created, then a roll finds the 1 MiB mount full: the partial demo journal goes, so the
    directory can take the next demo (a failed creation leaves nothing by itself)."""
    target = small_tmpfs / "jd"
    result = CliRunner().invoke(command, ["demo", "--dir", str(target), "--records", "200000",
                                          "--segment-size", "65536"])
    assert result.exit_code == 1 and "no space left to preallocate a segment" in result.output, result.output
    assert "the partial demo journal was removed" in result.output
    assert list(small_tmpfs.iterdir()) == []


def test_tail_stops_at_a_missing_segment_instead_of_waiting(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 3000)
    first_missing = remove_segment(d, 2)
    started = time.monotonic()
    result = run("tail", d, "--json")                     # no idle timeout: it would follow for ever
    assert result.exit_code == 1 and "segment 2 is missing" in result.output, result.output
    assert [json.loads(x)["seq"] for x in result.output.splitlines()[:-1]] == list(range(1, first_missing))
    assert time.monotonic() - started < 30
