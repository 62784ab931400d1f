"""Venue garbage in an order token (the runner journals raw frames before decoding them) goes to
rejects with its bytes shown, in every report that names orders, never a crash; the project's own
`mmaudit journal demo` journal (which wrote random bytes as OUCH) gives a clean `mmaudit report all`."""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from cli.journal_cmd import command as journal_command
from cli.report_cmd import EXIT_REJECTED, command
from reports import numtext
from tests.reports.journal_builder import FIXTURE_REFDATA, accepted_order


def rejects(out, kind):
    files = sorted((out / kind / "rejects").rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_token_text_escapes_bytes_that_are_not_utf8():
    keys = np.array([b"T1", b"T\xff0", b"\xc3\xa9x", b"ab\x00\xff", b"\xfe\x00zz"], dtype="S14")
    assert numtext.token_text(keys).to_pylist() == ["T1", "T\\xff0", "éx", "ab", "\\xfe"]
    assert numtext.non_ascii_tokens(keys).tolist() == [False, True, True, False, True]


def test_a_venue_token_that_is_not_text_is_rejected_in_every_report(tmp_path):
    b = accepted_order("ORD1", 1, "B", 1_500_000, 100)
    b.advance(10_000)
    b.execute("ORD1", 40)
    garbage = b.records[-1]
    raw = garbage.payload.replace(b"ORD1", b"\xffRD1", 1)
    assert raw != garbage.payload
    b.records[-1] = dataclasses.replace(garbage, payload=raw)
    journal = b.write(tmp_path / "j")
    seq = len(b.records)
    out = tmp_path / "out"
    result = CliRunner().invoke(command, ["all", "--journal", str(journal), "--out", str(out),
                                          "--refdata", str(FIXTURE_REFDATA)])
    assert result.exit_code == EXIT_REJECTED, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for kind in ("orders", "clock", "cat", "rts22", "execution-quality"):
        bad = [r for r in rejects(out, kind) if r["seq"] == seq and "not ASCII text" in r["reason"]]
        assert len(bad) == 1, kind
        assert bad[0]["field"] == "order_id" and "token ff524431 is not ASCII text" in bad[0]["reason"]
        assert bad[0]["value"] in ("\\xffRD1", None)      # None: a table without an order_id column
    assert [r["value"] for r in rejects(out, "orders") if r["seq"] == seq] == ["\\xffRD1"] * 2
    events = pq.read_table(out / "orders" / "order_events").to_pylist()
    assert [e["order_id"] for e in events] == ["ORD1", "ORD1"]          # the order's own rows kept


def test_the_demo_journal_gives_clean_reports(tmp_path):
    d = tmp_path / "demo"
    made = CliRunner().invoke(journal_command, ["demo", "--dir", str(d), "--records", "3000"])
    assert made.exit_code == 0, made.output
    out = tmp_path / "out"
    result = CliRunner().invoke(command, ["all", "--journal", str(d), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for kind in ("orders", "clock", "cat", "execution-quality", "controls", "rts22"):
        assert f"{kind}: " in result.output and not rejects(out, kind), kind
    orders = pq.read_table(out / "orders" / "order_events", columns=["event_type", "order_id", "symbol"]).to_pylist()
    sent = [o for o in orders if o["event_type"] == "SENT_NEW"]
    accepted = {o["order_id"] for o in orders if o["event_type"] == "ACCEPTED"}
    assert sent and accepted and accepted <= {o["order_id"] for o in sent}
    assert {o["symbol"] for o in sent} <= {"ACME", "BOLT", "CHIP"}
