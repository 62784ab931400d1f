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
