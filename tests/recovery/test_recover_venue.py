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
