"""The Rule 201 record (rule201.days) follows the trades: a trigger is recorded only once the
trade that caused it is durably written (a crash before that restricts nothing), and an append
after a torn last line cuts that line first, so the record stays readable."""
from __future__ import annotations

import datetime as dt

from mm_core.protocol import itch, ouch
from mm_core.venue import regsho
from mm_core.venue.client import MoldReceiver
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from mm_core.venue.session_log import read_session_log, record_line
from tests.venue.test_end_of_day_crash import crash
from tests.venue.test_reg_sho import MONDAY, reg_sho, session

SESSION = "R201CRASH1"


def test_a_crash_before_the_trade_is_written_leaves_no_price_test(tmp_path):
    logs = tmp_path / "logs"
    crash("trade", logs, SESSION)
    assert not (logs / regsho.RECORD).exists()
    store = read_session_log(logs / SESSION / f"{SESSION}.itch")
    assert not [m for m in store if m[:1] in b"ECP"]             # the trade never happened
    assert ("ACME", "1") not in reg_sho(itch.decode(m) for m in store)
    with MoldReceiver() as rx:
        config = load_config().with_venue(itch_port=rx.port, log_dir=str(logs), session=SESSION)
        with Venue(config, background_flow=False):
            rx.run(None, lambda r: sum(isinstance(m, itch.RegShoRestriction)
                                       for m in r.decoded()) == 3, 5.0)
        assert reg_sho(rx.decoded()) == [("ACME", "0"), ("BOLT", "0"), ("CHIP", "0")]
    assert not (logs / regsho.RECORD).exists()


def test_the_trigger_is_recorded_after_the_trade_is_in_the_store_and_the_logs(tmp_path,
                                                                              monkeypatch):
    logs = tmp_path / "logs"
    seen = []
    original = regsho.Rule201.record

    def record(self):
        store = read_session_log(logs / SESSION / f"{SESSION}.itch")
        seen.append(([type(itch.decode(m)).__name__ for m in store if m[:1] == b"E"],
                     reg_sho(itch.decode(m) for m in store)[3:],
                     [type(ouch.decode_outbound(m)).__name__
                      for m in read_session_log(logs / SESSION / "MM01.soup")]))
        original(self)

    monkeypatch.setattr(regsho.Rule201, "record", record)
    public = session(logs, SESSION, MONDAY, [("ACME", 89_0000)])
    assert reg_sho(public)[3:] == [("ACME", "1")]
    # the print and the execution were written; the 'Y' '1' was not published yet
    assert seen == [(["OrderExecuted"], [], ["SystemEvent", "Accepted", "Executed"])]
    assert (logs / regsho.RECORD).read_text() == "2026-03-09 ACME\n"


def test_an_append_after_a_torn_last_line_cuts_it_first(tmp_path):
    logs = tmp_path
    path = logs / regsho.RECORD
    path.write_text("2026-03-09 ACME\n2026-03-09 BO")              # torn last write
    day = dt.date(2026, 3, 9)
    calendar = load_config().calendar
    rule = regsho.Rule201(logs, day, {"ACME": 100_0000, "BOLT": 50_0000}, calendar)
    assert rule.today == {"ACME"}
    assert rule.on_trade("BOLT", 44_0000)
    rule.record()
    assert path.read_text() == "2026-03-09 ACME\n2026-03-09 BOLT\n"
    assert regsho.Rule201(logs, day, {"ACME": 1, "BOLT": 1}, calendar).today == {"ACME", "BOLT"}


def test_any_record_file_append_cuts_a_torn_tail(tmp_path):
    path = tmp_path / "mold.sessions"
    path.write_text("S1\nS1R")
    assert record_line(path, "S1R1", "the MoldUDP64 session") == 3
    assert path.read_text() == "S1\nS1R1\n"
    path.write_text("S1R")                                       # no whole line at all
    assert record_line(path, "S1", "the MoldUDP64 session") == 3
    assert path.read_text() == "S1\n"
    assert record_line(path, "S1R1", "the MoldUDP64 session") == 0
    assert path.read_text() == "S1\nS1R1\n"
