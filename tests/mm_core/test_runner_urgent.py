"""Orders through the journal's one-call append-then-send (Runner._orders_fast) leave the same
journal, the same bytes on the wire and the same report as the Python path they stand in for:
the guard's pulls (Runner._act_urgent) and a decision's other orders (Runner._act: a requote's
replaces, new orders), when all goes well, when the journal refuses (closed; full, with room for
only some of the pulls, or none for new orders, which may not use the reserve) and when the
socket refuses the send. Each case runs twice, the fast path off and on, from the same entry
point."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from types import SimpleNamespace

import pytest

from journal import DiskFull, Journal, Reader
from journal.catalogue import PAYLOAD_DTYPES, RecordType, TsSource, unpack
from mm_core.events import SendOrder
from mm_core.fastbook import ffi as _ffi
from mm_core.orderwire import OrderWire
from mm_core.types import OrderKind, Purpose, Side, make_intent
from tests.journal.conftest import small_tmpfs  # noqa: F401  (the 1 MiB tmpfs fixture)
from tests.mm_core.test_runner_txkeys import connected_runner

WIRE = OrderWire("FIRM")
_ORDER_SENT_SIZE = PAYLOAD_DTYPES[RecordType.ORDER_SENT].itemsize


def pull(token: str, symbol_id: int = 1) -> SendOrder:
    """A guard's pull as the engine builds it: the pre-encoded cancel of a resting quote."""
    intent = make_intent(OrderKind.CANCEL, token, symbol_id, Side.SELL, 101_0000, 0, (1, 2, 3, 4),
                         purpose=Purpose.GUARD_CANCEL)
    return SendOrder(intent, WIRE.cancel(token, 0), SimpleNamespace(limits_version=3), 1)


PULLS = (pull("Q1"), pull("Q2", 2))


def replace(orig: str, token: str, price: int) -> SendOrder:
    """A requote's replace of a resting quote, as the engine builds it."""
    intent = make_intent(OrderKind.REPLACE, token, 1, Side.BUY, price, 100, (1, 2, 3, 4), orig_token=orig)
    return SendOrder(intent, WIRE.replace(orig, token, 100, price, 0), SimpleNamespace(limits_version=3), 1)


REQUOTE = (replace("Q1", "Q3", 100_0100), replace("Q2", "Q4", 100_0300))


def act_urgent(journal, fast: bool, before=None, actions=PULLS, urgent: bool = True):
    """A connected runner on `journal` given `actions` at its early sink (`urgent`) or as an
    event's decision (Runner._act), fast path on or off (`before(runner)` runs first); (runner,
    what the journal's C calls returned, wire bytes read)."""
    runner, peer = connected_runner(journal)
    calls = []
    if fast:
        c_call = runner._append_send
        runner._append_send = lambda *args: calls.append(c_call(*args)) or calls[-1]
    else:
        runner._append_send = None
    if before is not None:
        before(runner)
    if urgent:
        runner._act_urgent(list(actions))
    else:
        runner._act(list(actions), time.clock_gettime_ns(time.CLOCK_REALTIME))
    time.sleep(0.05)
    runner._drain_tx(time.monotonic_ns() + 10**9)
    peer.settimeout(0.2)
    wire = b""
    try:
        while chunk := peer.recv(4096):
            wire += chunk
    except (socket.timeout, ConnectionError):
        pass
    peer.close()
    runner.close()
    return runner, calls, wire


def journaled(path) -> list[tuple]:
    """Every record's (type, source, clock state, payload) with what may differ between two runs
    taken out: TX stamp times, alert times."""
    out = []
    with Reader(str(path)) as reader:
        for r in reader.records():
            payload = bytes(r.payload)
            if r.rtype == RecordType.TX_TS:
                tx = unpack(RecordType.TX_TS, payload)
                payload = (int(tx["order_seq"]), int(tx["tskey"]), int(tx["status"]), int(tx["source"]))
            elif r.rtype == RecordType.METRICS:
                payload = {k: v for k, v in json.loads(payload).items() if k != "now_ns"}
            out.append((r.rtype, r.ts_source if r.rtype != RecordType.TX_TS else None, r.clock_state, payload))
    return out


