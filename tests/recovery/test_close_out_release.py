"""Recovery after a clean end: real sessions on the embedded venue end with the runner's close-out
(a kill of everything by "session", the venue's answers, the logout) and SESSION_STOP. Recovery
releases exactly that kill, by a RECON record with the evidence and an OPERATOR_CMD by "recovery",
once the venue reconciles: the engine can trade again, and a replay of the recovered journal
decides the same. An operator's kill, a session that ended with a fault, or a close-out that left
orders open is not released."""
from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner

from cli.recover_cmd import command as recover_cli
from journal import Journal, Reader, RecordType
from journal.catalogue import TsSource, session_stop, unpack, unpack_json
from mm_core.engine import Engine
from mm_core.events import OperatorCommand
from mm_core.risk import TradingState
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from recovery.closeout import RECON_CLOSE_OUT
from recovery.codecheck import session_start
from recovery.recover import recover
from recovery.replay import replay_journal
from reports.run import run as build_reports
from tests.mm_core.wire import SYMBOLS, gateway
from tests.recovery.conftest import USER
from tests.recovery.session import CONFIG, LockedClock, settings_for
from tests.recovery.test_cli import session_files
from tests.recovery.test_session_tokens import one_venue  # noqa: F401 (a fixture)
from tests.reports.conftest import read


