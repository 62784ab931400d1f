"""Mid-session reconciliation against the embedded venue on loopback: a live runner that halted on
a venue message its OMS could not apply is reconciled on the operator's "reconcile" (RECON records
in its journal, the venue's full view compared, the gateway told), after which an operator enable
is allowed when the views agree and refused when they do not; the journal still replays exactly."""
import threading
import time

from journal import Journal, Reader, RecordType
from journal.catalogue import unpack, unpack_json
from mm_core.engine import Engine
from mm_core.events import OperatorCommand
from mm_core.protocol import ouch
from mm_core.risk import TradingState
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from recovery.drills.risk import _wait as wait
from recovery.midsession import LiveReconciler
from recovery.replay import replay_journal
from tests.recovery.conftest import USER, free_udp_port
from tests.recovery.session import CONFIG, LockedClock
from tests.mm_core.wire import SYMBOLS, gateway

UNRECONCILED = "unreconciled"


def forge(venue: Venue, message) -> None:
    """A venue anomaly: a sequenced message on our session about an order we never sent."""
    with venue._lock:
        venue.logs[USER].append(ouch.encode(message))
    venue._wake()


def operator(runner: Runner, command: str, reason: str = "test") -> None:
    assert runner.operator(OperatorCommand(time.time_ns(), command, "ops", reason)).wait(30)


def logins(path: str) -> int:
    """LoginAccepted frames journaled (the runner journals every venue frame it reads)."""
    with Reader(path) as reader:
        return sum(1 for r in reader.records(rtypes=[RecordType.VENUE_MSG])
                   if unpack(RecordType.VENUE_MSG, r.payload)["packet_type"] == ord("A"))


def recon_docs(path: str) -> list[dict]:
    with Reader(path) as reader:
        return [unpack_json(r.payload) for r in reader.records(rtypes=[RecordType.RECON])]


def session(tmp_path, body) -> tuple[Engine, str, LiveReconciler]:
    """Runs `body(venue, runner, engine)` while a runner trades with the embedded venue."""
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=60.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=10.0)
    path = str(tmp_path / "journal")
    reconciler = LiveReconciler(timeout=5.0, quiet=0.2)
    with Venue(config) as venue:
        ports = venue.ports
        settings = RunnerSettings(itch_port=port, ouch_port=ports.ouch, rerequest_port=ports.rerequest)
        engine = Engine(CONFIG, SYMBOLS, gateway())
        with Journal(path) as journal:
            runner = Runner(engine, journal, settings, LockedClock(), reconciler=reconciler)
            stop = threading.Event()
            thread = threading.Thread(target=runner.run, args=(60.0, stop))
            thread.start()
            try:
                assert wait(lambda: len(venue.live_orders(USER)) >= 2, 15), "never quoted"
                body(venue, runner, engine)
            finally:
                stop.set()
                thread.join(20)
            assert not thread.is_alive()
            assert runner.report.stop_reason == "stopped", runner.report.stop_reason
    return engine, path, reconciler


def replays_exactly(engine: Engine, path: str) -> None:
    fresh = Engine(CONFIG, SYMBOLS, gateway())
    result = replay_journal(path, fresh)
    assert result.deterministic, [d.detail for d in result.divergences[:3]]
    assert result.recon_records >= 3
    assert fresh.state_hash() == engine.state_hash()


def test_a_halt_on_a_message_the_oms_could_not_apply_is_reconciled_mid_session(tmp_path):
    def body(venue, runner, engine):
        forge(venue, ouch.Canceled(time.time_ns(), "ZZNEVERSENT01", 100, "U"))
        assert wait(lambda: engine.counts["halts"] == 1, 10), "the engine never halted"
        assert wait(lambda: venue.live_orders(USER) == [], 10), "the halt did not pull everything"
        risk = engine.risk
        assert risk.state is TradingState.HALTED and UNRECONCILED in risk.faults
        operator(runner, "enable", "too early")
        assert risk.state is TradingState.HALTED          # refused: not reconciled
        operator(runner, "reconcile", "after the halt")
        result = runner.reconciler.results[-1]
        assert result.reconciled, result.reasons
        assert UNRECONCILED not in risk.faults
        assert risk.state is TradingState.HALTED          # the halt's kill still needs a person
        assert runner.order_entry_connected
        operator(runner, "enable", "reconciled")
        assert risk.state is TradingState.ACTIVE, risk.faults
        assert wait(lambda: len(venue.live_orders(USER)) >= 2, 15), "never quoted again"

    engine, path, reconciler = session(tmp_path, body)
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == ["begin", "finding", "outcome"]
    assert all(d["mid_session"] for d in docs) and docs[0]["actor"] == "ops"
    assert docs[1]["clean"] and docs[2]["reconciled"]
    assert logins(path) == 2          # logged out for the venue's full view, then in again
    replays_exactly(engine, path)


