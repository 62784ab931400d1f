"""Reg SHO Rule 201 at the venue: which symbols have the short sale price test in force.

Owns the trigger (a trade 10% or more below the symbol's prior close, the [[symbols]]
reference_price: 10 * price <= 9 * close, in integers), how long it lasts (the rest of the day
and the next trading day: weekdays that are not holidays in the venue's [calendar]) and
the record that carries it from one session to the next: `rule201.days` in the log directory,
one "YYYY-MM-DD SYMBOL" line per trigger, fsynced after the trade that caused it is durably
written (a crash before that leaves no trigger for a trade that never happened) and before the
ITCH 'Y' goes out. The ITCH 5.0 Reg
SHO actions: '0' no price test in place, '1' in force after an intra-day price drop, '2' in
force, remaining from the prior day (sent at start of day). Must not know about sockets or
wire encodings.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from mm_core.venue.errors import SessionLogError
from mm_core.venue.session_log import record_line
from mm_core.venue.tradingdays import TradingCalendar

NO_PRICE_TEST = "0"
INTRADAY_DROP = "1"
REMAINS = "2"
RECORD = "rule201.days"


def triggers(price: int, prior_close: int) -> bool:
    """Whether a trade at `price` is 10% or more below `prior_close` (both price4)."""
    return 10 * price <= 9 * prior_close


class Rule201:
    """The price test state of one session dated `day`; `prior_close`: symbol -> price4, in
    start-of-day order (the symbols the test applies to: options have none); `calendar` says
    which day before `day` was the previous trading day (whose triggers still hold today)."""

    def __init__(self, log_dir: Path, day: dt.date, prior_close: dict[str, int],
                 calendar: TradingCalendar) -> None:
        self.path = log_dir / RECORD
        self.day = day
        self.prior_close = prior_close
        triggered = _read(self.path)
        self.today = {s for d, s in triggered if d == day}
        self.carried = {s for d, s in triggered if d == calendar.previous_trading_day(day)}
        self._unrecorded: list[str] = []

    def start_of_day(self) -> list[tuple[str, str]]:
        """(symbol, Reg SHO action) for every symbol: '1' when it fell earlier today (an earlier
        run of the day), '2' when it fell on the previous trading day, else '0'."""
        return [(s, INTRADAY_DROP if s in self.today else REMAINS if s in self.carried
                 else NO_PRICE_TEST) for s in self.prior_close]

    def on_trade(self, symbol: str, price: int) -> bool:
        """A trade printed: True when it starts the price test now. A symbol already triggered
        today is not triggered again. The trigger is recorded by record(), which the caller
        runs once the trade is durably written and before it publishes '1'."""
        close = self.prior_close.get(symbol)
        if close is None or symbol in self.today or not triggers(price, close):
            return False
        self.today.add(symbol)
        self._unrecorded.append(symbol)
        return True

    def record(self) -> None:
        """Record (fsync) the triggers on_trade reported since the last call."""
        if self._unrecorded:
            lines = "\n".join(f"{self.day.isoformat()} {s}" for s in self._unrecorded)
            record_line(self.path, lines, "a Rule 201 trigger")
            self._unrecorded.clear()


def _read(path: Path) -> list[tuple[dt.date, str]]:
    try:
        text = path.read_text("ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionLogError(f"cannot read the Rule 201 record {path}: {exc}") from exc
    lines = text.split("\n")[:-1]      # an unterminated last line is a torn write: not made
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            day, symbol = line.split()
            rows.append((dt.date.fromisoformat(day), symbol))
        except ValueError:
            raise SessionLogError(f"{path}:{number}: not 'YYYY-MM-DD SYMBOL': {line!r}") from None
    return rows
