"""Background flow: seeded and deterministic, correlated pair, Black-Scholes options, and informed
traders who really do profit from liquidity quoted at the current latent price."""
from __future__ import annotations

import math
import random
import statistics

import pytest

from mm_core.venue import matching as m
from mm_core.venue.config import load_config
from mm_core.venue.flow import BackgroundFlow, LatentPaths, apply, black_scholes


def simulate(seed: int, seconds: float, config=None):
    config = config or load_config()
    engine = m.MatchingEngine(config.listings())
    flow = BackgroundFlow(config, seed)
    commands, events = [], []
    while flow.next_due() < seconds:
        for command in flow.fire(engine.bbo):
            commands.append(command)
            out = apply(engine, command)
            flow.on_events(out)
            events += out
    return config, engine, flow, commands, events


def test_same_seed_same_stream_and_different_seed_differs():
    _, _, _, a, ev_a = simulate(3, 5.0)
    _, _, _, b, ev_b = simulate(3, 5.0)
    _, _, _, c, _ = simulate(4, 5.0)
    assert a == b and ev_a == ev_b and len(a) > 100
    assert a != c


def test_flow_keeps_books_two_sided_bounded_and_never_ignored():
    config, engine, _, _, events = simulate(5, 20.0)
    for listing in config.listings():
        bid, ask = engine.bbo(listing.name)
        assert bid is not None and ask is not None and bid < ask
        noise = [o for o in engine.live_orders("~NOISE") if o.symbol == listing.name]
        assert len(noise) <= config.flow.noise_max_resting
    assert not [e for e in events if isinstance(e, (m.Ignored, m.Rejected))]
    assert any(isinstance(e, m.Executed) and e.owner == "~INFO" for e in events)


def test_pair_correlation_matches_config():
    config = load_config()
    paths = LatentPaths(config, random.Random(1))
    step = config.flow.latent_step
    a = [math.log(paths.price("ACME", i * step)) for i in range(20001)]
    b = [math.log(paths.price("BOLT", i * step)) for i in range(20001)]
    ra = [y - x for x, y in zip(a, a[1:])]
    rb = [y - x for x, y in zip(b, b[1:])]
    rho = statistics.correlation(ra, rb)
    assert abs(rho - config.pairs[0].correlation) < 0.03
    # CHIP is independent of both
    c = [math.log(paths.price("CHIP", i * step)) for i in range(20001)]
    rc = [y - x for x, y in zip(c, c[1:])]
    assert abs(statistics.correlation(ra, rc)) < 0.05


def test_options_follow_black_scholes_on_the_latent_underlying():
    config = load_config()
    paths = LatentPaths(config, random.Random(2))
    call, put = config.options
    for t in (0.0, 30.0, 600.0):
        spot = paths.price("ACME", t)
        assert paths.price(call.name, t) - paths.price(put.name, t) == \
            pytest.approx(spot - call.strike, abs=1e-6)   # put-call parity, r = 0
    # textbook value: S=K=100, T=1y, vol 20% -> 7.9656
    assert black_scholes(100.0, 100.0, 1.0, 0.2, "C") == pytest.approx(7.9656, abs=1e-4)
    assert black_scholes(120.0, 100.0, 0.0, 0.2, "C") == 20.0


def test_informed_traders_profit_at_the_liquidity_providers_expense():
    config = load_config().with_flow(informed_rate=3.0, informed_horizon=5.0)
    _, engine, flow, _, events = simulate(9, 120.0, config)
    cash: dict[str, float] = {}
    for e in events:
        if isinstance(e, m.Executed):
            sign = -1 if e.side == "B" else 1
            cash[e.owner] = cash.get(e.owner, 0) + sign * e.shares * e.price
    def pnl(owner):
        marks = engine.position(owner)
        return cash.get(owner, 0) + sum(q * flow.paths.price(s, flow.now) for s, q in marks.items())
    assert pnl("~INFO") > 0
    assert pnl("~LP0") + pnl("~LP1") < pnl("~INFO")


def test_trim_past_the_grown_path_keeps_the_last_point_and_grows_on():
    """A trim time beyond every grid point grown so far must not empty the paths (the venue's
    flow thread would die on the next price)."""
    config = load_config()
    paths = LatentPaths(config, random.Random(3))
    step = config.flow.latent_step
    before = paths.price("ACME", 10 * step)
    paths.trim(100_000 * step)                    # far past anything asked for
    later = paths.price("ACME", 100_001 * step)
    assert later > 0 and math.isfinite(later) and before > 0
