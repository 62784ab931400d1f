"""Black–Scholes pricing, Greeks and the scenario grid for option positions.

Owns the per-contract risk numbers the gateway aggregates per underlying: delta, gamma, vega and
the full-revaluation P&L of one contract under each (spot shock, vol shift) scenario. Pure
functions of their arguments (time to expiry comes from the caller's now_ns); no positions here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mm_core.risk.errors import RiskError

__all__ = ["OptionParams", "UnitRisk", "bs_price", "bs_greeks", "scenario_grid", "scenario_move",
           "unit_risk", "make_unit_risk", "YEAR_NS", "MAX_EXPIRY_DAYS"]

YEAR_NS = 365 * 86_400 * 1_000_000_000   # ACT/365
# The furthest an option may expire from when it is declared (listed options run to 3 years,
# FLEX ones to 15). With expiries bounded so, and times in int64_t ns, every revaluation stays
# finite at any rate and vol OptionParams.validate allows: exp(-rate x years) overflowed past it.
MAX_EXPIRY_DAYS = 7_300
_MAX_EXPIRY_NS = MAX_EXPIRY_DAYS * 86_400 * 1_000_000_000
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def _pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def bs_price(is_call: bool, spot: float, strike: float, years: float, vol: float, rate: float) -> float:
    """European option value, no dividends. Expired (years <= 0): intrinsic value."""
    return bs_greeks(is_call, spot, strike, years, vol, rate)[0]


def bs_greeks(is_call: bool, spot: float, strike: float, years: float, vol: float,
              rate: float) -> tuple[float, float, float, float]:
    """(price, delta, gamma, vega) per unit of underlying; vega per 1.00 of vol (not per point)."""
    if spot <= 0.0 or strike <= 0.0:
        raise RiskError(f"spot and strike must be positive (spot={spot}, strike={strike})")
    if years <= 0.0 or vol <= 0.0:
        # Expired or no diffusion: value is the discounted forward payoff, delta a step.
        discount = math.exp(-rate * max(years, 0.0))
        forward_intrinsic = spot - strike * discount
        if is_call:
            return max(forward_intrinsic, 0.0), (1.0 if forward_intrinsic > 0 else 0.0), 0.0, 0.0
        return max(-forward_intrinsic, 0.0), (-1.0 if forward_intrinsic < 0 else 0.0), 0.0, 0.0
    root_t = math.sqrt(years)
    sd = vol * root_t
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / sd
    d2 = d1 - sd
    discounted_strike = strike * math.exp(-rate * years)
    density = _pdf(d1)
    gamma = density / (spot * sd)
    vega = spot * density * root_t
    if is_call:
        n1 = _cdf(d1)
        return spot * n1 - discounted_strike * _cdf(d2), n1, gamma, vega
    n1 = _cdf(-d1)
    return discounted_strike * _cdf(-d2) - spot * n1, -n1, gamma, vega


@dataclass(frozen=True, slots=True)
class OptionParams:
    """What the gateway needs to value one option symbol; strike in price4."""

    symbol_id: int
    underlying_id: int
    strike: int
    expiry_ns: int
    vol: float              # annualised, 0.25 = 25 %
    rate: float             # continuously compounded
    is_call: bool
    multiplier: int = 1     # underlying units per contract

    def validate(self, now_ns: int | None = None) -> None:
        """RiskError naming the field out of range; `now_ns`, when given, is the declaration's
        time: the expiry must come after it, by MAX_EXPIRY_DAYS at most."""
        expiry = self.expiry_ns
        if type(expiry) is not int or not 0 <= expiry < 1 << 63:
            raise RiskError(f"option {self.symbol_id}: expiry_ns {expiry!r} is not a time in int64 ns "
                            "since 1970")
        if now_ns is not None and not 0 < expiry - now_ns <= _MAX_EXPIRY_NS:
            raise RiskError(f"option {self.symbol_id}: expiry_ns {expiry} is "
                            f"{(expiry - now_ns) / 86_400e9:.6g} days from now_ns {now_ns}: must be "
                            f"within (0, {MAX_EXPIRY_DAYS}]")
        if self.strike <= 0:
            raise RiskError(f"option {self.symbol_id}: strike must be positive")
        if not (math.isfinite(self.vol) and 0.0 < self.vol < 10.0):
            raise RiskError(f"option {self.symbol_id}: vol {self.vol} outside (0, 10)")
        if not (math.isfinite(self.rate) and -1.0 < self.rate < 1.0):
            raise RiskError(f"option {self.symbol_id}: rate {self.rate} outside (-1, 1)")
        if self.multiplier <= 0:
            raise RiskError(f"option {self.symbol_id}: multiplier must be positive")
        if self.underlying_id == self.symbol_id:
            raise RiskError(f"option {self.symbol_id}: underlying must be another symbol")


@dataclass(frozen=True, slots=True)
class UnitRisk:
    """Risk of one contract (or one share): Greeks in the gateway's limit units, P&L per scenario."""

    delta: float                    # share-equivalents
    gamma: float                    # change of delta (shares) for a 1 % move of the underlying
    vega: float                     # currency per vol point (0.01)
    scenario_pnl: tuple[float, ...]  # currency, one per scenario_grid() entry