def same_outcome(slow, fast) -> None:
    (r1, _, wire1), (r2, _, wire2) = slow, fast
    assert wire1 == wire2
    assert dataclasses.asdict(r1.report) == dataclasses.asdict(r2.report)
    for name in ("tcp_bytes", "journal_ok", "_unreported", "_unsent", "_space_lost", "_fatal", "_cause",
                 "_oe_end", "_reserve_seqs"):
        assert getattr(r1, name) == getattr(r2, name), name


def test_the_fast_path_journals_and_sends_what_act_does(tmp_path):
    runs = {}
    for fast in (False, True):
        with Journal(tmp_path / f"j{fast}") as journal:
            runs[fast] = act_urgent(journal, fast)
    assert runs[True][1] == [((1, 2), 0, 0)]                # one C call: both appended, sent
    same_outcome(runs[False], runs[True])
    assert runs[True][2] == PULLS[0].packet + PULLS[1].packet
    slow, fast = journaled(tmp_path / "jFalse"), journaled(tmp_path / "jTrue")
    assert slow == fast
    sent = [p for t, _, _, p in fast if t == RecordType.ORDER_SENT]
    key = len(runs[True][2]) - 1                            # both pulls' one send
    assert [int(unpack(RecordType.ORDER_SENT, p)["tskey"]) for p in sent] == [key, key]
    assert [(t, src) for t, src, _, _ in fast if t == RecordType.ORDER_SENT] == [
        (RecordType.ORDER_SENT, TsSource.USER)] * 2
    assert [p[1:3] for t, _, _, p in fast if t == RecordType.TX_TS] == [(key, 0)] * 2   # stamped
    assert runs[True][0].report.orders_sent == 2 and runs[True][0].report.tx_stamped == 2


def test_a_closed_journal_sends_nothing_and_is_reported_as_act_reports_it(tmp_path):
    runs = {}
    for fast in (False, True):
        journal = Journal(tmp_path / f"j{fast}")
        journal.close()
        runs[fast] = act_urgent(journal, fast)
    assert runs[True][1] == [((), -8, 0)]                   # one C call: MMJ_E_CLOSED, nothing sent
    same_outcome(runs[False], runs[True])
    runner = runs[True][0]
    assert runs[True][2] == b"" and runner.report.orders_sent == 0
    assert runner.report.cancels_withheld == 2 and runner._fatal and runner._unreported
    assert "JournalClosed" in runner._cause


def fill_but(journal, room: int) -> int:
    """On a full disk: ordinary appends until refused, then reserve appends until only `room`
    ORDER_SENT records fit in the reserve (`room` < 0: until refused). How many it took."""
    payload = bytes(_ORDER_SENT_SIZE)
    with pytest.raises(DiskFull):
        while True:
            journal.append(RecordType.ORDER_SENT, payload)
    taken = 0
    while room < 0 or taken < room:
        try:
            journal.append(RecordType.ORDER_SENT, payload, reserve=True)
        except DiskFull:
            break
        taken += 1
    return taken


