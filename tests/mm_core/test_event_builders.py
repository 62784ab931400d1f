"""The fast constructors replay builds its inputs with (events.market_data_of, venue_message_of,
timer_of; greeks.make_unit_risk) make the very objects the frozen dataclasses' constructors make:
the same type, fields, equality, hash, repr and pickle, and just as frozen."""
import dataclasses
import pickle

import pytest

from journal.catalogue import TsSource
from mm_core.events import MarketData, Timer, VenueMessage, market_data_of, timer_of, venue_message_of
from mm_core.risk.greeks import UnitRisk, make_unit_risk

CASES = [
    (market_data_of(b"\x01\x02", 123, TsSource.HW_PHC), MarketData(b"\x01\x02", 123, TsSource.HW_PHC)),
    (venue_message_of(b"soup", -5, TsSource.USER), VenueMessage(b"soup", -5, TsSource.USER)),
    (timer_of(10**18, 7), Timer(10**18, 7)),
    (make_unit_risk(1.5, -0.0, 2e-9, (0.1, -3.0)), UnitRisk(1.5, -0.0, 2e-9, (0.1, -3.0))),
]


@pytest.mark.parametrize("built, plain", CASES, ids=[type(p).__name__ for _, p in CASES])
def test_a_built_event_is_the_dataclass_one(built, plain):
    assert type(built) is type(plain)
    assert built == plain and hash(built) == hash(plain) and repr(built) == repr(plain)
    assert dataclasses.astuple(built) == dataclasses.astuple(plain)
    assert pickle.loads(pickle.dumps(built)) == plain
    assert pickle.dumps(built) == pickle.dumps(plain)
    field = dataclasses.fields(plain)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, field, None)
