"""Operator commands in the engine: a scoped kill cancels only its scope's orders and keeps that
scope from trading while the rest trades on, its KILL record counts the cancels it sent, and an
enable of that scope lifts it alone; a kill of everything halts (latched). A clean reconciliation
returns to the operator's SAFE_MODE, never past it. Operator texts land in the fixed-size journal
fields as whole UTF-8 characters. Driven through the embedded venue's own matching engine, and
replayed through a fresh engine to the same state hash."""
import pytest

from journal.catalogue import RecordType, unpack
from mm_core.engine import Engine
from mm_core.events import JournalNote, OperatorCommand, Reconciled, SendOrder
from mm_core.risk import TradingState
from mm_core.risk.kill import KillScope
from mm_core.types import OrderKind
from tests.mm_core.test_modify import Exchange, drive
from tests.mm_core.wire import ACME, MS, NAMES, S, make_engine

BOLT = next(k for k, v in NAMES.items() if v == "BOLT")


class Recorded:
    """An engine whose every input is kept, so a fresh engine can be fed the same ones."""

    def __init__(self) -> None:
        self.engine, self.venue, self.inputs = make_engine(), Exchange(), []

    def feed(self, events: list, now: int) -> list:
        """Events and every venue answer they cause, to a fixed point; all the actions."""
        return drive(self, self.venue, events, now)

    def on_event(self, event) -> list:
        self.inputs.append(event)
        return self.engine.on_event(event)

    def replayed(self) -> Engine:
        fresh = make_engine()
        for ev in self.inputs:
            fresh.on_event(ev)
        return fresh


def two_symbols() -> tuple[Recorded, int]:
    rec, now = Recorded(), 2 * S
    v = rec.venue
    rec.feed(v.others("B", 500, 999_900, now) + v.others("S", 500, 1_000_100, now)
             + v.others("B", 500, 499_900, now, "BOLT") + v.others("S", 500, 500_100, now, "BOLT"), now)
    assert quoted(rec) == {"ACME", "BOLT"}
    return rec, now


def quoted(rec: Recorded) -> set[str]:
    return {o.symbol for o in rec.venue.engine.live_orders(Exchange.OWNER)}


def cancels(actions) -> list[int]:
    return [a.intent.symbol_id for a in actions if isinstance(a, SendOrder) and a.intent.kind is OrderKind.CANCEL]


def kill_records(actions) -> list:
    return [unpack(RecordType.KILL, a.payload) for a in actions
            if isinstance(a, JournalNote) and a.rtype == RecordType.KILL]


def test_a_symbol_kill_cancels_and_blocks_that_symbol_only_and_its_enable_lifts_it():
    rec, now = two_symbols()
    engine = rec.engine
    now += MS
    actions = rec.feed([OperatorCommand(now, "kill", "ops", "runaway BOLT", "symbol", BOLT)], now)
    assert cancels(actions) == [BOLT, BOLT]                   # ACME's quotes untouched
    kill, = kill_records(actions)
    assert (kill["scope"], kill["scope_id"], kill["orders_cancelled"]) == (int(KillScope.SYMBOL), BOLT, 2)
    assert engine.risk.state is TradingState.ACTIVE and quoted(rec) == {"ACME"}
    # the market moves in both: ACME requotes, BOLT stays out (no order even tried)
    now += 200 * MS
    v = rec.venue
    actions = rec.feed(v.others("B", 300, 1_000_000, now) + v.others("B", 300, 500_000, now, "BOLT"), now)
    sent = {a.intent.symbol_id for a in actions if isinstance(a, SendOrder)}
    assert ACME in sent and BOLT not in sent
    assert not [a for a in actions if isinstance(a, JournalNote) and a.rtype == RecordType.RISK_DECISION]
    # a global enable is not the scope's: refused (nothing to enable), BOLT stays killed
    now += MS
    actions = rec.feed([OperatorCommand(now, "enable", "ops", "all")], now)
    assert any("operator-refused" in a.summary for a in actions if isinstance(a, JournalNote))
    assert quoted(rec) == {"ACME"}
    # an enable of another scope is refused and says which kills are in force
    actions = rec.feed([OperatorCommand(now, "enable", "ops", "wrong", "symbol", ACME)], now)
    refused = [a.summary for a in actions if isinstance(a, JournalNote) and "operator-refused" in a.summary]
    assert refused and f"symbol {BOLT}" in refused[0]
    # the scope's own enable lifts it: BOLT quotes again at the next decision
    now += MS
    rec.feed([OperatorCommand(now, "enable", "ops", "BOLT reviewed", "symbol", BOLT)], now)
    now += 200 * MS
    rec.feed(v.others("S", 300, 500_200, now, "BOLT"), now)
    assert quoted(rec) == {"ACME", "BOLT"} and engine.risk.scoped_kills == []
    assert rec.replayed().state_hash() == engine.state_hash()


