"""Builders shared by the risk tests: a small limits document, a healthy gateway, orders."""
from __future__ import annotations

import copy
import itertools
import tomllib

from mm_core.risk import Limits, RiskGateway
from mm_core.types import OrderIntent, OrderKind, Side

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
FAIR = 1_000_000          # 100.0000 in price4

BASE = {
    "version": 1,
    "latch_state": "HALTED",
    "start_reconciled": True,
    "staleness": {"max_market_age_ms": 1000, "max_clock_age_ms": 3000},
    "rates": {"window_ms": 1000, "max_submits": 50, "max_modifies": 50, "max_cancels": 50},
    "throttle": {"max_fills": 50, "window_ms": 1000},
    "duplicate": {"window_ms": 50},
    "collar": {"fair_bps": 100, "reference_bps": 200, "drift_bps": 300, "drift_window_ms": 60000},
    "account": {"max_open_orders": 50, "max_gross_notional": 10_000_000,
                "max_net_notional": 10_000_000, "max_drawdown": 1_000_000, "restricted": []},
    "safe_mode": {"size_multiplier": 0.5, "spread_multiplier": 2.0},
    "greeks": {"max_delta": 1e9, "max_gamma": 1e9, "max_vega": 1e9},
    "scenario": {"spot_sigmas": 3.0, "vol_shift": 0.05, "horizon_days": 1.0,
                 "max_loss": 1_000_000_000, "default_vol": 0.3},
    "defaults": {"max_order_qty": 10_000, "max_order_value": 5_000_000, "max_position": 50_000},
    # short sales (marked T) of the test symbols need no locate unless a test says otherwise
    "reg_sho": {"easy_to_borrow": [1, 2, 3, 4], "bona_fide_market_making": [], "locates": {}},
}


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def to_toml(doc: dict) -> str:
    """Enough TOML for limits documents: scalars, lists, tables and one level of sub-tables."""
    lines = [f"{k} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]

    def table(name: str, body: dict) -> None:
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_value(v)}" for k, v in body.items() if not isinstance(v, dict))
        for k, v in body.items():
            if isinstance(v, dict):
                table(f"{name}.{k}", v)

    for k, v in doc.items():
        if isinstance(v, dict):
            table(k, v)
    return "\n".join(lines) + "\n"


def limits_doc(**sections) -> dict:
    """BASE with sections merged: limits_doc(rates={"max_submits": 5}, version=2)."""
    doc = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return doc


def limits_text(**sections) -> str:
    text = to_toml(limits_doc(**sections))
    assert tomllib.loads(text) == limits_doc(**sections)
    return text


_tokens = itertools.count(1)


def order(symbol_id: int = 1, side: Side = Side.BUY, price: int = FAIR, qty: int = 100,
          kind: OrderKind = OrderKind.ENTER, **kw) -> OrderIntent:
    ids = {"algo_id": 7, "desk_id": 3, "client_id": 11, "token": f"T{next(_tokens)}"}
    ids.update(kw)
    return OrderIntent(kind=kind, symbol_id=symbol_id, side=side, price=price, qty=qty, **ids)


def cancel(token: str = "T0", symbol_id: int = 1) -> OrderIntent:
    return order(symbol_id=symbol_id, kind=OrderKind.CANCEL, qty=0, token=token)


def healthy(gw: RiskGateway, now: int = T0, feeds=((1, FAIR, FAIR),)) -> RiskGateway:
    gw.on_journal_health(True, now)
    gw.on_clock(True, now)
    gw.on_reconciled(True, now)
    for symbol_id, fair, reference in feeds:
        gw.on_market(symbol_id, fair, reference, False, now)
    return gw


def make_gateway(feeds=((1, FAIR, FAIR),), latch_state=None, **sections) -> RiskGateway:
    gw = RiskGateway(Limits.from_toml(limits_text(**sections)), latch_state=latch_state)
    return healthy(gw, T0, feeds)
