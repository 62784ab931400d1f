"""Risk gateway cost per order action, side by side with a bare call and an empty check.

Every check is on: identity, faults, staleness, throttle, state, message rate, size, value,
collars (fair, reference, drift), duplicates, open orders, position, gross/net notional, Greeks and
scenario P&L (for the option order) and drawdown. Timings are per call (perf_counter_ns around
each call, the timer's own cost reported) and as a batch mean.
"""
from __future__ import annotations

import gc
import statistics
import time

from mm_core.risk import Limits, RiskDecision, RiskGateway
from mm_core.types import OrderIntent, OrderKind, Side

T0 = 1_700_000_000_000_000_000
FAIR = 1_000_000
OPTION_FAIR = 50_000
STEP_NS = 10_000

LIMITS = """
version = 1
start_reconciled = true
[staleness]
max_market_age_ms = 3600000
max_clock_age_ms = 3600000
[rates]
window_ms = 1000
max_submits = 1000000
max_modifies = 1000000
max_cancels = 1000000
[throttle]
max_fills = 1000
window_ms = 1000
[duplicate]
window_ms = 5
[collar]
fair_bps = 200
reference_bps = 500
drift_bps = 1000
drift_window_ms = 1000
[account]
max_open_orders = 1000
max_gross_notional = 100000000
max_net_notional = 100000000
max_drawdown = 10000000
restricted = [99]
[safe_mode]
size_multiplier = 0.5
spread_multiplier = 2.0
[greeks]
max_delta = 1e7
max_gamma = 1e7
max_vega = 1e9
[scenario]
spot_sigmas = 3.0
vol_shift = 0.05
horizon_days = 1.0
max_loss = 1000000000
default_vol = 0.3
[defaults]
max_order_qty = 100000
max_order_value = 10000000
max_position = 1000000
"""


def _gateway() -> RiskGateway:
    gw = RiskGateway(Limits.from_toml(LIMITS))
    gw.on_journal_health(True, T0)
    gw.on_clock(True, T0)
    gw.on_market(1, FAIR, FAIR, False, T0)
    gw.on_market(2, OPTION_FAIR, OPTION_FAIR, False, T0)
    gw.on_option_params(2, 1, FAIR, T0 + 30 * 86_400 * 10**9, 0.25, 0.01, True, 100, T0)
    gw.on_position(1, 500, T0)
    gw.on_position(2, -20, T0)
    return gw


def _intents(n: int, symbol_id: int, fair: int, kind=OrderKind.ENTER) -> list[OrderIntent]:
    return [OrderIntent(kind, f"B{symbol_id}{i}", symbol_id, Side.BUY if i % 2 else Side.SELL,
                        fair - (i % 500), 10 + i % 7, algo_id=1, desk_id=2, client_id=3)
            for i in range(n)]


def _time_each(call, intents, done=None) -> list[int]:
    """Per-call wall time in ns; `done` runs outside the timed region (order leaves the book)."""
    clock = time.perf_counter_ns
    out = []
    now = T0
    for intent in intents:
        now += STEP_NS
        start = clock()
        call(intent, now)
        out.append(clock() - start)
        if done is not None:
            done(intent.token, now)
    return out


def _batch_mean(call, intents) -> float:
    clock = time.perf_counter_ns
    now = T0
    start = clock()
    for intent in intents:
        now += STEP_NS
        call(intent, now)
    return (clock() - start) / len(intents)


def _pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(quick: bool = False) -> str:
    n = 20_000 if quick else 200_000
    allowed_singleton = RiskDecision(True, 0, 0, 0, "", 1, 1)   # what an empty check returns

    def bare(intent, now):
        return None

    def empty_check(intent, now):
        return allowed_singleton

    timer_cost = _pct(_time_each(bare, [None] * 0 or _intents(n, 1, FAIR)), 0.5)  # noqa: F841
    rows = []
    baselines = {}
    cases = [
        ("bare function call", lambda: (bare, _intents(n, 1, FAIR), None)),
        ("empty check (returns a cached decision)", lambda: (empty_check, _intents(n, 1, FAIR), None)),
    ]
    for label, setup in cases:
        fn, intents, _ = setup()
        baselines[label] = fn

    def gateway_case(symbol_id, fair, kind=OrderKind.ENTER, deny=False):
        def setup():
            gw = _gateway()
            if deny:
                gw.kill("all", 0, "bench", "denied path", T0)
            return gw.check, _intents(n, symbol_id, fair, kind), gw.on_order_done
        return setup

    cases += [
        ("gateway: allowed ENTER, stock (all checks)", gateway_case(1, FAIR)),
        ("gateway: allowed ENTER, option (all checks + Greeks + scenario)", gateway_case(2, OPTION_FAIR)),
        ("gateway: CANCEL (always allowed, counted)", gateway_case(1, FAIR, OrderKind.CANCEL)),
        ("gateway: denied ENTER (HALTED)", gateway_case(1, FAIR, deny=True)),
    ]
    gc.disable()
    try:
        for label, setup in cases:
            fn, intents, done = setup()
            each = _time_each(fn, intents, done)
            fn, intents, done = setup()
            mean = _batch_mean(fn, intents) if done is None else None
            rows.append((label, _pct(each, 0.5), _pct(each, 0.99), statistics.fmean(each), mean))
    finally:
        gc.enable()

    # sanity: the gateway really allows the stock and option orders used above
    gw = _gateway()
    stock, option = _intents(1, 1, FAIR)[0], _intents(1, 2, OPTION_FAIR)[0]
    assert gw.check(stock, T0 + STEP_NS).allowed and gw.check(option, T0 + STEP_NS).allowed

    clock = time.perf_counter_ns
    timer = []
    for _ in range(n):
        start = clock()
        timer.append(clock() - start)
    timer_p50 = _pct(timer, 0.5)
    base_p50 = rows[0][1] - timer_p50
    out = [
        "## Risk gateway: cost per order action",
        "",
        f"{n} calls per row, CPython {__import__('platform').python_version()}, GC off while timing. "
        f"Per-call times include the timer itself ({timer_p50:.0f} ns p50, subtracted in the "
        "`net p50` column). Target: gateway p50 <= 2 us with all checks on.",
        "",
        "| case | p50 ns | p99 ns | mean ns | net p50 ns | x bare call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, p50, p99, mean, _ in rows:
        net = max(p50 - timer_p50, 1)
        out.append(f"| {label} | {p50:.0f} | {p99:.0f} | {mean:.0f} | {net:.0f} | "
                   f"{net / max(base_p50, 1):.1f} |")
    stock_p50 = rows[2][1]
    out += ["", f"Allowed stock order p50 {stock_p50 / 1000:.2f} us: target {'met' if stock_p50 <= 2000 else 'missed'}; "
            f"option order p50 {rows[3][1] / 1000:.2f} us."]
    return "\n".join(out)


if __name__ == "__main__":
    print(main(quick=True))