def test_a_full_journal_with_room_for_one_pull_behaves_as_act(small_tmpfs):
    segment = 64 * 1024
    journals = {name: Journal(small_tmpfs / name, segment_size=segment) for name in ("measure", "slow", "fast")}
    free = os.statvfs(small_tmpfs)
    (small_tmpfs / "filler").write_bytes(bytes(free.f_bavail * free.f_frsize))
    reserve = fill_but(journals["measure"], -1)             # ORDER_SENT records the reserve holds
    assert reserve > 1
    runs = {}
    for fast in (False, True):
        journal = journals["fast" if fast else "slow"]
        fill_but(journal, reserve - 1)                       # room for one more: the first pull
        runs[fast] = act_urgent(journal, fast)
        journal.close()
    journals["measure"].close()
    same_outcome(runs[False], runs[True])
    (seqs, status, _), = runs[True][1]                      # one C call: the first taken, the second refused
    assert len(seqs) == 1 and status == -9                 # MMJ_E_DISK_FULL
    runner, _, wire = runs[True]
    assert runner.report.cancels_withheld == 1 and runner.report.orders_sent == 1
    assert wire[:len(PULLS[0].packet)] == PULLS[0].packet and len(wire) == len(PULLS[0].packet) * 2
    assert wire[len(PULLS[0].packet) + 2:][:1] == b"+"       # the refused one's Debug stand-in
    assert journaled(small_tmpfs / "slow") == journaled(small_tmpfs / "fast")


def test_a_refused_send_journals_send_failed_as_act_does(tmp_path):
    runs = {}
    for fast in (False, True):
        with Journal(tmp_path / f"j{fast}") as journal:
            runs[fast] = act_urgent(journal, fast, before=lambda r: r._oe.sock.shutdown(socket.SHUT_WR))
    assert runs[True][1] == [((1, 2), 0, 32)]               # appended, send refused: EPIPE
    same_outcome(runs[False], runs[True])
    runner = runs[True][0]
    assert runner.report.sends_failed == 2 and runner.report.orders_sent == 0 and runner.tcp_bytes == 0
    assert runner._oe_end.startswith("order entry send failed: BrokenPipeError EPIPE")
    records = journaled(tmp_path / "jTrue")
    assert records == journaled(tmp_path / "jFalse")
    assert [p[2] for t, _, _, p in records if t == RecordType.TX_TS] == [3, 3]     # SEND_FAILED


def test_a_decisions_replaces_take_the_fast_path_and_journal_and_send_what_act_did(tmp_path):
    runs = {}
    for fast in (False, True):
        with Journal(tmp_path / f"j{fast}") as journal:
            runs[fast] = act_urgent(journal, fast, actions=REQUOTE, urgent=False)
    assert runs[True][1] == [((1, 2), 0, 0)]                # one C call: both appended, sent
    same_outcome(runs[False], runs[True])
    assert runs[True][2] == REQUOTE[0].packet + REQUOTE[1].packet
    slow, fast = journaled(tmp_path / "jFalse"), journaled(tmp_path / "jTrue")
    assert slow == fast
    key = len(runs[True][2]) - 1
    sent = [unpack(RecordType.ORDER_SENT, p) for t, _, _, p in fast if t == RecordType.ORDER_SENT]
    assert [(bytes(u["token"]).rstrip(b"\0"), int(u["tskey"])) for u in sent] == [(b"Q3", key), (b"Q4", key)]
    assert [p[1:3] for t, _, _, p in fast if t == RecordType.TX_TS] == [(key, 0)] * 2   # stamped
    runner = runs[True][0]
    assert runner.report.orders_sent == 2 and runner.report.tx_stamped == 2
    assert not runner._reserve_seqs and runner.report.reserve_appends == 0     # not cancels: no reserve


