"""A power loss takes the venue's unsynced log tails, but the wire already carried them: the
restart must not hand out an order reference or match number again. The venue reserves both in
fsynced blocks (numbers.reserved) before they are written or sent, and a restart starts past the
last block.

How the power loss is simulated: the venue runs as a real process and is SIGKILLed after clients
saw orders, trades and ITCH; then each SoupBinTCP session log and the ITCH store is cut back to
its first records (start of day), as if the page cache holding the rest never reached the disk,
and half a record is appended (the torn write the power cut interrupted). The small record files
(session date, MoldUDP64 names, reserved numbers) stay as they are: each is fsynced before the
venue goes on, which is the contract under test; the ordering test checks that it holds."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from mm_core.protocol import itch, ouch
from mm_core.venue import highwater, restart
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.errors import SessionLogError
from mm_core.venue.server import Venue
from mm_core.venue.session_log import SessionLog, read_session_log
from tests.venue.test_log_tail import SESSION, start_process
from tests.venue.test_restart import login

TORN = b"\x00\x43S" + b"x" * 20          # a record cut short: 0x43 bytes announced, 21 there
ADDS = (itch.AddOrder, itch.AddOrderMpid)
PRINTS = (itch.OrderExecuted, itch.OrderExecutedWithPrice, itch.Trade)


def lose_unsynced_tail(path: Path, keep: int) -> None:
    """Only the first `keep` records of the log reached the disk, then a torn one."""
    log = SessionLog(path, readonly=True)
    end = log._ends[keep]
    log.close()
    with open(path, "r+b") as fh:
        fh.truncate(end)
        fh.seek(end)
        fh.write(TORN)


def numbers_on_the_wire(private: list, public: list) -> tuple[int, int]:
    """(highest order reference, highest match number) the clients saw, OUCH and ITCH."""
    refs = [m.order_ref for m in private if isinstance(m, (ouch.Accepted, ouch.Replaced))]
    refs += [m.order_ref for m in public if isinstance(m, ADDS)]
    matches = [m.match_number for m in private if isinstance(m, ouch.Executed)]
    matches += [m.match_number for m in public if isinstance(m, PRINTS)]
    return max(refs), max(matches)


def test_a_restart_after_a_power_loss_hands_out_no_number_the_wire_carried(tmp_path):
    logs = tmp_path / "logs"
    session_dir = logs / SESSION
    with MoldReceiver() as rx:
        proc = start_process(str(logs), rx.port)          # with its background flow
        try:
            ready = json.loads(proc.stdout.readline())
            with login(ready, "MM01", "mmaudit", 0) as a, \
                    login(ready, "MM02", "mmaudit2", 0) as b:
                private = []
                for i in range(3):
                    a.enter(f"BID{i}", "B", 100, "ACME", 10_0000 + i * 100)   # far below the flow
                    b.enter(f"HIT{i}", "S", 100, "ACME", 10_0000)             # takes the best bid
                    private += [s.message for s in a.sequenced(1) + b.sequenced(2)]
            rx.run(None, lambda r: sum(isinstance(x, PRINTS) for x in r.decoded()) >= 3, 5.0)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
        while (late := rx.receive(0.3)) is not None:      # the dead run's packets still queued
            rx.on_packet(late)
        top_ref, top_match = numbers_on_the_wire(private, rx.decoded())

    # the power cut: every log keeps its start of day only, and ends in a torn record
    for user in ("MM01", "MM02"):
        lose_unsynced_tail(session_dir / f"{user}.soup", 1)
    store = restart.mold_store_path(session_dir, SESSION)
    first_add = next(i for i, raw in enumerate(read_session_log(store)) if raw[:1] in (b"A", b"F"))
    lose_unsynced_tail(store, first_add)
    # what the logs and the store still show lies below what the wire carried: numbering on from
    # them alone would hand out published numbers again
    survivors = {u: read_session_log(session_dir / f"{u}.soup") for u in ("MM01", "MM02")}
    carried = restart.handed_out(survivors)
    assert carried.next_ref <= top_ref and carried.next_match <= top_match
    stores = [SessionLog(store, readonly=True)]
    assert restart.published_high_water(stores) == (1, 1)
    stores[0].close()

    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session=SESSION)
        with Venue(config, background_flow=False) as venue:
            assert venue.log_tail_cut == {"MM01": len(TORN), "MM02": len(TORN)}
            with SoupClient(venue.ports.host, venue.ports.ouch) as a, \
                    SoupClient(venue.ports.host, venue.ports.ouch) as b:
                a.login("MM01", "mmaudit", 0)
                b.login("MM02", "mmaudit2", 0)
                a.enter("AFTER1", "S", 100, "ACME", 11_0000)
                accepted = a.sequenced(1)[0].message
                b.enter("AFTER2", "B", 100, "ACME", 11_0000)
                fill = [s.message for s in b.sequenced(2)][1]
    assert isinstance(accepted, ouch.Accepted) and accepted.order_ref > top_ref
    assert isinstance(fill, ouch.Executed) and fill.match_number > top_match


def test_numbers_are_reserved_and_fsynced_before_any_event_carrying_them_is_written(
        tmp_path, monkeypatch, make_venue):
    monkeypatch.setattr(highwater, "BLOCK", 2)          # a reservation every second number
    seen = []
    real_record = highwater.record_line

    def record(path, line, what, exclusive=False):
        # at the moment a block is reserved, nothing from it is in a log or the ITCH store yet
        # (both are written before anything is sent)
        seen.append((highwater_of(venue), (venue.numbers.ref_ceiling,
                                           venue.numbers.match_ceiling)))
        return real_record(path, line, what, exclusive)

    monkeypatch.setattr(highwater, "record_line", record)
    venue = make_venue()
    with SoupClient(venue.ports.host, venue.ports.ouch) as a, \
            SoupClient(venue.ports.host, venue.ports.ouch) as b:
        a.login("MM01", "mmaudit", 0)
        b.login("MM02", "mmaudit2", 0)
        for i in range(4):
            a.enter(f"S{i}", "S", 100, "ACME", 10_0000)
            a.sequenced(1)
            b.enter(f"B{i}", "B", 100, "ACME", 10_0000)
            b.sequenced(2)
        a.sequenced(4)
    assert len(seen) >= 4
    for (ref, match), (ref_ceiling, match_ceiling) in seen:
        assert ref < ref_ceiling and match < match_ceiling
    reserved = (venue.numbers.ref_ceiling, venue.numbers.match_ceiling)
    lines = (Path(venue.ports.log_dir) / venue.ports.session / highwater.RECORD).read_text()
    assert tuple(map(int, lines.split("\n")[-2].split())) == reserved
    next_ref, next_match = venue.engine.next_numbers()
    assert next_ref <= reserved[0] and next_match <= reserved[1]


def highwater_of(venue: Venue) -> tuple[int, int]:
    """The highest order reference and match number written so far (session logs and the ITCH
    store; 0 when none)."""
    ref = match = 0
    for raw in venue.mold_stores[venue.itch_session].messages():
        message = itch.decode(raw)
        if isinstance(message, ADDS):
            ref = max(ref, message.order_ref)
        elif isinstance(message, PRINTS):
            match = max(match, message.match_number)
    for session_log in venue.logs.values():
        for raw in session_log.messages():
            message = ouch.decode_outbound(raw)
            if isinstance(message, ouch.Accepted):
                ref = max(ref, message.order_ref)
            elif isinstance(message, ouch.Executed):
                match = max(match, message.match_number)
    return ref, match


def test_the_reservation_record_reads_its_last_whole_line_and_refuses_a_damaged_one(tmp_path):
    path = tmp_path / highwater.RECORD
    assert (highwater.NumberReservation(tmp_path).ref_ceiling,
            highwater.NumberReservation(tmp_path).match_ceiling) == (1, 1)
    path.write_text("65537 65537\n131073 65540\n1310")          # a torn last append
    numbers = highwater.NumberReservation(tmp_path)
    assert (numbers.ref_ceiling, numbers.match_ceiling) == (131073, 65540)
    numbers.cover(131073, 65540)                                # all reserved: nothing written
    assert path.read_text().endswith("\n1310")
    numbers.cover(131074, 10)                                   # past the block: a new one
    assert path.read_text() == "65537 65537\n131073 65540\n" \
        f"{131074 + highwater.BLOCK} 65540\n"                   # the torn line was cut first
    path.write_text("65537 65537\n65537 x\n")
    with pytest.raises(SessionLogError, match=f"{highwater.RECORD}:2"):
        highwater.NumberReservation(tmp_path)
