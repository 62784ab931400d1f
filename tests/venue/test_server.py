"""The venue on real loopback sockets: sessions, orders, replay, market data gaps, heartbeats,
bad logins and malformed input. Every wait is bounded."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from mm_core.protocol import itch, moldudp64, ouch, soupbintcp
from mm_core.venue.client import ClientError, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.errors import SessionLogError, VenueStateError
from mm_core.venue.server import Venue

PASSWORDS = {"MM01": "mmaudit", "MM02": "mmaudit2"}


def connect(venue, user="MM01", sequence=1, **kw) -> SoupClient:
    client = SoupClient(venue.ports.host, venue.ports.ouch, timeout=5.0)
    client.login(user, PASSWORDS[user], sequence, **kw)
    return client


def messages(client, n):
    return [s.message for s in client.sequenced(n)]


def test_orders_are_accepted_executed_and_published(make_venue, receiver):
    venue = make_venue()
    with connect(venue, "MM01") as buyer, connect(venue, "MM02") as seller:
        assert isinstance(messages(buyer, 1)[0], ouch.SystemEvent)
        messages(seller, 1)
        buyer.enter("BUY1", "B", 300, "ACME", 100_0000)
        acc = messages(buyer, 1)[0]
        assert isinstance(acc, ouch.Accepted) and acc.order_state == "L" and acc.firm == "MMCO"
        seller.enter("SELL1", "S", 200, "ACME", 99_9900, tif=ouch.TIF_IOC)
        s_acc, s_exec = messages(seller, 2)
        (b_exec,) = messages(buyer, 1)
        assert isinstance(s_exec, ouch.Executed) and isinstance(b_exec, ouch.Executed)
        assert s_exec.match_number == b_exec.match_number
        assert (b_exec.executed_shares, b_exec.execution_price, b_exec.liquidity_flag) == \
            (200, 100_0000, "A")
        assert s_exec.liquidity_flag == "R" and s_acc.order_ref != acc.order_ref
        assert venue.position("MM01") == {"ACME": 200} and venue.position("MM02") == {"ACME": -200}
        (live,) = venue.live_orders("MM01")
        assert (live.token, live.shares) == ("BUY1", 100)
        assert venue.live_orders(firm="MMCO") == [live] and venue.live_orders(firm="MMC2") == []
        buyer.order(ouch.CancelOrder("BUY1", 0))
        cancel = messages(buyer, 1)[0]
        assert isinstance(cancel, ouch.Canceled) and cancel.decrement_shares == 100
    receiver.run(None, lambda r: any(isinstance(x, itch.OrderDelete) for x in r.decoded()), 5.0)
    book = [x for x in receiver.decoded() if isinstance(x, (itch.AddOrder, itch.OrderExecuted,
                                                            itch.OrderDelete))]
    assert isinstance(book[0], itch.AddOrder) and book[0].order_ref == acc.order_ref
    assert book[1].executed_shares == 200 and book[1].match_number == b_exec.match_number
    assert isinstance(book[2], itch.OrderDelete)
    assert isinstance(receiver.decoded()[0], itch.SystemEvent)


def test_replace_keeps_or_loses_priority_over_the_wire(make_venue):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.enter("A1", "S", 500, "BOLT", 50_5050)            # BOLT trades in $0.005 ticks
        first = messages(c, 1)[0]
        c.order(ouch.ReplaceOrder("A1", "A2", 400, 50_5050, ouch.TIF_SYSTEM_HOURS, "Y", "N", 0))
        kept = messages(c, 1)[0]
        assert isinstance(kept, ouch.Replaced) and kept.order_ref == first.order_ref
        assert kept.previous_token == "A1" and kept.shares == 400 and kept.order_state == "L"
        c.order(ouch.ReplaceOrder("A2", "A3", 400, 50_5100, ouch.TIF_SYSTEM_HOURS, "Y", "N", 0))
        moved = messages(c, 1)[0]
        assert moved.order_ref != first.order_ref and moved.price == 50_5100
        c.enter("A4", "S", 100, "BOLT", 50_5025)
        assert messages(c, 1)[0].reason == "X"                 # not on the tick table
        c.enter("A5", "B", 100, "BOLT", 40_0000, tif=ouch.TIF_IOC)   # nothing to trade with
        dead, gone = messages(c, 2)
        assert dead.order_state == "D" and (gone.reason, gone.decrement_shares) == ("I", 100)


def test_modify_over_the_wire_keeps_the_order_ref_and_shows_on_itch(make_venue, receiver):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.enter("M1", "T", 500, "ACME", 10_0100)            # sell short
        accepted = messages(c, 1)[0]
        c.order(ouch.ModifyOrder("M1", "E", 200))
        modified = messages(c, 1)[0]
        assert isinstance(modified, ouch.OrderModified)
        assert (modified.token, modified.side, modified.shares) == ("M1", "E", 200)
        c.order(ouch.ModifyOrder("M1", "B", 100))            # sell -> buy: ignored, no answer
        c.order(ouch.ModifyOrder("M1", "S", 0))              # zero cancels what is left
        gone = messages(c, 1)[0]
        assert isinstance(gone, ouch.Canceled) and gone.decrement_shares == 200
    receiver.run(None, lambda r: any(isinstance(x, itch.OrderDelete) for x in r.decoded()), 5.0)
    public = [m for m in receiver.decoded() if getattr(m, "order_ref", None) == accepted.order_ref]
    assert [type(m).__name__ for m in public] == ["AddOrder", "OrderCancel", "OrderDelete"]
    assert public[1].canceled_shares == 300
    assert any("modify may not change side" in x.why for x in venue.ignored)


def read_until_quiet(client, quiet=0.3):
    return client.drain(quiet)


def test_reconnect_replays_exactly_the_missed_messages_then_everything_from_one(make_venue):
    venue = make_venue()
    c = connect(venue)
    for i in range(20):
        c.enter(f"R{i}", "B", 100, "ACME", 99_0000 - i * 100)
    seen = c.sequenced(8)                       # stop reading mid-stream, then vanish
    c.close()
    with connect(venue, "MM02") as other:       # while MM01 is away its orders trade
        other.enter("HIT", "S", 1500, "ACME", 98_0000, tif=ouch.TIF_IOC)   # fills 15 of 20
        read_until_quiet(other)
    last = seen[-1].sequence
    deadline = time.monotonic() + 5
    while venue.logs["MM01"].next_sequence < 1 + 1 + 20 + 15 and time.monotonic() < deadline:
        time.sleep(0.02)
    with connect(venue, sequence=last + 1) as again:
        assert again.next_sequence == last + 1
        replay = read_until_quiet(again)
    log = venue.session_messages("MM01")
    assert [s.sequence for s in replay] == list(range(last + 1, len(log) + 1))
    assert [s.raw for s in seen + replay] == log
    kinds = [type(s.message).__name__ for s in replay]
    assert kinds.count("Executed") == 15 and kinds.count("Accepted") == 20 - (last - 1)
    with connect(venue, sequence=1) as full:
        assert [s.raw for s in read_until_quiet(full)] == log
    with connect(venue, sequence=0) as fresh:    # 0: only new messages
        assert fresh.next_sequence == len(log) + 1 and read_until_quiet(fresh, 0.2) == []


CLIENT_SCRIPT = textwrap.dedent("""
    import sys
    from mm_core.venue.client import SoupClient
    port = int(sys.argv[1])
    c = SoupClient("127.0.0.1", port)
    c.login("MM01", "mmaudit", 1)
    for i in range(300):
        c.enter(f"K{i}", "B", 100, "ACME", 90_0000 - (i % 50) * 100)
    while True:
        (s,) = c.sequenced(1, 30)
        print(s.sequence, s.raw.hex(), flush=True)
