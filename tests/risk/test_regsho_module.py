"""Reg SHO in its own module (mm_core.risk.regsho) changed nothing: a gateway pickled by the code
from before the move (tests/risk/data/gateway_regsho_v1.pickle, written by `build` below on that
code) loads, holds the same state (state_items, which the engine's state hash covers) as the same
gateway built now, and decides every later order the same way, denials' values included."""
from __future__ import annotations

import io
import pathlib
import pickle
import sys

from mm_core.risk import Limits, OpenOrder, RiskGateway
from mm_core.types import OrderIntent, OrderKind, Purpose, Side
from recovery.snapshot import _Pickler
from tests.risk.conftest import FAIR, T0, healthy, limits_text

FIXTURE = pathlib.Path(__file__).parent / "data" / "gateway_regsho_v1.pickle"
DAY = 20_000
# symbol 1: 500 shares located, not easy to borrow; symbol 2: easy to borrow; 3: bona fide MM
LIMITS = limits_text(reg_sho={"easy_to_borrow": [2], "bona_fide_market_making": [3],
                              "locates": {"1": 500, "3": 100}})


def intent(token: str, side: Side, qty: int, price: int, symbol_id: int = 1,
           kind: OrderKind = OrderKind.ENTER, orig_token: str = "",
           purpose: Purpose = Purpose.QUOTE) -> OrderIntent:
    return OrderIntent(kind, token, symbol_id, side, price, qty, algo_id=7, desk_id=3, client_id=11,
                       orig_token=orig_token, purpose=purpose)


def snapshot_bytes(gw: RiskGateway) -> bytes:
    """The gateway pickled as an engine snapshot pickles it."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(gw)
    return buf.getvalue()


def build() -> RiskGateway:
    """A gateway holding every piece of Reg SHO state: a trading day, locates used by a short
    fill, working short sales (one adopted, one resynchronised, one with a replace in flight), the
    price test in force on one symbol and lifted on another."""
    gw = healthy(RiskGateway(Limits.from_toml(LIMITS)), T0,
                 feeds=((1, FAIR, FAIR), (2, FAIR, FAIR), (3, FAIR, FAIR)))
    gw.on_trading_day(DAY, T0)
    gw.on_position(2, 300, T0)
    assert gw.check(intent("S1", Side.SELL, 100, FAIR + 100), T0, "T").allowed
    gw.on_fill(1, Side.SELL, 60, FAIR + 100, T0, "S1")
    assert gw.check(intent("S2", Side.SELL, 50, FAIR + 200), T0, "E").allowed
    assert gw.check(intent("S3", Side.SELL, 40, FAIR + 300, kind=OrderKind.REPLACE,
                           orig_token="S2"), T0, "E").allowed
    assert gw.check(intent("L1", Side.SELL, 100, FAIR + 100, symbol_id=2), T0, "S").allowed
    gw.on_order_adopted("A1", 1, Side.SELL, 30, FAIR + 400, "", now_ns=T0)
    gw.on_order_adopted("A2", 3, Side.SELL, 20, FAIR + 400, "T", now_ns=T0)
    gw.on_reg_sho(1, True, T0)
    gw.on_reg_sho(2, False, T0)
    return gw


def later(gw: RiskGateway) -> list:
    """Decisions after the state was taken: each Reg SHO rule meets that state."""
    now = T0 + 1
    out = [gw.check(intent("N1", Side.SELL, 10, FAIR + 50), now, "T", FAIR + 100),    # Rule 201
           gw.check(intent("N2", Side.SELL, 10, FAIR + 500), now, "T"),               # no NBB given
           gw.check(intent("N3", Side.SELL, 300, FAIR + 500), now, "T", FAIR),        # locates
           gw.check(intent("N4", Side.SELL, 200, FAIR + 500), now, "T", FAIR),
           gw.check(intent("N5", Side.SELL, 250, FAIR + 500, symbol_id=2), now, "S"),  # long sale
           gw.check(intent("N6", Side.SELL, 90, FAIR + 500, symbol_id=3), now, "T"),   # exception
           gw.check(intent("N7", Side.SELL, 10, FAIR + 600, kind=OrderKind.REPLACE,
                           orig_token="S1"), now, "S", FAIR)]                       # marking
    gw.on_trading_day(DAY + 1, now)
    out.append((gw.locates_used(1), gw.trading_day))
    gw.on_order_state([OpenOrder("R1", 1, Side.SELL, FAIR + 100, 480, "T")], 0, now)
    out.append(gw.check(intent("N8", Side.SELL, 30, FAIR + 500), now, "T", FAIR))
    out.append(gw.state_items())
    return out


def test_a_gateway_pickled_before_the_move_loads_with_the_same_state_and_decisions():
    old = pickle.loads(FIXTURE.read_bytes())
    new = build()
    assert old.state_items() == new.state_items()
    assert (old.locates_used(1), old.trading_day) == (new.locates_used(1), new.trading_day) == (60, DAY)
    assert later(old) == later(new)


def test_the_new_gateway_pickles_and_loads_the_same():
    gw = build()
    again = pickle.loads(snapshot_bytes(gw))
    assert again.state_items() == gw.state_items()
    assert later(again) == later(gw)


if __name__ == "__main__":     # writes the fixture with the code on PYTHONPATH
    FIXTURE.write_bytes(snapshot_bytes(build()))
    print(f"{FIXTURE}: {FIXTURE.stat().st_size} bytes", file=sys.stderr)
