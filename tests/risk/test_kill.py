"""Kill switch: scopes, matching of resting orders, a kill of everything latches HALTED, a scoped
kill blocks its scope only (until lifted), cancels keep passing."""
from __future__ import annotations

import pytest

from mm_core.risk import CheckId, KillOrder, KillScope, RiskError, TradingState
from mm_core.risk.kill import parse_scope
from tests.risk.conftest import T0, cancel, make_gateway, order


@pytest.mark.parametrize("scope,scope_id,matching,other", [
    ("all", 0, {}, None),
    ("symbol", 5, {"symbol_id": 5}, {"symbol_id": 6}),
    ("algo", 9, {"algo_id": 9}, {"algo_id": 8}),
    ("desk", 4, {"desk_id": 4}, {"desk_id": 2}),
    ("client", 77, {"client_id": 77}, {"client_id": 78}),
])
def test_kill_scopes_match_resting_orders(scope, scope_id, matching, other):
    gw = make_gateway()
    kill = gw.kill(scope, scope_id, "alice", "runaway algo", T0)
    assert isinstance(kill, KillOrder) and kill.scope is KillScope[scope.upper()]
    assert (kill.requested_by, kill.reason, kill.now_ns) == ("alice", "runaway algo", T0)
    assert kill.matches_order(order(**matching))
    if other is not None:
        assert not kill.matches_order(order(**other))
    assert gw.check(cancel(), T0).allowed
    if scope == "all":
        assert gw.state is TradingState.HALTED
        denied = gw.check(order(price=999_000), T0)
        assert not denied.allowed and denied.check is CheckId.TRADING_HALTED
        event = gw.drain_events()[0]
        assert (event.to_state, event.actor, event.reason_code) == (
            TradingState.HALTED, "alice", CheckId.KILLED)
        return
    # scoped: that scope's new orders are refused, the rest trades on, no latch
    assert gw.state is TradingState.ACTIVE and gw.drain_events() == []
    denied = gw.check(order(**matching), T0)
    assert not denied.allowed and denied.check is CheckId.KILLED
    assert gw.check(order(), T0).allowed
    assert gw.scoped_kills == [(KillScope[scope.upper()], scope_id)]
    with pytest.raises(RiskError, match="no kill of"):
        gw.lift_kill(scope, scope_id + 1)
    gw.lift_kill(scope, scope_id)
    assert gw.scoped_kills == [] and not gw.blocks(**{"symbol_id": 1, "algo_id": 7, "desk_id": 3,
                                                      "client_id": 11, **matching})
    assert gw.state is TradingState.ACTIVE


def test_kill_scope_parsing():
    assert parse_scope(3) is KillScope.DESK and parse_scope(" Client ") is KillScope.CLIENT
    for bad in ("venue", 9, None, True):
        with pytest.raises(RiskError):
            parse_scope(bad)


def test_kill_when_already_halted_still_returns_the_order():
    gw = make_gateway()
    gw.on_journal_health(False, T0)          # an on-report fault: halted already
    gw.drain_events()
    kill = gw.kill(KillScope.ALL, 0, "bob", "journal", T0)
    assert kill.matches(1, 2, 3, 4) and gw.drain_events() == []
