"""Recovery end to end against the real embedded venue on loopback: the real runner trades in a
subprocess and is SIGKILLed mid-session; recovery replays its journal, resumes the SoupBinTCP
session from the last journaled sequence + 1, reconciles with the venue's full view and journals
RECON records that a later replay re-applies exactly. Also a torn journal tail and a dry run."""
from __future__ import annotations

import hashlib
import pathlib
import socket

import pytest

from journal import Journal, Reader, RecordType, verify
from journal.catalogue import unpack, unpack_json
from mm_core.engine import Engine
from mm_core.protocol import ouch
from recovery.errors import JournalUnavailable, VenueUnavailable
from recovery.recover import recover
from recovery.replay import replay_journal
from tests.mm_core.wire import SYMBOLS, gateway
from tests.recovery import journaling
from tests.recovery.journaling import session_events, tear, write_session
from tests.recovery.session import CONFIG, settings_for

USER = "MM01"


def fresh_engine() -> Engine:
    return Engine(CONFIG, SYMBOLS, gateway())


def digest(path: str) -> str:
    h = hashlib.sha256()
    for f in sorted(pathlib.Path(path).iterdir()):
        if f.name.startswith("seg-"):
            h.update(f.read_bytes())
    return h.hexdigest()


def held_positions(engine) -> dict[str, int]:
    return {s.name: engine.inventory.position[s.id] for s in SYMBOLS.symbols
            if engine.inventory.position[s.id]}


def recon_docs(path: str) -> list[dict]:
    with Reader(path) as reader:
        return [unpack_json(r.payload) for r in reader.records(rtypes=[RecordType.RECON])]


def test_sigkilled_session_is_recovered_reconciled_and_replays_exactly(crashed_session):
    venue, journal, address = crashed_session
    live_before = {o.token for o in venue.live_orders(USER)}
    assert live_before, "the crashed engine left quotes resting"
    # a dry run reports and changes nothing: not the journal, not the venue's orders
    before, logged = digest(journal), len(venue.session_messages(USER))
    dry = recover(settings_for(journal, address, dry_run=True))
    assert dry.dry_run and dry.replay.deterministic and dry.orders_sent == 0 and dry.recon_seqs == []
    assert digest(journal) == before
    since = [ouch.decode_outbound(m) for m in venue.session_messages(USER, logged + 1)]
    assert not any(isinstance(m, ouch.Canceled) for m in since)    # background fills only
    # what it would do: pull the quotes it knows rest, deliver what the journal lacks
    found = {d.kind for d in dry.rounds[0].discrepancies}
    assert dry.would_send or found & {"missing-message", "missing-fill"}
    assert dry.reconciled == dry.rounds[0].clean
    # the real recovery
    stages = []
    result = recover(settings_for(journal, address), progress=lambda stage, text: stages.append(stage))
    assert result.reconciled, result.reasons
    assert {"replay", "venue", "reconcile", "outcome"} <= set(stages)
    assert result.replay.deterministic and result.replay.orders_checked >= 12
    assert result.tail["repaired"] and not result.tail["previous_closed_cleanly"]
    assert result.rounds[-1].clean
    # unreconciled while it ran, the engine pulled its quotes; the venue now agrees with it
    assert result.orders_sent >= 1 and venue.live_orders(USER) == []
    assert held_positions(result.engine) == {k: v for k, v in venue.position(USER).items() if v}
    assert result.engine.risk.faults == []            # reconciled: the fault is cleared
    kinds = [d["kind"] for d in recon_docs(journal)]
    assert kinds[0] == "begin" and kinds[-1] == "outcome" and "finding" in kinds
    outcome = recon_docs(journal)[-1]
    assert outcome["reconciled"] is True and outcome["after"]["positions"] == held_positions(result.engine)
    assert outcome["before"]["state_hash"] == result.replay.state_hash
    assert verify(journal).ok
    # the journal, RECON records included, rebuilds the recovered engine exactly
    again = replay_journal(journal, fresh_engine())
    assert again.deterministic and again.unsent == []
    assert again.state_hash == result.engine.state_hash()