def test_a_kill_of_a_symbol_we_do_not_quote_cancels_nothing_and_says_so():
    rec, now = two_symbols()
    chip = next(k for k, v in NAMES.items() if v == "CHIP")
    actions = rec.feed([OperatorCommand(now + MS, "kill", "ops", "CHIP only", "symbol", chip)], now)
    assert cancels(actions) == [] and kill_records(actions)[0]["orders_cancelled"] == 0
    assert quoted(rec) == {"ACME", "BOLT"} and rec.engine.risk.state is TradingState.ACTIVE


def test_an_algo_kill_of_our_algo_stops_every_symbol_and_another_algo_is_refused():
    rec, now = two_symbols()
    cfg = rec.engine.cfg
    actions = rec.feed([OperatorCommand(now + MS, "kill", "ops", "other algo", "algo", cfg.algo_id + 1)], now)
    assert cancels(actions) == [] and quoted(rec) == {"ACME", "BOLT"}
    assert kill_records(actions) == [] and rec.engine.risk.scoped_kills == []     # no kill to read "done"
    refused, = [a.summary for a in actions if isinstance(a, JournalNote) and "operator-refused" in a.summary]
    assert f"unknown algo id {cfg.algo_id + 1}; this engine's orders carry {cfg.algo_id}" in refused
    actions = rec.feed([OperatorCommand(now + 2 * MS, "kill", "ops", "our algo", "algo", cfg.algo_id)], now)
    assert sorted(cancels(actions)) == [ACME, ACME, BOLT, BOLT]
    assert [k["orders_cancelled"] for k in kill_records(actions)] == [4]
    assert quoted(rec) == set() and rec.engine.risk.state is TradingState.ACTIVE
    assert rec.replayed().state_hash() == rec.engine.state_hash()


def test_a_kill_of_everything_halts_and_counts_every_cancel():
    rec, now = two_symbols()
    actions = rec.feed([OperatorCommand(now + MS, "kill", "ops", "everything")], now)
    assert len(cancels(actions)) == 4 and kill_records(actions)[0]["orders_cancelled"] == 4
    assert rec.engine.risk.state is TradingState.HALTED and quoted(rec) == set()


def test_scoped_kills_are_in_the_state_hash():
    a, now = two_symbols()
    b, _ = two_symbols()
    assert a.engine.state_hash() == b.engine.state_hash()
    chip = next(k for k, v in NAMES.items() if v == "CHIP")
    a.feed([OperatorCommand(now + MS, "kill", "ops", "x", "symbol", chip)], now)
    b.feed([OperatorCommand(now + MS, "kill", "ops", "x", "client", b.engine.cfg.client_id)], now)
    assert a.engine.state_hash() != b.engine.state_hash()      # neither cancelled anything


@pytest.mark.parametrize("scope, scope_id, why", [
    ("desk", 999, "unknown desk id 999"), ("client", 999, "unknown client id 999"),
    ("symbol", 65_000, "unknown symbol id 65000")])
