"""`mmaudit run --resume`: a run SIGKILLed while it traded on a venue that outlives it is recovered
from its journal (replay, reconciliation with that venue) and trades on in the same journal: no
second SESSION_START, a "session-resume" note after recovery's records, orders after it, and the
session's own SESSION_STOP (its session id) at the end. A resumed run SIGKILLed in turn is resumed
again (each run journals whether it started fresh, which replay reads), and the whole journal
replays as it was decided. --resume needs the journal and a HOST:PORT venue (usage error otherwise);
a journal with no session, or a recovery that fails or does not reconcile, stops the run before it
trades."""
from __future__ import annotations

import json
import signal
import socket
import time

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.run_resume import resumer
from journal import Journal, Reader, RecordType
from journal.errors import NotAJournal
from journal.catalogue import unpack
from mm_core.session import RESUME_NOTE
from mm_core.sessionconfig import SessionConfigError, VenueSpec, lab_available, load_inputs
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.codecheck import session_start
from recovery.replay import replay_journal
from tests.cli.runproc import running
from tests.mm_core.test_runner import free_udp_port

LAB = lab_available()


def test_resume_needs_the_journal_and_a_venue_that_outlived_the_session(tmp_path):
    for args in (["--journal", str(tmp_path / "j")], ["--venue", "127.0.0.1:1", "--rerequest-port", "2"]):
        result = CliRunner().invoke(cli, ["run", "--resume", "--no-ptp-lab", *args])
        assert result.exit_code == 2 and "--resume goes on in the crashed session's --journal" in result.output
    assert not (tmp_path / "j").exists()


def _orders(path: str) -> int:
    """ORDER_SENT records in the journal (0 while it is not made yet)."""
    try:
        with Reader(path) as reader:
            return len(reader.read_fixed(RecordType.ORDER_SENT)) if reader.last_seq else 0
    except NotAJournal:
        return 0


def _traded(path: str, resumed: bool) -> bool:
    """At least 4 orders sent by the run itself: after its session-resume note when resumed."""
    try:
        note = _resume_note(path) if resumed else 0
        return (note > 0 or not resumed) and _sent_after(path, note) >= 4
    except NotAJournal:
        return False


@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_a_sigkilled_run_is_recovered_and_trades_on_in_its_journal(tmp_path):
    path = str(tmp_path / "journal")
    config = load_config().with_venue(itch_port=free_udp_port(), duration=300.0, heartbeat_timeout=60.0,
                                      log_dir=str(tmp_path / "venue"))
    with Venue(config) as venue:
        args = ["--venue", f"127.0.0.1:{venue.ports.ouch}", "--itch-port", str(config.venue.itch_port),
                "--rerequest-port", str(venue.ports.rerequest), "--journal", path, "--ptp-lab", "--control", "none"]
        for resume in ([], ["--resume"]):               # the run, then a resumed run, SIGKILLed
            with running(["--duration", "120s", *resume, *args]) as run:
                # a resumed run trades only after its note: recovery's own cancels come before it
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline and run.proc.poll() is None and not _traded(path, resume):
                    time.sleep(0.2)
                assert _traded(path, resume), run.stderr()
                run.proc.send_signal(signal.SIGKILL)
                run.proc.wait(10)
            crashed = _orders(path)
        result = CliRunner().invoke(cli, ["run", "--resume", *args, "--duration", "4s"])
    assert result.exit_code == 0, result.output
    assert "reconciled with the venue; the session goes on, trading ACTIVE" in result.output
    with Reader(path) as reader:
        records = [(r.seq, r.rtype, r.payload) for r in reader.records()]
    starts = [p for _, t, p in records if t == RecordType.SESSION_START]
    stops = [p for _, t, p in records if t == RecordType.SESSION_STOP]
    assert len(starts) == 1 and len(stops) == 1
    started = unpack(RecordType.SESSION_START, starts[0])["session_id"]
    assert unpack(RecordType.SESSION_STOP, stops[0])["session_id"] == started
    notes = [seq for seq, t, p in records if t == RecordType.METRICS and json.loads(p).get("note") == RESUME_NOTE]
    recons = [(seq, json.loads(p).get("kind")) for seq, t, p in records if t == RecordType.RECON]
    assert len(notes) == 2, notes
    for after, note in zip([0, notes[0]], notes):        # each recovery's records, then the session goes on
        assert any(after < seq < note and kind == "outcome" for seq, kind in recons), (notes, recons)
    assert sum(1 for seq, t, _ in records if t == RecordType.ORDER_SENT and seq > notes[-1]) > 0
    assert _orders(path) > crashed
    again = replay_journal(path, load_inputs().build_engine())
    assert again.deterministic, again.divergences[:3]


