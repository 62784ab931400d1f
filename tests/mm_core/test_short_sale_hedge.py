"""Hedges under the Rule 201 price test, and the pulls of long-marked sells: a short hedge sell at
or below the national best bid cannot go, so it clears its hold (our bids quote on) and alerts once
per restriction, not on every timer; the part our position covers goes out marked long, after our
long-marked asks holding that coverage are pulled; a long-marked sell whose cancel is already on
its way (even one outcome-unknown) is not cancelled again. Compiled and reference engines agree."""
import random

import pytest

from mm_core.engine_hedging import HOLD_BOTH
from mm_core.events import ClockSample, Timer
from mm_core.oms import OrderState
from mm_core.types import OrderKind, Purpose, Side
from recovery.reconcile import AdoptPending, apply
from tests.mm_core import test_sig_engine
from tests.mm_core.test_determinism import fingerprint
from tests.mm_core.test_short_sale import alerts, go_long, long_in_bolt, our, quoted, reg_sho, wire_side
from tests.mm_core.test_sig_engine import CONFIGS, Lockstep, drive
from tests.mm_core.wire import ACME, BOLT, CHIP, MS, S, Feed, md, orders, run

PRICE_TEST = "short-sale-price-test"


def timers(engine, venue, feed, now, n, restriction="1"):
    """`n` timers 200 ms apart, each followed by a Reg SHO message (the book moves on): the
    actions of each, and the time after the last."""
    out = []
    for _ in range(n):
        now += 200 * MS
        engine.on_event(ClockSample(now, True))
        acts = run(engine, venue, Timer(now), now)
        acts += run(engine, venue, md(feed.packet(reg_sho(ACME, restriction)), now + MS), now + MS)
        out.append(acts)
    return out, now


def hedges(acts):
    return [o for o in orders(acts) if o.intent.purpose is Purpose.HEDGE]


@pytest.mark.parametrize("compiled", [True, False])
def test_a_short_hedge_the_price_test_refuses_clears_its_hold_and_alerts_once(compiled):
    """Flat in ACME: the whole hedge would be short, at the bid: not sent, and our ACME bid keeps
    quoting (it was pulled for good, the hold stuck at -1, and ~5 alerts a second followed)."""
    engine, venue, feed, now = long_in_bolt(compiled=compiled)
    run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), now), now)
    bid = our(venue, "B")
    rounds, now = timers(engine, venue, feed, now, 40)
    acts = [a for r in rounds for a in r]
    assert not hedges(acts)
    [detail] = alerts(acts, PRICE_TEST)
    assert "short sale of 400 ACME" in detail and "hedging BOLT" in detail and "Rule 201" in detail
    assert engine.hedge_hold[ACME] == 0 and engine.pair_hold[BOLT] == 0
    assert our(venue, "B") == bid        # never pulled
    assert not [o for o in orders(acts) if o.intent.kind is OrderKind.CANCEL and o.intent.token == bid]
    # lifted: the hedge goes, short; its remainder cancelled, a new restriction alerts again, once
    now += MS
    acts = run(engine, venue, md(feed.packet(reg_sho(ACME, "0")), now), now)   # our bid pulled first
    rounds, now = timers(engine, venue, feed, now, 1, "0")
    [hedge] = hedges(acts + rounds[0])
    assert wire_side(hedge) == "T"
    run(engine, venue, venue.cancel_rest(hedge.intent.token, now), now)
    acts = run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), now), now)
    rounds, now = timers(engine, venue, feed, now, 20)
    assert len(alerts(acts + [a for r in rounds for a in r], PRICE_TEST)) == 1
    assert engine.hedge_hold[ACME] == 0


