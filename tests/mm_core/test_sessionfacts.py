"""What a session's journal says of it for its summary (mm_core.sessionfacts): the records per
type, whether any clock sample said compliant for the session's profile, and the operator's kill
of everything still in force at the end (who, when, why): a later enable of everything lifts it;
scoped kills and the close-out's own kill by "session" are not an operator's halt, nor is an
enable the engine refused a lift."""
import json

from journal import Journal
from journal.catalogue import RecordType, pack
from mm_core.events import JournalNote, OperatorCommand
from mm_core.risk import TradingState
from mm_core.sessionfacts import OperatorHalt, read_session
from tests.mm_core.test_gateway_answers import quoting
from tests.mm_core.test_modify import mine
from tests.mm_core.test_oms_halt import executed


def _command(journal, ts_ns: int, command: str, actor: str, scope: str = "all") -> None:
    doc = {"command": command, "actor": actor, "reason": f"{command} by {actor}", "scope": scope, "scope_id": 0}
    journal.append(RecordType.OPERATOR_CMD, json.dumps(doc).encode(), ts_ns=ts_ns)


def _sample(journal, ts_ns: int, mask: int) -> None:
    journal.append(RecordType.CLOCK_SAMPLE, pack(RecordType.CLOCK_SAMPLE, compliant_mask=mask), ts_ns=ts_ns)


def test_the_clock_facts_are_per_profile_and_the_journal_counts_kept(tmp_path):
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        _sample(journal, 1, 0)
        _sample(journal, 2, 0b010)               # eu-algo only
        _command(journal, 3, "kill", "session")
    hft, algo = read_session(path, 1, "eu-hft"), read_session(path, 1, "eu-algo")
    assert not hft.clock_compliant_seen and algo.clock_compliant_seen
    assert hft.journal["by_type"] == {"CLOCK_SAMPLE": 2, "OPERATOR_CMD": 1}
    assert (hft.journal["first_seq"], hft.journal["last_seq"], hft.journal["records"]) == (1, 3, 3)
    assert hft.operator_halt is None             # the close-out's kill is no operator's
    assert read_session(path, 2, "eu-hft").journal["records"] == 2


def test_the_operator_kill_in_force_at_the_end_is_named(tmp_path):
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        _command(journal, 10, "kill", "alice")
        _command(journal, 20, "enable", "alice")
        _command(journal, 30, "kill", "bob", scope="symbol")
        _command(journal, 40, "kill", "carol")
        _command(journal, 50, "enable", "dave", scope="symbol")
        _command(journal, 60, "kill", "session")
    assert read_session(path, 1, "eu-hft").operator_halt == OperatorHalt("carol", "kill by carol", 40)
    assert read_session(path, 1, "eu-hft").clock_compliant_seen is False
    assert read_session(path, 2, "eu-hft").operator_halt == OperatorHalt("carol", "kill by carol", 40)
    with Journal(path) as journal:
        _command(journal, 70, "enable", "erin")
    assert read_session(path, 1, "eu-hft").operator_halt is None


def test_an_enable_the_engine_refused_leaves_the_operator_kill_in_force(tmp_path):
    # the engine's own words: a kill by alice, a fault, an enable refused while it holds
    engine, venue, now = quoting()
    bid, = mine(venue, "B")
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        def hear(ev, as_doc=None):
            if as_doc is not None:
                journal.append(RecordType.OPERATOR_CMD, json.dumps(as_doc).encode(), ts_ns=ev.now_ns)
            for action in engine.on_event(ev):
                if isinstance(action, JournalNote):
                    journal.append(action.rtype, action.payload, ts_ns=ev.now_ns)

        def command(ts: int, what: str, actor: str) -> None:
            doc = {"command": what, "actor": actor, "reason": f"{what} by {actor}", "scope": "all", "scope_id": 0}
            hear(OperatorCommand(ts, what, actor, doc["reason"]), doc)

        command(now + 1, "kill", "alice")
        hear(executed(bid.token, bid.shares + 300, bid.price, 77, now + 2))   # unreconciled: a fault
        command(now + 3, "enable", "bob")
        assert engine.risk.state is TradingState.HALTED
    assert read_session(path, 1, "eu-hft").operator_halt == OperatorHalt("alice", "kill by alice", now + 1)


def test_a_resumed_session_names_a_kill_made_before_the_crash(tmp_path):
    path = str(tmp_path / "journal")
    with Journal(path) as journal:
        _command(journal, 10, "kill", "alice")           # the crashed part of the session
        _sample(journal, 20, 0b001)                      # the resumed part starts here (seq 2)
    assert read_session(path, 2, "eu-hft").operator_halt is None
    facts = read_session(path, 2, "eu-hft", commands_from=1)
    assert facts.operator_halt == OperatorHalt("alice", "kill by alice", 10)
    assert facts.journal["by_type"] == {"CLOCK_SAMPLE": 1}      # counts are the resumed part's only
