"""A torn tail the writer's open repaired is journaled whatever the attempt does next: a RECON
journal-tail record with what was discarded, ahead of the attempt's other records, even when the
attempt fails before its BEGIN (the venue out of reach); the no-venue BEGIN carries it too."""
from __future__ import annotations

import socket

import pytest

from recovery.errors import VenueUnavailable
from recovery.recover import RECON_JOURNAL_TAIL, recover
from recovery.replay import replay_journal
from tests.recovery import journaling
from tests.recovery.journaling import session_events, tear, write_session
from tests.recovery.test_recover_venue import recon_docs


def torn_journal(tmp_path) -> tuple[str, int]:
    path = str(tmp_path / "j")
    write_session(path, session_events(3, 200)).journal.close()
    return path, tear(path)


def test_a_repair_is_journaled_when_the_venue_cannot_be_reached(tmp_path):
    path, lost = torn_journal(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()
    with pytest.raises(VenueUnavailable):
        recover(journaling.recovery_settings(path, venue=closed, timeout=0.5))
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == [RECON_JOURNAL_TAIL, "outcome"]
    tail = docs[0]["journal_tail"]
    assert tail["first_lost_seq"] == lost and tail["bytes_discarded"] > 0 and not tail["clean"]
    assert docs[1]["reconciled"] is False and docs[1]["error"]["type"] == "VenueUnavailable"
    # the next attempt finds a clean tail; the journal still says what the first one discarded
    second = recover(journaling.recovery_settings(path))
    assert second.tail["clean"] and second.tail["bytes_discarded"] == 0
    assert [d["kind"] for d in recon_docs(path)].count(RECON_JOURNAL_TAIL) == 1
    assert replay_journal(path, journaling.fresh_engine()).deterministic


def test_without_a_venue_the_repair_is_journaled_and_begin_carries_it(tmp_path):
    path, lost = torn_journal(tmp_path)
    result = recover(journaling.recovery_settings(path))
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == [RECON_JOURNAL_TAIL, "begin", "outcome"]
    assert docs[0]["journal_tail"] == docs[1]["journal_tail"] == result.tail
    assert result.tail["first_lost_seq"] == lost


def test_a_clean_open_journals_no_tail_record(tmp_path):
    path = str(tmp_path / "j")
    write_session(path, session_events(3, 60)).journal.close()
    recover(journaling.recovery_settings(path))
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == ["begin", "outcome"] and docs[0]["journal_tail"]["clean"]


def test_a_repair_is_journaled_when_replay_fails_and_a_later_replay_counts_its_orders_unsent(tmp_path, monkeypatch):
    """Replay raising after the open repaired the tail (here a MemoryError mid-replay) still
    journals the repair, with the error; the orders a later replay has pending at that record
    (the torn ORDER_SENT's) were never sent, so that replay does not count them as divergences."""
    from journal import Reader
    from journal.catalogue import RecordType
    import recovery.recover as recover_module

    path = str(tmp_path / "j")
    write_session(path, session_events(3, 200)).journal.close()
    with Reader(path) as reader:
        last_order = [r.seq for r in reader.records(rtypes=[RecordType.ORDER_SENT])][-1]
    lost = tear(path, last_order, power_loss=True)

    def failing_replay(*args, **kwargs):
        raise MemoryError("replay ran out of memory")
    monkeypatch.setattr(recover_module, "replay_journal", failing_replay)
    with pytest.raises(MemoryError):
        recover(journaling.recovery_settings(path))
    monkeypatch.undo()
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == [RECON_JOURNAL_TAIL]
    assert docs[0]["journal_tail"]["first_lost_seq"] == lost and docs[0]["unsent_orders"] == "all"
    assert docs[0]["replay_error"] == {"type": "MemoryError", "message": "replay ran out of memory"}
    replayed = replay_journal(path, journaling.fresh_engine())
    assert replayed.deterministic, [d.detail for d in replayed.divergences]
    second = recover(journaling.recovery_settings(path))
    assert second.tail["clean"] and second.replay.deterministic and not second.replay.unsent