def test_no_session_to_resume_or_a_venue_that_cannot_reconcile_stops_the_run_before_it_trades(tmp_path):
    inputs = load_inputs()
    with socket.socket() as probe:                     # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        venue = VenueSpec("external", "127.0.0.1", probe.getsockname()[1], free_udp_port(), free_udp_port())
    said: list[str] = []
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        journal.append(RecordType.METRICS, b'{"note":"x"}')
    with pytest.raises(SessionConfigError, match="holds no SESSION_START: no session to resume"):
        resumer(path, venue, said.append)(inputs)
    with Journal(path) as journal:
        journal.append(RecordType.SESSION_START, session_start(engine=inputs.build_engine(), now_ns=time.time_ns()))
    with pytest.raises(SessionConfigError, match=f"^recovery of {path} "):
        resumer(path, venue, said.append)(inputs)
    assert not any(line.startswith("recovered:") for line in said)


def _sent_after(path: str, seq: int, msg_types: bytes = b"OUXM") -> int:
    """ORDER_SENT records of these OUCH types after journal sequence `seq` (0 while the journal
    holds no record)."""
    with Reader(path) as reader:
        if not reader.last_seq:
            return 0
        sent = reader.read_fixed(RecordType.ORDER_SENT)
    return int(((sent["seq"] > seq) & np.isin(sent["msg_type"], list(msg_types))).sum())


def _enters_after(path: str, seq: int) -> int:
    """ORDER_SENT records of new orders ('O') after journal sequence `seq`."""
    return _sent_after(path, seq, b"O")


def _resume_note(path: str) -> int:
    """The sequence of the journal's last session-resume note (0: none yet)."""
    with Reader(path) as reader:
        if not reader.last_seq:
            return 0
        notes = [r.seq for r in reader.records(rtypes=[RecordType.METRICS])
                 if json.loads(r.payload).get("note") == RESUME_NOTE]
    return notes[-1] if notes else 0


def _operator(path: str, command: str) -> None:
    result = CliRunner().invoke(cli, ["operator", command, "--journal", path, "--actor", "ops",
                                      "--reason", f"resume test {command}"])
    assert result.exit_code == 0, result.output


@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_an_operators_kill_in_force_at_the_crash_holds_the_resumed_run_until_enabled(tmp_path):
    """The operator kills the session through its control socket, then it is SIGKILLed: the
    resumed run reconciles, says it goes on HALTED until an operator enables it, sends no new order
    while the kill holds (its control socket answers, the dead run's socket file notwithstanding),
    and trades again after `mmaudit operator enable`."""
    path = str(tmp_path / "journal")
    config = load_config().with_venue(itch_port=free_udp_port(), duration=300.0, heartbeat_timeout=60.0,
                                      log_dir=str(tmp_path / "venue"))
    with Venue(config) as venue:
        args = ["--venue", f"127.0.0.1:{venue.ports.ouch}", "--itch-port", str(config.venue.itch_port),
                "--rerequest-port", str(venue.ports.rerequest), "--journal", path, "--ptp-lab"]
        with running(["--duration", "120s", *args]) as run:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and run.proc.poll() is None and _orders(path) < 4:
                time.sleep(0.2)
            assert _orders(path) >= 4, run.stderr()
            _operator(path, "kill")
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(10)
        with running(["--resume", "--duration", "60s", *args]) as resumed:
            deadline = time.monotonic() + 90           # recovery's progress goes to stderr
            while time.monotonic() < deadline and resumed.proc.poll() is None and \
                    "recovered:" not in resumed.stderr():
                time.sleep(0.2)
            said = resumed.stderr()
            assert "trading HALTED until an operator enables it" in said, said
            assert "latched by killed: " in said and "resume test kill" in said, said
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and resumed.proc.poll() is None and not _resume_note(path):
                time.sleep(0.2)
            note = _resume_note(path)
            assert note, resumed.stderr()
            time.sleep(2.0)                              # quotes would be out by now were it trading
            assert _enters_after(path, note) == 0
            _operator(path, "enable")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and resumed.proc.poll() is None and not _enters_after(path, note):
                time.sleep(0.2)
            assert _enters_after(path, note) > 0, resumed.stderr()
            assert resumed.interrupt() == 0, resumed.out + resumed.err