def test_new_orders_on_a_full_disk_stay_out_of_the_reserve_as_act_keeps_them(small_tmpfs):
    """Ordinary space gone, the reserve with room: the fast path refuses the replaces as the
    Python path does (only cancels may use the reserve), sends nothing and reports the same."""
    segment = 64 * 1024
    journals = {name: Journal(small_tmpfs / name, segment_size=segment) for name in ("slow", "fast")}
    free = os.statvfs(small_tmpfs)
    (small_tmpfs / "filler").write_bytes(bytes(free.f_bavail * free.f_frsize))
    runs = {}
    for fast in (False, True):
        journal = journals["fast" if fast else "slow"]
        fill_but(journal, 4)                                  # room in the reserve for 4 records
        runs[fast] = act_urgent(journal, fast, actions=REQUOTE, urgent=False)
        journal.close()
    same_outcome(runs[False], runs[True])
    (seqs, status, _), = runs[True][1]                      # one C call: the first refused
    assert seqs == () and status == -9                     # MMJ_E_DISK_FULL
    runner, _, wire = runs[True]
    assert wire == b"" and runner.report.orders_sent == 0 and not runner._reserve_seqs
    assert runner._space_lost and not runner.journal_ok and runner.report.journal_failures == 2   # told
    records = journaled(small_tmpfs / "fast")
    assert records == journaled(small_tmpfs / "slow")
    tokens = {bytes(unpack(RecordType.ORDER_SENT, p)["token"]).rstrip(b"\0") for t, _, _, p in records
              if t == RecordType.ORDER_SENT}
    assert tokens == {b""}                                 # the filling's records only: neither in the reserve


def test_a_cancel_mixed_with_other_orders_takes_the_python_path(tmp_path):
    with Journal(tmp_path / "j") as journal:
        calls = act_urgent(journal, True, actions=(REQUOTE[0], PULLS[0]), urgent=False)[1]
    assert calls == []                                      # the reserve flag differs: not one C call
    assert [t for t, _, _, _ in journaled(tmp_path / "j")] == [RecordType.ORDER_SENT] * 2 + [RecordType.TX_TS] * 2


def test_unhealthy_journal_or_other_actions_take_the_python_path(tmp_path):
    with Journal(tmp_path / "j") as journal:
        runner, peer = connected_runner(journal)
        runner.journal_ok = False
        assert not runner._orders_fast(list(PULLS))
        runner.journal_ok = True
        enter = SendOrder(PULLS[0].intent, WIRE.enter("E1", "B", 100, "ACME", 100_0000, 0), None, 1)
        assert not runner._orders_fast([PULLS[0], enter])
        assert journal.next_seq == 1 and runner.tcp_bytes == 0      # nothing was done
        peer.close()
        runner.close()


def test_upkeep_prepares_the_engine_and_journals_and_sends_nothing(tmp_path):
    with Journal(tmp_path / "j") as journal:
        runner, peer = connected_runner(journal)
        prepared = []
        runner.engine.prepare = lambda: prepared.append(1)
        before = (dataclasses.asdict(runner.report), runner.tcp_bytes, set(runner._reserve_seqs))
        runner.upkeep()
        assert prepared == [1]
        assert journal.next_seq == 1 and journal.append_then_send.send_entered_ns == 0
        assert (dataclasses.asdict(runner.report), runner.tcp_bytes, set(runner._reserve_seqs)) == before
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(10)
        peer.close()
        runner.close()