@pytest.mark.parametrize("power_loss", [False, True], ids=["torn-write", "power-loss"])
def test_torn_tail_loses_records_that_the_venue_gives_back(crashed_session, power_loss):
    """A torn write cuts one record; a power loss also drops every record written after it (pages
    not written back): either way recovery discards the tail, the venue gives back what it held."""
    venue, journal, address = crashed_session
    with Reader(journal) as reader:
        records = list(reader.records())
    venue_after = [i for i, r in enumerate(records) if r.rtype == RecordType.VENUE_MSG]
    cut = next(i for i in range(len(records) - 1, -1, -1)
               if records[i].rtype == RecordType.ORDER_SENT and any(v > i for v in venue_after))
    lost_seq = tear(journal, records[cut].seq, power_loss)   # that ORDER_SENT torn in half
    result = recover(settings_for(journal, address))
    assert result.tail["first_lost_seq"] == lost_seq and result.tail["bytes_discarded"] > 0
    # every venue message after the cut is gone from the journal: the venue gives each one back
    assert result.delivered >= sum(1 for r in records[cut + 1:] if r.rtype == RecordType.VENUE_MSG
                                   and unpack(RecordType.VENUE_MSG, r.payload)["soup_seq"])
    assert result.replay.last_seq == lost_seq - 1 and result.replay.deterministic
    assert result.delivered >= 1                  # venue messages the torn journal lost
    assert result.reconciled, result.reasons
    assert held_positions(result.engine) == {k: v for k, v in venue.position(USER).items() if v}
    assert venue.live_orders(USER) == []
    again = replay_journal(journal, fresh_engine())
    assert again.deterministic and again.state_hash == result.engine.state_hash()


