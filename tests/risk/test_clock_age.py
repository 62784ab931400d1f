"""How old the clock is: the gateway ages a clock sample from when it was measured, not from when
it reached the gateway (the runner journals a sample up to a monitor period after taking it), and
a clock gone quiet is a fault that pulls the quotes and clears itself with the next compliant
sample whichever event notices it first: a timer, a market data packet or a venue message. No
order meets the stale clock, so nothing latches, and replay (one by one or batched) decides the
same."""
from __future__ import annotations

from mm_core.events import ClockSample, Timer
from mm_core.risk import CheckId, TradingState
from mm_core.types import OrderKind
from tests.mm_core.test_clock_pull import Recorded, heartbeat, kinds, replays_alike
from tests.mm_core.test_modify import Exchange, drive, mine
from tests.mm_core.test_oms_halt import alerts
from tests.mm_core.wire import MS, S, make_engine
from tests.risk.conftest import FAIR, T0, make_gateway, order

AGE = 3000 * MS          # max_clock_age_ms of both limits documents


# ------------------------------------------------------------ the gateway: measured, not received

def test_a_sample_ages_from_its_measurement_time():
    gw = make_gateway(staleness={"max_clock_age_ms": 3000})
    measured, received = T0 + 1000 * MS, T0 + 1900 * MS
    gw.on_clock(True, received, measured)
    late = measured + AGE + 1
    gw.on_market(1, FAIR, FAIR, False, late)
    gw.on_timer(late)
    assert gw.faults == ["clock-stale"] and gw.state is TradingState.ACTIVE
    decision = gw.check(order(), late)
    assert not decision.allowed and decision.check is CheckId.CLOCK_STALE
    assert decision.value == AGE + 1


def test_a_sample_already_stale_when_it_arrives_does_not_clear_the_stale_fault():
    gw = make_gateway(staleness={"max_clock_age_ms": 3000})
    gw.on_timer(T0 + AGE + 1)
    assert gw.faults == ["clock-stale"]
    # measured after the last one, but older than max_clock_age by the time it is told
    gw.on_clock(True, T0 + 2 * AGE, T0 + AGE - 1)
    assert gw.faults == ["clock-stale"] and gw.clock_fault == "clock-stale"
    gw.on_clock(True, T0 + 2 * AGE, T0 + 2 * AGE - 5 * MS)
    assert gw.faults == [] and gw.clock_fault == ""


def test_an_older_sample_told_late_does_not_make_the_clock_look_older():
    gw = make_gateway(staleness={"max_clock_age_ms": 3000})
    gw.on_clock(True, T0 + 2000 * MS, T0 + 2000 * MS)
    gw.on_clock(True, T0 + 2100 * MS, T0 + 1000 * MS)     # out of order: the newer one stands
    gw.on_timer(T0 + 2000 * MS + AGE)
    assert gw.faults == []


def test_a_sample_stamped_after_now_counts_from_now():
    gw = make_gateway(staleness={"max_clock_age_ms": 3000})
    gw.on_clock(True, T0 + 1000 * MS, T0 + 9000 * MS)      # fail closed: no credit for the future
    gw.on_timer(T0 + 1000 * MS + AGE + 1)
    assert gw.faults == ["clock-stale"]


# ------------------------------------------------------------ the engine: the sample's own time

def _quoting():
    engine, venue, now = make_engine(), Exchange(), 2 * S
    rec = Recorded(engine)
    drive(rec, venue, venue.others("B", 500, 999_900, now) + venue.others("S", 500, 1_000_100, now)
          + [ClockSample(now, True)], now)
    assert len(mine(venue, "B")) == len(mine(venue, "S")) == 1
    return engine, venue, rec, now


def test_the_engine_ages_a_late_journaled_sample_from_its_measurement():
    engine, venue, rec, now = _quoting()
    # the monitor measured at `taken`; the runner journaled it 900 ms later, after a timer
    taken = now + 1000 * MS
    drive(rec, venue, [heartbeat(venue, taken + 900 * MS), Timer(taken + 900 * MS),
                       ClockSample(taken, True)], taken + 900 * MS)
    for at in (taken + 1900 * MS, taken + 2900 * MS):
        assert not kinds(drive(rec, venue, [heartbeat(venue, at), Timer(at)], at))
    late = taken + AGE + 1
    acts = drive(rec, venue, [heartbeat(venue, late), Timer(late)], late)
    assert kinds(acts) == [OrderKind.CANCEL, OrderKind.CANCEL]
    assert "clock-stale" in alerts(acts)["clock-fault"]
    assert engine.risk.state is TradingState.ACTIVE
    replays_alike(engine, rec)


