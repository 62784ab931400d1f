"""What a venue SIGKILLed mid-session and started again under the same session carries over from
its first run, checked against what that run told its clients: the positions its executions
built, and order references and match numbers that stay day-unique on ITCH, where the
background flow's orders and trades (in no session log) are published too."""
from __future__ import annotations

import json
import shutil

import pytest

from mm_core.protocol import itch, ouch
from mm_core.venue import restart
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.errors import SessionLogError
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from mm_core.venue.session_log import SessionLog
from tests.venue.firms import two_firms
from tests.venue.test_log_tail import SESSION, start_process
from tests.venue.test_token_use import kill


def login(ports, user: str, password: str, sequence: int = 1) -> SoupClient:
    client = SoupClient(ports["host"], ports["ouch_port"])
    client.login(user, password, sequence)
    return client


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """A venue process with background flow in which MM02 sold into the bids, SIGKILLed once the
    flow had traded too: (log dir, MM02's executions, the ITCH messages seen)."""
    logs = tmp_path_factory.mktemp("crashed") / "logs"
    with MoldReceiver() as rx:
        proc = start_process(str(logs), rx.port)
        try:
            ports = json.loads(proc.stdout.readline())
            with login(ports, "MM02", "mmaudit2") as seller:
                seller.sequenced(1)
                seller.enter("HIT1", "S", 700, "ACME", 1_0000, tif=ouch.TIF_IOC)
                answer = seller.sequenced(1, 10.0) + seller.drain(0.5)   # one batch
                fills = [s.message for s in answer if isinstance(s.message, ouch.Executed)]
            assert fills, "the flow's bids took nothing"
            mine = {f.match_number for f in fills}
            rx.run(None, lambda r: sum(isinstance(x, itch.OrderExecuted)
                                       and x.match_number not in mine for x in r.decoded()) >= 3,
                   30.0)
        finally:
            kill(proc)
        while (late := rx.receive(0.3)) is not None:   # the dead run's packets still queued
            rx.on_packet(late)
        return logs, fills, rx.decoded()


def restarted(crashed, tmp_path) -> Venue:
    logs = tmp_path / "logs"
    shutil.copytree(crashed[0], logs)
    return Venue(load_config().with_venue(itch_port=9, log_dir=str(logs), session=SESSION),
                 background_flow=False)


def test_positions_built_before_the_restart_are_still_the_venues(crashed, tmp_path):
    _, fills, _ = crashed
    sold = sum(f.executed_shares for f in fills)
    with restarted(crashed, tmp_path) as venue:
        assert venue.position("MM02") == {"ACME": -sold}
        assert venue.position("MM01") == {}
        with two_firms(venue) as (a, b):
            a.enter("ASK1", "S", 100, "ACME", 20_0000)
            a.sequenced(1)
            b.enter("LIFT1", "B", 100, "ACME", 20_0000)
            b.sequenced(2)
        assert venue.position("MM02") == {"ACME": 100 - sold}
        assert venue.position("MM01") == {"ACME": -100}


def test_a_session_log_that_executes_an_order_it_never_accepted_is_a_typed_error():
    stray = ouch.encode(ouch.Executed(1, "GHOST", 100, 10_0000, "A", 7))
    with pytest.raises(SessionLogError, match="GHOST"):
        restart.handed_out({"MM01": [ouch.encode(ouch.SystemEvent(0, "S")), stray]})


def test_order_references_and_match_numbers_stay_day_unique_across_the_restart(crashed, tmp_path):
    _, _, published = crashed
    refs = [x.order_ref for x in published if isinstance(x, itch.AddOrder)]
    matches = [x.match_number for x in published if isinstance(x, itch.OrderExecuted)]
    with restarted(crashed, tmp_path) as venue:
        with two_firms(venue) as (a, b):
            a.enter("ASK2", "S", 100, "ACME", 20_0000)
            (accepted,) = [s.message for s in a.sequenced(1)]
            b.enter("LIFT2", "B", 100, "ACME", 20_0000)
            _, fill = [s.message for s in b.sequenced(2)]
    assert accepted.order_ref > max(refs)          # the flow's, published before the crash
    assert fill.match_number > max(matches)


def test_the_published_high_water_marks_read_every_earlier_store(tmp_path):
    first, second = SessionLog(tmp_path / "A.itch"), SessionLog(tmp_path / "B.itch")
    add = lambda ref: itch.encode(itch.AddOrder(1, 0, 0, ref, "B", 100, "ACME", 10_0000))  # noqa: E731
    done = lambda ref, match: itch.encode(itch.OrderExecuted(1, 0, 0, ref, 100, match))  # noqa: E731
    for message in [add(5), done(5, 9), add(40)] + [itch.encode(itch.OrderDelete(1, 0, 0, 40))] * 9000:
        first.append(message)
    for message in [add(41), add(42), itch.encode(itch.OrderDelete(1, 0, 0, 41))]:
        second.append(message)
    first.flush(), second.flush()
    assert restart.published_high_water([first, second], chunk=100) == (43, 10)
    assert restart.published_high_water([]) == (1, 1)