def test_a_live_writer_and_a_missing_venue_are_typed_errors(tmp_path):
    path = str(tmp_path / "j")
    with Journal(path):
        with pytest.raises(JournalUnavailable, match="live writer"):
            recover(settings_for(path, ("127.0.0.1", 1)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    with pytest.raises(VenueUnavailable):
        recover(settings_for(path, ("127.0.0.1", closed_port), timeout=0.5))


_HOLDING_WRITER = """
import sys, time
from journal import Journal
with Journal(sys.argv[1]):
    print("open", flush=True)
    time.sleep(60)
"""


def test_a_dry_run_refuses_a_journal_a_live_writer_holds_and_never_calls_the_venue(tmp_path):
    """A dry run takes no lock of its own, but an engine still writing the journal (here another
    process) is refused as the real recovery refuses it: before anything reaches the venue, where
    it would log in as the running engine's user."""
    import subprocess
    import sys
    path = str(tmp_path / "j")
    write_session(path, session_events(3, 40)).journal.close()
    writer = subprocess.Popen([sys.executable, "-c", _HOLDING_WRITER, path], cwd=pathlib.Path(__file__).resolve().parents[2],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open", writer.stderr.read()
        with socket.create_server(("127.0.0.1", 0)) as venue:
            venue.settimeout(0.2)
            with pytest.raises(JournalUnavailable, match=f"live writer.*pid {writer.pid}"):
                recover(settings_for(path, venue.getsockname(), dry_run=True))
            with pytest.raises(TimeoutError):
                venue.accept()                     # nobody called the venue
    finally:
        writer.kill()
        writer.wait(10)
        writer.stdout.close()
        writer.stderr.close()
    # with the writer gone (SIGKILLed: its lock is dead), the dry run reads the journal
    assert recover(settings_for(path, dry_run=True)).replay.events > 0


def test_without_a_venue_the_engine_stays_unreconciled_and_says_why(tmp_path):
    path = str(tmp_path / "j")
    Journal(path).close()
    result = recover(settings_for(path))
    assert not result.reconciled and "no venue" in result.reasons[0]
    assert result.engine.risk.state.name == "HALTED" and "unreconciled" in " ".join(result.engine.risk.faults)
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == ["begin", "outcome"] and docs[-1]["reasons"] == result.reasons


def test_pulls_decided_without_a_venue_are_named_so_the_journal_still_replays(tmp_path):
    """Without a venue the latch at BEGIN pulls the crashed session's quotes, with no session to
    send them on: nothing is journaled for them, so the OUTCOME record names them, and a later
    replay (the next recovery's) does not take them for orders the journal lost."""
    path = str(tmp_path / "j")
    write_session(path, session_events(3, 60)).journal.close()
    first = recover(journaling.recovery_settings(path))
    assert first.reasons == ["no venue given: nothing to reconcile against"] and first.would_send
    assert recon_docs(path)[-1]["unsent_orders"] == first.would_send
    again = replay_journal(path, journaling.fresh_engine())
    assert again.deterministic, [d.detail for d in again.divergences]
    second = recover(journaling.recovery_settings(path))
    assert second.replay.deterministic and second.reasons == first.reasons


_KILLED_AT_ITS_FINDING = """
import os, signal, sys
from recovery.recover import recover
from tests.recovery.session import settings_for

def progress(stage, text):
    if stage == "reconcile":          # its round-1 finding is journaled, its outcome not yet
        os.kill(os.getpid(), signal.SIGKILL)

recover(settings_for(sys.argv[1], ("127.0.0.1", int(sys.argv[2]))), progress)
"""


@pytest.mark.parametrize("ending", ["failed", "sigkilled"])
def test_a_trade_correction_is_reported_only_by_a_recovery_that_finished(crashed_session, ending):
    """A recovery that journaled a finding naming a broken trade and then failed (its OUTCOME names
    only the error) or was SIGKILLed (no OUTCOME) showed the break to nobody: the next recovery
    still reports it (and stays HALTED); only once one finished with it in its reasons does a
    later one list it as reported earlier, in that OUTCOME record."""
    import signal
    import subprocess
    import sys
    import time
    from tests.recovery.test_midsession import forge
    venue, journal, address = crashed_session
    token = next(m.token for m in map(ouch.decode_outbound, venue.session_messages(USER))
                 if isinstance(m, ouch.Accepted))
    forge(venue, ouch.BrokenTrade(time.time_ns(), token, 424242, "E"))
    # durable once the venue's writer flushed it; the venue's flow may fill our resting quotes
    # after it: found by its match number
    deadline, broken_seq = time.monotonic() + 10, None
    while broken_seq is None and time.monotonic() < deadline:
        broken_seq = next((seq for seq, m in enumerate(map(ouch.decode_outbound, venue.session_messages(USER)), 1)
                           if isinstance(m, ouch.BrokenTrade) and m.match_number == 424242), None)
        time.sleep(0.02)
    assert broken_seq is not None, "the venue never logged the break"
    if ending == "failed":
        def fail(stage, text):
            if stage == "reconcile":
                raise VenueUnavailable("the venue went away after the first finding")
        with pytest.raises(VenueUnavailable):
            recover(settings_for(journal, address), progress=fail)
    else:
        proc = subprocess.run([sys.executable, "-c", _KILLED_AT_ITS_FINDING, journal, str(address[1])],
                              cwd=pathlib.Path(__file__).resolve().parents[2], capture_output=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    docs = recon_docs(journal)
    findings = [d for d in docs if d["kind"] == "finding"]
    assert findings and "trade-correction" in findings[-1]["counts"]
    assert [d["kind"] for d in docs][-1] == ("outcome" if ending == "failed" else "finding")
    assert all(not d.get("corrections_reported") for d in docs if d["kind"] == "outcome")
    # the next recovery finishes: the break is still news, in its reasons and its OUTCOME
    reporting = recover(settings_for(journal, address))
    assert not reporting.reconciled and reporting.trading_state == "HALTED"
    assert any(r.startswith("trade-correction") and f"sequence {broken_seq}" in r
               for r in reporting.reasons), reporting.reasons
    assert reporting.rounds[-1].reported_earlier == ()
    outcome_seq = reporting.recon_seqs[-1]
    assert recon_docs(journal)[-1]["corrections_reported"] == [broken_seq]
    # ... and only now is it reported: the one after lists it as reported in that OUTCOME
    after = recover(settings_for(journal, address))
    assert not any(r.startswith("trade-correction") for r in after.reasons), after.reasons
    assert [(s, r) for s, _, _, r in after.rounds[-1].reported_earlier] == [(broken_seq, outcome_seq)]
