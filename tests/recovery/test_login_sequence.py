"""Recovery logs in from the last journaled venue sequence + 1; a venue whose LoginAccepted starts
elsewhere (later: a gap; earlier: messages applied twice) gets nothing of its session fed or
journaled: a venue-sequence finding, the engine left unreconciled (HALTED)."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from journal import Reader, RecordType
from journal.catalogue import TsSource, unpack
from mm_core.events import VenueMessage
from mm_core.protocol import ouch, soupbintcp
from recovery.recover import VENUE_SEQUENCE, recover
from recovery.replay import replay_journal
from tests.recovery import journaling
from tests.recovery.scripted_venue import ScriptedVenue
from tests.recovery.test_recover_venue import recon_docs


def venue_session(seed: int = 3, steps: int = 200) -> tuple[list, list[bytes]]:
    """A session's inputs that start with the venue's LoginAccepted, and the venue's log."""
    events = journaling.session_events(seed, steps)
    events.insert(1, VenueMessage(soupbintcp.encode(soupbintcp.LoginAccepted("S1", 1)), events[0].now_ns,
                                  TsSource.USER))
    log = [e.packet[3:] for e in events if isinstance(e, VenueMessage) and e.packet[2] == ord("S")]
    return events, log


def journaled_venue_seqs(path: str) -> list[int]:
    with Reader(path) as reader:
        return [unpack(RecordType.VENUE_MSG, r.payload)["soup_seq"]
                for r in reader.records(rtypes=[RecordType.VENUE_MSG])]


@pytest.mark.parametrize("shift", [+3, -5], ids=["gap", "early"])
def test_a_login_that_starts_elsewhere_than_asked_feeds_nothing_and_stays_halted(tmp_path, shift):
    events, log = venue_session()
    path = str(tmp_path / "j")
    journaling.write_session(path, events).journal.close()
    if shift < 0:     # the venue replays from before the journal's last fill
        fill = max(i for i, p in enumerate(log, 1) if isinstance(ouch.decode_outbound(p), ouch.Executed))
        start_for = lambda asked: fill       # noqa: E731
        assert fill < len(log) + 1
    else:             # the journal lacks the venue's last message, the venue skips past it
        start_for = lambda asked: asked + shift     # noqa: E731
        log.append(log[-1])
    before = journaled_venue_seqs(path)
    venue = ScriptedVenue(log, start_for)
    try:
        result = recover(journaling.recovery_settings(path, venue=venue.address, timeout=2.0, quiet=0.1))
    finally:
        venue.close()
    asked = venue.logins[-1]
    assert asked == max(before) + 1
    assert not result.reconciled and result.trading_state == "HALTED"
    # the latch's pulls (cancels are always allowed) go out; no venue message is applied
    assert result.delivered == 0
    assert any(r.startswith(f"{VENUE_SEQUENCE}: the venue's login starts at sequence") for r in result.reasons)
    # nothing of the mismatched session was journaled: no duplicate (or shifted) VENUE_MSG
    after = journaled_venue_seqs(path)
    assert after == before and not [s for s, n in Counter(after).items() if s and n > 1]
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == ["begin", "finding", "outcome"]
    assert docs[0]["requested_sequence"] == asked and docs[0]["venue_sequence"] == start_for(asked)
    assert docs[1]["counts"] == {VENUE_SEQUENCE: 1}
    assert docs[2]["reconciled"] is False and docs[2]["after"]["venue_seq"] == asked - 1
    again = replay_journal(path, journaling.fresh_engine())
    assert again.deterministic and again.engine.risk.state.name == "HALTED"


def test_the_runners_relogin_refuses_a_venue_that_starts_elsewhere(tmp_path):
    """The runner's re-login (a mid-session reconcile's) asks for the sequence after the last it
    received; a venue that starts earlier gets nothing fed: the frames are kept in an alert, the
    engine latched, the connection dropped, and a typed error that a re-login does not retry."""
    from mm_core.engine import Engine
    from mm_core.runner import Runner
    from mm_core.runnertypes import RunnerSettings, VenueSequenceError
    from journal import Journal
    from journal.catalogue import unpack_json
    from tests.mm_core.wire import SYMBOLS, gateway
    from tests.recovery.session import CONFIG, LockedClock

    _, log = venue_session()
    venue = ScriptedVenue(log, lambda asked: asked - 4)
    engine = Engine(CONFIG, SYMBOLS, gateway())
    settings = RunnerSettings(ouch_port=venue.address[1], fresh_session=False, utc_offset_s=37)
    try:
        with Journal(str(tmp_path / "j")) as journal:
            runner = Runner(engine, journal, settings, LockedClock())
            runner.login_order_entry()                  # from 1: the whole log, as asked
            while runner.soup_seq < len(log):
                assert runner.pump_order_entry(2.0) or runner.soup_seq == len(log)
            runner.logout_order_entry(2.0)
            fed = engine.venue_seq
            runner.login_order_entry()                  # asks len(log) + 1, the venue starts 4 earlier
            deadline = time.monotonic() + 5.0
            with pytest.raises(VenueSequenceError) as raised:
                while time.monotonic() < deadline:
                    runner.pump_order_entry(0.5)
            assert raised.value.reason != "S"           # final for LiveReconciler._login_again
            assert runner.soup_seq == len(log) and engine.venue_seq == fed == len(log)
            assert not runner.order_entry_connected and not runner.order_entry_logged_in
            assert engine.risk.state.name == "HALTED"
            runner.close()
    finally:
        venue.close()
    assert venue.logins == [1, len(log) + 1]
    with Reader(str(tmp_path / "j")) as reader:
        docs = [unpack_json(r.payload) for r in reader.records(rtypes=[RecordType.METRICS])]
        seqs = [unpack(RecordType.VENUE_MSG, r.payload)["soup_seq"]
                for r in reader.records(rtypes=[RecordType.VENUE_MSG])]
    alert = [d for d in docs if d.get("alert") == "venue-sequence"]
    assert len(alert) == 1 and str(len(log) - 3) in alert[0]["detail"]
    assert bytes.fromhex(alert[0]["raw_hex"]).startswith(
        soupbintcp.encode(soupbintcp.LoginAccepted("S1", len(log) - 3)))
    assert sorted(s for s in seqs if s) == list(range(1, len(log) + 1))