def test_an_execution_the_oms_could_not_book_keeps_trading_halted_after_reconciling(tmp_path):
    def body(venue, runner, engine):
        forge(venue, ouch.Executed(time.time_ns(), "ZZNEVERSENT02", 100, 1_000_000, "R", 99))
        assert wait(lambda: engine.counts["halts"] == 1, 10), "the engine never halted"
        operator(runner, "reconcile", "after the halt")
        result = runner.reconciler.results[-1]
        assert not result.reconciled
        assert any("position-mismatch" in r for r in result.reasons), result.reasons
        risk = engine.risk
        assert UNRECONCILED in risk.faults and risk.state is TradingState.HALTED
        operator(runner, "enable", "refused")
        assert risk.state is TradingState.HALTED
        assert runner.order_entry_connected

    engine, path, _ = session(tmp_path, body)
    docs = recon_docs(path)
    assert docs[-1]["kind"] == "outcome" and not docs[-1]["reconciled"]
    replays_exactly(engine, path)


def test_reconcile_without_a_reconciler_is_refused_and_changes_nothing(tmp_path):
    engine = Engine(CONFIG, SYMBOLS, gateway())
    with Journal(str(tmp_path / "j")) as journal:
        runner = Runner(engine, journal, RunnerSettings(), LockedClock())
        before = engine.state_hash()
        assert runner.operator(OperatorCommand(1, "reconcile", "ops", "test")).wait(1) is False
        runner._drain_operator()
        assert engine.state_hash() == before
    with Reader(str(tmp_path / "j")) as reader:
        docs = [unpack_json(r.payload) for r in reader.records(rtypes=[RecordType.METRICS])]
    assert [d["alert"] for d in docs] == ["operator-refused"] and "no reconciler" in docs[0]["detail"]


def test_a_trade_correction_is_reported_by_the_first_reconcile_only(tmp_path):
    """A venue break of one of our trades needs a person: the reconcile that finds it reports it
    (its outcome names it, trading stays latched); a later reconcile, whose full view from sequence
    1 still holds the break, lists it as reported in that outcome and comes out clean."""
    fresh = [LiveReconciler(timeout=5.0, quiet=0.2)]
    later_reconciler = fresh[0]

    def body(venue, runner, engine):
        token = venue.live_orders(USER)[0].token
        forge(venue, ouch.BrokenTrade(time.time_ns(), token, 424242, "E"))
        sent = len(venue.session_messages(USER))         # the break is the venue's last message
        assert wait(lambda: runner.soup_seq >= sent, 10), "the runner never read the break"
        operator(runner, "reconcile", "a trade was broken")
        first = runner.reconciler.results[-1]
        assert not first.reconciled and any("trade-correction" in r for r in first.reasons), first.reasons
        # a reconciler of its own, as a later process's: what was reported comes from the journal
        runner.reconciler = fresh.pop()
        operator(runner, "reconcile", "the break was looked at")
        second = runner.reconciler.results[-1]
        assert second.reconciled, second.reasons
        assert UNRECONCILED not in engine.risk.faults

    engine, path, _ = session(tmp_path, body)
    findings = [(seq, d) for seq, d in recon_records(path) if d["kind"] == "finding"]
    reporting = [(seq, d) for seq, d in findings if d["counts"].get("trade-correction")]
    assert len(reporting) == 1, [d["counts"] for _, d in findings]     # reported once, not again
    (finding_seq, report), = reporting
    (broken_seq,) = [x["venue"]["sequence"] for x in report["discrepancies"]
                     if x["kind"] == "trade-correction"]
    # the first reconcile's outcome, which named the break in its reasons, is what reported it
    outcomes = [(seq, d) for seq, d in recon_records(path) if d["kind"] == "outcome"]
    (report_seq, outcome), = [(seq, d) for seq, d in outcomes if seq > finding_seq][:1]
    assert outcome["corrections_reported"] == [broken_seq] and not outcome["reconciled"]
    assert any("trade-correction" in r for r in outcome["reasons"])
    later = findings[-1][1]
    assert later["clean"] and later["corrections_reported_earlier"] == [
        {"sequence": broken_seq, "token": later["corrections_reported_earlier"][0]["token"],
         "what": "BrokenTrade", "reported_in": report_seq}]
    assert later_reconciler.reported == {broken_seq: report_seq}
    # replay reads the same: that finding reported it
    replayed = replay_journal(path, Engine(CONFIG, SYMBOLS, gateway()))
    assert replayed.corrections_reported == {broken_seq: report_seq}
    replays_exactly(engine, path)


def recon_records(path: str) -> list[tuple[int, dict]]:
    with Reader(path) as reader:
        return [(r.seq, unpack_json(r.payload)) for r in reader.records(rtypes=[RecordType.RECON])]


