"""The venue's trading days: weekdays that are not exchange holidays ([calendar] in the config).

Owns "next/previous trading day" (Rule 201 carries a trigger to the next one). Sessions on a
weekend or a holiday are not refused: the demo, the tests and the drills run the embedded venue on
any day (the venue warns on a holiday); such a day is simply not a trading day when the next or
previous one is looked for. Pure: dates in, dates out; no clock, no files.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_SATURDAY = 5


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    """Full-day exchange closures (early closes are trading days); the years it lists are the
    years it knows: outside them only weekends are closures."""

    holidays: frozenset[dt.date] = frozenset()

    def is_trading_day(self, day: dt.date) -> bool:
        return day.weekday() < _SATURDAY and day not in self.holidays

    def next_trading_day(self, day: dt.date) -> dt.date:
        """The first trading day after `day` (Wednesday 25 November 2026's is Friday the 27th:
        Thanksgiving is closed)."""
        return self._step(day, 1)

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day before `day` (Tuesday 19 January 2027's is Friday the 15th:
        Martin Luther King Jr. Day is closed)."""
        return self._step(day, -1)

    def knows(self, day: dt.date) -> bool:
        """Whether the calendar lists holidays for `day`'s year (else it may miss some)."""
        return any(h.year == day.year for h in self.holidays)

    def closed_note(self, day: dt.date, session: str) -> str:
        """What to warn about a session dated on a holiday ("" on any other day)."""
        if day not in self.holidays:
            return ""
        return (f"session {session} is dated {day.isoformat()} (New York), an exchange holiday in the "
                f"venue's [calendar]: it runs as on a weekend (not a trading day for Rule 201; the next "
                f"trading day is {self.next_trading_day(day).isoformat()})")

    def _step(self, day: dt.date, direction: int) -> dt.date:
        one = dt.timedelta(days=direction)
        day += one
        while not self.is_trading_day(day):
            day += one
        return day