def journal_session(path, armed: bool = False, frame: bool = True, refused: list | None = None) -> tuple:
    """The seeded session's inputs through a connected runner (journaled, then fed; the guard's
    pulls through the journal's append-then-send; `armed`: the runner's upkeep after every input,
    so the pulls go out from its plan; `frame` False: never from the runner's frame read, only
    from inside on_event): (the live engine, the C calls' returns, how the armed pulls went out
    ("frame": the frame read's C call took our fill, "lane": the engine's C lane sent pulls,
    "armed": the Python armed sink did), the journal's records). `refused` (a list, with `armed`):
    the first fill the frame read's C call takes meets a journal that refuses it; what the runner
    did then is appended: (its return, tcp_bytes, the engine's venue_seq and journal_ok, before
    and after)."""
    from journal.catalogue import pack
    from mm_core.config import EngineConfig
    from mm_core.engine import Engine
    from mm_core.events import ClockSample, JournalHealth, MarketData, Reconciled, Timer, VenueMessage
    from tests.mm_core.wire import S, SYMBOLS, gateway, simulate

    events, _, _ = simulate(1, 20_000)
    with Journal(path) as journal:
        runner, peer = connected_runner(journal)
        engine = runner.engine = Engine(EngineConfig(), SYMBOLS, gateway())
        engine.urgent = runner._act_urgent
        fired = []
        if armed:               # the runner's sinks, each firing noted

            def fire_armed(orders, fire=runner._fire_armed):
                booked = fire(orders)
                if booked is not None:
                    fired.append("armed")
                return booked

            def fill_first(*args, first=runner._fill_first):
                if refused is not None and not refused:
                    return refuse_first(*args, first=first)
                fed = first(*args) if frame else None
                if fed is not None:
                    fired.append("frame")
                return fed

            def refuse_first(*args, first):
                sink = runner._armed.sink
                writer, sink.writer = sink.writer, closed_writer
                seen = (runner.tcp_bytes, engine.venue_seq, runner.journal_ok)
                fed = first(*args)
                sink.writer = writer
                if fed is not None:
                    refused.append((fed, seen, (runner.tcp_bytes, engine.venue_seq, runner.journal_ok)))
                return fed
            closed = Journal(path.parent / f"{path.name}-closed")     # its writer answers "closed"
            closed_writer = _ffi.cast("void *", closed.c_reserve_append()[1])
            closed.close()
            engine.urgent_armed = fire_armed
            engine.urgent_lane = runner._lane_ready
            engine.urgent_lane_booked = lambda pulls: fired.append("lane") or runner._lane_booked(pulls)
            runner._fill_first = fill_first
        calls = []
        c_call = runner._append_send
        runner._append_send = lambda *args: calls.append(c_call(*args)) or calls[-1]
        peer.setblocking(False)

        def clock(now: int) -> None:             # a sample compliant for every profile
            runner._input(RecordType.CLOCK_SAMPLE, pack(RecordType.CLOCK_SAMPLE, compliant_mask=0xFF), now,
                          TsSource.USER, ClockSample(now, True))
        runner._act(engine.on_event(JournalHealth(S, True)), S)
        runner._act(engine.on_event(Reconciled(S, True)), S)
        clock(S)
        runner._input(RecordType.TIMER, pack(RecordType.TIMER, timer_id=0, now_ns=S), S, TsSource.USER, Timer(S))
        for ev in events:
            if type(ev) is MarketData:
                runner._input(RecordType.MD_PACKET, ev.packet, ev.now_ns, ev.ts_source, ev)
            elif type(ev) is VenueMessage:
                assert runner._on_oe_bytes(ev.packet, ev.now_ns, TsSource.USER)
            elif type(ev) is Timer:
                runner._input(RecordType.TIMER, pack(RecordType.TIMER, timer_id=ev.timer_id, now_ns=ev.now_ns),
                              ev.now_ns, TsSource.USER, ev)
            elif type(ev) is ClockSample:
                clock(ev.now_ns)
            if armed:
                runner.upkeep()
            try:
                while peer.recv(1 << 16):
                    pass
            except BlockingIOError:
                pass
        runner._drain_tx(time.monotonic_ns() + 10**9)
        peer.close()
        runner.close()
    with Reader(str(path)) as reader:
        records = list(reader.records())
    return engine, calls, fired, records


def _replays_exactly(engine, records) -> None:
    """A fresh engine fed the journal's inputs sends the journal's orders, byte for byte, and
    ends in the live engine's state."""
    from journal.catalogue import raw_bytes
    from mm_core.config import EngineConfig
    from mm_core.engine import Engine
    from mm_core.runnerrecords import engine_events
    from tests.mm_core.wire import SYMBOLS, gateway

    fresh = Engine(EngineConfig(), SYMBOLS, gateway())
    replayed = [a.packet for e in engine_events(records) for a in fresh.on_event(e) if isinstance(a, SendOrder)]
    assert replayed == [raw_bytes(unpack(RecordType.ORDER_SENT, r.payload)) for r in records
                        if r.rtype == RecordType.ORDER_SENT]
    assert fresh.state_hash() == engine.state_hash()


