"""A venue restarted under the same session name after SIGKILL: the SoupBinTCP session goes on
(order references, match numbers and tokens continue from the session logs) and market data
moves to a new MoldUDP64 session, so no client mistakes the new stream for duplicates."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from mm_core.protocol import itch, moldudp64, ouch
from mm_core.protocol.errors import SessionMismatch
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue import restart
from mm_core.venue.errors import SessionLogError
from mm_core.venue.server import Venue
from tests.venue.test_log_tail import SESSION, start_process
from tests.venue.test_session_ended import unend


def login(ports: dict, user: str, password: str, sequence: int = 1) -> SoupClient:
    client = SoupClient(ports["host"], ports["ouch_port"])
    client.login(user, password, sequence)
    return client


def test_restart_continues_refs_matches_and_tokens_and_changes_the_mold_session(tmp_path):
    logs = str(tmp_path / "logs")
    with MoldReceiver() as rx:
        proc = start_process(logs, rx.port)
        try:
            ready = json.loads(proc.stdout.readline())
            assert ready["itch_session"] == SESSION       # a first start publishes under it
            with login(ready, "MM01", "mmaudit") as a, login(ready, "MM02", "mmaudit2") as b:
                a.enter("LIVE1", "B", 300, "ACME", 10_0000)        # rests far below the flow
                b.enter("HIT1", "S", 100, "ACME", 10_0000)          # trades with the best bid
                before = a.sequenced(2) + b.sequenced(3)
            rx.run(None, lambda r: any(isinstance(x, itch.OrderExecuted) for x in r.decoded()),
                   5.0)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
        while (late := rx.receive(0.3)) is not None:   # the dead run's packets still queued
            rx.on_packet(late)
        refs = {s.message.order_ref for s in before if isinstance(s.message, ouch.Accepted)}
        matches = {s.message.match_number for s in before if isinstance(s.message, ouch.Executed)}
        seen = len(rx.messages)
        config = load_config().with_venue(itch_port=rx.port, log_dir=logs, session=SESSION)
        with Venue(config, background_flow=False) as venue:
            assert venue.ports.session == SESSION
            assert venue.ports.itch_session not in ("", SESSION)
            with pytest.raises(SessionMismatch):          # loud, not "duplicates"
                rx.run(None, lambda r: len(r.messages) > seen, 5.0)
            with SoupClient(venue.ports.host, venue.ports.ouch) as a, \
                    SoupClient(venue.ports.host, venue.ports.ouch) as b:
                a.login("MM01", "mmaudit", 0)
                b.login("MM02", "mmaudit2", 0)
                a.enter("LIVE1", "B", 100, "ACME", 9_0000)     # a pre-crash token: ignored
                a.enter("AFTER1", "S", 100, "ACME", 11_0000)
                accepted = a.sequenced(1)[0].message
                assert accepted.token == "AFTER1" and accepted.order_ref > max(refs)
                b.enter("AFTER2", "B", 100, "ACME", 11_0000)
                fills = [s.message for s in b.sequenced(2)]
                assert fills[1].match_number > max(matches)
            assert any(x.token == "LIVE1" and "duplicate" in x.why for x in venue.ignored)
    assert (Path(logs) / SESSION).is_dir()


def test_each_restart_gets_its_own_mold_session_and_rerequests_follow_it(tmp_path):
    logs = str(tmp_path / "logs")
    names = []
    for _ in range(3):
        with MoldReceiver() as rx:
            config = load_config().with_venue(itch_port=rx.port, log_dir=logs, session=SESSION)
            with Venue(config, background_flow=False) as venue:
                names.append(venue.ports.itch_session)
                rx.run(None, lambda r: r.messages, 5.0)                 # start of day
                venue.withhold_itch([venue.publisher.next_sequence])
                with SoupClient(venue.ports.host, venue.ports.ouch) as c:
                    c.login("MM01", "mmaudit", 0)
                    c.enter(f"R{len(names)}", "B", 100, "ACME", 10_0000)  # publishes an AddOrder
                    rx.run((venue.ports.host, venue.ports.rerequest),
                           lambda r: any(isinstance(x, itch.AddOrder) for x in r.decoded()), 5.0)
                assert rx.tracker.session == venue.ports.itch_session and rx.gaps
        unend(Path(logs) / SESSION)                     # a crash, not an end of day: it restarts
    assert names[0] == SESSION and len(set(names)) == 3
    assert all(len(n) <= moldudp64.SESSION_WIDTH for n in names)


def test_an_unreadable_mold_session_record_is_a_typed_error(tmp_path):
    (tmp_path / "logs" / SESSION / restart.MOLD_SESSIONS).mkdir(parents=True)   # not a file
    config = load_config().with_venue(itch_port=9, log_dir=str(tmp_path / "logs"),
                                      session=SESSION)
    venue = Venue(config, background_flow=False)
    with pytest.raises(SessionLogError, match=restart.MOLD_SESSIONS):
        venue.start()
    assert all(sl._fd < 0 for sl in venue.logs.values())        # nothing left open
