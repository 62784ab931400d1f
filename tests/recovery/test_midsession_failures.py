"""What the operator is told when a command fails on a live runner, against the embedded venue on
loopback: a reconcile whose re-login the venue refuses closes its RECON with an outcome that says
so and raises an alert; the run goes on latched without order entry (no exception on the runner's
thread) until a later reconcile logs in again; a re-login that fails once is retried and the run trades on; a kill whose cancels
cannot be sent is answered as failed; a clean reconcile keeps the operator's SAFE_MODE and the
journal replays to the same state; RECON records carry the caller's origin and the runner's USER
time, never the engine's (PHC) time."""
import dataclasses
import socket
import threading
import time

from journal import Journal, Reader, RecordType
from journal.catalogue import unpack, unpack_json
from mm_core.control import ControlServer, send
from mm_core.engine import Engine
from mm_core.events import OperatorCommand
from mm_core.risk import TradingState
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerError, RunnerSettings
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.drills.risk import _wait as wait
from recovery.midsession import LiveReconciler
from tests.recovery.conftest import USER, free_udp_port
from tests.recovery.session import CONFIG, LockedClock
from tests.recovery.test_midsession import operator, recon_docs, replays_exactly
from tests.mm_core.wire import SYMBOLS, gateway

def live(tmp_path, body, patch=None):
    """Runs `body(venue, runner, engine, control_path)` while a runner trades with the embedded
    venue behind a control socket; (engine, journal path, runner, what the runner's thread raised)."""
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=60.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=10.0)
    path = str(tmp_path / "journal")
    errors: list = []
    with Venue(config) as venue:
        ports = venue.ports
        settings = RunnerSettings(itch_port=port, ouch_port=ports.ouch, rerequest_port=ports.rerequest)
        engine = Engine(CONFIG, SYMBOLS, gateway())
        with Journal(path) as journal:
            runner = Runner(engine, journal, settings, LockedClock(),
                            reconciler=LiveReconciler(timeout=3.0, quiet=0.2))
            if patch is not None:
                patch(runner)
            stop = threading.Event()

            def run():
                try:
                    runner.run(60.0, stop)
                except BaseException as exc:       # noqa: BLE001 (what the test looks at)
                    errors.append(exc)
            thread = threading.Thread(target=run)
            status = lambda: {"trading_state": engine.risk.state.name}      # noqa: E731
            with ControlServer(str(tmp_path / "c.sock"), runner.operator, status) as server:
                thread.start()
                try:
                    assert wait(lambda: len(venue.live_orders(USER)) >= 2, 15), "never quoted"
                    body(venue, runner, engine, server.path)
                finally:
                    stop.set()
                    thread.join(20)
            assert not thread.is_alive()
    return engine, path, runner, errors


def alerts(path: str) -> list[dict]:
    with Reader(path) as reader:
        docs = [unpack_json(r.payload) for r in reader.records(rtypes=[RecordType.METRICS])]
    return [d for d in docs if "alert" in d]


def test_a_reconcile_whose_relogin_the_venue_refuses_says_so_and_the_run_goes_on_latched(tmp_path):
    seen = {}

    def body(venue, runner, engine, control):
        good = runner.settings
        # the venue refuses this user for now (as a revoked login would be)
        runner.settings = dataclasses.replace(good, password="revoked")
        seen["answer"] = send(control, {"command": "reconcile", "actor": "ops", "reason": "check"}, 30)
        seen["state"] = engine.risk.state
        seen["logged_in"] = runner.order_entry_logged_in
        time.sleep(1.5)                                   # timers, clock samples: the run goes on
        seen["alive"] = not runner.report.stop_reason
        seen["kill"] = send(control, {"command": "kill", "actor": "ops", "reason": "meanwhile"}, 30)
        # the login is good again: the next reconcile logs in, and trading may resume
        runner.settings = good
        seen["again"] = send(control, {"command": "reconcile", "actor": "ops", "reason": "retry"}, 30)
        seen["enable"] = send(control, {"command": "enable", "actor": "ops", "reason": "resume"}, 30)
        seen["quoting"] = wait(lambda: len(venue.live_orders(USER)) >= 2, 15)

    engine, path, runner, errors = live(tmp_path, body)
    answer = seen["answer"]
    assert answer["ok"] is False and answer["reconciliation"]["reconciled"] is False
    assert any("cannot log in to the order entry again" in r and "not authorised" in r
               for r in answer["reconciliation"]["reasons"]), answer
    assert seen["state"] is TradingState.HALTED and not seen["logged_in"]      # latched: fail closed
    assert seen["alive"] and seen["kill"]["ok"]           # the runner still takes commands
    assert seen["again"]["ok"] and seen["again"]["reconciliation"]["reconciled"], seen["again"]
    assert seen["enable"]["ok"] and seen["quoting"], seen["enable"]
    assert errors == [] and runner.report.stop_reason == "stopped"
    docs = recon_docs(path)
    assert [d["kind"] for d in docs if d["kind"] in ("begin", "outcome")] == ["begin", "outcome"] * 2
    assert docs[-1]["reconciled"] is True and [d["reconciled"] for d in docs if d["kind"] == "outcome"][0] is False
    assert [a["alert"] for a in alerts(path)].count("order-entry-lost") == 1
    replays_exactly(engine, path)