def test_a_session_journaled_through_the_fast_path_replays_exactly(tmp_path):
    """The seeded session through the runner, then the journal replayed through a fresh engine:
    the same orders, byte for byte, and the same state."""
    engine, calls, _, records = journal_session(tmp_path / "j")
    assert calls and all(status == 0 and err == 0 for _, status, err in calls), "no pull took the fast path"
    _replays_exactly(engine, records)


@pytest.mark.parametrize("frame", [True, False], ids=["frame-read", "in-on_event"])
def test_pulls_sent_from_the_armed_plan_journal_what_the_built_pulls_would(tmp_path, frame):
    """The same session with the runner's upkeep between inputs: the guard's pulls go out from
    the plan upkeep made, before the engine builds them: our own fills from the runner's frame
    read (one C call journals the frame, fires the lane and sends), or (`frame` off) from the
    engine's C lane inside on_event. Every record the journal holds (VENUE_MSG and ORDER_SENT
    payloads included, stamp keys and all) is the one the unarmed session wrote, nothing is
    reported as a mismatch, and the journal replays exactly."""
    engine, calls, fired, records = journal_session(tmp_path / "armed", armed=True, frame=frame)
    assert "lane" in fired, "no pull went out from the C lane"
    assert ("frame" in fired) == frame, "the frame read's C call did not take our fills"
    assert all(status == 0 and err == 0 for _, status, err in calls)
    plain = journal_session(tmp_path / "plain")[3]

    def content(recs) -> list:
        # an order's stamp is the clock's at its append; an input's is the one it was read with
        return [(r.seq, r.rtype, r.payload, r.ts_source, r.clock_state) +
                ((r.ts_ns,) if r.rtype != RecordType.ORDER_SENT else ()) for r in recs
                if r.rtype in (RecordType.ORDER_SENT, RecordType.MD_PACKET, RecordType.VENUE_MSG)]
    assert content(records) == content(plain)
    alerts = [bytes(r.payload) for r in records if r.rtype == RecordType.METRICS]
    assert not [a for a in alerts if b"armed-pull-mismatch" in a]
    _replays_exactly(engine, records)


def test_an_own_fill_the_journal_refuses_at_the_frame_read_is_never_heard(tmp_path):
    """The frame read's C call journals our fill before anything acts on it: when the journal
    refuses it, nothing else is done (the guard never hears it, nothing is sent, the engine is
    not fed it), the refusal is counted and the engine told the journal is unhealthy, as when
    _input's append is refused; the journal still replays exactly."""
    refused: list = []
    engine, _, _, records = journal_session(tmp_path / "j", armed=True, refused=refused)
    assert refused, "no fill took the frame read's C call"
    fed, (_, seq, ok), (_, seq_after, ok_after) = refused[0]
    assert fed is False and ok and not ok_after
    assert seq_after == seq              # the engine never heard the fill (the latch's pulls went out)
    assert sum(r.rtype == RecordType.VENUE_MSG for r in records) == engine.venue_seq
    _replays_exactly(engine, records)


def test_a_pull_built_unlike_its_journaled_plan_fails_closed(tmp_path):
    """Should a built pull ever differ from the ORDER_SENT the armed path journaled and sent, the
    journal no longer says what went out: the runner treats it as a journal failure (alert, and
    the engine told the journal is unhealthy once the event is done), it does not trade on."""
    from mm_core.runnerrecords import order_sent_payload
    with Journal(tmp_path / "j") as journal:
        runner, peer = connected_runner(journal)
        action = PULLS[0]
        key = (runner.tcp_bytes + len(action.packet) - 1) & 0xFFFFFFFF
        planned = bytearray(order_sent_payload(action, key))
        planned[0] ^= 1                                   # not what the engine built
        seq = journal.append(int(RecordType.ORDER_SENT), bytes(planned), 0, int(TsSource.USER), reserve=True)
        peer.setblocking(False)
        runner._acting += 1                               # inside the event, as the armed sink books
        runner._armed_booked([action], key, [bytes(planned)], action.packet, (seq,), 0, 0)
        assert runner._unreported and runner._fatal
        runner._acting -= 1
        peer.close()
        runner.close()
    with Reader(str(tmp_path / "j")) as reader:
        alerts = [json.loads(r.payload) for r in reader.records() if r.rtype == RecordType.METRICS]
    assert any(a.get("alert") == "armed-pull-mismatch" for a in alerts)


