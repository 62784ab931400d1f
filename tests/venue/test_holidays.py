"""Exchange holidays: the venue's [calendar] (NASDAQ's 2026-2027 full-day closures by default)
decides the next and previous trading day, so Rule 201 carries a trigger over a holiday; a
session dated on a holiday runs as on a weekend, with a warning; a bad date is a ConfigError."""
from __future__ import annotations

import datetime as dt

import pytest

from mm_core.venue.config import load_config, parse_config
from mm_core.venue.errors import ConfigError
from mm_core.venue.tradingdays import TradingCalendar
from tests.venue.test_config import doc_with
from tests.venue.test_reg_sho import reg_sho, session
from tests.venue.test_session_ended import unend
from tests.venue.test_session_time import SESSION, open_and_trade, shifted, utc

D = dt.date
CALENDAR = load_config().calendar
HOUR = 3600 * 10**9


def test_the_default_calendar_has_nasdaqs_ten_closures_a_year_all_on_weekdays():
    for year in (2026, 2027):
        days = sorted(d for d in CALENDAR.holidays if d.year == year)
        assert len(days) == 10 and all(d.weekday() < 5 for d in days)
    assert {D(2026, 11, 26), D(2026, 7, 3), D(2027, 3, 26), D(2027, 12, 24)} <= CALENDAR.holidays
    assert D(2026, 11, 27) not in CALENDAR.holidays            # an early close trades
    assert CALENDAR.knows(D(2027, 6, 1)) and not CALENDAR.knows(D(2028, 6, 1))


@pytest.mark.parametrize("day, after", [
    (D(2026, 11, 25), D(2026, 11, 27)),      # Wednesday -> Friday over Thanksgiving
    (D(2026, 1, 16), D(2026, 1, 20)),        # Friday -> Tuesday over Martin Luther King Jr. Day
    (D(2026, 4, 2), D(2026, 4, 6)),          # Thursday -> Monday over Good Friday
    (D(2026, 12, 31), D(2027, 1, 4)),        # over New Year's Day and a weekend
    (D(2026, 11, 27), D(2026, 11, 30)),      # an ordinary weekend
])
def test_next_and_previous_trading_day_skip_holidays_and_weekends(day, after):
    assert CALENDAR.next_trading_day(day) == after
    assert CALENDAR.previous_trading_day(after) == day
    assert TradingCalendar().next_trading_day(D(2026, 11, 25)) == D(2026, 11, 26)   # none known


def test_a_rule_201_trigger_the_day_before_thanksgiving_holds_on_the_friday(tmp_path):
    logs = tmp_path / "logs"
    session(logs, "RS00000001", utc(2026, 11, 25, 16), [("ACME", 89_0000)])   # Wed 11:00 EST
    friday = session(logs, "RS00000002", utc(2026, 11, 27, 15))
    assert reg_sho(friday) == [("ACME", "2"), ("BOLT", "0"), ("CHIP", "0")]
    monday = session(logs, "RS00000003", utc(2026, 11, 30, 15))
    assert reg_sho(monday) == [("ACME", "0"), ("BOLT", "0"), ("CHIP", "0")]


def test_a_rule_201_trigger_before_a_monday_holiday_holds_on_the_tuesday(tmp_path):
    logs = tmp_path / "logs"
    session(logs, "RS00000001", utc(2026, 1, 16, 15), [("BOLT", 45_0000)])    # Friday
    tuesday = session(logs, "RS00000002", utc(2026, 1, 20, 15))
    assert reg_sho(tuesday) == [("ACME", "0"), ("BOLT", "2"), ("CHIP", "0")]


def test_a_session_dated_on_a_holiday_runs_as_on_a_weekend_and_says_so(tmp_path, caplog):
    """The demo, the tests and the drills run the embedded venue on any day: on a holiday it
    trades as on a weekend (a day Rule 201 does not count as a trading day) and warns."""
    logs = tmp_path / "logs"
    with caplog.at_level("WARNING", logger="mm_core.venue"):
        started, _, _ = open_and_trade(logs, shifted(utc(2026, 1, 19, 15)))     # MLK Day
    assert started.ports.session_date == "2026-01-19"
    assert any("2026-01-19" in r.getMessage() and "holiday" in r.getMessage()
               and "next trading day is 2026-01-20" in r.getMessage() for r in caplog.records)


def test_a_session_restarted_after_midnight_into_a_holiday_keeps_its_trading_date(tmp_path):
    logs = tmp_path / "logs"
    open_and_trade(logs, shifted(utc(2026, 11, 26, 4, 50)))     # 23:50 EST, Wednesday 25th
    unend(logs / SESSION)
    venue, private, _ = open_and_trade(logs, shifted(utc(2026, 11, 26, 5, 10)), "T2")
    assert venue.ports.session_date == "2026-11-25"
    assert all(24 * HOUR <= m.timestamp < 25 * HOUR for m in private)


def test_without_a_calendar_table_the_defaults_apply_and_an_empty_list_knows_none(tmp_path):
    assert parse_config(doc_with()).calendar == CALENDAR
    empty = parse_config(doc_with(calendar={"holidays": []})).calendar
    assert empty == TradingCalendar() and empty.is_trading_day(D(2026, 11, 26))
    own = parse_config(doc_with(calendar={"holidays": ["2026-11-26", D(2026, 12, 24)]}))
    assert own.calendar.holidays == {D(2026, 11, 26), D(2026, 12, 24)}
    path = tmp_path / "venue.toml"
    path.write_text('[[symbols]]\nname = "ACME"\nid = 1\nreference_price = 1\n'
                    'half_penny = false\nvolatility = 0.1\n[calendar]\nholidays = [2027-11-25]\n')
    assert load_config(path).calendar.holidays == {D(2027, 11, 25)}


@pytest.mark.parametrize("calendar, field, problem", [
    ({"holidays": ["2026-11-26", "2026-02-30"]}, "calendar.holidays[1]", "must be a date"),
    ({"holidays": ["26/11/2026"]}, "calendar.holidays[0]", "must be a date"),
    ({"holidays": ["2026-W48-4"]}, "calendar.holidays[0]", "must be a date"),
    ({"holidays": [20261126]}, "calendar.holidays[0]", "must be a date"),
    ({"holidays": [dt.datetime(2026, 11, 26, 9, 30)]}, "calendar.holidays[0]", "must be a date"),
    ({"holidays": [D(2026, 11, 28)]}, "calendar.holidays[0]", "is a Saturday"),
    ({"holidays": ["2026-11-26", D(2026, 11, 26)]}, "calendar.holidays[1]", "duplicate"),
    ({"holidays": "2026-11-26"}, "calendar.holidays", "must be an array"),
    ({"holiday": []}, "calendar.holiday", "unknown key"),
    ([], "calendar", "must be a table"),
])
def test_a_bad_calendar_names_the_entry(calendar, field, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        parse_config(doc_with(calendar=calendar))
    assert info.value.field == field


def test_an_impossible_toml_date_is_a_config_error(tmp_path):
    path = tmp_path / "venue.toml"
    path.write_text("[calendar]\nholidays = [2026-02-30]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
