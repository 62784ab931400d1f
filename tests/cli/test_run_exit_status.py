"""`mmaudit run` exits non-zero, with a documented code the summary names, when a session that ran
did not end cleanly: the venue lost mid-session (3, and no close-out ran: the orders the OMS held
are left open, their state at the venue unknown), the clock never compliant so nothing traded (3),
trading latched by a limit's breach (3, the outcome row saying which), orders still open at the venue after the close-out (4). An operator's kill with no fault is a clean
end (0) whose outcome row says who halted trading, when and why."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from click.testing import CliRunner

from cli.run_cmd import EXIT_FAILED, EXIT_ORDERS_OPEN, close_out_text, command as run, exit_status, trading_state_text
from mm_core.events import OperatorCommand
from mm_core.risk import TradingState
from mm_core.runnertypes import RunnerReport
from mm_core.session import Session
from mm_core.sessionconfig import (
    ClockReport,
    ClockSpec,
    SessionSettings,
    SessionSummary,
    VenueSpec,
    lab_available,
    load_inputs,
)
from mm_core.sessionfacts import OperatorHalt
from mm_core.types import Side
from mm_core.venue.server import Venue
from tests.risk.conftest import FAIR, MS, T0, make_gateway

LAB = lab_available()


def test_the_help_documents_the_exit_codes():
    text = " ".join(CliRunner().invoke(run, ["--help"]).output.split())
    assert f"{EXIT_FAILED} it ended failed (the clock never compliant, so no order left; venue lost;" in text
    assert f"{EXIT_ORDERS_OPEN} orders still open at the venue after the close-out" in text
    assert "0 a clean session (an operator's kill included)" in text


def test_a_session_that_lost_its_venue_exits_failed(tmp_path):
    def kill_venue(session: Session) -> None:
        pid = session.venue["pid"]
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()

    settings = SessionSettings(str(tmp_path / "journal"), 20.0, VenueSpec("process"), ClockSpec("uds"),
                               venue_log_dir=str(tmp_path))
    summary = Session(settings, load_inputs(), on_started=kill_venue).run()
    assert summary.runner.venue_lost and summary.seconds < 15
    code, text = exit_status(summary)
    assert code == EXIT_FAILED and text.startswith(f"FAILED (exit {EXIT_FAILED}): venue lost")


@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_orders_left_open_by_the_venue_exit_with_their_own_code(tmp_path, monkeypatch):
    on_ouch = Venue._on_ouch
    monkeypatch.setattr(Venue, "_on_ouch", lambda self, conn, payload: None if payload[:1] == b"X"
                        else on_ouch(self, conn, payload))          # a venue deaf to cancels
    result = CliRunner().invoke(run, ["--duration", "3s", "--close-out", "0.3s", "--journal",
                                      str(tmp_path / "journal")], catch_exceptions=False)
    assert result.exit_code == EXIT_ORDERS_OPEN, result.output
    assert "STILL OPEN after" in result.output
    assert f"FAILED (exit {EXIT_ORDERS_OPEN}): " in result.output and "orders still open at the venue" in result.output


def summary_of(report: RunnerReport, trading_state: str = "ACTIVE", faults=(), clock_seen: bool = True,
               halt: OperatorHalt | None = None) -> SessionSummary:
    clock = ClockReport("ptp-lab", "", "eu-hft", "LOCKED", clock_seen, (), clock_seen, 0.0)
    return SessionSummary(1, "j", {}, clock, report, {}, trading_state, list(faults), {}, {}, 1.0, {},
                          clock_compliant_seen=clock_seen, operator_halt=halt)


def lost_venue(close_out_ran: bool, orders_open: list[str]) -> RunnerReport:
    r = RunnerReport(venue_lost=True, stop_reason="venue closed the order-entry session", closing_state="ACTIVE",
                     close_out_ran=close_out_ran)
    r.orders_open = orders_open
    return r


def test_a_lost_venue_with_orders_open_and_no_close_out_exits_failed_and_says_so():
    r = lost_venue(False, ["MM000000000007"])
    code, text = exit_status(summary_of(r))
    assert code == EXIT_FAILED
    assert text == (f"FAILED (exit {EXIT_FAILED}): venue lost (venue closed the order-entry session); "
                    "1 orders left open, state at the venue unknown")
    assert close_out_text(r) == ("no close-out (order entry ended: venue closed the order-entry session); "
                                 "1 orders left open, state at the venue unknown: MM000000000007")
    assert close_out_text(lost_venue(False, [])).endswith("; no order was open")
    # lost during the close-out's wait: what the venue holds is unknown too
    assert exit_status(summary_of(lost_venue(True, ["MM000000000007"])))[0] == EXIT_FAILED


def test_orders_open_after_a_close_out_the_venue_stayed_for_exit_orders_open():
    r = RunnerReport(stop_reason="duration", closing_state="ACTIVE", close_out_ran=True, closing_cancels=2,
                     close_out_s=2.0, logged_out=True)
    r.orders_open = ["MM000000000007"]
    code, text = exit_status(summary_of(r))
    assert code == EXIT_ORDERS_OPEN and text.endswith("1 orders still open at the venue")
    assert close_out_text(r).startswith("2 cancels sent; 1 orders STILL OPEN after 2 s")


def test_a_session_whose_clock_was_never_compliant_failed():
    r = RunnerReport(stop_reason="duration", closing_state="ACTIVE", close_out_ran=True, logged_out=True)
    code, text = exit_status(summary_of(r, faults=["clock not compliant"], clock_seen=False))
    assert code == EXIT_FAILED
    assert text == f"FAILED (exit {EXIT_FAILED}): the clock was never compliant for eu-hft: the gateway let no order out"


def test_an_operators_kill_without_fault_is_clean_and_the_outcome_names_who_and_when():
    r = RunnerReport(stop_reason="duration", closing_state="HALTED", close_out_ran=True, logged_out=True)
    halt = OperatorHalt("alice", "desk call", 1_795_000_000_123_000_000)
    assert exit_status(summary_of(r, "HALTED", halt=halt)) == (
        0, "clean (exit 0): trading halted by an operator's kill, by alice at 2026-11-18 11:06:40 UTC (desk call)")
    # lifted before the end (ACTIVE again): a plain clean end, whose close-out kill then halted it
    active = summary_of(RunnerReport(closing_state="ACTIVE", close_out_ran=True), "ACTIVE")
    assert exit_status(active) == (0, "clean (exit 0)")
    assert trading_state_text(active) == "ACTIVE when trading ended; the close-out's kill then halted it"
    # no close-out ran (the order entry had ended): the state alone
    assert trading_state_text(summary_of(RunnerReport(closing_state="ACTIVE"), "ACTIVE")) == "ACTIVE"


def test_a_latch_by_a_limit_breach_fails_the_session_and_says_why():
    gw = make_gateway(throttle={"max_fills": 3, "window_ms": 1000})
    for i in range(4):
        gw.on_fill(1, Side.BUY, 1, FAIR, T0 + i * MS)
    gw.kill("all", 0, "alice", "desk call", T0 + 5 * MS)      # an operator's kill on top: named apart
    assert gw.state is TradingState.HALTED and not gw.faults
    r = RunnerReport(stop_reason="duration", closing_state="HALTED", close_out_ran=True, logged_out=True)
    summary = summary_of(r, "HALTED", halt=OperatorHalt("alice", "desk call", T0 + 5 * MS))
    summary.latch = gw.latch_details
    code, text = exit_status(summary)
    assert code == EXIT_FAILED
    assert text == (f"FAILED (exit {EXIT_FAILED}): trading latched HALTED by the risk gateway: "
                    "execution-throttle: 4 fills in window")
    assert trading_state_text(summary) == "HALTED (latched: execution-throttle: 4 fills in window)"
    # the operator's kill alone is a clean end, as before
    summary.latch = {"killed": summary.latch["killed"]}
    assert exit_status(summary)[0] == 0 and trading_state_text(summary) == "HALTED"


@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_an_operators_kill_in_a_real_session_is_named_in_the_outcome(tmp_path):
    def kill_soon(session: Session) -> None:
        threading.Timer(1.0, session.runner.operator, (OperatorCommand(
            time.clock_gettime_ns(time.CLOCK_REALTIME), "kill", "alice", "desk call"),)).start()

    settings = SessionSettings(str(tmp_path / "journal"), 3.0, VenueSpec("embedded"), ClockSpec("lab"))
    summary = Session(settings, load_inputs(), on_started=kill_soon).run()
    assert summary.trading_state == "HALTED" and not summary.faults
    code, text = exit_status(summary)
    assert code == 0 and text.startswith("clean (exit 0): trading halted by an operator's kill, by alice at ")
    assert text.endswith(" UTC (desk call)")
    halt = summary.operator_halt
    assert halt.actor == "alice" and abs(halt.ts_ns - time.clock_gettime_ns(time.CLOCK_REALTIME)) < 60e9


@pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")
def test_a_venue_lost_while_quoting_leaves_no_close_out_and_exits_failed(tmp_path):
    def kill_venue(session: Session) -> None:
        threading.Timer(2.0, os.kill, (session.venue["pid"], signal.SIGKILL)).start()

    settings = SessionSettings(str(tmp_path / "journal"), 20.0, VenueSpec("process"), ClockSpec("lab"),
                               venue_log_dir=str(tmp_path))
    summary = Session(settings, load_inputs(), on_started=kill_venue).run()
    r = summary.runner
    assert r.venue_lost and not r.close_out_ran and r.orders_sent
    assert exit_status(summary)[0] == EXIT_FAILED
    assert close_out_text(r).startswith(f"no close-out (order entry ended: {r.stop_reason}); ")
    if r.orders_open:
        assert f"{len(r.orders_open)} orders left open, state at the venue unknown" in close_out_text(r)