def test_the_upkeep_probe_fill_is_never_the_lanes(tmp_path):
    """The probe fill upkeep runs through the frame read never reaches the journal: flane_fire_input
    refuses it (0 shares) even when an armed quote bore its token, and lets a real fill of that
    quote through to its append (here refused by a closed journal)."""
    from mm_core.fastbook import lib
    from mm_core.runner_orders import _PROBE_FILL
    closed = Journal(tmp_path / "closed")
    fn, writer = closed.c_reserve_append()
    closed.close()
    armed, sink = _ffi.new("flane_armed *"), _ffi.new("flane_sink *")
    armed.n, armed.acked[0], armed.legal_full[0], armed.legal_partial[0], armed.leaves[0] = 1, 1, 1, 1, 100
    sink.append, sink.writer = _ffi.cast("flane_append_fn", fn), _ffi.cast("void *", writer)
    sink.input_rtype, sink.input_size = int(RecordType.VENUE_MSG), PAYLOAD_DTYPES[RecordType.VENUE_MSG].itemsize
    sink.input_raw_at = PAYLOAD_DTYPES[RecordType.VENUE_MSG].fields["raw"][1]
    _ffi.memmove(armed.token, _PROBE_FILL[12:26], 14)           # the probe's own token, armed
    fire = lib.flane_fire_input
    assert fire(_ffi.NULL, armed, sink, _PROBE_FILL, 43, 0, _ffi.NULL, 1, 0, 0) == lib.FLANE_NOT
    fill = _PROBE_FILL[:26] + (100).to_bytes(4, "big") + _PROBE_FILL[30:]
    assert fire(_ffi.NULL, armed, sink, fill, 43, 0, _ffi.NULL, 1, 0, 0) == lib.FLANE_REFUSED
    assert sink.input_seq < 0


def test_upkeep_runs_its_probe_fill_through_the_c_lane_while_quotes_are_armed(tmp_path, monkeypatch):
    """What upkeep's probe is for: the frame read's path all the way to flane_fire_input, so a real
    fill finds that call warm. It gets there with the hooks the runner sets on its engine; with
    them cleared it stops in Engine.lane_first, short of the call (a harness that clears them
    between the fills it times, as the engine bench's guard rows once did, times that call cold)."""
    import mm_core.engine_guard as engine_guard
    from tests.mm_core.wire import make_engine, simulate

    events, _, _ = simulate(1, 2_000)
    real, reached = engine_guard._lane_input_c, {}
    for hooks in ("the runner's", "cleared"):
        with Journal(tmp_path / hooks.replace("'", "")) as journal:
            engine = make_engine()
            runner, peer = connected_runner(journal, engine)
            if hooks == "cleared":
                engine.urgent = engine.urgent_armed = engine.urgent_lane = None
            calls = []
            monkeypatch.setattr(engine_guard, "_lane_input_c", lambda *a: calls.append(1) or real(*a))
            for ev in events:
                engine.on_event(ev)          # its orders go nowhere; a guard trip's pulls go out
                runner.upkeep()
            reached[hooks] = len(calls)
            peer.close()
            runner.close()
    assert reached["the runner's"] > 100 and reached["cleared"] == 0, reached