@pytest.mark.parametrize("compiled", [True, False])
def test_the_long_marked_ask_is_pulled_and_the_covered_part_of_the_hedge_goes_long(compiled):
    """Long 200 ACME with a long-marked ask of 200 resting, a hedge of 400 under the restriction:
    the ask is pulled, the hedge waits for the venue's Canceled with both ACME quote sides held,
    then 200 go out marked S at the bid (exempt); the other 200 are not sent, alerted once."""
    engine, venue, feed, now = long_in_bolt("ask-long", compiled=compiled)
    ask = our(venue, "S")
    assert engine.oms.get(ask).mark == "S" and engine.inventory.position[ACME] == 200
    run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), now), now)
    held, acts = [], []
    for _ in range(15):
        rounds, now = timers(engine, venue, feed, now, 1)
        held.append((engine.hedge_hold[ACME], bool(hedges(rounds[0]))))
        acts += rounds[0]
    # the pull, then (its Canceled back) the hedge: both ACME quote sides held in between
    assert (HOLD_BOTH, False) in held and (-1, True) in held
    [hedge] = hedges(acts)
    assert hedge.intent.side is Side.SELL and hedge.intent.qty == 200 and wire_side(hedge) == "S"
    assert hedge.intent.price <= engine._nbb(ACME)
    sent = orders(acts)
    pull = [o for o in sent if o.intent.kind is OrderKind.CANCEL and o.intent.token == ask]
    assert len(pull) == 1 and sent.index(pull[0]) < sent.index(hedge)
    [detail] = alerts(acts, PRICE_TEST)
    assert "short sale of 200 ACME" in detail and "the 200 we own go long" in detail
    # no sell left marked long beyond what we own, whatever fills first
    long_marked = sum(o["qty"] for o in venue.orders.values() if o["stock"] == "ACME" and o["marked"] == "S")
    assert long_marked <= engine.inventory.position[ACME]
    # the IOC fills: nothing left to sell long, the rest is held back, our bids quote again
    run(engine, venue, venue.fill(hedge.intent.token, 200, now), now)
    assert engine.inventory.position[ACME] == 0
    rounds, now = timers(engine, venue, feed, now, 10)
    acts = [a for r in rounds for a in r]
    assert not hedges(acts) and engine.hedge_hold[ACME] == 0
    assert venue.resting("ACME", "B")


def test_a_long_marked_sell_whose_cancel_is_on_its_way_is_not_cancelled_again():
    """Our long-marked ask's cancel timed out (outcome-unknown, the cancel sent): when the position
    no longer covers it, _check_marks sends no second cancel, however often it runs."""
    engine, venue, _, _, _ = quoted()
    now = 3 * S
    go_long(engine, venue, now)
    ask = engine.oms.get(our(venue, "S"))
    assert ask.mark == "S"
    acts = []
    engine._cancel(ask, ask.purpose, acts)          # the pull, never answered
    engine.oms.check_timeouts(now + S, 0)
    assert ask.fsm.state is OrderState.UNKNOWN and ask.cancel_sent
    # a sell we never journaled, adopted by recovery: the position covers the ask no more
    apply(engine, AdoptPending("LOST00000001", ACME, "S", 1_000_300, 100), now + S)
    cancels = []
    for _ in range(2):
        engine._check_marks(ACME, cancels)
    assert not [o for o in orders(cancels) if o.intent.token == ask.token]


class RegShoFeed(Feed):
    """The session's feed with Reg SHO restrictions imposed and lifted now and then (seeded)."""

    rng = random.Random(0)

    def packet(self, *messages) -> bytes:
        if self.rng.random() < 0.02:
            messages += (reg_sho(self.rng.choice((ACME, ACME, BOLT, CHIP)), self.rng.choice("1110")),)
        return super().packet(*messages)


class Counted(Lockstep):
    """Lockstep counting the price-test alerts and the events a hedge waited on a pull."""

    alerted = waited = 0

    def on_event(self, event) -> list:
        out = super().on_event(event)
        self.alerted += len(alerts(out, PRICE_TEST))
        self.waited += HOLD_BOTH in self.kernel.pair_hold
        return out


@pytest.mark.parametrize("seed", [10])       # a seed whose session holds a hedge back
def test_sessions_under_the_price_test_in_lockstep(monkeypatch, seed):
    monkeypatch.setattr(RegShoFeed, "rng", random.Random(seed))
    monkeypatch.setattr(test_sig_engine, "Feed", RegShoFeed)
    config = CONFIGS["calibrating-hedging"]
    engines = Counted(config)
    drive(seed, 1500, config, engines)
    k, ref = engines.kernel, engines.reference
    assert k.state_hash() == ref.state_hash()
    assert k.summary() == ref.summary()
    assert engines.hedges and engines.alerted > 0      # hedges went, and some were held back


def scripted_ask_long(compiled: bool) -> tuple[list, str]:
    """The pull-then-long-hedge scenario above: every action's fingerprint and the end state hash."""
    engine, venue, feed, now = long_in_bolt("ask-long", compiled=compiled)
    acts = run(engine, venue, md(feed.packet(reg_sho(ACME, "1")), now), now)
    rounds, now = timers(engine, venue, feed, now, 15)
    [hedge] = hedges([a for r in rounds for a in r])
    acts += [a for r in rounds for a in r] + run(engine, venue, venue.fill(hedge.intent.token, 200, now), now)
    rounds, now = timers(engine, venue, feed, now, 5)
    return fingerprint(acts + [a for r in rounds for a in r]), engine.state_hash()


def test_the_pull_and_long_hedge_decide_alike_in_the_compiled_and_reference_engines():
    compiled, reference = scripted_ask_long(True), scripted_ask_long(False)
    assert compiled == reference