""")


def test_client_sigkilled_mid_stream_recovers_every_message_once(make_venue):
    venue = make_venue()
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, str(venue.ports.ouch)],
                            stdout=subprocess.PIPE, text=True, env=env)
    received = []
    try:
        deadline = time.monotonic() + 20
        while len(received) < 60 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seq, raw = line.split()
            received.append((int(seq), bytes.fromhex(raw)))
        # every order taken in before the kill: a process killed with unread bytes in its receive
        # queue resets the connection, and the reset drops what the venue had not read yet (the
        # test failed when a loaded venue was still reading when the kill came)
        deadline = time.monotonic() + 20
        while venue.logs["MM01"].next_sequence < 302 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    assert len(received) >= 60 and proc.returncode == -signal.SIGKILL
    last = received[-1][0]
    with connect(venue, sequence=last + 1) as again:
        rest = read_until_quiet(again)
    log = venue.session_messages("MM01")
    combined = [raw for _, raw in received] + [s.raw for s in rest]
    assert combined == log and len(log) == 1 + 300
    assert [seq for seq, _ in received] + [s.sequence for s in rest] == list(range(1, 302))


def test_moldudp64_gaps_are_detected_and_filled_by_rerequest(make_venue, receiver):
    venue = make_venue()
    start_of_day = venue.publisher.next_sequence - 1
    receiver.run(None, lambda r: len(r.messages) >= start_of_day, 5.0)
    venue.withhold_itch({30, 31, 55})
    with connect(venue) as c:
        for i in range(60):
            c.enter(f"M{i}", "S", 100, "CHIP", 9000 + i)
        read_until_quiet(c)
    want = venue.publisher.next_sequence - 1
    server = (venue.ports.host, venue.ports.rerequest)
    receiver.run(server, lambda r: len(r.messages) >= want, 10.0)
    assert venue.publisher.packets_dropped >= 1 and venue.publisher.requests_served >= 1
    for withheld in (30, 31, 55):
        assert any(g.expected <= withheld < g.received for g in receiver.gaps), receiver.gaps
    adds = [x for x in receiver.decoded() if isinstance(x, itch.AddOrder)]
    assert [a.price for a in adds] == [9000 + i for i in range(60)]
    assert receiver.messages == venue.publisher.retained(1, len(receiver.messages))


def test_rerequest_for_another_session_or_garbage_is_ignored(make_venue, receiver):
    venue = make_venue()
    server = (venue.ports.host, venue.ports.rerequest)
    receiver.sock.sendto(b"garbage", server)
    receiver.sock.sendto(moldudp64.encode_request(moldudp64.RequestPacket("OTHER", 1, 5)), server)
    receiver.sock.sendto(moldudp64.encode_request(moldudp64.RequestPacket("TEST000001", 1, 3)),
                         server)
    from_one = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        data = receiver.receive(0.1)
        packet = moldudp64.decode(data) if data is not None else None
        if isinstance(packet, moldudp64.Packet) and packet.sequence == 1:
            from_one.append(packet)
    # the live start-of-day packet, and one answer of exactly 3 messages to the valid request
    assert sorted(len(p.messages) for p in from_one)[0] == 3 and len(from_one) == 2
    answer = min(from_one, key=lambda p: len(p.messages))
    assert list(answer.messages) == venue.publisher.retained(1, 3)


def test_market_data_heartbeats_when_idle(make_venue, receiver):
    make_venue(heartbeat_interval=0.2)
    heartbeats = 0
    deadline = time.monotonic() + 3
    while heartbeats < 2 and time.monotonic() < deadline:
        data = receiver.receive(0.3)
        if data is not None and data[18:20] == b"\x00\x00":
            heartbeats += 1
    assert heartbeats >= 2


def test_server_heartbeats_and_drops_a_silent_client(make_venue):
    venue = make_venue(heartbeat_interval=0.2, heartbeat_timeout=1.0)
    silent = connect(venue)
    talker = connect(venue, "MM02")
    messages(silent, 1)
    messages(talker, 1)
    assert isinstance(silent.packet(2.0), soupbintcp.ServerHeartbeat)
    started = time.monotonic()
    with pytest.raises(ClientError, match="closed"):
        for _ in range(40):
            silent.packet(3.0)
            talker.send(soupbintcp.ClientHeartbeat())
    assert 0.5 < time.monotonic() - started < 3.0
    talker.send(soupbintcp.ClientHeartbeat())
    talker.enter("ALIVE", "B", 100, "ACME", 10_0000)
    assert isinstance(messages(talker, 1)[0], ouch.Accepted)    # the talker was kept
    assert any("link dead" in e for e in venue.protocol_errors)


@pytest.mark.parametrize("user, password, session, reason", [
    ("MM01", "wrong", "", "A"), ("NOBODY", "x", "", "A"), ("MM01", "mmaudit", "OTHERSESS", "S"),
])
def test_bad_logins_are_rejected(make_venue, user, password, session, reason):
    venue = make_venue()
    with SoupClient(venue.ports.host, venue.ports.ouch) as c:
        c.send(soupbintcp.LoginRequest(user, password, session, 1))
        assert c.packet() == soupbintcp.LoginRejected(reason)
        with pytest.raises(ClientError, match="closed"):
            c.packet(2.0)
    with connect(venue) as ok:
        assert ok.session == "TEST000001"


def test_second_login_of_a_live_user_is_refused(make_venue):
    venue = make_venue()
    with connect(venue) as first:
        with pytest.raises(ClientError, match="rejected: S"):
            connect(venue)
        first.enter("STILL", "B", 100, "ACME", 10_0000)
        assert [type(x) for x in messages(first, 2)] == [ouch.SystemEvent, ouch.Accepted]


def test_malformed_orders_get_rejects_and_garbage_drops_only_that_client(make_venue):
    venue = make_venue()
    good = connect(venue, "MM02")
    messages(good, 1)
    with connect(venue) as c:
        messages(c, 1)
        enter = bytearray(ouch.encode(ouch.EnterOrder("BADSIDE", "B", 100, "ACME", 10_0000,
                                                      99999, "", "Y", "P", "N", 0, "N", "R")))
        enter[15] = ord("Q")                                  # side byte: not B/S/T/E
        c.send(soupbintcp.UnsequencedData(bytes(enter)))
        rej = messages(c, 1)[0]
        assert isinstance(rej, ouch.Rejected) and rej.token == "BADSIDE" and rej.reason == "O"
        c.enter("WRONGFIRM", "B", 100, "ACME", 10_0000, firm="XXXX")
        assert messages(c, 1)[0].reason == "L"
        c.enter("NOSTOCK", "B", 100, "ZZZZ", 10_0000)
        assert messages(c, 1)[0].reason == "S"
        c.send(soupbintcp.UnsequencedData(b"Q" + b"x" * 10))   # unknown OUCH type
        assert isinstance(c.packet(), soupbintcp.Debug)
        c.enter("OK", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(c, 1)[0], ouch.Accepted)   # the session carries on
        c.send_raw(b"\x00\x00garbage")                        # length 0: framing garbage
        with pytest.raises(ClientError, match="closed"):
            c.packet(3.0)
    assert any("framing" in e for e in venue.protocol_errors)
    good.enter("G1", "B", 100, "ACME", 10_0000)
    assert isinstance(messages(good, 1)[0], ouch.Accepted)
    with SoupClient(venue.ports.host, venue.ports.ouch) as early:   # orders before login
        early.send(soupbintcp.UnsequencedData(b"X" + b"T" * 14 + b"\0\0\0\0"))
        with pytest.raises(ClientError, match="closed"):
            early.packet(3.0)
    good.close()


def test_stop_ends_the_session_everywhere(make_venue, receiver):
    venue = make_venue()
    with connect(venue) as c:
        messages(c, 1)
        c.enter("REST", "B", 100, "ACME", 10_0000)
        messages(c, 1)
        venue.stop()
        canceled, end_of_day = messages(c, 2)
        # a day order expires at end of session: OUCH 4.2 reason 'T' (timeout), which reports
        # map to an expiry (RTS 24 EXPI), not 'Z', a cancel by the venue's operations
        assert canceled.reason == "T" and end_of_day.event_code == "E"
        assert isinstance(c.packet(), soupbintcp.EndOfSession)
    receiver.run(None, lambda r: r.ended, 5.0)
    codes = [x.event_code for x in receiver.decoded() if isinstance(x, itch.SystemEvent)]
    assert codes == list("OSQMEC")
    with pytest.raises(OSError):
        socket.create_connection((venue.ports.host, venue.ports.ouch), timeout=1)


def test_background_flow_runs_and_stops_by_itself(make_venue, receiver):
    venue = make_venue(background_flow=True, duration=1.5)
    assert venue.wait(10.0) and venue.stop_reason == "duration"
    receiver.run(None, lambda r: r.ended, 5.0)
    decoded = receiver.decoded()
    assert sum(isinstance(x, itch.OrderExecuted) for x in decoded) > 0
    assert {x.stock for x in decoded if isinstance(x, itch.AddOrder)} >= {"ACME", "BOLT", "ACME1C"}


def test_max_messages_limit_stops_the_venue(make_venue):
    venue = make_venue(background_flow=True, max_messages=150)
    assert venue.wait(10.0) and venue.stop_reason == "max_messages"
    assert 150 <= venue.itch_messages < 150 + 5000


def test_venue_sigkilled_and_restarted_continues_the_session_and_cancels_lost_orders(tmp_path):
    logs = str(tmp_path / "logs")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-m", "mm_core.venue", "--duration", "60s",
                             "--itch-port", "9", "--log-dir", logs, "--session", "CRASH00001"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        ready = json.loads(proc.stdout.readline())
        with SoupClient(ready["host"], ready["ouch_port"]) as c:
            c.login("MM01", "mmaudit")
            c.enter("LIVE1", "B", 300, "ACME", 10_0000)
            c.enter("LIVE2", "S", 200, "ACME", 900_0000)
            c.order(ouch.CancelOrder("LIVE2", 50))
            before = c.sequenced(4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    config = load_config().with_venue(itch_port=9, log_dir=logs, session="CRASH00001")
    with Venue(config, background_flow=False) as venue:
        with SoupClient(venue.ports.host, venue.ports.ouch) as c:
            c.login("MM01", "mmaudit", 5)
            closed = c.sequenced(2)
            assert {(s.message.token, s.message.decrement_shares, s.message.reason)
                    for s in closed} == {("LIVE1", 300, "Z"), ("LIVE2", 50, "Z")}
            assert [s.sequence for s in closed] == [5, 6]
            c.enter("AFTER", "B", 100, "ACME", 10_0000)
            assert c.sequenced(1)[0].sequence == 7
        assert venue.session_messages("MM01")[:4] == [s.raw for s in before]


def test_an_internal_error_on_one_message_drops_that_client_only(make_venue, monkeypatch):
    venue = make_venue()
    real_enter = venue.engine.enter

    def enter(owner, token, *args):
        if token == "BOOM":
            raise RuntimeError("injected fault")
        return real_enter(owner, token, *args)

    monkeypatch.setattr(venue.engine, "enter", enter)
    with connect(venue) as victim, connect(venue, "MM02") as bystander:
        victim.enter("BOOM", "B", 100, "ACME", 10_0000)
        with pytest.raises(ClientError, match="closed"):
            for _ in range(5):
                victim.packet(3.0)
        bystander.enter("FINE", "B", 100, "ACME", 10_0000)
        assert isinstance(messages(bystander, 2)[1], ouch.Accepted)
    assert venue.running and any("injected fault" in e for e in venue.protocol_errors)


def test_session_logs_are_fsynced_on_the_budget(make_venue):
    venue = make_venue(fsync_interval=0.05)
    with connect(venue) as c:
        c.enter("F1", "B", 100, "ACME", 10_0000)
        messages(c, 2)
        deadline = time.monotonic() + 3
        while venue.logs["MM01"].synced_sequence < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert venue.logs["MM01"].synced_sequence >= 2


def test_unusable_log_dir_or_busy_port_is_a_typed_error(tmp_path, make_venue):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = load_config().with_venue(itch_port=9, log_dir=str(blocker))
    with pytest.raises(SessionLogError, match="cannot create"):
        Venue(config, background_flow=False).start()
    running = make_venue()
    clash = load_config().with_venue(itch_port=9, log_dir=str(tmp_path / "b"),
                                     ouch_port=running.ports.ouch)
    with pytest.raises(VenueStateError, match="cannot bind"):
        Venue(clash, background_flow=False).start()
