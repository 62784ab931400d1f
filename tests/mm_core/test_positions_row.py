"""The positions a session shows (progress line, summary row) name every symbol with a position,
not only the quoted ones: a hedge's position in a symbol we do not quote is there."""
import dataclasses

from mm_core.session import positions_by_name
from tests.mm_core.test_engine import QUIET_GUARD
from tests.mm_core.test_hedge_metrics import hedge_filled
from tests.mm_core.wire import ACME, BOLT, NAMES, make_engine


def test_a_hedged_symbol_we_do_not_quote_is_listed():
    config = dataclasses.replace(QUIET_GUARD, quoted=("BOLT",))
    assert positions_by_name(make_engine(config), NAMES) == {"BOLT": 0}    # a quoted one shows flat
    engine = hedge_filled(config)[0]
    pos = engine.inventory.position
    assert engine.quoted == [BOLT] and pos[ACME] < 0
    assert positions_by_name(engine, NAMES) == {"ACME": pos[ACME], "BOLT": pos[BOLT]}