class ClockLostAfter(LockedClock):
    """LOCKED until `seconds` after it was made, then no longer compliant (the monitor says so
    while its sample still claims compliance: the runner journals the clock as not compliant)."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def compliant(self, profile, now_mono_ns=None):
        return profile == "eu-hft" and time.monotonic() < self.until


@pytest.fixture
def venue(one_venue):
    return one_venue[0]


def address(venue) -> tuple[str, int]:
    return "127.0.0.1", venue.ports.ouch


def ended_session(venue, path: str, seconds: float = 3.0, close_out_ns: int = 2_000_000_000, clock=None,
                  during=None, resumed=None, stopped: bool = True, stop_session: int = 1):
    """A run that ends by its duration with the close-out, then SESSION_STOP, as mm_core.session
    ends one (not `stopped`: the process died before it; the stop says session `stop_session`, the
    start session 1). `during(runner)` runs on another thread
    once it trades; `resumed`: the Recovery a run goes on from (its engine, no SESSION_START, the
    journal's UTC offset)."""
    settings = RunnerSettings(itch_port=venue.config.venue.itch_port, ouch_port=venue.ports.ouch,
                              rerequest_port=venue.ports.rerequest, close_out_ns=close_out_ns,
                              fresh_session=resumed is None,
                              utc_offset_s=resumed.utc_offset_s if resumed else None,
                              utc_leap=resumed.utc_leap if resumed else 0)
    engine = resumed.engine if resumed else Engine(CONFIG, SYMBOLS, gateway())
    with Journal(path) as journal:
        if resumed is None:
            now = time.clock_gettime_ns(time.CLOCK_REALTIME)
            journal.append(RecordType.SESSION_START, session_start(engine=engine, now_ns=now), ts_ns=now,
                           ts_source=int(TsSource.USER))
        runner = Runner(engine, journal, settings, clock or LockedClock())
        helper = threading.Thread(target=during, args=(runner,)) if during else None
        if helper:
            helper.start()
        report = runner.run(seconds)
        if helper:
            helper.join(10)
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        for rtype, payload in session_stop(stop_session, report.inputs, report.orders_sent,
                                           report.stop_reason) * stopped:
            journal.append(rtype, payload, ts_ns=now, ts_source=int(TsSource.USER))
    return report, engine


def records(path: str) -> list:
    with Reader(path) as reader:
        return list(reader.records())


def commands(path: str) -> list[tuple[int, dict]]:
    return [(r.seq, unpack_json(r.payload)) for r in records(path) if r.rtype == RecordType.OPERATOR_CMD]


def recons(path: str, kind: str) -> list[tuple[int, dict]]:
    docs = [(r.seq, unpack_json(r.payload)) for r in records(path) if r.rtype == RecordType.RECON]
    return [(seq, d) for seq, d in docs if d["kind"] == kind]


def assert_replays_as_recovered(path: str, result) -> None:
    """A replay of the recovered journal decides every order the same and ends where recovery left
    the engine (its state hash, its trading state)."""
    again = replay_journal(path, Engine(CONFIG, SYMBOLS, gateway()))
    assert again.deterministic, again.divergences[:3]
    assert again.engine.risk.state is result.engine.risk.state
    assert again.engine.risk.latch_reasons == result.engine.risk.latch_reasons


def test_the_sessions_own_close_out_kill_is_released_and_trading_can_resume(venue, tmp_path):
    path = str(tmp_path / "journal")
    report, _ = ended_session(venue, path)
    assert report.stop_reason == "duration" and report.orders_open == [] and report.closing_cancels
    ((kill_seq, kill),) = commands(path)
    assert (kill["actor"], kill["command"]) == ("session", "kill")
    before = len(records(path))

    # the dry run says what recovery would do and writes nothing
    dry = recover(settings_for(path, address(venue), dry_run=True))
    assert dry.reconciled and dry.close_out.released and dry.trading_state == "ACTIVE"
    assert len(records(path)) == before
    files = session_files(tmp_path)
    shown = CliRunner().invoke(recover_cli, ["--journal", path, "--venue", "%s:%d" % address(venue),
                                             "--dry-run", *files])
    assert shown.exit_code == 0, shown.output
    assert f"kill of everything at seq {kill_seq} by 'session' (session end): the session's close-out" in shown.output
    assert "would be released by recovery" in shown.output and "trading state ACTIVE" in shown.output

    result = recover(settings_for(path, address(venue)))
    assert result.reconciled, result.reasons
    assert result.trading_state == "ACTIVE" and result.engine.risk.latch_reasons == []
    close = result.close_out
    assert close.released and close.kill_seq == kill_seq and close.stop_reason == "duration"
    # the evidence, then the release the engine (and any replay) is fed, then the outcome
    ((evidence_seq, evidence),) = recons(path, RECON_CLOSE_OUT)
    assert evidence["kill_seq"] == kill_seq and evidence["stop_seq"] == close.stop_seq > kill_seq
    assert evidence["releasable"] and "released" not in evidence
    (release_seq, release) = commands(path)[-1]
    assert release == {"command": "release-close-out", "actor": "recovery", "scope": "all", "scope_id": 0,
                       "reason": f"session close-out kill seq {kill_seq}"}
    ((outcome_seq, outcome),) = recons(path, "outcome")
    assert evidence_seq < release_seq < outcome_seq and outcome["close_out"]["released"]
    assert_replays_as_recovered(path, result)

    # RTS 6: the session's kill once, the latch it set, and the reconciliation that lifted it
    out = tmp_path / "reports"
    build_reports(["controls"], path, out)
    kills = read(out, "controls", "kills").select(["requested_by", "scope"]).to_pylist()
    assert [(k["requested_by"], k["scope"]) for k in kills] == [("session", "ALL")]
    states = [(s["from_state"], s["to_state"], s["actor"]) for s in
              sorted(read(out, "controls", "state_changes").select(["seq", "from_state", "to_state", "actor"])
                     .to_pylist(), key=lambda s: s["seq"])]
    active, halted = int(TradingState.ACTIVE), int(TradingState.HALTED)
    assert states[-2:] == [(active, halted, "session"), (halted, active, "reconciliation")]

    # a second recovery finds nothing holding the engine
    again = recover(settings_for(path, address(venue)))
    assert again.reconciled and again.close_out is None and again.trading_state == "ACTIVE"


def test_a_run_resumed_from_the_recovered_journal_trades_and_its_own_clean_end_is_released(venue, tmp_path):
    path = str(tmp_path / "journal")
    ended_session(venue, path)
    result = recover(settings_for(path, address(venue)))
    assert result.reconciled and result.trading_state == "ACTIVE"
    report, engine = ended_session(venue, path, resumed=result)
    assert report.stop_reason == "duration" and report.closing_state == "ACTIVE"
    ((outcome_seq, _),) = recons(path, "outcome")
    enters = [r for r in records(path) if r.seq > outcome_seq and r.rtype == RecordType.ORDER_SENT
              and chr(int(unpack(RecordType.ORDER_SENT, r.payload)["msg_type"])) == "O"]
    assert enters, "the resumed run sent no order"
    assert engine.risk.state is TradingState.HALTED        # its own close-out
    second = recover(settings_for(path, address(venue), fresh_session=False))
    assert second.reconciled and second.close_out.released and second.trading_state == "ACTIVE"
    assert second.close_out.kill_seq == commands(path)[-2][0] > result.close_out.kill_seq
    assert [d["kill_seq"] for _, d in recons(path, RECON_CLOSE_OUT)] == [result.close_out.kill_seq,
                                                                         second.close_out.kill_seq]
    again = replay_journal(path, Engine(CONFIG, SYMBOLS, gateway()))
    assert again.deterministic and again.engine.risk.state is TradingState.ACTIVE


def assert_not_released(path: str, result, why: str) -> None:
    assert result.close_out is not None and not result.close_out.released
    assert why in result.close_out.why_not
    assert result.trading_state == "HALTED" and "killed" in result.engine.risk.latch_reasons
    assert recons(path, RECON_CLOSE_OUT) == []
    assert all(d["command"] != "release-close-out" for _, d in commands(path))
    ((_, outcome),) = recons(path, "outcome")
    assert outcome["close_out"]["why_not"] == result.close_out.why_not


def test_an_operators_kill_before_the_end_is_not_released(venue, tmp_path):
    path = str(tmp_path / "journal")

    def kill(runner):
        time.sleep(1.5)
        runner.operator(OperatorCommand(time.clock_gettime_ns(time.CLOCK_REALTIME), "kill", "desk-7",
                                        "manual stop")).wait(5)

    report, _ = ended_session(venue, path, during=kill)
    assert report.closing_state == "HALTED"
    assert [d["actor"] for _, d in commands(path)] == ["desk-7", "session"]
    result = recover(settings_for(path, address(venue)))
    assert result.reconciled, result.reasons
    assert_not_released(path, result, "trading was latched already when the session's kill came")
    assert_replays_as_recovered(path, result)


def test_an_operators_kill_lifted_before_the_end_leaves_the_close_out_releasable(venue, tmp_path):
    path = str(tmp_path / "journal")

    def kill_and_enable(runner):
        time.sleep(1.0)
        for command in ("kill", "enable"):
            runner.operator(OperatorCommand(time.clock_gettime_ns(time.CLOCK_REALTIME), command, "desk-7",
                                            "manual stop and start")).wait(5)

    report, _ = ended_session(venue, path, during=kill_and_enable)
    assert report.closing_state == "ACTIVE"
    result = recover(settings_for(path, address(venue)))
    assert result.reconciled and result.close_out.released and result.trading_state == "ACTIVE"


def test_a_session_that_ended_with_a_fault_is_not_released(venue, tmp_path):
    path = str(tmp_path / "journal")
    report, _ = ended_session(venue, path, clock=ClockLostAfter(1.5))
    assert report.closing_faults, "the clock fault was not in force at the end"
    result = recover(settings_for(path, address(venue)))
    assert_not_released(path, result, "the session ended with faults in force")


def test_a_close_out_that_left_orders_open_is_not_released(venue, tmp_path):
    path = str(tmp_path / "journal")
    on_ouch = venue._on_ouch
    venue._on_ouch = lambda conn, payload: None if payload[:1] == b"X" else on_ouch(conn, payload)
    report, _ = ended_session(venue, path, seconds=2.0, close_out_ns=300_000_000)
    venue._on_ouch = on_ouch               # recovery's own cancels reach the venue
    assert report.orders_open
    result = recover(settings_for(path, address(venue)))
    assert_not_released(path, result, "order(s) of ours were still open after the close-out")
    assert venue.live_orders(USER) == []


def test_market_data_during_the_close_out_is_journaled(venue, tmp_path):
    path = str(tmp_path / "journal")
    on_ouch = venue._on_ouch
    venue._on_ouch = lambda conn, payload: None if payload[:1] == b"X" else on_ouch(conn, payload)
    try:                                    # cancels unanswered: the close-out waits its bound out
        report, _ = ended_session(venue, path, seconds=2.0, close_out_ns=1_000_000_000)
    finally:
        venue._on_ouch = on_ouch
    assert report.orders_open and report.close_out_s >= 1.0
    kinds = [(r.rtype, r.payload) for r in records(path)]
    kill = next(i for i, (t, p) in enumerate(kinds) if t == RecordType.OPERATOR_CMD
                and unpack_json(p)["actor"] == "session")
    assert sum(t == RecordType.MD_PACKET for t, _ in kinds[kill:]) > 0


def test_a_session_that_died_before_its_stop_is_not_released(venue, tmp_path):
    path = str(tmp_path / "journal")
    report, _ = ended_session(venue, path, stopped=False)
    assert report.orders_open == [] and report.logged_out
    result = recover(settings_for(path, address(venue)))
    assert result.reconciled, result.reasons
    assert_not_released(path, result, "no SESSION_STOP follows it")


def test_a_stop_of_another_session_than_the_kill_ended_is_not_released(venue, tmp_path):
    path = str(tmp_path / "journal")
    ended_session(venue, path, stop_session=2)
    result = recover(settings_for(path, address(venue)))
    assert result.reconciled, result.reasons
    assert_not_released(path, result, "is of session 2, not of session 1 (started at seq 1) that the kill ended")