def test_orders_decided_while_there_is_no_order_entry_are_journaled_not_sent_and_said_so(tmp_path):
    from tests.mm_core.test_gateway_answers import quoting
    engine, _venue, now = quoting()
    path = str(tmp_path / "j")
    with Journal(path) as journal:
        runner = Runner(engine, journal, RunnerSettings(), LockedClock())     # never connected
        actions = engine.on_event(OperatorCommand(now + 1, "kill", "ops", "no order entry"))
        runner._act(actions, now + 1)
    assert runner.report.orders_unsent == 2 and runner.report.orders_sent == 0
    with Reader(path) as reader:
        sent = [r for r in reader.records(rtypes=[RecordType.ORDER_SENT])]
        stamps = [unpack(RecordType.TX_TS, r.payload) for r in reader.records(rtypes=[RecordType.TX_TS])]
    assert len(sent) == 2 and sorted(int(t["order_seq"]) for t in stamps) == sorted(r.seq for r in sent)
    assert all(int(t["status"]) == 1 and int(t["tx_ts_ns"]) == 0 for t in stamps)        # MISSING
    assert [a["alert"] for a in alerts(path)] == ["order-entry-lost"]


def test_a_relogin_that_fails_once_is_retried_and_the_run_trades_on(tmp_path):
    def flaky(runner):
        real, failed = runner._connect_oe, []

        def connect():
            if runner._oe_generation >= 1 and not failed:     # the reconcile's first re-login
                failed.append(1)
                raise RunnerError("cannot reach the venue's order entry (connection refused)")
            real()
        runner._connect_oe = connect

    seen = {}

    def body(venue, runner, engine, control):
        first = send(control, {"command": "reconcile", "actor": "ops", "reason": "check"}, 30)
        seen["first"] = first
        seen["connected"] = runner.order_entry_logged_in
        seen["latched"] = engine.risk.state is TradingState.HALTED
        second = send(control, {"command": "reconcile", "actor": "ops", "reason": "again"}, 30)
        seen["second"] = second

    engine, path, runner, errors = live(tmp_path, body, patch=flaky)
    first = seen["first"]
    assert first["ok"] is False and any("reconciliation failed" in r for r in first["reconciliation"]["reasons"])
    assert seen["connected"] and seen["latched"]          # logged in again, still latched
    assert seen["second"]["ok"] and seen["second"]["reconciliation"]["reconciled"], seen["second"]
    assert errors == [] and runner.report.stop_reason == "stopped"
    kinds = [d["kind"] for d in recon_docs(path)]
    assert kinds.count("begin") == 2 and kinds.count("outcome") == 2


def test_a_kill_whose_cancels_cannot_be_sent_is_answered_as_failed(tmp_path):
    seen = {}

    def body(venue, runner, engine, control):
        carry_out = runner._operator_now

        def operator_now(command, receipt):
            # the connection breaks under the kill's cancels (the first leaves from inside the
            # engine's decision, through the C send, the rest after it): only once the runner
            # carries the kill out, so a guard pull before it does not end the run
            runner._oe.sock.shutdown(socket.SHUT_WR)
            carry_out(command, receipt)
        runner._operator_now = operator_now
        seen["answer"] = send(control, {"command": "kill", "actor": "ops", "reason": "runaway"}, 30)
        seen["live"] = len(venue.live_orders(USER))

    engine, path, runner, errors = live(tmp_path, body)
    answer = seen["answer"]
    assert answer["ok"] is False and answer["journaled"] is True
    assert "could not be sent" in answer["failed"] and "BrokenPipeError" in answer["failed"]
    assert seen["live"] >= 2                             # indeed still resting at the venue
    assert errors == [] and runner.report.venue_lost        # the run stopped on it, cleanly
    assert runner.report.stop_reason.startswith("order entry send failed: BrokenPipeError")
    assert runner.report.sends_failed >= 2


