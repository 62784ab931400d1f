"""The runner's close-out at a clean end (RunnerSettings.close_out_ns), on the real embedded venue:
the engine pulls every order through a journaled kill by "session", the venue's answers are read
and journaled until none of ours is open, then the order entry logs out; orders the venue leaves
open by the bound are named. A replay of the journal makes the same pulls. The clock is sampled
through the close-out as through the run, so its records carry the clock state at the time."""
import dataclasses
import time

from audit.health import ClockState
from journal import Journal, Reader
from journal.catalogue import RecordType, unpack, unpack_json
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.runner import Runner
from mm_core.runnertypes import RunnerSettings
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from tests.mm_core.test_runner import LockedClock, free_udp_port, journaled_ahead_and_replayed
from tests.mm_core.wire import SYMBOLS, gateway


def close_out_run(tmp_path, seconds: float, close_out_ns: int, deaf_to_cancels: bool = False, clock=None):
    """(report, engine, journal path, the venue's answers, live orders of ours at the venue once
    the run returned); `deaf_to_cancels`: the venue drops every OUCH Cancel Order; `clock`: the
    runner's (LockedClock by default)."""
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=30.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=5.0)
    with Venue(config) as venue:
        if deaf_to_cancels:
            on_ouch = venue._on_ouch
            venue._on_ouch = lambda conn, payload: None if payload[:1] == b"X" else on_ouch(conn, payload)
        settings = RunnerSettings(itch_port=port, ouch_port=venue.ports.ouch,
                                  rerequest_port=venue.ports.rerequest, close_out_ns=close_out_ns)
        engine = Engine(EngineConfig(quoted=("ACME", "BOLT")), SYMBOLS, gateway())
        with Journal(str(tmp_path / "journal")) as journal:
            report = Runner(engine, journal, settings, clock or LockedClock()).run(seconds)
        live = venue.live_orders(settings.username)
        answers = venue.session_messages(settings.username)
    return report, engine, str(tmp_path / "journal"), answers, live


def records(path):
    with Reader(path) as reader:
        return list(reader.records())


def test_a_clean_end_pulls_every_order_reads_the_answers_and_logs_out(tmp_path):
    report, engine, path, answers, live = close_out_run(tmp_path, 3.0, 2_000_000_000)
    assert report.stop_reason == "duration" and not report.venue_lost
    assert report.closing_state == "ACTIVE" and report.closing_cancels > 0
    assert report.orders_open == [] and report.logged_out and not engine.oms.live
    assert live == []                                  # nothing of ours rests at the venue
    recs = records(path)
    kill = [r for r in recs if r.rtype == RecordType.OPERATOR_CMD]
    assert [unpack_json(r.payload) for r in kill] == [
        {"command": "kill", "actor": "session", "reason": "session end", "scope": "all", "scope_id": 0}]
    # the pulls follow the kill, and the venue's answers to them are journaled after them
    after = [r for r in recs if r.seq > kill[0].seq]
    cancels = [r for r in after if r.rtype == RecordType.ORDER_SENT]
    assert len(cancels) == report.closing_cancels
    assert all(chr(int(unpack(RecordType.ORDER_SENT, r.payload)["msg_type"])) == "X" for r in cancels)
    assert any(r.rtype == RecordType.VENUE_MSG for r in after)
    # the venue sent nothing the journal lacks
    venue_seqs = [int(unpack(RecordType.VENUE_MSG, r.payload)["soup_seq"]) for r in recs
                  if r.rtype == RecordType.VENUE_MSG]
    assert max(venue_seqs) == len(answers)
    # replay: the journaled kill makes the same pulls in a fresh engine
    journaled_ahead_and_replayed((report, engine, path, answers, []))


def test_orders_the_venue_leaves_open_at_the_bound_are_named(tmp_path):
    started = time.monotonic()
    report, engine, path, _, live = close_out_run(tmp_path, 2.0, 500_000_000, deaf_to_cancels=True)
    assert report.closing_cancels > 0
    assert report.orders_open and sorted(report.orders_open) == sorted(engine.oms.live)
    assert report.close_out_s >= 0.5 and time.monotonic() - started < 15
    assert report.logged_out                           # the logout still follows the bound
    # what rests at the venue is among them (it names an order by its reference: a replaced one
    # keeps its first token); one may have traded since the logout, as orders left open do
    assert {o.ref for o in live} <= {engine.oms.get(token).venue_ref for token in report.orders_open}


class FailsAt(LockedClock):
    """LOCKED and compliant until `at` (monotonic s), FREERUN and not compliant after."""

    def __init__(self, at: float) -> None:
        self.at = at

    def current(self):
        sample = super().current()
        return sample if time.monotonic() < self.at else dataclasses.replace(sample, state=ClockState.FREERUN)

    def compliant(self, profile, now_mono_ns=None):
        return super().compliant(profile) and time.monotonic() < self.at


def test_the_close_out_journals_clock_samples_and_its_records_carry_the_state_at_the_time(tmp_path):
    # trading ends at +2 s on a LOCKED clock; it goes FREERUN at +2.5 s, while the close-out waits
    # for cancels the venue never answers (3 s)
    started = time.monotonic()
    report, _, path, _, _ = close_out_run(tmp_path, 2.0, 3_000_000_000, deaf_to_cancels=True,
                                          clock=FailsAt(started + 2.5))
    assert report.orders_open and report.close_out_s >= 3.0
    recs = records(path)
    kill = next(r for r in recs if r.rtype == RecordType.OPERATOR_CMD)
    after = [r for r in recs if r.seq > kill.seq]
    samples = [r for r in after if r.rtype == RecordType.CLOCK_SAMPLE]
    assert len(samples) >= 3                           # about one a second of the 3 s, and one at the end
    assert int(samples[-1].clock_state) == ClockState.FREERUN
    assert int(unpack(RecordType.CLOCK_SAMPLE, samples[-1].payload)["compliant_mask"]) == 0
    failed = next(r.seq for r in samples if int(r.clock_state) == ClockState.FREERUN)
    # every record from the first FREERUN sample on carries FREERUN, the close-out's last included
    assert {int(r.clock_state) for r in after if r.seq >= failed} == {int(ClockState.FREERUN)}
    assert after[-1].seq >= failed and len([r for r in after if r.seq > failed]) > 0