def scenario_move(spot_sigmas: float, vol_ref: float, horizon_days: float) -> float:
    """The grid's relative spot move k·σ·√h. From 1.0 up, the down scenario puts spot at or
    below zero, where nothing has a price: limits and option declarations that reach it are
    refused (mm_core.risk.limits, RiskGateway.on_option_params) rather than clamped, as a
    clamped grid would not be the stress the limits document states."""
    return spot_sigmas * vol_ref * math.sqrt(horizon_days / 365.0)


_UnitRiskBuilder = type("_UnitRiskBuilder", UnitRisk.__bases__, {"__slots__": UnitRisk.__slots__})


def make_unit_risk(delta: float, gamma: float, vega: float, scenario_pnl: tuple[float, ...]) -> UnitRisk:
    """UnitRisk(delta, gamma, vega, scenario_pnl) without the frozen dataclass's per-field
    setattr calls (greekbatch builds one per member of a group at each revaluation)."""
    o = object.__new__(_UnitRiskBuilder)
    o.delta, o.gamma, o.vega, o.scenario_pnl = delta, gamma, vega, scenario_pnl
    o.__class__ = UnitRisk
    return o


def scenario_grid(spot_sigmas: float, vol_ref: float, horizon_days: float,
                  vol_shift: float) -> tuple[tuple[float, float], ...]:
    """(relative spot move, absolute vol shift) pairs: spot ±k·σ·√h and 0, vol ±x and 0."""
    move = scenario_move(spot_sigmas, vol_ref, horizon_days)
    moves = (-move, 0.0, move)
    shifts = (-vol_shift, 0.0, vol_shift)
    return tuple((m, v) for m in moves for v in shifts if (m, v) != (0.0, 0.0))


def underlying_risk(spot: float, grid: tuple[tuple[float, float], ...]) -> UnitRisk:
    """One share of the underlying: delta 1, no gamma or vega."""
    return UnitRisk(1.0, 0.0, 0.0, tuple(spot * m for m, _ in grid))


def unit_risk(params: OptionParams, spot: float, now_ns: int,
              grid: tuple[tuple[float, float], ...]) -> UnitRisk:
    """Full revaluation of one contract under every scenario; spot in currency."""
    years = (params.expiry_ns - now_ns) / YEAR_NS
    strike = params.strike / 10_000
    mult = params.multiplier
    base, delta, gamma, vega = bs_greeks(params.is_call, spot, strike, years, params.vol, params.rate)
    pnl = []
    for move, shift in grid:
        shocked_vol = max(params.vol + shift, 1e-6)
        shocked = bs_price(params.is_call, spot * (1.0 + move), strike, years, shocked_vol, params.rate)
        pnl.append((shocked - base) * mult)
    return UnitRisk(delta * mult, gamma * spot * 0.01 * mult, vega * 0.01 * mult, tuple(pnl))
