"""A recovery that has journaled its BEGIN record and then fails still journals how it ended: an
OUTCOME record, not reconciled, naming the failure; the original error reaches the caller, and
the journal still replays. The venue here is a scripted SoupBinTCP server on loopback that drops
the resumed session right after accepting its login (after BEGIN is in the journal)."""
from __future__ import annotations

import socket
import threading

import pytest

from journal import Journal, Reader, RecordType
from mm_core.protocol import ouch, soupbintcp
from recovery.errors import VenueUnavailable
from recovery.recover import recover
from recovery.replay import replay_journal
from tests.recovery import journaling
from tests.recovery.test_recover_venue import recon_docs

_FROM_CLIENT = soupbintcp.Direction.FROM_CLIENT
_LOGOUT = soupbintcp.encode(soupbintcp.LogoutRequest())


class DroppingVenue:
    """Answers full_view's two logins (the head, then the replay of one SystemEvent), then
    accepts the resumed session's login and closes the connection without another byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.logins: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        event = ouch.encode(ouch.SystemEvent(1, "S"))
        with self.server:
            self.server.settimeout(30)
            for _ in range(3):
                try:
                    conn, _ = self.server.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(10)
                    request = self._login(conn)
                    self.logins.append(request.requested_sequence)
                    if request.requested_sequence == 0:                 # the head: one message
                        conn.sendall(soupbintcp.encode(soupbintcp.LoginAccepted("S1", 2)))
                    elif len(self.logins) == 2:                         # full view from 1
                        conn.sendall(soupbintcp.encode(soupbintcp.LoginAccepted("S1", 1))
                                     + soupbintcp.encode(soupbintcp.SequencedData(event)))
                    else:                                               # the resumed session
                        conn.sendall(soupbintcp.encode(soupbintcp.LoginAccepted(
                            "S1", request.requested_sequence)))
                        continue                                        # dropped at once
                    try:
                        while (data := conn.recv(4096)) and _LOGOUT not in data:   # until logout
                            pass
                    except OSError:
                        pass

    @staticmethod
    def _login(conn: socket.socket) -> soupbintcp.LoginRequest:
        framer = soupbintcp.Framer()
        while True:
            frames = framer.feed(conn.recv(4096))
            if frames:
                return soupbintcp.decode(frames[0], _FROM_CLIENT)

    def close(self) -> None:
        self.server.close()
        self.thread.join(10)


@pytest.fixture
def dropping_venue():
    venue = DroppingVenue()
    yield venue
    venue.close()


def test_a_failure_after_begin_is_journaled_as_the_outcome_and_the_error_still_raised(tmp_path,
                                                                                     dropping_venue):
    path = str(tmp_path / "j")
    journaling.write_session(path, journaling.session_events(3, 60)).journal.close()
    settings = journaling.recovery_settings(path, venue=dropping_venue.address, timeout=2.0, quiet=0.1)
    with pytest.raises(VenueUnavailable) as raised:
        recover(settings)
    assert len(dropping_venue.logins) == 3 and dropping_venue.logins[:2] == [0, 1]
    docs = recon_docs(path)
    assert [d["kind"] for d in docs] == ["begin", "outcome"]
    outcome = docs[-1]
    assert outcome["reconciled"] is False
    assert outcome["error"] == {"type": "VenueUnavailable", "message": str(raised.value)}
    assert outcome["reasons"][-1] == f"recovery failed: VenueUnavailable: {raised.value}"
    # what the attempt started from (the replay) and where it left the engine
    assert outcome["before"]["state_hash"] == replay_journal(path, journaling.fresh_engine(),
                                                             last_seq=min(recon_seqs(path)) - 1).state_hash
    assert set(outcome["after"]) == {"open_orders", "unknown_outcome", "positions", "venue_seq", "state_hash"}
    # the journal still replays as it was written, the failed attempt included: the orders the
    # engine decided whose ORDER_SENT never made it into the journal (the send that failed came
    # before them; how many depends on when the dropped connection shows) are named as unsent
    again = replay_journal(path, journaling.fresh_engine())
    assert again.deterministic, [d.detail for d in again.divergences]
    assert again.recon_records == 2 and again.engine.risk.state.name == "HALTED"


def recon_seqs(path: str) -> list[int]:
    with Reader(path) as reader:
        return [r.seq for r in reader.records(rtypes=[RecordType.RECON])]


def test_a_failure_before_begin_journals_nothing(tmp_path):
    """Nothing was journaled for the attempt (the venue cannot be reached for its full view):
    there is no BEGIN to close, so no OUTCOME either."""
    path = str(tmp_path / "j")
    Journal(path).close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()
    with pytest.raises(VenueUnavailable):
        recover(journaling.recovery_settings(path, venue=closed, timeout=0.5))
    assert recon_docs(path) == []
