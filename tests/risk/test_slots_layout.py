"""The gateway and its limits keep what the order path reads in slots: each still loads from a
pickle of the layout from before the slots (one dict of attributes, some of them missing when the
pickle is older than they are) and from one of its own, and decides the same way afterwards."""
from __future__ import annotations

import dataclasses
import io
import pickle
from types import MappingProxyType

import pytest

from mm_core.risk import Limits, LimitsError, RiskGateway
from mm_core.types import Side
from recovery.snapshot import _Pickler
from tests.risk.conftest import FAIR, T0, limits_text, make_gateway, order


def _snapshot(obj) -> object:
    """obj pickled and loaded as an engine snapshot does it."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(obj)
    return pickle.loads(buf.getvalue())


def _one_dict(gw: RiskGateway) -> dict:
    """The gateway's attributes as the dict a pickle from before the slots carried."""
    attrs, slots = gw.__reduce_ex__(5)[2]
    return {**(attrs or {}), **slots}


def _decisions(gw: RiskGateway) -> list:
    now = T0 + 1_000
    return [gw.check(order(token="A1", qty=100), now), gw.check(order(token="A2", qty=100), now),
            gw.check(order(token="A3", symbol_id=1, side=Side.SELL, price=FAIR + 100), now),
            gw.check(order(token="A4", symbol_id=2), now)]


def test_a_gateway_pickled_as_one_dict_without_the_operator_state_loads_with_none():
    gw = make_gateway()
    gw.check(order(token="W1", qty=300, price=FAIR - 100), T0 + 10)
    state = _one_dict(_snapshot(gw))        # a copy: nothing shared with gw
    # pickled before the operator's safe mode and the scoped kills were kept
    del state["_safe_requested"], state["_scoped_kills"]
    old = RiskGateway.__new__(RiskGateway)
    old.__setstate__(state)
    assert old.scoped_kills == [] and old.state_items() == gw.state_items()
    assert _decisions(old) == _decisions(gw)


def test_a_gateway_pickled_with_slots_keeps_them_and_its_scoped_kills():
    gw = make_gateway()
    gw.check(order(token="W1", qty=300, price=FAIR - 100), T0 + 10)
    gw.kill("symbol", 2, "ops", "test", T0 + 20)
    again = _snapshot(gw)
    assert again.scoped_kills == gw.scoped_kills and again.state_items() == gw.state_items()
    assert again.working_orders() == gw.working_orders() == {"W1": (1, True, 300, FAIR - 100)}
    assert _decisions(again) == _decisions(gw)


def test_limits_load_from_either_layout():
    limits = Limits.from_toml(limits_text(reg_sho={"easy_to_borrow": [2], "locates": {"1": 500}}))
    assert _snapshot(limits) == limits
    # a dict, as pickled before the slots, by code older than the Reg SHO table
    state = {f.name: getattr(limits, f.name) for f in dataclasses.fields(limits)}
    for name in ("easy_to_borrow", "locates", "bona_fide_mm"):
        del state[name]
    old = Limits.__new__(Limits)
    old.__setstate__(state)
    assert old == dataclasses.replace(limits, easy_to_borrow=frozenset(), locates=MappingProxyType({}),
                                      bona_fide_mm=frozenset())
    del state["max_open_orders"]            # a field with no default cannot be made up
    with pytest.raises(LimitsError, match="max_open_orders"):
        Limits.__new__(Limits).__setstate__(state)