def test_a_kill_scoped_to_an_id_the_engine_does_not_carry_is_refused(scope, scope_id, why):
    rec, now = two_symbols()
    actions = rec.feed([OperatorCommand(now + MS, "kill", "ops", "x", scope, scope_id)], now)
    assert kill_records(actions) == [] and cancels(actions) == []
    assert any(why in a.summary for a in actions if isinstance(a, JournalNote) and "operator-refused" in a.summary)
    assert rec.engine.risk.scoped_kills == [] and quoted(rec) == {"ACME", "BOLT"}
    assert rec.replayed().state_hash() == rec.engine.state_hash()


def state_after(engine: Engine, *steps) -> TradingState:
    """Operator commands (by name) and reconciliations (True: clean outcome, False: a begin or a
    failed one), one nanosecond apart; the trading state after the last."""
    for step in steps:
        now = max(engine.now, 2 * S) + 1
        engine.on_event(Reconciled(now, step) if isinstance(step, bool) else OperatorCommand(now, step, "ops", "t"))
    return engine.risk.state


def test_a_clean_reconciliation_keeps_the_operators_safe_mode():
    engine = make_engine()
    assert state_after(engine, "safe-mode-on") is TradingState.SAFE_MODE
    assert state_after(engine, False) is TradingState.HALTED        # a mid-session reconcile's begin
    assert state_after(engine, True) is TradingState.SAFE_MODE      # its clean outcome: not lifted
    assert state_after(engine, "safe-mode-off") is TradingState.ACTIVE
    # without the operator's safe mode a clean reconciliation returns to ACTIVE as before
    assert state_after(engine, False, True) is TradingState.ACTIVE


def test_an_enable_after_a_kill_is_the_operators_choice_of_active():
    engine = make_engine()
    assert state_after(engine, "safe-mode-on", "kill", "enable") is TradingState.ACTIVE
    assert state_after(engine, False, True) is TradingState.ACTIVE


def test_operator_texts_land_as_whole_utf8_characters():
    engine = make_engine()
    actor = "ÄÖÜäöüßé"                                     # 8 characters, 16 bytes: fits
    reason = "Überprüfung! " + "ä" * 24                       # 63 bytes: fits KILL's reason
    actions = engine.on_event(OperatorCommand(2 * S, "kill", actor, reason))
    kill, = kill_records(actions)
    assert kill["requested_by"].decode() == actor and kill["reason"].decode() == reason
    changes = [unpack(RecordType.STATE_CHANGE, a.payload) for a in actions
               if isinstance(a, JournalNote) and a.rtype == RecordType.STATE_CHANGE]
    # "kill all 0: " + the reason is over 64 bytes: cut, but on a character boundary
    text = changes[0]["reason"].decode()
    assert changes[0]["actor"].decode() == actor and reason.startswith(text.removeprefix("kill all 0: "))


def test_the_controls_report_reads_an_operators_kill_in_any_language(tmp_path):
    """The records the engine journals for a kill with multi-byte texts make a readable control
    evidence report (a character cut in half used to fail the whole day's report)."""
    from reports.run import run
    from tests.reports.conftest import read
    from tests.reports.journal_builder import FIXTURE_REFDATA, standard_day

    actor, reason = "Jürgen Müller", "Überprüfung! " + "ä" * 24
    notes = [a for a in make_engine().on_event(OperatorCommand(2 * S, "kill", actor, reason))
             if isinstance(a, JournalNote) and a.rtype in (RecordType.KILL, RecordType.STATE_CHANGE)]
    day = standard_day()
    for note in notes:
        day._add(note.rtype, note.payload)
    run(["controls"], day.write(tmp_path / "j"), tmp_path / "out", refdata_dir=FIXTURE_REFDATA)
    kills = read(tmp_path / "out", "controls", "kills").to_pylist()
    assert (kills[-1]["requested_by"], kills[-1]["reason"]) == (actor, reason)
    states = read(tmp_path / "out", "controls", "state_changes").to_pylist()
    assert states[-1]["actor"] == actor and states[-1]["reason"].startswith("kill all 0: Überprüfung! ä")
