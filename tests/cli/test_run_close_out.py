"""A session that ends cleanly pulls its orders first: `mmaudit demo` ends by duration with every
order closed by a venue answer the journal holds, nothing in the venue's session log after the
journal's last answer but its end of day, and no live order in `mmaudit report orders`; a venue
process ends the same way."""
from __future__ import annotations

import pathlib

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli.demo_cmd import command as demo
from cli.run_cmd import command as run
from journal import Reader
from journal.catalogue import RecordType, unpack, unpack_json
from mm_core.protocol import ouch
from mm_core.session import Session
from mm_core.sessionconfig import ClockSpec, SessionSettings, VenueSpec, lab_available, load_inputs
from mm_core.venue.session_log import read_session_log

LAB = lab_available()
needs_lab = pytest.mark.skipif(bool(LAB), reason=f"PTP lab unavailable: {LAB}")


def live_in_report(reports: pathlib.Path) -> set[str]:
    """Orders the orders report leaves live: accepted (or replaced into) and never canceled,
    filled out, rejected or replaced."""
    rows = [row for path in sorted((reports / "orders" / "order_events").rglob("*.parquet"))
            for row in pq.read_table(path, columns=["event_type", "order_id", "prior_order_id",
                                                     "leaves_qty"]).to_pylist()]
    assert rows
    opened, closed = set(), set()
    for row in rows:
        kind = row["event_type"]
        if kind in ("ACCEPTED", "REPLACED"):
            opened.add(row["order_id"])
        if kind == "REPLACED":
            closed.add(row["prior_order_id"])
        if kind in ("CANCELED", "REJECTED") or (kind == "EXECUTED" and row["leaves_qty"] == 0):
            closed.add(row["order_id"])
    return opened - closed


def venue_after_journal(journal: pathlib.Path, venue_dir: pathlib.Path, user: str = "MM01") -> list:
    """The venue's messages to `user` after the last one the journal holds (decoded)."""
    with Reader(str(journal)) as reader:
        seqs = [int(unpack(RecordType.VENUE_MSG, r.payload)["soup_seq"]) for r in reader.records()
                if r.rtype == RecordType.VENUE_MSG]
    (log,) = venue_dir.rglob(f"{user}.soup")
    return [ouch.decode_outbound(m) for m in read_session_log(log, max(seqs) + 1)]


def session_kills(journal: pathlib.Path) -> list[dict]:
    with Reader(str(journal)) as reader:
        return [unpack_json(r.payload) for r in reader.records() if r.rtype == RecordType.OPERATOR_CMD]


@needs_lab
def test_the_demo_ends_with_no_live_order_and_nothing_traded_after_the_journal(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(demo, ["--duration", "3s", "--out", str(out), "--seed", "5"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "no order open after" in result.output and "logged out" in result.output
    assert [k["actor"] for k in session_kills(out / "journal")] == ["session"]
    assert live_in_report(out / "reports") == set()
    after = venue_after_journal(out / "journal", out / "venue")
    assert all(isinstance(m, ouch.SystemEvent) for m in after), after


@needs_lab
def test_a_venue_process_session_ends_with_every_order_closed(tmp_path):
    settings = SessionSettings(str(tmp_path / "journal"), 3.0, VenueSpec("process"), ClockSpec("lab"),
                               seed=7, venue_log_dir=str(tmp_path / "venue"))
    summary = Session(settings, load_inputs()).run()
    assert summary.runner.orders_sent and summary.runner.logged_out
    assert summary.runner.orders_open == [] and summary.trading_state == "ACTIVE"
    after = venue_after_journal(tmp_path / "journal", tmp_path / "venue")
    assert all(isinstance(m, ouch.SystemEvent) for m in after), after


@pytest.mark.parametrize("bound, why", [("61s", "longer than the close-out may wait, 60 s"),
                                        ("2m", "longer than the close-out may wait, 60 s"),
                                        ("9" * 400, "longer than the close-out may wait, 60 s"),
                                        ("soon", "not a positive duration"), ("0s", "not a positive duration")])
def test_a_close_out_bound_out_of_range_is_a_usage_error_before_anything_runs(tmp_path, bound, why):
    result = CliRunner().invoke(run, ["--duration", "2s", "--close-out", bound, "--journal",
                                      str(tmp_path / "journal")])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --close-out" in result.output and why in result.output, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert not (tmp_path / "journal").exists()