# ------------------------------------------------------------ staleness: whoever notices it first

def _outcome(engine, venue, acts) -> tuple:
    return (kinds(acts), "clock-stale" in alerts(acts).get("clock-fault", ""), engine.risk.state,
            engine.risk.latch_reasons, engine.risk.faults, len(mine(venue, "B")), len(mine(venue, "S")))


def test_a_packet_after_the_clock_went_stale_pulls_the_quotes_without_latching():
    """Before: the packet's requote presented an order to a gateway whose clock had aged past
    max_clock_age, and the check latched HALTED on clock-stale (only an operator re-opens);
    had the timer come first, the quotes were pulled and nothing latched."""
    engine, venue, rec, now = _quoting()
    late = now + AGE + 500 * MS
    acts = drive(rec, venue, venue.others("B", 300, 1_000_000, late), late)
    assert _outcome(engine, venue, acts) == (
        [OrderKind.CANCEL, OrderKind.CANCEL], True, TradingState.ACTIVE, [], ["clock-stale"], 0, 0)
    # the same inputs with a timer first: the same outcome
    timer_first, venue2, rec2, _ = _quoting()
    first = drive(rec2, venue2, [Timer(late)], late)
    then = drive(rec2, venue2, venue2.others("B", 300, 1_000_000, late), late)
    assert _outcome(timer_first, venue2, first + then) == _outcome(engine, venue, acts)
    # the next compliant sample clears the fault and quoting resumes by itself
    back = late + 100 * MS
    acts = drive(rec, venue, [ClockSample(back, True)], back)
    assert "clock-recovered" in alerts(acts) and kinds(acts) == [OrderKind.ENTER, OrderKind.ENTER]
    assert engine.risk.state is TradingState.ACTIVE and engine.risk.faults == []
    replays_alike(engine, rec)


def test_a_venue_message_after_the_clock_went_stale_pulls_first():
    engine, venue, rec, now = _quoting()
    late = now + AGE + 1
    # our bid trades: the fill (a venue message) would requote and hedge at a stale clock
    hit = venue.others("S", 100, 999_900, late)
    acts = drive(rec, venue, hit, late)
    assert "clock-stale" in alerts(acts)["clock-fault"]
    assert OrderKind.ENTER not in kinds(acts) and OrderKind.REPLACE not in kinds(acts)
    assert engine.risk.state is TradingState.ACTIVE and engine.risk.latch_reasons == []
    replays_alike(engine, rec)


def test_a_run_of_packets_crossing_the_clock_deadline_replays_as_one_by_one():
    """Replay's batch path takes consecutive packets in one C call while they are quiet: it must
    stop at the first packet past the clock's deadline, where the one-by-one path pulls."""
    engine, venue, rec, now = _quoting()
    at = [now + AGE - 200 * MS, now + AGE - 100 * MS, now + AGE + 1, now + AGE + 100 * MS]
    for t in at:
        drive(rec, venue, [heartbeat(venue, t)], t)
    acts = drive(rec, venue, venue.others("B", 300, 1_000_000, at[-1]), at[-1])
    assert engine.risk.state is TradingState.ACTIVE and engine.risk.faults == ["clock-stale"]
    assert not mine(venue, "B") and not mine(venue, "S") and not kinds(acts)
    replays_alike(engine, rec)


def test_a_run_whose_stamps_step_back_after_the_deadline_replays_as_one_by_one():
    """Engine time is the latest stamp seen: a packet past the deadline counts even when the
    packets after it are stamped earlier (a system clock stepped back), in the batch path too."""
    engine, venue, rec, now = _quoting()
    at = [now + AGE - 200 * MS, now + AGE + 1, now + AGE - 100 * MS, now + AGE - 50 * MS]
    for t in at:
        drive(rec, venue, [heartbeat(venue, t)], t)
    assert engine.risk.faults == ["clock-stale"] and engine.risk.state is TradingState.ACTIVE
    assert not mine(venue, "B") and not mine(venue, "S")
    replays_alike(engine, rec)


def test_a_gateway_restored_from_before_the_clock_deadline_finds_it_at_the_next_event():
    engine, venue, rec, now = _quoting()
    del engine.risk.__dict__["clock_stale_at"]      # as unpickled from an older snapshot
    late = now + AGE + 1
    acts = drive(rec, venue, [heartbeat(venue, late)], late)
    assert "clock-stale" in alerts(acts)["clock-fault"] and engine.risk.faults == ["clock-stale"]
