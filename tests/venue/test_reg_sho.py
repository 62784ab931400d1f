"""Reg SHO Rule 201 on the embedded venue: a trade 10% or more below the prior close publishes
ITCH 'Y' '1' for that symbol once; the restriction holds for the rest of the day (an earlier
run's trigger is sent again at start of day as '1') and the next trading day ('2')."""
from __future__ import annotations

import datetime as dt

import pytest

from mm_core.protocol import itch, ouch
from mm_core.venue import regsho
from mm_core.venue.client import MoldReceiver, SoupClient
from mm_core.venue.config import load_config
from mm_core.venue.errors import SessionLogError
from mm_core.venue.server import Venue
from tests.venue.test_session_time import shifted, utc

ACME_CLOSE = 100_0000                      # default.toml reference prices
SYMBOLS = ["ACME", "BOLT", "CHIP"]


def test_the_trigger_is_ten_percent_below_the_prior_close_in_integers():
    assert regsho.triggers(90_0000, ACME_CLOSE) and regsho.triggers(1, ACME_CLOSE)
    assert not regsho.triggers(90_0001, ACME_CLOSE)
    assert regsho.triggers(7650, 8500) and not regsho.triggers(7651, 8500)


@pytest.mark.parametrize("day, before", [(dt.date(2026, 3, 10), dt.date(2026, 3, 9)),
                                         (dt.date(2026, 3, 9), dt.date(2026, 3, 6)),
                                         (dt.date(2026, 3, 8), dt.date(2026, 3, 6))])
def test_the_previous_trading_day_skips_the_weekend(day, before):
    assert load_config().calendar.previous_trading_day(day) == before


def reg_sho(messages) -> list[tuple[str, str]]:
    return [(m.stock.strip(), m.reg_sho_action) for m in messages
            if isinstance(m, itch.RegShoRestriction)]


def session(logs, name: str, start_utc: int, trades=()) -> list:
    """Run a session from `start_utc`; each trade (symbol, price) is MM01 resting 100 shares to
    sell and MM02 lifting them. Returns the ITCH messages."""
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session=name)
        with Venue(config, background_flow=False, clock=shifted(start_utc)) as venue:
            with SoupClient(venue.ports.host, venue.ports.ouch) as a, \
                    SoupClient(venue.ports.host, venue.ports.ouch) as b:
                a.login("MM01", "mmaudit", 0)
                b.login("MM02", "mmaudit2", 0)
                for i, (symbol, price) in enumerate(trades):
                    a.enter(f"S{i}", "S", 100, symbol, price)
                    a.sequenced(1)
                    b.enter(f"B{i}", "B", 100, symbol, price, tif=ouch.TIF_IOC)
                    b.sequenced(2)
                    a.sequenced(1)                      # its execution
        rx.run(None, lambda r: r.ended, 10.0)
        return rx.decoded()


MONDAY = utc(2026, 3, 9, 14)               # 10:00 EDT


def test_start_of_day_sends_no_price_test_for_every_symbol_after_its_trading_action(tmp_path):
    public = session(tmp_path / "logs", "RS00000001", MONDAY)
    assert reg_sho(public) == [(s, "0") for s in SYMBOLS]          # options have no Reg SHO
    kinds = [type(m).__name__ for m in public[:public.index(next(
        m for m in public if isinstance(m, itch.SystemEvent) and m.event_code == "S"))]]
    assert kinds == ["SystemEvent"] + ["StockDirectory", "StockTradingAction",
                                       "RegShoRestriction"] * 3 + \
        ["StockDirectory", "StockTradingAction"] * 2


def test_a_fall_of_ten_percent_publishes_the_restriction_once_after_the_trade(tmp_path):
    logs = tmp_path / "logs"
    public = session(logs, "RS00000001", MONDAY,
                     [("ACME", 90_0100), ("BOLT", 45_4550), ("ACME", 90_0000), ("ACME", 80_0000)])
    assert reg_sho(public)[3:] == [("ACME", "1")]          # BOLT's 45.455 is 9.99% down
    at = next(i for i, m in enumerate(public) if isinstance(m, itch.RegShoRestriction)
              and m.reg_sho_action == "1")
    trade = public[at - 1]
    assert isinstance(trade, itch.OrderExecuted) and trade.match_number == 3
    assert (logs / regsho.RECORD).read_text() == "2026-03-09 ACME\n"


def test_the_restriction_holds_the_rest_of_the_day_and_the_next_trading_day(tmp_path):
    logs = tmp_path / "logs"
    friday = utc(2026, 3, 6, 15)
    session(logs, "RS00000001", friday, [("ACME", 89_0000)])
    later = session(logs, "RS00000002", friday + 3600 * 10**9)          # the same day
    assert reg_sho(later) == [("ACME", "1"), ("BOLT", "0"), ("CHIP", "0")]
    monday = session(logs, "RS00000003", MONDAY, [("CHIP", 7600)])
    assert reg_sho(monday) == [("ACME", "2"), ("BOLT", "0"), ("CHIP", "0"), ("CHIP", "1")]
    tuesday = session(logs, "RS00000004", MONDAY + 86_400 * 10**9)
    assert reg_sho(tuesday) == [("ACME", "0"), ("BOLT", "0"), ("CHIP", "2")]


def test_a_damaged_record_is_a_typed_error(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / regsho.RECORD).write_text("2026-03-09 ACME\nnot a line\n")
    config = load_config().with_venue(itch_port=9, log_dir=str(logs), session="RS00000001")
    with pytest.raises(SessionLogError, match=f"{regsho.RECORD}:2"):
        Venue(config, background_flow=False).start()
    (logs / regsho.RECORD).write_text("2026-03-09 ACME\n2026-03-09 BO")     # torn last write
    assert regsho.Rule201(logs, dt.date(2026, 3, 9), {"ACME": 1, "BOLT": 1},
                          config.calendar).today == {"ACME"}