def test_only_a_finished_reconcile_s_outcome_reports_a_correction_to_the_next(tmp_path):
    """The reconcile's reading of what earlier ones reported (from the journal, as a later
    process's would be): a finding that names a broken trade, then a failure (the outcome names
    only the error), reported nothing; an outcome that named it in its reasons did."""
    import types
    from journal.catalogue import pack_json
    path = str(tmp_path / "j")
    finding = {"kind": "finding", "round": 1, "mid_session": True,
               "discrepancies": [{"kind": "trade-correction", "venue": {"sequence": 17}}]}
    with Journal(path) as journal:
        for doc in ({"kind": "begin", "reconciled": False, "mid_session": True}, finding,
                    {"kind": "outcome", "reconciled": False, "mid_session": True,
                     "reasons": ["reconciliation failed: TimeoutError: the venue did not answer"],
                     "corrections_reported": []}):
            journal.append(RecordType.RECON, pack_json(doc), ts_ns=1)
    alerts = []
    runner = types.SimpleNamespace(journal=types.SimpleNamespace(path=path),
                                   alert=lambda *a: alerts.append(a))
    reconciler = LiveReconciler()
    assert reconciler._reported_so_far(runner) == {} and alerts == []
    with Journal(path) as journal:
        journal.append(RecordType.RECON, pack_json(finding), ts_ns=2)
        seq = journal.append(RecordType.RECON, pack_json(
            {"kind": "outcome", "reconciled": False, "mid_session": True,
             "reasons": ["trade-correction: BrokenTrade at venue sequence 17"],
             "corrections_reported": [17]}), ts_ns=2)
    assert reconciler._reported_so_far(runner) == {17: seq}
    assert LiveReconciler()._reported_so_far(runner) == {17: seq}        # a later process's reading


def test_a_reconcile_that_uses_up_its_rounds_names_what_was_still_different(tmp_path):
    """An order live at the venue that no cancel reaches (the venue's messages say it rests; its
    book never had it, so every cancel of ours is ignored): each round resolves it again, to no
    effect. When the rounds are used up, the reasons the operator gets and the journaled outcome
    name what was still different, a last finding records it, and trading stays halted."""
    forged = "ZZFORGED0001"

    def body(venue, runner, engine):
        forge(venue, ouch.Accepted(time.time_ns(), forged, "B", 100, "ACME", 990_000, 99999, "MMCO", "Y",
                                   424242, "P", "N", 0, "N", "L", " "))
        assert wait(lambda: engine.counts["halts"] == 1, 10), "the engine never halted"
        operator(runner, "reconcile", "an order we never sent")
        result = runner.reconciler.results[-1]
        assert not result.reconciled
        assert result.reasons[0] == "not clean after 3 rounds", result.reasons
        assert any(r.startswith("cancel-not-received: ") and r.endswith(f"({forged})")
                   for r in result.reasons[1:]), result.reasons
        assert len(result.rounds) == 4 and result.resolutions == 3
        risk = engine.risk
        assert UNRECONCILED in risk.faults and risk.state is TradingState.HALTED
        operator(runner, "enable", "refused")
        assert risk.state is TradingState.HALTED

    engine, path, _ = session(tmp_path, body)
    docs = recon_docs(path)
    findings = [d for d in docs if d["kind"] == "finding"]
    assert [d["round"] for d in findings] == [1, 2, 3, 4]
    last, outcome = findings[-1], docs[-1]
    assert "gave_up" in last and not last["clean"]
    assert [(d["kind"], d["token"]) for d in last["discrepancies"]] == [("cancel-not-received", forged)]
    assert outcome["kind"] == "outcome" and not outcome["reconciled"]
    assert outcome["reasons"] == runner_reasons(last)
    # every resolution journaled with the order before it; the outcome names each one's order
    # before and after it was applied, and the engine's state before and after the reconcile
    resolutions = [d for d in docs if d["kind"] == "resolution"]
    assert len(resolutions) == 3 and all("before" in d for d in resolutions)
    assert [a["token"] for a in outcome["applied"]] == [forged] * 3
    assert [a["before"] for a in outcome["applied"]] == [d["before"] for d in resolutions]
    assert all(set(a) == {"token", "before", "after"} for a in outcome["applied"])
    for side in ("before", "after"):
        assert set(outcome[side]) == {"open_orders", "unknown_outcome", "positions", "venue_seq", "state_hash"}
    replays_exactly(engine, path)


def runner_reasons(finding: dict) -> list[str]:
    """The reasons a given-up reconcile's outcome names: that it gave up, then the last finding."""
    return ["not clean after 3 rounds"] + [f"{d['kind']}: {d['detail']}" + (f" ({d['token']})" if d["token"] else "")
                                           for d in finding["discrepancies"]]