def test_a_clean_mid_session_reconcile_keeps_the_operators_safe_mode(tmp_path):
    seen = {}

    def body(venue, runner, engine, control):
        operator(runner, "safe-mode-on", "volatile open")
        seen["before"] = engine.risk.state
        answer = send(control, {"command": "reconcile", "actor": "ops", "reason": "routine"}, 30)
        seen["reconciled"] = answer["reconciliation"]["reconciled"]
        seen["after"] = engine.risk.state
        seen["origin"] = answer["origin"]

    engine, path, runner, errors = live(tmp_path, body)
    assert seen["before"] is TradingState.SAFE_MODE and seen["reconciled"]
    assert seen["after"] is TradingState.SAFE_MODE
    with Reader(path) as reader:
        changes = [unpack(RecordType.STATE_CHANGE, r.payload) for r in reader.records(rtypes=[RecordType.STATE_CHANGE])]
    last = changes[-1]
    assert (TradingState(last["from_state"]), TradingState(last["to_state"])) == (TradingState.HALTED,
                                                                                 TradingState.SAFE_MODE)
    docs = recon_docs(path)
    assert docs[0]["origin"] == seen["origin"] and docs[-1]["origin"] == seen["origin"]
    replays_exactly(engine, path)


def test_recon_records_carry_the_runners_user_time_not_the_engines(tmp_path):
    engine = Engine(CONFIG, SYMBOLS, gateway())
    engine.now = time.time_ns() + 37 * 10**9              # a NIC's PHC time (TAI) ran the engine
    path = str(tmp_path / "j")
    with Journal(path) as journal:
        runner = Runner(engine, journal, RunnerSettings(), LockedClock())
        before = time.clock_gettime_ns(time.CLOCK_REALTIME)
        stamped = LiveReconciler()._recon(runner, {"kind": "begin", "mid_session": True})
        after = time.clock_gettime_ns(time.CLOCK_REALTIME)
    assert before <= stamped <= after
    with Reader(path) as reader:
        record, = list(reader.records(rtypes=[RecordType.RECON]))
    assert before <= record.ts_ns <= after


def test_a_reconcile_queued_by_the_runner_itself_is_carried_out_at_once(tmp_path):
    """The runner's own thread (a drill) gets its receipt set at once, failure or not."""
    engine = Engine(CONFIG, SYMBOLS, gateway())
    with Journal(str(tmp_path / "j")) as journal:
        runner = Runner(engine, journal, RunnerSettings(), LockedClock())
        runner._thread = threading.get_ident()
        receipt = runner.operator(OperatorCommand(1, "safe-mode-on", "ops", "test"))
        assert receipt.is_set() and receipt.error == "" and receipt.journaled


def test_a_reconcile_whose_relogin_meets_another_sequence_feeds_nothing_and_ends_the_run(tmp_path):
    """End to end on the embedded venue: the runner's re-login asks for a sequence the venue has
    not reached (here the runner's count is moved 3 ahead, as a runner that lost track would be),
    the venue starts at its next message instead, and the reconcile says so: nothing of that
    session fed, the engine HALTED, no quote left resting, and the run ends naming both sequences
    (no exception on its thread): only a full recovery, which reconciles from sequence 1, can
    resume it."""
    seen = {}

    def lose_track(runner):
        # moved on the runner's own thread, at the re-login: from the test's thread the += would
        # race the runner's count of each venue message it reads, and could be lost
        login = runner.login_order_entry

        def login_three_ahead():
            runner.soup_seq += 3
            login()
        runner.login_order_entry = login_three_ahead

    def body(venue, runner, engine, control):
        seen["answer"] = send(control, {"command": "reconcile", "actor": "ops", "reason": "check"}, 30)
        seen["state"] = engine.risk.state
        seen["fed_after"] = engine.venue_seq
        wait(lambda: runner.report.stop_reason, 10)
        seen["fed_later"] = engine.venue_seq
        seen["resting"] = venue.live_orders(USER)

    engine, path, runner, errors = live(tmp_path, body, patch=lose_track)
    answer = seen["answer"]
    assert answer["ok"] is False and answer["reconciliation"]["reconciled"] is False, answer
    assert any("sequence" in r for r in answer["reconciliation"]["reasons"]), answer
    assert seen["state"] is TradingState.HALTED and seen["fed_later"] == seen["fed_after"]
    assert not runner.order_entry_logged_in and seen["resting"] == [], seen["resting"]
    stop = runner.report.stop_reason
    assert errors == [] and "login starts at sequence" in stop and "nothing of that session was fed" in stop, stop
    docs = recon_docs(path)
    assert [d["kind"] for d in docs if d["kind"] in ("begin", "outcome")] == ["begin", "outcome"]
    assert docs[-1]["reconciled"] is False
